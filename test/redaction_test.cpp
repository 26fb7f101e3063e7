// SPDX-License-Identifier: BSL-1.0
// Secret redaction: secret_redactor on ordinary text (nothing found) and on secrets of
// every documented kind (each found, whole, and only it).
#include <dexter/sessions/redactor.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/redacting_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#define BOOST_TEST_MODULE redaction
#include <boost/test/unit_test.hpp>

#include "../bench/realistic_text.hpp"
#include "support/temp_dir.hpp"

#include <boost/json/serialize.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ds = dexter::sessions;
namespace json = boost::json;

namespace {

constexpr std::string_view upper_digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::string_view alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view base64url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view base64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view hex = "0123456789abcdef";

std::string random_of(bench::rng& r, std::string_view alphabet, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i)
        s += alphabet[r.below(alphabet.size())];
    return s;
}

std::string uuid(bench::rng& r) {
    return random_of(r, hex, 8) + '-' + random_of(r, hex, 4) + "-4" + random_of(r, hex, 3) + '-' +
           random_of(r, "89ab", 1) + random_of(r, hex, 3) + '-' + random_of(r, hex, 12);
}

// Lines of ordinary text a conversation with an agent holds: prose, code, shell, paths,
// configuration, URLs, identifiers and encoded data, none of it a secret.
const std::vector<std::string>& written_corpus() {
    static const std::vector<std::string> lines = {
        "The quarterly revenue grew 12% year over year, driven by services.",
        "Ask the analyst whether the 10-K mentions the new guidance.",
        "A password manager keeps every password in one encrypted vault.",
        "Password: the one you chose when you signed up, not your email password.",
        "Reset your password from the account page if you forgot it.",
        "Bearer bonds were common before the 1980s.",
        "The Authorization header carries the credentials of the request.",
        "Use Bearer authentication with a token from the dashboard.",
        "Set the Authorization header to `Bearer $TOKEN` before calling the API.",
        "Authorization: Bearer <your-token-here>",
        "export OPENAI_API_KEY=\"$(cat ~/.config/openai/key)\"",
        "The key starts with sk- followed by a long random string.",
        "risk-management and task-tracking are two different skills.",
        "Use the flag --disk-size=20G and the desk-lamp preset.",
        "scikit-learn, numpy and pandas are installed in the venv.",
        "See https://docs.python.org/3/library/re.html#re.sub for details.",
        "Clone git@github.com:boostorg/json.git and build with b2.",
        "Open http://localhost:8080/admin?user=alice&tab=settings in a browser.",
        "ssh://git@example.com:2222/repo.git is the mirror.",
        "mailto:someone@example.com?subject=Hello",
        "The URL is https://user@example.com/path (no password in it).",
        "postgres://app@db.internal:5432/sales?sslmode=require",
        "postgresql://user:password@localhost/dbname is the example from the docs.",
        "redis://:${REDIS_PASSWORD}@cache:6379/0",
        "mysql://root:$MYSQL_ROOT_PASSWORD@127.0.0.1:3306/app",
        "if (password == expected) { return true; }",
        "if password != confirm_password:",
        "def login(user: str, password: str) -> bool:",
        "    return check(user=user, password=password)",
        "conn = connect(host=h, user=u, password=args.password)",
        "password = getpass.getpass(\"Password: \")",
        "const password: string = form.get(\"password\");",
        "  password: ${DB_PASSWORD}",
        "password=<your password>",
        "PASSWORD=$(vault read -field=value secret/db)",
        "db_password: null",
        "\"password\": null,",
        "\"password_hash\": \"$2b$12$KIXQJ8Z5n0bT3mC6Yl1b9e\",",
        "let passwordField = document.querySelector('#password');",
        "The password policy requires 12 characters and a digit.",
        "std::string_view key = \"AKIA\"; // prefix of an AWS access key id",
        "AKIA followed by sixteen characters is an access key id.",
        "ASIAN markets opened higher on Tuesday.",
        "AIzawa is a Japanese family name.",
        "ghp_ is the prefix of a GitHub classic token.",
        "github_pat_ tokens are fine-grained.",
        "xoxb- tokens belong to Slack bots.",
        "sk_live_ and rk_live_ keys are Stripe's secret and restricted keys.",
        "sk_test_ keys work in Stripe's test mode only.",
        "eyJ is how a base64-encoded JSON object starts.",
        "-----BEGIN CERTIFICATE-----",
        "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ",
        "-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----",
        "-----BEGIN PGP SIGNATURE-----",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
        "user@host",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 deploy@ci",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "Merge pull request #1234 from feature/add-redaction",
        "/usr/local/lib/python3.11/site-packages/requests/adapters.py",
        "C:\\Users\\me\\AppData\\Local\\Temp\\build-2026-03-01.log",
        "~/.dexter/sessions/cli/abcd1234/history.jsonl",
        "./build/Release/bin/dexter_sessions_bench --figure 17",
        "src/main/java/com/example/auth/PasswordEncoder.java",
        "node_modules/@types/jsonwebtoken/index.d.ts",
        "TODO: replace the hard-coded AKIA placeholder with a parameter.",
        "for (std::size_t i = 0; i < n; ++i) sum += a[i] * b[i];",
        "auto [key, value] = *map.begin();",
        "template <class T> concept hashable = requires(T t) { std::hash<T>{}(t); };",
        "x := map[string]int{\"a\": 1, \"b\": 2}",
        "let re = Regex::new(r\"^[a-z]+-[0-9]+$\").unwrap();",
        "SELECT id, title FROM sessions WHERE updated_at > now() - interval '7 days';",
        "UPDATE users SET last_login = now() WHERE id = $1;",
        "grep -rn 'TODO' src/ | wc -l",
        "docker run --rm -e POSTGRES_PASSWORD_FILE=/run/secrets/pg -p 5432:5432 postgres:16",
        "kubectl get pods -n kube-system -o wide",
        "curl -sS -X POST https://api.example.com/v1/items -d '{\"name\": \"x\"}'",
        "curl -H \"Authorization: Bearer ${API_TOKEN}\" https://api.example.com/v1/me",
        "headers = {\"Authorization\": f\"Bearer {token}\"}",
        "Authorization: Basic dXNlcjpwYXNz is base64 of user:pass.",
        "CMAKE_BUILD_TYPE=Release cmake -S . -B build -G Ninja",
        "LD_LIBRARY_PATH=/opt/lib:/usr/lib ./run.sh --verbose",
        "key=value pairs are separated by &: a=1&b=2&c=3",
        "The ratio is 3:2 and the time is 12:45:07.",
        "std::chrono::milliseconds d{250};",
        "namespace fs = std::filesystem;",
        "[section]\nname = demo\nport = 8080",
        "user_name: alice\nemail: alice@example.com",
        "version: \"3.9\"\nservices:\n  db:\n    image: postgres:16",
        "A-Za-z0-9_- is the alphabet of base64url.",
        "JSON Web Tokens have three parts separated by dots.",
        "eyeJ is not a word, and neither is eyJunk.",
        "The JVM flag -XX:+UseG1GC enables the G1 collector.",
        "Call ASAP: the AKIAPOLICY document is due Friday.",
        "The model gpt-4o-mini answered in 1.2 s.",
        "claude-3-5-sonnet-20241022 is a model name, not a key.",
        "sk-1 and sk-2 are two sketches in the notebook.",
        "Tasks: sk-learn-basics, sk-learn-advanced, sk-learn-pipelines-and-grids",
        "The uuid of the run is in run.json.",
        "Emoji work too: \xF0\x9F\x9A\x80 launch, \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E text, "
        "caf\xC3\xA9.",
        "\xE5\xAF\x86\xE7\xA0\x81 is Chinese for password; "
        "\xE3\x83\x91\xE3\x82\xB9\xE3\x83\xAF\xE3\x83\xBC\xE3\x83\x89 is Japanese.",
        "Le mot de passe doit contenir 12 caract\xC3\xA8res.",
        "A = B: the identity holds for every AJ pair.",
        "JIRA-1234: fix the login form's password=... parsing",
        "Error: ENOENT: no such file or directory, open '/etc/app/config.json'",
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"api\"",
        "Content-Type: application/json; charset=utf-8",
        "X-Request-Id: 7f3e9a2c-1b4d-4e8f-9a6b-2c1d3e4f5a6b",
        "Set-Cookie: theme=dark; Path=/; SameSite=Lax",
        "--- a/include/dexter/sessions/storage.hpp",
        "+++ b/include/dexter/sessions/storage.hpp",
        "@@ -12,7 +12,9 @@ namespace dexter::sessions {",
        "-----",
        "| kind | count |\n|------|-------|\n| jwt  | 0     |",
        "=====  Results  =====",
        "a_b_c_d and __init__ and _private_ names",
        "github_user and github_org are fields of the form.",
        "gh_pages is the branch that hosts the docs.",
        "The xox- prefix is Slack's; xoxo means hugs.",
        "ghp_short is not a token.",
        "AIza12 is too short to be a key.",
        "password=\nusername=",
        "Passwords: 3 rotated, 0 expired.",
        "Enter password:",
        "password:",
        "the password is in the vault, ask ops",
        "API_KEY=${OPENAI_API_KEY:?set it first}",
        "jwt.decode(token, key, algorithms=[\"HS256\"])",
        "The header {\"alg\":\"HS256\",\"typ\":\"JWT\"} encodes to eyJhbGciOi...",
        "Sign in at https://accounts.example.com/login?next=%2Fhome",
        "ftp://ftp.example.org/pub/README",
        "file:///home/me/notes.txt",
        "s3://my-bucket/data/2026/03/01/part-0000.parquet",
        "https://example.com/a:b@c is not a login, the path has it.",
        "Time: 00:00:01.250, then again at 23:59:59.999",
        "IPv6 fe80::1ff:fe23:4567:890a and ::1",
        "git log --format='%H %s' -n 5",
        "python -m http.server 8000 --bind 127.0.0.1",
        "Answer: 42",
        "Note: the key rotation runs every 90 days.",
        "Q: How do I store a secret? A: In a secret manager, never in code.",
    };
    return lines;
}

