// SPDX-License-Identifier: BSL-1.0
// The question history file, and libedit reading a terminal without ever blocking out a
// signal.
#include "line_editor.hpp"

#include <dexter/sessions/utf8.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <utility>

#ifdef DEXTER_HAVE_LIBEDIT
#include <histedit.h>
#include <langinfo.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>

#include <clocale>
#include <csignal>
#include <cstdio>
#include <cwchar>
#include <stdexcept>
#include <system_error>
#endif

namespace dexter::cli {

namespace {

// Closes a descriptor when it goes out of scope.
class scoped_fd {
public:
    explicit scoped_fd(int fd) noexcept : fd_(fd) {}
    ~scoped_fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    scoped_fd(const scoped_fd&) = delete;
    scoped_fd& operator=(const scoped_fd&) = delete;
    int get() const noexcept { return fd_; }
    // Closes now; false (errno set) if close() failed.
    bool close() noexcept { return ::close(std::exchange(fd_, -1)) == 0; }

private:
    int fd_;
};

std::string errno_text(int err) {
    return std::strerror(err);
}

bool storable(const std::string& question) {
    return !question.empty() && question.find_first_of("\r\n") == std::string::npos &&
           sessions::is_valid_utf8(question);
}

// Keeps the last occurrence of each question, and the newest `bound` of them.
void deduplicate(std::vector<std::string>& entries, std::size_t bound) {
    std::unordered_set<std::string> seen;
    std::vector<std::string> kept; // newest first
    for (auto it = entries.rbegin(); it != entries.rend() && kept.size() < bound; ++it)
        if (seen.insert(*it).second)
            kept.push_back(std::move(*it));
    entries.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
}

} // namespace

question_history::question_history(std::filesystem::path file, std::size_t bound)
    : file_(std::move(file)), bound_(bound), use_file_(!file_.empty()) {}

std::optional<std::string> question_history::load() {
    if (!use_file_)
        return std::nullopt;
    std::vector<std::string> read;
    if (!read_file(read))
        return give_up();
    entries_ = std::move(read);
    return std::nullopt;
}

std::optional<std::string> question_history::add(const std::string& question) {
    if (!storable(question))
        return std::nullopt;
    if (!use_file_) {
        entries_.push_back(question);
        deduplicate(entries_, bound_);
        return std::nullopt;
    }
    std::vector<std::string> now; // what other dexters may have added since
    if (!read_file(now)) {
        entries_.push_back(question);
        deduplicate(entries_, bound_);
        return give_up();
    }
    now.push_back(question);
    deduplicate(now, bound_);
    entries_ = std::move(now);
    if (!write_file())
        return give_up();
    return std::nullopt;
}

std::optional<std::string> question_history::give_up() {
    use_file_ = false;
    return "the question history is kept in memory only: " + problem_;
}

bool question_history::read_file(std::vector<std::string>& out) {
    const std::string path = file_.string();
    // Non-blocking, so that a FIFO in its place cannot hang the prompt; O_NOFOLLOW, so
    // that a link planted there is refused rather than followed.
    scoped_fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT)
            return true;
        problem_ = errno == ELOOP ? path + " is a symbolic link"
                                  : "cannot open " + path + ": " + errno_text(errno);
        return false;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) {
        problem_ = "cannot examine " + path + ": " + errno_text(errno);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        problem_ = path + " is not a regular file";
        return false;
    }
    if ((st.st_mode & 07777) != 0600 && ::fchmod(fd.get(), 0600) < 0) {
        problem_ = "cannot make " + path + " mode 0600: " + errno_text(errno);
        return false;
    }
    std::string text;
    char chunk[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            problem_ = "cannot read " + path + ": " + errno_text(errno);
            return false;
        }
        if (n == 0)
            break;
        text.append(chunk, static_cast<std::size_t>(n));
        if (text.size() > max_file_bytes) {
            problem_ = path + " is larger than " + std::to_string(max_file_bytes >> 20) + " MiB";
            return false;
        }
    }
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        std::string line = text.substr(start, end - start);
        if (storable(line))
            out.push_back(std::move(line));
        start = end + 1;
    }
    deduplicate(out, bound_);
    return true;
}

