// SPDX-License-Identifier: BSL-1.0
// --show, --export and --search.
#include "read_commands.hpp"

#include "interrupts.hpp"
#include "store.hpp"
#include "terminal.hpp"

#include <dexter/sessions/export.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <ostream>
#include <random>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::cli {

namespace {

namespace fs = std::filesystem;

// An output stream's buffer that writes to a descriptor and keeps the errno of the
// first failed write, so that a message can say why (EPIPE, ENOSPC, ...).
class fd_buffer : public std::streambuf {
public:
    explicit fd_buffer(int fd) : fd_(fd), buf_(64 * 1024) {
        setp(buf_.data(), buf_.data() + buf_.size());
    }

    /// The errno of the first failed write; 0 if none failed.
    int error() const noexcept { return error_; }

protected:
    int_type overflow(int_type ch) override {
        if (!drain())
            return traits_type::eof();
        if (!traits_type::eq_int_type(ch, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(ch);
            pbump(1);
        }
        return traits_type::not_eof(ch);
    }
    int sync() override { return drain() ? 0 : -1; }

private:
    bool drain() {
        if (error_ != 0)
            return false;
        const char* p = pbase();
        std::size_t n = static_cast<std::size_t>(pptr() - pbase());
        while (n > 0) {
            const ssize_t w = ::write(fd_, p, n);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                error_ = errno;
                return false;
            }
            p += w;
            n -= static_cast<std::size_t>(w);
        }
        setp(buf_.data(), buf_.data() + buf_.size());
        return true;
    }

    int fd_;
    int error_ = 0;
    std::vector<char> buf_;
};

// How text reaches standard output.
enum class filter { none, text, json };

control_chars controls_of(const options& o) {
    return o.raw ? control_chars::raw : control_chars::escaped;
}

// The filter for output in `format` (nothing: the already-safe terminal view): on a
// terminal, text goes through terminal_safe() (unless --raw) and JSON through
// json_for_terminal(); into a pipe or file, everything is written exactly.
filter filter_for(std::optional<sessions::export_format> format, const options& o) {
    if (!format || !is_terminal(STDOUT_FILENO))
        return filter::none;
    if (*format == sessions::export_format::markdown)
        return o.raw ? filter::none : filter::text;
    return filter::json;
}

// An output stream's buffer that passes everything on made safe for a terminal (as
// text, newlines kept, or as JSON). Unbuffered: each write is one piece of text (a whole
// record or field, as the exporter writes it), so no UTF-8 sequence is cut in two.
class terminal_filter : public std::streambuf {
public:
    terminal_filter(std::streambuf& to, filter how) : to_(to), how_(how) {}

protected:
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        const std::string_view text(s, static_cast<std::size_t>(n));
        const std::string safe =
            how_ == filter::json ? json_for_terminal(text) : terminal_safe(text, true);
        const auto size = static_cast<std::streamsize>(safe.size());
        return to_.sputn(safe.data(), size) == size ? n : 0;
    }
    int_type overflow(int_type ch) override {
        if (traits_type::eq_int_type(ch, traits_type::eof()))
            return traits_type::not_eof(ch);
        const char c = traits_type::to_char_type(ch);
        return xsputn(&c, 1) == 1 ? ch : traits_type::eof();
    }
    int sync() override { return to_.pubsync(); }

private:
    std::streambuf& to_;
    filter how_;
};

std::string system_reason(int err) {
    return std::strerror(err);
}

// Runs `write` on a stream over standard output, then flushes; a failed write becomes
// one error naming standard output and the system's reason.
void write_stdout(filter how, const std::function<void(std::ostream&)>& write) {
    fd_buffer out(STDOUT_FILENO);
    terminal_filter filtered(out, how);
    std::ostream os(how == filter::none ? static_cast<std::streambuf*>(&out) : &filtered);
    try {
        write(os);
        os.flush();
    } catch (...) {
        if (out.error() == 0)
            throw;
    }
    if (out.error() != 0 || !os)
        throw std::runtime_error("cannot write to standard output: " +
                                 system_reason(out.error() ? out.error() : EIO));
}

