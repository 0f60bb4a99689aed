#!/usr/bin/env bash
# bench_recipe.sh BUILD — the default training recipe of `protsae demo` / `protsae run` on planted
# data (protsae synth): how much of the planted truth it recovers (`protsae recovery`, best
# decoder-row cosine per planted direction, final weights) for how many rows and seconds.
#
# The recipe is read from `protsae demo --help` (its defaults: arch, d-sae, k, train-rows,
# train-batch, lr, lr-decay, tie-coeff, init-from-data), so the bench measures what users get;
# BENCH_RECIPE_K=16 (etc., the option name in capitals) tries another value.
# Epochs = max(1, floor(train-rows / N)) for N proteins, as the demo derives them.
#
# Parts (BENCH_RECIPE_PARTS, space-separated; default all):
#   headline  synth defaults (seed 1), trained alone on the demo's train-threads (1):
#             planted_recovery_cos09, recipe_train_seconds, recipe_rows_processed
#   shapes    synth defaults and d 320, d 1280, 500 and 2,000 terms, each with data seed = trainer
#             seed = 1, 2, 3 (BENCH_SEEDS): recipe_cos09_SHAPE_seedS and _min / _max per shape
#   scale     BENCH_SCALE_PROTEINS (200,000) planted proteins (synth --n-proteins: extra proteins
#             draw the GO term sets of the real ones, fresh noise), BENCH_SCALE_EPOCHS (3) passes:
#             scale_recovery_cos09, scale_passes, scale_rows_processed, scale_train_seconds
#   residue   synth --level residue (500 proteins, every residue a row), the same recipe family on
#             the residue rows (row budget train-rows): residue_motif_recovery_cos09 (the 5 planted
#             sequence motifs), residue_aa_recovery_cos09 (20 amino-acid directions). The GO-term
#             directions are not scored there: 500 proteins hold too few members of each term.
# The shape, scale and residue runs use one thread each, BENCH_JOBS (2) at a time.
# Memory: the scale set is 200,000 x 480 float32 (384 MB) on disk, streamed by the trainer
# (shuffle buffer 16,384 rows). BENCH_TMPDIR (default /tmp) holds the data, removed at the end.
set -euo pipefail
build=${1:?usage: bench_recipe.sh BUILD}
protsae=$build/cli/protsae
trainer=$build/stages/trainer/protsae-trainer
parts=${BENCH_RECIPE_PARTS:-headline shapes scale residue}
seeds=${BENCH_SEEDS:-1 2 3}
jobs=${BENCH_JOBS:-2}
T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/protsae-bench-recipe.XXXXXX"); trap 'rm -rf "$T"' EXIT

# the recipe: the demo's defaults
help=$("$protsae" demo --help 2>&1)
opt() { # NAME FALLBACK: BENCH_RECIPE_<NAME> from the environment, else the default printed by
        # `protsae demo --help` for --NAME, else FALLBACK
  local v e
  e=BENCH_RECIPE_$(echo "$1" | tr 'a-z-' 'A-Z_')
  [ -n "${!e:-}" ] && { echo "${!e}"; return; }
  v=$(printf '%s\n' "$help" | sed -nE "s/^  --$1 .*\[([^]]*)\]\$/\1/p" | head -1)
  echo "${v:-$2}"
}
arch=$(opt arch batchtopk); dsae=$(opt d-sae 2048); k=$(opt k 10); rows_budget=$(opt train-rows 1500000)
batch=$(opt train-batch 64); lr=$(opt lr 1.5e-3); decay=$(opt lr-decay 0.333); tie=$(opt tie-coeff 3e-4)
ffd=$(opt init-from-data 1); threads=$(opt train-threads 1)
echo "recipe: $arch d_sae $dsae k $k batch $batch lr $lr decay $decay tie $tie init_from_data $ffd rows $rows_budget threads $threads"

# train NAME EMB IDS EPOCHS THREADS [extra trainer args] (env NROWS: rows a pass, default the ids'
# count; TSEED: trainer seed): writes $T/NAME.out (trainer summary) and
# $T/NAME.sec; the SAE in $T/NAME.sae
train() {
  local name=$1 emb=$2 ids=$3 ep=$4 th=$5; shift 5
  local n steps t0
  n=${NROWS:-$(wc -l <"$ids")}
  steps=$(( ep * ((n + batch - 1) / batch) ))
  t0=$(date +%s.%N)
  OPENBLAS_NUM_THREADS=$th "$trainer" --emb "$emb" --ids "$ids" --arch "$arch" --d-sae "$dsae" --k "$k" \
    --epochs "$ep" --batch-rows "$batch" --lr "$lr" --total-steps "$steps" \
    --decay-steps "$(awk -v s="$steps" -v f="$decay" 'BEGIN{printf "%d", s * f}')" --val-fraction 0 \
    --tie-coeff "$tie" --init-from-data "$ffd" --shuffle-rows 16384 --eval-every 1000000 \
    --ckpt-every 1000000 --log-every 1000 --threads "$th" --seed "${TSEED:-1}" --out "$T/$name.sae" "$@" \
    >"$T/$name.out" 2>"$T/$name.err" || { echo "bench_recipe: training $name failed:" >&2; tail -5 "$T/$name.err" >&2; return 1; }
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f\n", b - a}' >"$T/$name.sec"
}
epochs_for() { # N -> epochs within the row budget
  awk -v r="$rows_budget" -v n="$1" 'BEGIN{e = int(r / n); print e < 1 ? 1 : e}'
}
cos09() { # SAE TRUTH -> share of directions recovered at cosine >= 0.9
  "$protsae" recovery --sae "$1" --truth "$2" 2>/dev/null | awk -F': ' '$1=="planted_recovery_cos09"{print $2}'
}
synth() { # DIR [synth args]
  local d=$1; shift
  [ -f "$d/truth/meta.json" ] || "$protsae" synth --out "$d" --formats npy --quiet 1 "$@" >"$d.log" 2>&1 \
    || { echo "bench_recipe: synth $* failed:" >&2; tail -5 "$d.log" >&2; return 1; }
}
# at most $jobs background jobs
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done; }

