#!/usr/bin/env bash
# Integration: protsae-reader -> protsae-encoder x N -> protsae-scorer (RocksDB feature store).
#  - 1, 2 and 3 encoders give byte-identical statistics (full store dumps compared);
#  - kill -9 one encoder at a random point mid-stream, restart it: identical;
#  - kill -9 the scorer at a random point mid-stream, restart it on the same store: identical
#    (batches lost in the dead processes' queues are asked for again: ResendRequest);
#  - residue level (per-residue codes, mean-pooled per protein) and neuron mode, 1 vs 2 encoders;
#  - the scorer's codes equal a direct in-process encode (protsae encode-check);
#  - `protsae features` / `protsae feature N` read the store.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
EN=$B/stages/encoder/protsae-encoder; SC=$B/stages/scorer/protsae-scorer
T=$(mktemp -d /tmp/protsae-es.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
tag=$(basename "$T")

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 3 --formats npy --residue-formats npy \
  --level both --residue-proteins 150 --max-proteins 3000 --quiet 1 >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 3 --d-sae 128 --k 6 --batch-rows 128 --threads 1 \
  --seed 2 --out "$T/sae" >"$T/tr.out" 2>"$T/tr.err" || { tail "$T/tr.err"; fail train; }

# run NAME N_ENCODERS [scorer|encoder: kill -9 one mid-stream and restart it] ; env: EMB IDS LEVEL ENC_ARGS
run() {
  local name=$1 n=$2 victim=${3:-} d=$T/$1
  mkdir -p "$d"
  local ep="ipc:///tmp/$tag-$name"
  local sargs=(--db "$d/db" --in "@$ep-sc" --control ">$ep-ctl" --dump "$d/dump.txt" --resend-after-ms 700
               --commit-batches 1 --sync 1)
  "$SC" "${sargs[@]}" >"$d/sc.log" 2>&1 &
  local sc=$! enc=() i
  for i in $(seq 1 "$n"); do
    "$EN" ${ENC_ARGS:---sae "$T/sae/latest"} --in ">$ep-rd" --out ">$ep-sc" --producer "enc-$i" --hwm 2 >"$d/e$i.log" 2>&1 &
    enc+=($!)
  done
  # a victim run is paced (188 batches at 100/s: ~1.9 s) so the kill lands mid-stream on any machine
  local pace=0; [ -z "$victim" ] || pace=100
  "$R" --emb "${EMB:-$T/s/emb.npy}" --ids "${IDS:-$T/s/proteins.ids}" --level "${LEVEL:-protein}" --batch-rows 16 \
    --max-rate $pace --hwm 2 --out "@$ep-rd" --control "@$ep-ctl" --consumers "$n" >"$d/rd.log" 2>&1 &
  local rd=$!
  if [ "$name" = one ]; then  # (read while it runs: the encoders exit once the stream is finished)
    for _ in $(seq 50); do
      tr '\0' '\n' <"/proc/${enc[0]}/environ" >"$d/enc.environ" 2>/dev/null || true
      grep -qx OPENBLAS_THREAD_TIMEOUT=4 "$d/enc.environ" && break
      sleep 0.1
    done
  fi
  if [ -n "$victim" ]; then
    sleep "$((RANDOM % 2)).$((RANDOM % 7 + 3))"
    kill -0 $sc 2>/dev/null || fail "$name: the scorer finished before the kill (stream too short)"
    if [ "$victim" = scorer ]; then
      kill -9 $sc; wait $sc 2>/dev/null || true
      "$SC" "${sargs[@]}" >"$d/sc2.log" 2>&1 &
      sc=$!
      echo "$name: scorer killed with $(grep -c . "$d/sc.log") log lines; restarted"
    else
      kill -9 "${enc[0]}"; wait "${enc[0]}" 2>/dev/null || true
      "$EN" ${ENC_ARGS:---sae "$T/sae/latest"} --in ">$ep-rd" --out ">$ep-sc" --producer enc-1b --hwm 2 >"$d/e1b.log" 2>&1 &
      enc+=($!)
      echo "$name: encoder 1 killed and restarted"
    fi
  fi
  wait $sc || { tail "$d"/sc*.log; fail "$name: scorer"; }
  # the encoder re-executed itself with a short OpenBLAS spin (stages/encoder/main.c), same pid
  if [ -z "${OPENBLAS_THREAD_TIMEOUT:-}" ] && [ "$name" = one ]; then
    grep -qx OPENBLAS_THREAD_TIMEOUT=4 "$d/enc.environ" ||
      fail "$name: the encoder runs without OPENBLAS_THREAD_TIMEOUT=4"
  fi
  kill -TERM "${enc[@]}" 2>/dev/null || true
  for i in "${enc[@]}"; do wait "$i" 2>/dev/null || true; done
  wait $rd || { tail "$d/rd.log"; fail "$name: reader"; }
  [ -s "$d/dump.txt" ] || fail "$name: no dump"
}

run one 1
grep -q "^meta.*proteins=3000" "$T/one/dump.txt" || fail "one: not every protein applied: $(head -1 "$T/one/dump.txt")"
run two 2
run three 3
cmp "$T/one/dump.txt" "$T/two/dump.txt" || fail "2 encoders differ from 1"
cmp "$T/one/dump.txt" "$T/three/dump.txt" || fail "3 encoders differ from 1"
echo "1, 2, 3 encoders: identical ($(wc -l <"$T/one/dump.txt") dump lines)"

run kill_enc 2 encoder
cmp "$T/one/dump.txt" "$T/kill_enc/dump.txt" || fail "kill -9 encoder + restart differs"
run kill_sc 2 scorer
grep -q "applied so far" "$T/kill_sc/sc2.log" || fail "restarted scorer did not reopen the store"
cmp "$T/one/dump.txt" "$T/kill_sc/dump.txt" || fail "kill -9 scorer + restart differs"
echo "kill -9 encoder / scorer + restart: identical"
grep -h "applied so far" "$T/kill_sc/sc2.log"

# the scorer's codes are a direct in-process encode of the same rows
"$P" encode-check --batch-rows 16 --sae "$T/sae/latest" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --db "$T/one/db" \
  >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "encode-check"; }
