#!/usr/bin/env bash
# `strata chat` on a real terminal (a tmux pane): libedit line editing (Ctrl-A, history with Up, deleting a
# multibyte character), Ctrl-C stopping a reply, Ctrl-C discarding a typed line, Ctrl-D quitting.
#
# Usage: tests/chat_tty.sh [STRATA_BINARY] [MODEL]      (ctest runs it as chat_tty)
# Exit status: 0 passed, 1 failed, 77 skipped (no tmux, or no model).
set -u
STRATA="${1:-$(dirname "$0")/../build/strata}"
MODEL="${2:-${STRATA_CACHE:-$HOME/.cache/strata}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"

command -v tmux >/dev/null || { echo "SKIP: tmux is not installed (apt-get install tmux)"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: no model at $MODEL"; exit 77; }
[ -x "$STRATA" ] || { echo "FAIL: no strata binary at $STRATA"; exit 1; }

WORK=$(mktemp -d)
SOCKET="strata-tty-$$"
T() { tmux -L "$SOCKET" "$@"; }
cleanup() { T kill-server 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- pane:"; T capture-pane -p -S -100 2>/dev/null; echo "--- transcript:"; cat "$WORK/t.jsonl" 2>/dev/null; exit 1; }
pane() { T capture-pane -p -S -200; }
# wait_for PATTERN [SECONDS]: until the pane shows PATTERN (an extended regex)
wait_for() {
    local deadline=$((SECONDS + ${2:-60}))
    until pane | grep -Eq -- "$1"; do
        [ $SECONDS -lt $deadline ] || fail "timed out waiting for /$1/"
        sleep 0.2
    done
}
# wait_turns N: until the transcript holds N turns
wait_turns() {
    local deadline=$((SECONDS + 60))
    until [ "$(grep -c '"event":"turn"' "$WORK/t.jsonl" 2>/dev/null)" -ge "$1" ]; do
        [ $SECONDS -lt $deadline ] || fail "timed out waiting for turn $1"
        sleep 0.2
    done
}

T -f /dev/null new-session -d -x 150 -y 50 \
    "env HOME='$WORK' STRATA_CACHE='$WORK' LANG=C.UTF-8 '$STRATA' chat -m '$MODEL' --temp 0 -c 1024 \
     --max-new-tokens 400 --transcript '$WORK/t.jsonl'; echo EXITED \$?; sleep 600"
wait_for '^>$' 60

# Line editing: type the end of the question, jump to the start with Ctrl-A, type its beginning.
T send-keys -l "capital of Germany?"
T send-keys C-a
T send-keys -l "What is the "
T send-keys Enter
wait_turns 1
wait_for '^>$'
# History: Up recalls the last line.
T send-keys Up
T send-keys Enter
wait_turns 2
# Ctrl-C while the model writes stops the reply and returns to the prompt.
T send-keys -l "Write a very long story about a dragon and a knight."
T send-keys Enter
wait_for 'Once|dragon|knight' 30
sleep 0.5
T send-keys C-c
wait_for '\[interrupted' 30
wait_turns 3
# Ctrl-C over a typed line discards it (the chat goes on).
T send-keys -l "this line is discarded"
sleep 0.3
T send-keys C-c
sleep 0.5
pane | grep -q '^EXITED' && fail "Ctrl-C over typed text quit the chat"
# A multibyte character deleted with one Backspace.
T send-keys -l "Say cafés"
T send-keys BSpace
T send-keys Enter
wait_turns 4
wait_for '^>$'
# Ctrl-D at the empty prompt quits.
T send-keys C-d
wait_for '^EXITED 0' 20

python3 - "$WORK/t.jsonl" <<'EOF' || fail "transcript check"
import json, sys
turns = [json.loads(l) for l in open(sys.argv[1]) if '"event":"turn"' in l]
inputs = [t["input"] for t in turns]
want = ["What is the capital of Germany?", "What is the capital of Germany?",
        "Write a very long story about a dragon and a knight.", "Say café"]
assert inputs == want, inputs
assert [t["interrupted"] for t in turns] == [False, False, True, False], [t["interrupted"] for t in turns]
assert turns[2]["history"][-1]["interrupted"] is True
assert turns[3]["history"][5]["interrupted"] is True  # still marked in the later turn's history
EOF
# libedit keeps its history file in vis(3) encoding: spaces are \040.
grep -q "Germany?" "$WORK/chat_history" || fail "history file not written"
grep -q "discarded" "$WORK/chat_history" && fail "a line discarded with Ctrl-C went into the history"
echo "PASS: line editing, history, Ctrl-C and Ctrl-D on a terminal"