case " $parts " in *" headline "*)
  synth "$T/s1" --seed 1
  n=$(wc -l <"$T/s1/proteins.ids"); ep=$(epochs_for "$n")
  train headline "$T/s1/emb.npy" "$T/s1/proteins.ids" "$ep" "$threads"
  echo "planted_recovery_cos09: $(cos09 "$T/headline.sae/latest" "$T/s1/truth/directions.npy")"
  echo "recipe_train_seconds: $(cat "$T/headline.sec")"
  echo "recipe_rows_processed: $(awk -F': ' '$1=="rows_trained"{print $2}' "$T/headline.out")"
  echo "recipe_epochs: $ep"
  echo "recipe_dead_fraction: $(awk -F': ' '$1=="dead_fraction"{print $2}' "$T/headline.out")"
  awk -v s="$(cat "$T/headline.sec")" -F': ' '$1=="rows_trained"{printf "recipe_rows_per_s: %.0f\n", $2 / s}' "$T/headline.out"
;; esac

shape_args() {
  case $1 in defaults) ;; d320) echo "--dim 320" ;; d1280) echo "--dim 1280" ;;
    terms500) echo "--n-terms 500" ;; terms2000) echo "--n-terms 2000" ;; esac
}
case " $parts " in *" shapes "*)
  shapes=${BENCH_SHAPES:-defaults d320 d1280 terms500 terms2000}
  for sh in $shapes; do for s in $seeds; do
    # shellcheck disable=SC2046
    synth "$T/$sh-$s" --seed "$s" $(shape_args "$sh")
  done; done
  for sh in $shapes; do for s in $seeds; do
    throttle
    ( n=$(wc -l <"$T/$sh-$s/proteins.ids")
      TSEED=$s train "$sh-$s" "$T/$sh-$s/emb.npy" "$T/$sh-$s/proteins.ids" "$(epochs_for "$n")" 1 &&
      cos09 "$T/$sh-$s.sae/latest" "$T/$sh-$s/truth/directions.npy" >"$T/$sh-$s.cos09" ) &
  done; done
  wait
  for sh in $shapes; do
    for s in $seeds; do echo "recipe_cos09_${sh}_seed$s: $(cat "$T/$sh-$s.cos09" 2>/dev/null || echo nan)"; done
    for s in $seeds; do cat "$T/$sh-$s.cos09" 2>/dev/null; done |
      awk -v sh="$sh" 'NR==1||$1<mn{mn=$1} NR==1||$1>mx{mx=$1} END{if (NR) printf "recipe_cos09_%s_min: %s\nrecipe_cos09_%s_max: %s\n", sh, mn, sh, mx}'
    for s in $seeds; do cat "$T/$sh-$s.sec" 2>/dev/null; done |
      awk -v sh="$sh" '{t+=$1} END{if (NR) printf "recipe_seconds_%s_mean_1thread: %.0f\n", sh, t / NR}'
  done
;; esac

case " $parts " in *" scale "*)
  np=${BENCH_SCALE_PROTEINS:-200000}; sep=${BENCH_SCALE_EPOCHS:-3}
  synth "$T/scale" --n-proteins "$np"
  train scale "$T/scale/emb.npy" "$T/scale/proteins.ids" "$sep" 1 &
  [ -n "${BENCH_SCALE_ALSO_BUDGET:-}" ] && { n=$np; train scale-budget "$T/scale/emb.npy" "$T/scale/proteins.ids" "$(epochs_for "$n")" 1 & }
  wait
  echo "scale_proteins: $np"
  echo "scale_recovery_cos09: $(cos09 "$T/scale.sae/latest" "$T/scale/truth/directions.npy")"
  echo "scale_passes: $sep"
  echo "scale_rows_processed: $(awk -F': ' '$1=="rows_trained"{print $2}' "$T/scale.out")"
  echo "scale_train_seconds_1thread: $(cat "$T/scale.sec")"
  if [ -f "$T/scale-budget.sec" ]; then
    echo "scale_budget_passes: $(epochs_for "$np")"
    echo "scale_budget_recovery_cos09: $(cos09 "$T/scale-budget.sae/latest" "$T/scale/truth/directions.npy")"
  fi
  rm -rf "$T/scale"
;; esac

case " $parts " in *" residue "*)
  r=$T/res
  synth "$r" --level residue --residue-formats npy
  nrows=$(sed -nE 's/.*"residue_rows": *([0-9]+).*/\1/p' "$r/truth/meta.json" | head -1)
  NROWS=$nrows train residue "$r/residues.npy" "$r/residues.ids" "$(epochs_for "$nrows")" 1 \
    --level residue --offsets "$r/residues.offsets.npy"
  echo "residue_proteins: $(wc -l <"$r/residues.ids")"
  echo "residue_rows: $nrows"
  echo "residue_rows_processed: $(awk -F': ' '$1=="rows_trained"{print $2}' "$T/residue.out")"
  echo "residue_motif_recovery_cos09: $(cos09 "$T/residue.sae/latest" "$r/truth/motif_directions.npy")"
  echo "residue_aa_recovery_cos09: $(cos09 "$T/residue.sae/latest" "$r/truth/aa_directions.npy")"
  echo "residue_train_seconds_1thread: $(cat "$T/residue.sec")"
;; esac
