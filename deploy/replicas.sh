#!/usr/bin/env bash
# Two strata serve replicas of one model behind HAProxy (deploy/haproxy.cfg), on this machine's loopback:
#   deploy/replicas.sh MODEL.gguf [strata serve options...]
# The balancer listens on $STRATA_LB_PORT (default 8080), the replicas on the two ports after it. Ctrl-C stops
# all three (each replica finishes the requests it is running). On several machines, run one `strata serve
# --host 0.0.0.0 ...` per machine and list them as `server` lines in the config.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
strata="${STRATA_BIN:-$here/../build/strata}"
model="$1"
shift
export STRATA_LB_PORT="${STRATA_LB_PORT:-8080}"
export STRATA_R1_PORT=$((STRATA_LB_PORT + 1)) STRATA_R2_PORT=$((STRATA_LB_PORT + 2))
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
"$strata" serve -m "$model" --port "$STRATA_R1_PORT" "$@" & pids+=($!)
"$strata" serve -m "$model" --port "$STRATA_R2_PORT" "$@" & pids+=($!)
haproxy -f "$here/haproxy.cfg" -db & pids+=($!)
echo "replicas.sh: http://127.0.0.1:$STRATA_LB_PORT/v1 -> 127.0.0.1:$STRATA_R1_PORT, 127.0.0.1:$STRATA_R2_PORT" >&2
wait -n
