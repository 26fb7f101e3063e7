// SPDX-License-Identifier: BSL-1.0
// Session ids: the rules, the default generator (OS randomness) and a test generator.
//
// An id is exactly 8 characters of [0-9a-z]. Lower case only, because ids name
// directories and some file systems ignore case; no '-' or '_', so an id never looks
// like a command-line option. Every id that comes from outside is validated before it
// touches a path. Channel names (the namespace a store keeps sessions in) have their
// rules here too.
#pragma once

#include <dexter/sessions/storage.hpp>

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace dexter::sessions {

/// Length of every session id.
inline constexpr std::size_t session_id_length = 8;

/// The characters an id is made of, in the order the generators use.
inline constexpr std::string_view session_id_alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

namespace detail {
/// True when `text` is made of session_id_alphabet only (empty text too).
[[nodiscard]] constexpr bool in_id_alphabet(std::string_view text) noexcept {
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')))
            return false;
    return true;
}
} // namespace detail

/// True when `text` is a well-formed session id.
[[nodiscard]] constexpr bool is_valid_session_id(std::string_view text) noexcept {
    return text.size() == session_id_length && detail::in_id_alphabet(text);
}

/// Throws invalid_session_id, naming the value and what is wrong with it, unless
/// `text` is a well-formed session id.
inline void validate_session_id(std::string_view text) {
    if (is_valid_session_id(text))
        return;
    if (text.size() != session_id_length)
        throw invalid_session_id(text, "expected exactly 8 characters of [0-9a-z], got " +
                                           std::to_string(text.size()));
    throw invalid_session_id(text);
}

/// True when `text` could begin a session id (1 to 8 characters of [0-9a-z]).
[[nodiscard]] constexpr bool is_valid_session_id_prefix(std::string_view text) noexcept {
    return !text.empty() && text.size() <= session_id_length && detail::in_id_alphabet(text);
}

/// True for a channel name: 1 to 64 characters of [a-z0-9_-], not starting with '-'
/// or '_', and neither "quarantine" nor "trash" (names the file store keeps for itself:
/// where it moves suspect bytes, and where trashed sessions are).
[[nodiscard]] constexpr bool is_valid_channel(std::string_view c) noexcept {
    if (c.empty() || c.size() > 64 || c[0] == '-' || c[0] == '_' || c == "quarantine" ||
        c == "trash")
        return false;
    for (char ch : c)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return false;
    return true;
}

/// Throws invalid_channel, naming the value and the rule, unless `name` is a valid
/// channel name.
inline void validate_channel(std::string_view name) {
    if (!is_valid_channel(name))
        throw invalid_channel("invalid channel name " + detail::quote_untrusted(name) +
                              ": expected 1 to 64 characters of [a-z0-9_-], not starting with "
                              "'-' or '_', and neither \"quarantine\" nor \"trash\"");
}

/// The id generator policy: called with no argument, returns a fresh id. What it returns
/// must be a well-formed session id, exactly 8 characters of [0-9a-z] (session_id_length
/// characters of session_id_alphabet): a ULID, a UUID or upper-case letters compile but
/// are refused when a session is started (invalid_session_id, naming the generator's
/// value). nanoid_generator (random) and sequential_ids (tests) are the two the library
/// provides.
template <class G>
concept id_generator = std::movable<G> && requires(G& g) {
    { g() } -> std::convertible_to<session_id>;
};

/// Draws ids from the operating system's CSPRNG (getrandom(2)). Each character comes
/// from 6 random bits; values of 36 and above are rejected and redrawn, so every
/// character is uniform over the alphabet (no modulo bias).
/// operator() throws storage_error if the OS has no randomness to give; the generator
/// stays usable.
class nanoid_generator {
public:
    nanoid_generator() = default;
    // A copy or move does not take the random bytes not used yet: it draws its own, or
    // the two generators would hand out the same ids.
    nanoid_generator(const nanoid_generator&) noexcept {}
    nanoid_generator& operator=(const nanoid_generator&) noexcept {
        next_ = pool_.size();
        return *this;
    }

    session_id operator()() {
        session_id id;
        id.reserve(session_id_length);
        while (id.size() < session_id_length) {
            if (next_ == pool_.size())
                refill();
            const unsigned v = pool_[next_++] & 63u;
            if (v < session_id_alphabet.size())
                id += session_id_alphabet[v];
        }
        return id;
    }

private:
    void refill() {
        std::size_t got = 0;
        while (got < pool_.size()) {
            const ssize_t n = ::getrandom(pool_.data() + got, pool_.size() - got, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                throw storage_error("cannot read the system's random source (getrandom)", {},
                                    errno);
            }
            got += static_cast<std::size_t>(n);
        }
        next_ = 0;
    }

    std::array<unsigned char, 64> pool_{};
    std::size_t next_ = pool_.size();
};

/// Deterministic ids for tests: "s0000001", "s0000002", ... (after "s9999999" the
/// numbers wrap around to "s0000000"). Copies continue independently from where they
/// were copied. Never fails.
class sequential_ids {
public:
    sequential_ids() = default;
    explicit sequential_ids(std::uint32_t first) : next_(first) {}
    session_id operator()() {
        char buf[16];
        std::snprintf(buf, sizeof buf, "s%07u", static_cast<unsigned>(next_++ % 10000000u));
        return buf;
    }

private:
    std::uint32_t next_ = 1;
};

static_assert(id_generator<nanoid_generator>);
static_assert(id_generator<sequential_ids>);

} // namespace dexter::sessions
