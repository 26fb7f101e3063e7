// SPDX-License-Identifier: BSL-1.0
// export.hpp: the shape of each format, Markdown that no text can break, the stream's
// failures, format names; and a file store's session of 15 MiB exported whole.
#include <dexter/sessions/export.hpp>

#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/utf8.hpp>

#define BOOST_TEST_MODULE export
#include <boost/test/unit_test.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>

#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ios>
#include <optional>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

namespace ds = dexter::sessions;
namespace json = boost::json;

namespace {

using ds::test::at;

ds::session_meta sample_meta(std::string title) {
    ds::session_meta m;
    m.id = "ab12cd34";
    m.title = std::move(title);
    m.created_at = at(0);
    m.updated_at = at(100);
    m.exchange_count = 0;
    return m;
}

ds::exchange plain(std::uint64_t seq, std::string query, std::string answer) {
    ds::exchange ex;
    ex.seq = seq;
    ex.timestamp = at(static_cast<int>(seq) * 10);
    ex.query = std::move(query);
    ex.answer = std::move(answer);
    return ex;
}

ds::exchange full(std::uint64_t seq) {
    ds::exchange ex = plain(seq, "question", "answer");
    ex.summary = "summary";
    ex.model = "model-x";
    ex.duration_ms = 42;
    ex.tool_calls = json::array{json::object{{"name", "grep"}}};
    ex.extra = json::object{{"k", "v"}};
    return ex;
}

// The session as the exporter writes it in `format`.
std::string exported(ds::session_meta meta, const std::vector<ds::exchange>& exchanges,
                     ds::export_format format) {
    meta.exchange_count = exchanges.empty() ? 0 : exchanges.back().seq;
    std::ostringstream out;
    ds::session_exporter exporter(out, format);
    exporter.begin(meta);
    for (const auto& ex : exchanges)
        exporter.add(ex);
    exporter.end();
    return std::move(out).str();
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

std::vector<std::string> keys(const json::object& o) {
    std::vector<std::string> out;
    for (const auto& kv : o)
        out.emplace_back(kv.key());
    return out;
}

// A Markdown line as CommonMark reads it in this transcript: whether it lies inside a
// fenced code block. Block-quoted lines are left to the quote (a fence in a quote ends
// with it). Written apart from export.hpp, from the CommonMark rules: an opening fence is
// up to 3 spaces, then 3 or more backticks or tildes; the closing one uses the same
// character, at least as many, and nothing else.
std::vector<bool> inside_code(const std::vector<std::string>& md) {
    std::vector<bool> out;
    char open = 0;
    std::size_t open_len = 0;
    for (const auto& line : md) {
        const std::size_t indent = std::min(line.find_first_not_of(' '), line.size());
        const std::string_view rest = std::string_view(line).substr(indent);
        const char c = rest.empty() ? 0 : rest[0];
        const std::size_t run = (c == '`' || c == '~') ? rest.find_first_not_of(c) : 0;
        const std::size_t len = run == std::string_view::npos ? rest.size() : run;
        const bool fence = indent <= 3 && len >= 3;
        if (open == 0) {
            out.push_back(false);
            if (fence && line.rfind(">", 0) != 0) {
                open = c;
                open_len = len;
            }
        } else {
            out.push_back(true);
            if (fence && c == open && len >= open_len &&
                rest.find_first_not_of(std::string(1, c) + " \t") == std::string_view::npos)
                open = 0;
        }
    }
    return out;
}

// A stream buffer that takes `room` bytes, then refuses every write; and refuses to
// flush when `sync_fails`.
class failing_buf : public std::streambuf {
public:
    explicit failing_buf(std::size_t room, bool sync_fails = false)
        : room_(room), sync_fails_(sync_fails) {}
    const std::string& written() const noexcept { return written_; }

protected:
    int_type overflow(int_type ch) override {
        if (traits_type::eq_int_type(ch, traits_type::eof()))
            return traits_type::not_eof(ch);
        if (room_ == 0)
            return traits_type::eof();
        --room_;
        written_.push_back(traits_type::to_char_type(ch));
        return ch;
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        const auto k = std::min<std::streamsize>(n, static_cast<std::streamsize>(room_));
        written_.append(s, static_cast<std::size_t>(k));
        room_ -= static_cast<std::size_t>(k);
        return k;
    }
    int sync() override { return sync_fails_ ? -1 : 0; }

private:
    std::size_t room_;
    bool sync_fails_;
    std::string written_;
};

} // namespace

// ---------------------------------------------------------------------------------
// Markdown

BOOST_AUTO_TEST_CASE(markdown_header_lines) {
    const auto md = lines(exported(sample_meta("first line\nsecond\tline\x1b[0m"),
                                   {plain(1, "q", "a")}, ds::export_format::markdown));
    BOOST_TEST_REQUIRE(md.size() > 6u);
    BOOST_TEST(md[0] == "# first line second line [0m"); // one line, no control bytes
    BOOST_TEST(md[1] == "");
    BOOST_TEST(md[2] == "- Session: `ab12cd34`");
    BOOST_TEST(md[3] == "- Created: " + ds::format_timestamp(at(0)));
    BOOST_TEST(md[4] == "- Updated: " + ds::format_timestamp(at(100)));
    BOOST_TEST(md[5] == "- Exchanges: 1");
    const auto untitled =
        lines(exported(sample_meta(""), {plain(1, "q", "a")}, ds::export_format::markdown));
    BOOST_TEST(untitled[0] == "# (untitled)");
}

// Every line of a question stays in its block quote, whatever Markdown it holds.
BOOST_AUTO_TEST_CASE(markdown_questions_stay_quoted) {
    const std::string question = "# heading\n```\n---\n\n> already quoted\n## 2 · fake\nend";
    auto second = full(2);
    second.model = "two\nlines";
    const auto md = lines(exported(sample_meta("t"), {plain(1, question, "the answer"), second},
                                   ds::export_format::markdown));
    const auto heading = std::find_if(
        md.begin(), md.end(), [](const std::string& l) { return l.rfind("## 1 · ", 0) == 0; });
    BOOST_TEST_REQUIRE((heading != md.end()));
    BOOST_TEST(*heading == "## 1 · " + ds::format_timestamp(at(10)));
    const std::vector<std::string> want{"",
                                        "> # heading",
                                        "> ```",
                                        "> ---",
                                        ">",
                                        "> > already quoted",
                                        "> ## 2 · fake",
                                        "> end",
                                        "",
                                        "the answer",
                                        "",
                                        "## 2 · " + ds::format_timestamp(at(20)) + " · two lines"};
    const auto from = static_cast<std::size_t>(heading - md.begin()) + 1;
    BOOST_TEST_REQUIRE(md.size() >= from + want.size());
    BOOST_TEST(std::vector<std::string>(
                   md.begin() + static_cast<std::ptrdiff_t>(from),
                   md.begin() + static_cast<std::ptrdiff_t>(from + want.size())) == want);
    // Only the two exchanges' headings start a line with "## ".
    BOOST_TEST(std::count_if(md.begin(), md.end(),
                             [](const std::string& l) { return l.rfind("## ", 0) == 0; }) == 2);
}

// An answer that leaves a code block open gets it closed, so that the next exchange's
// heading is a heading; an answer that closes its blocks is left as it is.
BOOST_AUTO_TEST_CASE(markdown_closes_fences_an_answer_leaves_open) {
    const std::vector<ds::exchange> exchanges{
        plain(1, "q1", "intro\n```python\nprint(1)"),         // open at the end
        plain(2, "q2", "````\nfour\n```\nstill code\n"),      // ``` does not close ````
        plain(3, "q3", "~~~\ntilde\n```\n"),                  // nor does ``` close ~~~
        plain(4, "q4", "```\nclosed\n```"),                   // closed: nothing added
        plain(5, "q5", "   ```\nindented fence\n  ```   \n"), // closed, with spaces
        plain(6, "q6", "    ```\nindented code, not a fence"),
        plain(7, "q7", "last")};
    const auto md = lines(exported(sample_meta("fences"), exchanges, ds::export_format::markdown));
    const auto code = inside_code(md);
    std::vector<std::string> headings;
    for (std::size_t i = 0; i < md.size(); ++i) {
        if (md[i].rfind("## ", 0) == 0) {
            BOOST_TEST(!code[i], "line " << i << ": " << md[i]);
            headings.push_back(md[i].substr(0, 5));
        }
    }
    BOOST_TEST(headings == (std::vector<std::string>{"## 1 ", "## 2 ", "## 3 ", "## 4 ", "## 5 ",
                                                     "## 6 ", "## 7 "}));
    BOOST_TEST(!code.back());
    // The fences added: one each after answers 1, 2 and 3, of the kind left open.
    const std::string text =
        exported(sample_meta("fences"), exchanges, ds::export_format::markdown);
    BOOST_TEST(text.find("print(1)\n```\n\n## 2 ") != std::string::npos);
    BOOST_TEST(text.find("still code\n````\n\n## 3 ") != std::string::npos);
    BOOST_TEST(text.find("```\n~~~\n\n## 4 ") != std::string::npos);
    BOOST_TEST(text.find("closed\n```\n\n## 5 ") != std::string::npos);
    BOOST_TEST(text.find("  ```   \n\n## 6 ") != std::string::npos);
    BOOST_TEST(text.find("indented code, not a fence\n\n## 7 ") != std::string::npos);
}

// ---------------------------------------------------------------------------------
// JSON

BOOST_AUTO_TEST_CASE(json_document_shape_and_field_names) {
    auto meta = sample_meta("shape");
    meta.extra = json::object{{"pinned", true}};
    const std::vector<ds::exchange> exchanges{full(1), plain(2, "q", "a")};
    const std::string text = exported(meta, exchanges, ds::export_format::json);
    const json::value doc = json::parse(text);
    BOOST_TEST(keys(doc.as_object()) == (std::vector<std::string>{"session", "exchanges"}));
    const auto& session = doc.at("session").as_object();
    BOOST_TEST(keys(session) ==
               (std::vector<std::string>{"id", "title", "created_at", "updated_at",
                                         "exchange_count", "extra", "pinned", "version"}));
    BOOST_TEST(json::serialize(session) ==
               R"({"id":"ab12cd34","title":"shape","created_at":")" + ds::format_timestamp(at(0)) +
                   R"(","updated_at":")" + ds::format_timestamp(at(100)) +
                   R"(","exchange_count":2,"extra":{"pinned":true},"pinned":false,"version":1})");
    // A pinned fork says so.
    meta.pinned = true;
    meta.forked_from = ds::session_origin{"zz99yy88", 7};
    const json::value forked = json::parse(exported(meta, exchanges, ds::export_format::json));
    BOOST_TEST(json::serialize(forked.at("session").at("pinned")) == "true");
    BOOST_TEST(json::serialize(forked.at("session").at("forked_from")) ==
               R"({"id":"zz99yy88","seq":7})");
    const auto& array = doc.at("exchanges").as_array();
    BOOST_TEST_REQUIRE(array.size() == 2u);
    BOOST_TEST(keys(array[0].as_object()) ==
               (std::vector<std::string>{"seq", "timestamp", "query", "answer", "summary", "model",
                                         "duration_ms", "tool_calls", "extra"}));
    BOOST_TEST(keys(array[1].as_object()) ==
               (std::vector<std::string>{"seq", "timestamp", "query", "answer"}));
    for (std::size_t i = 0; i < exchanges.size(); ++i)
        BOOST_TEST((json::value_to<ds::exchange>(array[i]) == exchanges[i]));
    // One exchange per line, between the session's lines and the closing one.
    const auto text_lines = lines(text);
    BOOST_TEST_REQUIRE(text_lines.size() == 5u);
    BOOST_TEST(text_lines[1] == R"("exchanges":[)");
    BOOST_TEST(json::parse(text_lines[2].substr(0, text_lines[2].size() - 1)) == array[0]);
    BOOST_TEST(json::parse(text_lines[3]) == array[1]);
    BOOST_TEST(text_lines[4] == "]}");
}

