#!/usr/bin/env bash
# Runs the standard workloads for Loupe and the peer (PyTorch: Hugging Face + TransformerLens) in one go,
# on the random GPT-2-small model, and prints both JSON objects and the ratios.
# Usage: scripts/bench.sh [workloads]   (default: load,forward128,forward1024,cache128,patch16,generate50)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${LOUPE_SHARED:-$(cd .. && pwd)/shared}
PY=$("$SHARED/peer/setup.sh" | tail -1)
MODEL=${MODEL:-$HOME/.cache/loupe-peer/gpt2-random}
W=${1:-load,forward128,forward1024,cache128,patch16,generate50}
BIN=$(scripts/build-release)
ours=$("$BIN" bench --model "$MODEL" --workloads "$W" --threads 2 2>/dev/null)
peer=$(THREADS=2 "$PY" "$SHARED/peer/bench_peer.py" "$MODEL" "$W" 2>/dev/null | tail -1)
echo "loupe: $ours"
echo "peer:  $peer"
"$PY" - "$ours" "$peer" <<'PYEOF'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rows = [("forward128_ms", "hf_forward128_ms", "time"), ("forward128_ms", "tl_forward128_ms", "time"),
        ("forward1024_ms", "hf_forward1024_ms", "time"), ("forward1024_ms", "tl_forward1024_ms", "time"),
        ("cache128_ms", "tl_cache128_ms", "time"), ("cache128_mb", "tl_cache128_mb", "size"),
        ("patch16_s", "tl_patch16_s", "time"), ("generate50_tok_s", "hf_generate50_tok_s", "rate"), ("load_s", "hf_load_s", "time"), ("load_s", "tl_load_s", "time")]
print(f"{'workload':18} {'loupe':>10} {'peer':>10}  {'peer key':22} ratio")
for ok, pk, kind in rows:
    if ok in o and pk in p:
        r = o[ok] / p[pk]
        note = "loupe/peer time" if kind == "time" else ("loupe/peer size" if kind == "size" else "loupe/peer tokens/s")
        print(f"{ok:18} {o[ok]:10.3f} {p[pk]:10.3f}  {pk:22} {r:.2f}x ({note})")
if "patch16_result" in o and "patch16_result" in p:
    worst = max(abs(a - b) for ra, rb in zip(o["patch16_result"], p["patch16_result"]) for a, b in zip(ra, rb))
    print(f"patch16_result: max |loupe - TransformerLens| = {worst:.2e} over a 12x16 grid; speed-up {p['tl_patch16_s'] / o['patch16_s']:.1f}x")
PYEOF