// The corpus: the written lines, then generated ones: UUIDs, hashes, base64 images, and
// the lines of the benchmark's realistic answers and questions.
std::vector<std::string> ordinary_corpus() {
    std::vector<std::string> lines = written_corpus();
    bench::rng r(20261201);
    for (int i = 0; i < 20; ++i) {
        lines.push_back("request " + uuid(r) + " finished");
        lines.push_back(random_of(r, hex, 64) + "  dist/app-" + std::to_string(i) + ".tar.gz");
        lines.push_back("commit " + random_of(r, hex, 40));
    }
    for (int i = 0; i < 10; ++i)
        lines.push_back("![chart](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA" +
                        random_of(r, base64, 600) + "==)");
    for (int i = 0; i < 40; ++i)
        lines.push_back(bench::realistic_line(r, 200));
    for (int i = 0; i < 10; ++i) {
        const std::string answer = bench::realistic_answer(r, 4096);
        std::size_t from = 0;
        while (from < answer.size()) {
            auto end = answer.find('\n', from);
            if (end == std::string::npos)
                end = answer.size();
            if (end > from)
                lines.push_back(answer.substr(from, end - from));
            from = end + 1;
        }
    }
    return lines;
}

struct secret_sample {
    std::string text; // the secret itself
    std::string_view kind;
};