// sessions::append_json() writes the object json::value_from() gives, and JSON even for
// text a store handed back without checking it (a custom store's, or a SQL_ASCII
// database's): each byte that is not valid UTF-8 becomes U+FFFD, where it once cut the
// object short.
BOOST_AUTO_TEST_CASE(append_json_is_value_from_and_repairs_what_is_not_utf8) {
    auto meta = sample_meta("t\xC3\xA9st \"q\"\n");
    meta.extra = json::object{{"project", "atlas"}, {"n", 3}};
    meta.pinned = true;
    meta.forked_from = ds::session_origin{"zz99yy88", 7};
    std::string out = "[";
    ds::append_json(out, meta);
    BOOST_TEST_REQUIRE(out.front() == '[');
    BOOST_TEST(json::parse(out.substr(1)) == json::value_from(meta));

    auto bad = sample_meta("caf\xE9 \xF0\x9F\x98");
    bad.extra = json::object{{"k\xFF", json::array{"v\xC0\xAF"}}};
    std::string text;
    ds::append_json(text, bad);
    BOOST_TEST(ds::is_valid_utf8(text));
    json::value doc;
    BOOST_REQUIRE_NO_THROW(doc = json::parse(text));
    BOOST_TEST(doc.at("title").as_string() ==
               "caf\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    BOOST_TEST(json::serialize(doc.at("extra")) ==
               "{\"k\xEF\xBF\xBD\":[\"v\xEF\xBF\xBD\xEF\xBF\xBD\"]}");
    BOOST_TEST(doc.at("exchange_count").as_int64() == 0);

    // A time the format cannot hold is an error, not a wrong date.
    auto far = sample_meta("far");
    far.updated_at = ds::time_point::max();
    std::string ignored;
    BOOST_CHECK_THROW(ds::append_json(ignored, far), ds::time_out_of_range);
}

