// SPDX-License-Identifier: BSL-1.0
// basic_jsonl_store's reads, declared (with what they throw and guarantee) in
// jsonl_store.hpp: finding and listing sessions through the index
// (detail/index_cache.hpp), loading a session (the whole history forward, or its last
// exchanges backward: detail/history_scan.hpp), streaming its records, and searching
// the histories (detail/history_search.hpp). None needs a lease. Included at the end
// of jsonl_store.hpp.
#pragma once

#include <dexter/sessions/jsonl_store.hpp>

#include <fcntl.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

template <detail::file_ops Ops>
std::optional<session_meta> basic_jsonl_store<Ops>::find(const session_id& id) {
    validate_session_id(id);
    refresh_index(false);
    index_.check_session(context(), id);
    const auto& unreadable = index_.unreadable();
    if (const auto bad = unreadable.find(id); bad != unreadable.end())
        detail::throw_open_failure("cannot read session '" + id + "'", history_path(id),
                                   bad->second);
    const auto* e = index_.entry(channel_, id);
    if (!e)
        return std::nullopt;
    if (e->newer_version)
        throw newer_format(id, e->newer_version);
    return e->meta;
}

template <detail::file_ops Ops>
std::vector<session_meta> basic_jsonl_store<Ops>::list() {
    if (!options_.list_checks_histories) {
        // A store object that has not read the index yet (a new process, say) moves the
        // sessions out of index.json as it decodes it, when it is current
        // (index_cache::read_partially()): the listing's memory is the list's own.
        std::vector<session_meta> out;
        detail::index_decoder::partial_read fast;
        fast.all = &out;
        if (index_.read_partially(context(), fast)) {
            for (const auto& id : fast.headerless)
                note_headerless(id);
            return out;
        }
    }
    refresh_index(false);
    if (options_.list_checks_histories)
        index_.check_all(context());
    else
        index_.write_if_dirty(context());
    note_unreadable();
    // Newest first, as session_manager::list_sessions() orders them (which then has
    // nothing left to sort): the entries are ordered, and only then copied.
    std::vector<const detail::index_entry*> listed;
    const auto& unreadable = index_.unreadable();
    if (const auto* ch = index_.sessions_of(channel_)) {
        listed.reserve(ch->sessions.size());
        for (const auto& [id, e] : ch->sessions) {
            if (e.newer_version || unreadable.count(id))
                continue;
            note_if_headerless(id, e);
            listed.push_back(&e);
        }
    }
    std::sort(listed.begin(), listed.end(), detail::newest_first);
    std::vector<session_meta> out;
    out.reserve(listed.size());
    for (const auto* e : listed)
        out.push_back(e->meta);
    return out;
}

template <detail::file_ops Ops>
session_page basic_jsonl_store<Ops>::list_page(const page_request& r) {
    // A store object that has not read the index yet (a new process, say) reads only the
    // beginning of index.json when it is current (index_cache::read_partially()).
    detail::index_decoder::partial_read fast;
    fast.request = &r;
    if (index_.read_partially(context(), fast)) {
        const bool more = fast.picked.size() > r.limit;
        fast.picked.resize(std::min(fast.picked.size(), r.limit));
        session_page page;
        page.sessions.reserve(fast.picked.size());
        for (auto& e : fast.picked) {
            note_if_headerless(e.meta.id, e);
            page.sessions.push_back(std::move(e.meta));
        }
        if (more && !page.sessions.empty())
            page.next = list_cursor{page.sessions.back().updated_at, page.sessions.back().id};
        return page;
    }
    refresh_index(false);
    std::vector<const detail::index_entry*> picked;
    bool more = false;
    // Chosen from the index, then its sessions checked against their histories; a page
    // with a session that changed is chosen again. A history that another program keeps
    // changing cannot hold the list forever: the last round's choice is served, each of
    // its entries read from its history moments before.
    constexpr int rounds = 4;
    for (int round = 1;; ++round) {
        picked.clear();
        const auto& unreadable = index_.unreadable();
        if (const auto* ch = index_.sessions_of(channel_))
            for (const auto& [id, e] : ch->sessions)
                if (!e.newer_version && !unreadable.count(id) && page_admits(e.meta, r) &&
                    (!r.after || listed_after(e.meta, *r.after)))
                    picked.push_back(&e);
        const std::size_t n = std::min(r.limit, picked.size());
        std::partial_sort(picked.begin(), picked.begin() + static_cast<std::ptrdiff_t>(n),
                          picked.end(), detail::newest_first);
        more = picked.size() > n;
        picked.resize(n);
        if (round == rounds)
            break;
        std::vector<session_id> ids;
        ids.reserve(n);
        for (const auto* e : picked)
            ids.push_back(e->meta.id);
        if (!index_.check_sessions(context(), ids))
            break; // nothing changed: the pointers still hold
    }
    session_page page;
    page.sessions.reserve(picked.size());
    for (const auto* e : picked) {
        note_if_headerless(e->meta.id, *e);
        page.sessions.push_back(e->meta);
    }
    if (more && !page.sessions.empty())
        page.next = list_cursor{page.sessions.back().updated_at, page.sessions.back().id};
    index_.write_if_dirty(context());
    note_unreadable();
    return page;
}

