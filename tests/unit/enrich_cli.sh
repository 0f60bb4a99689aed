#!/usr/bin/env bash
# protsae enrich end to end on a small planted dataset (protsae synth, 3,000 real human proteins,
# 150 planted GO terms): a TopK SAE trained for a few epochs, then `protsae enrich --sae --neurons
# --truth`: the planted term of >= 90% of the recovered features must be among their significant
# terms, the TSV files must hold what the summary counts, and bad input must fail naming it.
# Exit 77 (skip) without the human data.
set -euo pipefail
B=${PROTSAE_BUILD:?}
d=${PROTSAE_SHARED:-${PROTSAE_SRC:-.}/../shared}/data/human-swissprot
[ -r "$d/go_annotations.tsv.gz" ] || { echo "no data at $d: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-enrich-cli.XXXXXX); trap 'rm -rf "$T"' EXIT
"$B"/cli/protsae synth --data "$d" --out "$T/s" --formats npy --max-proteins 3000 --n-terms 150 --quiet 1 >/dev/null 2>&1
"$B"/stages/trainer/protsae-trainer --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 60 --d-sae 512 --k 8 \
  --batch-rows 256 --lr 1e-3 --shuffle-rows 4096 --eval-every 100000 --ckpt-every 1000000 --log-every 100000 \
  --out "$T/tr" >/dev/null 2>"$T/tr.err" || { tail -5 "$T/tr.err"; exit 1; }
"$B"/cli/protsae enrich --sae "$T/tr/latest" --neurons 1 --emb "$T/s/emb.npy" --data "$d" --truth "$T/s" \
  --out "$T/o" --feature 0 >"$T/out.txt" 2>"$T/err.txt" || { cat "$T/err.txt"; exit 1; }
grep -E '^(planted_|sae_features:|sae_sig_pairs|neurons_sig_pairs|population)' "$T/out.txt"
val() { grep "^$1: " "$T/out.txt" | head -1 | cut -d' ' -f2; }
rec=$(val planted_features_recovered_cos09); sig=$(val planted_term_significant)
[ "$(val population)" -ge 2900 ] || { echo "FAIL: population $(val population)"; exit 1; }
[ "$rec" -ge 10 ] || { echo "FAIL: only $rec planted features recovered: the check has nothing to measure"; exit 1; }
[ $((sig * 10)) -ge $((rec * 9)) ] || { echo "FAIL: planted term significant for $sig of $rec recovered features (< 90%)"; exit 1; }
for k in sae neurons; do
  pairs=$(val ${k}_sig_pairs)
  lines=$(($(wc -l <"$T/o/enrich_$k.tsv") - 1))
  [ "$pairs" -eq "$lines" ] || { echo "FAIL: $k: summary has $pairs pairs, enrich_$k.tsv $lines lines"; exit 1; }
  nf=$(($(wc -l <"$T/o/features_$k.tsv") - 1))
  [ "$nf" -eq "$(val ${k}_features)" ] || { echo "FAIL: features_$k.tsv has $nf lines"; exit 1; }
done
grep -q '^feature 0 (sae)' "$T/out.txt" || { echo "FAIL: --feature 0 printed nothing"; exit 1; }
# bad input: ids that match nothing, a wrong ids count, a bad option
head -5 "$T/s/proteins.ids" >"$T/short.ids"
if "$B"/cli/protsae enrich --neurons 1 --emb "$T/s/emb.npy" --ids "$T/short.ids" --data "$d" >/dev/null 2>"$T/e1"; then
  echo "FAIL: a short ids file was accepted"; exit 1; fi
grep -q "short.ids" "$T/e1" || { echo "FAIL: error does not name the ids file:"; cat "$T/e1"; exit 1; }
if "$B"/cli/protsae enrich --neurons 1 --emb "$T/s/emb.npy" --data "$d" --alpha 2 >/dev/null 2>"$T/e2"; then
  echo "FAIL: alpha 2 was accepted"; exit 1; fi
grep -q "alpha" "$T/e2" || { cat "$T/e2"; exit 1; }
echo "enrich cli: ok"
