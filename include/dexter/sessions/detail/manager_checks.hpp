// SPDX-License-Identifier: BSL-1.0
// What session_manager checks of a host's text before anything is stored: every
// string of an exchange, a title and `extra` must be valid UTF-8 (JSON values
// included, keys too). The manager checks each text once, for every store, and hands
// it to a store that skips_checked_utf8 with `checked_utf8` (storage.hpp); memory_store
// checks with these too when it is called directly.
#pragma once

#include <dexter/sessions/error.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <string>
#include <string_view>

namespace dexter::sessions::detail {

// Throws invalid_input naming `field` and the offset of the first bad byte.
inline void check_utf8(std::string_view text, std::string_view field) {
    const auto bad = first_invalid_utf8(text);
    if (bad != text.size())
        throw invalid_input(std::string(field) + " is not valid UTF-8 (bad byte at offset " +
                            std::to_string(bad) + "); nothing was saved");
}

// check_utf8() on every string and key of `v`, at any depth.
inline void check_json_utf8(const json::value& v, std::string_view field) {
    switch (v.kind()) {
    case json::kind::string:
        check_utf8(v.get_string(), field);
        break;
    case json::kind::array:
        for (const auto& e : v.get_array())
            check_json_utf8(e, field);
        break;
    case json::kind::object:
        for (const auto& kv : v.get_object()) {
            check_utf8(kv.key(), field);
            check_json_utf8(kv.value(), field);
        }
        break;
    default:
        break;
    }
}

// check_utf8() on every key and value of a session's or an exchange's `extra`.
inline void check_extra(const json::object& extra) {
    for (const auto& kv : extra) {
        check_utf8(kv.key(), "extra");
        check_json_utf8(kv.value(), "extra");
    }
}

// check_utf8() on every text of an exchange.
inline void check_text(const exchange& ex) {
    check_utf8(ex.query, "query");
    check_utf8(ex.answer, "answer");
    if (ex.summary)
        check_utf8(*ex.summary, "summary");
    if (ex.model)
        check_utf8(*ex.model, "model");
    for (const auto& e : ex.tool_calls)
        check_json_utf8(e, "tool_calls");
    check_extra(ex.extra);
}

// check_utf8() on every text of a session's metadata that a store keeps: its title and
// extra, and the id it was forked from.
inline void check_meta_text(const session_meta& m) {
    check_utf8(m.title, "title");
    check_extra(m.extra);
    if (m.forked_from)
        check_utf8(m.forked_from->id, "forked_from");
}

} // namespace dexter::sessions::detail
