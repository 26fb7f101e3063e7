// SPDX-License-Identifier: BSL-1.0
// jsonl_store: the crash-safe file-backed storage policy (format v1, docs/FORMAT.md).
//
//   <root>/index.json                  listing cache, derived, may be lost at any time
//   <root>/changes.log                 one line "<channel>/<id>" per change: tells
//                                      readers which index entries to refresh
//   <root>/index.lock                  serialises index rewrites
//   <root>/quarantine/                 suspect bytes, moved aside, never deleted
//   <root>/<channel>/<id>/history.jsonl  the session: the source of truth, append-only
//   <root>/trash/<channel>/<id>-<ms>/history.jsonl  a trashed session (detail/trash.hpp)
//
// Member bodies by concern, included at the end: detail/jsonl_writes.hpp (create, open),
// detail/jsonl_reads.hpp (find, list, load, search), detail/jsonl_changes.hpp (remove,
// whole sessions, fork, the trash), detail/jsonl_verify.hpp (verify, repair).
//
// Saving an exchange, in order (docs/FORMAT.md, "Write protocol"):
//   1. serialise the whole record, newline included; check size limit and UTF-8
//   2. under a shared lock on changes.log: append "<channel>/<id>\n" to it, then the
//      record to history.jsonl in one write() (a failed write is cut back off)
//   3. fdatasync(history.jsonl) unless durability is off; a failure poisons the handle
// A writer holds flock(LOCK_EX) on history.jsonl while the session is open: one writer
// per session, freed by the kernel when the process dies. Nothing on the save path
// replaces or rewrites a file, so a save costs the same in a store of 10,000 sessions.
//
// This header holds the storage primitives; the parts they use live in detail/:
// record_codec.hpp and history_scan.hpp (records, and reading them from a file),
// change_log.hpp (changes.log and its lock), index_cache.hpp (the listing cache, kept
// true to the history files) and index_file.hpp (index.json on disk), session_lease.hpp
// (a session's files, the writer's lease and its writes), quarantine.hpp (quarantine/,
// torn tails), session_builder.hpp (create_whole), session_fork.hpp (fork), trash.hpp (the trash),
// posix.hpp (the seam).
#pragma once

#include <dexter/sessions/detail/change_log.hpp>
#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/history_search.hpp>
#include <dexter/sessions/detail/index_cache.hpp>
#include <dexter/sessions/detail/jsonl_index.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/quarantine.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/detail/session_builder.hpp>
#include <dexter/sessions/detail/session_fork.hpp>
#include <dexter/sessions/detail/session_lease.hpp>
#include <dexter/sessions/detail/trash.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>
#include <dexter/sessions/verify.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

/// How far a saved exchange is guaranteed to survive.
enum class durability {
    /// fdatasync before save_exchange returns: survives a crash of the process and a
    /// power loss (default).
    full,
    /// No sync: survives a crash or kill of the process (the data is in the kernel's
    /// page cache), but not a power loss or kernel crash. Much faster.
    process_crash,
};

/// Options of a jsonl_store.
struct jsonl_options {
    /// Whether a save waits for fdatasync (see durability).
    durability sync = durability::full;
    /// Largest record, newline included. Larger ones are refused on write, and skipped
    /// (without being read into memory whole) on read.
    std::size_t max_record_bytes = 16u << 20;
    /// Largest index.json read. The index is a cache (about 300 bytes a session): a
    /// larger file is treated as damaged, moved to quarantine and rebuilt, so that the
    /// memory a list takes never follows a hostile or broken file.
    std::size_t max_index_bytes = 64u << 20;
    /// Whether list() also checks every session's history file against its index entry
    /// (one fstatat each), to notice a history changed in place by a program that does
    /// not write through this library (an editor, `echo >>`, a truncation, `rm`). Off, a
    /// list costs no system call per session; such a change is then noticed by the next
    /// find, resume or load of that session, by list_page() for the sessions of the page
    /// it returns, and by verify (docs/FORMAT.md, "Behind its back").
    bool list_checks_histories = false;
};

