#!/usr/bin/env bash
# Integration: the feature store sharded over scorers (protsae-scorer --shards N; featstore.h
# "Sharded stores"): reader -> 2 encoders -> front scorer -> N shard scorers, then the front's GO
# enrichment and interpretation (offline interpreter) over the merged store.
#  - 2 and 3 shards give a store whose dump (the front's --dump, and `protsae dump --db DIR` read
#    through the store API) equals the one-scorer dump byte for byte, enrichment and explanations
#    included; `protsae features` and `protsae feature N` read it the same;
#  - kill -9 of one shard at a random point mid-stream, restarted: the same bytes; the same for the
#    front (what was in its queues is asked for again by the shards);
#  - residue level (per-residue codes cut by shard, pooled codes too), 2 shards: the same bytes;
#  - a shard given an entry outside its range rejects the batch; a store keeps its shard count.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
EN=$B/stages/encoder/protsae-encoder; SC=$B/stages/scorer/protsae-scorer; IN=$B/stages/interpreter/protsae-interpreter
T=$(mktemp -d /tmp/protsae-shards.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*/*.log; do echo "--- $f"; tail -n 8 "$f"; done >&2; exit 1; }

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 3 --formats npy --residue-formats npy \
  --level both --residue-proteins 120 --max-proteins 3000 --quiet 1 >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; exit 1; }
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 2 --d-sae 301 --k 6 --batch-rows 128 --threads 1 \
  --seed 2 --out "$T/sae" >"$T/tr.out" 2>"$T/tr.err" || { tail "$T/tr.err"; exit 1; }

# run NAME SHARDS [VICTIM: a shard number, or f = the front]   (SHARDS 0: one plain scorer); env: EMB IDS LEVEL
run() {
  local name=$1 n=$2 victim=${3:-} d=$T/$1
  mkdir -p "$d"
  local ep="ipc://$d/x"
  local common=(--resend-after-ms 700 --commit-batches 1 --run-id features)
  local front=(--db "$d/db" --in "@$ep-sc" --control ">$ep-ctl" --dump "$d/dump.txt" "${common[@]}"
               --data "$data" --interp-out "@$ep-int" --n-interpret 12 --interp-min-active 10 --enrich-threads 1)
  [ "$n" = 0 ] || front+=(--shards "$n" --shard-out "@$ep-sh")
  "$SC" "${front[@]}" >"$d/front.log" 2>&1 &
  local fpid=$! shard=() k
  wargs() { echo --db "$d/db" --shards "$n" --shard "$1" --in ">$ep-sh" --control ">$ep-ctl" "${common[@]}"; }
  for ((k = 0; k < n; k++)); do
    # shellcheck disable=SC2046
    "$SC" $(wargs $k) >"$d/shard$k.log" 2>&1 &
    shard+=($!)
  done
  "$IN" --in ">$ep-int" --results ">$ep-sc" --data "$data" --mode offline --cache "$d/cache" --producer interp \
    >"$d/interp.log" 2>&1 &
  local ipid=$! enc=() i
  for i in 1 2; do
    "$EN" --sae "$T/sae/latest" --in ">$ep-rd" --out ">$ep-sc" --producer "enc-$i" --hwm 2 --run-id features \
      >"$d/e$i.log" 2>&1 &
    enc+=($!)
  done
  local pace=0; [ -z "$victim" ] || pace=100   # ~188 batches at 100/s: the kill lands mid-stream
  "$R" --emb "${EMB:-$T/s/emb.npy}" --ids "${IDS:-$T/s/proteins.ids}" --level "${LEVEL:-protein}" --batch-rows 16 \
    --max-rate $pace --hwm 2 --out "@$ep-rd" --control "@$ep-ctl" --consumers 2 --run-id features >"$d/rd.log" 2>&1 &
  local rd=$!
  if [ -n "$victim" ]; then
    sleep "1.$((RANDOM % 7 + 3))"   # after the ~1 s start, before the end of the ~1.9 s stream
  fi
  if [ "$victim" = f ]; then
    kill -0 $fpid 2>/dev/null || fail "$name: the front finished before the kill (stream too short)"
    kill -9 $fpid; wait $fpid 2>/dev/null || true
    "$SC" "${front[@]}" >"$d/front-b.log" 2>&1 &
    fpid=$!
    echo "$name: front killed and restarted"
  elif [ -n "$victim" ]; then
    kill -0 "${shard[$victim]}" 2>/dev/null || fail "$name: shard $victim finished before the kill (stream too short)"
    kill -9 "${shard[$victim]}"; wait "${shard[$victim]}" 2>/dev/null || true
    # shellcheck disable=SC2046
    "$SC" $(wargs "$victim") >"$d/shard$victim-b.log" 2>&1 &
    shard[$victim]=$!
    echo "$name: shard $victim killed with $(grep -c . "$d/shard$victim.log") log lines; restarted"
  fi
  wait $fpid || fail "$name: front scorer exit $?"
  for k in "${shard[@]}"; do wait "$k" || fail "$name: a shard scorer failed"; done
  wait $ipid 2>/dev/null || true
  kill -TERM "${enc[@]}" 2>/dev/null || true
  for i in "${enc[@]}"; do wait "$i" 2>/dev/null || true; done
  wait $rd || fail "$name: reader"
  [ -s "$d/dump.txt" ] || fail "$name: no dump"
}

same() {  # A B: the dumps equal, and the store API reads B's store as A's
  cmp "$T/$1/dump.txt" "$T/$2/dump.txt" || { diff "$T/$1/dump.txt" "$T/$2/dump.txt" | head -5; fail "$2: dump differs from $1"; }
  "$P" dump --db "$T/$2/db" >"$T/$2/api-dump.txt" || fail "$2: protsae dump"
  cmp "$T/$1/dump.txt" "$T/$2/api-dump.txt" || fail "$2: protsae dump (through the store API) differs from $1"
  for q in "features --db" "feature 7 --db"; do
    # shellcheck disable=SC2086
    cmp <("$P" $q "$T/$1/db" | sed "s#$T/$1/db#DB#g") <("$P" $q "$T/$2/db" | sed "s#$T/$2/db#DB#g") ||
      fail "$2: protsae $q differs"
  done
  echo "$2: identical to $1"
}

run one 0
grep -q "^meta.*proteins=3000" "$T/one/dump.txt" || fail "one: not every protein applied"
grep -q "^enrich" "$T/one/dump.txt" || fail "one: no enrichment records"
grep -q "^interp" "$T/one/dump.txt" || fail "one: no explanations"
run two 2
same one two
[ -d "$T/two/db/shard-1" ] && [ -d "$T/two/db/analysis" ] || fail "two: not a sharded layout"
run three 3
same one three
run three-kill 3 $((RANDOM % 3))
same one three-kill
run two-killfront 2 f
same one two-killfront

EMB=$T/s/residues.npy IDS=$T/s/residues.ids LEVEL=residue run res-one 0
EMB=$T/s/residues.npy IDS=$T/s/residues.ids LEVEL=residue run res-two 2
grep -q "^meta.*level=1" "$T/res-one/dump.txt" || fail "res-one: not residue level"
same res-one res-two

# a store keeps its shard count
"$SC" --db "$T/two/db" --shards 3 --shard 0 --in "@ipc://$T/x-bad" >"$T/bad.log" 2>&1 && fail "3 shards accepted on a 2-shard store"
grep -q "made with 2 shards" "$T/bad.log" || { cat "$T/bad.log"; fail "no clear error for a shard count mismatch"; }
echo "ok"