grep -q "^mismatches: 0$" "$T/check.out" || fail "encode-check: $(cat "$T/check.out")"

# the CLI reads the store
"$P" features --db "$T/one/db" --sort frequency --limit 5 >"$T/features.out" || fail "protsae features"
[ "$(grep -c '^ *[0-9]' "$T/features.out")" -eq 5 ] || { cat "$T/features.out"; fail "features: not 5 rows"; }
f=$(awk '/^ *[0-9]/{print $1; exit}' "$T/features.out")
"$P" feature "$f" --db "$T/one/db" --data "$data" >"$T/feature.out" || fail "protsae feature $f"
grep -q "top proteins" "$T/feature.out" || { cat "$T/feature.out"; fail "feature: no top proteins"; }
# each top protein carries its gene and protein name from proteins.tsv.gz (common/proteins_tsv)
acc=$(awk '/^ +1\. /{print $3; exit}' "$T/feature.out")
want=$(zcat "$data/proteins.tsv.gz" | awk -F'\t' -v a="$acc" '$1 == a && !n++ {print ($2 != "" ? $2 : $3)}')
line=$(grep -m1 "^ *1\. " "$T/feature.out" || true)
[ -n "$acc" ] && [ -n "$want" ] && [[ "$line" == *"$want"* ]] ||
  { cat "$T/feature.out"; fail "feature: top protein $acc without its gene / name '$want'"; }

# residue level: per-residue codes, pooled per protein; 1 vs 2 encoders
EMB=$T/s/residues.npy IDS=$T/s/residues.ids LEVEL=residue run res1 1
EMB=$T/s/residues.npy IDS=$T/s/residues.ids LEVEL=residue run res2 2
grep -q "^meta.*level=1.*proteins=150.*residues=[1-9]" "$T/res1/dump.txt" || fail "residue: $(head -1 "$T/res1/dump.txt")"
grep -q "top=[^	]*:[0-9][0-9]*:" "$T/res1/dump.txt" || fail "residue: top entries without positions"
cmp "$T/res1/dump.txt" "$T/res2/dump.txt" || fail "residue level: 2 encoders differ from 1"
# neuron mode (baseline)
ENC_ARGS=--neurons run neu1 1
ENC_ARGS=--neurons run neu2 2
grep -q "^meta.*n_features=32.*neurons=1" "$T/neu1/dump.txt" || fail "neurons: $(head -1 "$T/neu1/dump.txt")"
cmp "$T/neu1/dump.txt" "$T/neu2/dump.txt" || fail "neuron mode: 2 encoders differ from 1"
echo "residue level and neuron mode: identical across encoder counts"
echo "OK"
