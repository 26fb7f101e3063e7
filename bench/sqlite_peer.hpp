// SPDX-License-Identifier: BSL-1.0
// SQLite as a peer in the benchmark table (docs/PERFORMANCE.md, "Why not SQLite"): the
// same workload stored as a careful host author would store it, measured in the same run
// as the file store. Built only when CMake finds SQLite3; otherwise built() is false and
// every other call throws.
//
// Schema: one row per session and one per exchange, in plain columns (not one JSON text
// column), so that listing, resume and load read what they need without a JSON parser:
//
//   sessions(id TEXT PRIMARY KEY, title, created_at, updated_at, exchange_count)
//     + an index on updated_at, for the listing newest first
//   exchanges(session_id, seq, timestamp, query, answer, summary, model, duration_ms,
//             PRIMARY KEY (session_id, seq))
//
// Times are milliseconds since the epoch. The database is in WAL mode; a save is one
// transaction (insert the exchange, update the session's row) through statements prepared
// once and reused; synchronous=OFF against the file store's save without sync and
// synchronous=FULL against its durable save.
#pragma once

#include <dexter/sessions/types.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace bench::sqlite {

namespace ds = dexter::sessions;

/// True when the benchmark was built with SQLite.
bool built();

/// What a row shows when SQLite is not built.
inline constexpr const char* not_built = "SQLite not built";

/// A database of sessions opened for writing, its statements prepared once.
class writer {
public:
    /// Opens (creating it and its tables if needed) the database at `path` in WAL mode,
    /// with synchronous=FULL when `full_sync`, else OFF. Throws std::runtime_error.
    writer(const std::filesystem::path& path, bool full_sync);
    ~writer();
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;

    /// Inserts the row of a new session (no exchanges yet).
    void add_session(const std::string& id, const std::string& title, ds::time_point created);
    /// Saves `ex` into session `id`: one transaction inserting the exchange and updating
    /// the session's updated_at and exchange_count.
    void save(const std::string& id, const ds::exchange& ex);
    /// Saves without a transaction of its own, inside begin() ... commit() (to fill a
    /// database quickly; not timed).
    void save_in_batch(const std::string& id, const ds::exchange& ex);
    void begin();
    void commit();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Writes a database of `sessions` sessions (ids bench_id(i)) of `exchanges` workload
/// exchanges each, unless `path` exists; with `with_rare_word`, the exchanges that
/// make_store() gives rare_word carry it here too. Not timed.
void make_db(const std::filesystem::path& path, std::size_t sessions, std::uint64_t exchanges,
             bool with_rare_word = false);

/// Opens the database read-only and returns session `id`'s metadata and its newest
/// `count` exchanges, oldest first: a host's resume.
ds::loaded_session resume(const std::filesystem::path& path, const std::string& id,
                          std::size_t count);

/// Every exchange of session `id`, in order, with its metadata: a full load.
ds::loaded_session load(const std::filesystem::path& path, const std::string& id);

/// Every session's metadata, newest updated_at first: a listing; with `limit`, only the
/// newest `limit` (a page: `LIMIT`, through the index on updated_at).
std::vector<ds::session_meta> list(const std::filesystem::path& path, std::size_t limit = 0);

/// How many exchanges hold `word` in their query, answer or summary, ASCII letters in
/// any case (`LIKE '%word%'` on each column): a search.
std::size_t search(const std::filesystem::path& path, const std::string& word);

/// Copies session `id` and all its exchanges to a new session `fork_id`, in one
/// transaction (synchronous=FULL when `full_sync`, else OFF): a fork.
void fork(const std::filesystem::path& path, const std::string& id, const std::string& fork_id,
          bool full_sync);

/// Deletes session `id` and its exchanges (not timed: it undoes a fork).
void remove(const std::filesystem::path& path, const std::string& id);

} // namespace bench::sqlite
