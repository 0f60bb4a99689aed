#!/usr/bin/env bash
# Integration: `protsae run CONFIG` runs the demo's pipeline on a user's own embeddings (here a
# 3,000-protein npy + FASTA written by protsae synth, read as plain user data: no planted truth)
# with the settings of a key = value file; flags after CONFIG override it; a bad file (unknown
# key, no '=', a key twice, missing file, no emb, a directory) is refused naming the file (and line).
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae
T=$(mktemp -d /tmp/protsae-run.XXXXXX); trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ANTHROPIC_API_KEY OPENAI_API_KEY PROTSAE_DATA

"$P" synth --data "$data" --out "$T/s" --n-terms 150 --max-proteins 3000 --seed 5 --formats npy --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
mkdir "$T/user"; cp "$T/s/emb.npy" "$T/user/my.npy"; cp "$T/s/proteins.fasta" "$T/user/my.fasta"
cat >"$T/run.conf" <<CONF
# a user's run: own embeddings, annotation directory, small settings
workdir = $T/w
emb = $T/user/my.npy        # ids: the FASTA's order
fasta = $T/user/my.fasta
data = $data
train-epochs = 3
d-sae = 256
k = 8
arch = topk                 # the recipe's keys reach the trainer
train-batch = 128
lr = 2e-3
lr-decay = 0.5
tie-coeff = 0
dead-steps = 50
val-fraction = 0.1          # validation proteins flagged by the training reader
save-best = 1               # ... and the checkpoint of the lowest validation MSE is the SAE encoded

n-interpret = 20
batch-rows = 128
encoders = 1
scorers = 2                 # the feature stores sharded over two scorers (a front + 2 shards)
mode = offline
interp-explain-frac = 0.75  # the interpretation keys reach the scorer and the interpreter
interp-neuron-scaling = minmax
interp-go-by-namespace = 1
interp-model = claude-3-5-sonnet-20240620
enrich-population = analysed  # the study's GO settings reach both scorers (and the stores' settings)
enrich-relations = is_a
enrich-correction = bonferroni
enrich-correction-scope = namespace
enrich-depth = is_a
CONF
"$P" run "$T/run.conf" --k 6 >"$T/out" 2>"$T/err" || { tail -30 "$T/out" "$T/err"; fail "protsae run"; }
cat "$T/out"
grep -q "^== protsae run: features of your embeddings $T/user/my.npy" "$T/out" || fail "run banner"
grep -q "no planted truth" "$T/out" || fail "recovery should be skipped on user data"
grep -q "^planted_recovery_cos09: nan" "$T/out" || fail "planted_recovery_cos09 should be nan"
for k in features_with_go_fraction neurons_with_go_fraction features_mean_r neurons_mean_r annotate_fmax; do
  v=$(awk -F': ' -v k="$k" '$1==k{print $2}' "$T/out")
  awk -v v="$v" 'BEGIN{exit !(v+0 == v && v >= -1 && v <= 1)}' || fail "$k: '$v'"
done
grep -q '"k": *6' "$T/w/sae/latest/cfg.json" || fail "--k 6 after CONFIG did not override k = 8"
grep -q '"d_sae": *256' "$T/w/sae/latest/cfg.json" || fail "d-sae = 256 from CONFIG not used"
grep -q '"architecture": *"topk"' "$T/w/sae/latest/cfg.json" || fail "arch = topk from CONFIG not used"
# the training keys in the trainer's effective configuration: 3 epochs of the 3,000 proteins less
# the validation ones (N) in batches of 128 = ceil(3N / 128) steps, lr decaying over the last half
n=$(sed -n 's/.*3 epochs x \([0-9]*\) proteins = \([0-9]*\) rows.*/\1/p' "$T/out")
[ -n "$n" ] && [ "$n" -gt 2500 ] && [ "$n" -lt 2900 ] || fail "training proteins '$n': expected about 90% of 3000"
steps=$(( (3 * n + 127) / 128 )); decay=$(( (steps + 1) / 2 ))
for c in "arch=topk" "batch-rows=128" "lr=0.002" "total-steps=$steps" "decay-steps=$decay" "tie-coeff=0" "k=6" \
         "dead-steps=50" "l1-warmup-steps=0"; do
  grep -q "config $c origin=flag" "$T/w/logs/trainer.log" || fail "the trainer did not get --${c/=/ }"
done
for f in train-reader trainer; do
  grep -q "config val-fraction=0.1 origin=flag" "$T/w/logs/$f.log" || fail "$f got no val-fraction"
done
grep -q "^train_rows: $((3 * n))$" "$T/out" || fail "train_rows: expected 3 x $n"
# save-best: the SAE encoded is sae/best, the step of the lowest validation MSE in metrics.jsonl
m=$T/w/sae/metrics.jsonl
min_step=$(grep '"kind":"eval"' "$m" | sed 's/.*"step":\([0-9]*\).*"val_mse":\([0-9.e+-]*\).*/\2 \1/' | sort -g | head -1 | cut -d' ' -f2)
[ "$(readlink "$T/w/sae/best")" = "$(printf 'ckpt-%010d' "$min_step")" ] || fail "sae/best is not step $min_step"
grep -q "SAE $T/w/sae/best: d_in" "$T/w/logs/features-encoder-0.log" || fail "the encoder did not use sae/best"
grep -q "^sae: $T/w/sae/best " "$T/out" || fail "the run does not report sae/best"
for c in "interp-explain-frac=0.75" "interp-neuron-scaling=minmax"; do
  for f in features-scorer neurons-scorer features-interpreter neurons-interpreter; do
    grep -q "config $c origin=flag" "$T/w/logs/$f.log" || fail "$f did not get --${c/=/ }"
  done
