#!/usr/bin/env bash
# Loupe against llama.cpp (llama-cpp-python) on the same GGUF, same thread count, in one run: prompt
# processing (128 tokens, last logits), greedy generation (64 tokens after 16), peak RSS of each whole
# process. Rounds alternate the two sides and each figure is the best round (the machine is shared: the
# best of several is the least disturbed), then the ratios.
# Usage: scripts/bench_gguf.sh [GGUF] [ROUNDS]   (default: SmolLM2-135M Q4_1, fetched by `loupe fetch`; 3 rounds)
# Needs llama-cpp-python: $LOUPE_SHARED/peer/setup-llamacpp.sh (or LLAMA_PY=/path/to/python with llama_cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${LOUPE_SHARED:-$(cd .. && pwd)/shared}
THREADS=${THREADS:-2}
BIN=$(scripts/build-release)
GGUF=${1:-$("$BIN" fetch smollm2-135m 2>/dev/null | tail -1)}
ROUNDS=${2:-3}
PY=${LLAMA_PY:-$("$SHARED/peer/setup-llamacpp.sh" | tail -1)}
TEXT="$SHARED/data/corpora/lee-news.txt"
for r in $(seq "$ROUNDS"); do
  /usr/bin/time -f "%M" -o /tmp/loupe-bench-rss "$BIN" bench --model "$GGUF" --threads "$THREADS" \
      --workloads load,prompt128,generate64,generate64_hooked 2>/dev/null > /tmp/loupe-bench-ours
  echo "loupe $(cat /tmp/loupe-bench-ours) $(cat /tmp/loupe-bench-rss)"
  /usr/bin/time -f "%M" -o /tmp/loupe-bench-rss "$PY" scripts/bench_llamacpp.py "$GGUF" "$TEXT" "$THREADS" 2>/dev/null > /tmp/loupe-bench-peer
  echo "llama $(cat /tmp/loupe-bench-peer) $(cat /tmp/loupe-bench-rss)"
done | "$PY" scripts/bench_gguf_report.py "$GGUF" "$THREADS" "$ROUNDS"
