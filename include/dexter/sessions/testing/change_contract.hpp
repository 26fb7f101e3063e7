// SPDX-License-Identifier: BSL-1.0
// The change side of the storage contract: renaming and pinning any session, forking,
// importing an export, the trash (delete, restore, purge) and retention (prune), as a
// host sees them through session_manager. A store passes these with its own capabilities
// (creates_whole_sessions, keeps_trash in storage.hpp) or, where the manager has one,
// with its fallback; a store without a trash is checked to refuse a delete into it.
//
// storage_contract.hpp includes this header and DEXTER_SESSIONS_STORAGE_CONTRACT
// registers its cases with the others; include storage_contract.hpp, not this one.
#pragma once

#include <dexter/sessions/testing/read_contract.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/export.hpp>
#include <dexter/sessions/import.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/storage.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace dexter::sessions::testing {

/// The ids of `sessions`, sorted.
template <class Sessions>
std::vector<session_id> ids_of(const Sessions& sessions) {
    std::vector<session_id> ids;
    for (const auto& s : sessions) {
        if constexpr (requires { s.meta.id; })
            ids.push_back(s.meta.id);
        else
            ids.push_back(s.id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

/// `text` (an export) with every occurrence of `from` replaced by `to`.
inline std::string with_id(std::string text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

/// The export of `meta` in `format`, as a string.
template <class Manager>
std::string export_text(Manager& m, const session_meta& meta, export_format format) {
    std::ostringstream out;
    const auto result = export_session(m, meta, format, out);
    BOOST_TEST(result.diagnostics.empty());
    return out.str();
}

/// Saves a session of `n` exchanges (every third with all optional fields) at one
/// second apart from the manager's clock, and returns its metadata.
template <class Manager>
session_meta saved_session(Manager& m, const std::string& topic, int n) {
    m.start_new();
    for (int i = 1; i <= n; ++i) {
        m.clock().advance(std::chrono::seconds{1});
        if (i % 3 == 0)
            m.save_exchange(full_draft(topic + " question " + std::to_string(i),
                                       topic + " answer\n" + std::to_string(i), i));
        else
            m.save_exchange(topic + " question " + std::to_string(i),
                            topic + " answer " + std::to_string(i));
    }
    const session_meta meta = *m.current();
    m.close();
    return meta;
}

namespace contract {

template <store_factory F>
void rename_and_pin_any_session() {
    F factory;
    contract_manager<F> writer{factory.make()};
    const auto first = saved_session(writer, "alpha", 2);
    const auto second = saved_session(writer, "beta", 1);

    contract_manager<F> other{factory.make()};
    other.rename_session(first.id, "renamed — 名前");
    other.pin_session(first.id);
    {
        contract_manager<F> fresh{factory.make()};
        const auto found = fresh.find_session(first.id);
        BOOST_TEST_REQUIRE(found.has_value());
        BOOST_TEST(found->title == "renamed — 名前");
        BOOST_TEST(found->pinned);
        BOOST_TEST(found->exchange_count == 2u);
        BOOST_TEST(format_timestamp(found->updated_at) == format_timestamp(first.updated_at));
        const auto loaded = fresh.resume(first.id);
        BOOST_TEST(loaded.meta.pinned);
        BOOST_TEST(loaded.meta.title == "renamed — 名前");
        bool listed_pinned = false;
        for (const auto& s : fresh.list_sessions())
            if (s.id == first.id)
                listed_pinned = s.pinned;
        BOOST_TEST(listed_pinned);
        // While `fresh` holds it, another handle may not change it.
        BOOST_CHECK_THROW(other.rename_session(first.id, "not now"), session_busy);
        BOOST_CHECK_THROW(other.unpin_session(first.id), session_busy);
        // The holder itself may: through its current session.
        fresh.rename_session(first.id, "by the holder");
        BOOST_TEST(fresh.current()->title == "by the holder");
        fresh.unpin_session(first.id);
        BOOST_TEST(!fresh.current()->pinned);
        fresh.save_exchange("after the rename", "still the same session");
    }
    const auto after = other.find_session(first.id);
    BOOST_TEST_REQUIRE(after.has_value());
    BOOST_TEST(after->title == "by the holder");
    BOOST_TEST(!after->pinned);
    BOOST_TEST(after->exchange_count == 3u);
    const auto untouched = other.find_session(second.id);
    BOOST_TEST_REQUIRE(untouched.has_value());
    BOOST_TEST(untouched->title == second.title);
    BOOST_TEST(!untouched->pinned);

    BOOST_CHECK_THROW(other.rename_session("zzzz9999", "x"), session_not_found);
    BOOST_CHECK_THROW(other.pin_session("../etc/x"), invalid_session_id);
    BOOST_CHECK_THROW(other.rename_session(first.id, std::string("bad \xff")), invalid_input);
    BOOST_TEST(other.find_session(first.id)->title == "by the holder");
}

template <store_factory F>
void fork_copies_a_prefix() {
    F factory;
    contract_manager<F> writer{factory.make()};
    const auto source = saved_session(writer, "fork", 5);
    const auto source_exchanges = factory.make().load(source.id, all_exchanges).exchanges;
    BOOST_TEST_REQUIRE(source_exchanges.size() == 5u);

    // The source is held by a writer meanwhile: a fork reads without a lease.
    contract_manager<F> holder{factory.make()};
    holder.resume(source.id);

    contract_manager<F> m{factory.make()};
    m.clock().set(writer.clock().now() + std::chrono::hours{1});
    const auto fork = m.fork_session(source.id, 3);
    BOOST_TEST(fork.id != source.id);
    BOOST_TEST(fork.exchange_count == 3u);
    BOOST_TEST(fork.title == source.title);
    BOOST_TEST_REQUIRE(fork.forked_from.has_value());
    BOOST_TEST(fork.forked_from->id == source.id);
    BOOST_TEST(fork.forked_from->seq == 3u);
    BOOST_TEST(format_timestamp(fork.created_at) ==
               format_timestamp(std::chrono::floor<std::chrono::milliseconds>(m.clock().now())));
    BOOST_TEST(!m.current().has_value());

    contract_manager<F> reader{factory.make()};
    const auto found = reader.find_session(fork.id);
    BOOST_TEST_REQUIRE(found.has_value());
    check_meta(*found, fork);
    BOOST_TEST_REQUIRE(found->forked_from.has_value());
    BOOST_TEST((*found->forked_from == *fork.forked_from));
    const auto loaded = factory.make().load(fork.id, all_exchanges);
    BOOST_TEST_REQUIRE(loaded.meta.forked_from.has_value());
    BOOST_TEST(loaded.meta.forked_from->seq == 3u);
    BOOST_TEST(loaded.diagnostics.empty());
    check_exchanges(loaded.exchanges, {source_exchanges.begin(), source_exchanges.begin() + 3});
    bool listed = false;
    for (const auto& s : reader.list_sessions())
        if (s.id == fork.id)
            listed = s.forked_from.has_value() && s.forked_from->id == source.id;
    BOOST_TEST(listed);

    // The fork is a session of its own: it grows, the source does not.
    reader.resume(fork.id);
    reader.save_exchange("only in the fork", "yes");
    reader.close();
    BOOST_TEST(reader.find_session(source.id)->exchange_count == 5u);
    BOOST_TEST(reader.find_session(fork.id)->exchange_count == 4u);

    const auto whole = m.fork_session(source.id);
    BOOST_TEST(whole.exchange_count == 5u);
    BOOST_TEST(whole.forked_from->seq == 5u);
    check_exchanges(factory.make().load(whole.id, all_exchanges).exchanges, source_exchanges);

    const auto count = m.list_sessions().size();
    BOOST_CHECK_THROW(m.fork_session(source.id, 0), invalid_input);
    BOOST_CHECK_THROW(m.fork_session(source.id, 6), invalid_input);
    BOOST_CHECK_THROW(m.fork_session("zzzz9999"), session_not_found);
    BOOST_CHECK_THROW(m.fork_session("../../x"), invalid_session_id);
    BOOST_TEST(m.list_sessions().size() == count);
}

template <store_factory F>
void import_round_trip() {
    F factory;
    contract_manager<F> m{factory.make()};
    auto source = saved_session(m, "import", 4);
    m.rename_session(source.id, "imported \"title\"\n二");
    m.pin_session(source.id);
    source = *m.find_session(source.id);

    for (const auto format : {export_format::jsonl, export_format::json}) {
        BOOST_TEST_CONTEXT("format " << to_string(format)) {
            const std::string exported = export_text(m, source, format);
            std::istringstream in(exported);
            const auto imported = m.import_session(in);
            BOOST_TEST((imported.format == format));
            BOOST_TEST(imported.original_id == source.id);
            BOOST_TEST(imported.meta.id != source.id); // taken: a fresh id
            BOOST_TEST(imported.exchanges == 4u);
            BOOST_TEST(imported.diagnostics.empty());
            const auto found = m.find_session(imported.meta.id);
            BOOST_TEST_REQUIRE(found.has_value());
            check_meta(*found, imported.meta);
            BOOST_TEST(found->pinned);
            BOOST_TEST(found->title == source.title);
            BOOST_TEST(format_timestamp(found->created_at) == format_timestamp(source.created_at));
            BOOST_TEST(format_timestamp(found->updated_at) == format_timestamp(source.updated_at));
            // export -> import -> export: the same but for the id.
            BOOST_TEST(export_text(m, *found, format) ==
                       with_id(exported, source.id, imported.meta.id));
            check_exchanges(factory.make().load(found->id, all_exchanges).exchanges,
                            factory.make().load(source.id, all_exchanges).exchanges);
        }
    }

    // A free id is kept.
    const std::string exported = export_text(m, source, export_format::jsonl);
    m.delete_session(source.id, deletion::permanent);
    {
        std::istringstream in(exported);
        const auto imported = m.import_session(in);
        BOOST_TEST(imported.meta.id == source.id);
        BOOST_TEST(imported.original_id == source.id);
    }

    // A damaged line is reported and skipped; the rest is imported, seq numbers kept (a
    // store without creates_whole_sessions cannot keep the gap: append() refuses it, and
    // the import leaves nothing).
    if constexpr (!creates_whole_sessions<store_of<F>>) {
        auto lines = split_lines(exported);
        lines[2] = "{\"type\":\"exchange\",\"seq\":2,";
        std::string damaged;
        for (const auto& l : lines)
            damaged += l + "\n";
        std::istringstream in(damaged);
        const auto count = m.list_sessions().size();
        BOOST_CHECK_THROW(m.import_session(in), error);
        BOOST_TEST(m.list_sessions().size() == count);
    } else {
        auto lines = split_lines(exported);
        BOOST_TEST_REQUIRE(lines.size() == 5u);
        lines[2] = "{\"type\":\"exchange\",\"seq\":2,"; // cut
        std::string damaged;
        for (const auto& l : lines)
            damaged += l + "\n";
        std::istringstream in(damaged);
        const auto imported = m.import_session(in);
        BOOST_TEST(imported.exchanges == 3u);
        BOOST_TEST_REQUIRE(!imported.diagnostics.empty());
        BOOST_TEST(imported.diagnostics.front().line == 3u);
        BOOST_TEST(imported.meta.exchange_count == 4u);
        const auto loaded = factory.make().load(imported.meta.id, all_exchanges);
        BOOST_TEST_REQUIRE(loaded.exchanges.size() == 3u);
        BOOST_TEST(loaded.exchanges[1].seq == 3u);
    }

    // Refused whole: nothing is created.
    const auto before = ids_of(m.list_sessions());
    const std::vector<std::pair<std::string, bool>> refused = {
        {"", false},
        {"not json at all\n", false},
        {"{\"type\":\"session\",\"version\":999,\"id\":\"abcd1234\",\"created_at\":"
         "\"2026-01-01T00:00:00.000Z\",\"title\":\"\"}\n{\"type\":\"exchange\"}\n",
         true},
        {"{\"session\":{\"id\":\"abcd1234\",\"created_at\":\"2026-01-01T00:00:00.000Z\","
         "\"version\":2},\"exchanges\":[]}",
         true},
        {split_lines(exported).front() + "\n", false}, // a header, no exchange
        {split_lines(exported).front() + "\n{\"type\":\"exchange\",\"seq\":1}\n", false},
    };
    for (const auto& [text, newer] : refused) {
        BOOST_TEST_CONTEXT("import of " << text.substr(0, 60)) {
            std::istringstream in(text);
            if (newer)
                BOOST_CHECK_THROW(m.import_session(in), format_error);
            else
                BOOST_CHECK_THROW(m.import_session(in), invalid_input);
        }
    }
    BOOST_TEST(ids_of(m.list_sessions()) == before);
}

template <store_factory F>
void trash_and_restore() {
    F factory;
    contract_manager<F> m{factory.make()};
    const auto keep = saved_session(m, "kept", 1);
    const auto gone = saved_session(m, "needle", 3);
    const auto gone_exchanges = factory.make().load(gone.id, all_exchanges).exchanges;

    if constexpr (!keeps_trash<store_of<F>>) {
        BOOST_CHECK_THROW(m.delete_session(gone.id), error);
        BOOST_TEST(m.find_session(gone.id).has_value());
        BOOST_TEST(m.list_trash().empty());
        m.delete_session(gone.id, deletion::permanent);
        BOOST_TEST(!m.find_session(gone.id).has_value());
        BOOST_CHECK_THROW(m.restore_session(gone.id), session_not_found);
    } else {
        m.clock().advance(std::chrono::hours{2});
        const time_point deleted_at =
            std::chrono::floor<std::chrono::milliseconds>(m.clock().now());
        m.delete_session(gone.id);
        contract_manager<F> other{factory.make()};
        BOOST_TEST(!other.find_session(gone.id).has_value());
        BOOST_TEST(ids_of(other.list_sessions()) == std::vector<session_id>{keep.id});
        BOOST_CHECK_THROW(other.resume(gone.id), session_not_found);
        BOOST_TEST(other.search({"needle", 20}).hits.empty());
        BOOST_TEST(other.list_page({}).sessions.size() == 1u);
        const auto trash = other.list_trash();
        BOOST_TEST_REQUIRE(trash.size() == 1u);
        check_meta(trash.front().meta, gone);
        BOOST_TEST(format_timestamp(trash.front().deleted_at) == format_timestamp(deleted_at));

        const auto back = other.restore_session(gone.id.substr(0, 5));
        check_meta(back, gone);
        BOOST_TEST(other.list_trash().empty());
        BOOST_TEST(ids_of(other.list_sessions()) == ids_of(std::vector<session_meta>{gone, keep}));
        check_exchanges(factory.make().load(gone.id, all_exchanges).exchanges, gone_exchanges);
        BOOST_CHECK_THROW(other.restore_session(gone.id), session_not_found);
        BOOST_TEST(other.search({"needle", 20}).hits.size() >= 1u);

        // A session another writer holds is not moved.
        contract_manager<F> holder{factory.make()};
        holder.resume(gone.id);
        BOOST_CHECK_THROW(other.delete_session(gone.id), session_busy);
        BOOST_TEST(other.find_session(gone.id).has_value());
        BOOST_TEST(other.list_trash().empty());
        // The holder itself may: its current session ends.
        holder.delete_session(gone.id);
        BOOST_TEST(!holder.current().has_value());
        BOOST_TEST(other.list_trash().size() == 1u);
        other.restore_session(gone.id);

        // Permanent: gone, and not in the trash.
        other.delete_session(gone.id, deletion::permanent);
        BOOST_TEST(!other.find_session(gone.id).has_value());
        BOOST_TEST(other.list_trash().empty());
        BOOST_CHECK_THROW(other.restore_session(gone.id), session_not_found);
    }
    BOOST_CHECK_THROW(m.delete_session("zzzz9999"), session_not_found);
    BOOST_CHECK_THROW(m.delete_session("a/b"), invalid_session_id);
    BOOST_TEST(m.find_session(keep.id).has_value());
}

template <store_factory F>
void purge_by_age() {
    if constexpr (keeps_trash<store_of<F>>) {
        F factory;
        contract_manager<F> m{factory.make()};
        const auto old_one = saved_session(m, "old", 1);
        const auto new_one = saved_session(m, "new", 1);
        const auto live = saved_session(m, "live", 1);
        m.delete_session(old_one.id);
        m.clock().advance(std::chrono::hours{24 * 10});
        m.delete_session(new_one.id);
        m.clock().advance(std::chrono::hours{24});
        BOOST_TEST(m.list_trash().size() == 2u);
        BOOST_TEST(m.list_trash().front().meta.id == new_one.id); // newest deletion first

        const auto first = m.purge_trash(std::chrono::hours{24 * 5});
        BOOST_TEST(ids_of(first.purged) == std::vector<session_id>{old_one.id});
        BOOST_TEST(first.failed.empty());
        BOOST_TEST(ids_of(m.list_trash()) == std::vector<session_id>{new_one.id});
        BOOST_CHECK_THROW(m.restore_session(old_one.id), session_not_found);
        const auto all = m.purge_trash(std::chrono::milliseconds{0});
        BOOST_TEST(ids_of(all.purged) == std::vector<session_id>{new_one.id});
        BOOST_TEST(m.list_trash().empty());
        BOOST_TEST(ids_of(m.list_sessions()) == std::vector<session_id>{live.id});
    } else {
        F factory;
        contract_manager<F> m{factory.make()};
        BOOST_TEST(m.purge_trash(std::chrono::milliseconds{0}).purged.empty());
    }
}

template <store_factory F>
void prune_by_stored_time() {
    F factory;
    contract_manager<F> m{factory.make()};
    if constexpr (!keeps_trash<store_of<F>>) {
        saved_session(m, "old", 1);
        BOOST_CHECK_THROW(m.prune(std::chrono::hours{1}), error);
    } else {
        const auto old_a = saved_session(m, "old a", 1);
        const auto old_pinned = saved_session(m, "old pinned", 1);
        const auto old_held = saved_session(m, "old held", 1);
        const auto old_current = saved_session(m, "old current", 1);
        m.clock().advance(std::chrono::hours{24 * 40});
        const auto recent = saved_session(m, "recent", 1);
        m.clock().advance(std::chrono::hours{1});
        m.pin_session(old_pinned.id);
        m.resume(old_current.id);

        const auto dry = m.prune(std::chrono::hours{24 * 30}, true);
        BOOST_TEST(ids_of(dry.moved) == (ids_of(std::vector<session_meta>{old_a, old_held})));
        BOOST_TEST(dry.kept.empty());
        BOOST_TEST(m.list_trash().empty());
        BOOST_TEST(m.list_sessions().size() == 5u);

        contract_manager<F> holder{factory.make()};
        holder.resume(old_held.id);
        const auto real = m.prune(std::chrono::hours{24 * 30});
        BOOST_TEST(ids_of(real.moved) == std::vector<session_id>{old_a.id});
        BOOST_TEST_REQUIRE(real.kept.size() == 1u);
        BOOST_TEST(real.kept.front().first.id == old_held.id);
        holder.close();
        BOOST_TEST(ids_of(m.list_trash()) == std::vector<session_id>{old_a.id});
        BOOST_TEST(ids_of(m.list_sessions()) ==
                   (ids_of(std::vector<session_meta>{old_pinned, old_held, old_current, recent})));

        // Once no longer current, the session is a candidate too: a cutoff in the future
        // covers every unpinned session.
        m.close();
        const auto everything = m.prune(std::chrono::hours{-1}, true);
        BOOST_TEST(ids_of(everything.moved) ==
                   (ids_of(std::vector<session_meta>{old_held, old_current, recent})));
    }
}

template <store_factory F>
void create_whole_is_all_or_nothing() {
    if constexpr (creates_whole_sessions<store_of<F>>) {
        F factory;
        auto store = factory.make();
        session_meta m = sample_meta("whole001", 1);
        m.pinned = true;
        m.forked_from = session_origin{"abcd1234", 2};
        exchange a = sample_exchange(1, "a");
        exchange b = sample_exchange(3, "b");
        struct fill_failed {};
        BOOST_CHECK_THROW(store.create_whole(m,
                                             [&](session_sink& sink) {
                                                 sink.add(a, {});
                                                 throw fill_failed{};
                                             }),
                          fill_failed);
        BOOST_TEST(!factory.make().find("whole001").has_value());
        BOOST_CHECK_THROW(store.create_whole(m,
                                             [&](session_sink& sink) {
                                                 sink.add(b, {});
                                                 sink.add(a, {});
                                             }),
                          invalid_input);
        BOOST_TEST(!factory.make().find("whole001").has_value());

        BOOST_TEST(store.create_whole(m, [&](session_sink& sink) {
            sink.add(a, {});
            session_meta renamed = m;
            renamed.title = "renamed inside";
            sink.update(renamed);
            sink.add(b, {}); // seq 3 after 1: the gap is kept
        }));
        const auto found = factory.make().find("whole001");
        BOOST_TEST_REQUIRE(found.has_value());
        BOOST_TEST(found->exchange_count == 3u);
        BOOST_TEST(found->title == "renamed inside");
        BOOST_TEST(found->pinned);
        BOOST_TEST_REQUIRE(found->forked_from.has_value());
        BOOST_TEST((*found->forked_from == *m.forked_from));
        const auto loaded = factory.make().load("whole001", all_exchanges);
        check_exchanges(loaded.exchanges, {a, b});

        bool called = false;
        BOOST_TEST(!store.create_whole(m, [&](session_sink&) { called = true; }));
        BOOST_TEST(!called);
    }
}

} // namespace contract

} // namespace dexter::sessions::testing
