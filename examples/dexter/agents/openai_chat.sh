#!/bin/sh
# SPDX-License-Identifier: BSL-1.0
# A dexter agent for any OpenAI-compatible chat-completions endpoint (OpenAI, Azure
# OpenAI's v1 API, OpenRouter, Groq, Mistral, a local llama.cpp server, Ollama, vLLM, ...).
#
#   export DEXTER_OPENAI_MODEL=gpt-4o-mini                       # required
#   export DEXTER_OPENAI_API_KEY=sk-...                          # if the endpoint wants one
#   export DEXTER_OPENAI_BASE_URL=https://api.openai.com/v1      # the default
#   dexter --agent-cmd examples/dexter/agents/openai_chat.sh
#
# For a local Ollama: DEXTER_OPENAI_BASE_URL=http://localhost:11434/v1 and no key.
# Optional: DEXTER_OPENAI_SYSTEM_PROMPT (a system message put before the conversation),
#           DEXTER_OPENAI_TIMEOUT (seconds for the whole request, default 300).
#
# Protocol (see dexter --help): dexter writes one JSON object on standard input,
#   {"session_id":"...","messages":[{"role":"user"|"assistant","content":"..."},...]}
# and takes standard output as the answer. On any failure this prints the reason on
# standard error and exits non-zero, so dexter reports it and saves nothing.
#
# Needs curl and jq (Debian/Ubuntu: apt-get install curl jq; neither is in a minimal
# Debian 12 image). The key is passed to curl in a private temporary file, never on a
# command line where other users could read it.
set -eu

me=openai_chat.sh
fail() {
    echo "$me: $*" >&2
    exit 1
}

for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 ||
        fail "'$tool' is not installed (Debian/Ubuntu: apt-get install curl jq)"
done

model=${DEXTER_OPENAI_MODEL:-}
[ -n "$model" ] || fail "set DEXTER_OPENAI_MODEL to the model to use (e.g. gpt-4o-mini)"
base_url=${DEXTER_OPENAI_BASE_URL:-https://api.openai.com/v1}
base_url=${base_url%/}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The request body: dexter's messages, after an optional system prompt.
jq -c --arg model "$model" --arg system "${DEXTER_OPENAI_SYSTEM_PROMPT:-}" '
    {model: $model,
     messages: ((if $system == "" then [] else [{role: "system", content: $system}] end)
                + [.messages[] | {role, content}])}' >"$tmp/body.json" ||
    fail "could not read dexter's request from standard input"

: >"$tmp/headers"
chmod 600 "$tmp/headers"
echo "Content-Type: application/json" >>"$tmp/headers"
if [ -n "${DEXTER_OPENAI_API_KEY:-}" ]; then
    printf 'Authorization: Bearer %s\n' "$DEXTER_OPENAI_API_KEY" >>"$tmp/headers"
fi

status=$(curl --silent --show-error --max-time "${DEXTER_OPENAI_TIMEOUT:-300}" \
    --header "@$tmp/headers" --data-binary "@$tmp/body.json" \
    --output "$tmp/response.json" --write-out '%{http_code}' \
    "$base_url/chat/completions" 2>"$tmp/curl.err") ||
    fail "request to $base_url/chat/completions failed: $(cat "$tmp/curl.err")"

case $status in
2??) ;;
*)
    # OpenAI-style errors carry {"error":{"message":...}}; otherwise show the body.
    reason=$(jq -r '.error.message // .error // empty' "$tmp/response.json" 2>/dev/null) ||
        reason=
    [ -n "$reason" ] || reason=$(head -c 500 "$tmp/response.json")
    fail "$base_url answered HTTP $status: $reason"
    ;;
esac

answer=$(jq -r '.choices[0].message.content // empty' "$tmp/response.json" 2>/dev/null) ||
    fail "the response is not JSON: $(head -c 500 "$tmp/response.json")"
[ -n "$answer" ] || fail "the response has no answer (choices[0].message.content)"
printf '%s\n' "$answer"
