// SPDX-License-Identifier: BSL-1.0
// The benchmark workload: deterministic exchanges shaped like an agent's (a ~200-byte
// question, a ~4 KB Markdown answer and a ~200-byte summary of realistic text,
// realistic_text.hpp), and stores of many sessions written straight to disk.
#pragma once

#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/types.hpp>

#include "realistic_text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bench {

namespace ds = dexter::sessions;

/// Exchange `seq` of the workload: a realistic question (~200 bytes), answer (~4 KB of
/// Markdown) and summary (~200 bytes), see realistic_text.hpp; the same for the same seq.
inline ds::exchange make_exchange(std::uint64_t seq) {
    rng r(seq * 7919 + 17);
    ds::exchange ex;
    ex.seq = seq;
    ex.timestamp = ds::time_point{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}} +
                   std::chrono::seconds{static_cast<long>(seq)};
    ex.query = realistic_line(r, 200);
    ex.answer = realistic_answer(r, 4000);
    ex.summary = realistic_line(r, 200);
    ex.model = "gpt-bench";
    ex.duration_ms = 1000 + seq % 5000;
    return ex;
}

/// Exchange `seq` of the easy workload of earlier tables (easy_text(): short ASCII words,
/// a 4,000-byte answer); only figure 2e uses it.
inline ds::exchange make_easy_exchange(std::uint64_t seq) {
    rng r(seq * 7919 + 17);
    ds::exchange ex = make_exchange(seq);
    ex.query = easy_text(r, 200, false);
    ex.answer = easy_text(r, 4000, true);
    ex.summary = easy_text(r, 200, false);
    return ex;
}

