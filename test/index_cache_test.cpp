// SPDX-License-Identifier: BSL-1.0
// detail/index_cache.hpp on real files, without a store: an index built from an empty
// root and from history files written behind its back, entry lookup, an entry corrected
// from a scan of its history, an index rebuilt when index.json is of no use, unreadable
// sessions, and the cleanup of an interrupted creation. index.json itself is tested in
// index_file_test.cpp.
#include <dexter/sessions/detail/index_cache.hpp>

#define BOOST_TEST_MODULE index_cache
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/store_root.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using ds::test::contains;
using ds::test::make_exchange;
using ds::test::make_meta;
using ds::test::read_bytes;
using ds::test::store_root;
using ds::test::write_bytes;

namespace {

const std::string channel = "cli";
const std::string boot = "boot-of-this-test";

// A root with its channel directory and changes.log, and what an index_cache needs of
// it: what a store holds, without the store.
template <class Ops = ds::detail::posix_ops>
struct fixture {
    store_root root;
    Ops ops;
    ds::detail::unique_fd channel_fd = store_root::open_directory(root.path / channel);
    ds::detail::change_log<Ops> log;
    std::vector<ds::diagnostic> notes;
    std::size_t max_index_bytes = 64u << 20;
    ds::detail::index_cache<Ops> index;

    fixture() { BOOST_TEST_REQUIRE(!log.open(ops, root.fd.get(), root.path.string())); }

    ds::detail::index_context<Ops> context() {
        return {ops, root.fd.get(), root.path, channel_fd.get(), channel,
                log, boot,          1u << 20,  max_index_bytes,  notes};
    }

    fs::path history(const std::string& id) const {
        return root.path / channel / id / "history.jsonl";
    }

    // Session `id` with exchanges 1..n, written behind the index's back.
    std::string write_session(const std::string& id, std::uint64_t n) {
        fs::create_directories(root.path / channel / id);
        const std::string text = ds::test::history_text(make_meta(id), n, make_exchange);
        write_bytes(history(id), text);
        return text;
    }

    const ds::detail::index_entry* entry(const std::string& id) const {
        return index.entry(channel, id);
    }

    // index.json as it is on disk, decoded.
    ds::detail::index_data on_disk() const {
        auto decoded = ds::detail::decode_index(read_bytes(root.path / "index.json"));
        BOOST_TEST_REQUIRE((decoded.state == ds::detail::index_decode::status::ok), decoded.why);
        return decoded.data;
    }