// Secrets of every kind, made up here from the documented formats (none is a real key).
std::vector<secret_sample> secret_samples() {
    std::vector<secret_sample> out;
    bench::rng r(4242);
    for (int i = 0; i < 10; ++i) {
        out.push_back({"sk-" + random_of(r, alnum, 48), "openai_key"});
        out.push_back({"sk-proj-" + random_of(r, base64url, 156), "openai_key"});
        out.push_back({"sk-ant-api03-" + random_of(r, base64url, 93) + "AA", "anthropic_key"});
        out.push_back(
            {(i % 2 ? "AKIA" : "ASIA") + random_of(r, upper_digits, 16), "aws_access_key_id"});
        out.push_back(
            {std::string("gh") + "pos"[i % 3] + '_' + random_of(r, alnum, 36), "github_token"});
        out.push_back({"github_pat_" + random_of(r, alnum, 22) + '_' + random_of(r, alnum, 59),
                       "github_token"});
        out.push_back({std::string("xox") + "abprs"[i % 5] + '-' + random_of(r, "0123456789", 12) +
                           '-' + random_of(r, "0123456789", 13) + '-' + random_of(r, alnum, 24),
                       "slack_token"});
        out.push_back({"AIza" + random_of(r, base64url, 35), "google_api_key"});
        out.push_back(
            {(i % 2 ? "sk_live_" : "rk_live_") + random_of(r, alnum, 24 + i * 7), "stripe_key"});
        out.push_back({"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + random_of(r, base64url, 40) +
                           '.' + random_of(r, base64url, 43),
                       "jwt"});
        out.push_back({"-----BEGIN " +
                           std::string(i % 3 == 0   ? "RSA "
                                       : i % 3 == 1 ? "OPENSSH "
                                                    : "") +
                           "PRIVATE KEY-----\n" + random_of(r, base64, 64) + '\n' +
                           random_of(r, base64, 64) + '\n' + random_of(r, base64, 20) +
                           "==\n-----END " +
                           std::string(i % 3 == 0   ? "RSA "
                                       : i % 3 == 1 ? "OPENSSH "
                                                    : "") +
                           "PRIVATE KEY-----",
                       "private_key"});
    }
    return out;
}

