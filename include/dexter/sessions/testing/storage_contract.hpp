// SPDX-License-Identifier: BSL-1.0
// The storage contract test: what every storage policy must do, written once.
//
// A store passes this contract or it is not a store. To check one, write a factory
// whose make() returns a new handle to one shared, initially empty store (two calls
// give two writers over the same sessions, as two processes over one directory), in a
// test file of its own:
//
//   #include "my_store.hpp"
//
//   #define BOOST_TEST_MODULE my_store_contract   // before this header: it includes
//   #include <dexter/sessions/testing/storage_contract.hpp>   // Boost.Test itself
//
//   struct my_store_factory {                     // default-constructible
//       my_store make() { return my_store{...}; }
//   };
//   DEXTER_SESSIONS_STORAGE_CONTRACT(my_store_contract, std::tuple<my_store_factory, ...>)
//
// Each factory type in the tuple runs every case of the contract (a fresh factory per
// case); a failed check names the case, the factory, and its own line in this header.
//
// What a store must do beyond the primitives' semantics (storage.hpp): validate every
// id it is given before anything else (validate_session_id() from id.hpp), throwing
// invalid_session_id for a malformed one, even where the answer would be "not found"
// (case unknown_and_invalid_ids); derive its metadata from the exchanges it stores
// (append_derives_the_metadata); persist exactly title, extra and pinned on update();
// and refuse text that is not valid UTF-8 with invalid_input, writing nothing, on
// create(), append() and update() (text_contract.hpp). The
// read side (streaming a session, exporting it, searching, paging) is checked through
// session_manager by the cases of read_contract.hpp, registered here too: a store passes
// them with its own capabilities (storage.hpp) or with the manager's fallbacks alike.
//
// Building: the test needs Boost.Test's shared library (boost_unit_test_framework),
// Boost.JSON, C++20, and BOOST_TEST_DYN_LINK defined for every file that includes this
// header. The build files below provide all of it (then do not #define it yourself):
//   CMake   find_package(dexter_sessions REQUIRED COMPONENTS testing), or
//           add_subdirectory; then link dexter::sessions_testing
//   meson   dependency('dexter-sessions-testing')
// A hand-written build passes it itself, e.g.
//   g++ -std=c++20 -DBOOST_TEST_DYN_LINK -Ipath/to/include my_contract_test.cpp
//       -lboost_unit_test_framework -lboost_json     (on one line)
// examples/custom_store/ is a complete example; docs/EMBEDDING.md explains more.
#pragma once

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/storage.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

