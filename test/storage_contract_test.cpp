// SPDX-License-Identifier: BSL-1.0
// The storage contract, run against every store of the library.
#define BOOST_TEST_MODULE storage_contract // before the first Boost.Test include
#include <dexter/sessions/testing/storage_contract.hpp>

#include <dexter/sessions/memory_store.hpp>

#include <tuple>

namespace {

// Every handle shares the sessions of the first (copies of a memory_store do).
struct memory_store_factory {
    dexter::sessions::memory_store shared;
    dexter::sessions::memory_store make() { return shared; }
};

} // namespace

DEXTER_SESSIONS_STORAGE_CONTRACT(storage_contract, std::tuple<memory_store_factory>)
