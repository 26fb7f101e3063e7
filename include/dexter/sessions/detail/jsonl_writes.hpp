// SPDX-License-Identifier: BSL-1.0
// basic_jsonl_store's leases, declared (with what they throw and guarantee) in
// jsonl_store.hpp: creating a session (its directory and header, under changes.log's
// lock, then synced) and opening one for writing (its lease taken, a torn tail
// repaired, its state read: detail/session_lease.hpp, detail/quarantine.hpp).
// Included at the end of jsonl_store.hpp.
#pragma once

#include <dexter/sessions/jsonl_store.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace dexter::sessions {

template <detail::file_ops Ops>
template <bool CheckUtf8>
bool basic_jsonl_store<Ops>::create_session(const session_meta& m) {
    validate_session_id(m.id);
    require_channel();
    std::string header;
    // Encode first, then check: as one call's two arguments, the order of the two is
    // unspecified (clang took the view of the still empty buffer first).
    const bool header_utf8 = detail::encode_header<CheckUtf8>(header, m);
    detail::check_record(header, header_utf8, options_.max_record_bytes,
                         "the session header of '" + m.id + "'");
    detail::unique_fd dir, file;
    {
        change_lock lock(ops_, log_, channel_, m.id);
        if (ops_.mkdirat(channel_fd_.get(), m.id.c_str(), 0700) < 0) {
            if (errno == EEXIST)
                return false;
            detail::throw_errno("cannot create session '" + m.id + "'", session_path(m.id));
        }
        try {
            dir = detail::open_session_dir(place(), m.id);
            file.reset(ops_.openat(dir.get(), "history.jsonl",
                                   O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
            if (!file)
                detail::throw_errno("cannot create", history_path(m.id));
            if (ops_.flock(file.get(), LOCK_EX | LOCK_NB) < 0)
                detail::throw_errno("cannot lock new session '" + m.id + "'", history_path(m.id));
            if (const int e = detail::append_all(ops_, file.get(), header, 0))
                detail::throw_errno("cannot write the header of session '" + m.id + "'",
                                    history_path(m.id), e);
        } catch (...) {
            if (dir)
                ops_.unlinkat(dir.get(), "history.jsonl", 0);
            ops_.unlinkat(channel_fd_.get(), m.id.c_str(), AT_REMOVEDIR);
            throw;
        }
    }
    if ((options_.sync == durability::full && ops_.fdatasync(file.get()) < 0) ||
        ops_.fsync(dir.get()) < 0 || ops_.fsync(channel_fd_.get()) < 0) {
        const int e = errno;
        ops_.unlinkat(dir.get(), "history.jsonl", 0);
        ops_.unlinkat(channel_fd_.get(), m.id.c_str(), AT_REMOVEDIR);
        detail::throw_errno("cannot sync new session '" + m.id + "'", session_path(m.id), e);
    }
    writer w;
    w.dir = std::move(dir);
    w.file = std::move(file);
    w.size = header.size();
    w.lines = 1;
    w.meta = m;
    w.meta.exchange_count = 0;
    writers_.insert_or_assign(m.id, std::move(w));
    return true;
}

template <detail::file_ops Ops>
session_meta basic_jsonl_store<Ops>::open(const session_id& id) {
    validate_session_id(id);
    if (auto it = writers_.find(id); it != writers_.end()) {
        if (!it->second.poisoned)
            return it->second.meta;
        writers_.erase(it); // a failed write: start again from what the file holds
    }
    require_channel();
    writer w = detail::lease_session(place(), id, O_RDWR | O_APPEND,
                                     "cannot open session '" + id + "' for writing");
    const auto header = detail::read_history_header(ops_, w.file.get(), history_path(id),
                                                    options_.max_record_bytes);
    if (header.version > detail::history_format_version)
        throw newer_format(id, header.version); // before any repair: never touch it
    if (!header.present)
        throw storage_error(
            "session '" + id +
                "' is damaged: line 1 of its history is not a valid session header (the "
                "file was emptied, edited or cut by another program), so nothing is "
                "appended to it; it can still be read (see docs/FORMAT.md, \"Rules for "
                "readers\")",
            history_path(id));
    const auto repaired = quarantine().repair_tail(w.file.get(), log_, channel_, id,
                                                   history_path(id), options_.max_record_bytes);
    if (repaired)
        note("session '" + id + "': " + repaired->what, diagnostic_kind::tail_repaired);
    refresh_index(false);
    loaded_session state;
    const auto st = read_state(id, w.file.get(), state.diagnostics);
    if (st.newer_version)
        throw newer_format(id, st.newer_version);
    w.size = st.consumed;
    w.lines = st.lines;
    w.meta = st.meta;
    if (repaired)
        w.repairs.push_back(
            {st.lines + 1, repaired->cut, repaired->what, diagnostic_kind::tail_repaired});
    const session_meta meta = w.meta;
    writers_.insert_or_assign(id, std::move(w));
    return meta;
}

} // namespace dexter::sessions