ds::secret_redactor redact;

// Checks that `in` is redacted to `expected`, with one secret of `kind`.
void check_redacted(std::string_view in, std::string_view expected, std::string_view kind) {
    const auto out = redact(in);
    BOOST_TEST_REQUIRE(out.has_value(), in);
    BOOST_TEST(out->text == expected);
    BOOST_TEST(out->counts.size() == 1u);
    BOOST_TEST(out->counts.count(kind) == 1u);
    BOOST_TEST(out->counts.begin()->second == 1u);
}

} // namespace

BOOST_AUTO_TEST_CASE(ordinary_text_has_no_secret) {
    const auto corpus = ordinary_corpus();
    BOOST_TEST(corpus.size() >= 200u);
    std::size_t redacted = 0;
    for (const auto& line : corpus) {
        if (const auto r = redact(line)) {
            ++redacted;
            BOOST_TEST_MESSAGE("redacted: " << line << "\n    as: " << r->text);
            BOOST_ERROR("a line of ordinary text was redacted: " << r->text);
        }
    }
    BOOST_TEST(redacted == 0u);
    // The whole corpus at once, as one answer: still nothing.
    std::string all;
    for (const auto& line : corpus)
        all += line + '\n';
    BOOST_TEST(!redact(all).has_value());
}

BOOST_AUTO_TEST_CASE(every_secret_sample_is_redacted_whole) {
    const auto samples = secret_samples();
    BOOST_TEST(samples.size() >= 100u);
    for (const auto& s : samples) {
        const std::string text = "here it is: " + s.text + " (keep it safe)";
        const auto r = redact(text);
        BOOST_TEST_REQUIRE(r.has_value(), "not redacted: " << s.text);
        BOOST_TEST(r->text == "here it is: [REDACTED:" + std::string(s.kind) + "] (keep it safe)",
                   s.text);
        BOOST_TEST(r->counts.size() == 1u);
        BOOST_TEST(r->counts.count(s.kind) == 1u);
        // What was put in its place is not found again.
        BOOST_TEST(!redact(r->text).has_value());
    }
}