bool question_history::write_file() {
    const std::string path = file_.string();
    const std::string temporary = path + ".tmp." + std::to_string(::getpid());
    ::unlink(temporary.c_str()); // a leftover of an earlier process with this id
    scoped_fd fd(
        ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
        problem_ = "cannot create " + temporary + ": " + errno_text(errno);
        return false;
    }
    std::string text;
    for (const auto& question : entries_)
        text.append(question).push_back('\n');
    std::string_view rest = text;
    bool written = ::fchmod(fd.get(), 0600) == 0; // whatever the umask left
    while (written && !rest.empty()) {
        const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR)
            continue;
        written = n > 0;
        if (written)
            rest.remove_prefix(static_cast<std::size_t>(n));
    }
    written = written && ::fdatasync(fd.get()) == 0;
    written = fd.close() && written;
    if (!written || ::rename(temporary.c_str(), path.c_str()) < 0) {
        problem_ = "cannot write " + path + ": " + errno_text(errno);
        ::unlink(temporary.c_str());
        return false;
    }
    return true;
}

std::filesystem::path question_history_path(const std::filesystem::path& sessions_dir,
                                            bool incognito, bool postgres) {
    if (incognito || postgres)
        return {};
    return sessions_dir / "question_history.txt";
}

#ifdef DEXTER_HAVE_LIBEDIT

struct line_editor::state {
    EditLine* editor = nullptr;
    History* history = nullptr;
    std::string saved_locale;
    std::mbstate_t decoding{};
    int signal = 0;              // the signal that interrupted el_gets, or 0
    bool line_was_empty = false; // ... and whether the line was empty then
    bool ctrl_c_pending = false; // a Ctrl-C at an empty line, and no key since
};

namespace {

char* prompt_of(EditLine*) {
    static char prompt[] = "> ";
    return prompt;
}

int read_character_of(EditLine* editor, wchar_t* out) {
    void* self = nullptr;
    el_get(editor, EL_CLIENTDATA, &self);
    return static_cast<line_editor*>(self)->read_character(out);
}

// Ctrl-Z and window sizes while a line editor exists (libedit's own handlers are off,
// so that ours feed the interrupt pipe): a stop gives the terminal back as it was before
// the editor took it, and a continue takes it again and redraws the line.
termios terminal_before{};
volatile sig_atomic_t have_terminal_before = 0;
volatile sig_atomic_t continued = 0, resized = 0;
struct sigaction previous_tstp {
}, previous_winch{};

extern "C" void on_stop(int) {
    const int saved_errno = errno;
    termios editing{};
    const bool editing_known = ::tcgetattr(STDIN_FILENO, &editing) == 0;
    if (editing_known && have_terminal_before)
        ::tcsetattr(STDIN_FILENO, TCSADRAIN, &terminal_before);
    struct sigaction stop {
    }, mine{};
    stop.sa_handler = SIG_DFL;
    sigemptyset(&stop.sa_mask);
    ::sigaction(SIGTSTP, &stop, &mine);
    sigset_t tstp;
    sigemptyset(&tstp);
    sigaddset(&tstp, SIGTSTP);
    ::sigprocmask(SIG_UNBLOCK, &tstp, nullptr);
    ::raise(SIGTSTP); // stopped here until SIGCONT (a no-op in an orphaned group)
    ::sigaction(SIGTSTP, &mine, nullptr);
    if (editing_known)
        ::tcsetattr(STDIN_FILENO, TCSADRAIN, &editing);
    continued = 1;
    errno = saved_errno;
}

extern "C" void on_resize(int) {
    resized = 1;
}

bool codeset_is_utf8() {
    const char* codeset = ::nl_langinfo(CODESET);
    return codeset != nullptr &&
           (std::strcmp(codeset, "UTF-8") == 0 || std::strcmp(codeset, "utf8") == 0);
}

} // namespace

