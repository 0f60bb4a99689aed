#!/usr/bin/env bash
# scripts/bench annotate: the annotation service from sequences to written annotations, against
# ESM2 alone on the same proteins, in the same command.
#   ESM2 alone:  protsae embed --model M --fasta F (the forward, mean-pooled, written as .npy)
#   service:     protsae annotate --esm2 M (reader --watch -> encoder -> annotator, the proteome
#                dropped as a FASTA; from the launch to the written NAME.tsv / NAME.jsonl and exit)
# M is an ESM2 of the esm2_t12_35M shape with random weights (protsae esm2-random: the real weights
# are not reachable here; the cost is the shape's). The SAE (d_in 480, 4,096 latents, k 32) and its
# feature store come from planted data of that dimension: they make the encoder and the sink do a
# real model's work (their annotations of random-weight embeddings mean nothing).
# Keys: annotate_proteins, annotate_tokens, esm2_alone_seconds, esm2_alone_tokens_per_s,
# annotate_seconds, annotate_proteins_per_s, annotate_tokens_per_s, annotate_vs_esm2_alone (goal
# >= 0.9: the rest of the pipeline hides behind ESM2). Options (env): BENCH_PROTEINS (200),
# BENCH_THREADS (2: the ESM2 forward's), BENCH_ENCODERS (1), BENCH_PRECISION (f32 | bf16: the ESM2
# projections, in both commands).
set -euo pipefail
build=${1:?build dir}
data=${PROTSAE_DATA:-${PROTSAE_SHARED:-$PWD/../shared}/data/human-swissprot}
N=${BENCH_PROTEINS:-200}; TH=${BENCH_THREADS:-2}; NE=${BENCH_ENCODERS:-1}; PR=${BENCH_PRECISION:-f32}
P=$build/cli/protsae; TR=$build/stages/trainer/protsae-trainer; R=$build/stages/reader/protsae-reader
EN=$build/stages/encoder/protsae-encoder; SC=$build/stages/scorer/protsae-scorer
T=$(mktemp -d /tmp/protsae-bench-annot.XXXXXX); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
die() { echo "bench annotate: $*" >&2; exit 1; }

"$P" esm2-random --out "$T/esm2" >"$T/esm2.log" 2>&1 || { cat "$T/esm2.log"; die "esm2-random"; }
# the model: SAE + feature store with complete enrichment, on planted data of dimension 480
"$P" synth --data "$data" --out "$T/s" --dim 480 --n-terms 200 --max-proteins 4000 --formats npy --quiet 1 \
  >"$T/synth.log" 2>&1 || { tail "$T/synth.log"; die synth; }
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 3 --d-sae 4096 --k 32 --batch-rows 256 --threads 2 \
  --out "$T/sae" >"$T/tr.log" 2>&1 || { tail "$T/tr.log"; die train; }
ep="ipc://$T/st"
"$SC" --db "$T/f.db" --in "@$ep-sc" --control ">$ep-ctl" --data "$data" >"$T/sc.log" 2>&1 &
sc=$!
"$EN" --sae "$T/sae/latest" --in ">$ep-rd" --out ">$ep-sc" >"$T/en.log" 2>&1 &
"$R" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --out "@$ep-rd" --control "@$ep-ctl" >"$T/rd.log" 2>&1 &
wait $sc || { tail "$T/sc.log"; die "feature store"; }
# the proteome: the first N human proteins (their real lengths)
zcat "$data/proteins.fasta.gz" | awk -v n="$N" '/^>/{k++} k<=n{print}' >"$T/p.fasta"
tokens=$(awk '/^>/{if (l) t += (l > 1022 ? 1022 : l) + 2; l = 0; next} {l += length($0)} END{t += (l > 1022 ? 1022 : l) + 2; print t}' "$T/p.fasta")
echo "annotate_proteins: $N"
echo "annotate_tokens: $tokens"
echo "annotate_threads: $TH"
echo "annotate_esm2_precision: $PR"
now() { date +%s.%N; }
t0=$(now)
"$P" embed --model "$T/esm2" --fasta "$T/p.fasta" --out "$T/emb" --threads "$TH" --precision "$PR" >"$T/embed.log" 2>&1 || { cat "$T/embed.log"; die embed; }
t1=$(now)
mkdir -p "$T/drop"; cp "$T/p.fasta" "$T/drop/p.fasta"
t2=$(now)
"$P" annotate --watch "$T/drop" --out "$T/out" --sae "$T/sae/latest" --db "$T/f.db" --data "$data" --esm2 "$T/esm2" \
  --esm2-threads "$TH" --esm2-precision "$PR" --encoders "$NE" --once 1 --settle-ms 0 >"$T/ann.log" 2>&1 || { cat "$T/ann.log"; die annotate; }
t3=$(now)
[ "$(wc -l <"$T/out/p.jsonl")" -eq "$N" ] || die "p.jsonl has $(wc -l <"$T/out/p.jsonl") lines, want $N"
awk -v n="$N" -v tok="$tokens" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN{
  e = b - a; s = d - c
  printf "esm2_alone_seconds: %.2f\nesm2_alone_proteins_per_s: %.2f\nesm2_alone_tokens_per_s: %.0f\n", e, n / e, tok / e
  printf "annotate_seconds: %.2f\nannotate_proteins_per_s: %.2f\nannotate_tokens_per_s: %.0f\n", s, n / s, tok / s
  printf "annotate_vs_esm2_alone: %.3f\n", e / s }'
