#!/usr/bin/env bash
# Integration: residue codes and the residue concept analysis in the pipeline (protsae-scorer
# --residue-top, --concepts; featstore.h "residue codes", stages/scorer/concepts.h):
# reader --level residue -> encoder -> scorer with a TSV of concept spans over the residue
# proteins and the real UniProt flat file swiss100.dat, then the same through a front and 2 shard
# scorers.
#  - the scorer logs its effective settings (config residue-top=5, concepts=..., concept-min-instances)
#    and what each concept file gave; the store holds residue codes (rcode lines), each feature's
#    best concept (concept lines) and concept/summary with the proteins evaluated;
#  - the sharded store dumps byte for byte as the one-scorer store, residue codes and concepts
#    included (the front runs the analysis on the merged store);
#  - a protein-level store with --concepts is left alone, said in the log;
#  - a broken concept file stops the scorer at start, naming the file and line.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot; flat=$SHARED/data/uniprot-flat/swiss100.dat
if [ ! -f "$data/proteins.fasta.gz" ] || [ ! -f "$flat" ]; then echo "no shared data: skip"; exit 77; fi
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
EN=$B/stages/encoder/protsae-encoder; SC=$B/stages/scorer/protsae-scorer
T=$(mktemp -d /tmp/protsae-concepts.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*/*.log; do echo "--- $f"; tail -n 8 "$f"; done >&2; exit 1; }

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 5 --formats npy --residue-formats npy \
  --level both --residue-proteins 80 --max-proteins 800 --quiet 1 >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; exit 1; }
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 2 --d-sae 96 --k 6 --batch-rows 64 --threads 1 \
  --seed 2 --out "$T/sae" >"$T/tr.out" 2>"$T/tr.err" || { tail "$T/tr.err"; exit 1; }
# concept spans over the residue proteins (seeded): three concepts, 1-3 instances a protein
awk 'BEGIN { srand(7); print "accession\tstart\tend\tconcept" }
     { n = 1 + int(rand() * 3); for (i = 0; i < n; i++) { a = 1 + int(rand() * 30); c = int(rand() * 3);
       printf "%s\t%d\t%d\t%s\n", $1, a, a + int(rand() * 10), c == 0 ? "DOMAIN:Alpha" : c == 1 ? "MOTIF:Beta" : "MOD_RES" } }' \
  "$T/s/residues.ids" >"$T/concepts.tsv"
CONCEPTS=$T/concepts.tsv,$flat

# run NAME SHARDS LEVEL   (SHARDS 0: one plain scorer)
run() {
  local name=$1 n=$2 level=$3 d=$T/$1
  mkdir -p "$d"
  local ep="ipc://$d/x" emb=$T/s/emb.npy ids=$T/s/proteins.ids
  [ "$level" = protein ] || { emb=$T/s/residues.npy; ids=$T/s/residues.ids; }
  local common=(--resend-after-ms 700 --commit-batches 1 --run-id features --residue-top 5)
  local front=(--db "$d/db" --in "@$ep-sc" --control ">$ep-ctl" --dump "$d/dump.txt" "${common[@]}"
               --concepts "$CONCEPTS" --concept-min-instances 5)
  [ "$n" = 0 ] || front+=(--shards "$n" --shard-out "@$ep-sh")
  "$SC" "${front[@]}" >"$d/front.log" 2>&1 &
  local fpid=$! shard=() k
  for ((k = 0; k < n; k++)); do
    "$SC" --db "$d/db" --shards "$n" --shard "$k" --in ">$ep-sh" --control ">$ep-ctl" "${common[@]}" \
      >"$d/shard$k.log" 2>&1 &
    shard+=($!)
  done
  "$EN" --sae "$T/sae/latest" --in ">$ep-rd" --out ">$ep-sc" --producer enc-1 --run-id features >"$d/e1.log" 2>&1 &
  local enc=$!
  "$R" --emb "$emb" --ids "$ids" --level "$level" --batch-rows 16 --out "@$ep-rd" --control "@$ep-ctl" \
    --consumers 1 --run-id features >"$d/rd.log" 2>&1 &
  local rd=$!
  wait $fpid || fail "$name: front scorer exit $?"
  for k in "${shard[@]}"; do wait "$k" || fail "$name: a shard scorer failed"; done
  kill -TERM $enc 2>/dev/null || true; wait $enc 2>/dev/null || true
  wait $rd || fail "$name: reader"
  [ -s "$d/dump.txt" ] || fail "$name: no dump"
}

run one 0 residue
L=$T/one/front.log
grep -q "config residue-top=5 " "$L" || fail "one: the scorer does not log residue-top"
grep -q "config concepts=$CONCEPTS " "$L" || fail "one: the scorer does not log concepts"
grep -q "config concept-min-instances=5 " "$L" || fail "one: the scorer does not log concept-min-instances"
grep -q "concepts: .*swiss100.dat: .* annotations kept" "$L" || fail "one: no load line for the flat file"
grep -q "^meta.*level=1.*residue_top=5" "$T/one/dump.txt" || fail "one: not a residue-level store with residue_top 5"
[ "$(grep -c '^rcode' "$T/one/dump.txt")" = 80 ] || fail "one: not one residue code per protein"
grep -q "^kv	concept/summary	{\"n_proteins\":80," "$T/one/dump.txt" || fail "one: no concept summary over 80 proteins"
grep -q "^concept	" "$T/one/dump.txt" || fail "one: no feature concept records"
grep "concepts: 80 proteins" "$L" || fail "one: no concept result line"
run two 2 residue
cmp "$T/one/dump.txt" "$T/two/dump.txt" || { diff "$T/one/dump.txt" "$T/two/dump.txt" | head -5; fail "two: dump differs"; }
"$P" dump --db "$T/two/db" | cmp - "$T/one/dump.txt" || fail "two: protsae dump through the store API differs"
echo "two shards: identical to one scorer, residue codes and concepts included"
run prot 0 protein
grep -q "is a protein-level store: no concept analysis" "$T/prot/front.log" || fail "prot: no word about the protein level"
grep -q "^concept	" "$T/prot/dump.txt" && fail "prot: concept records in a protein-level store"
# a broken concept file: refused at start with its name and line
printf 'P1\t5\tDOMAIN\n' >"$T/bad.tsv"
"$SC" --db "$T/bad-db" --in "@ipc://$T/x-bad" --concepts "$T/bad.tsv" >"$T/bad.log" 2>&1 && fail "a broken concept file accepted"
grep -q "$T/bad.tsv: line 1: want 4 tab-separated fields" "$T/bad.log" || { cat "$T/bad.log"; fail "no clear error for a broken file"; }
echo "ok"
