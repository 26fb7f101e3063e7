// SPDX-License-Identifier: BSL-1.0
// basic_jsonl_store's verify and repair, declared (with what they throw and guarantee)
// in jsonl_store.hpp: the store's side (sessions, index, leftovers, quarantine); the
// history's side is detail/history_verify.hpp and detail/history_repair.hpp. Included
// at the end of jsonl_store.hpp.
#pragma once

#include <dexter/sessions/detail/history_repair.hpp>
#include <dexter/sessions/detail/history_verify.hpp>
#include <dexter/sessions/jsonl_store.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace dexter::sessions {

template <detail::file_ops Ops>
void basic_jsonl_store<Ops>::verify_session(const session_id& id, const detail::index_data& index,
                                            verify_report& r) {
    r.id = id;
    detail::unique_fd dir = detail::open_session_dir(place(), id);
    struct stat sb {};
    detail::unique_fd file = detail::open_history(place(), dir.get(), id, O_RDONLY,
                                                  "cannot open session '" + id + "'", &sb);
    struct stat left {};
    if (ops_.fstatat(dir.get(), detail::repair_file_name, &left, AT_SYMLINK_NOFOLLOW) == 0)
        r.leftovers.push_back(session_path(id) + "/" + detail::repair_file_name);
    detail::scan_state st;
    st.meta.id = id;
    detail::verify_history(ops_, file.get(), history_path(id), options_.max_record_bytes, r, st);
    if (r.newer_version)
        return;
    if (const auto ch = index.channels.find(channel_); ch != index.channels.end())
        if (const auto e = ch->second.sessions.find(id); e != ch->second.sessions.end())
            detail::compare_index_entry(e->second, st, sb, r);
}

template <detail::file_ops Ops>
verify_report basic_jsonl_store<Ops>::verify(const session_id& id) {
    validate_session_id(id);
    require_channel();
    std::vector<std::string> store_problems; // verify_all() reports them, not a session
    const auto index = detail::read_index_as_is(ops_, root_fd_.get(), root_.string(),
                                                options_.max_index_bytes, store_problems);
    verify_report r;
    verify_session(id, index, r);
    return r;
}

