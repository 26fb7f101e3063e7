// SPDX-License-Identifier: BSL-1.0
// The storage contract, run against every store of the library.
#define BOOST_TEST_MODULE storage_contract // before the first Boost.Test include
#include <dexter/sessions/testing/storage_contract.hpp>

#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/memory_store.hpp>

#include "support/temp_dir.hpp"

#include <tuple>

namespace {

// Every handle shares the sessions of the first (copies of a memory_store do).
struct memory_store_factory {
    dexter::sessions::memory_store shared;
    dexter::sessions::memory_store make() { return shared; }
};

// Every handle is a separate store object over one directory, as separate processes are.
struct jsonl_store_factory {
    dexter::sessions::test::temp_dir dir;
    dexter::sessions::jsonl_store make() { return dexter::sessions::jsonl_store{dir.path()}; }
};

// The same without fdatasync: the contract does not depend on durability.
struct unsynced_jsonl_store_factory {
    dexter::sessions::test::temp_dir dir;
    dexter::sessions::jsonl_store make() {
        return dexter::sessions::jsonl_store{
            dir.path(), "cli", {dexter::sessions::durability::process_crash}};
    }
};

} // namespace

DEXTER_SESSIONS_STORAGE_CONTRACT(
    storage_contract,
    std::tuple<memory_store_factory, jsonl_store_factory, unsynced_jsonl_store_factory>)
