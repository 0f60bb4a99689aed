#!/usr/bin/env bash
# Integration: the HTML report of a short demo run opens in headless Chromium (Debian chromium,
# --headless --no-sandbox --disable-gpu); the rendered DOM holds the feature cards and a
# screenshot shows them (bordered boxes with histogram bars and text: report_png.py). A report
# rendered without cards (--cards 0) must fail the same check. Skips (77) without chromium.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$SHARED/data/human-swissprot/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
CH=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CH" ] || { echo "no chromium: skip"; exit 77; }
/usr/bin/python3 -c 'import zlib' || { echo "no python3: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-report.XXXXXX); trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ANTHROPIC_API_KEY OPENAI_API_KEY
export PROTSAE_DATA=$SHARED/data/human-swissprot
"$B/cli/protsae" demo --workdir "$T/w" --n-terms 200 --train-epochs 2 --n-interpret 30 --batch-rows 128 \
  >"$T/out" 2>"$T/err" || { tail -20 "$T/out" "$T/err"; fail "demo"; }
# protsae feature N on the demo's store shows the feature's enriched GO terms (names) and explanation,
# both read from the store (the results API); protsae export writes them as files
"$B/cli/protsae" export --db "$T/w/features.db" --out "$T/exp" >/dev/null || fail "protsae export"
f=$(awk -F'\t' 'NR>1{print $1; exit}' "$T/exp/features_terms.tsv")
[ -n "$f" ] || fail "no enriched feature in the demo's store"
"$B/cli/protsae" feature "$f" --db "$T/w/features.db" >"$T/feature.out" || fail "protsae feature $f"
t=$(awk -F'\t' -v f="$f" '$1==f{print $2; exit}' "$T/exp/features_terms.tsv")
grep -q "enriched GO terms" "$T/feature.out" && grep -q "^  $t " "$T/feature.out" ||
  { cat "$T/feature.out"; fail "feature $f: enriched term $t not shown"; }
u=$(head -1 "$T/exp/features.jsonl" | grep -o '"unit":[0-9]*' | cut -d: -f2)
[ -n "$u" ] || fail "no explanation in the demo's store"
"$B/cli/protsae" feature "$u" --db "$T/w/features.db" | grep -q "explanation (OFFLINE): \[offline\]" ||
  fail "feature $u: explanation not shown"
ch() { HOME=$T timeout 120 "$CH" --headless --no-sandbox --disable-gpu --hide-scrollbars "$@" 2>>"$T/chromium.log"; }
shot() {  # HTML PNG -> number of cards in the rendered DOM; screenshot written
  ch --dump-dom "file://$1" >"$T/dom.html" || fail "chromium --dump-dom $1"
  ch --window-size=1280,5000 --screenshot="$2" "file://$1" >/dev/null || fail "chromium --screenshot $1"
  [ -s "$2" ] || fail "no screenshot of $1"
  { grep -o 'class="card"' "$T/dom.html" || true; } | wc -l
}
n=$(shot "$T/w/report.html" "$T/report.png")
[ "$n" -ge 2 ] || fail "rendered DOM has $n feature cards"
grep -q 'Feature cards' "$T/dom.html" && grep -q '<svg' "$T/dom.html" || fail "rendered DOM lacks cards heading or charts"
/usr/bin/python3 "$here/report_png.py" "$T/report.png" "$n" || fail "screenshot does not show the feature cards"
# the check can fail: the same report without cards
"$B/cli/protsae" report --workdir "$T/w" --cards 0 --out "$T/nocards.html" >/dev/null || fail "report --cards 0"
n0=$(shot "$T/nocards.html" "$T/nocards.png")
[ "$n0" -eq 0 ] || fail "--cards 0 still rendered $n0 cards"
if /usr/bin/python3 "$here/report_png.py" "$T/nocards.png" 1 >/dev/null 2>&1; then fail "the screenshot check passed on a report without cards"; fi
echo "OK: $n cards rendered; screenshot $T/report.png"