/// The file store. `Ops` is the system-call seam (detail::posix_ops, or a type
/// derived from it that satisfies detail::file_ops; tests inject faults through it). A store object
/// is not thread-safe: use one per thread (they may share a root), or guard it. Any number of store
/// objects, in any number of processes, may use one root at once; each session has one writer at a
/// time (flock).
template <detail::file_ops Ops = detail::posix_ops>
class basic_jsonl_store {
public:
    /// Opens (creating if needed) the store at `root` for sessions of `channel`. A root
    /// the store creates is made 0700, with any missing parents (also 0700), and each
    /// new directory and the one it was made in are synced. `root` itself may be a
    /// symbolic link (it is followed); nothing beneath it is.
    /// Throws invalid_channel for a bad channel name, storage_error if the root cannot
    /// be created or opened. A read-only store can still list and load.
    explicit basic_jsonl_store(std::filesystem::path root, std::string channel = "cli",
                               jsonl_options options = {}, Ops ops = {})
        : root_(std::move(root)), channel_(std::move(channel)), options_(options),
          ops_(std::move(ops)) {
        validate_channel(channel_);
        root_fd_ = detail::open_store_root(ops_, root_);
        boot_id_ = detail::read_boot_id(ops_);
        if (ops_.mkdirat(root_fd_.get(), channel_.c_str(), 0700) == 0) {
            if (ops_.fsync(root_fd_.get()) < 0) // the new directory's name must be durable
                detail::throw_errno("cannot sync the session store", root_.string());
        } else if (errno != EEXIST) {
            if (errno != EROFS && errno != EACCES && errno != EPERM)
                detail::throw_errno("cannot create the channel directory", channel_path());
            channel_errno_ = errno; // a read-only store: it lists and loads what exists
        }
        channel_fd_.reset(
            ops_.openat(root_fd_.get(), channel_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!channel_fd_ && errno != ENOENT)
            detail::throw_errno("cannot open the channel directory (it must be a real "
                                "directory, not a symbolic link)",
                                channel_path());
        if (auto refused = log_.open(ops_, root_fd_.get(), root_.string()))
            note(std::move(*refused));
        struct statfs fs {};
        if (ops_.fstatfs(root_fd_.get(), &fs) == 0 && fs.f_type == 0x6969) // NFS_SUPER_MAGIC
            note("the store is on NFS, where O_APPEND and flock() are unreliable: two "
                 "machines writing one session can corrupt it");
    }

    basic_jsonl_store(basic_jsonl_store&&) noexcept = default;
    basic_jsonl_store& operator=(basic_jsonl_store&&) noexcept = default;

    // --- the storage policy (see storage.hpp) ---------------------------------------

    /// Throws invalid_session_id, invalid_input (a header over the record limit or not
    /// UTF-8), storage_error; on throw the session's directory is removed again.
    bool create(const session_meta& m) { return create_session<true>(m); }
    /// create() of metadata whose text was checked already (skips_checked_utf8): the
    /// header is encoded without validating its text again.
    bool create(const session_meta& m, checked_utf8_t) { return create_session<false>(m); }

    /// Also repairs a torn tail (moved to quarantine, reported by take_diagnostics() and
    /// by the next load() of the session through this object).
    /// Opening a session this object already holds returns its metadata as it is.
    /// Throws invalid_session_id, session_not_found, session_busy (with the holder's
    /// pid when /proc/locks tells it), format_error (a newer format: the file is left
    /// untouched), storage_error (among others for a history without a valid header on
    /// line 1: it is damaged, and nothing is appended to it; it still loads).
    session_meta open(const session_id& id);

    /// Throws invalid_session_id, invalid_input (over the record limit, not UTF-8:
    /// nothing written), storage_error (not open here, a seq that does not follow, a
    /// failed write, which is cut back off). If fdatasync fails, it throws storage_error
    /// and the record may or may not be on disk: this object then refuses every append
    /// and update of the session until it is closed and opened again.
    void append(const session_id& id, const exchange& ex) { append_exchange<true>(id, ex); }
    /// append() of an exchange whose text was checked already (skips_checked_utf8): the
    /// record is encoded without validating its text again.
    void append(const session_id& id, const exchange& ex, checked_utf8_t) {
        append_exchange<false>(id, ex);
    }

    /// Appends a `meta` record holding m.title, m.extra and m.pinned (nothing else of m
    /// is stored). Throws as append() does.
    void update(const session_meta& m) {
        writer& w = open_writer(m.id);
        record_.clear();
        const bool record_utf8 = detail::encode_meta(record_, m);
        detail::check_record(record_, record_utf8, options_.max_record_bytes,
                             "the new metadata of session '" + m.id + "'");
        write_record(m.id, w, "the new metadata");
        w.meta.title = m.title;
        w.meta.extra = m.extra;
        w.meta.pinned = m.pinned;
    }

    /// Releases the lease (the flock) taken by create() or open().
    void close(const session_id& id) noexcept { writers_.erase(id); }

    /// From the index, checked against the history file (one fstatat; a changed file is
    /// read again). Throws invalid_session_id, format_error (the session is in a newer
    /// format: resuming it would fail), storage_error (among others: the session exists
    /// but cannot be read, e.g. Permission denied).
    std::optional<session_meta> find(const session_id& id);

    /// Every session of this store's channel, from the index, brought up to date with
    /// changes.log (every change made through this library, by any process) and with the
    /// channel directory (sessions added or removed by other programs), and written back
    /// when it changed (a failure to write it is reported by take_diagnostics(), not
    /// thrown). No system call per session, unless jsonl_options::list_checks_histories
    /// asks for a check of every history file. Left out, and reported by
    /// take_diagnostics(): sessions in a newer format, and sessions that cannot be read.
    /// A session without a valid header is listed and reported. Throws storage_error (a
    /// directory could not be listed: nothing is concluded from a failed listing).
    std::vector<session_meta> list();

    /// One page of list() (storage.hpp, pages_sessions; query.hpp, page_of()), newest
    /// first, chosen from the index, and each session on it checked against its history
    /// file (one fstatat each: a history changed, emptied or removed by another program
    /// is read again, and the page chosen again), so that what a page shows is what the
    /// histories hold. Only the page's entries are copied out. Throws as list() does.
    session_page list_page(const page_request& r);

    /// Needs no lease and changes no file. Damaged lines are skipped and reported in
    /// the result's diagnostics, never thrown. Throws invalid_session_id,
    /// session_not_found, format_error (a newer format), storage_error (a read failed).
    loaded_session load(const session_id& id, std::size_t last = all_exchanges);

    /// Streams the exchanges with from <= seq <= through (storage.hpp, streams_exchanges):
    /// reads the history forward in fixed chunks, decoding one line at a time, so that
    /// memory stays flat however long the session; exchanges before `from` are read and
    /// checked, not handed over. Reports what it skips as load() does (a torn tail only
    /// when the read reaches it). Needs no lease and changes no file. Throws as load()
    /// does, format_error before visiting anything, and what visit throws.
    std::vector<diagnostic> for_each_exchange(const session_id& id, std::uint64_t from,
                                              std::uint64_t through,
                                              const exchange_visitor& visit) {
        return for_each_record(id, from, through, [&](exchange&& ex, std::string_view) {
            return visit(std::move(ex));
        });
    }

    /// As for_each_exchange(), with each exchange's line (storage.hpp, streams_records)
    /// when it is in the form this library writes (its canonical beginning and seq, read
    /// without repair); empty otherwise.
    std::vector<diagnostic> for_each_record(const session_id& id, std::uint64_t from,
                                            std::uint64_t through, const record_visitor& visit);

    /// Searches the sessions of this store's channel (storage.hpp, searches_text): the
    /// listing (list()) gives the sessions and titles; each history is then read forward
    /// in fixed chunks, newest-updated session first, one at a time, and only the lines
    /// whose raw bytes may hold the text are decoded (detail/history_search.hpp). Stops
    /// early once no older session can hold a newer hit. A session deleted meanwhile is
    /// skipped; one that cannot be read, and the damaged lines decoded, are reported in
    /// the result. Throws invalid_input (the text), and what list() throws.
    search_result search(const search_query& q);

    /// Allowed while this object holds the session. Throws invalid_session_id,
    /// session_not_found, session_busy, storage_error; on throw the session is still
    /// there (a crash midway leaves a `.deleted-*` directory that a later store object
    /// removes).
    void remove(const session_id& id);

    // --- whole sessions and the trash (storage.hpp) -------------------------------------

    /// Builds the session in a `.new-*` directory of the channel and renames it into
    /// place (detail/session_builder.hpp): no reader sees a part of it, and a crash
    /// leaves no part of it under any id. Returns false, without calling fill, when
    /// `<channel>/<id>` exists. Throws invalid_session_id, what fill and the sink throw
    /// (invalid_input among others), session_exists (the id was taken meanwhile),
    /// storage_error; on throw nothing of the session remains. The session is left closed.
    bool create_whole(const session_meta& m, const session_filler& fill);

    /// Creates session fork.id holding exchanges 1..through of session `source`
    /// (storage.hpp, forks_sessions), built aside and renamed into place as create_whole()
    /// builds a session, from the source's history read forward without a lease: lines
    /// this library wrote are copied as they are (detail/session_fork.hpp). Sets
    /// fork.exchange_count, fork.updated_at and fork.pinned (false); the index takes the
    /// fork's entry without reading its history again. Returns false, without writing,
    /// when fork.id is taken. Throws invalid_session_id, session_not_found (no source),
    /// format_error (the source is in a newer format), error (no exchange of the source
    /// could be read), session_exists (fork.id was taken meanwhile), invalid_input,
    /// storage_error; on throw nothing of the fork remains. The fork is left closed.
    bool fork(const session_id& source, std::uint64_t through, session_meta& fork);

    /// Moves each session of `ids` to `<root>/trash/<channel>/<id>-<ms>` by one rename
    /// (storage.hpp, keeps_trash), under its lease (this object's, when it holds the
    /// session; the lease then ends). With stale_before, a session is read under its lease
    /// and left when it is pinned or was updated at or after stale_before. A failure of
    /// one session is its outcome's error (session_busy, session_not_found,
    /// invalid_session_id, storage_error), never thrown. The directories are synced, and
    /// the index written, once for the whole batch.
    std::vector<trash_outcome> trash(std::span<const session_id> ids, time_point deleted_at,
                                     const std::optional<time_point>& stale_before);

    /// Moves the most recently trashed session `id` back to `<channel>/<id>` by one
    /// rename, and returns its metadata. Throws invalid_session_id, session_not_found
    /// (not in the trash), session_exists (a live session has that id: nothing is
    /// moved), storage_error (nothing moved; or, when the metadata cannot be read after
    /// the move, the session is live again).
    session_meta restore(const session_id& id);

    /// Every trashed session of this store's channel, each read forward from its history
    /// (not from the index); deleted_at comes from the entry's name. A trashed session
    /// that cannot be read is left out and reported by take_diagnostics(). Removes what
    /// interrupted purges left. Throws storage_error (the trash cannot be listed).
    std::vector<trashed_session> list_trash();

    /// Deletes the trashed session `id` trashed at `deleted_at` (to the millisecond), for
    /// good: renamed to a `.purging-*` name, then removed (what a crash leaves of it is
    /// removed by a later list_trash()). Throws invalid_session_id, session_not_found,
    /// storage_error (nothing was deleted).
    void purge(const session_id& id, time_point deleted_at);

    // --- verify and repair (storage.hpp, verifies_sessions and repairs_sessions) -------

    /// Reads session `id`'s history whole, streamed (detail/history_verify.hpp), and its
    /// index entry as index.json holds it, and reports every problem (verify.hpp). Takes
    /// no lock and writes nothing: it works on a read-only store and beside a writer.
    /// Throws invalid_session_id, session_not_found, storage_error (the history cannot be
    /// opened or read).
    verify_report verify(const session_id& id);

    /// verify() of every session of this store's channel (one that cannot be read has
    /// its report's `unreadable` set), with the store's problems (a damaged index.json,
    /// an index entry without its history), the leftovers of interrupted operations
    /// (`.deleted-*`, `.new-*` whose build is not running, a `history.jsonl.repair`) and the size
    /// of the quarantine. Read-only, as verify(). Throws storage_error (the channel or the
    /// quarantine cannot be listed).
    store_verify_report verify_all();

    /// Repairs session `id` under its lease (docs/FORMAT.md, "Verify and repair"): every
    /// line verify() reports as damaged is copied to quarantine, byte for byte, and a
    /// clean copy, with a gap record where exchanges are missing, is written to
    /// `history.jsonl.repair`, synced, renamed over the history, and the directory synced;
    /// then the index entry is rebuilt. A kill at any instant leaves the old history or the
    /// new one. A session that needs nothing is not rewritten (`needed` false). Throws
    /// invalid_session_id, session_not_found, session_busy, format_error (a newer format:
    /// left untouched), storage_error (a history without a valid header, which is never
    /// rewritten; a read or write that failed: the history is then as it was).
    repair_report repair(const session_id& id);

    /// Rebuilds a damaged index and removes what interrupted operations left, then
    /// repair() of each session of the channel; returns a report for each session that
    /// needed a repair, or failed one (its `error` set: the others go on). Throws
    /// storage_error (the channel cannot be listed).
    std::vector<repair_report> repair_all();

    // --- beyond the policy ------------------------------------------------------------

    const std::filesystem::path& root() const noexcept { return root_; }
    const std::string& channel() const noexcept { return channel_; }
    const jsonl_options& options() const noexcept { return options_; }
    /// The history file of session `id` (which need not exist).
    std::string history_path(const session_id& id) const {
        return session_path(id) + "/history.jsonl";
    }

    /// Store-level events since the last call (an index rebuilt or quarantined, a torn
    /// tail repaired, a store on NFS), oldest first. Per-line problems of a session are
    /// in loaded_session::diagnostics instead.
    std::vector<diagnostic> take_diagnostics() { return std::exchange(notes_, {}); }

    /// Throws storage_error, naming the path, unless sessions can be created and saved
    /// here. Call it before taking user input, so that a read-only store is reported
    /// before anything is lost.
    void check_writable() {
        require_channel();
        log_.require_writable(ops_);
        const std::string probe = ".probe-" + std::to_string(ops_.getpid());
        if (ops_.mkdirat(channel_fd_.get(), probe.c_str(), 0700) < 0 && errno != EEXIST)
            detail::throw_errno("the session store is read-only", channel_path());
        ops_.unlinkat(channel_fd_.get(), probe.c_str(), AT_REMOVEDIR);
    }

    /// The system-call seam (tests reach their fault injector through it).
    Ops& ops() noexcept { return ops_; }

private:
    using writer = detail::session_writer;
    using change_lock = detail::change_lock<Ops>;

    std::string channel_path() const { return root_.string() + "/" + channel_; }

    // Diagnostics in the order of the file, each once (a line can be reported by two
    // passes over it).
    static void in_file_order(std::vector<diagnostic>& diags) {
        std::stable_sort(diags.begin(), diags.end(), [](const diagnostic& a, const diagnostic& b) {
            return a.offset < b.offset;
        });
        diags.erase(std::unique(diags.begin(), diags.end()), diags.end());
    }
    std::string session_path(const session_id& id) const { return channel_path() + "/" + id; }

    // A store-level note for take_diagnostics(). One already waiting is not repeated, so
    // that a host that lists often and never takes them does not collect copies.
    void note(std::string what, diagnostic_kind kind = diagnostic_kind::store_note) {
        detail::note_once(notes_, std::move(what), kind);
    }

    void require_channel() {
        if (channel_fd_)
            return;
        channel_fd_.reset(
            ops_.openat(root_fd_.get(), channel_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!channel_fd_) {
            if (errno == ENOENT && channel_errno_) // the real cause: it could not be made
                detail::throw_errno("cannot create the channel directory", channel_path(),
                                    channel_errno_);
            detail::throw_errno("cannot open the channel directory", channel_path());
        }
    }

    format_error newer_format(const session_id& id, std::uint64_t version) const {
        return format_error(
            "session '" + id + "' is in history format version " + std::to_string(version) +
            ", newer than this library reads (" + std::to_string(detail::history_format_version) +
            "); it was left untouched: use a newer dexter-sessions (" + history_path(id) + ")");
    }

    // Where this store's sessions are, for one call (session_lease.hpp).
    detail::session_place<Ops> place() { return {ops_, channel_fd_.get(), root_, channel_path()}; }

    writer& open_writer(const session_id& id) {
        validate_session_id(id); // before the id goes into any message or path
        auto it = writers_.find(id);
        if (it == writers_.end())
            throw detail::not_open_for_writing(id, history_path(id));
        if (it->second.poisoned)
            throw storage_error("an earlier write to session '" + id +
                                    "' failed and left the file in doubt (not synced to disk, "
                                    "or a partial record that could not be cut off); reopen "
                                    "the session before saving more",
                                history_path(id), EIO);
        return it->second;
    }

    // Appends record_ to the open session: steps 2 and 3 of the write protocol.
    template <bool CheckUtf8>
    bool create_session(const session_meta& m);

    template <bool CheckUtf8>
    void append_exchange(const session_id& id, const exchange& ex) {
        writer& w = open_writer(id);
        if (ex.seq != w.meta.exchange_count + 1)
            throw detail::seq_does_not_follow(id, ex.seq, w.meta.exchange_count, history_path(id));
        record_.clear();
        const bool record_utf8 = detail::encode_exchange<CheckUtf8>(record_, ex);
        detail::check_record(record_, record_utf8, options_.max_record_bytes,
                             "exchange " + std::to_string(ex.seq) + " of session '" + id + "'");
        write_record(id, w, "exchange " + std::to_string(ex.seq));
        apply_exchange(w.meta, ex);
    }

    void write_record(const session_id& id, writer& w, const std::string& what) {
        detail::append_record(place(), log_, channel_, id, w, record_,
                              options_.sync == durability::full, what);
    }

    // --- verify ---------------------------------------------------------------------

    // verify() of session `id` into r, comparing with `index` as read from index.json.
    void verify_session(const session_id& id, const detail::index_data& index, verify_report& r);
    // Whether `.new-*` directory `name` of the channel is a build in progress (its lock held).
    bool build_in_progress(const std::string& name);

    // --- the trash ----------------------------------------------------------------

    detail::channel_trash<Ops> trash_bin() { return {ops_, root_fd_.get(), root_, channel_}; }

    // trash() for one session (valid id, channel open), called holding LOCK_EX on
    // changes.log with its change recorded: "" when it was moved, else why it was left.
    // Throws as remove() does.
    std::string trash_one(detail::channel_trash<Ops>& bin, const session_id& id,
                          time_point deleted_at, const std::optional<time_point>& stale_before);

    // After a change this object made: the index brought up to date and written; a
    // failure is a note (the change is made).
    void refresh_after_change(const std::string& what) {
        try {
            refresh_index(true);
        } catch (const storage_error& e) {
            note("after " + what + ": " + e.what());
        }
    }

    // --- the index and the quarantine ---------------------------------------------

    // What the index needs of this store, for one call.
    detail::index_context<Ops> context() {
        return {ops_,
                root_fd_.get(),
                root_,
                channel_fd_.get(),
                channel_,
                log_,
                boot_id_,
                options_.max_record_bytes,
                options_.max_index_bytes,
                notes_};
    }

    detail::quarantine<Ops> quarantine() { return {ops_, root_fd_.get(), root_.string()}; }

    void refresh_index(bool write_back) { index_.refresh(context(), write_back); }

    // The notes of a listing: each session that cannot be read, left out of it.
    void note_unreadable() {
        for (const auto& [id, e] : index_.unreadable())
            note("session '" + id + "' cannot be read (" + history_path(id) + ": " +
                 detail::describe_errno(e) + "); it is left out of the list");
    }

    // The note of a listing for a listed session whose line 1 is not a header.
    void note_if_headerless(const session_id& id, const detail::index_entry& e) {
        if (e.no_header)
            note_headerless(id);
    }
    void note_headerless(const session_id& id) {
        note("session '" + id + "' is damaged: line 1 of " + history_path(id) +
             " is not a valid session header (its title and start are not known; it can be "
             "read, not continued)");
    }

    // Metadata of the session in `fd` as of its last complete line (index_cache::read_state).
    detail::scan_state read_state(const session_id& id, int fd, std::vector<diagnostic>& diags) {
        return index_.read_state(context(), id, fd, history_path(id), diags);
    }

    std::filesystem::path root_;
    std::string channel_;
    jsonl_options options_;
    [[no_unique_address]] Ops ops_;
    detail::unique_fd root_fd_;
    detail::unique_fd channel_fd_;
    detail::change_log<Ops> log_;
    int channel_errno_ = 0; ///< why the channel directory could not be created; 0: it could
    std::string boot_id_;
    std::map<session_id, writer> writers_;
    detail::index_cache<Ops> index_;
    std::vector<diagnostic> notes_;
    std::string record_;
};

/// The file store with the real system calls.
using jsonl_store = basic_jsonl_store<>;

static_assert(session_storage<jsonl_store> && streams_exchanges<jsonl_store> &&
              streams_records<jsonl_store> && searches_text<jsonl_store> &&
              pages_sessions<jsonl_store> && creates_whole_sessions<jsonl_store> &&
              keeps_trash<jsonl_store> && verifies_sessions<jsonl_store> &&
              repairs_sessions<jsonl_store>);

} // namespace dexter::sessions

#include <dexter/sessions/detail/jsonl_changes.hpp>
#include <dexter/sessions/detail/jsonl_reads.hpp>
#include <dexter/sessions/detail/jsonl_verify.hpp>
#include <dexter/sessions/detail/jsonl_writes.hpp>
