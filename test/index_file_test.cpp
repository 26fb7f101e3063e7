// SPDX-License-Identifier: BSL-1.0
// detail/index_file.hpp on real files, without a store or an index_cache: index.json
// written and read back, a damaged one moved to quarantine and reported, an oversized one
// refused without being read, one from a newer library left untouched, a failed write
// reported once, and notes that are not repeated.
#include <dexter/sessions/detail/index_file.hpp>

#define BOOST_TEST_MODULE index_file
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
using ds::test::make_meta;
using ds::test::read_bytes;
using ds::test::store_root;
using ds::test::write_bytes;

namespace {

// Counts the bytes read through the seam, and fails renames when asked to.
struct counting_ops : ds::detail::posix_ops {
    std::size_t bytes_read = 0;
    int fail_rename = 0; ///< nonzero: renameat fails with this errno
    ssize_t pread(int fd, void* buf, size_t n, off_t off) {
        const ssize_t got = posix_ops::pread(fd, buf, n, off);
        if (got > 0)
            bytes_read += static_cast<std::size_t>(got);
        return got;
    }
    int renameat(int from_dir, const char* from, int to_dir, const char* to) {
        if (fail_rename) {
            errno = fail_rename;
            return -1;
        }
        return posix_ops::renameat(from_dir, from, to_dir, to);
    }
};

// A root, and what an index_file needs of it.
struct fixture {
    store_root root;
    counting_ops ops;
    std::vector<ds::diagnostic> notes;
    std::size_t max_index_bytes = 64u << 20;
    ds::detail::index_file<counting_ops> file;

    ds::detail::index_file_context<counting_ops> context() {
        return {ops, root.fd.get(), root.path, max_index_bytes, notes};
    }

