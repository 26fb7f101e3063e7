// SPDX-License-Identifier: BSL-1.0
// A store that breaks one rule of the contract, run through it: expected to FAIL.
// test/check_output.cmake runs it and requires every failure to be reported at a line of
// storage_contract.hpp (the check that failed), never at this file's line.
//
// The broken rule: update() stores everything but `extra`, as a store written against the
// 0.1 contract (which compared titles only) could.
#define BOOST_TEST_MODULE storage_contract_lines // before the first Boost.Test include
#include <dexter/sessions/testing/storage_contract.hpp>

#include <dexter/sessions/memory_store.hpp>

#include <tuple>

namespace {

namespace ds = dexter::sessions;

class extra_dropping_store : public ds::memory_store {
public:
    void update(const ds::session_meta& m) {
        ds::session_meta without_extra = m;
        without_extra.extra = {};
        memory_store::update(without_extra);
    }
};

struct extra_dropping_factory {
    extra_dropping_store shared;
    extra_dropping_store make() { return shared; }
};

} // namespace

DEXTER_SESSIONS_STORAGE_CONTRACT(contract_lines, std::tuple<extra_dropping_factory>)