// The json and jsonl exports of a session whose text a store handed back without
// checking it: JSON all the same, each byte that is not valid UTF-8 written as U+FFFD,
// where an exchange used to leave an unterminated string (and NUL bytes) behind.
BOOST_AUTO_TEST_CASE(exports_repair_text_that_is_not_utf8) {
    auto meta = sample_meta("caf\xE9");
    meta.extra = json::object{{"k", "\xFF"}};
    ds::exchange ex = full(1);
    ex.query = "q\xC0\xAF";
    ex.answer = "a\xF0\x9F\x98";
    ex.summary = "s\xE9";
    ex.model = "m\xFE";
    ex.tool_calls = json::array{json::object{{"name", "t\xFF"}}};
    ex.extra = json::object{{"k\xFF", "v"}};
    const std::vector<ds::exchange> exchanges{ex, plain(2, "fine", "fine")};
    const std::string bad = "\xEF\xBF\xBD";
    const std::string doc_text = exported(meta, exchanges, ds::export_format::json);
    BOOST_TEST(ds::is_valid_utf8(doc_text));
    json::value doc;
    BOOST_REQUIRE_NO_THROW(doc = json::parse(doc_text));
    BOOST_TEST(doc.at("session").at("title").as_string() == "caf" + bad);
    const auto& array = doc.at("exchanges").as_array();
    BOOST_TEST_REQUIRE(array.size() == 2u);
    BOOST_TEST(array[0].at("query").as_string() == "q" + bad + bad);
    BOOST_TEST(array[0].at("answer").as_string() == "a" + bad + bad + bad);
    BOOST_TEST(array[0].at("summary").as_string() == "s" + bad);
    BOOST_TEST(array[0].at("model").as_string() == "m" + bad);
    BOOST_TEST(array[0].at("tool_calls").at(0).at("name").as_string() == "t" + bad);
    BOOST_TEST(array[0].at("extra").as_object().contains("k" + bad));
    BOOST_TEST(array[1].at("query").as_string() == "fine");

    const std::string jsonl = exported(meta, exchanges, ds::export_format::jsonl);
    BOOST_TEST(ds::is_valid_utf8(jsonl));
    const auto records = lines(jsonl);
    BOOST_TEST_REQUIRE(records.size() == 3u);
    for (const auto& line : records)
        BOOST_REQUIRE_NO_THROW(json::parse(line));
    BOOST_TEST(json::parse(records[0]).at("title").as_string() == "caf" + bad);
    BOOST_TEST(json::parse(records[0]).at("extra").at("k").as_string() == bad);
    BOOST_TEST(json::parse(records[1]).at("query").as_string() == "q" + bad + bad);
}

