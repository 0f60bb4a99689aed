#!/usr/bin/env bash
# Integration: the annotation service from sequences alone (native ESM2, the test-vector model
# ../shared/testvectors/esm2-tiny, d 64): reader --watch --esm2 -> 2 encoders -> annotator.
#  - a FASTA-only proteome of 500 human proteins is annotated: every protein, in FASTA order, and the
#    same features as annotating the embeddings `protsae embed` wrote for it (>= 99% same top feature);
#  - kill -9 of the reader mid-proteome (ESM2 running): restarted, byte-identical output;
#  - bad FASTAs (a letter outside the alphabet, an empty record, a 50,000-residue sequence with
#    --long error, a duplicate id, a truncated gzip) fail with file, record and position named, the
#    next proteome is annotated; with --bad-records skip the bad records are skipped and counted.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
tv=$SHARED/testvectors/esm2-tiny; data=$SHARED/data/human-swissprot
[ -f "$tv/model.safetensors" ] && [ -f "$data/proteins.fasta.gz" ] || { echo "no test vectors / data: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
EN=$B/stages/encoder/protsae-encoder; SC=$B/stages/scorer/protsae-scorer
T=$(mktemp -d /tmp/protsae-annesm.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 2,000 human proteins of 50..400 residues (training), and 500 others (the new proteome)
zcat "$data/proteins.fasta.gz" | awk -v out="$T" '
  /^>/ { if (id != "" && length(seq) >= 50 && length(seq) <= 400) { n++; f = n <= 2000 ? out "/train.fasta" : out "/new.fasta";
           if (n <= 2500) print ">" id "\n" seq > f }
         id = substr($1, 2); seq = ""; next }
  { seq = seq $0 }'
[ "$(grep -c '>' "$T/new.fasta")" -eq 500 ] || fail "test proteome size"
"$P" embed --model "$tv" --fasta "$T/train.fasta" --out "$T/emb" --threads 2 >"$T/embed.log" 2>&1 || { cat "$T/embed.log"; fail embed; }
"$TR" --emb "$T/emb/layer2.npy" --ids "$T/emb/ids.txt" --epochs 20 --d-sae 256 --k 8 --batch-rows 128 --threads 1 \
  --seed 2 --out "$T/sae" >"$T/tr.out" 2>"$T/tr.err" || { ls "$T/emb"; tail "$T/tr.err"; fail train; }
tag=$(basename "$T"); ep="ipc:///tmp/$tag"
"$SC" --db "$T/f.db" --in "@$ep-sc" --control ">$ep-ctl" --data "$data" >"$T/sc.log" 2>&1 &
sc=$!
"$EN" --sae "$T/sae/latest" --in ">$ep-rd" --out ">$ep-sc" --producer enc-1 >"$T/en.log" 2>&1 &
"$R" --emb "$T/emb/layer2.npy" --ids "$T/emb/ids.txt" --batch-rows 128 --out "@$ep-rd" --control "@$ep-ctl" \
  --consumers 1 >"$T/rd.log" 2>&1 &
wait $sc || { tail "$T/sc.log"; fail "scorer"; }
A=(--sae "$T/sae/latest" --db "$T/f.db" --data "$data" --esm2 "$tv" --encoders 2 --batch-rows 64 --tokens-per-batch 2048)

# 1. FASTA alone
mkdir -p "$T/d1"; cp "$T/new.fasta" "$T/d1/new.fasta"
"$P" annotate "${A[@]}" --watch "$T/d1" --out "$T/o1" --once 1 --metrics-port 0 >"$T/a1.out" 2>"$T/a1.err" ||
  { cat "$T/a1.out" "$T/a1.err"; fail "annotate from the FASTA"; }
cat "$T/a1.out"
[ "$(wc -l <"$T/o1/new.jsonl")" -eq 500 ] || fail "new.jsonl: $(wc -l <"$T/o1/new.jsonl") lines, want 500"
diff <(grep '>' "$T/new.fasta" | cut -c2-) <(/usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]): print(json.loads(l)["protein"])' "$T/o1/new.jsonl") >/dev/null ||
  fail "proteins not in FASTA order"
# the same proteome with its embeddings from protsae embed: the same top features
"$P" embed --model "$tv" --fasta "$T/new.fasta" --out "$T/embn" >"$T/embedn.log" 2>&1 || fail "embed new"
mkdir -p "$T/d2"; cp "$T/new.fasta" "$T/d2/pre.fasta"; cp "$T/embn/layer2.npy" "$T/d2/pre.npy"; cp "$T/embn/ids.txt" "$T/d2/pre.ids"
"$P" annotate "${A[@]}" --watch "$T/d2" --out "$T/o2" --once 1 >"$T/a2.out" 2>"$T/a2.err" || { cat "$T/a2.err"; fail "annotate precomputed"; }
/usr/bin/python3 - "$T/o1/new.jsonl" "$T/o2/pre.jsonl" <<'PY'
import json, sys
a = {j["protein"]: j for j in map(json.loads, open(sys.argv[1]))}
b = {j["protein"]: j for j in map(json.loads, open(sys.argv[2]))}
assert set(a) == set(b), "different proteins"
same = sum(1 for p in a if a[p]["features"] and b[p]["features"] and a[p]["features"][0]["id"] == b[p]["features"][0]["id"])
print(f"top feature equal for {same} of {len(a)} proteins (native ESM2 in the service vs protsae embed)")
assert same >= 0.99 * len(a), same
PY

# 2. kill -9 of the reader while ESM2 runs: byte-identical
mkdir -p "$T/d3"; cp "$T/new.fasta" "$T/d3/new.fasta"
"$P" annotate "${A[@]}" --watch "$T/d3" --out "$T/o3" --once 1 --pace-ms 150 >"$T/a3.out" 2>"$T/a3.err" &
pid=$!
for i in $(seq 1 1200); do grep -q '^new: started' "$T/a3.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.7
vp=$(pgrep -P $pid -f protsae-reader | head -1); [ -n "$vp" ] || fail "no reader"
kill -9 "$vp"
wait $pid || { tail "$T/a3.err"; fail "annotate after kill -9 of the reader"; }
cmp "$T/o3/new.tsv" "$T/o1/new.tsv" && cmp "$T/o3/new.jsonl" "$T/o1/new.jsonl" || fail "output after kill -9 of the reader differs"
echo "kill -9 of the ESM2 reader mid-proteome: byte-identical output"

# 3. bad FASTAs, then a good one
d=$T/d4; mkdir -p "$d"
head -20 "$T/new.fasta" >"$d/good.fasta"
{ head -6 "$T/new.fasta"; printf '>BADLETTER\nMKTAYIAKQRQISFVKSHFSRQJLEERLGLIEVQ\n'; } >"$d/a_letter.fasta"
{ head -6 "$T/new.fasta"; printf '>EMPTY\n>NEXT\nMKTAYIAKQR\n'; } >"$d/b_empty.fasta"
{ head -4 "$T/new.fasta"; printf '>LONG\n'; /usr/bin/python3 -c 'print("A" * 50000)'; } >"$d/c_long.fasta"
{ head -6 "$T/new.fasta"; head -2 "$T/new.fasta"; } >"$d/d_dup.fasta"
gzip -c "$T/new.fasta" >"$T/new.fasta.gz"; head -c 3000 "$T/new.fasta.gz" >"$d/e_trunc.fasta.gz"
set +e
"$P" annotate "${A[@]}" --watch "$d" --out "$T/o4" --once 1 --long error >"$T/a4.out" 2>"$T/a4.err"; rc=$?
set -e
cat "$T/a4.out"; cat "$T/a4.err"
[ $rc -eq 1 ] || fail "bad FASTAs: exit $rc, want 1"
grep -q '^annotated: 1, skipped: 0, failed: 5' "$T/a4.out" || fail "counts with bad FASTAs"
grep -q "a_letter: FAILED: .*a_letter.fasta.*record 4.*BADLETTER.*'J' at residue 23" "$T/a4.err" || fail "letter error"
grep -q "b_empty: FAILED: .*b_empty.fasta.*record 4.*EMPTY" "$T/a4.err" || fail "empty record error"
grep -q "c_long: FAILED: .*c_long.fasta.*record 3.*LONG.*50000" "$T/a4.err" || fail "long sequence error"
grep -q "d_dup: FAILED: .*d_dup.fasta.*record 4.*duplicate" "$T/a4.err" || fail "duplicate id error"
grep -q "e_trunc: FAILED: .*e_trunc.fasta.gz" "$T/a4.err" || fail "truncated gzip error"
[ "$(wc -l <"$T/o4/good.jsonl")" -eq 10 ] || fail "the good proteome after the bad ones"
# skip policy: the bad records skipped and counted, the rest annotated (the truncated gzip still fails)
mkdir -p "$T/d5"; for f in a_letter b_empty d_dup; do cp "$d/failed/$f.fasta" "$T/d5/"; done
"$P" annotate "${A[@]}" --watch "$T/d5" --out "$T/o5" --once 1 --bad-records skip >"$T/a5.out" 2>"$T/a5.err" ||
  { cat "$T/a5.out" "$T/a5.err"; fail "skip policy"; }
cat "$T/a5.out"
grep -q '^annotated: 3, skipped: 0, failed: 0' "$T/a5.out" || fail "skip policy counts"
for f in a_letter:3 b_empty:4 d_dup:2; do  # a duplicated id: every record with it is skipped
  n=$(wc -l <"$T/o5/${f%:*}.jsonl"); [ "$n" -eq "${f#*:}" ] || fail "${f%:*}: $n proteins, want ${f#*:}"
done
grep -q "skipped 1 bad record" "$T/a5.out" || fail "skipped records not reported"

# 4. back-pressure: a burst of 6 proteomes with --max-in-flight 2 queues in the drop directory (the
# reader's /metrics: never more than 2 in flight, the rest queued), then every one is annotated
mkdir -p "$T/d6"
for i in 1 2 3 4 5 6; do awk -v i=$i '/^>/{k++} k > (i - 1) * 80 && k <= i * 80' "$T/new.fasta" >"$T/d6/b$i.fasta"; done
port=$((20000 + RANDOM % 20000))
"$P" annotate "${A[@]}" --watch "$T/d6" --out "$T/o6" --once 1 --max-in-flight 2 --pace-ms 60 --metrics-port $port \
  >"$T/a6.out" 2>"$T/a6.err" &
pid=$!
max_if=0; max_q=0; max_rss=0
while kill -0 $pid 2>/dev/null; do
  m=$(curl -s --max-time 1 "http://127.0.0.1:$port/metrics" || true)
  inf=$(echo "$m" | awk '$1 ~ /proteomes_in_flight/ {print int($2)}' | head -1); q=$(echo "$m" | awk '$1 ~ /proteomes_queued/ {print int($2)}' | head -1)
  [ -n "$inf" ] && [ "$inf" -gt $max_if ] && max_if=$inf
  [ -n "$q" ] && [ "$q" -gt $max_q ] && max_q=$q
  rp=$(pgrep -P $pid -f protsae-reader | head -1 || true)
  if [ -n "$rp" ]; then r=$(awk '/VmRSS/{print $2}' /proc/$rp/status 2>/dev/null || echo 0); [ "${r:-0}" -gt $max_rss ] && max_rss=$r; fi
  sleep 0.1
done
wait $pid || { cat "$T/a6.out" "$T/a6.err"; fail "burst"; }
grep -q '^annotated: 6, skipped: 0, failed: 0' "$T/a6.out" || { cat "$T/a6.out"; fail "burst counts"; }
echo "burst of 6 proteomes: at most $max_if in flight, up to $max_q queued, reader RSS at most $((max_rss / 1024)) MiB"
[ $max_if -ge 1 ] && [ $max_if -le 2 ] || fail "in flight $max_if, want 1..2"
[ $max_q -ge 3 ] || fail "the burst did not queue (max queued $max_q)"
echo OK
