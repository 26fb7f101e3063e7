// SPDX-License-Identifier: BSL-1.0
// redacting_store: a storage decorator that replaces secrets in every string before the
// store it wraps keeps it.
#pragma once

#include <dexter/sessions/detail/manager_checks.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/redactor.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

/// A storage policy over another one, `Inner`, that hands it every session and exchange
/// with the secrets `Redactor` finds replaced: the title and the string values of `extra`
/// of a session (create, update, create_whole, fork), and the query, answer, summary,
/// model and the string values of `tool_calls` and `extra` of an exchange (append,
/// create_whole). Object keys are kept as they are. Reads are Inner's: what was stored.
///
/// What was replaced is counted, by kind, in the `extra` of what holds it (the exchange,
/// or the session for its title and extra) under "redacted": {"redacted": {"openai_key":
/// 1}}, so that a reader knows something was removed. A "redacted" object already there
/// (a host's, or one read back) gets the counts added to its own; any other value under
/// "redacted" is replaced: the key is this decorator's.
///
/// The manager above keeps the text it was given: its history() and current session
/// hold the original text for the rest of the process; a later resume() or load() sees
/// the redacted text.
///
/// Every optional capability of storage.hpp is offered exactly when Inner has it, and
/// forwards to it (redacting what it writes). Nothing is copied for a text in which the
/// redactor finds nothing. Throws what Inner throws, and invalid_input for text that is
/// not valid UTF-8 on the calls that check it (create(m), append(id, ex), update(m)).
template <session_storage Inner, redactor Redactor = secret_redactor>
class redacting_store {
public:
    explicit redacting_store(Inner inner, Redactor redact = Redactor())
        : inner_(std::move(inner)), redact_(std::move(redact)) {}

    /// The store this one writes to.
    Inner& inner() noexcept { return inner_; }
    const Inner& inner() const noexcept { return inner_; }
    /// The redactor.
    Redactor& redactor() noexcept { return redact_; }
    const Redactor& redactor() const noexcept { return redact_; }

    /// What was redacted from the exchanges appended since the last call, by kind; then
    /// forgets it. (A host tells its user with it: "1 secret redacted before saving".)
    redaction_counts take_redacted() noexcept { return std::exchange(redacted_, {}); }

    bool create(const session_meta& m) {
        if (auto r = redacted_meta(m)) {
            detail::check_meta_text(m);
            return inner_.create(*r);
        }
        return inner_.create(m);
    }
    bool create(const session_meta& m, checked_utf8_t checked) requires skips_checked_utf8<Inner> {
        auto r = redacted_meta(m);
        if (!r)
            return inner_.create(m, checked);
        if constexpr (ascii_boundary_redactor<Redactor>)
            return inner_.create(*r, checked);
        else
            return inner_.create(*r);
    }
    session_meta open(const session_id& id) { return inner_.open(id); }
    void append(const session_id& id, const exchange& ex) {
        if (auto r = redacted_exchange(ex)) {
            detail::check_text(ex); // what the redactor removed is checked too
            inner_.append(id, r->value);
            add_counts(redacted_, r->counts);
        } else {
            inner_.append(id, ex);
        }
    }
    void append(const session_id& id, const exchange& ex,
                checked_utf8_t checked) requires skips_checked_utf8<Inner> {
        auto r = redacted_exchange(ex);
        if (!r)
            return inner_.append(id, ex, checked);
        // A redactor that cuts next to ASCII bytes only, by ASCII text, leaves checked
        // text valid UTF-8 (no multi-byte sequence is split or joined); another one's
        // text is checked again by Inner.
        if constexpr (ascii_boundary_redactor<Redactor>)
            inner_.append(id, r->value, checked);
        else
            inner_.append(id, r->value);
        add_counts(redacted_, r->counts);
    }
    void update(const session_meta& m) {
        if (auto r = redacted_meta(m)) {
            detail::check_meta_text(m);
            inner_.update(*r);
        } else {
            inner_.update(m);
        }
    }
    void close(const session_id& id) noexcept { inner_.close(id); }
    std::optional<session_meta> find(const session_id& id) { return inner_.find(id); }
    std::vector<session_meta> list() { return inner_.list(); }
    loaded_session load(const session_id& id, std::size_t last) { return inner_.load(id, last); }
    void remove(const session_id& id) { inner_.remove(id); }

