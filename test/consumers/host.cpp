// SPDX-License-Identifier: BSL-1.0
// The host integration of docs/EMBEDDING.md, built by every consumer in test/consumers/:
// saves one exchange with the file store, resumes the session, and checks what came back.
#include <dexter/sessions.hpp>
#include <dexter/sessions/jsonl_store.hpp>

#include <iostream>
#include <string>
#include <vector>

namespace ds = dexter::sessions;
using manager = ds::session_manager<ds::jsonl_store>;

// Your model call. `context` is the replayed history, oldest message first.
std::string ask_model(const std::vector<ds::chat_message>& context, const std::string& question) {
    return "You asked '" + question + "' after " + std::to_string(context.size()) + " messages.";
}

int main(int argc, char** argv) try {
    const std::string root = argc > 1 ? argv[1] : ".myagent/sessions";
    ds::session_id id;
    {
        manager sessions{ds::jsonl_store{root}};
        sessions.check_writable(); // a read-only store fails before any question
        sessions.start_new();
        const std::string question = "What is a torn write?";
        sessions.save_exchange(question, ask_model(sessions.history().recent_turns(), question));
        id = sessions.current()->id; // final once the first exchange is saved
    } // the destructor closes the session: another writer may open it now
    manager later{ds::jsonl_store{root}};
    const ds::resumed_session resumed = later.resume(id); // replays into later.history()
    for (const ds::diagnostic& d : resumed.report.session)
        std::cerr << "skipped or repaired: " << d << '\n';
    const std::vector<ds::chat_message> context = later.history().recent_turns();
    if (resumed.exchanges.size() != 1 || context.size() != 2 ||
        context[0].content != "What is a torn write?") {
        std::cerr << "myagent: session " << id << " did not come back as it was saved\n";
        return 1;
    }
    std::cout << "resumed " << id << ": " << context[1].content << '\n';
    return 0;
} catch (const ds::error& e) { // every error of the library; the message names the path
    std::cerr << "myagent: " << e.what() << '\n';
    return 1;
}