namespace dexter::sessions::testing {

/// A factory of handles to one store. Every handle it makes sees the same sessions.
template <class F>
concept store_factory = std::default_initializable<F> && requires(F& f) {
    { f.make() } -> session_storage;
};

template <store_factory F>
using store_of = decltype(std::declval<F&>().make());

inline time_point at(int seconds) {
    return time_point{std::chrono::sys_days{std::chrono::year{2026} / 3 / 1}} +
           std::chrono::seconds{seconds};
}

inline session_meta sample_meta(std::string id, int created = 0) {
    session_meta m;
    m.id = std::move(id);
    m.title = "title of " + m.id;
    m.created_at = at(created);
    m.updated_at = at(created);
    return m;
}

inline exchange sample_exchange(std::uint64_t seq, std::string tag = {}) {
    exchange ex;
    ex.seq = seq;
    ex.timestamp = at(static_cast<int>(seq) * 10);
    ex.query = "question " + std::to_string(seq) + tag;
    ex.answer = "answer " + std::to_string(seq) + tag;
    if (seq % 2 == 0)
        ex.summary = "summary " + std::to_string(seq);
    return ex;
}

/// Appends `ex` to the open session `meta.id` and folds it into `meta`, as the manager
/// does: `meta` is then what the store must report.
template <class Store>
void append_to(Store& store, session_meta& meta, const exchange& ex) {
    store.append(meta.id, ex);
    apply_exchange(meta, ex);
}

// The caller's file and line come from __builtin_FILE() and __builtin_LINE() as default
// arguments (GCC, clang): std::source_location is missing with clang 14 on libstdc++ 12.

/// Compares every field of two metadata records, one check each (clear messages); a
/// failure also names the line of the caller.
inline void check_meta(const session_meta& got, const session_meta& want,
                       const char* from_file = __builtin_FILE(), int from_line = __builtin_LINE()) {
    BOOST_TEST_CONTEXT("metadata compared at " << from_file << "(" << from_line << ")") {
        BOOST_TEST(got.id == want.id);
        BOOST_TEST(got.title == want.title);
        BOOST_TEST(format_timestamp(got.created_at) == format_timestamp(want.created_at));
        BOOST_TEST(format_timestamp(got.updated_at) == format_timestamp(want.updated_at));
        BOOST_TEST(got.exchange_count == want.exchange_count);
        BOOST_TEST(json::serialize(got.extra) == json::serialize(want.extra));
        BOOST_TEST(got.pinned == want.pinned);
        BOOST_TEST(got.forked_from.has_value() == want.forked_from.has_value());
        if (got.forked_from && want.forked_from) {
            BOOST_TEST(got.forked_from->id == want.forked_from->id);
            BOOST_TEST(got.forked_from->seq == want.forked_from->seq);
        }
    }
}

/// Compares two lists of exchanges, field by field; a failure names the caller's line.
inline void check_exchanges(const std::vector<exchange>& got, const std::vector<exchange>& want,
                            const char* from_file = __builtin_FILE(),
                            int from_line = __builtin_LINE()) {
    BOOST_TEST_CONTEXT("exchanges compared at " << from_file << "(" << from_line << ")") {
        BOOST_TEST_REQUIRE(got.size() == want.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            BOOST_TEST_CONTEXT("exchange #" << i) {
                BOOST_TEST(got[i].seq == want[i].seq);
                BOOST_TEST(got[i].query == want[i].query);
                BOOST_TEST(got[i].answer == want[i].answer);
                BOOST_TEST(got[i] == want[i]);
            }
        }
    }
}

/// A string holding every hard case for a text field: quotes, escapes, controls,
/// 2/3/4-byte characters, the JavaScript line separators, and an embedded NUL.
inline std::string unicode_payload() {
    std::string s = "\"quoted\" \\back\\slash\\ \n\r\t tab \x01\x1f "
                    "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8 \xE2\x80\xA9 </script>";
    s.push_back('\0');
    s += "after NUL";
    return s;
}

/// The cases of the contract, one function template each: a failed check is reported
/// at its own line here. DEXTER_SESSIONS_STORAGE_CONTRACT registers each for every
/// factory.
namespace contract {

template <store_factory F>
void create_then_find() {
    F factory;
    auto store = factory.make();
    BOOST_TEST(!store.find("abcd1234").has_value());
    auto meta = sample_meta("abcd1234", 5);
    meta.extra = json::object{{"host", "data"}, {"n", 1}};
    meta.pinned = true;
    meta.forked_from = session_origin{"zyxw9876", 12};
    BOOST_TEST(store.create(meta));
    const auto found = store.find("abcd1234");
    BOOST_TEST_REQUIRE(found.has_value());
    check_meta(*found, meta);
    const auto loaded = store.load("abcd1234", all_exchanges);
    check_meta(loaded.meta, meta);
    BOOST_TEST(loaded.exchanges.empty());
    BOOST_TEST(loaded.diagnostics.empty());
}

template <store_factory F>
void duplicate_create_changes_nothing() {
    F factory;
    auto store = factory.make();
    auto other = factory.make();
    auto meta = sample_meta("dup00001");
    BOOST_TEST_REQUIRE(store.create(meta));
    append_to(store, meta, sample_exchange(1));
    auto clash = sample_meta("dup00001", 99);
    clash.title = "other";
    BOOST_TEST(!store.create(clash));
    BOOST_TEST(!other.create(clash));
    const auto loaded = store.load("dup00001", all_exchanges);
    check_meta(loaded.meta, meta);
    BOOST_TEST(loaded.exchanges.size() == 1u);
}

// A store validates every id it is given (validate_session_id(), id.hpp) before
// anything else: invalid_session_id, not "not found", for a malformed one.
template <store_factory F>
void unknown_and_invalid_ids() {
    F factory;
    auto store = factory.make();
    BOOST_CHECK_THROW(store.open("zz99zz99"), session_not_found);
    BOOST_CHECK_THROW(store.load("zz99zz99", all_exchanges), session_not_found);
    BOOST_CHECK_THROW(store.remove("zz99zz99"), session_not_found);
    const std::vector<std::string> bad_ids{
        "../../etc/passwd",         "..", "/abs/xyz", "a/b", "", "ABCDEFGH", "abcdefghi", "-rf",
        std::string("abcd\0efg", 8)};
    for (const std::string& bad : bad_ids) {
        BOOST_TEST_CONTEXT("id " << bad.size() << " bytes") {
            BOOST_CHECK_THROW(store.find(bad), invalid_session_id);
            BOOST_CHECK_THROW(store.open(bad), invalid_session_id);
            BOOST_CHECK_THROW(store.load(bad, 1), invalid_session_id);
            BOOST_CHECK_THROW(store.remove(bad), invalid_session_id);
            BOOST_CHECK_THROW(store.create(sample_meta(bad)), invalid_session_id);
            BOOST_CHECK_THROW(store.append(bad, sample_exchange(1)), invalid_session_id);
        }
    }
    BOOST_TEST(store.list().empty());
}

template <store_factory F>
void append_load_and_counts() {
    F factory;
    auto store = factory.make();
    auto meta = sample_meta("app00001");
    BOOST_TEST_REQUIRE(store.create(meta));
    std::vector<exchange> saved;
    for (std::uint64_t seq = 1; seq <= 25; ++seq) {
        saved.push_back(sample_exchange(seq));
        append_to(store, meta, saved.back());
    }
    auto all = store.load("app00001", all_exchanges);
    check_meta(all.meta, meta);
    BOOST_TEST(all.meta.exchange_count == 25u);
    check_exchanges(all.exchanges, saved);
    BOOST_TEST(all.diagnostics.empty());
    for (std::size_t last : {0u, 1u, 3u, 24u, 25u, 26u, 1000u}) {
        BOOST_TEST_CONTEXT("last " << last) {
            auto tail = store.load("app00001", last);
            const std::size_t n = std::min<std::size_t>(last, saved.size());
            check_exchanges(tail.exchanges,
                            {saved.end() - static_cast<std::ptrdiff_t>(n), saved.end()});
            BOOST_TEST(tail.meta.exchange_count == 25u);
        }
    }
    const auto found = store.find("app00001");
    BOOST_TEST_REQUIRE(found.has_value());
    check_meta(*found, meta);
}

// append(id, ex): the store derives the metadata from its own state and ex alone
// (apply_exchange): the count is ex.seq, updated_at never goes back; a seq that does not
// follow is refused with storage_error, and nothing of it is stored.
template <store_factory F>
void append_derives_the_metadata() {
    F factory;
    auto store = factory.make();
    auto meta = sample_meta("der00001", 100);
    BOOST_TEST_REQUIRE(store.create(meta));
    exchange early = sample_exchange(1);
    early.timestamp = at(50); // before the session began (a clock set back)
    append_to(store, meta, early);
    BOOST_TEST(format_timestamp(meta.updated_at) == format_timestamp(at(100)));
    exchange late = sample_exchange(2);
    late.timestamp = at(300);
    append_to(store, meta, late);
    exchange skipped = sample_exchange(4);
    BOOST_CHECK_THROW(store.append(meta.id, skipped), storage_error);
    exchange repeated = sample_exchange(2, " again");
    BOOST_CHECK_THROW(store.append(meta.id, repeated), storage_error);
    store.close(meta.id);
    auto reader = factory.make();
    const auto found = reader.find("der00001");
    BOOST_TEST_REQUIRE(found.has_value());
    check_meta(*found, meta);
    const auto loaded = reader.load("der00001", all_exchanges);
    check_meta(loaded.meta, meta);
    check_exchanges(loaded.exchanges, {early, late});
}

template <store_factory F>
void list_sees_every_session() {
    F factory;
    auto store = factory.make();
    std::vector<session_meta> metas;
    for (int i = 0; i < 12; ++i) {
        auto meta = sample_meta("lst000" + std::string(i < 10 ? "0" : "") + std::to_string(i), i);
        if (i % 3 == 0)
            meta.extra = json::object{{"i", i}};
        BOOST_TEST_REQUIRE(store.create(meta));
        for (int k = 1; k <= i % 4; ++k)
            append_to(store, meta, sample_exchange(static_cast<std::uint64_t>(k)));
        store.close(meta.id);
        metas.push_back(meta);
    }
    auto listed = factory.make().list();
    BOOST_TEST_REQUIRE(listed.size() == metas.size());
    std::sort(listed.begin(), listed.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    for (std::size_t i = 0; i < metas.size(); ++i)
        check_meta(listed[i], metas[i]);
}

// update(m) persists m.title and m.extra, and nothing else of m.
template <store_factory F>
void update_persists_title_and_extra_only() {
    F factory;
    auto store = factory.make();
    auto meta = sample_meta("tit00001");
    BOOST_TEST_REQUIRE(store.create(meta));
    append_to(store, meta, sample_exchange(1));
    session_meta changed = meta;
    changed.title = unicode_payload();
    changed.extra = json::object{{"tags", json::array{"a", unicode_payload()}}, {"pinned", true}};
    changed.created_at = at(-1000); // not the store's to take from update()
    changed.updated_at = at(9999);
    changed.exchange_count = 77;
    changed.pinned = true;
    changed.forked_from = session_origin{"zyxw9876", 3}; // set at creation only
    store.update(changed);
    meta.title = changed.title;
    meta.extra = changed.extra;
    meta.pinned = true;
    append_to(store, meta, sample_exchange(2));
    store.close(meta.id);
    auto reader = factory.make();
    const auto found = reader.find("tit00001");
    BOOST_TEST_REQUIRE(found.has_value());
    check_meta(*found, meta);
    check_meta(reader.load("tit00001", 1).meta, meta);
    const auto listed = reader.list();
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    check_meta(listed[0], meta);
}

template <store_factory F>
void remove_deletes_everything() {
    F factory;
    auto store = factory.make();
    auto keep = sample_meta("keep0001");
    auto gone = sample_meta("gone0001");
    BOOST_TEST_REQUIRE(store.create(keep));
    append_to(store, keep, sample_exchange(1));
    BOOST_TEST_REQUIRE(store.create(gone));
    append_to(store, gone, sample_exchange(1));
    store.close(gone.id);
    store.remove("gone0001");
    BOOST_TEST(!store.find("gone0001").has_value());
    BOOST_CHECK_THROW(store.load("gone0001", all_exchanges), session_not_found);
    BOOST_CHECK_THROW(store.remove("gone0001"), session_not_found);
    const auto listed = factory.make().list();
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    BOOST_TEST(listed[0].id == "keep0001");
    BOOST_TEST(store.create(sample_meta("gone0001")));
}

template <store_factory F>
void one_writer_at_a_time() {
    F factory;
    auto first = factory.make();
    auto second = factory.make();
    auto meta = sample_meta("lock0001");
    BOOST_TEST_REQUIRE(first.create(meta));
    append_to(first, meta, sample_exchange(1));
    BOOST_CHECK_THROW(second.open("lock0001"), session_busy);
    BOOST_CHECK_THROW(second.remove("lock0001"), session_busy);
    BOOST_CHECK_THROW(second.append(meta.id, sample_exchange(2)), error);
    BOOST_CHECK_THROW(second.update(meta), error);
    BOOST_TEST(second.load("lock0001", all_exchanges).exchanges.size() == 1u);
    first.close("lock0001");
    check_meta(second.open("lock0001"), meta);
    append_to(second, meta, sample_exchange(2));
    BOOST_CHECK_THROW(first.open("lock0001"), session_busy);
    second.close("lock0001");
    second.close("lock0001");
    BOOST_TEST(first.load("lock0001", all_exchanges).exchanges.size() == 2u);
}

template <store_factory F>
void large_and_unicode_payloads() {
    F factory;
    auto store = factory.make();
    auto meta = sample_meta("big00001");
    meta.title = unicode_payload();
    meta.extra = json::object{{unicode_payload(), unicode_payload()}};
    BOOST_TEST_REQUIRE(store.create(meta));
    exchange ex = sample_exchange(1);
    ex.query = unicode_payload();
    ex.answer.clear();
    while (ex.answer.size() < (1u << 20))
        ex.answer += unicode_payload();
    ex.summary = unicode_payload();
    ex.model = "model-\xF0\x9F\xA4\x96";
    ex.duration_ms = 123456789;
    ex.tool_calls = json::array{json::object{{"name", "search"}, {"args", unicode_payload()}}, 7};
    ex.extra = json::object{{"nested", json::object{{"k", json::array{1, 2.5, nullptr, true}}}}};
    append_to(store, meta, ex);
    store.close(meta.id);
    auto loaded = factory.make().load("big00001", all_exchanges);
    check_meta(loaded.meta, meta);
    check_exchanges(loaded.exchanges, {ex});
}

template <store_factory F>
void manager_round_trip() {
    using manager = session_manager<store_of<F>, manual_clock, sequential_ids>;
    F factory;
    {
        manager m{factory.make()};
        m.start_new();
        m.set_extra(json::object{{"project", "dexter"}});
        BOOST_TEST(m.list_sessions().empty());
        m.save_exchange("first question", "first answer");
        m.clock().advance(std::chrono::seconds{5});
        m.save_exchange("second question", "second answer");
        m.set_extra(json::object{{"project", "dexter"}, {"done", true}});
        m.start_new();
        m.clock().advance(std::chrono::seconds{5});
        m.save_exchange("other session", "other answer");
    }
    manager again{factory.make(), manual_clock{}, sequential_ids{100}};
    const auto listed = again.list_sessions();
    BOOST_TEST_REQUIRE(listed.size() == 2u);
    BOOST_TEST(listed[0].id == "s0000002");
    BOOST_TEST(listed[1].id == "s0000001");
    BOOST_TEST(listed[1].title == "first question");
    BOOST_TEST(json::serialize(listed[1].extra) == R"({"project":"dexter","done":true})");
    BOOST_TEST(listed[0].extra.empty());
    const auto found = again.find_session("s0000001");
    BOOST_TEST_REQUIRE(found.has_value());
    check_meta(*found, listed[1]);
    const auto resumed = again.resume("s0000001");
    BOOST_TEST(resumed.meta.exchange_count == 2u);
    BOOST_TEST(again.history().recent_turns().size() == 4u);
    const auto third = again.save_exchange("third question", "third answer");
    BOOST_TEST(third.seq == 3u);
    if constexpr (keeps_trash<store_of<F>>)
        again.delete_session("s0000002"); // into the trash (change_contract.hpp checks it)
    else
        again.delete_session("s0000002", deletion::permanent);
    BOOST_TEST(again.list_sessions().size() == 1u);
    BOOST_TEST(!again.find_session("s0000002").has_value());
}

} // namespace contract

} // namespace dexter::sessions::testing

// The read side's cases (streaming, export, search, paging), the change side's
// (rename, pin, fork, import, trash, prune) and the text side's (UTF-8), registered below.
#include <dexter/sessions/testing/change_contract.hpp>
#include <dexter/sessions/testing/read_contract.hpp>
#include <dexter/sessions/testing/text_contract.hpp>

// Registers one case of the contract for every factory of `factories`.
#define DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(name)                                                \
    BOOST_AUTO_TEST_CASE_TEMPLATE(name, F, factories) {                                            \
        ::dexter::sessions::testing::contract::name<F>();                                          \
    }

/// Registers the storage contract, as Boost.Test suite `suite_name`, for each factory
/// type of the std::tuple given after it.
#define DEXTER_SESSIONS_STORAGE_CONTRACT(suite_name, ...)                                          \
    BOOST_AUTO_TEST_SUITE(suite_name)                                                              \
    using factories = __VA_ARGS__;                                                                 \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(create_then_find)                                        \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(duplicate_create_changes_nothing)                        \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(unknown_and_invalid_ids)                                 \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(append_load_and_counts)                                  \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(append_derives_the_metadata)                             \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(list_sees_every_session)                                 \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(update_persists_title_and_extra_only)                    \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(remove_deletes_everything)                               \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(one_writer_at_a_time)                                    \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(large_and_unicode_payloads)                              \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(manager_round_trip)                                      \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(streaming_read)                                          \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(export_round_trip)                                       \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(export_keeps_hostile_text)                               \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(search_matching_rule)                                    \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(search_order_and_limit)                                  \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(list_page_walks_every_session)                           \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(rename_and_pin_any_session)                              \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(fork_copies_a_prefix)                                    \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(import_round_trip)                                       \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(trash_and_restore)                                       \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(purge_by_age)                                            \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(prune_by_stored_time)                                    \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(create_whole_is_all_or_nothing)                          \
    DEXTER_SESSIONS_STORAGE_CONTRACT_CASE(text_that_is_not_utf8_is_refused)                        \
    BOOST_AUTO_TEST_SUITE_END()
