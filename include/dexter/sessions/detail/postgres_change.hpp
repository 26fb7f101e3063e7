// SPDX-License-Identifier: BSL-1.0
// The PostgreSQL store's whole-session writer (storage.hpp, creates_whole_sessions): the
// session_sink that postgres_store::create_whole() hands to its filler. It runs inside
// the transaction that create_whole() opened after inserting the session's row, and
// sends the exchanges in batches (one statement per pg_whole_batch_rows records or
// pg_whole_batch_bytes of them), so a fork of a long session costs a few hundred round
// trips, not one per exchange. Nothing is visible to any other connection before the
// transaction commits; a rollback, a lost connection or a crashed server leaves nothing.
#pragma once

#include <dexter/sessions/detail/postgres_connection.hpp>
#include <dexter/sessions/detail/postgres_sql.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// Most records a create_whole() batch sends in one statement.
inline constexpr std::size_t pg_whole_batch_rows = 500;
/// Most bytes of records a create_whole() batch sends in one statement (a batch holds at
/// least one record, however large).
inline constexpr std::size_t pg_whole_batch_bytes = 4u << 20;

/// The sink of one create_whole(): checks each exchange as append() does (seq order,
/// UTF-8, the record limit), keeps the session's metadata as apply_exchange() derives it,
/// and inserts the records in batches on `conn`, inside the caller's transaction.
class pg_whole_sink final : public session_sink {
public:
    /// `meta`: the session as create_whole() inserted it (exchange_count 0).
    pg_whole_sink(pg_connection& conn, const std::string& channel, session_meta meta,
                  std::size_t max_record_bytes)
        : conn_(conn), channel_(channel), meta_(std::move(meta)), max_(max_record_bytes),
          generation_(conn.generation()) {}

    /// Throws storage_error unless the connection is still the one whose transaction
    /// holds the session (a read in the filler may have reconnected after a lost
    /// connection: what it wrote is gone, and writing on would store a part of it).
    void check_same_transaction() const {
        if (!conn_.connected() || conn_.generation() != generation_)
            throw storage_error("cannot save session '" + meta_.id +
                                    "': the connection to the PostgreSQL server was lost while "
                                    "it was being written; nothing was saved",
                                conn_.server());
    }

    /// Throws invalid_input (a seq that is not greater than the last one, a record over
    /// the limit or not UTF-8: nothing of ex kept), storage_error (a batch refused).
    void add(const exchange& ex, std::string_view) override {
        const std::string what =
            "exchange " + std::to_string(ex.seq) + " of session '" + meta_.id + "'";
        if (ex.seq <= meta_.exchange_count || ex.seq > pg_bigint_limit)
            throw invalid_input(what + ": its seq does not follow " +
                                std::to_string(meta_.exchange_count) + "; nothing was saved");
        std::string record;
        const bool utf8 = encode_exchange(record, ex);
        if (!record.empty() && record.back() == '\n')
            record.pop_back();
        check_record(record, utf8, max_, what);
        bytes_ += record.size();
        seqs_.push_back(std::to_string(ex.seq));
        records_.push_back(std::move(record));
        apply_exchange(meta_, ex);
        if (records_.size() >= pg_whole_batch_rows || bytes_ >= pg_whole_batch_bytes)
            flush();
    }

    /// Keeps m's title, extra and pinned for the end. Throws invalid_input (a title or
    /// extra that is not UTF-8, or over the limit).
    void update(const session_meta& m) override {
        pg_encode_meta(m, max_, "the new metadata of session '" + meta_.id + "'");
        meta_.title = m.title;
        meta_.extra = m.extra;
        meta_.pinned = m.pinned;
    }

    /// Sends the records not sent yet, then the session's final metadata (title, extra,
    /// pinned, exchange_count, updated_at). Throws storage_error.
    void finish() {
        flush();
        check_same_transaction();
        const auto em = pg_encode_meta(meta_, max_, "session '" + meta_.id + "'");
        const auto count = std::to_string(meta_.exchange_count);
        const auto updated = pg_millis(meta_.updated_at);
        conn_.run(pg_statement::whole_finish,
                  {channel_.c_str(), meta_.id.c_str(), em.title.c_str(), em.title_json_param(),
                   em.extra.c_str(), meta_.pinned ? "true" : "false", count.c_str(),
                   updated.c_str()},
                  "cannot save session '" + meta_.id + "'");
    }

    /// Statements sent so far with records (how many round trips the records took).
    std::size_t batches() const noexcept { return batches_; }

private:
    static constexpr std::uint64_t pg_bigint_limit = 0x7fffffffffffffffull;

    void flush() {
        if (records_.empty())
            return;
        check_same_transaction();
        const std::string seqs = "{" + join(seqs_) + "}", records = pg_array_literal(records_);
        conn_.run(pg_statement::whole_records,
                  {channel_.c_str(), meta_.id.c_str(), seqs.c_str(), records.c_str()},
                  "cannot save the exchanges of session '" + meta_.id + "'");
        ++batches_;
        seqs_.clear();
        records_.clear();
        bytes_ = 0;
    }

    static std::string join(const std::vector<std::string>& v) {
        std::string out;
        for (const auto& s : v) {
            if (!out.empty())
                out += ',';
            out += s;
        }
        return out;
    }

    pg_connection& conn_;
    const std::string& channel_;
    session_meta meta_;
    std::size_t max_;
    std::vector<std::string> seqs_, records_;
    std::size_t bytes_ = 0, batches_ = 0;
    std::size_t generation_;
};

} // namespace dexter::sessions::detail
