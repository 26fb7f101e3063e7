// SPDX-License-Identifier: BSL-1.0
// SQLite as a peer (sqlite_peer.hpp): the schema, the save, resume, load and listing a
// host would write with the SQLite C API, prepared statements reused.
#include "sqlite_peer.hpp"

#include "workload.hpp"

#include <algorithm>
#include <stdexcept>
#include <string_view>

#if DEXTER_BENCH_WITH_SQLITE
#include <sqlite3.h>
#endif

namespace bench::sqlite {

#if DEXTER_BENCH_WITH_SQLITE

namespace {

std::int64_t millis(ds::time_point t) {
    return t.time_since_epoch().count();
}

ds::time_point from_millis(std::int64_t ms) {
    return ds::time_point{std::chrono::milliseconds{ms}};
}

// A connection, closed on destruction.
class connection {
public:
    connection(const std::filesystem::path& path, bool read_only) {
        const int flags =
            read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        if (::sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) !=
            SQLITE_OK) {
            const std::string why = db_ ? ::sqlite3_errmsg(db_) : "out of memory";
            ::sqlite3_close(db_);
            throw std::runtime_error("sqlite: cannot open " + path.string() + ": " + why);
        }
    }
    ~connection() { ::sqlite3_close(db_); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    sqlite3* get() const { return db_; }

    void exec(const char* sql) {
        char* error = nullptr;
        if (::sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
            const std::string why = error ? error : "?";
            ::sqlite3_free(error);
            throw std::runtime_error(std::string("sqlite: ") + sql + ": " + why);
        }
    }

    [[noreturn]] void fail(const char* what) const {
        throw std::runtime_error(std::string("sqlite: ") + what + ": " + ::sqlite3_errmsg(db_));
    }

private:
    sqlite3* db_ = nullptr;
};

// A prepared statement, reset after each use, finalized on destruction.
class statement {
public:
    statement(connection& c, const char* sql) : c_(c) {
        if (::sqlite3_prepare_v3(c.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) !=
            SQLITE_OK)
            c.fail(sql);
    }
    ~statement() { ::sqlite3_finalize(s_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    void bind(int i, std::string_view v) {
        ::sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    void bind(int i, std::int64_t v) { ::sqlite3_bind_int64(s_, i, v); }
    void bind_null(int i) { ::sqlite3_bind_null(s_, i); }

    /// Steps once: true for a row, false when done.
    bool step() {
        const int rc = ::sqlite3_step(s_);
        if (rc == SQLITE_ROW)
            return true;
        if (rc != SQLITE_DONE)
            c_.fail("step");
        return false;
    }
    /// Runs a statement that returns no rows, then resets it.
    void run() {
        step();
        reset();
    }
    void reset() {
        ::sqlite3_reset(s_);
        ::sqlite3_clear_bindings(s_);
    }

    std::string text(int i) const {
        const auto* p = reinterpret_cast<const char*>(::sqlite3_column_text(s_, i));
        return p ? std::string(p, static_cast<std::size_t>(::sqlite3_column_bytes(s_, i)))
                 : std::string();
    }
    bool is_null(int i) const { return ::sqlite3_column_type(s_, i) == SQLITE_NULL; }
    std::int64_t integer(int i) const { return ::sqlite3_column_int64(s_, i); }

private:
    connection& c_;
    sqlite3_stmt* s_ = nullptr;
};

constexpr const char* schema = R"(
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    exchange_count INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions(updated_at);
CREATE TABLE IF NOT EXISTS exchanges(
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    summary TEXT,
    model TEXT,
    duration_ms INTEGER,
    PRIMARY KEY (session_id, seq));
)";

constexpr const char* exchange_columns =
    "seq, timestamp, query, answer, summary, model, duration_ms";

ds::exchange read_exchange(const statement& s, int first) {
    ds::exchange ex;
    ex.seq = static_cast<std::uint64_t>(s.integer(first));
    ex.timestamp = from_millis(s.integer(first + 1));
    ex.query = s.text(first + 2);
    ex.answer = s.text(first + 3);
    if (!s.is_null(first + 4))
        ex.summary = s.text(first + 4);
    if (!s.is_null(first + 5))
        ex.model = s.text(first + 5);
    if (!s.is_null(first + 6))
        ex.duration_ms = static_cast<std::uint64_t>(s.integer(first + 6));
    return ex;
}

ds::session_meta read_meta(const statement& s) {
    ds::session_meta m;
    m.id = s.text(0);
    m.title = s.text(1);
    m.created_at = from_millis(s.integer(2));
    m.updated_at = from_millis(s.integer(3));
    m.exchange_count = static_cast<std::uint64_t>(s.integer(4));
    return m;
}

constexpr const char* select_meta =
    "SELECT id, title, created_at, updated_at, exchange_count FROM sessions WHERE id = ?1";

// The metadata of session `id`; throws if it is absent.
ds::session_meta meta_of(connection& c, const std::string& id) {
    statement s(c, select_meta);
    s.bind(1, id);
    if (!s.step())
        throw std::runtime_error("sqlite: no session " + id);
    return read_meta(s);
}

} // namespace

struct writer::impl {
    connection c;
    statement insert_session, insert_exchange, update_session, begin_tx, commit_tx;

