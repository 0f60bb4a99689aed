#!/usr/bin/env bash
# Integration: `protsae demo` end to end (short training): synth -> reader -> trainer -> reader ->
# encoders -> scorer (features and neurons) -> GO enrichment -> interpreter (offline: no key).
# Checks the printed summary and the files each stage leaves.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
[ -f "$SHARED/data/human-swissprot/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-demo.XXXXXX); trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ANTHROPIC_API_KEY OPENAI_API_KEY
PROTSAE_DATA=$SHARED/data/human-swissprot "$B/cli/protsae" demo --workdir "$T/w" --n-terms 200 --train-epochs 4 \
  --n-interpret 30 --batch-rows 128 >"$T/out" 2>"$T/err" || { cat "$T/out"; tail -30 "$T/err"; fail "demo exit"; }
cat "$T/out"
for pat in '^\[5/5\]' '^planted_recovery_cos09: ' 'with >= 1 significant GO term' 'median best F1' \
           '^mode: offline' '^mean_r ' '^seconds: '; do
  grep -q "$pat" "$T/out" || fail "demo output lacks /$pat/"
done
# the SAE features carry GO terms more often than the raw dimensions do (planted data)
read -r f n < <(awk '/with >= 1 significant GO term/{gsub("%","");print $(NF-1), $NF}' "$T/out")
awk -v f="$f" -v n="$n" 'BEGIN{exit !(f > 0 && n >= 0)}' || fail "enrichment figures: $f $n"
for f in features.db neurons.db enrichment/features.tsv enrichment/features_terms.tsv enrichment/neurons.tsv \
         interp/features.jsonl interp/neurons.jsonl interp/summary.json sae/latest/cfg.json logs/trainer.log; do
  [ -e "$T/w/$f" ] || fail "missing $f"
done
grep -q '"offline": *true' "$T/w/interp/features.jsonl" || fail "offline results not labelled"
# the HTML report: self-contained (no network assets), curves and cards present, offline labelled
r=$T/w/report.html
grep -q '^report: ' "$T/out" || fail "demo did not print the report path"
grep -q '<svg' "$r" && grep -q 'class=card' "$r" && grep -q 'OFFLINE' "$r" || fail "report content"
! grep -Eq '(src|href)=["'"'"']?(https?:)?//' "$r" || fail "report refers to network assets"
/usr/bin/python3 - "$r" <<'PY' || fail "report HTML does not parse"
import sys, html.parser
class P(html.parser.HTMLParser):
    pass
P().feed(open(sys.argv[1]).read())
PY
"$B/cli/protsae" features --db "$T/w/features.db" --limit 3 >/dev/null || fail "protsae features on the demo store"

# Supervision: the same demo again on the trained SAE (--retrain 0); kill -9 the scorer, an
# encoder and the reader of the encoding step mid-stream: each is reported and restarted, and the
# feature store ends byte-identical to the undisturbed run's.
"$B/cli/protsae" features --db "$T/w/features.db" --dump 1 >"$T/ref.dump" || fail "dump"
rm -rf "$T/w/logs"
PROTSAE_DATA=$SHARED/data/human-swissprot "$B/cli/protsae" demo --workdir "$T/w" --n-terms 200 --retrain 0 \
  --n-interpret 30 --batch-rows 128 >"$T/out2" 2>"$T/err2" &
demo=$!
for i in $(seq 1 300); do grep -q "applied so far" "$T/w/logs/features-scorer.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.0$((RANDOM % 10))
pkill -9 -f "protsae-scorer --db $T/w/features.db" || fail "no scorer to kill"
sleep 0.2
pkill -9 -f "producer encoder-1 --run-id features" || echo "(encoder 1 already done)"
sleep 0.2
pkill -9 -f "protsae-reader --emb $T/w/synth/emb.npy.*--run-id features" || echo "(reader already done)"
wait $demo || { cat "$T/out2"; tail -20 "$T/err2"; fail "demo with kills"; }
cat "$T/out2"
grep -q "scorer (features) exited with status 137 (killed): restarting" "$T/out2" || fail "scorer death not reported"
"$B/cli/protsae" features --db "$T/w/features.db" --dump 1 >"$T/new.dump" || fail "dump 2"
cmp "$T/ref.dump" "$T/new.dump" || fail "the store after kills + restarts differs from the undisturbed run's"
echo "kill -9 of scorer / encoder / reader during encoding: restarted, identical store"
echo OK
