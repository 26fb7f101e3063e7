// SPDX-License-Identifier: BSL-1.0
// A libpq connection string as the PostgreSQL store shows it: the passwords it holds, a
// message of libpq's made safe to print, and the name of the server it points to.
//
// The store never prints a connection string (it may hold a password). Errors name the
// server by pg_server_label() instead, and every libpq message goes through
// pg_clean_message() with the string's conninfo_secrets(). Needs libpq (for
// PQconninfoParse), but no server: nothing here connects.
#pragma once

#include <libpq-fe.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// The passwords a connection string holds, as written and as libpq reads them, so
/// that they can be cut out of any message: the `password` of libpq's parse, the
/// userinfo after ':' of a URI ("postgresql://user:secret@host"), and the value after
/// "password =" (quoted or not, also when the string does not parse). Each at most
/// once, none empty; in no particular order.
inline std::vector<std::string> conninfo_secrets(const std::string& conninfo) {
    std::vector<std::string> secrets;
    auto add = [&](std::string s) {
        if (!s.empty() && std::find(secrets.begin(), secrets.end(), s) == secrets.end())
            secrets.push_back(std::move(s));
    };
    char* err = nullptr;
    if (PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err)) {
        for (auto* o = opts; o->keyword; ++o)
            if (std::string_view(o->keyword) == "password" && o->val)
                add(o->val);
        PQconninfoFree(opts);
    }
    PQfreemem(err);
    // As written: the userinfo of a URI ("scheme://user:secret@host"), and the value
    // after "password=" (also when the string does not parse).
    if (const auto scheme = conninfo.find("://"); scheme != std::string::npos) {
        const auto start = scheme + 3;
        const auto end = conninfo.find_first_of("/?", start);
        const std::string authority =
            conninfo.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (const auto at = authority.rfind('@'); at != std::string::npos) {
            const std::string userinfo = authority.substr(0, at);
            if (const auto colon = userinfo.find(':'); colon != std::string::npos)
                add(userinfo.substr(colon + 1));
        }
    }
    for (std::size_t pos = 0; (pos = conninfo.find("password", pos)) != std::string::npos;) {
        pos += 8;
        std::size_t v = conninfo.find_first_not_of(" \t", pos);
        if (v == std::string::npos || conninfo[v] != '=')
            continue;
        v = conninfo.find_first_not_of(" \t", v + 1);
        if (v == std::string::npos)
            break;
        std::size_t e;
        if (conninfo[v] == '\'') {
            ++v;
            e = conninfo.find('\'', v);
        } else {
            e = conninfo.find_first_of(" \t&'", v); // a quote ends an enclosing value
        }
        add(conninfo.substr(v, e == std::string::npos ? std::string::npos : e - v));
    }
    return secrets;
}

/// `text` with every occurrence of every secret replaced by "***".
inline std::string pg_redact(std::string text, const std::vector<std::string>& secrets) {
    for (const auto& s : secrets)
        for (std::size_t pos = 0; (pos = text.find(s, pos)) != std::string::npos; pos += 3)
            text.replace(pos, s.size(), "***");
    return text;
}

/// `text` on one line (libpq's messages span several: a new line becomes "; ", an
/// indented continuation a space; runs of blanks become one space; trailing blanks and
/// ';' go), with every occurrence of every secret replaced by "***".
inline std::string pg_clean_message(std::string_view text,
                                    const std::vector<std::string>& secrets) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n' || c == '\r') {
            const bool continued =
                i + 1 < text.size() && (text[i + 1] == '\t' || text[i + 1] == ' ');
            while (!out.empty() && out.back() == ' ')
                out.pop_back();
            if (!out.empty() && i + 1 < text.size())
                out += continued ? " " : "; ";
            while (i + 1 < text.size() && (text[i + 1] == '\t' || text[i + 1] == ' '))
                ++i;
        } else if (c == '\t' || c == ' ') {
            if (!out.empty() && out.back() != ' ')
                out += ' ';
        } else {
            out += c;
        }
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == ';'))
        out.pop_back();
    return pg_redact(std::move(out), secrets);
}

/// How errors name the server: host:port/dbname, from the connection string (without
/// its password), the PG* environment variables and libpq's defaults. host: `host`,
/// else `hostaddr`, else $PGHOST, else "localhost"; port: `port`, else $PGPORT, else
/// 5432; dbname: `dbname`, else $PGDATABASE, else `user` (or $PGUSER when the string
/// has none), else "(default database)". A string libpq cannot parse is
/// "(an invalid connection string)". Any of the string's conninfo_secrets() in it (a
/// dbname that is itself a connection string) is shown as "***". Public as
/// postgres_server_label().
inline std::string pg_server_label(const std::string& conninfo) {
    std::string host, hostaddr, port, dbname, user;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    const bool parsed = opts != nullptr;
    if (opts) {
        for (auto* o = opts; o->keyword; ++o) {
            if (!o->val)
                continue;
            const std::string_view k = o->keyword;
            if (k == "host")
                host = o->val;
            else if (k == "hostaddr")
                hostaddr = o->val;
            else if (k == "port")
                port = o->val;
            else if (k == "dbname")
                dbname = o->val;
            else if (k == "user")
                user = o->val;
        }
        PQconninfoFree(opts);
    }
    PQfreemem(err);
    if (!parsed)
        return "(an invalid connection string)";
    auto env = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v ? v : "");
    };
    if (host.empty())
        host = hostaddr;
    if (host.empty())
        host = env("PGHOST");
    if (host.empty())
        host = "localhost";
    if (port.empty())
        port = env("PGPORT");
    if (port.empty())
        port = "5432";
    if (dbname.empty())
        dbname = env("PGDATABASE");
    if (dbname.empty())
        dbname = user.empty() ? env("PGUSER") : user;
    // A dbname may itself be a connection string, password and all.
    return pg_redact(host + ":" + port + "/" + (dbname.empty() ? "(default database)" : dbname),
                     conninfo_secrets(conninfo));
}

} // namespace dexter::sessions::detail
