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
#           DEXTER_OPENAI_TIMEOUT (seconds for the whole request, default 300),
#           DEXTER_OPENAI_STREAM=0 (ask for the whole answer at once instead of streaming).
#
# Protocol (docs/CLI.md, "The agent protocol"): dexter writes one JSON object on standard
# input,
#   {"session_id":"...","protocol":2,"messages":[{"role":"user"|"assistant","content":"..."},...]}
# and takes standard output as the answer. The answer is streamed ("stream": true): each
# piece is written as the server sends it, then one final newline. A server that refuses
# streaming (an HTTP 4xx whose message mentions streaming) is asked again without it, and
# one that answers with an ordinary completion instead of events is understood too. On any
# failure (an HTTP error, a stream that breaks off before its end, an error event) this
# prints the reason on standard error and exits non-zero, so dexter reports it and saves
# nothing, even if part of the answer was already written.
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
url=$base_url/chat/completions
timeout=${DEXTER_OPENAI_TIMEOUT:-300}
case ${DEXTER_OPENAI_STREAM:-1} in
0 | false | no | off) stream=false ;;
*) stream=true ;;
esac

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

# error_reason FILE: the message of an OpenAI-style error body ({"error":{"message":...}}),
# else the start of the body.
error_reason() {
    reason=$(jq -r '.error.message // .error // empty' "$1" 2>/dev/null) || reason=
    [ -n "$reason" ] || reason=$(head -c 500 "$1")
    printf '%s' "$reason"
}

# print_completion FILE: the answer of an ordinary (non-streamed) completion, and a newline.
print_completion() {
    answer=$(jq -r '.choices[0].message.content // empty' "$1" 2>/dev/null) ||
        fail "the response is not JSON: $(head -c 500 "$1")"
    [ -n "$answer" ] || fail "the response has no answer (choices[0].message.content)"
    printf '%s\n' "$answer"
}

# The whole answer at once.
ask_whole() {
    status=$(curl --silent --show-error --max-time "$timeout" \
        --header "@$tmp/headers" --data-binary "@$tmp/body.json" \
        --output "$tmp/response.json" --write-out '%{http_code}' \
        "$url" 2>"$tmp/curl.err") ||
        fail "request to $url failed: $(cat "$tmp/curl.err")"
    case $status in
    2??) ;;
    *) fail "$base_url answered HTTP $status: $(error_reason "$tmp/response.json")" ;;
    esac
    print_completion "$tmp/response.json"
}

if [ "$stream" = false ]; then
    ask_whole
    exit 0
fi

jq -c '. + {stream: true}' "$tmp/body.json" >"$tmp/stream.json"

# The streamed answer: curl without buffering (-N), the body kept in stream.body as it
# passes, each event's delta written out by jq as it arrives. Lines other than
# "data: {...}" (comments, "event:", an error body) write nothing here; the body is judged
# once it has ended.
rm -f "$tmp/curl.status"
{
    curl_status=0
    curl --silent --show-error --no-buffer --max-time "$timeout" \
        --header "@$tmp/headers" --data-binary "@$tmp/stream.json" \
        --dump-header "$tmp/response.headers" "$url" 2>"$tmp/curl.err" || curl_status=$?
    echo "$curl_status" >"$tmp/curl.status"
} | tee "$tmp/stream.body" | jq --unbuffered -Rj '
    sub("\r$"; "") | select(startswith("data:")) | sub("^data: ?"; "")
    | select(. != "[DONE]") | (fromjson? // empty)
    | .choices[0]?.delta?.content? // empty | strings' ||
    fail "could not read the answer's stream: jq failed"

# The shell has waited for the whole pipeline: curl's status is in its file.
curl_status=$(cat "$tmp/curl.status" 2>/dev/null) || curl_status=unknown
status=$(awk '/^HTTP\//{s=$2} END{print s}' "$tmp/response.headers" 2>/dev/null) || status=
if [ -z "$status" ]; then
    fail "request to $url failed: $(cat "$tmp/curl.err")"
fi

case $status in
2??) ;;
4??)
    reason=$(error_reason "$tmp/stream.body")
    case $reason in
    *[Ss][Tt][Rr][Ee][Aa][Mm]*) ask_whole && exit 0 ;;
    esac
    fail "$base_url answered HTTP $status: $reason"
    ;;
*) fail "$base_url answered HTTP $status: $(error_reason "$tmp/stream.body")" ;;
esac

# The body, judged whole: events (with [DONE], without an error, each one JSON) or an
# ordinary completion.
verdict=$(jq -Rrn '
    [inputs | sub("\r$"; "") | select(startswith("data:")) | sub("^data: ?"; "")] as $data
    | ($data | map(select(. != "[DONE]") | (fromjson? // {not_json: .}))) as $events
    | if ($data | length) == 0 then "completion"
      elif any($events[]; has("not_json")) then
        "bad " + (first($events[] | select(has("not_json")) | .not_json) | .[0:500])
      elif any($events[]; .error != null) then
        "error " + (first($events[] | select(.error != null) | .error)
                    | if type == "object" then (.message // tojson) else tostring end)
      elif any($data[]; . == "[DONE]") | not then "cut"
      elif ([$events[] | .choices[0]?.delta?.content? // empty | strings] | add // "") == ""
      then "empty"
      else "done" end' "$tmp/stream.body") ||
    fail "could not read the answer's stream"

case $verdict in
done)
    [ "$curl_status" = 0 ] || fail "request to $url failed: $(cat "$tmp/curl.err")"
    printf '\n'
    ;;
completion)
    [ "$curl_status" = 0 ] || fail "request to $url failed: $(cat "$tmp/curl.err")"
    print_completion "$tmp/stream.body"
    ;;
cut)
    detail=
    [ "$curl_status" = 0 ] || detail=" ($(cat "$tmp/curl.err"))"
    fail "the answer's stream from $base_url ended before [DONE]$detail"
    ;;
empty) fail "the answer's stream from $base_url has no text (choices[0].delta.content)" ;;
error\ *) fail "$base_url sent an error in the stream: ${verdict#error }" ;;
bad\ *) fail "the answer's stream from $base_url has an event that is not JSON: ${verdict#bad }" ;;
*) fail "could not read the answer's stream" ;;
esac
