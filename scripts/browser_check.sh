#!/usr/bin/env bash
# Browser check of the explorer: starts `loupe serve` (release build), opens each view in Debian's
# headless Chromium with its inputs in the address, saves a screenshot of each to
# docs/images/serve-VIEW.png (760 px wide, 128 colours), and fails if a view shows an error or does not finish.
#   scripts/browser_check.sh                 # SmolLM2-135M (fetched once with `loupe fetch smollm2-135m`)
#   MODEL=Tests/Fixtures/gpt2-tiny OUT=/tmp/shots scripts/browser_check.sh
#   DB=l5.sqlite scripts/browser_check.sh     # a neuron index of the model's layer 5 for the neuron page
#   SAE=smollm2-l15-sae TUNED=lens.safetensors scripts/browser_check.sh   # also the SAE view and the tuned lens
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-smollm2-135m}
PORT=${PORT:-18473}
OUT=${OUT:-docs/images}
mkdir -p "$OUT"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
convert -version 2>/dev/null | grep -q ImageMagick || need+=(imagemagick)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

BIN=${BIN:-$(nice -n 10 scripts/build-release)}   # BIN=.build/debug/loupe to check a debug build
LOG=$(mktemp)
"$BIN" serve --host 127.0.0.1 --port "$PORT" --model "$MODEL" ${DB:+--db "$DB"} ${SAE:+--sae "$SAE"} ${TUNED:+--tuned-lens "$TUNED"} >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT

BASE="http://127.0.0.1:$PORT"
NAME=$(basename "$MODEL")
[ -e "$MODEL" ] || NAME=$MODEL
for _ in $(seq 1 120); do
  if curl -sf "$BASE/api/models" | grep -q "\"name\":\"$NAME\",\"state\":\"loaded\""; then break; fi
  kill -0 $SERVER 2>/dev/null || { cat "$LOG"; echo "browser check: the server stopped" >&2; exit 1; }
  sleep 1
done

CHROME=(chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=60000)
IOI_CLEAN="When Mary and John went to the store, John gave a drink to"
IOI_CORRUPT="When Mary and John went to the store, Mary gave a drink to"
# view, then its inputs (key=value lines), as the page reads them from the address.
views=(
  "predict|prompt=The capital of France is"
  "lens|prompt=The capital of France is|target= Paris"
  "attention|prompt=$IOI_CLEAN|layer=3|head=4"
  "heads|induction=1"
  "patch|clean=$IOI_CLEAN|corrupt=$IOI_CORRUPT|answer= Mary|wrong= John|hook=resid_pre"
  "attribute|prompt=$IOI_CLEAN|answer= Mary|wrong= John"
  "path|clean=$IOI_CLEAN|corrupt=$IOI_CORRUPT|answer= Mary|wrong= John|receiver=logits"
  "trace|prompt=The Eiffel Tower is located in the city of|subject=Eiffel Tower|answer= Paris"
  "neurons|prompt=$IOI_CLEAN|layer=5|top=8"
  "neuron|layer=5|neuron=1006"
  "circuits|scores=copying"
  "circuits-composition@circuits|scores=k|pairs=15"
  "log"
)
# A view's screenshot is serve-NAME.png: NAME@view names one view's second screenshot.
[ -n "${SAE:-}" ] && views+=("features|prompt=Mr. Darcy looked at Elizabeth, and she said to him|feature=${FEATURE:-868}|splice=ablate")
[ -n "${TUNED:-}" ] && views+=("lens-tuned@lens|prompt=The capital of France is|target= Paris|tuned=1")
failed=0
for spec in "${views[@]}"; do
  shotname=${spec%%@*}
  [ "$shotname" = "$spec" ] && shotname=${spec%%|*}
  spec=${spec#*@}
  view=${spec%%|*}
  hash=$(python3 -c 'import sys, urllib.parse
parts = sys.argv[1].split("|")
pairs = [("view", parts[0]), ("model", sys.argv[2])] + [tuple(p.split("=", 1)) for p in parts[1:]]
print(urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote))' "$spec" "$NAME")
  url="$BASE/#$hash"
  dom=$("${CHROME[@]}" --dump-dom "$url" 2>/dev/null)
  status=$(grep -o 'data-status="[a-z]*"' <<<"$dom" | head -1 | cut -d'"' -f2)
  if [ "$status" != ok ]; then
    message=$(python3 -c 'import sys, re, html
m = re.search(r"id=\"error\"[^>]*>([^<]*)<", sys.stdin.read())
print(html.unescape(m.group(1)) if m else "")' <<<"$dom")
    echo "FAIL $view: page status '${status:-none}' ${message:+— $message}" >&2
    failed=1
    continue
  fi
  shot="$OUT/serve-$shotname.png"
  "${CHROME[@]}" --window-size=1280,860 --screenshot="$shot" "$url" >/dev/null 2>&1
  convert "$shot" -resize 760x -colors 128 -strip "PNG8:$shot"
  echo "ok   $view  $shot ($(($(stat -c %s "$shot") / 1024)) KiB)"
done

# The check itself must be able to fail: a view asked for a layer the model lacks shows an error.
bad="$BASE/#view=attention&model=$NAME&prompt=Hello&layer=999&head=0"
dom=$("${CHROME[@]}" --dump-dom "$bad" 2>/dev/null)
if grep -q 'data-status="error"' <<<"$dom" && grep -q "out of range" <<<"$dom"; then
  echo "ok   an error is detected (layer 999)"
else
  echo "FAIL: the page did not report the error of layer 999" >&2
  failed=1
fi
exit $failed