// The scanner reads blocks of 32 or 16 bytes, then single bytes: a secret of each kind is
// found wherever it starts and ends, across and at the edges of the blocks.
BOOST_AUTO_TEST_CASE(secrets_are_found_at_every_offset) {
    // Each text, and what it becomes.
    std::vector<std::pair<std::string, std::string>> cases;
    const auto samples = secret_samples();
    for (std::size_t k = 0; k < 11; ++k) // the first of each kind
        cases.emplace_back(samples[k].text, "[REDACTED:" + std::string(samples[k].kind) + "]");
    cases.emplace_back("postgres://u:pw1234@h", "postgres://u:[REDACTED:url_password]@h");
    cases.emplace_back("Authorization: Bearer abc123def456",
                       "Authorization: Bearer [REDACTED:bearer_token]");
    cases.emplace_back("password=hunter2", "password=[REDACTED:password]");
    cases.emplace_back("\"passwd\": \"x1\"", "\"passwd\": \"[REDACTED:password]\"");
    for (const auto& [secret, replaced] : cases) {
        for (std::size_t before = 0; before < 70; ++before) {
            for (const std::size_t after : {0, 1, 2, 5, 17, 40}) {
                const std::string pad_before(before, ' '), pad_after(after, ' ');
                const auto r = redact(pad_before + secret + pad_after);
                BOOST_TEST_REQUIRE(r.has_value(), secret << " at " << before << ", " << after);
                BOOST_TEST(r->text == pad_before + replaced + pad_after);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(several_secrets_in_one_text_are_counted_by_kind) {
    bench::rng r(7);
    const std::string a = "sk-" + random_of(r, alnum, 48), b = "sk-" + random_of(r, alnum, 48);
    const std::string aws = "AKIA" + random_of(r, upper_digits, 16);
    const auto out = redact("keys: " + a + ", " + aws + ", " + b);
    BOOST_TEST_REQUIRE(out.has_value());
    BOOST_TEST(out->text ==
               "keys: [REDACTED:openai_key], [REDACTED:aws_access_key_id], [REDACTED:openai_key]");
    BOOST_TEST(out->counts.at("openai_key") == 2u);
    BOOST_TEST(out->counts.at("aws_access_key_id") == 1u);
}

BOOST_AUTO_TEST_CASE(a_url_keeps_its_user_and_host) {
    check_redacted("DATABASE_URL=postgres://alice:s3cr3t-P4ss@db.example.com:5432/app",
                   "DATABASE_URL=postgres://alice:[REDACTED:url_password]@db.example.com:5432/app",
                   "url_password");
    check_redacted("see https://bob:p@ss:w0rd@host.example/x?y=1 now",
                   "see https://bob:[REDACTED:url_password]@host.example/x?y=1 now",
                   "url_password");
}

BOOST_AUTO_TEST_CASE(a_private_key_goes_as_a_whole_block) {
    bench::rng r(11);
    const std::string body = random_of(r, base64, 64) + '\n' + random_of(r, base64, 30);
    const std::string text = "Use this key:\n-----BEGIN EC PRIVATE KEY-----\n" + body +
                             "\n-----END EC PRIVATE KEY-----\nand then connect.";
    const auto out = redact(text);
    BOOST_TEST_REQUIRE(out.has_value());
    BOOST_TEST(out->text == "Use this key:\n[REDACTED:private_key]\nand then connect.");
    // A block cut short (no END line) is redacted to the end of the text.
    const auto cut = redact("key:\n-----BEGIN PRIVATE KEY-----\n" + body);
    BOOST_TEST_REQUIRE(cut.has_value());
    BOOST_TEST(cut->text == "key:\n[REDACTED:private_key]");
    // A certificate or public key is not secret.
    BOOST_TEST(!redact("-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----")
                    .has_value());
}

BOOST_AUTO_TEST_CASE(a_bearer_token_keeps_its_header) {
    check_redacted("curl -H 'Authorization: Bearer abc123DEF456ghi789' https://x.io",
                   "curl -H 'Authorization: Bearer [REDACTED:bearer_token]' https://x.io",
                   "bearer_token");
    check_redacted(R"({"authorization": "bearer 9f8e7d6c5b4a3210"})",
                   R"({"authorization": "bearer [REDACTED:bearer_token]"})", "bearer_token");
}

BOOST_AUTO_TEST_CASE(password_assignments_lose_their_value) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"password=hunter2", "password=[REDACTED:password]"},
        {"login?user=bob&password=Tr0ub4dor&3", "login?user=bob&password=[REDACTED:password]&3"},
        {"--db-password=correct-horse-battery", "--db-password=[REDACTED:password]"},
        {R"({"user": "bob", "password": "p@ss \"word\" 1"})",
         R"({"user": "bob", "password": "[REDACTED:password]"})"},
        {"PASSWORD = 'secret value'", "PASSWORD = '[REDACTED:password]'"},
        {"db:\n  user: app\n  password: s3cret!\n",
         "db:\n  user: app\n  password: [REDACTED:password]\n"},
        {"MYSQL_PASSWD=\"pa ss\"", "MYSQL_PASSWD=\"[REDACTED:password]\""},
        {"mot de passe: password=caf\xC3\xA9-2026 ok",
         "mot de passe: password=[REDACTED:password] ok"},
    };
    for (const auto& [in, expected] : cases)
        check_redacted(in, expected, "password");
}

