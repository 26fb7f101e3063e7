// SPDX-License-Identifier: BSL-1.0
// The installed storage contract, run against memory_store through the installed
// dexter::sessions_testing target (find_package(... COMPONENTS testing)).
#include <dexter/sessions/memory_store.hpp>

#define BOOST_TEST_MODULE installed_storage_contract
#include <dexter/sessions/testing/storage_contract.hpp>

#include <tuple>

namespace {

// Every handle shares the sessions of the first, as the contract requires.
struct memory_store_factory {
    dexter::sessions::memory_store shared;
    dexter::sessions::memory_store make() { return shared; }
};

} // namespace

DEXTER_SESSIONS_STORAGE_CONTRACT(installed_storage_contract, std::tuple<memory_store_factory>)