done
for c in "interp-go-by-namespace=1" "model=claude-3-5-sonnet-20240620" "uniprot-flat=auto"; do
  grep -q "config $c origin=flag" "$T/w/logs/features-interpreter.log" || fail "the interpreter did not get --${c/=/ }"
done
grep -A1 '^interpret_mode: offline$' "$T/out" | grep -q '^features_mean_r: ' ||
  fail "no 'interpret_mode: offline' line just before features_mean_r"
for c in "enrich-population=analysed" "enrich-relations=is_a" "enrich-correction=bonferroni" \
  "enrich-correction-scope=namespace" "enrich-depth=is_a"; do
  for s in features neurons; do grep -q "config $c origin=flag" "$T/w/logs/$s-scorer.log" || fail "$s scorer: no --${c/=/ }"; done
done
"$P" dump --db "$T/w/features.db" >"$T/dump.txt"
grep -q '"propagation":"is_a","population_rule":"analysed","correction_scope":"namespace","depth":"is_a"' "$T/dump.txt" \
  || fail "features.db: enrich/settings do not record the enrich-* keys"
"$P" features --db "$T/w/features.db" --limit 1 | grep -q "3000 proteins" || fail "store does not hold 3000 proteins"
[ -s "$T/w/report.html" ] || fail "no report"
# one supervisor ran the stages: their logs, one encoder (encoders = 1), nothing left running
for f in trainer train-reader features-reader features-encoder-0 features-scorer features-interpreter neurons-scorer; do
  [ -s "$T/w/logs/$f.log" ] || fail "no logs/$f.log"
done
[ ! -e "$T/w/logs/features-encoder-1.log" ] || fail "encoders = 1 started a second encoder"
# scorers = 2: each store is a front + 2 shards, read as one store by features / report / annotation
for f in features-scorer-shard-0 features-scorer-shard-1 neurons-scorer-shard-1; do
  [ -s "$T/w/logs/$f.log" ] || fail "scorers = 2: no logs/$f.log"
done
[ -d "$T/w/features.db/shard-1" ] && [ -d "$T/w/features.db/analysis" ] || fail "scorers = 2: features.db is not sharded"
! pgrep -f "$T/w/" >/dev/null || { pgrep -af "$T/w/"; fail "stages left running"; }

# bad files: refused before anything runs, naming file and line
bad() {  # CONTENT EXPECTED-MESSAGE
  printf '%b' "$1" >"$T/bad.conf"
  if "$P" run "$T/bad.conf" >"$T/bad.out" 2>&1; then fail "accepted: $1"; fi
  grep -q "$2" "$T/bad.out" || { cat "$T/bad.out"; fail "message for '$1': expected /$2/"; }
}
bad 'workdir = x\nd-sae = 5\nfrobnicate = 1\n' "bad.conf line 3: unknown key 'frobnicate'"
bad '# c\nd-sae 64\n' "bad.conf line 2: 'key = value' expected"
bad 'k = 4\nk = 5\n' "bad.conf line 2: 'k' given twice"
bad 'K_X = 4\n' "bad.conf line 1: bad key"
# nothing of the user's to run (the planted demo is `protsae demo`) and a directory as CONFIG
bad '' "bad.conf: no 'emb'"
bad '# a comment\nk = 4\n' "bad.conf: no 'emb'"
mkdir "$T/conf.d"
if "$P" run "$T/conf.d" >"$T/bad.out" 2>&1; then fail "a directory as CONFIG accepted"; fi
grep -q "conf.d: is a directory" "$T/bad.out" || { cat "$T/bad.out"; fail "directory CONFIG not named"; }
if "$P" run "$T/missing.conf" >"$T/bad.out" 2>&1; then fail "missing CONFIG accepted"; fi
grep -q "missing.conf" "$T/bad.out" || fail "missing CONFIG not named"
# presets: an unknown one is refused listing the shipped ones; a preset file's bad line names the
# file and line; a preset naming another preset is refused; all before anything runs
bad "emb = x.npy\npreset = nope\n" "no preset 'nope' (presets: .*recipe"
printf 'k = 4\nfrobnicate = 1\n' >"$T/mine.conf"
bad "emb = x.npy\npreset = $T/mine.conf\n" "mine.conf line 2: unknown key 'frobnicate'"
printf 'k = 4\npreset = recipe\n' >"$T/mine.conf"
bad "emb = x.npy\npreset = $T/mine.conf\n" "names another preset"
# every shipped preset parses (its keys are the demo's): --help after it exits 0
for f in "$(dirname "$0")"/../../cli/presets/*.conf; do
  "$P" demo --preset "$f" --help >/dev/null 2>"$T/p.err" || { cat "$T/p.err"; fail "preset $f does not parse"; }
done
echo OK
