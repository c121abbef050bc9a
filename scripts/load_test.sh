#!/usr/bin/env bash
# Load test of the explorer on loopback: wrk with 50 connections, 15 s against a cheap endpoint
# (GET /api/models) and 15 s against a model endpoint (POST /api/predict), after starting
# `loupe serve` (release build) itself. Fails if any request errs (socket errors, timeouts, non-2xx).
#   scripts/load_test.sh                       # SmolLM2-135M
#   MODEL=Tests/Fixtures/gpt2-tiny scripts/load_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-smollm2-135m}
PORT=${PORT:-18474}
SECONDS_EACH=${SECONDS_EACH:-15}
command -v wrk >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

BIN=$(nice -n 10 scripts/build-release)
"$BIN" serve --host 127.0.0.1 --port "$PORT" --model "$MODEL" >/dev/null 2>&1 &
SERVER=$!
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
BASE="http://127.0.0.1:$PORT"
NAME=$(basename "$MODEL"); [ -e "$MODEL" ] || NAME=$MODEL
for _ in $(seq 1 120); do
  curl -sf "$BASE/api/models" | grep -q "\"name\":\"$NAME\",\"state\":\"loaded\"" && break
  sleep 1
done

cat >"$WORK/predict.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "$NAME", "prompt": "The capital of France is", "topK": 5}'
LUA

failed=0
run() {
  echo "== $*"
  wrk -t2 -c50 -d"${SECONDS_EACH}s" --timeout 30s --latency "$@" | tee "$WORK/out"
  if grep -qE "Non-2xx|Socket errors" "$WORK/out"; then echo "FAIL: some requests erred" >&2; failed=1; fi
}
run "$BASE/api/models"
run -s "$WORK/predict.lua" "$BASE/api/predict"
exit $failed
