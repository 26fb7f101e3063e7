// SPDX-License-Identifier: BSL-1.0
// detail/quarantine.hpp on real files, without a store: torn tails found and cut off
// after their bytes were copied aside, names that never repeat, copies that fail
// leaving nothing behind, and whole files moved in unless they were replaced.
#include <dexter/sessions/detail/quarantine.hpp>

#define BOOST_TEST_MODULE quarantine
#include <boost/test/unit_test.hpp>

#include "support/fd_path.hpp"
#include "support/history_files.hpp"
#include "support/store_root.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using ds::test::contains;
using ds::test::make_exchange;
using ds::test::make_meta;
using ds::test::read_bytes;
using ds::test::store_root;
using ds::test::write_bytes;

namespace {

using quarantine = ds::detail::quarantine<ds::detail::posix_ops>;
using change_log = ds::detail::change_log<ds::detail::posix_ops>;

const std::string id = "aaaa0001";

// A root with changes.log open and the history of session `id` holding `text`.
struct fixture {
    store_root root;
    ds::detail::posix_ops ops;
    change_log log;
    fs::path history = root.path / "cli" / id / "history.jsonl";
    ds::detail::unique_fd file;

    explicit fixture(const std::string& text) {
        BOOST_TEST_REQUIRE(!log.open(ops, root.fd.get(), root.path.string()).has_value());
        fs::create_directory(root.path / "cli" / id);
        write_bytes(history, text);
        file.reset(::open(history.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
        BOOST_TEST_REQUIRE(static_cast<bool>(file));
    }

    quarantine q() { return quarantine(ops, root.fd.get(), root.path.string()); }

    std::optional<ds::detail::tail_repair> repair(std::size_t max_record = 1u << 20) {
        return q().repair_tail(file.get(), log, "cli", id, history.string(), max_record);
    }

    // Everything in <root>/quarantine, by name.
    std::map<std::string, std::string> quarantined() const {
        std::map<std::string, std::string> out;
        if (!fs::exists(root.path / "quarantine"))
            return out;
        for (const auto& e : fs::directory_iterator(root.path / "quarantine"))
            out[e.path().filename().string()] = read_bytes(e.path());
        return out;
    }
};

std::string complete_history(std::uint64_t n) {
    return ds::test::history_text(make_meta(id), n, make_exchange);
}

// Fails every write to a file whose name starts with `prefix` (a full disk there).
struct full_disk_for : ds::detail::posix_ops {
    std::string prefix;
    int hits = 0;
    ssize_t write(int fd, const void* data, std::size_t n) {
        if (fs::path(ds::test::fd_path(fd)).filename().string().starts_with(prefix)) {
            ++hits;
            errno = ENOSPC;
            return -1;
        }
        return posix_ops::write(fd, data, n);
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(torn_tails)

BOOST_AUTO_TEST_CASE(a_record_without_its_newline_is_moved_to_quarantine_and_cut_off) {
    const std::string good = complete_history(3);
    std::string torn;
    ds::detail::encode_exchange(torn, make_exchange(4));
    torn.pop_back(); // the newline never reached the disk
    torn.resize(torn.size() / 2);
    fixture f(good + torn);

    const auto done = f.repair();
    BOOST_TEST_REQUIRE(done.has_value());
    BOOST_TEST(done->cut == good.size());
    BOOST_TEST(read_bytes(f.history) == good, "the history ends with its last complete line");
    const auto moved = f.quarantined();
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(moved.begin()->first.starts_with("cli-" + id + "-tail."));
    BOOST_TEST(moved.begin()->second == torn, "the quarantine holds exactly the torn bytes");
    BOOST_TEST(contains(done->what, std::to_string(torn.size()) + " bytes"), done->what);
    BOOST_TEST(contains(done->what, (f.root.path / "quarantine" / moved.begin()->first).string()),
               done->what);
    // Readers learn that the file shrank.
    BOOST_TEST(contains(read_bytes(f.root.path / "changes.log"), "\ncli/" + id + "\n"));
    // Done once: the history is whole now.
    BOOST_TEST(!f.repair().has_value());
    BOOST_TEST(f.quarantined().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_complete_last_line_that_is_not_json_is_cut_too) {
    const std::string good = complete_history(2);
    const std::string bad = "{\"type\":\"exchange\",\"seq\":3,\"que\n";
    fixture f(good + bad);

    const auto done = f.repair();
    BOOST_TEST_REQUIRE(done.has_value());
    BOOST_TEST(done->cut == good.size());
    BOOST_TEST(read_bytes(f.history) == good);
    const auto moved = f.quarantined();
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(moved.begin()->second == bad);
}

BOOST_AUTO_TEST_CASE(a_history_that_ends_with_a_record_is_left_alone) {
    const std::string good = complete_history(3);
    fixture f(good);
    BOOST_TEST(!f.repair().has_value());
    BOOST_TEST(read_bytes(f.history) == good);
    BOOST_TEST(!fs::exists(f.root.path / "quarantine"), "nothing was created");
    BOOST_TEST(read_bytes(f.root.path / "changes.log").empty(), "no change was recorded");
}

BOOST_AUTO_TEST_CASE(a_last_line_over_the_record_limit_is_left_alone) {
    const std::string good = complete_history(1);
    const std::string long_line = std::string(200, 'x') + "\n";
    fixture f(good + long_line);
    BOOST_TEST(!f.repair(100).has_value());
    BOOST_TEST(read_bytes(f.history) == good + long_line);
    // Within the limit, the same line is not JSON: cut.
    const auto done = f.repair(1000);
    BOOST_TEST_REQUIRE(done.has_value());
    BOOST_TEST(read_bytes(f.history) == good);
}

BOOST_AUTO_TEST_CASE(a_tail_that_cannot_be_copied_stays_where_it_was) {
    const std::string good = complete_history(2);
    const std::string text = good + "{\"type\":\"exch";
    store_root root;
    full_disk_for ops;
    ops.prefix = "cli-" + id + "-tail.";
    ds::detail::change_log<full_disk_for> log;
    BOOST_TEST_REQUIRE(!log.open(ops, root.fd.get(), root.path.string()).has_value());
    fs::create_directory(root.path / "cli" / id);
    const fs::path history = root.path / "cli" / id / "history.jsonl";
    write_bytes(history, text);
    ds::detail::unique_fd file(::open(history.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    ds::detail::quarantine<full_disk_for> q(ops, root.fd.get(), root.path.string());
    BOOST_CHECK_THROW(q.repair_tail(file.get(), log, "cli", id, history.string(), 1u << 20),
                      ds::storage_error);
    BOOST_TEST(ops.hits == 1);
    BOOST_TEST(read_bytes(history) == text, "nothing is cut before it is copied");
    BOOST_TEST(fs::is_empty(root.path / "quarantine"), "no partial copy is left behind");
}

BOOST_AUTO_TEST_CASE(the_last_line_end_is_found_across_read_chunks) {
    // One newline early on, then more than a read chunk of bytes without one.
    const std::string text = "0123456789\n" + std::string(ds::detail::read_chunk + 100, 'y');
    fixture f(text);
    BOOST_TEST(f.q().last_line_end(f.file.get(), f.history.string(), text.size()) == 11u);
    BOOST_TEST(f.q().last_line_end(f.file.get(), f.history.string(), 10) == 0u);
    BOOST_TEST(f.q().last_line_end(f.file.get(), f.history.string(), 11) == 11u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(names_and_moves)

BOOST_AUTO_TEST_CASE(names_are_unique_and_say_what_they_hold) {
    store_root root;
    ds::detail::posix_ops ops;
    quarantine q(ops, root.fd.get(), root.path.string());
    std::set<std::string> names;
    for (int i = 0; i < 2000; ++i) {
        const auto name = q.unique_name("cli-" + id + "-tail");
        BOOST_TEST_REQUIRE(name.starts_with("cli-" + id + "-tail."));
        BOOST_TEST_REQUIRE(contains(name, "." + std::to_string(::getpid()) + "."));
        BOOST_TEST_REQUIRE(name.find('/') == std::string::npos);
        names.insert(name);
    }
    BOOST_TEST(names.size() == 2000u, "no name was handed out twice");
    // Another quarantine object of the same root does not repeat them either.
    quarantine other(ops, root.fd.get(), root.path.string());
    BOOST_TEST(!names.count(other.unique_name("cli-" + id + "-tail")));
}

BOOST_AUTO_TEST_CASE(copied_bytes_can_be_taken_back) {
    fixture f("abcdefghijklmnopqrstuvwxyz\n");
    const std::string path = f.q().copy_bytes(f.file.get(), 3, 10, "label");
    BOOST_TEST(read_bytes(path) == "defghij");
    BOOST_TEST(ds::test::mode_of(path) == 0600u, "quarantined bytes are the owner's alone");
    BOOST_TEST(ds::test::mode_of(f.root.path / "quarantine") == 0700u);
    BOOST_TEST(read_bytes(f.history) == "abcdefghijklmnopqrstuvwxyz\n", "the original stays");
    f.q().remove(path);
    BOOST_TEST(!fs::exists(path));
    BOOST_TEST(f.quarantined().empty());
}

BOOST_AUTO_TEST_CASE(a_file_is_moved_in_unless_it_was_replaced) {
    store_root root;
    ds::detail::posix_ops ops;
    quarantine q(ops, root.fd.get(), root.path.string());
    const fs::path index = root.path / "index.json";
    write_bytes(index, "{damaged");
    struct stat damaged {};
    BOOST_TEST_REQUIRE(::stat(index.c_str(), &damaged) == 0);

    // Replaced meanwhile by another process's fresh file: left where it is.
    write_bytes(root.path / "fresh", "{}");
    fs::rename(root.path / "fresh", index);
    BOOST_TEST(q.move_in("index.json", damaged).empty());
    BOOST_TEST(read_bytes(index) == "{}");

    struct stat now {};
    BOOST_TEST_REQUIRE(::stat(index.c_str(), &now) == 0);
    const std::string moved = q.move_in("index.json", now);
    BOOST_TEST_REQUIRE(!moved.empty());
    BOOST_TEST(!fs::exists(index));
    BOOST_TEST(fs::path(moved).parent_path() == root.path / "quarantine");
    BOOST_TEST(fs::path(moved).filename().string().starts_with("index.json."));
    BOOST_TEST(read_bytes(moved) == "{}");
    // Gone: nothing to move, and no exception.
    BOOST_TEST(q.move_in("index.json", now).empty());
}

BOOST_AUTO_TEST_SUITE_END()
