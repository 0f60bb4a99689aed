#!/usr/bin/env bash
# Integration: `protsae demo` end to end (short training), every stage under the demo's one
# supervisor: synth -> reader -> trainer; reader -> encoders -> scorer (features, then neurons),
# whose store gets the GO enrichment and, through protsae-interpreter (offline: no key), the
# explanations; GO prediction of the held-out proteins. Checks the printed summary and what the
# stages leave (stores, SAE, held-out annotations, report).
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
[ -f "$SHARED/data/human-swissprot/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-demo.XXXXXX); trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ANTHROPIC_API_KEY OPENAI_API_KEY
PROTSAE_DATA=$SHARED/data/human-swissprot "$B/cli/protsae" demo --workdir "$T/w" --n-terms 200 --train-epochs 4 \
  --n-interpret 30 --batch-rows 128 --ckpt-every 300 >"$T/out" 2>"$T/err" || { cat "$T/out"; tail -30 "$T/err"; fail "demo exit"; }
cat "$T/out"
for pat in '^\[2/6\]' '^\[3/6\]' '^\[4/6\]' '^\[5/6\]' '^\[6/6\]' '^planted_recovery_cos09: ' \
           'with >= 1 significant GO term' 'median best F1' '^ *mode: offline' '^ *mean_r ' '^seconds: ' \
           'held out of the enrichment'; do
  grep -q "$pat" "$T/out" || fail "demo output lacks /$pat/"
done
# the closing key: value lines: every key present, fractions and Fmax in [0, 1], r in [-1, 1]
kv() { awk -F': ' -v k="$1" '$1==k{v=$2} END{if (v=="") exit 1; print v}' "$T/out"; }
for k in planted_recovery_cos09 features_with_go_fraction neurons_with_go_fraction annotate_fmax annotate_precision \
         annotate_recall annotate_threshold annotate_naive_fmax annotate_fmax_bp annotate_fmax_mf annotate_fmax_cc \
         annotate_naive_fmax_bp annotate_naive_fmax_mf annotate_naive_fmax_cc annotate_knn_fmax \
         annotate_knn_fmax_bp annotate_knn_fmax_mf annotate_knn_fmax_cc; do
  v=$(kv $k) || fail "no '$k:' line"
  awk -v v="$v" 'BEGIN{exit !(v ~ /^[0-9.]+$/ && v >= 0 && v <= 1)}' || fail "$k = $v, not in [0, 1]"
done
for k in features_mean_r neurons_mean_r; do
  v=$(kv $k) || fail "no '$k:' line"
  awk -v v="$v" 'BEGIN{exit !(v ~ /^-?[0-9.]+$/ && v >= -1 && v <= 1)}' || fail "$k = $v, not in [-1, 1]"
done
kv report >/dev/null || fail "no report: line"
grep -A1 '^interpret_mode: offline$' "$T/out" | grep -q '^features_mean_r: ' ||
  fail "no 'interpret_mode: offline' line just before features_mean_r"
# step 2 trains the default recipe (cli/demo_train.c) for the 4 epochs asked, on every protein:
# no validation split takes rows from the stream, and the lr schedule spans the planned steps
np=$(wc -l <"$T/w/synth/proteins.ids")
grep -q "^\[2/6\] training the SAE: batchtopk, d_sae 2048, k 10, batch 64, lr 0.0015 .* 4 epochs x $np proteins = $((4 * np)) rows" \
  "$T/out" || fail "step 2 does not print the recipe"
[ "$(kv train_rows)" = $((4 * np)) ] || fail "train_rows $(kv train_rows), expected 4 x $np"
awk -v s="$(kv train_seconds)" 'BEGIN{exit !(s > 0)}' || fail "train_seconds $(kv train_seconds)"
steps=$(( (4 * np + 63) / 64 ))
for c in "arch=batchtopk" "batch-rows=64" "total-steps=$steps" "decay-steps=$(( (steps * 333 + 500) / 1000 ))" \
         "tie-coeff=3e-4" "init-from-data=1" "threads=1"; do
  grep -q "config $c origin=flag" "$T/w/logs/trainer.log" || fail "the trainer did not get --${c/=/ }"
done
grep -q "config val-fraction=0 origin=flag" "$T/w/logs/train-reader.log" || fail "the training reader splits off validation"
# the held-out proteins: ~10% of the dataset, left out of the enrichment, all annotated and evaluated
nh=$(kv annotate_heldout_proteins); ne=$(kv annotate_evaluated_proteins)
awk -v n="$nh" -v e="$ne" 'BEGIN{exit !(n > 1200 && n < 2300 && e > 0.9 * n && e <= n)}' || fail "held out $nh, evaluated $ne"
awk -v f="$(kv annotate_fmax)" 'BEGIN{exit !(f > 0.05)}' || fail "annotate_fmax $(kv annotate_fmax): nothing predicted right"
[ "$(wc -l <"$T/w/annotate/holdout.ids")" -eq "$nh" ] || fail "holdout.ids"
[ "$(wc -l <"$T/w/annotate/out/heldout.jsonl")" -eq "$nh" ] || fail "heldout.jsonl lines"
# not one held-out protein in the population of the enrichment (stored by the scorer): the
# population N of an enriched term equals the annotated proteins that were not held out
"$B/cli/protsae" features --db "$T/w/features.db" --dump 1 >"$T/ref.dump" || fail "dump"
/usr/bin/python3 - "$T/w/annotate/holdout.ids" "$T/w/annotate/out/heldout.jsonl" "$T/ref.dump" \
  "$SHARED/data/human-swissprot/go_annotations.tsv.gz" "$T/w/synth/proteins.ids" <<'PY' || fail "held-out annotation content"
import gzip, json, sys
held = set(open(sys.argv[1]).read().split())
N = None
for line in open(sys.argv[3]):
    tag, _, rest = line.rstrip("\n").partition("\t")
    if tag == "enrich":
        hits = json.loads(rest.partition("\t")[2])["hits"]
        if hits:
            N = hits[0][7]; break
assert N is not None, "no enriched feature in the store"
annotated = {l.split("\t")[0] for l in gzip.open(sys.argv[4], "rt")}
prots = set(open(sys.argv[5]).read().split())
A, H = len(prots & annotated), len(held & annotated)
print(f"enrichment population N {N}; annotated proteins {A}, of them held out {H}")
assert abs(N - (A - H)) <= 5, "held-out proteins in the enrichment population"
n = 0
for line in open(sys.argv[2]):
    j = json.loads(line); n += 1
    assert j["protein"] in held, j["protein"]
    assert all(0 < g["score"] <= 1 for g in j["go"])
    assert all(f["explanation"] is None or isinstance(f["explanation"], str) for f in j["features"])
assert n == len(held)
print("held-out annotations:", n, "proteins")
PY
# the SAE features carry GO terms more often than the raw dimensions do (planted data)
read -r f n < <(awk '/with >= 1 significant GO term/{gsub("%","");print $(NF-1), $NF}' "$T/out")
awk -v f="$f" -v n="$n" 'BEGIN{exit !(f > 0 && n >= 0)}' || fail "enrichment figures: $f $n"
for f in features.db neurons.db sae/latest/cfg.json logs/trainer.log logs/features-scorer.log \
         logs/features-interpreter.log logs/neurons-scorer.log; do
  [ -e "$T/w/$f" ] || fail "missing $f"
done
# the store holds the enrichment and the explanations (labelled offline)
grep -q '^kv	enrich/summary	' "$T/ref.dump" || fail "no enrich/summary in the store"
grep -q '^kv	interp/summary	' "$T/ref.dump" || fail "no interp/summary in the store"
grep -q 'offline' <(grep '^interp	' "$T/ref.dump") || fail "offline explanations not labelled"  # no pipe: pipefail + grep -q = SIGPIPE
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

# Supervision: the same demo again; kill -9 the trainer after its first checkpoint, then the
# scorer, an encoder and the reader of the encoding step mid-stream, then the interpreter: each is
# reported and restarted by the supervisor (the trainer from its checkpoint), and the SAE weights
# and the feature stores (codes, statistics, enrichment, explanations: fs_dump) end byte-identical
# to the undisturbed run's.
"$B/cli/protsae" features --db "$T/w/neurons.db" --dump 1 >"$T/ref.neurons.dump" || fail "dump neurons"
cp "$T/w/sae/latest/sae_weights.safetensors" "$T/ref.weights"
rm -rf "$T/w/logs" "$T/w/sae"
PROTSAE_DATA=$SHARED/data/human-swissprot "$B/cli/protsae" demo --workdir "$T/w" --n-terms 200 --train-epochs 4 \
  --retrain 1 --ckpt-every 300 --n-interpret 30 --batch-rows 128 >"$T/out2" 2>"$T/err2" &
demo=$!
for i in $(seq 1 600); do [ -e "$T/w/sae/latest" ] && break; sleep 0.05; done
pkill -9 -f "protsae-trainer --in .*$T/w/train.ipc" || fail "no trainer to kill"
for i in $(seq 1 600); do grep -q "applied so far" "$T/w/logs/features-scorer.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.0$((RANDOM % 10))
pkill -9 -f "protsae-scorer --db $T/w/features.db" || fail "no scorer to kill"
sleep 0.2
pkill -9 -f "producer encoder-1 --run-id features" || echo "(encoder 1 already done)"
sleep 0.2
pkill -9 -f "protsae-reader --emb $T/w/synth/emb.npy.*--run-id features" || echo "(reader already done)"
# the interpreter once it serves the scorer (offline, its 30 answers take milliseconds: it is
# killed waiting for the scorer's requests, or with them queued)
for i in $(seq 1 2400); do grep -q 'interpreter serving' "$T/w/logs/features-interpreter.log" 2>/dev/null && break
  sleep 0.05; done
pkill -9 -f "protsae-interpreter --in >ipc://$T/w/features-interp.ipc" || echo "(interpreter already done)"
wait $demo || { cat "$T/out2"; tail -20 "$T/err2"; fail "demo with kills"; }
cat "$T/out2"
grep -q "! trainer exited with status 137 (killed): restarting it (see logs/trainer.log)" "$T/out2" ||
  fail "trainer death not reported"
grep -q "(restarting train-reader with it)" "$T/out2" || fail "the training reader was not restarted with the trainer"
grep -q "! features-scorer exited with status 137 (killed): restarting it" "$T/out2" || fail "scorer death not reported"
grep -q "resumed from" "$T/w/logs/trainer.log" || fail "the restarted trainer did not resume from its checkpoint"
cmp "$T/ref.weights" "$T/w/sae/latest/sae_weights.safetensors" || fail "SAE weights after a trainer kill differ"
"$B/cli/protsae" features --db "$T/w/features.db" --dump 1 >"$T/new.dump" || fail "dump 2"
cmp "$T/ref.dump" "$T/new.dump" || fail "the store after kills + restarts differs from the undisturbed run's"
"$B/cli/protsae" features --db "$T/w/neurons.db" --dump 1 >"$T/new.neurons.dump" || fail "dump neurons 2"
cmp "$T/ref.neurons.dump" "$T/new.neurons.dump" || fail "the neurons store differs from the undisturbed run's"
# no stage outlives the demo
! pgrep -f "$T/w/" >/dev/null || { pgrep -af "$T/w/"; fail "stages left running"; }
echo "kill -9 of trainer / scorer / encoder / reader / interpreter: restarted, identical weights, store, explanations"
echo OK