template <detail::file_ops Ops>
loaded_session basic_jsonl_store<Ops>::load(const session_id& id, std::size_t last) {
    validate_session_id(id);
    require_channel();
    detail::unique_fd dir = detail::open_session_dir(place(), id);
    struct stat opened {};
    detail::unique_fd file = detail::open_history(place(), dir.get(), id, O_RDONLY,
                                                  "cannot open session '" + id + "'", &opened);
    loaded_session out;
    const std::string path = history_path(id);
    bool have_header = true;
    if (last == all_exchanges) {
        detail::scan_state st;
        st.meta.id = id;
        // The size the open found: a hint for the room reserved (the file may grow).
        detail::scan_forward(
            ops_, file.get(), path, st, out.diagnostics, options_.max_record_bytes, true,
            detail::exchange_collector(out.exchanges, static_cast<std::uint64_t>(opened.st_size)));
        if (st.newer_version)
            throw newer_format(id, st.newer_version);
        have_header = st.have_header;
        out.meta = std::move(st.meta);
    } else if (auto held = writers_.find(id); held != writers_.end() && !held->second.poisoned) {
        // This object holds the session: no one else has written since it was opened
        // (and its tail repaired), and the writer knows where the complete lines end.
        writer& w = held->second;
        out.exchanges = detail::scan_backward(ops_, file.get(), path, w.size, w.lines, last,
                                              out.diagnostics, options_.max_record_bytes);
        out.meta = w.meta;
        // What open() repaired, told once to whoever reads the session back first
        // (a host shows resume()'s diagnostics, not the store's notes).
        for (auto& d : std::exchange(w.repairs, {}))
            out.diagnostics.push_back(std::move(d));
    } else {
        refresh_index(false);
        const auto st = read_state(id, file.get(), out.diagnostics);
        if (st.newer_version)
            throw newer_format(id, st.newer_version);
        out.exchanges = detail::scan_backward(ops_, file.get(), path, st.consumed, st.lines, last,
                                              out.diagnostics, options_.max_record_bytes);
        have_header = st.have_header;
        out.meta = st.meta;
    }
    if (!have_header)
        out.diagnostics.push_back(detail::missing_header_diagnostic());
    in_file_order(out.diagnostics);
    return out;
}

template <detail::file_ops Ops>
std::vector<diagnostic>
basic_jsonl_store<Ops>::for_each_record(const session_id& id, std::uint64_t from,
                                        std::uint64_t through, const record_visitor& visit) {
    validate_session_id(id);
    require_channel();
    detail::unique_fd dir = detail::open_session_dir(place(), id);
    detail::unique_fd file =
        detail::open_history(place(), dir.get(), id, O_RDONLY, "cannot open session '" + id + "'");
    const std::string path = history_path(id);
    const auto header =
        detail::read_history_header(ops_, file.get(), path, options_.max_record_bytes);
    if (header.version > detail::history_format_version)
        throw newer_format(id, header.version);
    std::vector<diagnostic> diags;
    if (from > through)
        return diags;
    detail::scan_state st;
    st.meta.id = id;
    detail::scan_forward(ops_, file.get(), path, st, diags, options_.max_record_bytes, true,
                         [&](exchange&& ex, std::string_view line) {
                             if (ex.seq > through)
                                 return false;
                             if (ex.seq < from)
                                 return true;
                             const bool as_written = detail::canonical_exchange_seq(line) == ex.seq;
                             return visit(std::move(ex), as_written ? line : std::string_view());
                         });
    if (!st.have_header)
        diags.push_back(detail::missing_header_diagnostic());
    in_file_order(diags);
    return diags;
}

template <detail::file_ops Ops>
search_result basic_jsonl_store<Ops>::search(const search_query& q) {
    check_search_query(q);
    const std::string escaped = detail::json_escaped(q.text);
    return search_sessions(
        list(), q,
        [&](const session_meta& m, hit_collector& hits, std::vector<session_diagnostic>& out) {
            std::vector<diagnostic> diags;
            try {
                detail::unique_fd dir = detail::open_session_dir(place(), m.id);
                detail::unique_fd file = detail::open_history(place(), dir.get(), m.id, O_RDONLY,
                                                              "cannot open session '" + m.id + "'");
                detail::search_history(ops_, file.get(), history_path(m.id), m, q.text, escaped,
                                       options_.max_record_bytes, q.limit, hits, diags);
            } catch (const session_not_found&) {
                return; // deleted since the listing
            } catch (const storage_error& e) {
                diags.push_back({0, 0, e.what()});
            }
            for (auto& d : diags)
                out.push_back({m.id, std::move(d)});
        });
}

} // namespace dexter::sessions
