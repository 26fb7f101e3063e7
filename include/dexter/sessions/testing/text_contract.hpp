// SPDX-License-Identifier: BSL-1.0
// The text side of the storage contract: text that is not valid UTF-8 is refused with
// invalid_input before anything is written, in every field a store keeps (query,
// answer, summary, model, tool_calls and extra of an exchange; title and extra of a
// session), whether it comes through session_manager (which checks it once and hands
// it to a store that skips_checked_utf8 with `checked_utf8`, storage.hpp) or straight
// to the store's create(), append() and update().
//
// "Nothing written" is checked through the store (its sessions and exchanges as it
// lists and loads them) and, when the factory can show it, byte for byte: a factory
// with a member `std::string stored_state()` returns everything its store keeps (the
// files of a directory, the rows of a channel), and that must not change either.
//
// storage_contract.hpp includes this header and DEXTER_SESSIONS_STORAGE_CONTRACT
// registers its case with the others; include storage_contract.hpp, not this one.
#pragma once

#include <dexter/sessions/testing/read_contract.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/storage.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::testing {

/// Byte sequences that are not UTF-8: a stray continuation byte, a cut sequence, an
/// overlong encoding, a UTF-16 surrogate, a code point past U+10FFFF, a byte never used.
inline constexpr std::array<std::string_view, 6> invalid_utf8_samples = {
    "\x80", "\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF"};

/// `text` with invalid_utf8_samples[k] (cycling) put in its middle, between valid text.
inline std::string with_invalid_utf8(std::string_view text, std::size_t k) {
    std::string s(text.substr(0, text.size() / 2));
    s += invalid_utf8_samples[k % invalid_utf8_samples.size()];
    s += "\xC3\xA9 ok";
    s += text.substr(text.size() / 2);
    return s;
}

/// One way of spoiling an exchange or a session's metadata with text that is not UTF-8.
struct text_spoiler {
    std::string field;
    std::function<void(exchange&, std::size_t)> spoil_exchange; // null: not an exchange field
    std::function<void(session_meta&, std::size_t)> spoil_meta; // null: not a session field
};

/// Every field of an exchange and a session that holds text, each with a way to spoil it.
inline std::vector<text_spoiler> text_spoilers() {
    std::vector<text_spoiler> out;
    auto on_exchange = [&](std::string field, std::function<void(exchange&, std::size_t)> f) {
        out.push_back({std::move(field), std::move(f), nullptr});
    };
    auto on_meta = [&](std::string field, std::function<void(session_meta&, std::size_t)> f) {
        out.push_back({std::move(field), nullptr, std::move(f)});
    };
    on_exchange("query",
                [](exchange& ex, std::size_t k) { ex.query = with_invalid_utf8(ex.query, k); });
    on_exchange("answer",
                [](exchange& ex, std::size_t k) { ex.answer = with_invalid_utf8(ex.answer, k); });
    on_exchange("summary", [](exchange& ex, std::size_t k) {
        ex.summary = with_invalid_utf8("a summary", k);
    });
    on_exchange("model",
                [](exchange& ex, std::size_t k) { ex.model = with_invalid_utf8("model-x", k); });
    on_exchange("tool_calls", [](exchange& ex, std::size_t k) {
        ex.tool_calls = json::array{json::object{
            {"name", "grep"}, {"args", json::array{"-n", with_invalid_utf8("arg", k)}}}};
    });
    on_exchange("extra value", [](exchange& ex, std::size_t k) {
        ex.extra = json::object{{"note", with_invalid_utf8("value", k)}};
    });
    on_exchange("extra key", [](exchange& ex, std::size_t k) {
        ex.extra = json::object{{with_invalid_utf8("key", k), 1}};
    });
    on_meta("title",
            [](session_meta& m, std::size_t k) { m.title = with_invalid_utf8("a title", k); });
    on_meta("session extra value", [](session_meta& m, std::size_t k) {
        m.extra = json::object{{"project", json::array{with_invalid_utf8("value", k)}}};
    });
    on_meta("session extra key", [](session_meta& m, std::size_t k) {
        m.extra = json::object{{with_invalid_utf8("key", k), true}};
    });
    return out;
}

/// True for the invalid_input that refuses text that is not UTF-8, saving nothing.
inline bool refuses_text(const invalid_input& e) {
    const std::string_view what = e.what();
    return what.find("not valid UTF-8") != std::string_view::npos &&
           what.find("nothing was saved") != std::string_view::npos;
}

