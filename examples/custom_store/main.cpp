// SPDX-License-Identifier: BSL-1.0
// custom_store: session_manager over a host-defined store (logging_store.hpp). Prints
// each storage operation the manager makes while it saves, lists, resumes and deletes.
#include "logging_store.hpp"

#include <dexter/sessions/session_manager.hpp>

#include <iostream>

namespace ds = dexter::sessions;

int main() try {
    using store = example::logging_store<>;
    ds::session_manager<store> sessions{store{ds::memory_store{}, std::cout}};

    std::cout << "-- a session with two exchanges\n";
    sessions.start_new();
    sessions.save_exchange("What is a storage policy?", "Nine members; see storage.hpp.");
    sessions.save_exchange("Who owns the rules?", "session_manager.");
    const ds::session_id first = sessions.current()->id;

    std::cout << "-- a second session\n";
    sessions.start_new();
    sessions.save_exchange("Another question", "Another answer.");

    std::cout << "-- list\n";
    for (const ds::session_meta& s : sessions.list_sessions())
        std::cout << "   " << s.id << "  " << s.exchange_count << "  " << s.title << '\n';

    std::cout << "-- resume the first by a prefix of its id, then delete it\n";
    const ds::loaded_session resumed = sessions.resume(first.substr(0, 4));
    std::cout << "   resumed " << resumed.meta.id << " with " << resumed.exchanges.size()
              << " exchanges\n";
    sessions.delete_session(first);
    return 0;
} catch (const ds::error& e) {
    std::cerr << "custom_store: " << e.what() << '\n';
    return 1;
}
