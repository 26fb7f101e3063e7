// SPDX-License-Identifier: BSL-1.0
// memory_store: a complete storage policy that keeps sessions in memory.
//
// For hosts that want ephemeral sessions, and for tests. A memory_store is a handle:
// copies share the same sessions (as two processes share a directory), and each copy is
// a writer of its own, so a session opened through one copy is busy for the others.
// All operations are thread-safe. Test hooks count operations and inject failures.
#pragma once

#include <dexter/sessions/detail/manager_checks.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/storage.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dexter::sessions {

/// How many times each operation was called (all copies of a store together).
struct operation_counts {
    std::size_t create = 0, open = 0, append = 0, update = 0, close = 0, find = 0, list = 0,
                load = 0, remove = 0, for_each_exchange = 0, create_whole = 0, trash = 0,
                restore = 0, list_trash = 0, purge = 0;

    friend bool operator==(const operation_counts&, const operation_counts&) = default;
};

/// The in-memory storage policy (see storage.hpp for what each primitive does).
/// Thread-safe. Throws: invalid_session_id (every primitive that takes an id: before
/// anything else), session_not_found (open, append, update, load, remove),
/// session_busy (open, remove: another copy holds the session), storage_error
/// (append, update: the session is not open through this copy, a seq that does not
/// follow, an injected failure), invalid_input (create, append, update, create_whole:
/// text that is not valid UTF-8, unless the checked_utf8 overloads were told it was
/// checked: storage.hpp, skips_checked_utf8). On throw, nothing changed.
class memory_store {
public:
    memory_store() : state_(std::make_shared<state>()), writer_(state_->next_writer++) {}
    memory_store(const memory_store& other) : state_(other.state_), writer_(new_writer()) {}
    memory_store(memory_store&& other) noexcept
        : state_(std::move(other.state_)), writer_(other.writer_) {}
    memory_store& operator=(memory_store other) noexcept {
        release_all();
        state_ = std::move(other.state_);
        writer_ = other.writer_;
        return *this;
    }
    ~memory_store() { release_all(); }