// The stored session that `id_or_prefix` names. Throws session_not_found,
// ambiguous_session_id, invalid_session_id.
sessions::session_meta stored_session(session_manager& manager, const std::string& id_or_prefix) {
    const sessions::session_id id = manager.resolve(id_or_prefix);
    auto meta = manager.find_session(id);
    if (!meta)
        throw sessions::session_not_found(id);
    return std::move(*meta);
}

// The terminal view of one exchange: "#SEQ · local time[ · model]", the question with
// every line quoted by "> ", the answer, a blank line.
void write_readable(std::ostream& os, const sessions::exchange& ex, control_chars mode) {
    std::string text = "#" + std::to_string(ex.seq) + " · " + local_time(ex.timestamp, true);
    if (ex.model)
        text += " · " + terminal_safe(*ex.model, false, mode);
    text += '\n';
    std::string_view query = ex.query;
    for (;;) {
        const auto nl = query.find('\n');
        text += "> ";
        text += terminal_safe(query.substr(0, nl), false, mode);
        text += '\n';
        if (nl == std::string_view::npos)
            break;
        query.remove_prefix(nl + 1);
    }
    text += terminal_safe(ex.answer, true, mode);
    if (text.back() != '\n')
        text += '\n';
    text += '\n';
    os << text;
}

// A file that replaces `target` only when complete: written as a temporary beside it
// (same directory: ".NAME.tmp-XXXXXX", created with O_EXCL, mode 0666 less the umask),
// synced, then renamed over it. Destroyed uncommitted, it removes the temporary.
class replacing_file {
public:
    explicit replacing_file(fs::path target) : target_(std::move(target)) {
        const std::string name = target_.filename().string();
        if (name.empty() || name == "." || name == "..")
            fail("not a file name", 0);
        // Only a regular file is replaced: a rename over a device (/dev/null, as root), a
        // FIFO or a symbolic link would put the export in its place.
        struct stat st {};
        if (::lstat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
            fail(std::string("it is ") +
                     (S_ISLNK(st.st_mode)   ? "a symbolic link"
                      : S_ISDIR(st.st_mode) ? "a directory"
                                            : "not a regular file") +
                     ", and -o only writes regular files (use > to write to it)",
                 0);
        const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
        std::random_device seed;
        std::mt19937 random(seed());
        static constexpr char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
        for (int attempt = 0; fd_ < 0; ++attempt) {
            std::string suffix(6, '0');
            for (auto& c : suffix)
                c = alphabet[random() % 36];
            temporary_ = dir / ("." + name + ".tmp-" + suffix);
            fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ < 0 && (errno != EEXIST || attempt == 100))
                fail("cannot create a temporary file in " + dir.string(), errno);
        }
    }
    replacing_file(const replacing_file&) = delete;
    replacing_file& operator=(const replacing_file&) = delete;
    ~replacing_file() {
        if (fd_ >= 0)
            ::close(fd_);
        if (!committed_ && !temporary_.empty())
            ::unlink(temporary_.c_str());
    }

    int fd() const noexcept { return fd_; }

    /// Syncs the temporary, renames it over the target, and syncs the directory. Throws
    /// std::runtime_error naming the target; the target is unchanged unless the rename
    /// was done.
    void commit() {
        if (::fsync(fd_) != 0)
            fail("cannot sync " + temporary_.string(), errno);
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0)
            fail("cannot close " + temporary_.string(), errno);
        if (::rename(temporary_.c_str(), target_.c_str()) != 0)
            fail("cannot rename " + temporary_.string() + " to it", errno);
        committed_ = true;
        const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || (::fsync(dfd) != 0 && errno != EINVAL)) {
            const int err = errno;
            if (dfd >= 0)
                ::close(dfd);
            throw std::runtime_error("wrote " + target_.string() + ", but cannot sync " +
                                     dir.string() + ": " + system_reason(err));
        }
        ::close(dfd);
    }

    /// Throws the error of an export to the target that failed at `what`.
    [[noreturn]] void fail(const std::string& what, int err) const {
        std::error_code ec;
        const bool existed = fs::symlink_status(target_, ec).type() != fs::file_type::not_found;
        throw std::runtime_error("cannot export to " + target_.string() + ": " + what +
                                 (err != 0 ? ": " + system_reason(err) : std::string()) +
                                 (existed ? " (" + target_.string() + " is unchanged)"
                                          : std::string(" (nothing was written)")));
    }