BOOST_AUTO_TEST_CASE(ordinary_text_is_not_copied) {
    // Nothing found: nothing returned, so the caller keeps its text as it is.
    const std::string text(100000, 'x');
    BOOST_TEST(!redact(text).has_value());
    BOOST_TEST(redact.find(text).empty());
    BOOST_TEST(!redact("").has_value());
}

// ---------------------------------------------------------------------------------
// redacting_store

namespace {

template <class Store>
using manager_over =
    ds::session_manager<ds::redacting_store<Store>, ds::manual_clock, ds::sequential_ids>;

// Made up at test time, like every secret here.
struct made_up_secrets {
    bench::rng r{99};
    std::string openai = "sk-proj-" + random_of(r, base64url, 64) + "9";
    std::string aws = "AKIA" + random_of(r, upper_digits, 16);
    std::string github = "ghp_" + random_of(r, alnum, 36);
};

ds::exchange exchange_with(const made_up_secrets& s) {
    ds::exchange ex;
    ex.query = "my key is " + s.openai + ", is it valid?";
    ex.answer = "Never paste keys: rotate " + s.openai + " now.";
    ex.summary = "asked about key " + s.aws;
    ex.tool_calls.push_back(
        json::object{{"name", "shell"}, {"args", json::array{"gh", "auth", s.github}}});
    ex.extra = json::object{{"note", "env has " + s.aws}, {"n", 7}};
    return ex;
}

void check_redacted_exchange(const ds::exchange& ex) {
    BOOST_TEST(ex.query == "my key is [REDACTED:openai_key], is it valid?");
    BOOST_TEST(ex.answer == "Never paste keys: rotate [REDACTED:openai_key] now.");
    BOOST_TEST(ex.summary.value() == "asked about key [REDACTED:aws_access_key_id]");
    BOOST_TEST(json::serialize(ex.tool_calls) ==
               R"([{"name":"shell","args":["gh","auth","[REDACTED:github_token]"]}])");
    BOOST_TEST(json::serialize(ex.extra) ==
               R"({"note":"env has [REDACTED:aws_access_key_id]","n":7,)"
               R"("redacted":{"aws_access_key_id":2,"github_token":1,"openai_key":2}})");
}

} // namespace