    impl(const std::filesystem::path& path, bool full_sync)
        : c(path, false),
          insert_session((c.exec("PRAGMA journal_mode=WAL"),
                          c.exec(full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF"),
                          c.exec(schema), c),
                         "INSERT INTO sessions(id, title, created_at, updated_at, exchange_count) "
                         "VALUES (?1, ?2, ?3, ?3, 0)"),
          insert_exchange(c,
                          "INSERT INTO exchanges(session_id, seq, timestamp, query, answer, "
                          "summary, model, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
          update_session(c, "UPDATE sessions SET updated_at = max(updated_at, ?2), "
                            "exchange_count = ?3 WHERE id = ?1"),
          begin_tx(c, "BEGIN"), commit_tx(c, "COMMIT") {}

    void save(const std::string& id, const ds::exchange& ex) {
        insert_exchange.bind(1, id);
        insert_exchange.bind(2, static_cast<std::int64_t>(ex.seq));
        insert_exchange.bind(3, millis(ex.timestamp));
        insert_exchange.bind(4, ex.query);
        insert_exchange.bind(5, ex.answer);
        if (ex.summary)
            insert_exchange.bind(6, *ex.summary);
        else
            insert_exchange.bind_null(6);
        if (ex.model)
            insert_exchange.bind(7, *ex.model);
        else
            insert_exchange.bind_null(7);
        if (ex.duration_ms)
            insert_exchange.bind(8, static_cast<std::int64_t>(*ex.duration_ms));
        else
            insert_exchange.bind_null(8);
        insert_exchange.run();
        update_session.bind(1, id);
        update_session.bind(2, millis(ex.timestamp));
        update_session.bind(3, static_cast<std::int64_t>(ex.seq));
        update_session.run();
    }
};

writer::writer(const std::filesystem::path& path, bool full_sync)
    : impl_(std::make_unique<impl>(path, full_sync)) {}

writer::~writer() = default;

void writer::add_session(const std::string& id, const std::string& title, ds::time_point created) {
    impl_->insert_session.bind(1, id);
    impl_->insert_session.bind(2, title);
    impl_->insert_session.bind(3, millis(created));
    impl_->insert_session.run();
}

void writer::save(const std::string& id, const ds::exchange& ex) {
    impl_->begin_tx.run();
    impl_->save(id, ex);
    impl_->commit_tx.run();
}

void writer::save_in_batch(const std::string& id, const ds::exchange& ex) {
    impl_->save(id, ex);
}

void writer::begin() {
    impl_->begin_tx.run();
}

void writer::commit() {
    impl_->commit_tx.run();
}

bool built() {
    return true;
}

void make_db(const std::filesystem::path& path, std::size_t sessions, std::uint64_t exchanges,
             bool with_rare_word) {
    if (std::filesystem::exists(path))
        return;
    writer w(path, false);
    const ds::time_point created{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}};
    w.begin();
    std::uint64_t in_batch = 0;
    for (std::size_t i = 0; i < sessions; ++i) {
        const auto id = bench_id(i);
        w.add_session(id, "bench session " + id, created);
        for (std::uint64_t s = 1; s <= exchanges; ++s) {
            w.save_in_batch(
                id, make_exchange(s, with_rare_word && carries_rare_word(i * exchanges + s - 1)));
            if (++in_batch == 1000) {
                w.commit();
                w.begin();
                in_batch = 0;
            }
        }
    }
    w.commit();
}

ds::loaded_session resume(const std::filesystem::path& path, const std::string& id,
                          std::size_t count) {
    connection c(path, true);
    ds::loaded_session out;
    out.meta = meta_of(c, id);
    statement s(c, (std::string("SELECT ") + exchange_columns +
                    " FROM exchanges WHERE session_id = ?1 ORDER BY seq DESC LIMIT ?2")
                       .c_str());
    s.bind(1, id);
    s.bind(2, static_cast<std::int64_t>(count));
    while (s.step())
        out.exchanges.push_back(read_exchange(s, 0));
    std::reverse(out.exchanges.begin(), out.exchanges.end());
    return out;
}

ds::loaded_session load(const std::filesystem::path& path, const std::string& id) {
    connection c(path, true);
    ds::loaded_session out;
    out.meta = meta_of(c, id);
    out.exchanges.reserve(out.meta.exchange_count);
    statement s(c, (std::string("SELECT ") + exchange_columns +
                    " FROM exchanges WHERE session_id = ?1 ORDER BY seq")
                       .c_str());
    s.bind(1, id);
    while (s.step())
        out.exchanges.push_back(read_exchange(s, 0));
    return out;
}

std::vector<ds::session_meta> list(const std::filesystem::path& path, std::size_t limit) {
    connection c(path, true);
    const std::string sql = "SELECT id, title, created_at, updated_at, exchange_count FROM "
                            "sessions ORDER BY updated_at DESC" +
                            (limit ? " LIMIT " + std::to_string(limit) : std::string());
    statement s(c, sql.c_str());
    std::vector<ds::session_meta> out;
    while (s.step())
        out.push_back(read_meta(s));
    return out;
}

std::size_t search(const std::filesystem::path& path, const std::string& word) {
    connection c(path, true);
    statement s(c, "SELECT count(*) FROM exchanges WHERE query LIKE ?1 OR answer LIKE ?1 OR "
                   "summary LIKE ?1");
    s.bind(1, "%" + word + "%");
    return s.step() ? static_cast<std::size_t>(s.integer(0)) : 0;
}

void fork(const std::filesystem::path& path, const std::string& id, const std::string& fork_id,
          bool full_sync) {
    connection c(path, false);
    c.exec(full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
    statement begin(c, "BEGIN"), commit(c, "COMMIT");
    statement copy_session(c, "INSERT INTO sessions(id, title, created_at, updated_at, "
                              "exchange_count) SELECT ?2, title, created_at, updated_at, "
                              "exchange_count FROM sessions WHERE id = ?1");
    statement copy_exchanges(c, (std::string("INSERT INTO exchanges(session_id, ") +
                                 exchange_columns + ") SELECT ?2, " + exchange_columns +
                                 " FROM exchanges WHERE session_id = ?1 ORDER BY seq")
                                    .c_str());
    begin.run();
    for (statement* s : {&copy_session, &copy_exchanges}) {
        s->bind(1, id);
        s->bind(2, fork_id);
        s->run();
    }
    commit.run();
}

void remove(const std::filesystem::path& path, const std::string& id) {
    connection c(path, false);
    c.exec("PRAGMA synchronous=OFF");
    statement begin(c, "BEGIN"), commit(c, "COMMIT");
    statement drop_exchanges(c, "DELETE FROM exchanges WHERE session_id = ?1");
    statement drop_session(c, "DELETE FROM sessions WHERE id = ?1");
    begin.run();
    for (statement* s : {&drop_exchanges, &drop_session}) {
        s->bind(1, id);
        s->run();
    }
    commit.run();
    c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

#else // no SQLite

struct writer::impl {};

writer::writer(const std::filesystem::path&, bool) {
    throw std::runtime_error(not_built);
}
writer::~writer() = default;
void writer::add_session(const std::string&, const std::string&, ds::time_point) {}
void writer::save(const std::string&, const ds::exchange&) {}
void writer::save_in_batch(const std::string&, const ds::exchange&) {}
void writer::begin() {}
void writer::commit() {}

bool built() {
    return false;
}

void make_db(const std::filesystem::path&, std::size_t, std::uint64_t, bool) {
    throw std::runtime_error(not_built);
}
std::size_t search(const std::filesystem::path&, const std::string&) {
    throw std::runtime_error(not_built);
}
void fork(const std::filesystem::path&, const std::string&, const std::string&, bool) {
    throw std::runtime_error(not_built);
}
void remove(const std::filesystem::path&, const std::string&) {
    throw std::runtime_error(not_built);
}
ds::loaded_session resume(const std::filesystem::path&, const std::string&, std::size_t) {
    throw std::runtime_error(not_built);
}
ds::loaded_session load(const std::filesystem::path&, const std::string&) {
    throw std::runtime_error(not_built);
}
std::vector<ds::session_meta> list(const std::filesystem::path&, std::size_t) {
    throw std::runtime_error(not_built);
}

#endif

} // namespace bench::sqlite
