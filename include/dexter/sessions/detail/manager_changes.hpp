// SPDX-License-Identifier: BSL-1.0
// session_manager's changes of stored sessions, declared (with what they throw and
// guarantee) in session_manager.hpp: forking, importing, moving to and from the trash,
// purging and pruning, changing a session's metadata under its lease, and creating a
// session whole (the store's create_whole(), or create() and append() for a store
// without one). Included at the end of session_manager.hpp.
#pragma once

#include <dexter/sessions/session_manager.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <istream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {
namespace detail {

// Passes a new session's content on to the store's sink, keeping its metadata up to
// date and counting its exchanges: what import_session() and fork_by_copy() fill a
// session through.
struct tracking_sink final : session_sink {
    session_sink& inner;
    session_meta& meta;
    std::uint64_t& count;
    tracking_sink(session_sink& i, session_meta& m, std::uint64_t& c)
        : inner(i), meta(m), count(c) {}
    void add(const exchange& ex, std::string_view record) override {
        inner.add(ex, record);
        apply_exchange(meta, ex);
        ++count;
    }
    void update(const session_meta& changed) override {
        inner.update(changed);
        meta.title = changed.title;
        meta.extra = changed.extra;
        meta.pinned = changed.pinned;
    }
};

// What an exception says, for a result that reports a failure instead of throwing it.
inline std::string describe(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown error";
    }
}

} // namespace detail

template <class CreateWhole, class ReadRecords>
bool fork_by_copy(session_meta& made, const session_id& source, std::uint64_t through,
                  CreateWhole&& create_whole, ReadRecords&& read) {
    made.pinned = false;
    made.exchange_count = 0;
    made.updated_at = made.created_at;
    session_meta copied = made;
    std::uint64_t count = 0; // exchanges copied (tracking_sink counts them)
    const bool created = create_whole(made, [&](session_sink& sink) {
        detail::tracking_sink tracked(sink, copied, count);
        read([&](exchange&& ex, std::string_view record) {
            if (ex.seq > through)
                return false;
            tracked.add(ex, record);
            return true;
        });
        if (copied.exchange_count == 0)
            throw error("cannot fork session '" + source +
                        "': none of its exchanges could be read (it is damaged, or was deleted "
                        "meanwhile); nothing was created");
    });
    if (created) {
        made.exchange_count = copied.exchange_count;
        made.updated_at = copied.updated_at;
    }
    return created;
}