/// What a factory's store holds, as far as the contract can see it: through the store
/// (every session's metadata and exchanges), then byte for byte when the factory has a
/// stored_state() (see above).
template <store_factory F>
std::string observed_state(F& factory) {
    auto store = factory.make();
    std::vector<session_meta> sessions = store.list();
    std::sort(sessions.begin(), sessions.end(),
              [](const session_meta& a, const session_meta& b) { return a.id < b.id; });
    std::string out;
    for (const auto& m : sessions) {
        const auto loaded = store.load(m.id, all_exchanges);
        out += m.id + " " + m.title + " " + std::to_string(loaded.meta.exchange_count) + " " +
               format_timestamp(loaded.meta.updated_at) + " " + json::serialize(loaded.meta.extra) +
               "\n";
        for (const auto& ex : loaded.exchanges)
            out += "  " + json::serialize(json::value_from(ex)) + "\n";
    }
    if constexpr (requires { factory.stored_state(); })
        out += "--- stored bytes\n" + factory.stored_state();
    return out;
}

namespace contract {

template <store_factory F>
void text_that_is_not_utf8_is_refused() {
    F factory;
    contract_manager<F> m{factory.make()};
    m.start_new();
    m.save_exchange(full_draft("first question", "first answer", 1));
    const session_id stored = m.current()->id;

    // A second store object writes a session of its own, for the direct calls.
    auto direct = factory.make();
    session_meta direct_meta = sample_meta("text0001", 3);
    BOOST_TEST_REQUIRE(direct.create(direct_meta));
    append_to(direct, direct_meta, sample_exchange(1));

    // A new session that no exchange has stored yet: its first save creates it.
    contract_manager<F> fresh{factory.make(), manual_clock{}, sequential_ids{500}};
    fresh.start_new();

    const std::string before = observed_state(factory);
    const auto spoilers = text_spoilers();
    for (std::size_t k = 0; k < spoilers.size() * invalid_utf8_samples.size(); ++k) {
        const text_spoiler& s = spoilers[k % spoilers.size()];
        const std::size_t sample = k / spoilers.size();
        BOOST_TEST_CONTEXT("field " << s.field << ", sample " << sample) {
            if (s.spoil_exchange) {
                exchange ex = full_draft("question", "answer", 2);
                s.spoil_exchange(ex, sample);
                BOOST_CHECK_EXCEPTION(m.save_exchange(ex), invalid_input, refuses_text);
                BOOST_CHECK_EXCEPTION(fresh.save_exchange(ex), invalid_input, refuses_text);
                ex.seq = 2;
                ex.timestamp = at(100);
                BOOST_CHECK_EXCEPTION(direct.append(direct_meta.id, ex), invalid_input,
                                      refuses_text);
            } else {
                session_meta spoilt = sample_meta("text0002", 4);
                s.spoil_meta(spoilt, sample);
                for (contract_manager<F>* through : {&m, &fresh}) {
                    if (s.field == "title")
                        BOOST_CHECK_EXCEPTION(through->set_title(spoilt.title), invalid_input,
                                              refuses_text);
                    else
                        BOOST_CHECK_EXCEPTION(through->set_extra(spoilt.extra), invalid_input,
                                              refuses_text);
                }
                BOOST_CHECK_EXCEPTION(direct.create(spoilt), invalid_input, refuses_text);
                session_meta changed = direct_meta;
                s.spoil_meta(changed, sample);
                BOOST_CHECK_EXCEPTION(direct.update(changed), invalid_input, refuses_text);
            }
        }
    }
    BOOST_TEST(observed_state(factory) == before);
    BOOST_TEST(!direct.find("text0002").has_value());

    // What was refused left every writer as it was: valid text still saves, in order.
    BOOST_TEST(m.save_exchange("second question", "second answer").seq == 2u);
    BOOST_TEST(m.current()->title == "first question");
    BOOST_TEST(m.current()->extra.empty());
    BOOST_TEST(fresh.save_exchange("fresh question", "fresh answer").seq == 1u);
    BOOST_TEST(fresh.current()->title == "fresh question");
    append_to(direct, direct_meta, sample_exchange(2));
    check_meta(*factory.make().find(direct_meta.id), direct_meta);
    const auto loaded = factory.make().load(stored, all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 2u);
    BOOST_TEST(loaded.exchanges[0].query == "first question");
    BOOST_TEST(loaded.exchanges[1].query == "second question");
}

} // namespace contract

} // namespace dexter::sessions::testing