BOOST_AUTO_TEST_CASE(json_of_a_session_without_exchanges) {
    const json::value doc = json::parse(exported(sample_meta(""), {}, ds::export_format::json));
    BOOST_TEST(doc.at("exchanges").as_array().empty());
    BOOST_TEST(doc.at("session").at("title").as_string() == "");
    BOOST_TEST(doc.at("session").at("extra").as_object().empty());
}

BOOST_AUTO_TEST_CASE(jsonl_is_a_history_file) {
    auto meta = sample_meta("jsonl");
    meta.extra = json::object{{"pinned", true}};
    const auto text =
        lines(exported(meta, {full(1), plain(2, "q", "a")}, ds::export_format::jsonl));
    BOOST_TEST_REQUIRE(text.size() == 3u);
    BOOST_TEST(text[0] == R"({"type":"session","version":1,"id":"ab12cd34","created_at":")" +
                              ds::format_timestamp(at(0)) +
                              R"(","title":"jsonl","extra":{"pinned":true}})");
    BOOST_TEST(text[2] == R"({"type":"exchange","seq":2,"timestamp":")" +
                              ds::format_timestamp(at(20)) + R"(","query":"q","answer":"a"})");
}

// ---------------------------------------------------------------------------------
// Failures of the stream

BOOST_AUTO_TEST_CASE(a_failing_stream_is_an_error) {
    auto meta = sample_meta("fails");
    meta.exchange_count = 2;
    const std::vector<ds::exchange> exchanges{full(1), full(2)};
    for (const auto format :
         {ds::export_format::jsonl, ds::export_format::json, ds::export_format::markdown}) {
        const std::size_t whole = exported(meta, exchanges, format).size();
        // Fails at every byte: in begin(), add() or end(), always as an error.
        for (std::size_t room = 0; room < whole; ++room) {
            BOOST_TEST_CONTEXT(ds::to_string(format) << ", room for " << room << " bytes") {
                failing_buf buf(room);
                std::ostream out(&buf);
                bool thrown = false;
                try {
                    ds::session_exporter exporter(out, format);
                    exporter.begin(meta);
                    for (const auto& ex : exchanges)
                        exporter.add(ex);
                    exporter.end();
                } catch (const ds::error& e) {
                    thrown = true;
                    BOOST_TEST(std::string(e.what()).find("output stream failed") !=
                               std::string::npos);
                }
                BOOST_TEST(thrown);
                BOOST_TEST(out.bad());
                BOOST_TEST(buf.written().size() == room);
            }
        }
        // With room for it all, the same buffer takes the whole export.
        failing_buf buf(whole);
        std::ostream out(&buf);
        ds::session_exporter exporter(out, format);
        exporter.begin(meta);
        for (const auto& ex : exchanges)
            exporter.add(ex);
        BOOST_CHECK_NO_THROW(exporter.end());
        BOOST_TEST(buf.written() == exported(meta, exchanges, format));
    }
}