private:
    fs::path target_;
    fs::path temporary_;
    int fd_ = -1;
    bool committed_ = false;
};

// --export ID -o FILE. Returns 0, or 128 + the signal that stopped it.
int export_to_file(session_manager& manager, const sessions::session_meta& meta, const options& o,
                   interrupt_pipe* interrupts) {
    replacing_file file(o.output);
    fd_buffer buffer(file.fd());
    std::ostream os(&buffer);
    sessions::session_exporter exporter(os, *o.format);
    int stopped_by = 0;
    std::vector<sessions::diagnostic> skipped;
    try {
        exporter.begin(meta);
        // As sessions::export_session() writes it (stored records copied as they are),
        // with a check for Ctrl-C between exchanges.
        skipped =
            manager.for_each_record(meta, 1, [&](sessions::exchange&& ex, std::string_view record) {
                if (interrupts && (stopped_by = interrupts->take()) != 0)
                    return false;
                exporter.add(ex, *o.format == sessions::export_format::markdown ? std::string_view()
                                                                                : record);
                return true;
            });
        if (stopped_by != 0) {
            std::cerr << "dexter: export interrupted; " << o.output.string()
                      << (fs::exists(o.output) ? " is unchanged\n" : " was not written\n");
            return 128 + stopped_by; // the temporary goes with `file`
        }
        exporter.end();
    } catch (...) {
        if (buffer.error() == 0)
            throw;
    }
    if (buffer.error() != 0 || !os)
        file.fail("writing failed", buffer.error() ? buffer.error() : EIO);
    file.commit();
    warn_about_session(meta.id, skipped);
    return 0;
}

std::string search_line(const sessions::search_hit& hit, std::size_t width, control_chars mode) {
    std::string seq = hit.seq == 0 ? std::string("-") : std::to_string(hit.seq);
    if (seq.size() < 3)
        seq.insert(0, 3 - seq.size(), ' ');
    const std::string head = hit.id + "  " + seq + "  " + local_time(hit.timestamp) + "  ";
    // The title takes half of what is left, from 10 to 24 columns, so that the snippet
    // shows.
    const std::size_t rest = width > head.size() ? width - head.size() : 0;
    const std::size_t title_width = std::clamp<std::size_t>(rest / 2, 10, 24);
    return fit(
        head + fit(hit.title.empty() ? std::string("(untitled)") : hit.title, title_width, mode) +
            "  " + hit.snippet,
        width, mode);
}

} // namespace

int show_session(const options& o) {
    session_manager manager = open_store(o);
    const sessions::session_meta meta = stored_session(manager, o.session);
    warn_about_store(manager);
    std::vector<sessions::diagnostic> skipped;
    if (o.format) {
        write_stdout(filter_for(o.format, o), [&](std::ostream& os) {
            skipped = sessions::export_session(manager, meta, *o.format, os).diagnostics;
        });
    } else {
        write_stdout(filter::none, [&](std::ostream& os) {
            os << "session " << meta.id << " · "
               << terminal_safe(meta.title.empty() ? std::string("(untitled)") : meta.title, false,
                                controls_of(o))
               << '\n'
               << meta.exchange_count << (meta.exchange_count == 1 ? " exchange" : " exchanges")
               << " · created " << local_time(meta.created_at) << " · updated "
               << local_time(meta.updated_at) << "\n\n";
            os.flush(); // the first lines at once, however long the session
            skipped = manager.for_each_exchange(meta, 1, [&](sessions::exchange&& ex) {
                write_readable(os, ex, controls_of(o));
                return static_cast<bool>(os);
            });
        });
    }
    warn_about_session(meta.id, skipped);
    warn_about_store(manager);
    return 0;
}

