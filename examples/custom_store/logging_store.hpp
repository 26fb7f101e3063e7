// SPDX-License-Identifier: BSL-1.0
// logging_store: a storage policy written by a host, in one file. It wraps another store
// (memory_store unless told otherwise) and writes one line to a std::ostream before each
// operation, and one more when the operation fails:
//
//   create k3v9x0ab
//   append k3v9x0ab seq 1
//   open k3v9x0ab
//     failed: session 'k3v9x0ab' is open by another writer; close it there first: ...
//
// A storage policy is any movable type with the nine members of the session_storage
// concept (dexter/sessions/storage.hpp, which says what each must do); the manager owns
// every rule, so a store only keeps records. contract_test.cpp proves that this one
// passes the library's storage contract.
//
// Thread safety: as much as the wrapped store's and the stream's together (memory_store
// is thread-safe; a std::ostringstream is not).
#pragma once

#include <dexter/sessions/id.hpp>
#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/storage.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace example {

namespace ds = dexter::sessions;

template <ds::session_storage Inner = ds::memory_store>
class logging_store {
public:
    /// Logs to `log`, which must outlive the store (and every store moved from it).
    logging_store(Inner inner, std::ostream& log) : inner_(std::move(inner)), log_(&log) {}

    bool create(const ds::session_meta& m) {
        return logged("create " + shown(m.id), [&] { return inner_.create(m); });
    }
    ds::session_meta open(const ds::session_id& id) {
        return logged("open " + shown(id), [&] { return inner_.open(id); });
    }
    void append(const ds::session_id& id, const ds::exchange& ex) {
        logged("append " + shown(id) + " seq " + std::to_string(ex.seq),
               [&] { inner_.append(id, ex); });
    }
    void update(const ds::session_meta& m) {
        logged("update " + shown(m.id), [&] { inner_.update(m); });
    }
    void close(const ds::session_id& id) noexcept {
        try {
            *log_ << "close " << shown(id) << '\n';
        } catch (...) {
            // A stream that throws must not keep the lease from being released.
        }
        inner_.close(id);
    }
    std::optional<ds::session_meta> find(const ds::session_id& id) {
        return logged("find " + shown(id), [&] { return inner_.find(id); });
    }
    std::vector<ds::session_meta> list() {
        return logged("list", [&] { return inner_.list(); });
    }
    ds::loaded_session load(const ds::session_id& id, std::size_t last = ds::all_exchanges) {
        return logged("load " + shown(id) +
                          (last == ds::all_exchanges ? "" : " last " + std::to_string(last)),
                      [&] { return inner_.load(id, last); });
    }
    void remove(const ds::session_id& id) {
        logged("remove " + shown(id), [&] { inner_.remove(id); });
    }

    // The optional capabilities (storage.hpp): offered exactly when the wrapped store
    // has them, so that the manager's saves of checked text, take_diagnostics(),
    // check_writable(), for_each_exchange(), search(), list_page(), fork_session(),
    // import_session() and the trash reach it.
    bool create(const ds::session_meta& m,
                ds::checked_utf8_t checked) requires ds::skips_checked_utf8<Inner> {
        return logged("create " + shown(m.id), [&] { return inner_.create(m, checked); });
    }
    void append(const ds::session_id& id, const ds::exchange& ex,
                ds::checked_utf8_t checked) requires ds::skips_checked_utf8<Inner> {
        logged("append " + shown(id) + " seq " + std::to_string(ex.seq),
               [&] { inner_.append(id, ex, checked); });
    }
    std::vector<ds::diagnostic> take_diagnostics() requires ds::reports_diagnostics<Inner> {
        return inner_.take_diagnostics();
    }
    void check_writable() requires ds::checks_writability<Inner> {
        logged("check_writable", [&] { inner_.check_writable(); });
    }

    std::vector<ds::diagnostic>
    for_each_exchange(const ds::session_id& id, std::uint64_t from, std::uint64_t through,
                      const ds::exchange_visitor& visit) requires ds::streams_exchanges<Inner> {
        return logged("stream " + shown(id) + " " + std::to_string(from) + ".." +
                          std::to_string(through),
                      [&] { return inner_.for_each_exchange(id, from, through, visit); });
    }
    ds::search_result search(const ds::search_query& q) requires ds::searches_text<Inner> {
        return logged("search", [&] { return inner_.search(q); });
    }
    ds::session_page list_page(const ds::page_request& r) requires ds::pages_sessions<Inner> {
        return logged("list_page " + std::to_string(r.limit), [&] { return inner_.list_page(r); });
    }
    bool create_whole(const ds::session_meta& m,
                      const ds::session_filler& fill) requires ds::creates_whole_sessions<Inner> {
        return logged("create_whole " + shown(m.id), [&] { return inner_.create_whole(m, fill); });
    }
    bool fork(const ds::session_id& source, std::uint64_t through,
              ds::session_meta& m) requires ds::forks_sessions<Inner> {
        return logged("fork " + shown(source) + " as " + shown(m.id),
                      [&] { return inner_.fork(source, through, m); });
    }
    std::vector<ds::trash_outcome>
    trash(std::span<const ds::session_id> ids, ds::time_point at,
          const std::optional<ds::time_point>& stale_before) requires ds::keeps_trash<Inner> {
        return logged("trash " + std::to_string(ids.size()),
                      [&] { return inner_.trash(ids, at, stale_before); });
    }
    ds::session_meta restore(const ds::session_id& id) requires ds::keeps_trash<Inner> {
        return logged("restore " + shown(id), [&] { return inner_.restore(id); });
    }
    std::vector<ds::trashed_session> list_trash() requires ds::keeps_trash<Inner> {
        return logged("list_trash", [&] { return inner_.list_trash(); });
    }
    void purge(const ds::session_id& id, ds::time_point at) requires ds::keeps_trash<Inner> {
        logged("purge " + shown(id), [&] { inner_.purge(id, at); });
    }

    /// The wrapped store.
    Inner& inner() noexcept { return inner_; }

private:
    // An id from outside may hold anything (newlines, escape sequences): only
    // well-formed ids go into the log as they are.
    static std::string shown(const ds::session_id& id) {
        return ds::is_valid_session_id(id) ? id : "(invalid id)";
    }

    template <class Operation>
    decltype(auto) logged(const std::string& what, Operation&& operation) {
        *log_ << what << '\n';
        try {
            return operation();
        } catch (const std::exception& e) {
            *log_ << "  failed: " << e.what() << '\n';
            throw;
        }
    }

    Inner inner_;
    std::ostream* log_;
};

static_assert(ds::session_storage<logging_store<>>);

} // namespace example
