// SPDX-License-Identifier: BSL-1.0
// The storage contract, run against every store of the library.
#define BOOST_TEST_MODULE storage_contract // before the first Boost.Test include
#include <dexter/sessions/testing/storage_contract.hpp>

#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/redacting_store.hpp>

#include "support/temp_dir.hpp"

#include <cstddef>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace {

// Every handle shares the sessions of the first (copies of a memory_store do).
struct memory_store_factory {
    dexter::sessions::memory_store shared;
    dexter::sessions::memory_store make() { return shared; }
};

// A host's store with the nine primitives and no capability: the manager's fallbacks
// (fork and import by create() and append(), no trash) are checked through it.
class primitives_only_store {
public:
    explicit primitives_only_store(dexter::sessions::memory_store inner)
        : inner_(std::move(inner)) {}
    bool create(const dexter::sessions::session_meta& m) { return inner_.create(m); }
    dexter::sessions::session_meta open(const dexter::sessions::session_id& id) {
        return inner_.open(id);
    }
    void append(const dexter::sessions::session_id& id, const dexter::sessions::exchange& ex) {
        inner_.append(id, ex);
    }
    void update(const dexter::sessions::session_meta& m) { inner_.update(m); }
    void close(const dexter::sessions::session_id& id) noexcept { inner_.close(id); }
    std::optional<dexter::sessions::session_meta> find(const dexter::sessions::session_id& id) {
        return inner_.find(id);
    }
    std::vector<dexter::sessions::session_meta> list() { return inner_.list(); }
    dexter::sessions::loaded_session load(const dexter::sessions::session_id& id,
                                          std::size_t last) {
        return inner_.load(id, last);
    }
    void remove(const dexter::sessions::session_id& id) { inner_.remove(id); }

private:
    dexter::sessions::memory_store inner_;
};
static_assert(dexter::sessions::session_storage<primitives_only_store> &&
              !dexter::sessions::creates_whole_sessions<primitives_only_store> &&
              !dexter::sessions::keeps_trash<primitives_only_store> &&
              !dexter::sessions::streams_exchanges<primitives_only_store> &&
              !dexter::sessions::skips_checked_utf8<primitives_only_store>);
// The library's stores take text the manager has checked without checking it again.
static_assert(dexter::sessions::skips_checked_utf8<dexter::sessions::memory_store> &&
              dexter::sessions::skips_checked_utf8<dexter::sessions::jsonl_store>);

struct primitives_only_factory {
    dexter::sessions::memory_store shared;
    primitives_only_store make() { return primitives_only_store{shared}; }
};

// Every handle is a separate store object over one directory, as separate processes are.
struct jsonl_store_factory {
    dexter::sessions::test::temp_dir dir;
    dexter::sessions::jsonl_store make() { return dexter::sessions::jsonl_store{dir.path()}; }
    std::string stored_state() const { return dexter::sessions::test::tree_bytes(dir.path()); }
};

// The same without fdatasync: the contract does not depend on durability.
struct unsynced_jsonl_store_factory {
    dexter::sessions::test::temp_dir dir;
    dexter::sessions::jsonl_store make() {
        return dexter::sessions::jsonl_store{
            dir.path(), "cli", {dexter::sessions::durability::process_crash}};
    }
    std::string stored_state() const { return dexter::sessions::test::tree_bytes(dir.path()); }
};

// Secret redaction composed with the stores: the contract holds through the decorator
// (its text has no secret), which offers exactly the capabilities of the store it wraps.
template <class Store>
using redacting = dexter::sessions::redacting_store<Store>;
static_assert(
    dexter::sessions::same_capabilities<redacting<dexter::sessions::memory_store>,
                                        dexter::sessions::memory_store> &&
    dexter::sessions::same_capabilities<redacting<dexter::sessions::jsonl_store>,
                                        dexter::sessions::jsonl_store> &&
    dexter::sessions::same_capabilities<redacting<primitives_only_store>, primitives_only_store>);
static_assert(dexter::sessions::keeps_trash<redacting<dexter::sessions::jsonl_store>> &&
              dexter::sessions::forks_sessions<redacting<dexter::sessions::jsonl_store>> &&
              dexter::sessions::skips_checked_utf8<redacting<dexter::sessions::memory_store>>);

struct redacting_memory_store_factory {
    dexter::sessions::memory_store shared;
    redacting<dexter::sessions::memory_store> make() {
        return redacting<dexter::sessions::memory_store>{shared};
    }
};

struct redacting_primitives_only_factory {
    dexter::sessions::memory_store shared;
    redacting<primitives_only_store> make() {
        return redacting<primitives_only_store>{primitives_only_store{shared}};
    }
};

struct redacting_jsonl_store_factory {
    jsonl_store_factory files;
    redacting<dexter::sessions::jsonl_store> make() {
        return redacting<dexter::sessions::jsonl_store>{files.make()};
    }
    std::string stored_state() const { return files.stored_state(); }
};

} // namespace

DEXTER_SESSIONS_STORAGE_CONTRACT(
    storage_contract, std::tuple<memory_store_factory, primitives_only_factory, jsonl_store_factory,
                                 unsynced_jsonl_store_factory, redacting_memory_store_factory,
                                 redacting_primitives_only_factory, redacting_jsonl_store_factory>)