/// Checks the workload before anything is measured: `exchanges` exchanges are valid UTF-8,
/// hold every promised kind of text, and have the promised sizes (mean answer 3.5-4.5 KB,
/// mean question and summary 150-250 bytes, every exchange with a summary). Throws
/// std::runtime_error naming what is wrong; returns a line that says what it found.
inline std::string check_workload(std::uint64_t exchanges = 500) {
    // The check itself must be able to fail: a lone lead byte, an overlong form, a
    // surrogate, a code point past U+10FFFF.
    for (const std::string_view bad : {"caf\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
        bool refused = false;
        try {
            text_mix{}.count(bad);
        } catch (const std::runtime_error&) {
            refused = true;
        }
        if (!refused)
            throw std::runtime_error("workload: the UTF-8 check accepts invalid text");
    }
    text_mix answers, lines;
    for (std::uint64_t s = 1; s <= exchanges; ++s) {
        const ds::exchange ex = make_exchange(s);
        if (!ex.summary)
            throw std::runtime_error("workload: exchange without a summary");
        answers.count(ex.answer);
        lines.count(ex.query);
        lines.count(*ex.summary);
    }
    answers.require_all("the answers");
    if (answers.headings == 0 || answers.fences == 0)
        throw std::runtime_error("workload: answers without headings or code fences");
    const double answer = static_cast<double>(answers.bytes) / static_cast<double>(exchanges);
    const double line = static_cast<double>(lines.bytes) / static_cast<double>(2 * exchanges);
    if (answer < 3500 || answer > 4500 || line < 150 || line > 250)
        throw std::runtime_error("workload: mean answer " + std::to_string(answer) +
                                 " bytes, mean question/summary " + std::to_string(line) +
                                 " bytes (want 3500-4500 and 150-250)");
    if (lines.two_byte == 0 || lines.four_byte == 0 || lines.quotes == 0)
        throw std::runtime_error("workload: questions and summaries are plain ASCII");
    char out[256];
    std::snprintf(out, sizeof out,
                  "workload: %llu exchanges checked: mean answer %.0f bytes, mean question and "
                  "summary %.0f bytes; per answer %.1f quotes, %.1f backslashes, %.1f tabs, %.1f "
                  "accented letters, %.1f CJK, %.1f emoji, %.1f URLs",
                  static_cast<unsigned long long>(exchanges), answer, line,
                  static_cast<double>(answers.quotes) / exchanges,
                  static_cast<double>(answers.backslashes) / exchanges,
                  static_cast<double>(answers.tabs) / exchanges,
                  static_cast<double>(answers.two_byte) / exchanges,
                  static_cast<double>(answers.cjk) / exchanges,
                  static_cast<double>(answers.four_byte) / exchanges,
                  static_cast<double>(answers.urls) / exchanges);
    return out;
}

/// The word the search figures look for. It is in no exchange but those that
/// carries_rare_word() picks, once in the answer, in this case (searches ignore it).
inline constexpr std::string_view rare_word = "Zyzzyva";

/// True for one exchange in a hundred: those whose place in the store (counted from 0
/// across all its sessions, see make_store()) is a multiple of 100.
inline bool carries_rare_word(std::uint64_t place) {
    return place % 100 == 0;
}

/// make_exchange(seq), with rare_word in the middle of the answer when `rare`.
inline ds::exchange make_exchange(std::uint64_t seq, bool rare) {
    ds::exchange ex = make_exchange(seq);
    if (rare) {
        const auto space = ex.answer.find(' ', ex.answer.size() / 2);
        ex.answer.insert(space + 1, std::string(rare_word) + " ");
    }
    return ex;
}

/// How the exchanges of a written session are chosen to carry rare_word: never, or by
/// their place in the store, `first_place` being the place of the session's exchange 1.
struct rare_words {
    bool on = false;
    std::uint64_t first_place = 0;
};

/// The bytes of a history file of `exchanges` exchanges (format v1), as the store writes.
inline std::string history_bytes(const std::string& id, std::uint64_t exchanges,
                                 std::uint64_t first_seq = 1, rare_words rare = {}) {
    ds::session_meta m;
    m.id = id;
    m.title = "bench session " + id;
    m.created_at = ds::time_point{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}};
    std::string out;
    if (first_seq == 1)
        ds::detail::encode_header(out, m);
    for (std::uint64_t s = first_seq; s < first_seq + exchanges; ++s)
        ds::detail::encode_exchange(
            out, make_exchange(s, rare.on && carries_rare_word(rare.first_place + s - 1)));
    return out;
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::runtime_error("cannot create " + p.string());
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0)
            throw std::runtime_error("cannot write " + p.string());
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

/// Session id number `i`: "b" + 7 digits.
inline std::string bench_id(std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "b%07zu", i % 10000000);
    return buf;
}

/// Writes a store of `sessions` sessions of `exchanges` exchanges each, straight to disk
/// (no index: the first listing builds it), a thousand exchanges at a time. With
/// `with_rare_word`, one exchange in a hundred carries rare_word: exchange `s` of session
/// `i` is at place i * exchanges + s - 1.
inline void make_store(const std::filesystem::path& root, std::size_t sessions,
                       std::uint64_t exchanges, bool with_rare_word = false) {
    std::filesystem::create_directories(root / "cli");
    for (std::size_t i = 0; i < sessions; ++i) {
        const auto id = bench_id(i);
        std::filesystem::create_directories(root / "cli" / id);
        const auto path = root / "cli" / id / "history.jsonl";
        const rare_words rare{with_rare_word, i * exchanges};
        if (exchanges <= 1000) {
            write_file(path, history_bytes(id, exchanges, 1, rare));
            continue;
        }
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            throw std::runtime_error("cannot create " + path.string());
        for (std::uint64_t from = 1; from <= exchanges; from += 1000) {
            const std::string bytes =
                history_bytes(id, std::min<std::uint64_t>(1000, exchanges - from + 1), from, rare);
            for (std::size_t done = 0; done < bytes.size();) {
                const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
                if (n <= 0) {
                    ::close(fd);
                    throw std::runtime_error("cannot write " + path.string());
                }
                done += static_cast<std::size_t>(n);
            }
        }
        ::close(fd);
    }
}

} // namespace bench
