// SPDX-License-Identifier: BSL-1.0
// Must NOT compile: NotAStore has no append(), so it is not a session_storage and
// session_manager<NotAStore> is rejected by its constraint (the diagnostic names
// session_storage). is_a_storage.cpp is the same file with append() present.
#include <dexter/sessions/session_manager.hpp>

namespace ds = dexter::sessions;

struct NotAStore {
    bool create(const ds::session_meta&) { return true; }
    ds::session_meta open(const ds::session_id&) { return {}; }
    // void append(const ds::session_id&, const ds::exchange&) {}   <- missing
    void update(const ds::session_meta&) {}
    void close(const ds::session_id&) noexcept {}
    std::optional<ds::session_meta> find(const ds::session_id&) { return {}; }
    std::vector<ds::session_meta> list() { return {}; }
    ds::loaded_session load(const ds::session_id&, std::size_t) { return {}; }
    void remove(const ds::session_id&) {}
};

int main() {
    ds::session_manager<NotAStore> sessions{NotAStore{}};
    (void)sessions;
}