    // The optional capabilities, each when Inner has it.

    std::vector<diagnostic> take_diagnostics() requires reports_diagnostics<Inner> {
        return inner_.take_diagnostics();
    }
    void check_writable() requires checks_writability<Inner> { inner_.check_writable(); }
    std::vector<diagnostic>
    for_each_exchange(const session_id& id, std::uint64_t from, std::uint64_t through,
                      const exchange_visitor& visit) requires streams_exchanges<Inner> {
        return inner_.for_each_exchange(id, from, through, visit);
    }
    std::vector<diagnostic>
    for_each_record(const session_id& id, std::uint64_t from, std::uint64_t through,
                    const record_visitor& visit) requires streams_records<Inner> {
        return inner_.for_each_record(id, from, through, visit);
    }
    search_result search(const search_query& q) requires searches_text<Inner> {
        return inner_.search(q);
    }
    session_page list_page(const page_request& r) requires pages_sessions<Inner> {
        return inner_.list_page(r);
    }
    /// Inner's create_whole() of m and of what fill hands over, each redacted. A record
    /// handed with an exchange goes along only when nothing was redacted from it (else
    /// it no longer decodes to what is stored, and Inner encodes the exchange itself).
    bool create_whole(const session_meta& m,
                      const session_filler& fill) requires creates_whole_sessions<Inner> {
        const session_filler redacting_fill = [&](session_sink& sink) {
            redacting_sink redacting{*this, sink};
            fill(redacting);
        };
        auto r = redacted_meta(m);
        return inner_.create_whole(r ? *r : m, redacting_fill);
    }
    /// Inner's fork(): the exchanges copied were redacted when they were stored; the
    /// fork's title and extra are redacted here. `fork` keeps the text it was given.
    bool fork(const session_id& source, std::uint64_t through,
              session_meta& fork) requires forks_sessions<Inner> {
        auto r = redacted_meta(fork);
        if (!r)
            return inner_.fork(source, through, fork);
        const bool made = inner_.fork(source, through, *r);
        fork.exchange_count = r->exchange_count;
        fork.updated_at = r->updated_at;
        fork.pinned = r->pinned;
        return made;
    }
    std::vector<trash_outcome>
    trash(std::span<const session_id> ids, time_point deleted_at,
          const std::optional<time_point>& stale_before) requires keeps_trash<Inner> {
        return inner_.trash(ids, deleted_at, stale_before);
    }
    session_meta restore(const session_id& id) requires keeps_trash<Inner> {
        return inner_.restore(id);
    }
    std::vector<trashed_session> list_trash() requires keeps_trash<Inner> {
        return inner_.list_trash();
    }
    void purge(const session_id& id, time_point deleted_at) requires keeps_trash<Inner> {
        inner_.purge(id, deleted_at);
    }
    // Verify and repair look at what is stored, which is already redacted; a repair moves
    // damaged lines to quarantine as they are (they were redacted when they were written).
    verify_report verify(const session_id& id) requires verifies_sessions<Inner> {
        return inner_.verify(id);
    }
    store_verify_report verify_all() requires verifies_sessions<Inner> {
        return inner_.verify_all();
    }
    repair_report repair(const session_id& id) requires repairs_sessions<Inner> {
        return inner_.repair(id);
    }
    std::vector<repair_report> repair_all() requires repairs_sessions<Inner> {
        return inner_.repair_all();
    }

private:
    // The sink create_whole() hands to the host's filler: redacts, then passes on.
    class redacting_sink final : public session_sink {
    public:
        redacting_sink(redacting_store& store, session_sink& inner)
            : store_(store), inner_(inner) {}
        void add(const exchange& ex, std::string_view record) override {
            if (auto r = store_.redacted_exchange(ex))
                inner_.add(r->value, std::string_view());
            else
                inner_.add(ex, record);
        }
        void update(const session_meta& m) override {
            auto r = store_.redacted_meta(m);
            inner_.update(r ? *r : m);
        }

    private:
        redacting_store& store_;
        session_sink& inner_;
    };

    // A copy of a session or an exchange with its secrets replaced, and what they were.
    template <class T>
    struct redacted {
        T value;
        redaction_counts counts;
    };