// --- forking and importing --------------------------------------------------------

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
session_meta session_manager<Storage, Clock, IdGenerator, History>::fork_session(
    std::string_view id, std::optional<std::uint64_t> through_seq) {
    const auto source = find_session(id);
    if (!source)
        throw session_not_found(id);
    const std::uint64_t through = through_seq.value_or(source->exchange_count);
    if (through == 0 || through > source->exchange_count)
        throw invalid_input("cannot fork session '" + source->id + "' at exchange " +
                            std::to_string(through) + ": it has exchanges 1 to " +
                            std::to_string(source->exchange_count));
    const time_point now = now_ms();
    session_meta copy_of = *source;
    copy_of.exchange_count = through;
    session_meta fork;
    fork.title = source->title;
    fork.extra = source->extra;
    fork.created_at = now;
    fork.updated_at = now;
    fork.forked_from = session_origin{source->id, through};
    for (int attempt = 0;; ++attempt) {
        fork.id = fresh_id();
        session_meta made = fork;
        bool created = false;
        if constexpr (forks_sessions<Storage>)
            created = storage_.fork(source->id, through, made);
        else
            created = fork_by_copy(
                made, source->id, through,
                [&](session_meta& m, const session_filler& fill) { return create_whole(m, fill); },
                [&](const record_visitor& visit) { return for_each_record(copy_of, 1, visit); });
        if (created)
            return made;
        if (attempt + 1 >= options_.id_attempts)
            throw error("could not find a free session id in " +
                        std::to_string(options_.id_attempts) + " attempts");
    }
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
import_result session_manager<Storage, Clock, IdGenerator, History>::import_session(
    std::istream& in, const import_options& options) {
    detail::session_import source(in, options);
    import_result result;
    result.format = source.format();
    if (is_valid_session_id(source.original_id()))
        result.original_id = source.original_id();
    session_meta wanted = source.meta();
    bool keep = !result.original_id.empty();
    try {
        keep = keep && !storage_.find(result.original_id);
    } catch (const error&) {
        keep = false; // there is something under that id that cannot be read: leave it
    }
    wanted.id = keep ? result.original_id : fresh_id();
    for (int attempt = 0;; ++attempt) {
        session_meta made = wanted;
        const bool created = create_whole(made, [&](session_sink& sink) {
            detail::tracking_sink tracked(sink, made, result.exchanges);
            source.read_rest(tracked, result.diagnostics);
        });
        if (created) {
            result.meta = std::move(made);
            return result;
        }
        if (attempt + 1 >= options_.id_attempts)
            throw error("could not find a free session id in " +
                        std::to_string(options_.id_attempts) + " attempts");
        wanted.id = fresh_id(); // taken since find(): fill was not called, nothing read
    }
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
bool session_manager<Storage, Clock, IdGenerator, History>::create_whole(
    session_meta& m, const session_filler& fill) {
    if constexpr (creates_whole_sessions<Storage>) {
        return storage_.create_whole(m, fill);
    } else {
        session_meta created = m;
        created.exchange_count = 0;
        if (!storage_.create(created))
            return false;
        struct generic_sink final : session_sink {
            Storage& store;
            session_meta& meta;
            generic_sink(Storage& s, session_meta& mm) : store(s), meta(mm) {}
            void add(const exchange& ex, std::string_view) override {
                store.append(meta.id, ex);
                apply_exchange(meta, ex);
            }
            void update(const session_meta& changed) override {
                meta.title = changed.title;
                meta.extra = changed.extra;
                meta.pinned = changed.pinned;
                store.update(meta);
            }
        } sink(storage_, created);
        try {
            fill(sink);
        } catch (...) {
            discard_created(created.id);
            throw;
        }
        storage_.close(created.id);
        m = std::move(created);
        return true;
    }
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
void session_manager<Storage, Clock, IdGenerator, History>::store_new(session_meta& after,
                                                                      exchange& first) {
    session_meta created = after;
    created.exchange_count = 0;
    for (int attempt = 0; !create_checked(created); ++attempt) {
        if (attempt + 1 >= options_.id_attempts)
            throw error("could not find a free session id in " +
                        std::to_string(options_.id_attempts) + " attempts");
        created.id = fresh_id();
    }
    after.id = created.id;
    apply_exchange(after, first);
    try {
        append_checked(after.id, first);
    } catch (...) {
        discard_created(created.id); // an empty session left behind is not listed
        throw;
    }
    stored_ = true;
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
void session_manager<Storage, Clock, IdGenerator, History>::discard_created(
    const session_id& id) noexcept {
    try {
        storage_.remove(id);
    } catch (...) {
    }
    storage_.close(id);
}

// --- the trash ----------------------------------------------------------------------

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
void session_manager<Storage, Clock, IdGenerator, History>::delete_session(std::string_view id,
                                                                           deletion how) {
    validate_session_id(id);
    const session_id sid(id);
    if (how == deletion::permanent) {
        storage_.remove(sid); // allowed while we hold the session: the lease is ours
    } else if constexpr (keeps_trash<Storage>) {
        auto outcome = storage_.trash(std::span<const session_id>(&sid, 1), now_ms(), std::nullopt);
        if (outcome.empty())
            throw error("the store did not report on session '" + sid + "'");
        if (outcome.front().error)
            std::rethrow_exception(outcome.front().error);
        if (!outcome.front().moved)
            throw error("session '" + sid +
                        "' was not moved to the trash: " + outcome.front().kept_because);
    } else {
        if (!storage_.find(sid))
            throw session_not_found(sid);
        throw error("cannot move session '" + sid +
                    "' to the trash: this store keeps no trash (delete it with "
                    "deletion::permanent)");
    }
    if (current_ && current_->id == sid) {
        current_.reset();
        stored_ = false;
        history_.clear();
    }
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
session_meta
session_manager<Storage, Clock, IdGenerator, History>::restore_session(std::string_view id) {
    if constexpr (keeps_trash<Storage>) {
        session_id sid;
        if (is_valid_session_id(id)) {
            sid = id;
        } else {
            if (id.size() < options_.min_prefix || !is_valid_session_id_prefix(id))
                throw invalid_session_id(id, "expected 8 characters of [0-9a-z], or a "
                                             "unique prefix of " +
                                                 std::to_string(options_.min_prefix) + " or more");
            std::vector<session_id> matches;
            for (auto& t : storage_.list_trash())
                if (t.meta.id.starts_with(id) &&
                    std::find(matches.begin(), matches.end(), t.meta.id) == matches.end())
                    matches.push_back(std::move(t.meta.id));
            if (matches.empty())
                throw session_not_found(id, "the trash");
            if (matches.size() > 1) {
                std::sort(matches.begin(), matches.end());
                throw ambiguous_session_id(id, std::move(matches));
            }
            sid = std::move(matches.front());
        }
        return storage_.restore(sid);
    } else {
        validate_session_id(id);
        throw session_not_found(id, "the trash (this store keeps no trash)");
    }
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
std::vector<trashed_session> session_manager<Storage, Clock, IdGenerator, History>::list_trash() {
    if constexpr (keeps_trash<Storage>) {
        auto all = storage_.list_trash();
        std::sort(all.begin(), all.end(), [](const trashed_session& a, const trashed_session& b) {
            return a.deleted_at != b.deleted_at ? a.deleted_at > b.deleted_at
                                                : a.meta.id < b.meta.id;
        });
        return all;
    } else {
        return {};
    }
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
purge_result session_manager<Storage, Clock, IdGenerator, History>::purge_trash(
    std::chrono::milliseconds older_than) {
    purge_result out;
    if constexpr (keeps_trash<Storage>) {
        const time_point cutoff = now_ms() - older_than;
        for (auto& t : list_trash()) {
            if (older_than.count() > 0 && t.deleted_at >= cutoff)
                continue;
            try {
                storage_.purge(t.meta.id, t.deleted_at);
                out.purged.push_back(std::move(t));
            } catch (const error& e) {
                out.failed.emplace_back(std::move(t), e.what());
            }
        }
    }
    return out;
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
prune_result
session_manager<Storage, Clock, IdGenerator, History>::prune(std::chrono::milliseconds older_than,
                                                             bool dry_run) {
    if constexpr (!keeps_trash<Storage>) {
        throw error("cannot prune: this store keeps no trash to move sessions to");
    } else {
        const time_point now = now_ms();
        const time_point cutoff = now - older_than;
        prune_result out;
        std::vector<session_meta> candidates;
        for (auto& m : list_sessions())
            if (!m.pinned && m.updated_at < cutoff && !(current_ && current_->id == m.id))
                candidates.push_back(std::move(m));
        if (dry_run) {
            out.moved = std::move(candidates);
            return out;
        }
        std::vector<session_id> ids;
        ids.reserve(candidates.size());
        for (const auto& m : candidates)
            ids.push_back(m.id);
        auto outcomes = storage_.trash(ids, now, cutoff);
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            const trash_outcome* o = i < outcomes.size() ? &outcomes[i] : nullptr;
            if (o && o->moved)
                out.moved.push_back(std::move(candidates[i]));
            else
                out.kept.emplace_back(std::move(candidates[i]),
                                      !o         ? std::string("not reported by the store")
                                      : o->error ? detail::describe(o->error)
                                                 : o->kept_because);
        }
        return out;
    }
}

// --- metadata ---------------------------------------------------------------------

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
std::optional<session_meta>
session_manager<Storage, Clock, IdGenerator, History>::remove_if_abandoned(
    const session_id& id) noexcept {
    try {
        session_meta now = storage_.open(id); // no writer can save into it meanwhile
        try {
            if (now.exchange_count == 0) {
                storage_.remove(id); // allowed while we hold it
                return std::nullopt;
            }
        } catch (...) {
        }
        storage_.close(id);
        if (now.exchange_count != 0)
            return now;
    } catch (...) {
        // Held by a writer (its first save is in flight), already gone, damaged or
        // in a read-only store: left as it is.
    }
    return std::nullopt;
}

template <session_storage Storage, clock_policy Clock, id_generator IdGenerator,
          replay_target History>
template <class Change>
void session_manager<Storage, Clock, IdGenerator, History>::change_meta(std::string_view id,
                                                                        Change&& change) {
    validate_session_id(id);
    const session_id sid(id);
    if (current_ && current_->id == sid) {
        session_meta after = *current_;
        change(after);
        if (stored_)
            storage_.update(after);
        current_ = std::move(after);
        return;
    }
    const auto found = find_session(sid);
    if (!found)
        throw session_not_found(sid);
    session_meta m = storage_.open(sid);
    try {
        change(m);
        storage_.update(m);
    } catch (...) {
        storage_.close(sid);
        throw;
    }
    storage_.close(sid);
}

} // namespace dexter::sessions