BOOST_AUTO_TEST_CASE(the_store_keeps_redacted_text_and_the_history_the_original) {
    ds::test::temp_dir dir;
    const made_up_secrets s;
    ds::session_id id;
    {
        manager_over<ds::jsonl_store> m{ds::redacting_store(ds::jsonl_store(dir.path()))};
        id = m.start_new().id;
        const auto saved = m.save_exchange(exchange_with(s));
        BOOST_TEST(saved.query == exchange_with(s).query); // what the host gave
        BOOST_TEST(m.history().turns()[0].query == exchange_with(s).query);
        BOOST_TEST(m.history().turns()[0].answer == exchange_with(s).answer);
        // The title, made from the query, is redacted in the store, not in memory.
        BOOST_TEST(m.current()->title.starts_with("my key is sk-proj-"));
        const auto counts = m.storage().take_redacted();
        BOOST_TEST(counts.at("openai_key") == 2u);
        BOOST_TEST(counts.at("aws_access_key_id") == 2u);
        BOOST_TEST(counts.at("github_token") == 1u);
        BOOST_TEST(m.storage().take_redacted().empty());
        m.close();
    }
    // Not a byte of any secret reached the disk.
    const std::string bytes = ds::test::tree_bytes(dir.path());
    for (const auto& secret : {s.openai, s.aws, s.github})
        BOOST_TEST(bytes.find(secret) == std::string::npos);
    // A resume sees what was stored.
    manager_over<ds::jsonl_store> later{ds::redacting_store(ds::jsonl_store(dir.path()))};
    const auto resumed = later.resume(id);
    BOOST_TEST_REQUIRE(resumed.exchanges.size() == 1u);
    check_redacted_exchange(resumed.exchanges.front());
    BOOST_TEST(later.history().turns()[0].query == "my key is [REDACTED:openai_key], is it valid?");
    BOOST_TEST(resumed.meta.title.find("[REDACTED:openai_key]") != std::string::npos);
    BOOST_TEST(resumed.meta.extra.at("redacted").at("openai_key").to_number<int>() == 1);
}

BOOST_AUTO_TEST_CASE(a_hosts_redacted_object_gets_the_counts_added) {
    const made_up_secrets s;
    ds::memory_store shared;
    manager_over<ds::memory_store> m{ds::redacting_store(shared)};
    const auto id = m.start_new().id;
    ds::exchange ex;
    ex.query = "q " + s.aws;
    ex.answer = "a";
    ex.extra = json::object{{"redacted", json::object{{"aws_access_key_id", 3}, {"email", 1}}}};
    m.save_exchange(ex);
    ex.query = "q " + s.github;
    ex.extra = json::object{{"redacted", "by the host"}};
    m.save_exchange(ex);
    ex.query = "nothing secret";
    m.save_exchange(ex);
    const auto loaded = shared.load(id, ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 3u);
    BOOST_TEST(json::serialize(loaded.exchanges[0].extra) ==
               R"({"redacted":{"aws_access_key_id":4,"email":1}})");
    BOOST_TEST(json::serialize(loaded.exchanges[1].extra) == R"({"redacted":{"github_token":1}})");
    // Nothing found: the exchange is stored as given, the host's value included.
    BOOST_TEST(json::serialize(loaded.exchanges[2].extra) == R"({"redacted":"by the host"})");
    BOOST_TEST(loaded.exchanges[2].query == "nothing secret");
}