    std::vector<fs::path> quarantined() const {
        std::vector<fs::path> out;
        if (fs::exists(root.path / "quarantine"))
            for (const auto& e : fs::directory_iterator(root.path / "quarantine"))
                out.push_back(e.path());
        return out;
    }
};

bool noted(const std::vector<ds::diagnostic>& notes, std::string_view part) {
    for (const auto& n : notes)
        if (contains(n.reason, part))
            return true;
    return false;
}

// Opening any history fails with `err`.
struct history_open_fails : ds::detail::posix_ops {
    int err = EACCES;
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        if (std::string_view(path) == "history.jsonl") {
            errno = err;
            return -1;
        }
        return posix_ops::openat(dirfd, path, flags, mode);
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(refresh)

BOOST_AUTO_TEST_CASE(an_empty_root_gives_an_empty_index_written_to_disk) {
    fixture f;
    f.index.refresh(f.context(), false);
    const auto* sessions = f.index.sessions_of(channel);
    BOOST_TEST_REQUIRE(sessions != nullptr);
    BOOST_TEST(sessions->sessions.empty());
    BOOST_TEST(f.entry("aaaa0001") == nullptr);
    BOOST_TEST(f.notes.empty());
    BOOST_TEST(!f.index.dirty(), "a first full verification is written even by a reader");
    const auto disk = f.on_disk();
    BOOST_TEST(disk.boot_id == boot);
    BOOST_TEST(disk.channels.count(channel) == 1u);
    BOOST_TEST(ds::test::mode_of(f.root.path / "index.json") == 0600u);
}

BOOST_AUTO_TEST_CASE(sessions_written_behind_its_back_are_found) {
    fixture f;
    const std::string text = f.write_session("aaaa0001", 3);
    f.write_session("bbbb0002", 1);
    fs::create_directories(f.root.path / "other" / "cccc0003");
    write_bytes(f.root.path / "other" / "cccc0003" / "history.jsonl",
                ds::test::history_text(make_meta("cccc0003"), 2, make_exchange));
    f.index.refresh(f.context(), false);

    const auto* e = f.entry("aaaa0001");
    BOOST_TEST_REQUIRE(e != nullptr);
    BOOST_TEST(e->meta.exchange_count == 3u);
    BOOST_TEST(e->meta.title == make_meta("aaaa0001").title);
    BOOST_TEST(e->size == text.size());
    BOOST_TEST(e->lines == 4u);
    BOOST_TEST(!e->no_header);
    BOOST_TEST_REQUIRE(f.entry("bbbb0002") != nullptr);
    BOOST_TEST(f.entry("bbbb0002")->meta.exchange_count == 1u);
    // Other channels of the root are indexed too, and nothing of theirs leaks into ours.
    const auto* other = f.index.entry("other", "cccc0003");
    BOOST_TEST_REQUIRE(other != nullptr);
    BOOST_TEST(other->meta.exchange_count == 2u);
    BOOST_TEST(f.entry("cccc0003") == nullptr);
    BOOST_TEST(f.on_disk().channels.at(channel).sessions.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_change_recorded_in_the_log_is_caught_up_with) {
    fixture f;
    f.write_session("aaaa0001", 2);
    f.index.refresh(f.context(), true);
    BOOST_TEST_REQUIRE(f.entry("aaaa0001")->meta.exchange_count == 2u);
    {
        ds::detail::change_lock<ds::detail::posix_ops> lock(f.ops, f.log, channel, "aaaa0001");
        std::string more;
        ds::detail::encode_exchange(more, make_exchange(3));
        write_bytes(f.history("aaaa0001"), read_bytes(f.history("aaaa0001")) + more);
    }
    f.index.refresh(f.context(), true);
    BOOST_TEST(f.entry("aaaa0001")->meta.exchange_count == 3u);
    BOOST_TEST(f.on_disk().channels.at(channel).sessions.at("aaaa0001").meta.exchange_count == 3u);
}

BOOST_AUTO_TEST_CASE(an_interrupted_creation_is_cleaned_up) {
    fixture f;
    fs::create_directories(f.root.path / channel / "aaaa0001"); // mkdir, then a crash
    f.write_session("bbbb0002", 0);
    // A header cut short, and nothing after it: a kill during the first save.
    write_bytes(f.history("bbbb0002"), read_bytes(f.history("bbbb0002")).substr(0, 20));
    f.index.refresh(f.context(), false);
    BOOST_TEST(!fs::exists(f.root.path / channel / "aaaa0001"));
    BOOST_TEST(!fs::exists(f.root.path / channel / "bbbb0002"));
    BOOST_TEST(f.entry("aaaa0001") == nullptr);
    BOOST_TEST(f.entry("bbbb0002") == nullptr);
    const auto moved = f.quarantined();
    BOOST_TEST_REQUIRE(moved.size() == 1u, "the torn header was kept");
    BOOST_TEST(moved[0].filename().string().starts_with("cli-bbbb0002-unborn."));
    BOOST_TEST(read_bytes(moved[0]).size() == 20u);
    BOOST_TEST(noted(f.notes, "session 'bbbb0002' holds no exchange"));
}

BOOST_AUTO_TEST_CASE(a_failed_listing_is_an_error_not_an_empty_index) {
    struct listing_fails : ds::detail::posix_ops {
        bool armed = false;
        int list_directory(int dirfd, std::vector<ds::detail::dir_entry>& out) {
            if (armed) {
                errno = EMFILE;
                return -1;
            }
            return posix_ops::list_directory(dirfd, out);
        }
    };
    fixture<listing_fails> f;
    f.write_session("aaaa0001", 1);
    f.ops.armed = true;
    BOOST_CHECK_THROW(f.index.refresh(f.context(), true), ds::storage_error);
    BOOST_TEST(!fs::exists(f.root.path / "index.json"), "nothing was written from it");
    f.ops.armed = false;
    f.index.refresh(f.context(), true);
    BOOST_TEST(f.entry("aaaa0001") != nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(entries)

BOOST_AUTO_TEST_CASE(a_check_notices_a_change_made_behind_its_back) {
    fixture f;
    f.write_session("aaaa0001", 2);
    f.index.refresh(f.context(), true);
    // Appended by another program: not in changes.log.
    std::string more;
    ds::detail::encode_exchange(more, make_exchange(3));
    write_bytes(f.history("aaaa0001"), read_bytes(f.history("aaaa0001")) + more);
    f.index.check_session(f.context(), "aaaa0001");
    BOOST_TEST(f.entry("aaaa0001")->meta.exchange_count == 3u);
    // The correction is written at once: the next list, in any process, shows it.
    BOOST_TEST(!f.index.dirty(), "check_session() did not write its correction");
    BOOST_TEST(f.on_disk().channels.at(channel).sessions.at("aaaa0001").meta.exchange_count == 3u);
    // Appended again; this time check_all() notices it, and writes the index.
    write_bytes(
        f.history("aaaa0001"), read_bytes(f.history("aaaa0001")) + [] {
            std::string line;
            ds::detail::encode_exchange(line, make_exchange(4));
            return line;
        }());
    f.index.check_all(f.context());
    BOOST_TEST(!f.index.dirty(), "check_all() wrote the index");
    BOOST_TEST(f.on_disk().channels.at(channel).sessions.at("aaaa0001").meta.exchange_count == 4u);
    // Removed behind its back.
    fs::remove_all(f.root.path / channel / "aaaa0001");
    f.index.check_all(f.context());
    BOOST_TEST(f.entry("aaaa0001") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_session_missing_from_the_index_is_asked_for) {
    fixture f;
    f.index.refresh(f.context(), true);
    // Created after the refresh, and the channel directory's mtime not looked at again.
    f.write_session("aaaa0001", 1);
    BOOST_TEST(f.entry("aaaa0001") == nullptr);
    f.index.check_session(f.context(), "aaaa0001");
    BOOST_TEST_REQUIRE(f.entry("aaaa0001") != nullptr);
    BOOST_TEST(f.entry("aaaa0001")->meta.exchange_count == 1u);
    f.index.check_session(f.context(), "bbbb0002"); // none: no entry, no error
    BOOST_TEST(f.entry("bbbb0002") == nullptr);
}

BOOST_AUTO_TEST_CASE(an_entry_is_corrected_from_a_scan_of_its_history) {
    fixture f;
    const std::string text = f.write_session("aaaa0001", 3);
    f.index.refresh(f.context(), true);
    BOOST_TEST_REQUIRE(f.entry("aaaa0001")->meta.exchange_count == 3u);
    // The history is replaced, in place, by a shorter one (a restore): the entry, which
    // says 3 exchanges over more bytes, is wrong.
    const std::string shorter = ds::test::history_text(make_meta("aaaa0001"), 1, make_exchange);
    write_bytes(f.history("aaaa0001"), shorter);
    ds::detail::unique_fd fd(::open(f.history("aaaa0001").c_str(), O_RDONLY | O_CLOEXEC));
    std::vector<ds::diagnostic> diags;
    const auto st =
        f.index.read_state(f.context(), "aaaa0001", fd.get(), f.history("aaaa0001"), diags);
    BOOST_TEST(st.meta.exchange_count == 1u, "the history wins");
    BOOST_TEST(st.consumed == shorter.size());
    BOOST_TEST(diags.empty());
    const auto* e = f.entry("aaaa0001");
    BOOST_TEST_REQUIRE(e != nullptr);
    BOOST_TEST(e->meta.exchange_count == 1u, "the cache was corrected");
    BOOST_TEST(e->size == shorter.size());
    BOOST_TEST(f.index.dirty());
    BOOST_TEST(text.size() > shorter.size());
}

BOOST_AUTO_TEST_CASE(read_state_continues_from_a_valid_entry) {
    fixture f;
    f.write_session("aaaa0001", 2);
    f.index.refresh(f.context(), true);
    std::string more;
    ds::detail::encode_exchange(more, make_exchange(3));
    write_bytes(f.history("aaaa0001"), read_bytes(f.history("aaaa0001")) + more + "{\"torn");
    ds::detail::unique_fd fd(::open(f.history("aaaa0001").c_str(), O_RDONLY | O_CLOEXEC));
    std::vector<ds::diagnostic> diags;
    const auto st =
        f.index.read_state(f.context(), "aaaa0001", fd.get(), f.history("aaaa0001"), diags);
    BOOST_TEST(st.meta.exchange_count == 3u);
    BOOST_TEST(st.lines == 4u);
    BOOST_TEST(ds::test::mentions(diags, "incomplete last line"), ds::test::show(diags));
    BOOST_TEST(f.entry("aaaa0001")->meta.exchange_count == 2u, "a valid entry is not rewritten");
}

BOOST_AUTO_TEST_CASE(correct_and_forget_mark_the_index_for_writing) {
    fixture f;
    f.write_session("aaaa0001", 1);
    f.index.refresh(f.context(), true);
    BOOST_TEST_REQUIRE(!f.index.dirty());
    ds::detail::scan_state scan;
    scan.meta = make_meta("aaaa0001");
    scan.meta.title = "corrected";
    scan.meta.exchange_count = 7;
    scan.consumed = 123;
    scan.lines = 8;
    scan.have_header = true;
    struct stat sb {};
    BOOST_TEST_REQUIRE(::stat(f.history("aaaa0001").c_str(), &sb) == 0);
    f.index.correct(channel, "aaaa0001", scan, sb);
    BOOST_TEST(f.index.dirty());
    BOOST_TEST(f.entry("aaaa0001")->meta.title == "corrected");
    BOOST_TEST(f.entry("aaaa0001")->size == 123u);
    BOOST_TEST(f.entry("aaaa0001")->ino == static_cast<std::uint64_t>(sb.st_ino));
    f.index.forget(channel, "aaaa0001");
    BOOST_TEST(f.entry("aaaa0001") == nullptr);
    BOOST_TEST(f.index.dirty());
}

BOOST_AUTO_TEST_CASE(a_session_that_cannot_be_read_is_unreadable_not_absent) {
    fixture<history_open_fails> f;
    f.write_session("aaaa0001", 1);
    f.index.refresh(f.context(), false);
    BOOST_TEST_REQUIRE(f.index.unreadable().count("aaaa0001") == 1u);
    BOOST_TEST(f.index.unreadable().at("aaaa0001") == EACCES);
    BOOST_TEST(fs::exists(f.history("aaaa0001")), "an unreadable session is never removed");
    // Any other failure is an error, never "no such session".
    f.ops.err = EIO;
    try {
        f.index.check_session(f.context(), "aaaa0001");
        BOOST_ERROR("a history that failed with EIO was taken as read");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(e.errno_value() == EIO);
        BOOST_TEST(contains(e.what(), f.history("aaaa0001").string()), e.what());
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(index_file)

// Reading and writing index.json are index_file_test.cpp's; here, what the cache does
// when the file is of no use.
BOOST_AUTO_TEST_CASE(a_damaged_index_is_rebuilt_from_the_history_files) {
    fixture f;
    f.write_session("aaaa0001", 2);
    write_bytes(f.root.path / "index.json", "{\"format\":\"dexter-sessions-index\",\"vers");
    f.index.refresh(f.context(), false);
    BOOST_TEST(f.quarantined().size() == 1u);
    BOOST_TEST_REQUIRE(f.entry("aaaa0001") != nullptr);
    BOOST_TEST(f.entry("aaaa0001")->meta.exchange_count == 2u);
    BOOST_TEST(f.on_disk().channels.at(channel).sessions.count("aaaa0001") == 1u,
               "index.json was rebuilt");
}

BOOST_AUTO_TEST_CASE(an_index_from_a_newer_library_is_not_written_over) {
    fixture f;
    f.write_session("aaaa0001", 1);
    const std::string newer = R"({"format":"dexter-sessions-index","version":99,"channels":{}})";
    write_bytes(f.root.path / "index.json", newer);
    f.index.refresh(f.context(), true);
    BOOST_TEST(read_bytes(f.root.path / "index.json") == newer);
    BOOST_TEST(f.entry("aaaa0001") != nullptr, "listed from the history files");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(an_index_cut_anywhere_in_two_chunks_decodes_as_it_does_whole) {
    // index.json is decoded as it is read, 64 KiB at a time: a key, a channel's name or a
    // session's id may be cut between two chunks.
    ds::detail::index_data idx;
    idx.boot_id = "boot-1";
    idx.changes_inode = 7;
    idx.changes_offset = 123;
    for (const std::string ch : {"cli", "other"}) {
        auto& c = idx.channels[ch];
        c.dir_mtime_ns = 1'700'000'000'123'456'789;
        for (int i = 0; i < 3; ++i) {
            ds::detail::index_entry e;
            e.meta = make_meta("abcd000" + std::to_string(i));
            e.meta.title = "t\xC3\xA9tle \"" + std::to_string(i) + "\"";
            e.meta.exchange_count = static_cast<std::uint64_t>(i) * 10;
            e.meta.pinned = i == 1;
            if (i == 2)
                e.meta.extra = boost::json::object{{"k", boost::json::array{1, "two"}}};
            e.size = 1000u + static_cast<std::uint64_t>(i);
            e.lines = 11;
            e.ino = 99;
            e.mtime_ns = 5;
            e.file_size = e.size + 3;
            e.no_header = i == 0;
            c.sessions.emplace(e.meta.id, e);
        }
    }
    const std::string text = ds::detail::encode_index(idx);
    const auto whole = ds::detail::decode_index(text);
    BOOST_TEST_REQUIRE((whole.state == ds::detail::index_decode::status::ok), whole.why);
    BOOST_TEST_REQUIRE(whole.data.channels.size() == 2u);
    BOOST_TEST_REQUIRE((whole.data.channels.at("cli").sessions == idx.channels.at("cli").sessions));
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        ds::detail::index_decoder d;
        if (d.feed(std::string_view(text).substr(0, cut)))
            d.feed(std::string_view(text).substr(cut));
        const auto got = d.finish();
        BOOST_TEST_REQUIRE((got.state == ds::detail::index_decode::status::ok),
                           "cut at " << cut << ": " << got.why);
        BOOST_TEST_REQUIRE(got.data.boot_id == idx.boot_id, "cut at " << cut);
        for (const auto& [name, c] : idx.channels) {
            BOOST_TEST_REQUIRE(got.data.channels.count(name) == 1u, "cut at " << cut);
            BOOST_TEST_REQUIRE(got.data.channels.at(name).dir_mtime_ns == c.dir_mtime_ns);
            BOOST_TEST_REQUIRE((got.data.channels.at(name).sessions == c.sessions),
                               "cut at " << cut << " in channel " << name);
        }
    }
}