template <detail::file_ops Ops>
store_verify_report basic_jsonl_store<Ops>::verify_all() {
    require_channel();
    store_verify_report out;
    const auto index = detail::read_index_as_is(ops_, root_fd_.get(), root_.string(),
                                                options_.max_index_bytes, out.problems);
    auto names = detail::list_dir(ops_, channel_fd_.get(), false, channel_path());
    std::sort(names.begin(), names.end());
    std::vector<std::string> present;
    for (const auto& name : names) {
        if (is_valid_session_id(name)) {
            verify_report r;
            try {
                verify_session(name, index, r);
            } catch (const session_not_found&) {
                continue; // removed since the listing
            } catch (const storage_error& e) {
                r.unreadable = e.what();
            }
            present.push_back(name);
            out.sessions.push_back(std::move(r));
        } else if (name.starts_with(".deleted-") || name.starts_with(".probe-")) {
            out.leftovers.push_back(channel_path() + "/" + name);
        } else if (name.starts_with(".new-") && !build_in_progress(name)) {
            out.leftovers.push_back(channel_path() + "/" + name);
        }
    }
    if (const auto ch = index.channels.find(channel_); ch != index.channels.end())
        for (const auto& [id, e] : ch->second.sessions)
            if (!std::binary_search(present.begin(), present.end(), id))
                out.problems.push_back("the index lists session '" + id + "', whose history " +
                                       history_path(id) + " is gone");
    // index.json.tmp is not reported: it may be an index being written (under index.lock,
    // which a read-only verify does not take), and the next index write removes a leftover.
    struct stat sb {};
    detail::unique_fd q(
        ops_.openat(root_fd_.get(), "quarantine", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (q) {
        for (const auto& name :
             detail::list_dir(ops_, q.get(), false, root_.string() + "/quarantine"))
            if (ops_.fstatat(q.get(), name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) == 0) {
                ++out.quarantine_files;
                out.quarantine_bytes += static_cast<std::uint64_t>(sb.st_size);
            }
    } else if (errno != ENOENT) {
        detail::throw_errno("cannot open", root_.string() + "/quarantine");
    }
    return out;
}

template <detail::file_ops Ops>
bool basic_jsonl_store<Ops>::build_in_progress(const std::string& name) {
    // A `.new-*` build holds flock(LOCK_EX) on its history while it is written; a free
    // lock is a build a crash left (the next listing removes it).
    detail::unique_fd dir(
        ops_.openat(channel_fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!dir)
        return false;
    int err = 0;
    detail::unique_fd file =
        detail::open_regular(ops_, dir.get(), "history.jsonl", O_RDONLY | O_CLOEXEC, 0, err);
    if (!file)
        return false;
    if (ops_.flock(file.get(), LOCK_SH | LOCK_NB) < 0)
        return errno == EWOULDBLOCK;
    ops_.flock(file.get(), LOCK_UN);
    return false;
}

template <detail::file_ops Ops>
repair_report basic_jsonl_store<Ops>::repair(const session_id& id) {
    validate_session_id(id);
    require_channel();
    if (writers_.count(id))
        throw storage_error("session '" + id +
                                "' is open for writing by this store object; close it before "
                                "repairing it",
                            history_path(id));
    repair_report out;
    out.id = id;
    writer w = detail::lease_session(place(), id, O_RDONLY,
                                     "cannot open session '" + id + "' to repair it");
    const std::string path = history_path(id);
    const auto header =
        detail::read_history_header(ops_, w.file.get(), path, options_.max_record_bytes);
    if (header.version > detail::history_format_version)
        throw newer_format(id, header.version);
    if (!header.present)
        throw storage_error("session '" + id +
                                "' has no valid session header on line 1, and a repair does not "
                                "invent one: it is left as it is (its exchanges can still be "
                                "read and exported)",
                            path);
    verify_report found;
    {
        std::vector<std::string> store_problems;
        const auto index = detail::read_index_as_is(ops_, root_fd_.get(), root_.string(),
                                                    options_.max_index_bytes, store_problems);
        struct stat sb {};
        if (ops_.fstat(w.file.get(), &sb) < 0)
            detail::throw_errno("cannot stat", path);
        detail::scan_state st;
        st.meta.id = id;
        detail::verify_history(ops_, w.file.get(), path, options_.max_record_bytes, found, st);
        if (const auto ch = index.channels.find(channel_); ch != index.channels.end())
            if (const auto e = ch->second.sessions.find(id); e != ch->second.sessions.end())
                detail::compare_index_entry(e->second, st, sb, found);
    }
    std::vector<std::string> done;
    if (detail::remove_repair_leftover(ops_, w.dir.get(), session_path(id)))
        done.push_back("removed the copy an interrupted repair left");
    if (!found.damaged.empty() || found.tail || !found.gaps.empty()) {
        auto bin = quarantine();
        const std::string dir = session_path(id);
        const detail::repair_context<Ops> c{
            ops_,
            bin,
            log_,
            channel_,
            id,
            w.dir.get(),
            w.file.get(),
            dir,
            options_.max_record_bytes,
            std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now())};
        detail::rewrite_history(c, out);
        if (out.quarantined_lines)
            done.push_back("moved " + std::to_string(out.quarantined_lines) +
                           (out.quarantined_lines == 1 ? " line" : " lines") + " to quarantine");
        if (!out.gaps_recorded.empty())
            done.push_back("recorded " + std::to_string(out.gaps_recorded.size()) +
                           (out.gaps_recorded.size() == 1 ? " gap" : " gaps") + " in seq");
    }
    if (out.rewritten || !found.index_mismatch.empty()) {
        // The entry is rebuilt from the history as it now is.
        refresh_index(false);
        struct stat sb {};
        detail::unique_fd now = detail::open_history(place(), w.dir.get(), id, O_RDONLY,
                                                     "cannot open session '" + id + "'", &sb);
        detail::scan_state st;
        st.meta.id = id;
        std::vector<diagnostic> ignored;
        detail::scan_forward(ops_, now.get(), path, st, ignored, options_.max_record_bytes, false,
                             [](exchange&&) {});
        index_.correct(channel_, id, st, sb);
        refresh_after_change("the repair of session '" + id + "'");
        done.push_back("rebuilt its index entry");
    }
    out.needed = !done.empty();
    if (!out.needed) {
        out.what = "session '" + id + "' needs no repair";
    } else {
        out.what = "session '" + id + "': ";
        for (std::size_t i = 0; i < done.size(); ++i)
            out.what += (i ? ", " : "") + done[i];
    }
    return out;
}

template <detail::file_ops Ops>
std::vector<repair_report> basic_jsonl_store<Ops>::repair_all() {
    require_channel();
    // The store's own damage first: a damaged index is moved to quarantine and rebuilt,
    // entries without a history dropped, leftovers of deletions and builds removed.
    refresh_index(true);
    index_.check_all(context());
    std::vector<repair_report> out;
    auto names = detail::list_dir(ops_, channel_fd_.get(), true, channel_path());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        if (!is_valid_session_id(name))
            continue;
        try {
            auto r = repair(name);
            if (r.needed)
                out.push_back(std::move(r));
        } catch (const session_not_found&) {
            // removed since the listing
        } catch (const error& e) {
            repair_report r;
            r.id = name;
            r.needed = true;
            r.error = e.what();
            out.push_back(std::move(r));
        }
    }
    return out;
}

} // namespace dexter::sessions
