#!/usr/bin/env bash
# Integration: the annotation sink stage (protsae-annotator) over sockets, fed by a fake reader
# (annot_feed: the proteome's EmbeddingBatches with its key and FASTA record numbers, batches in
# reverse order) through a real protsae-encoder:
#  - the sink's NAME.tsv / NAME.jsonl / NAME.eval.txt are byte-identical to `protsae annotate`'s
#    for the same proteome, SAE and store when the encoder sees annotate's batches (the same engine,
#    from the encoder's codes); shuffled proteins are written back in FASTA order;
#  - duplicates dropped; a batch held back is asked for (ResendRequest) and the proteome completes;
#  - kill -9 of the sink mid-stream, restart: the missing batches are asked for again, the same bytes;
#  - the proteome fed again after it is done: acknowledged again, nothing rewritten;
#  - a failed proteome (reader's "error: ..." end) is acknowledged and recorded, no output;
#  - /metrics counts proteomes done and failed, duplicates and resends.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
EN=$B/stages/encoder/protsae-encoder; SC=$B/stages/scorer/protsae-scorer; AN=$B/stages/annotator/protsae-annotator
FEED=$B/tests/integration/annot_feed
T=$(mktemp -d /tmp/protsae-annotator.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
tag=$(basename "$T"); ep="ipc:///tmp/$tag"

# the model: an SAE and its feature store with complete enrichment (as annotate.sh builds it)
"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 3 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 3 --d-sae 128 --k 6 --batch-rows 128 --threads 1 \
  --seed 2 --out "$T/sae" >"$T/tr.out" 2>"$T/tr.err" || { tail "$T/tr.err"; fail train; }
"$SC" --db "$T/f.db" --in "@$ep-sc" --control ">$ep-ctl0" --data "$data" >"$T/sc.log" 2>&1 &
sc=$!
"$EN" --sae "$T/sae/latest" --in ">$ep-rd0" --out ">$ep-sc" --producer enc-0 >"$T/en0.log" 2>&1 &
"$R" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --batch-rows 128 --out "@$ep-rd0" --control "@$ep-ctl0" \
  --consumers 1 >"$T/rd.log" 2>&1 &
wait $sc || { tail "$T/sc.log"; fail "scorer"; }

# the reference: protsae annotate on the same proteome
mkdir -p "$T/drop"
cp "$T/s/proteins.fasta" "$T/drop/p1.fasta"; cp "$T/s/emb.npy" "$T/drop/p1.npy"; cp "$T/s/proteins.ids" "$T/drop/p1.ids"
"$P" annotate --sae "$T/sae/latest" --db "$T/f.db" --data "$data" --evaluate 1 --watch "$T/drop" --out "$T/ref" \
  --once 1 >"$T/ref.out" 2>"$T/ref.err" || { tail "$T/ref.err"; fail "protsae annotate"; }

# the sink and one encoder; the fake reader binds the encoder's input and the sink's control
sink() {
  "$AN" --in "@$ep-an" --control ">$ep-ctl" --db "$T/f.db" --data "$data" --evaluate 1 --out "$T/out" \
    --state "$T/state" --resend-after-ms 1000 --metrics-port "$MPORT" "$@" >>"$T/an.log" 2>&1 &
  an=$!
}
MPORT=$((20000 + RANDOM % 20000))
sink
"$EN" --sae "$T/sae/latest" --in ">$ep-rd" --out ">$ep-an" --producer enc-1 >"$T/en.log" 2>&1 &
feed() { "$FEED" --out "@$ep-rd" --control "@$ep-ctl" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" "$@"; }
same() {  # same DIR: the sink's output equals the reference
  for f in p1.tsv p1.jsonl p1.eval.txt; do
    cmp "$T/ref/$f" "$1/$f" || fail "$1/$f differs from protsae annotate's"
  done
}

# 1. batches of 256 in FASTA order (what protsae annotate encodes at a time: the same codes, bit for
#    bit) sent in reverse order, duplicates, batch 5 held back until asked for
feed --key p1.00000000000000a1 --batch-rows 256 --dups 1 --skip-seq 5 >"$T/feed1.out" 2>&1 ||
  { cat "$T/feed1.out"; tail "$T/an.log"; fail "feed 1"; }
grep -q "^resend p1.00000000000000a1: 1 seqs" "$T/feed1.out" || { cat "$T/feed1.out"; fail "the held-back batch was not asked for"; }
grep -q "^acked p1.00000000000000a1" "$T/feed1.out" || fail "no ack"
same "$T/out"
echo "sink output == protsae annotate output (tsv, jsonl, eval.txt)"
m=$(curl -s "http://127.0.0.1:$MPORT/metrics")
echo "$m" | grep -qE '^protsae_proteomes_done_total\{[^}]*\} 1$' || { echo "$m" | grep protsae_ ; fail "metrics: done"; }
echo "$m" | grep -qE '^protsae_duplicate_batches_total\{[^}]*\} [1-9]' || fail "metrics: duplicates"
echo "$m" | grep -qE '^protsae_resend_requests_total\{[^}]*\} [1-9]' || fail "metrics: resends"

# 2. the same proteome again: acknowledged again, nothing rewritten
t1=$(stat -c '%i %y' "$T/out/p1.tsv")
sleep 1.1
feed --key p1.00000000000000a1 --batch-rows 256 >"$T/feed2.out" 2>&1 || { cat "$T/feed2.out"; fail "feed 2 (already done)"; }
[ "$(stat -c '%i %y' "$T/out/p1.tsv")" = "$t1" ] || fail "a committed proteome was written again"

# 3. proteins shuffled (as the ESM2 source sends them, by length), batches of 128: written back in
#    FASTA order. The encoder then sees other batches, so an activation can differ from annotate's
#    in its last digit (sgemm blocking), and tied terms swap: the order of the proteins and their
#    features are compared, not bytes.
feed --key p1.00000000000000b2 --shuffle 1 >"$T/feed3.out" 2>&1 || { cat "$T/feed3.out"; fail "feed 3 (shuffled)"; }
cols() { cut -f1 "$1" | uniq; awk -F'\t' '$2 == "feature" {print $1, $3}' "$1" | sort; }
cols "$T/ref/p1.tsv" >"$T/ref.cols"; cols "$T/out/p1.tsv" >"$T/shuf.cols"
cmp "$T/ref.cols" "$T/shuf.cols" || fail "shuffled proteins: not written back in FASTA order with the same features"
mkdir -p "$T/shuf"; cp "$T/out/p1."* "$T/shuf/"

# 4. kill -9 of the sink mid-stream (the same shuffled stream, another key), restart: the same bytes
feed --key p1.00000000000000c3 --shuffle 1 --pace-ms 150 --timeout-s 180 >"$T/feed4.out" 2>&1 &
fd=$!
sleep 2
kill -9 $an; wait $an 2>/dev/null || true
rm -f "$T/out/p1.tsv" "$T/out/p1.jsonl" "$T/out/p1.eval.txt"
sleep 1
sink
wait $fd || { cat "$T/feed4.out"; tail -20 "$T/an.log"; fail "feed 4 (kill -9 of the sink)"; }
for f in p1.tsv p1.jsonl p1.eval.txt; do cmp "$T/shuf/$f" "$T/out/$f" || fail "$f after kill -9 + restart differs"; done
echo "kill -9 of the sink mid-stream + restart: byte-identical"

# 5. a failed proteome
feed --key bad.00000000000000d4 --fail "bad.fasta: record 7 (id X1): invalid residue 'J' at position 12" \
  >"$T/feed5.out" 2>&1 || { cat "$T/feed5.out"; fail "feed 5 (failed proteome)"; }
[ ! -e "$T/out/bad.tsv" ] || fail "a failed proteome has output"
grep -q 'proteome failed key=bad.00000000000000d4.*record 7 (id X1)' "$T/an.log" || fail "failure not logged"
m=$(curl -s "http://127.0.0.1:$MPORT/metrics")
echo "$m" | grep -qE '^protsae_proteomes_failed_total\{[^}]*\} 1$' || { echo "$m" | grep protsae_; fail "metrics: failed"; }
echo "$m" | grep -qE '^protsae_proteomes_in_flight\{[^}]*\} 0$' || fail "metrics: in flight"
kill $an; wait $an || fail "the sink did not exit 0 on SIGTERM"
echo OK