BOOST_AUTO_TEST_CASE(a_failing_flush_is_an_error) {
    failing_buf buf(1u << 20, true);
    std::ostream out(&buf);
    ds::session_exporter exporter(out, ds::export_format::jsonl);
    exporter.begin(sample_meta("flush"));
    BOOST_CHECK_THROW(exporter.end(), ds::error);
}

BOOST_AUTO_TEST_CASE(export_session_throws_when_the_stream_fails) {
    ds::test_session_manager sessions;
    sessions.start_new();
    sessions.save_exchange("question", "answer");
    sessions.save_exchange("question 2", "answer 2");
    const auto meta = sessions.find_session(sessions.current()->id);
    BOOST_TEST_REQUIRE(meta.has_value());
    std::ostringstream good;
    const auto result = ds::export_session(sessions, *meta, ds::export_format::json, good);
    BOOST_TEST(result.exchanges == 2u);
    failing_buf buf(good.str().size() / 2);
    std::ostream out(&buf);
    BOOST_CHECK_THROW(ds::export_session(sessions, *meta, ds::export_format::json, out), ds::error);
    BOOST_TEST(buf.written() == good.str().substr(0, good.str().size() / 2));
}

// ---------------------------------------------------------------------------------
// Format names

BOOST_AUTO_TEST_CASE(format_names) {
    for (const auto f :
         {ds::export_format::jsonl, ds::export_format::json, ds::export_format::markdown}) {
        const auto parsed = ds::parse_export_format(ds::to_string(f));
        BOOST_TEST_REQUIRE(parsed.has_value());
        BOOST_TEST((*parsed == f));
    }
    BOOST_TEST(ds::to_string(ds::export_format::jsonl) == "jsonl");
    BOOST_TEST(ds::to_string(ds::export_format::json) == "json");
    BOOST_TEST(ds::to_string(ds::export_format::markdown) == "markdown");
    BOOST_TEST((ds::parse_export_format("md") == ds::export_format::markdown));
    const std::vector<std::string_view> bad_names{
        "", "JSON", "Markdown", "markdown ", "txt", "jsonl\n", "j", std::string_view("json\0", 5)};
    for (const std::string_view bad : bad_names)
        BOOST_TEST(!ds::parse_export_format(bad).has_value(), "'" << bad << "'");
}