int export_session(const options& o, interrupt_pipe* interrupts) {
    session_manager manager = open_store(o);
    const sessions::session_meta meta = stored_session(manager, o.session);
    warn_about_store(manager);
    if (!o.output.empty()) {
        const int status = export_to_file(manager, meta, o, interrupts);
        warn_about_store(manager);
        return status;
    }
    std::vector<sessions::diagnostic> skipped;
    write_stdout(filter_for(o.format, o), [&](std::ostream& os) {
        skipped = sessions::export_session(manager, meta, *o.format, os).diagnostics;
    });
    warn_about_session(meta.id, skipped);
    warn_about_store(manager);
    return 0;
}

int search_sessions(const options& o) {
    sessions::search_result found;
    if (store_exists(o)) {
        session_manager manager = open_store(o);
        found = manager.search({o.search_text, o.limit.value_or(default_search_limit)});
        warn_about_search(found.diagnostics);
        warn_about_store(manager);
    }
    const auto format = o.json ? std::optional(sessions::export_format::json) : std::nullopt;
    write_stdout(filter_for(format, o), [&](std::ostream& os) {
        if (o.json) {
            boost::json::array out;
            for (const auto& h : found.hits)
                out.push_back(
                    boost::json::object{{"id", h.id},
                                        {"title", h.title},
                                        {"seq", h.seq},
                                        {"timestamp", sessions::format_timestamp(h.timestamp)},
                                        {"field", sessions::to_string(h.field)},
                                        {"snippet", h.snippet}});
            os << boost::json::serialize(out) << '\n';
            return;
        }
        const std::size_t width = terminal_width();
        for (const auto& h : found.hits)
            os << search_line(h, width, controls_of(o)) << '\n';
    });
    return found.hits.empty() ? 1 : 0;
}

namespace {

// --explain's readable report.
void write_explanation(std::ostream& os, const sessions::resumed_session& resumed,
                       const std::vector<sessions::chat_message>& messages, const options& o) {
    const auto mode = controls_of(o);
    const auto& meta = resumed.meta;
    const auto& r = resumed.report;
    os << "session " << meta.id << " · "
       << terminal_safe(meta.title.empty() ? std::string("(untitled)") : meta.title, false, mode)
       << '\n'
       << "exchanges: " << r.exchanges_on_disk << " in the session, " << r.exchanges_loaded
       << " loaded (the newest)\n";
    if (r.context)
        os << "context: " << r.context->in_full + r.context->as_summaries << " of at most "
           << o.history_limit << " turns sent, " << r.context->in_full << " in full and "
           << r.context->as_summaries << " as summaries\n";
    const auto summary = resume_summary(r);
    os << "skipped or repaired: " << (summary ? *summary : std::string("nothing")) << '\n';
    for (const auto& d : r.session) {
        os << "  ";
        if (d.line != 0)
            os << "line " << d.line << ", ";
        os << "byte " << d.offset << " [" << sessions::to_string(d.kind)
           << "]: " << terminal_safe(d.reason, false) << '\n';
    }
    for (const auto& d : r.store)
        os << "  store [" << sessions::to_string(d.kind) << "]: " << terminal_safe(d.reason, false)
           << '\n';
    os << "\nmessages the agent would be sent before the next question: " << messages.size()
       << '\n';
    for (std::size_t i = 0; i < messages.size(); ++i)
        os << "--- " << i + 1 << ' ' << sessions::to_string(messages[i].role) << '\n'
           << terminal_safe(messages[i].content, true, mode) << '\n';
}

} // namespace

int explain_resume(const options& o) {
    session_manager manager = open_store(o);
    warn_about_store(manager);
    const auto resumed = open_session(manager, o);
    const auto messages = manager.history().recent_turns(o.history_limit);
    manager.close();
    const auto format = o.json ? std::optional(sessions::export_format::json) : std::nullopt;
    write_stdout(filter_for(format, o), [&](std::ostream& os) {
        if (!o.json)
            return write_explanation(os, *resumed, messages, o);
        boost::json::array sent;
        for (const auto& m : messages)
            sent.push_back(
                boost::json::object{{"role", sessions::to_string(m.role)}, {"content", m.content}});
        os << boost::json::serialize(
                  boost::json::object{{"session", boost::json::value_from(resumed->meta)},
                                      {"report", boost::json::value_from(resumed->report)},
                                      {"messages", std::move(sent)}})
           << '\n';
    });
    return 0;
}

} // namespace dexter::cli
