// SPDX-License-Identifier: BSL-1.0
// Must compile: the positive control of not_a_storage.cpp, the same file with append()
// present, so that the harness is known to accept a valid store.
#include <dexter/sessions/session_manager.hpp>

namespace ds = dexter::sessions;

struct MinimalStore {
    bool create(const ds::session_meta&) { return true; }
    ds::session_meta open(const ds::session_id&) { return {}; }
    void append(const ds::session_id&, const ds::exchange&) {}
    void update(const ds::session_meta&) {}
    void close(const ds::session_id&) noexcept {}
    std::optional<ds::session_meta> find(const ds::session_id&) { return {}; }
    std::vector<ds::session_meta> list() { return {}; }
    ds::loaded_session load(const ds::session_id&, std::size_t) { return {}; }
    void remove(const ds::session_id&) {}
};

int main() {
    ds::session_manager<MinimalStore> sessions{MinimalStore{}};
    (void)sessions;
}