BOOST_AUTO_TEST_CASE(titles_extra_whole_sessions_and_forks_are_redacted) {
    const made_up_secrets s;
    ds::test::temp_dir dir;
    ds::redacting_store store{ds::jsonl_store(dir.path())};
    ds::session_meta m;
    m.id = "whole001";
    m.title = "debugging " + s.github;
    m.extra = json::object{{"token", s.github}};
    auto ex = exchange_with(s);
    ex.seq = 1;
    const std::string record = "{\"type\":\"exchange\"}"; // would be wrong if copied
    BOOST_TEST(store.create_whole(m, [&](ds::session_sink& sink) {
        sink.add(ex, record);
        auto renamed = m;
        renamed.title = "renamed " + s.aws;
        sink.update(renamed);
    }));
    const auto loaded = store.load("whole001", ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 1u);
    check_redacted_exchange(loaded.exchanges.front());
    BOOST_TEST(loaded.meta.title == "renamed [REDACTED:aws_access_key_id]");
    BOOST_TEST(
        json::serialize(loaded.meta.extra) ==
        R"({"token":"[REDACTED:github_token]","redacted":{"aws_access_key_id":1,"github_token":1}})");

    ds::session_meta fork;
    fork.id = "fork0001";
    fork.title = "fork of " + s.aws;
    fork.forked_from = ds::session_origin{"whole001", 1};
    BOOST_TEST(store.fork("whole001", 1, fork));
    BOOST_TEST(fork.title == "fork of " + s.aws); // the caller's copy is left as it was
    BOOST_TEST(fork.exchange_count == 1u);
    const auto forked = store.load("fork0001", ds::all_exchanges);
    BOOST_TEST(forked.meta.title == "fork of [REDACTED:aws_access_key_id]");
    BOOST_TEST_REQUIRE(forked.exchanges.size() == 1u);
    check_redacted_exchange(forked.exchanges.front());
    BOOST_TEST(ds::test::tree_bytes(dir.path()).find(s.github) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(text_that_is_not_utf8_is_refused_even_where_a_secret_was) {
    const made_up_secrets s;
    ds::memory_store shared;
    ds::redacting_store store{shared};
    ds::session_meta m;
    m.id = "abcd1234";
    m.title = "t";
    BOOST_TEST(store.create(m));
    ds::exchange ex;
    ex.seq = 1;
    ex.query = "password=\xff\xfe " + s.openai; // the bad bytes are in what is redacted
    ex.answer = "a";
    BOOST_CHECK_THROW(store.append("abcd1234", ex), ds::invalid_input);
    BOOST_TEST(shared.load("abcd1234", ds::all_exchanges).exchanges.empty());
    m.title = "password=\xc0\xaf";
    BOOST_CHECK_THROW(store.update(m), ds::invalid_input);
    BOOST_TEST(store.take_redacted().empty());
}

namespace {

// A host's redactor: replaces the word "Zyzzyva" (no ASCII-boundary promise, so what it
// redacts goes through the store's own UTF-8 check).
struct word_redactor {
    int* calls;
    std::optional<ds::redaction> operator()(std::string_view text) const {
        ++*calls;
        const auto at = text.find("Zyzzyva");
        if (at == std::string_view::npos)
            return std::nullopt;
        ds::redaction r;
        r.text =
            std::string(text.substr(0, at)) + "[REDACTED:word]" + std::string(text.substr(at + 7));
        r.counts["word"] = 1;
        return r;
    }
};
static_assert(ds::redactor<word_redactor> && !ds::ascii_boundary_redactor<word_redactor>);

} // namespace

BOOST_AUTO_TEST_CASE(a_hosts_redactor_replaces_the_default) {
    int calls = 0;
    ds::memory_store shared;
    ds::session_manager<ds::redacting_store<ds::memory_store, word_redactor>, ds::manual_clock,
                        ds::sequential_ids>
        m{ds::redacting_store<ds::memory_store, word_redactor>(shared, word_redactor{&calls})};
    const auto id = m.start_new().id;
    const made_up_secrets s;
    m.save_exchange("a Zyzzyva and " + s.openai, "fine");
    BOOST_TEST(calls > 0);
    const auto loaded = shared.load(id, ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 1u);
    BOOST_TEST(loaded.exchanges[0].query == "a [REDACTED:word] and " + s.openai);
    BOOST_TEST(json::serialize(loaded.exchanges[0].extra) == R"({"redacted":{"word":1}})");
}
