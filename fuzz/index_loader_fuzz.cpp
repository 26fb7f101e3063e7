// SPDX-License-Identifier: BSL-1.0
// libFuzzer target: index.json decoding on arbitrary bytes, and the encode/decode round
// trip of every index that decodes.
#include <dexter/sessions/detail/jsonl_index.hpp>

#include "fuzz_support.hpp"

#include <dexter/sessions/query.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

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

// The sessions of channel `channel` of a whole decode, in listing order, without those of
// a newer format: what a partial read must give when it serves a listing.
std::vector<const ds::detail::index_entry*> listing_of(const ds::detail::index_data& d,
                                                       const std::string& channel) {
    std::vector<const ds::detail::index_entry*> out;
    if (const auto it = d.channels.find(channel); it != d.channels.end())
        for (const auto& kv : it->second.sessions)
            if (!kv.second.newer_version)
                out.push_back(&kv.second);
    std::sort(out.begin(), out.end(), ds::detail::newest_first);
    return out;
}

// What a partial read is told the index must say to be current: the values of the seed
// newest-first-two-channels.json.
void expect_current(ds::detail::index_decoder::partial_read& part, const std::string& channel) {
    part.channel = &channel;
    part.boot_id = "b";
    part.log_inode = 7;
    part.log_size = 12;
    part.dir_mtime_ns = 5;
}

// Whether the whole decode `d` says what expect_current() expects.
bool says_current(const ds::detail::index_decode& d, const std::string& channel) {
    const auto ch = d.data.channels.find(channel);
    return d.data.boot_id == "b" && d.data.changes_inode == 7 && d.data.changes_offset == 12 &&
           ch != d.data.channels.end() && ch->second.dir_mtime_ns == 5;
}

// A partial read (index_decoder::partial_read) of `text`, as a listing and as a page of
// `limit` sessions, split into two chunks at `cut`: whenever it serves, the file says it
// is current, and it serves what the whole decode `whole` (status ok) says, in listing
// order.
void check_partial_reads(std::string_view text, const ds::detail::index_decode& whole,
                         std::size_t limit, std::size_t cut) {
    using status = ds::detail::index_decode::status;
    const std::string channel = "cli";
    const auto feed = [&](ds::detail::index_decoder& d) {
        if (d.feed(text.substr(0, cut)))
            d.feed(text.substr(cut));
    };
    bool listing_served = false;
    {
        std::vector<ds::session_meta> all;
        ds::detail::index_decoder::partial_read part;
        expect_current(part, channel);
        part.all = &all;
        ds::detail::index_decoder d(part);
        feed(d);
        const bool served = part.complete && !part.unusable && d.finish().state == status::ok;
        if (served) {
            listing_served = true;
            DEXTER_FUZZ_CHECK(whole.state == status::ok, "a listing served from a bad index");
            DEXTER_FUZZ_CHECK(says_current(whole, channel), "a listing served from a stale index");
            const auto want = listing_of(whole.data, channel);
            DEXTER_FUZZ_CHECK(all.size() == want.size(), "a listing of another length");
            for (std::size_t i = 0; i < all.size(); ++i)
                DEXTER_FUZZ_CHECK(all[i].id == want[i]->meta.id &&
                                      fz::meta_near(all[i], want[i]->meta),
                                  "a listing differs at " + std::to_string(i));
        }
    }
    {
        const ds::page_request r{limit, std::nullopt, {}};
        ds::detail::index_decoder::partial_read part;
        expect_current(part, channel);
        part.request = &r;
        ds::detail::index_decoder d(part);
        feed(d);
        // A page that holds all the channel's sessions read the whole file, and is served
        // only when it is a good index (index_cache::read_partially()): then the listing
        // is served too.
        const bool short_page = part.picked.size() <= limit;
        const bool served =
            part.complete && !part.unusable && (!short_page || d.finish().state == status::ok);
        if (served && short_page)
            DEXTER_FUZZ_CHECK(listing_served, "a short page served where the listing is not");
        if (served)
            DEXTER_FUZZ_CHECK(whole.state != status::ok || says_current(whole, channel),
                              "a page served from a stale index");
        // Compared where the whole file is a good index in listing order without a
        // session twice (the listing was served): a page that stopped early does not read
        // far enough to know of a copy further on, which a whole read would take instead.
        if (served && listing_served) {
            std::vector<const ds::detail::index_entry*> want;
            for (const auto* e : listing_of(whole.data, channel))
                if (ds::page_admits(e->meta, r) && want.size() <= limit)
                    want.push_back(e);
            DEXTER_FUZZ_CHECK(part.picked.size() == want.size(), "a page of another length");
            for (std::size_t i = 0; i < part.picked.size(); ++i)
                DEXTER_FUZZ_CHECK(part.picked[i] == *want[i],
                                  "a page differs at " + std::to_string(i));
        }
    }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    ds::detail::index_decode first;
    try {
        first = ds::detail::decode_index(text);
    } catch (const std::exception& e) {
        DEXTER_FUZZ_CHECK(false, std::string("decode_index threw: ") + e.what());
    }
    using status = ds::detail::index_decode::status;
    check_partial_reads(text, first, size ? data[0] % 8 : 0,
                        size ? data[size / 2] % (size + 1) : 0);
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