    /// Throws invalid_input for text that is not valid UTF-8, as the other writes do.
    bool create(const session_meta& m) {
        validate_session_id(m.id);
        detail::check_meta_text(m);
        return create(m, checked_utf8);
    }
    /// create() of metadata whose text was checked already (skips_checked_utf8).
    bool create(const session_meta& m, checked_utf8_t) {
        validate_session_id(m.id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.create;
        auto [it, inserted] = state_->sessions.try_emplace(m.id);
        if (!inserted)
            return false;
        it->second.meta = m;
        it->second.meta.exchange_count = 0;
        it->second.writer = writer_;
        return true;
    }

    session_meta open(const session_id& id) {
        validate_session_id(id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.open;
        auto& s = existing(id);
        if (s.writer && *s.writer != writer_)
            throw session_busy(id, location, std::nullopt);
        s.writer = writer_;
        return s.meta;
    }

    void append(const session_id& id, const exchange& ex) {
        validate_session_id(id);
        detail::check_text(ex);
        append(id, ex, checked_utf8);
    }
    /// append() of an exchange whose text was checked already (skips_checked_utf8).
    void append(const session_id& id, const exchange& ex, checked_utf8_t) {
        validate_session_id(id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.append;
        auto& s = open_for_writing(id);
        if (state_->fail_append_in && --*state_->fail_append_in == 0) {
            state_->fail_append_in.reset();
            throw storage_error("cannot save exchange " + std::to_string(ex.seq) + " of session '" +
                                    id + "' (injected failure)",
                                location, state_->fail_errno);
        }
        if (ex.seq != s.meta.exchange_count + 1)
            throw detail::seq_does_not_follow(id, ex.seq, s.meta.exchange_count, location);
        s.exchanges.push_back(ex);
        apply_exchange(s.meta, ex);
    }

    void update(const session_meta& m) {
        validate_session_id(m.id);
        detail::check_meta_text(m);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.update;
        auto& s = open_for_writing(m.id);
        s.meta.title = m.title; // title, extra and pinned only, as every store
        s.meta.extra = m.extra;
        s.meta.pinned = m.pinned;
    }

    /// Builds the session aside and adds it whole under the lock (storage.hpp,
    /// creates_whole_sessions); fill runs outside the lock, so it may read this store.
    bool create_whole(const session_meta& m, const session_filler& fill) {
        validate_session_id(m.id);
        detail::check_meta_text(m);
        {
            std::lock_guard lock(state_->mutex);
            ++state_->counts.create_whole;
            if (state_->sessions.count(m.id))
                return false;
        }
        struct building final : session_sink {
            stored_session s;
            void add(const exchange& ex, std::string_view) override {
                if (ex.seq <= s.meta.exchange_count)
                    throw invalid_input(
                        "exchange seq " + std::to_string(ex.seq) + " does not follow " +
                        std::to_string(s.meta.exchange_count) + "; nothing was saved");
                detail::check_text(ex);
                s.exchanges.push_back(ex);
                apply_exchange(s.meta, ex);
            }
            void update(const session_meta& changed) override {
                detail::check_meta_text(changed);
                s.meta.title = changed.title;
                s.meta.extra = changed.extra;
                s.meta.pinned = changed.pinned;
            }
        } b;
        b.s.meta = m;
        b.s.meta.exchange_count = 0;
        b.s.meta.updated_at = std::max(m.created_at, m.updated_at);
        fill(b);
        std::lock_guard lock(state_->mutex);
        auto [it, inserted] = state_->sessions.try_emplace(m.id, std::move(b.s));
        if (!inserted)
            throw session_exists(m.id, "session '" + m.id +
                                           "' was created by another writer while it was "
                                           "being written; nothing was saved");
        return true;
    }

    /// Moves sessions to the trash (storage.hpp, keeps_trash).
    std::vector<trash_outcome> trash(std::span<const session_id> ids, time_point deleted_at,
                                     const std::optional<time_point>& stale_before) {
        std::vector<trash_outcome> out;
        out.reserve(ids.size());
        std::lock_guard lock(state_->mutex);
        ++state_->counts.trash;
        for (const auto& id : ids) {
            trash_outcome& o = out.emplace_back();
            o.id = id;
            try {
                validate_session_id(id);
                auto& s = existing(id);
                if (s.writer && *s.writer != writer_)
                    throw session_busy(id, location, std::nullopt);
                if (stale_before && s.meta.pinned) {
                    o.kept_because = "it is pinned";
                    continue;
                }
                if (stale_before && s.meta.updated_at >= *stale_before) {
                    o.kept_because = "it was saved into since it was listed";
                    continue;
                }
                auto node = state_->sessions.extract(id);
                node.mapped().writer.reset();
                state_->trash.push_back({std::move(node.mapped()), deleted_at});
                o.moved = true;
            } catch (...) {
                o.error = std::current_exception();
            }
        }
        return out;
    }

    session_meta restore(const session_id& id) {
        validate_session_id(id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.restore;
        auto newest = state_->trash.end();
        for (auto it = state_->trash.begin(); it != state_->trash.end(); ++it)
            if (it->session.meta.id == id &&
                (newest == state_->trash.end() || it->deleted_at >= newest->deleted_at))
                newest = it;
        if (newest == state_->trash.end())
            throw session_not_found(id, "the trash of the memory store");
        if (state_->sessions.count(id))
            throw session_exists(id, "cannot restore session '" + id +
                                         "': a session with that id exists; nothing was moved");
        session_meta meta = newest->session.meta;
        state_->sessions.emplace(id, std::move(newest->session));
        state_->trash.erase(newest);
        return meta;
    }

    std::vector<trashed_session> list_trash() {
        std::lock_guard lock(state_->mutex);
        ++state_->counts.list_trash;
        std::vector<trashed_session> out;
        out.reserve(state_->trash.size());
        for (const auto& t : state_->trash)
            out.push_back({t.session.meta, t.deleted_at});
        return out;
    }

    void purge(const session_id& id, time_point deleted_at) {
        validate_session_id(id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.purge;
        const auto n = std::erase_if(state_->trash, [&](const trashed& t) {
            return t.session.meta.id == id && t.deleted_at == deleted_at;
        });
        if (n == 0)
            throw session_not_found(id, "the trash of the memory store");
    }

    void close(const session_id& id) noexcept {
        if (!state_)
            return;
        std::lock_guard lock(state_->mutex);
        ++state_->counts.close;
        auto it = state_->sessions.find(id);
        if (it != state_->sessions.end() && it->second.writer == writer_)
            it->second.writer.reset();
    }

    std::optional<session_meta> find(const session_id& id) {
        validate_session_id(id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.find;
        auto it = state_->sessions.find(id);
        if (it == state_->sessions.end())
            return std::nullopt;
        return it->second.meta;
    }

    std::vector<session_meta> list() {
        std::lock_guard lock(state_->mutex);
        ++state_->counts.list;
        std::vector<session_meta> out;
        out.reserve(state_->sessions.size());
        for (const auto& [id, s] : state_->sessions)
            out.push_back(s.meta);
        return out;
    }

    loaded_session load(const session_id& id, std::size_t last = all_exchanges) {
        validate_session_id(id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.load;
        const auto& s = existing(id);
        const std::size_t n = std::min(last, s.exchanges.size());
        return {
            s.meta, {s.exchanges.end() - static_cast<std::ptrdiff_t>(n), s.exchanges.end()}, {}};
    }

    /// Streams the exchanges with from <= seq <= through (storage.hpp,
    /// streams_exchanges): each is copied under the lock and visited outside it, so that
    /// visit may use the store. Sees exchanges saved meanwhile up to `through`.
    std::vector<diagnostic> for_each_exchange(const session_id& id, std::uint64_t from,
                                              std::uint64_t through,
                                              const exchange_visitor& visit) {
        validate_session_id(id);
        {
            std::lock_guard lock(state_->mutex);
            ++state_->counts.for_each_exchange;
            existing(id);
        }
        for (std::uint64_t seq = std::max<std::uint64_t>(from, 1); seq <= through; ++seq) {
            std::optional<exchange> ex;
            {
                std::lock_guard lock(state_->mutex);
                auto it = state_->sessions.find(id);
                if (it == state_->sessions.end() || seq > it->second.exchanges.size())
                    break; // deleted, or not that many
                ex = it->second.exchanges[seq - 1];
            }
            if (!visit(std::move(*ex)))
                break;
        }
        return {};
    }

    void remove(const session_id& id) {
        validate_session_id(id);
        std::lock_guard lock(state_->mutex);
        ++state_->counts.remove;
        auto& s = existing(id);
        if (s.writer && *s.writer != writer_)
            throw session_busy(id, location, std::nullopt);
        state_->sessions.erase(id);
    }

    // --- test hooks ---------------------------------------------------------------

    /// Operation counts so far, over all copies of this store.
    operation_counts counts() const {
        std::lock_guard lock(state_->mutex);
        return state_->counts;
    }

    /// Makes the `nth` append from now (1 = the next one) throw storage_error with
    /// `errno_value`, storing nothing. Later appends succeed again.
    void fail_append(std::size_t nth, int errno_value = EIO) {
        std::lock_guard lock(state_->mutex);
        state_->fail_append_in = nth;
        state_->fail_errno = errno_value;
    }

private:
    static constexpr const char* location = "memory store";

    struct stored_session {
        session_meta meta;
        std::vector<exchange> exchanges;
        std::optional<std::uint64_t> writer; // the copy holding the lease
    };

    struct trashed {
        stored_session session;
        time_point deleted_at;
    };

    struct state {
        std::mutex mutex;
        std::map<session_id, stored_session> sessions;
        std::vector<trashed> trash;
        std::uint64_t next_writer = 1;
        operation_counts counts;
        std::optional<std::size_t> fail_append_in;
        int fail_errno = EIO;
    };

    std::uint64_t new_writer() {
        std::lock_guard lock(state_->mutex);
        return state_->next_writer++;
    }

    stored_session& existing(const session_id& id) {
        auto it = state_->sessions.find(id);
        if (it == state_->sessions.end())
            throw session_not_found(id, location);
        return it->second;
    }

    stored_session& open_for_writing(const session_id& id) {
        auto& s = existing(id);
        if (s.writer != writer_)
            throw detail::not_open_for_writing(id, location);
        return s;
    }

    void release_all() noexcept {
        if (!state_)
            return;
        std::lock_guard lock(state_->mutex);
        for (auto& [id, s] : state_->sessions)
            if (s.writer == writer_)
                s.writer.reset();
    }

    std::shared_ptr<state> state_;
    std::uint64_t writer_;
};

static_assert(session_storage<memory_store> && streams_exchanges<memory_store> &&
              creates_whole_sessions<memory_store> && keeps_trash<memory_store>);

} // namespace dexter::sessions