line_editor::line_editor(interrupt_pipe& interrupts, question_history& history)
    : interrupts_(interrupts), history_(history), state_(std::make_unique<state>()) {
    const char* current = std::setlocale(LC_CTYPE, nullptr);
    state_->saved_locale = current != nullptr ? current : "C";
    if (std::setlocale(LC_CTYPE, "") == nullptr || !codeset_is_utf8())
        std::setlocale(LC_CTYPE, "C.UTF-8");
    state_->editor = el_init("dexter", stdin, stdout, stderr);
    state_->history = history_init();
    if (state_->editor == nullptr || state_->history == nullptr) {
        if (state_->editor != nullptr)
            el_end(state_->editor);
        if (state_->history != nullptr)
            history_end(state_->history);
        std::setlocale(LC_CTYPE, state_->saved_locale.c_str());
        throw std::runtime_error("cannot start line editing (libedit)");
    }
    HistEvent event;
    ::history(state_->history, &event, H_SETSIZE,
              static_cast<int>(question_history::default_bound));
    el_set(state_->editor, EL_CLIENTDATA, static_cast<void*>(this));
    el_set(state_->editor, EL_SIGNAL, 0); // ours stay: they feed the interrupt pipe
    el_set(state_->editor, EL_EDITOR, "emacs");
    el_set(state_->editor, EL_PROMPT, prompt_of);
    el_set(state_->editor, EL_HIST, ::history, state_->history);
    el_set(state_->editor, EL_GETCFN, read_character_of);
    el_source(state_->editor, nullptr); // ~/.editrc, as every libedit program
    show_history();
    if (::tcgetattr(STDIN_FILENO, &terminal_before) == 0)
        have_terminal_before = 1;
    struct sigaction action {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    action.sa_handler = on_stop;
    ::sigaction(SIGTSTP, &action, &previous_tstp);
    action.sa_handler = on_resize;
    ::sigaction(SIGWINCH, &action, &previous_winch);
    // From now on keys typed (even before the first prompt) wait for libedit rather than
    // the terminal's line discipline, where a Ctrl-D would be lost (see next()).
    el_set(state_->editor, EL_PREP_TERM, 1);
}

line_editor::~line_editor() {
    ::sigaction(SIGTSTP, &previous_tstp, nullptr);
    ::sigaction(SIGWINCH, &previous_winch, nullptr);
    have_terminal_before = 0;
    el_end(state_->editor);
    history_end(state_->history);
    std::setlocale(LC_CTYPE, state_->saved_locale.c_str());
}

void line_editor::show_history() {
    HistEvent event;
    ::history(state_->history, &event, H_CLEAR);
    for (const auto& question : history_.entries())
        ::history(state_->history, &event, H_ENTER, question.c_str());
}

std::optional<std::string> line_editor::remember(const std::string& question) {
    auto warning = history_.add(question);
    show_history();
    return warning;
}

int line_editor::read_character(wchar_t* out) noexcept {
    for (;;) {
        if (continued) { // back from Ctrl-Z: the shell had the terminal
            continued = 0;
            el_set(state_->editor, EL_REFRESH);
        }
        if (resized) {
            resized = 0;
            el_resize(state_->editor);
        }
        if (const int sig = interrupts_.take()) {
            const LineInfoW* line = el_wline(state_->editor);
            state_->line_was_empty = line == nullptr || line->lastchar == line->buffer;
            state_->signal = sig;
            errno = EINTR; // el_gets returns NULL, and the next one starts a fresh line
            return -1;
        }
        pollfd fds[2] = {{interrupts_.fd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (fds[1].revents == 0)
            continue; // a signal: taken at the top of the loop
        char byte = 0;
        const ssize_t n = ::read(STDIN_FILENO, &byte, 1);
        if (n == 0 || (n < 0 && errno == EIO))
            return 0; // the end of the input, or a terminal that went away
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        wchar_t character = 0;
        const std::size_t used = std::mbrtowc(&character, &byte, 1, &state_->decoding);
        if (used == static_cast<std::size_t>(-2))
            continue; // more bytes of this character to come
        if (used == static_cast<std::size_t>(-1)) {
            state_->decoding = std::mbstate_t{}; // not UTF-8: dropped
            continue;
        }
        state_->ctrl_c_pending = false;
        *out = character;
        return 1;
    }
}

input_event line_editor::next() {
    for (;;) {
        state_->signal = 0;
        int count = 0;
        errno = 0;
        const char* line = el_gets(state_->editor, &count);
        const int error = errno;
        // el_gets gave the terminal back in canonical mode; until the next prompt (while
        // the agent runs), keys typed ahead wait for libedit, unechoed, instead of being
        // taken by the line discipline, where a Ctrl-D would be lost. Ctrl-C still
        // signals (ISIG stays on). The destructor restores the terminal as it was.
        el_set(state_->editor, EL_PREP_TERM, 1);
        if (line != nullptr) {
            std::string text(line);
            if (!text.empty() && text.back() == '\n')
                text.pop_back();
            state_->ctrl_c_pending = false;
            return {input_event::kind::line, std::move(text), 0};
        }
        if (state_->signal == SIGINT) {
            std::fputs("^C", stdout); // as the terminal would show it
            if (state_->line_was_empty && state_->ctrl_c_pending) {
                std::fflush(stdout);
                return {}; // the caller ends the line, as after Ctrl-D
            }
            std::fputs("\n", stdout);
            if (state_->line_was_empty) {
                state_->ctrl_c_pending = true;
                std::fputs("(Ctrl-C again or Ctrl-D to leave)\n", stdout);
            }
            std::fflush(stdout);
            continue; // a fresh, empty line
        }
        if (state_->signal != 0)
            return {input_event::kind::signal, {}, state_->signal};
        if (count < 0 && error != 0 && error != EIO)
            throw std::system_error(error, std::generic_category(), "cannot read standard input");
        return {}; // Ctrl-D at an empty line, or the end of the input
    }
}

#endif // DEXTER_HAVE_LIBEDIT

} // namespace dexter::cli
