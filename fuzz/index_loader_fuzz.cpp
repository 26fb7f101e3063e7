// SPDX-License-Identifier: BSL-1.0
// libFuzzer target: index.json decoding on arbitrary bytes, and the encode/decode round
// trip of every index that decodes.
#include <dexter/sessions/detail/jsonl_index.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace ds = dexter::sessions;
namespace fz = dexter::sessions::fuzz;

namespace {

// Equal index data (doubles inside `extra` may drift by an ulp through Boost.JSON).
bool same(const ds::detail::index_data& a, const ds::detail::index_data& b, std::string& why) {
    auto fail = [&](std::string what) {
        why = std::move(what);
        return false;
    };
    if (a.boot_id != b.boot_id)
        return fail("boot_id");
    if (a.changes_inode != b.changes_inode || a.changes_offset != b.changes_offset)
        return fail("changes position");
    if (a.channels.size() != b.channels.size())
        return fail("channel count");
    for (const auto& [name, ch] : a.channels) {
        const auto it = b.channels.find(name);
        if (it == b.channels.end())
            return fail("channel " + name + " lost");
        if (ch.dir_mtime_ns != it->second.dir_mtime_ns)
            return fail("dir_mtime_ns of " + name);
        if (ch.sessions.size() != it->second.sessions.size())
            return fail("session count of " + name);
        for (const auto& [id, e] : ch.sessions) {
            const auto s = it->second.sessions.find(id);
            if (s == it->second.sessions.end())
                return fail("session " + id + " lost");
            const auto& f = s->second;
            if (!fz::meta_near(e.meta, f.meta) || e.size != f.size || e.lines != f.lines ||
                e.newer_version != f.newer_version)
                return fail("entry of session " + id);
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    ds::detail::index_decode first;
    try {
        first = ds::detail::decode_index(text);
    } catch (const std::exception& e) {
        DEXTER_FUZZ_CHECK(false, std::string("decode_index threw: ") + e.what());
    }
    using status = ds::detail::index_decode::status;
    if (first.state == status::corrupt) {
        DEXTER_FUZZ_CHECK(!first.why.empty(), "a corrupt index without a reason");
        return 0;
    }
    if (first.state == status::newer) {
        DEXTER_FUZZ_CHECK(first.version > ds::detail::index_format_version,
                          "'newer' for version " + std::to_string(first.version));
        return 0;
    }
    for (const auto& [name, ch] : first.data.channels) {
        DEXTER_FUZZ_CHECK(ds::is_valid_channel(name), "accepted channel " + name);
        for (const auto& [id, e] : ch.sessions) {
            DEXTER_FUZZ_CHECK(ds::is_valid_session_id(id), "accepted session id " + id);
            DEXTER_FUZZ_CHECK(e.meta.id == id, "entry id differs from its key");
            DEXTER_FUZZ_CHECK(fz::all_utf8(boost::json::value(e.meta.title)) &&
                                  fz::all_utf8(boost::json::value(e.meta.extra)),
                              "accepted text that is not UTF-8");
        }
    }

    std::string encoded;
    try {
        encoded = ds::detail::encode_index(first.data);
    } catch (const std::exception& e) {
        DEXTER_FUZZ_CHECK(false, std::string("encode_index threw on decoded data: ") + e.what());
    }
    const auto second = ds::detail::decode_index(encoded);
    DEXTER_FUZZ_CHECK(second.state == status::ok,
                      "an encoded index does not decode: " + second.why + "\n" + encoded);
    std::string why;
    DEXTER_FUZZ_CHECK(same(first.data, second.data, why),
                      "the round trip changed the index (" + why + ")\n" + encoded);
    // Encoding is a fixpoint from the second round on (doubles have settled by then).
    const std::string again = ds::detail::encode_index(second.data);
    const auto third = ds::detail::decode_index(again);
    DEXTER_FUZZ_CHECK(third.state == status::ok && same(second.data, third.data, why),
                      "the second round trip changed the index");
    return 0;
}