    bool finds(std::string_view text) { return redact_(text).has_value(); }

    // Redacts `text` in place if the redactor finds something in it, adding to `counts`.
    void redact_string(std::string& text, redaction_counts& counts) {
        auto r = redact_(std::string_view(text));
        if (!r)
            return;
        text = std::move(r->text);
        add_counts(counts, r->counts);
    }
    static void add_counts(redaction_counts& to, const redaction_counts& more) {
        for (const auto& [kind, n] : more)
            to[kind] += n;
    }

    // True if the redactor finds something in a string value of `v`, at any depth.
    bool has_secret(const json::value& v) {
        switch (v.kind()) {
        case json::kind::string:
            return finds(v.get_string());
        case json::kind::array:
            for (const auto& e : v.get_array())
                if (has_secret(e))
                    return true;
            return false;
        case json::kind::object:
            return has_secret(v.get_object());
        default:
            return false;
        }
    }
    bool has_secret(const json::object& o) {
        for (const auto& kv : o)
            if (has_secret(kv.value()))
                return true;
        return false;
    }
    // Redacts every string value of `v`, at any depth, adding to `counts`.
    void redact_json(json::value& v, redaction_counts& counts) {
        switch (v.kind()) {
        case json::kind::string:
            if (auto r = redact_(std::string_view(v.get_string()))) {
                v.get_string() = std::string_view(r->text);
                add_counts(counts, r->counts);
            }
            break;
        case json::kind::array:
            for (auto& e : v.get_array())
                redact_json(e, counts);
            break;
        case json::kind::object:
            redact_json(v.get_object(), counts);
            break;
        default:
            break;
        }
    }
    void redact_json(json::object& o, redaction_counts& counts) {
        for (auto& kv : o)
            redact_json(kv.value(), counts);
    }

    // Adds `counts` to extra["redacted"] (see the class comment).
    static void record_counts(json::object& extra, const redaction_counts& counts) {
        auto* held = extra.if_contains("redacted");
        if (!held || !held->is_object())
            held = &(extra["redacted"] = json::object());
        auto& by_kind = held->get_object();
        for (const auto& [kind, n] : counts) {
            const auto* before = by_kind.if_contains(kind);
            std::uint64_t had = 0;
            if (before && before->is_uint64())
                had = before->get_uint64();
            else if (before && before->is_int64() && before->get_int64() > 0)
                had = static_cast<std::uint64_t>(before->get_int64());
            by_kind[kind] = had + n;
        }
    }

    // `ex` with its secrets replaced and counted, or nothing if it has none.
    std::optional<redacted<exchange>> redacted_exchange(const exchange& ex) {
        const bool any = finds(ex.query) || finds(ex.answer) ||
                         (ex.summary && finds(*ex.summary)) || (ex.model && finds(*ex.model)) ||
                         has_secret(ex.extra) ||
                         std::any_of(ex.tool_calls.begin(), ex.tool_calls.end(),
                                     [&](const json::value& e) { return has_secret(e); });
        if (!any)
            return std::nullopt;
        // Rare: the redactor runs again, on the copy it replaces in.
        redacted<exchange> r{ex, {}};
        redact_string(r.value.query, r.counts);
        redact_string(r.value.answer, r.counts);
        if (r.value.summary)
            redact_string(*r.value.summary, r.counts);
        if (r.value.model)
            redact_string(*r.value.model, r.counts);
        for (auto& e : r.value.tool_calls)
            redact_json(e, r.counts);
        redact_json(r.value.extra, r.counts);
        record_counts(r.value.extra, r.counts);
        return r;
    }

    // `m` with the secrets of its title and extra replaced and counted, or nothing if it
    // has none.
    std::optional<session_meta> redacted_meta(const session_meta& m) {
        auto title = redact_(std::string_view(m.title));
        if (!title && !has_secret(m.extra))
            return std::nullopt;
        session_meta r = m;
        redaction_counts counts;
        if (title) {
            r.title = std::move(title->text);
            counts = std::move(title->counts);
        }
        redact_json(r.extra, counts);
        record_counts(r.extra, counts);
        return r;
    }

    Inner inner_;
    [[no_unique_address]] Redactor redact_;
    redaction_counts redacted_;
};

} // namespace dexter::sessions
