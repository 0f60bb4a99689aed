#!/usr/bin/env bash
# Integration: the reference study's protein-level preset (cli/presets/study-protein.conf) runs
# the demo end to end on the planted set, and every setting it makes reaches the stage that uses
# it, read back from that stage's logged effective configuration (`config KEY=VALUE origin=flag`)
# and from what the stage wrote (cfg.json, the store's enrich/settings, the encoder's SAE). Only
# sizes are overridden (train-rows, n-terms, n-interpret), as a user on a small machine would.
# Then `protsae train --preset study-protein` with a target trains the study's transcoder: the
# delta target reaches the trainer and its cfg.json.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae
T=$(mktemp -d /tmp/protsae-preset.XXXXXX); trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ANTHROPIC_API_KEY OPENAI_API_KEY PROTSAE_PRESET PROTSAE_PRESETS
export PROTSAE_DATA=$data

"$P" demo --preset study-protein --workdir "$T/w" --n-terms 200 --train-rows 20000 --n-interpret 20 \
  >"$T/out" 2>"$T/err" || { tail -30 "$T/out" "$T/err"; fail "protsae demo --preset study-protein"; }
cat "$T/out"
L=$T/w/logs
grep -q "^preset study-protein (.*cli/presets/study-protein.conf)" "$T/out" || fail "the demo does not name the preset"
has() {  # LOG KEY=VALUE...: each in LOG's effective configuration, set by a flag
  local log=$1; shift
  for c in "$@"; do grep -q "config $c origin=flag" "$L/$log.log" || fail "$log did not get --${c/=/ } (preset)"; done
}
# training: TopK k 64, 20,000 latents, batch 128, constant lr 1e-4, per-sample normalisation,
# AuxK (1/32, k_aux = d_in / 2) after 200 idle steps, encoder as the decoder's transpose, validation
has trainer arch=topk k=64 d-sae=20000 batch-rows=128 lr=0.0001 decay-steps=0 normalize-per-sample=1 \
  aux-coeff=0.03125 k-aux=-1 dead-steps=200 tie-coeff=0 init-from-data=0 val-fraction=0.05
has train-reader val-fraction=0.05
grep -q '"architecture": *"topk"' "$T/w/sae/latest/cfg.json" || fail "cfg.json: not topk"
grep -q '"d_sae": *20000' "$T/w/sae/latest/cfg.json" || fail "cfg.json: d_sae is not 20000"
# save-best: the SAE the encoders used is the best validation checkpoint
grep -q "^sae: $T/w/sae/best " "$T/out" || fail "the demo did not keep sae/best"
grep -q "SAE $T/w/sae/best: d_in=480 d_sae=20000" "$L/features-encoder-0.log" || fail "the encoder did not use sae/best (480 dims)"
# GO enrichment (both scorers): every analysed protein, is_a only, Bonferroni per namespace, is_a depth
for s in features-scorer neurons-scorer; do
  has "$s" enrich-population=analysed enrich-relations=is_a enrich-correction=bonferroni \
    enrich-correction-scope=namespace enrich-depth=is_a interp-explain-frac=0.75 interp-neuron-scaling=minmax
done
"$P" dump --db "$T/w/features.db" >"$T/dump.txt"
grep -q '"propagation":"is_a","population_rule":"analysed","correction_scope":"namespace","depth":"is_a"' "$T/dump.txt" \
  || fail "features.db: enrich/settings are not the study's"
grep -q "in the scorer: Fisher's exact test, Bonferroni" "$T/out" || fail "step 4 does not name Bonferroni"
# interpretation: 75/25 split, GO per namespace, the study's model id, min-max neurons
for s in features-interpreter neurons-interpreter; do
  has "$s" interp-explain-frac=0.75 interp-go-by-namespace=1 model=claude-3-5-sonnet-20240620 interp-neuron-scaling=minmax
done
grep -A1 '^interpret_mode: offline$' "$T/out" | grep -q '^features_mean_r: ' || fail "no interpret_mode line"
for k in features_with_go_fraction neurons_with_go_fraction features_mean_r neurons_mean_r annotate_fmax; do
  v=$(awk -F': ' -v k="$k" '$1==k{print $2}' "$T/out")
  awk -v v="$v" 'BEGIN{exit !(v+0 == v && v >= -1 && v <= 1)}' || fail "$k: '$v'"
done
# a flag after the preset wins: the sizes given above
steps=$(sed -n 's/.*lr 0.0001 (linear decay to 0 over the last 0 of \([0-9]*\) steps).*/\1/p' "$T/out")
[ -n "$steps" ] && [ "$steps" -gt 100 ] && [ "$steps" -lt 160 ] || fail "planned steps '$steps': expected about 20000 / 128"
has trainer total-steps="$steps"
grep -q "1 epochs x" "$T/out" || fail "--train-rows 20000 after the preset did not set 1 epoch"

# the study's transcoder: protsae train --preset study-protein with a target (a second planted set
# over the same proteins stands for layer L+1): target-mode delta from the preset
"$P" synth --data "$data" --out "$T/s2" --n-terms 50 --max-proteins 2000 --seed 7 --formats npy --quiet 1 >/dev/null
"$P" synth --data "$data" --out "$T/s3" --n-terms 50 --max-proteins 2000 --seed 8 --formats npy --quiet 1 >/dev/null
cmp -s "$T/s2/proteins.ids" "$T/s3/proteins.ids" || fail "the two planted sets do not hold the same proteins"
"$P" train --preset study-protein --emb "$T/s2/emb.npy" --fasta "$T/s2/proteins.fasta" --target "$T/s3/emb.npy" \
  --out "$T/tc" --d-sae 512 --train-rows 4000 >"$T/tc.out" 2>"$T/tc.err" || { cat "$T/tc.out" "$T/tc.err"; fail "protsae train"; }
grep -q "config target-mode=delta origin=flag" "$T/tc/logs/trainer.log" || fail "the transcoder's trainer did not get target-mode delta"
grep -q "config k=64 origin=flag" "$T/tc/logs/trainer.log" || fail "protsae train did not take the preset's k"
grep -q '"protsae_target": *"delta"' "$T/tc/latest/cfg.json" || fail "cfg.json: the transcoder is not a delta transcoder"
grep -q "^target_mode: delta$" "$T/tc.out" || fail "protsae train does not report target_mode delta"
echo OK
