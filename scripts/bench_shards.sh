#!/usr/bin/env bash
# Corpus-job scaling on this machine: a neuron index over one corpus as N = 1, 2, 4 shard processes run at
# once (threads split between them), then `loupe merge`. For each N: the wall time until the last shard is
# done, each shard's tokens/s, the total tokens/s, the merge time, and a check that the merged index
# equals the N = 1 run. Figures for docs/scale.md.
# Usage: scripts/bench_shards.sh [MODEL] [LAYER] [TEXT] [BYTES]
#   (default: smollm2-135m, layer 20, the first 300,000 bytes of Emma from ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${LOUPE_SHARED:-$(cd .. && pwd)/shared}
BIN=$(scripts/build-release)
MODEL=${1:-smollm2-135m}
LAYER=${2:-20}
TEXT=${3:-$SHARED/data/corpora/austen/emma.txt}
BYTES=${4:-300000}
CORES=${CORES:-$(nproc)}
work=$(mktemp -d /tmp/loupe-bench-shards.XXXXXX)
trap 'rm -rf "$work"' EXIT
head -c "$BYTES" "$TEXT" > "$work/corpus.txt"
"$BIN" fetch "$MODEL" >/dev/null 2>&1 || true
now() { date +%s.%N; }
printf "| shards | threads each | wall s | tokens | tokens/s in all | tokens/s a shard (min–max) | merge s | equals N=1 |\n"
printf "|---|---|---|---|---|---|---|---|\n"
for n in 1 2 4; do
  threads=$(( CORES / n )); [ "$threads" -ge 1 ] || threads=1
  began=$(now)
  pids=()
  for i in $(seq "$n"); do
    "$BIN" neuron-index --model "$MODEL" --layer "$LAYER" --threads "$threads" --corpus "$work/corpus.txt" \
        --db "$work/n$n-part$i.sqlite" --shard "$i/$n" > "$work/n$n-part$i.log" 2>/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  wall=$(echo "$(now) - $began" | bc -l)
  rates=$(sed -nE 's/.*, ([0-9]+) tokens\/s\)$/\1/p' "$work"/n$n-part*.log | sort -n)
  tokens=$(sed -nE 's/.* ([0-9]+) tokens of layer.*/\1/p' "$work"/n$n-part*.log | paste -sd+ | bc)
  if [ "$n" = 1 ]; then
    cp "$work/n1-part1.sqlite" "$work/n1.sqlite"; merge="–"
  else
    m0=$(now)
    "$BIN" merge "$work/n$n.sqlite" "$work"/n$n-part*.sqlite > /dev/null
    merge=$(printf "%.2f" "$(echo "$(now) - $m0" | bc -l)")
  fi
  rows="SELECT neuron, activation, document, position, hex(context), focus FROM examples ORDER BY neuron, activation DESC, document, position"
  same=$([ "$(sqlite3 "$work/n$n.sqlite" "$rows" | sha256sum)" = "$(sqlite3 "$work/n1.sqlite" "$rows" | sha256sum)" ] && echo yes || echo NO)
  printf "| %d | %d | %.1f | %d | %.0f | %s–%s | %s | %s |\n" "$n" "$threads" "$wall" "$tokens" \
      "$(echo "$tokens / $wall" | bc -l)" "$(echo "$rates" | head -1)" "$(echo "$rates" | tail -1)" "$merge" "$same"
done
