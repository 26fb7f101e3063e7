// SPDX-License-Identifier: BSL-1.0
// logging_store passes the library's storage contract, over memory_store and over
// jsonl_store, and logs each operation (and each failure) the manager makes.
#include "logging_store.hpp"

#define BOOST_TEST_MODULE custom_store_contract
#include <dexter/sessions/testing/storage_contract.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/redacting_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>

namespace {

namespace ds = dexter::sessions;

// A contract factory: every make() is a new handle to the same, initially empty store.
struct logging_memory_factory {
    std::ostringstream log;
    ds::memory_store shared;
    example::logging_store<> make() { return example::logging_store<>{shared, log}; }
};

// A new empty directory, removed with its contents.
struct scratch_dir {
    std::filesystem::path path;
    scratch_dir() {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/custom-store-XXXXXX";
        if (!::mkdtemp(pattern.data()))
            throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

struct logging_jsonl_factory {
    std::ostringstream log;
    scratch_dir dir;
    example::logging_store<ds::jsonl_store> make() {
        return example::logging_store<ds::jsonl_store>{ds::jsonl_store{dir.path}, log};
    }
};

// The wrapper offers what the wrapped store offers, the saves of checked text included.
static_assert(ds::skips_checked_utf8<example::logging_store<ds::memory_store>> &&
              ds::skips_checked_utf8<example::logging_store<ds::jsonl_store>>);
// Secret redaction over it keeps every capability it has.
static_assert(
    ds::same_capabilities<ds::redacting_store<example::logging_store<ds::jsonl_store>>,
                          example::logging_store<ds::jsonl_store>> &&
    ds::same_capabilities<ds::redacting_store<example::logging_store<>>, example::logging_store<>>);

} // namespace

DEXTER_SESSIONS_STORAGE_CONTRACT(custom_store_contract,
                                 std::tuple<logging_memory_factory, logging_jsonl_factory>)

BOOST_AUTO_TEST_CASE(each_operation_and_failure_is_logged) {
    using manager =
        ds::session_manager<example::logging_store<>, ds::manual_clock, ds::sequential_ids>;
    std::ostringstream log, other_log;
    ds::memory_store shared;
    manager m{example::logging_store<>{shared, log}};
    m.start_new();
    m.save_exchange("question", "answer");

    manager other{example::logging_store<>{shared, other_log}};
    BOOST_CHECK_THROW(other.resume("s0000001"), ds::session_busy);
    m.close();
    BOOST_TEST(other.resume("s0000001").exchanges.size() == 1u);

    BOOST_TEST(log.str() == "find s0000001\n"
                            "create s0000001\n"
                            "append s0000001 seq 1\n"
                            "close s0000001\n");
    BOOST_TEST(other_log.str() ==
               "find s0000001\n"
               "open s0000001\n"
               "  failed: session 's0000001' is open by another writer; close it there "
               "first: memory store\n"
               "find s0000001\n"
               "open s0000001\n"
               "load s0000001 last 10\n");

    // An id from outside never reaches the log as it is.
    std::ostringstream direct_log;
    example::logging_store<> direct{shared, direct_log};
    BOOST_CHECK_THROW(direct.find("x\n\x1b[2Jfake"), ds::invalid_session_id);
    BOOST_TEST(direct_log.str().starts_with("find (invalid id)\n  failed: invalid session id "
                                            "'x\\x0a\\x1b[2Jfake'"));
}
