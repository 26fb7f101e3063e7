// SPDX-License-Identifier: BSL-1.0
// This process's environment as a map, for tests that start programs with an edited copy.
#pragma once

#include <map>
#include <string>
#include <string_view>

extern char** environ;

namespace dexter::sessions::test {

/// Each NAME=VALUE of this process's environment (entries without '=' are left out).
inline std::map<std::string, std::string> current_environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string_view kv(*e);
        if (const auto eq = kv.find('='); eq != std::string_view::npos)
            env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return env;
}

} // namespace dexter::sessions::test