// ---------------------------------------------------------------------------------
// The file store

// An answer just under the file store's 16 MiB record limit comes back whole in jsonl
// and in json, through the manager's streaming read.
BOOST_AUTO_TEST_CASE(file_store_exports_a_15_mib_answer) {
    ds::test::temp_dir dir;
    ds::test::file_manager sessions{ds::jsonl_store{dir.path(), "cli", ds::test::unsynced}};
    std::string big;
    big.reserve(15u << 20);
    const std::string piece = std::string(1000, 'x') + "\n\"\xC3\xA9\xF0\x9F\x98\x80\x1b[0m\t";
    while (big.size() + piece.size() <= (15u << 20))
        big += piece;
    sessions.start_new();
    sessions.save_exchange("small", "before");
    sessions.save_exchange("big", big);
    sessions.save_exchange("small", "after");
    const auto meta = sessions.find_session(sessions.current()->id);
    BOOST_TEST_REQUIRE(meta.has_value());
    {
        std::ostringstream out;
        const auto r = ds::export_session(sessions, *meta, ds::export_format::jsonl, out);
        BOOST_TEST(r.exchanges == 3u);
        BOOST_TEST(r.diagnostics.empty());
        const auto text = lines(out.str());
        BOOST_TEST_REQUIRE(text.size() == 4u);
        const auto ex = json::value_to<ds::exchange>(json::parse(text[2]));
        BOOST_TEST(ex.seq == 2u);
        BOOST_TEST((ex.answer == big)); // not printed: 15 MiB
        BOOST_TEST(json::value_to<ds::exchange>(json::parse(text[3])).answer == "after");
    }
    {
        std::ostringstream out;
        ds::export_session(sessions, *meta, ds::export_format::json, out);
        const auto doc = json::parse(out.str());
        BOOST_TEST((json::value_to<ds::exchange>(doc.at("exchanges").at(1)).answer == big));
    }
}

// A damaged record is skipped and reported; the rest is exported.
BOOST_AUTO_TEST_CASE(file_store_export_reports_a_damaged_record) {
    ds::test::temp_dir dir;
    const auto saved = ds::test::save_session(dir.path(), "dmg00001", 3);
    const auto path = ds::test::history(dir.path(), "dmg00001");
    auto file = ds::test::lines_of(ds::test::read_bytes(path));
    BOOST_TEST_REQUIRE(file.size() == 4u);
    file[2] = "{\"type\":\"exchange\",\"seq\":2, broken";
    ds::test::write_bytes(path, ds::test::joined(file));
    ds::test::file_manager sessions{ds::jsonl_store{dir.path(), "cli", ds::test::unsynced}};
    const auto meta = sessions.find_session("dmg00001");
    BOOST_TEST_REQUIRE(meta.has_value());
    std::ostringstream out;
    const auto r = ds::export_session(sessions, *meta, ds::export_format::jsonl, out);
    BOOST_TEST(r.exchanges == 2u);
    BOOST_TEST_REQUIRE(r.diagnostics.size() >= 1u);
    BOOST_TEST(r.diagnostics[0].line == 3u);
    const auto text = lines(out.str());
    BOOST_TEST_REQUIRE(text.size() == 3u);
    BOOST_TEST(json::value_to<ds::exchange>(json::parse(text[1])).seq == 1u);
    BOOST_TEST(json::value_to<ds::exchange>(json::parse(text[2])).seq == 3u);
    BOOST_TEST(saved.exchange_count == 3u);
}