    fs::path index_path() const { return root.path / "index.json"; }

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

// An index of two sessions of channel "cli".
ds::detail::index_data sample_index() {
    ds::detail::index_data d;
    d.boot_id = "boot-of-this-test";
    d.changes_inode = 42;
    d.changes_offset = 1234;
    auto& ch = d.channels["cli"];
    ch.dir_mtime_ns = 1'700'000'000'123'456'789;
    for (const char* id : {"aaaa0001", "aaaa0002"}) {
        ds::detail::index_entry e;
        e.meta = make_meta(id);
        e.meta.exchange_count = 3;
        e.size = 900;
        e.lines = 4;
        e.ino = 77;
        e.mtime_ns = 1'700'000'000'000'000'001;
        e.file_size = 910;
        ch.sessions.emplace(id, e);
    }
    return d;
}

} // namespace

BOOST_AUTO_TEST_CASE(an_index_written_is_read_back_as_it_was) {
    fixture f;
    const auto written = sample_index();
    BOOST_TEST_REQUIRE(f.file.write(f.context(), written));
    BOOST_TEST(ds::test::mode_of(f.index_path()) == 0600u);
    BOOST_TEST(!fs::exists(f.root.path / "index.json.tmp"));
    ds::detail::index_file<counting_ops> reader;
    ds::detail::index_data read;
    BOOST_TEST(!reader.load(f.context(), read), "a usable index needs no full verification");
    BOOST_TEST(read.boot_id == written.boot_id);
    BOOST_TEST(read.changes_inode == written.changes_inode);
    BOOST_TEST(read.changes_offset == written.changes_offset);
    BOOST_TEST_REQUIRE(read.channels.count("cli") == 1u);
    BOOST_TEST(read.channels.at("cli").dir_mtime_ns == written.channels.at("cli").dir_mtime_ns);
    BOOST_TEST((read.channels.at("cli").sessions == written.channels.at("cli").sessions));
    BOOST_TEST(f.notes.empty(), ds::test::show(f.notes));

    // Unchanged since it was read: not read again, and `data` is left alone.
    const std::size_t before = f.ops.bytes_read;
    ds::detail::index_data untouched;
    untouched.boot_id = "kept";
    BOOST_TEST(!reader.load(f.context(), untouched));
    BOOST_TEST(untouched.boot_id == "kept");
    BOOST_TEST(f.ops.bytes_read == before);
}

BOOST_AUTO_TEST_CASE(no_index_means_verify_everything) {
    fixture f;
    auto data = sample_index();
    BOOST_TEST(f.file.load(f.context(), data));
    BOOST_TEST(data.channels.empty());
    BOOST_TEST(f.notes.empty());
    BOOST_TEST(f.file.writable());
}

BOOST_AUTO_TEST_CASE(a_damaged_index_is_moved_to_quarantine_and_reported) {
    fixture f;
    const std::string damaged = "{\"format\":\"dexter-sessions-index\",\"vers";
    write_bytes(f.index_path(), damaged);
    auto data = sample_index();
    BOOST_TEST(f.file.load(f.context(), data));
    BOOST_TEST(data.channels.empty(), "nothing of a damaged index is used");
    const auto moved = f.quarantined();
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(moved[0].filename().string().starts_with("index.json."));
    BOOST_TEST(read_bytes(moved[0]) == damaged, "the damaged bytes are kept as they were");
    BOOST_TEST(!fs::exists(f.index_path()));
    BOOST_TEST(noted(f.notes, "is damaged"), ds::test::show(f.notes));
    BOOST_TEST(noted(f.notes, "moved to " + moved[0].string()), ds::test::show(f.notes));
    BOOST_TEST(f.file.writable(), "the rebuilt index may be written");
}

BOOST_AUTO_TEST_CASE(an_index_over_the_size_limit_is_refused_without_being_read) {
    fixture f;
    BOOST_TEST_REQUIRE(f.file.write(f.context(), sample_index()));
    const std::string good = read_bytes(f.index_path());
    f.max_index_bytes = good.size() - 1;
    ds::detail::index_file<counting_ops> fresh;
    ds::detail::index_data data;
    const std::size_t before = f.ops.bytes_read;
    BOOST_TEST(fresh.load(f.context(), data));
    BOOST_TEST(f.ops.bytes_read == before, "not a byte of it was read");
    BOOST_TEST(data.channels.empty());
    const auto moved = f.quarantined();
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(read_bytes(moved[0]) == good);
    BOOST_TEST(noted(f.notes, "over the limit"), ds::test::show(f.notes));
}

BOOST_AUTO_TEST_CASE(an_index_from_a_newer_library_is_left_untouched) {
    fixture f;
    const std::string newer = R"({"format":"dexter-sessions-index","version":99,"channels":{}})";
    write_bytes(f.index_path(), newer);
    ds::detail::index_data data;
    BOOST_TEST(f.file.load(f.context(), data));
    BOOST_TEST(!f.file.writable());
    BOOST_TEST(!f.file.write(f.context(), sample_index()), "never written over");
    BOOST_TEST(read_bytes(f.index_path()) == newer);
    BOOST_TEST(f.quarantined().empty());
    BOOST_TEST(noted(f.notes, "format version 99"), ds::test::show(f.notes));
}

BOOST_AUTO_TEST_CASE(a_failed_write_is_reported_once) {
    fixture f;
    f.ops.fail_rename = ENOSPC;
    BOOST_TEST(!f.file.write(f.context(), sample_index()));
    BOOST_TEST(!f.file.write(f.context(), sample_index()));
    BOOST_TEST_REQUIRE(f.notes.size() == 1u, ds::test::show(f.notes));
    BOOST_TEST(contains(f.notes[0].reason, "could not update " + f.index_path().string()));
    BOOST_TEST(contains(f.notes[0].reason, std::strerror(ENOSPC)));
    BOOST_TEST(!fs::exists(f.index_path()));
    BOOST_TEST(!fs::exists(f.root.path / "index.json.tmp"), "the temp file is removed");
    f.ops.fail_rename = 0;
    BOOST_TEST(f.file.write(f.context(), sample_index()), "a later write may succeed");
    BOOST_TEST(f.notes.size() == 1u);
}

BOOST_AUTO_TEST_CASE(notes_are_not_repeated) {
    fixture f;
    write_bytes(f.index_path(), R"({"format":"dexter-sessions-index","version":99})");
    ds::detail::index_data data;
    f.file.load(f.context(), data);
    ds::detail::index_file<counting_ops> again;
    again.load(f.context(), data);
    BOOST_TEST(f.notes.size() == 1u, ds::test::show(f.notes));
    std::vector<ds::diagnostic> notes;
    ds::detail::note_once(notes, "one");
    ds::detail::note_once(notes, "two");
    ds::detail::note_once(notes, "one");
    BOOST_TEST_REQUIRE(notes.size() == 2u);
    BOOST_TEST(notes[0].reason == "one");
    BOOST_TEST(notes[1].reason == "two");
}
