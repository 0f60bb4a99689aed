#!/usr/bin/env bash
# Integration: protsae annotate (continuous annotation of dropped proteomes).
# The model is the SAE and its feature store: reader -> encoder -> scorer --data (the scorer runs the
# GO enrichment into the store when its stream is complete); annotate reads enrichment and
# explanations through featstore.h only (--db), and refuses a store whose enrichment is not complete.
#  - a dropped proteome -> NAME.tsv + NAME.jsonl (every protein, its features, GO terms), a ledger entry;
#  - the same proteome dropped again -> skipped by the ledger, the output not written again;
#  - kill -9 mid-proteome, restart -> byte-identical to the undisturbed run's output;
#  - bad proteomes (NaN, missing embeddings, wrong dimension, an id not in the FASTA, a truncated npy)
#    -> a clear error naming file and record, moved to failed/, and the good one after them is
#    still processed (--once and the watching loop);
#  - the output cannot be written (disk full, OUT/.tmp not a directory) -> an output error naming the
#    path and errno, exit 1, the proteome left in the drop directory (not blamed, not moved);
#  - the Fmax of the written predictions recomputed here (CAFA protein-centric, python) equals
#    the one annotate reports.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
EN=$B/stages/encoder/protsae-encoder; SC=$B/stages/scorer/protsae-scorer
T=$(mktemp -d /tmp/protsae-annot.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 3 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
"$P" synth --data "$data" --out "$T/s2" --dim 32 --n-terms 60 --seed 4 --formats npy --max-proteins 400 --quiet 1 \
  >"$T/synth2.log" 2>&1 || { cat "$T/synth2.log"; fail synth2; }
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 3 --d-sae 128 --k 6 --batch-rows 128 --threads 1 \
  --seed 2 --out "$T/sae" >"$T/tr.out" 2>"$T/tr.err" || { tail "$T/tr.err"; fail train; }
# store NAME [scorer args...]: the SAE's feature store of the training proteins (reader -> encoder -> scorer)
tag=$(basename "$T")
store() {
  local name=$1 ep="ipc:///tmp/$tag-$1"; shift
  "$SC" --db "$T/$name.db" --in "@$ep-sc" --control ">$ep-ctl" "$@" >"$T/$name.sc.log" 2>&1 &
  local sc=$!
  "$EN" --sae "$T/sae/latest" --in ">$ep-rd" --out ">$ep-sc" --producer enc-1 >"$T/$name.en.log" 2>&1 &
  "$R" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --batch-rows 128 --out "@$ep-rd" --control "@$ep-ctl" \
    --consumers 1 >"$T/$name.rd.log" 2>&1 &
  wait $sc || { tail "$T/$name.sc.log"; fail "$name: scorer"; }
}
store f --data "$data"
store plain  # no --data: no enrichment
# a store without (complete) enrichment is refused, naming the store
set +e
"$P" annotate --sae "$T/sae/latest" --db "$T/plain.db" --data "$data" --watch "$T" --out "$T/o0" --once 1 \
  >"$T/a0.out" 2>"$T/a0.err"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "plain.db: the store's GO enrichment is not complete" "$T/a0.err" ||
  { cat "$T/a0.err"; fail "a store without enrichment was not refused (exit $rc)"; }
# the results API's export: the enrichment in the store as the TSVs the enrichment used to write
"$P" export --db "$T/f.db" --out "$T/exp" >"$T/exp.log" 2>&1 || { cat "$T/exp.log"; fail export; }
[ "$(head -1 "$T/exp/features_terms.tsv")" = "$(printf 'feature\tgo_id\tnamespace\tdepth\tname\tk\tn\tK\tN\tfold\tp\tln_p\tp_bonf\tq_bh\tf1\tf1_threshold')" ] ||
  fail "export: terms header"
[ "$(wc -l <"$T/exp/features_terms.tsv")" -gt 1 ] || fail "export: no significant (feature, term) pair in the store"
grep -q '"enrich/state": "done"' "$T/exp/features_summary.json" || fail "export: enrich/state not done"

# drop NAME DIR SYNTH_DIR: the proteome files (FASTA + npy + ids)
drop() { mkdir -p "$2"; cp "$3/proteins.fasta" "$2/$1.fasta"; cp "$3/emb.npy" "$2/$1.npy"; cp "$3/proteins.ids" "$2/$1.ids"; }
A=(--sae "$T/sae/latest" --db "$T/f.db" --data "$data" --evaluate 1)
ann() { "$P" annotate "${A[@]}" "$@"; }

# 1. undisturbed run
drop p1 "$T/d1" "$T/s"
ann --watch "$T/d1" --out "$T/o1" --once 1 >"$T/a1.out" 2>"$T/a1.err" || { cat "$T/a1.out"; tail "$T/a1.err"; fail "annotate p1"; }
cat "$T/a1.out"
[ -s "$T/o1/p1.tsv" ] && [ -s "$T/o1/p1.jsonl" ] || fail "no output for p1"
n=$(wc -l <"$T/o1/p1.jsonl"); [ "$n" -eq 3000 ] || fail "p1.jsonl has $n lines, want 3000"
nf=$(awk -F'\t' '$2=="feature"' "$T/o1/p1.tsv" | wc -l); ng=$(awk -F'\t' '$2=="go"' "$T/o1/p1.tsv" | wc -l)
[ "$nf" -gt 3000 ] && [ "$nf" -le 18000 ] || fail "feature rows $nf (k 6, 3000 proteins)"
[ "$ng" -gt 0 ] || fail "no GO rows"
# every protein of the FASTA appears, with at most k = 6 features, scores in (0, 1], no root term
awk -F'\t' 'NR>1 && $2=="feature"{c[$1]++} END{for (p in c) if (c[p] > 6) exit 1}' "$T/o1/p1.tsv" || fail "> k features"
awk -F'\t' 'NR>1 && $2=="go" && ($4 <= 0 || $4 > 1 || $3=="GO:0008150" || $3=="GO:0003674" || $3=="GO:0005575"){exit 1}' \
  "$T/o1/p1.tsv" || fail "GO score out of (0, 1] or a root term predicted"
[ "$(ls "$T/o1/ledger" | wc -l)" -eq 1 ] || fail "ledger entries: $(ls "$T/o1/ledger")"
[ -f "$T/d1/done/p1.npy" ] || fail "inputs not moved to done/"
for k in fmax naive_fmax fmax_bp fmax_mf fmax_cc naive_fmax_bp naive_fmax_mf naive_fmax_cc; do
  v=$(awk -F': ' -v k=$k '$1==k{print $2}' "$T/o1/p1.eval.txt")
  awk -v v="$v" 'BEGIN{exit !(v ~ /^[0-9.]+$/ && v > 0 && v <= 1)}' || fail "eval $k = '$v'"
done
# Fmax recomputed from the written TSV against the propagated truth (python, independent code)
/usr/bin/python3 - "$T/o1/p1.tsv" "$data" "$T/o1/p1.eval.txt" <<'PY' || fail "Fmax recomputation"
import gzip, sys, collections
tsv, data, ev = sys.argv[1:4]
parents = collections.defaultdict(set); cur = None; obs = set(); roots = {"GO:0008150", "GO:0003674", "GO:0005575"}
import glob
obo = sorted(glob.glob(data + "/go*.obo*"))[-1]
op = gzip.open if obo.endswith(".gz") else open
with op(obo, "rt") as f:
    stanza = None
    for line in f:
        line = line.strip()
        if line.startswith("["): stanza = line; cur = None; continue
        if stanza != "[Term]": continue
        if line.startswith("id: "): cur = line[4:]
        elif line.startswith("alt_id: "): pass
        elif line.startswith("is_a: "): parents[cur].add(line[6:].split()[0])
        elif line.startswith("relationship: part_of "): parents[cur].add(line.split()[2])
        elif line == "is_obsolete: true": obs.add(cur)
anc_cache = {}
def anc(t):
    if t in anc_cache: return anc_cache[t]
    s = {t}
    for p in parents.get(t, ()): s |= anc(p)
    anc_cache[t] = s; return s
pred = collections.defaultdict(dict); prots = set()
for line in open(tsv):
    c = line.rstrip("\n").split("\t")
    if c[1] == "feature": prots.add(c[0])
    if c[1] == "go": pred[c[0]][c[2]] = float(c[3])
truth = collections.defaultdict(set)
with gzip.open(data + "/go_annotations.tsv.gz", "rt") as f:
    for line in f:
        c = line.split("\t")
        if len(c) < 3 or ":" not in c[1] or c[0] not in prots: continue
        truth[c[0]].add(c[1])
# alt ids / obsolete ids: annotate maps them; this check keeps the plain ids of the file
for p in truth: truth[p] = set().union(*(anc(t) for t in truth[p])) - roots
ev_prots = [p for p in truth if truth[p]]
best = (0, 0)
for i in range(1, 101):
    tau = i / 100; ps = []; rs = []
    for p in ev_prots:
        P = {t for t, s in pred[p].items() if s >= tau - 1e-9}
        tp = len(P & truth[p])
        if P: ps.append(tp / len(P))
        rs.append(tp / len(truth[p]))
    if not ps: continue
    pr = sum(ps) / len(ps); rc = sum(rs) / len(ev_prots)
    fv = 2 * pr * rc / (pr + rc) if pr + rc else 0
    if fv >= best[0] and fv > 0: best = (fv, tau)
got = dict(l.split(": ") for l in open(ev).read().splitlines())
print(f"Fmax python {best[0]:.4f} at {best[1]:.2f}; annotate {got['fmax']} at {got['threshold']}")
assert abs(best[0] - float(got["fmax"])) < 2e-3, "Fmax differs"
assert 0 < best[0] <= 1
PY

# 2. the same proteome dropped again: skipped, not written again
cp "$T/o1/p1.tsv" "$T/p1.ref.tsv"; cp "$T/o1/p1.jsonl" "$T/p1.ref.jsonl"
before=$(stat -c '%i %Y %s' "$T/o1/p1.tsv" "$T/o1/p1.jsonl")
sleep 1.1
drop p1 "$T/d1" "$T/s"
ann --watch "$T/d1" --out "$T/o1" --once 1 >"$T/a2.out" 2>"$T/a2.err" || { tail "$T/a2.err"; fail "annotate p1 again"; }
cat "$T/a2.out"
grep -q '^p1: skipped: already annotated (ledger p1\.' "$T/a2.out" || fail "second drop not skipped by the ledger"
grep -q '^annotated: 0, skipped: 1, failed: 0' "$T/a2.out" || fail "second drop counts"
[ "$before" = "$(stat -c '%i %Y %s' "$T/o1/p1.tsv" "$T/o1/p1.jsonl")" ] || fail "output rewritten on the second drop"
[ "$(ls "$T/o1/ledger" | wc -l)" -eq 1 ] || fail "ledger grew on the second drop"
[ ! -e "$T/d1/p1.npy" ] || fail "second drop left in the drop directory"

# 3. kill -9 of each stage mid-proteome (paced: 12 batches of 256, 300 ms apart): the supervisor
# restarts it and the output is byte-identical to the undisturbed run's
for victim in annotator encoder reader; do
  drop p1 "$T/d2$victim" "$T/s"
  "$P" annotate "${A[@]}" --watch "$T/d2$victim" --out "$T/o2$victim" --once 1 --pace-ms 300 \
    >"$T/a3$victim.out" 2>"$T/a3$victim.err" &
  pid=$!
  # up to 60 s: under ASan on a loaded machine the reader's start (probe in a forked child, store
  # opening) has taken over 10 s
  for i in $(seq 1 1200); do grep -q '^p1: started' "$T/a3$victim.out" 2>/dev/null && break; sleep 0.05; done
  grep -q '^p1: started' "$T/a3$victim.out" || { cat "$T/a3$victim.out"; fail "the proteome did not start"; }
  if [ $victim = annotator ]; then
    if ann --watch "$T/d2$victim" --out "$T/o2$victim" --once 1 >"$T/lock.out" 2>"$T/lock.err"; then
      fail "a second annotate ran on a busy output directory"; fi
    grep -q "another protsae annotate is using" "$T/lock.err" || { cat "$T/lock.err"; fail "lock message"; }
  fi
  sleep "1.$((RANDOM % 8 + 1))"
  kill -0 $pid 2>/dev/null || fail "annotate finished before the kill (proteome too short)"
  vp=$(pgrep -P $pid -f "protsae-$victim" | head -1)
  [ -n "$vp" ] || fail "no $victim process under the launcher"
  [ ! -e "$T/o2$victim/p1.tsv" ] || fail "output visible before the proteome is complete"
  kill -9 "$vp"
  wait $pid || { tail "$T/a3$victim.err"; fail "annotate after kill -9 of the $victim"; }
  grep -q "$victim.*restarting" "$T/a3$victim.out" "$T/a3$victim.err" || fail "no restart of the $victim reported"
  cmp "$T/o2$victim/p1.tsv" "$T/p1.ref.tsv" || fail "TSV after kill -9 of the $victim differs from the undisturbed run's"
  cmp "$T/o2$victim/p1.jsonl" "$T/p1.ref.jsonl" || fail "JSONL after kill -9 of the $victim differs"
  cmp "$T/o2$victim/p1.eval.txt" "$T/o1/p1.eval.txt" || fail "eval after kill -9 of the $victim differs"
  [ "$(ls "$T/o2$victim/ledger" | wc -l)" -eq 1 ] && [ -f "$T/d2$victim/done/p1.npy" ] || fail "ledger / done after kill -9"
  echo "kill -9 of the $victim mid-proteome: restarted, byte-identical output"
done

# 3b. SIGTERM mid-proteome: stops between batches, exit 0, nothing published, inputs kept; a restart
# writes the same bytes
drop p1 "$T/d5" "$T/s"
"$P" annotate "${A[@]}" --watch "$T/d5" --out "$T/o5" --once 1 --pace-ms 300 >"$T/a7.out" 2>"$T/a7.err" &
pid=$!
for i in $(seq 1 1200); do grep -q '^p1: started' "$T/a7.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.5
kill -TERM $pid
wait $pid || fail "exit status after SIGTERM mid-proteome"
[ ! -e "$T/o5/p1.tsv" ] && [ -z "$(ls "$T/o5/ledger")" ] || fail "SIGTERM left output"
[ -f "$T/d5/p1.npy" ] || fail "SIGTERM moved the inputs"
ann --watch "$T/d5" --out "$T/o5" --once 1 >"$T/a8.out" 2>"$T/a8.err" || { tail "$T/a8.err"; fail "restart after SIGTERM"; }
cmp "$T/o5/p1.jsonl" "$T/p1.ref.jsonl" && cmp "$T/o5/p1.tsv" "$T/p1.ref.tsv" || fail "output after SIGTERM + restart differs"
echo "SIGTERM mid-proteome: exit 0, nothing published; restart byte-identical"

# 3c. the OUTPUT cannot be written (disk full: a 64 KiB tmpfs in a private mount namespace, when
# unshare works here; and always: a file where OUT/.tmp should be): the sink reports an output error
# with the path and errno and exits (restarted, then the run fails with its log's tail): exit 1,
# the proteome stays staged and its inputs in the drop directory (not in failed/)
outfault() {  # DROP OUT ERR-PATTERN [wrapper...]
  local d=$1 o=$2 pat=$3; shift 3
  set +e
  "$@" "$P" annotate "${A[@]}" --watch "$d" --out "$o" --state "$o.state" --once 1 >"$T/af.out" 2>"$T/af.err"; local rc=$?
  set -e
  [ $rc -eq 1 ] || { cat "$T/af.err"; fail "output fault in $o: exit $rc, want 1"; }
  grep -q "$pat" "$T/af.err" || { cat "$T/af.err"; fail "output fault in $o: expected /$pat/"; }
  ! grep -q "FAILED" "$T/af.err" || { cat "$T/af.err"; fail "output fault in $o blamed the input"; }
  [ -f "$d/p1.npy" ] && [ -f "$d/p1.fasta" ] && [ ! -e "$d/failed" ] && [ ! -e "$d/done" ] ||
    fail "output fault in $o: the inputs were moved"
}
if unshare -m true 2>/dev/null; then
  drop p1 "$T/d6" "$T/s"; mkdir -p "$T/o6"
  tmpfs64k() { unshare -m sh -c 'o=$1; shift; mount -t tmpfs -o size=64k tmpfs "$o" && exec "$@"' sh "$T/o6" "$@"; }
  outfault "$T/d6" "$T/o6" "$T/o6/.tmp/p1\.[0-9a-z.]*: cannot [a-z]* the output: No space left on device" tmpfs64k
  echo "disk full (64 KiB tmpfs): output error named, input kept, exit 1"
else
  echo "unshare -m not available: disk-full case skipped"
fi
drop p1 "$T/d7" "$T/s"; mkdir -p "$T/o7"; : >"$T/o7/.tmp"
outfault "$T/d7" "$T/o7" "$T/o7/.tmp.*: cannot [a-z]* the output: Not a directory" env
echo "a file where OUT/.tmp should be: output error named, input kept, exit 1"

# 4. bad proteomes, then a good one
d=$T/d3; mkdir -p "$d"
# npy writer (no numpy here): rows x cols float32, with a NaN at (row, col) when asked
mknpy() { /usr/bin/python3 - "$@" <<'PY'
import struct, sys
src, out, cols, nan_row = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
raw = open(src, "rb").read(); hl = struct.unpack("<H", raw[8:10])[0]; body = raw[10 + hl:]
d0 = len(body) // 4; rows_src = d0 // 32
vals = list(struct.unpack("<%df" % d0, body))
rows = [vals[i * 32:(i + 1) * 32] for i in range(rows_src)]
rows = [(r * 2)[:cols] for r in rows]
if nan_row >= 0: rows[nan_row][5] = float("nan")
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), cols)
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open(out, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    for r in rows: f.write(struct.pack("<%df" % cols, *r))
PY
}
cp "$T/s2/proteins.fasta" "$d/a_nan.fasta"; cp "$T/s2/proteins.ids" "$d/a_nan.ids"; mknpy "$T/s2/emb.npy" "$d/a_nan.npy" 32 17
cp "$T/s2/proteins.fasta" "$d/b_noemb.fasta"
cp "$T/s2/proteins.fasta" "$d/c_dim.fasta"; cp "$T/s2/proteins.ids" "$d/c_dim.ids"; mknpy "$T/s2/emb.npy" "$d/c_dim.npy" 48 -1
cp "$T/s2/proteins.fasta" "$d/d_id.fasta"; cp "$T/s2/emb.npy" "$d/d_id.npy"; sed '3s/.*/NOT_A_PROTEIN/' "$T/s2/proteins.ids" >"$d/d_id.ids"
cp "$T/s2/proteins.fasta" "$d/e_trunc.fasta"; head -c 20000 "$T/s2/emb.npy" >"$d/e_trunc.npy"; cp "$T/s2/proteins.ids" "$d/e_trunc.ids"
drop z_good "$d" "$T/s2"
set +e
ann --watch "$d" --out "$T/o3" --once 1 >"$T/a5.out" 2>"$T/a5.err"; rc=$?
set -e
cat "$T/a5.out"; grep FAILED "$T/a5.err" || true
[ $rc -eq 1 ] || fail "annotate --once with failed proteomes: exit $rc, want 1"
grep -q '^annotated: 1, skipped: 0, failed: 5' "$T/a5.out" || fail "counts with bad proteomes"
grep -q "a_nan: FAILED: .*a_nan.npy.*record 17.*NaN" "$T/a5.err" || fail "NaN error does not name file and record"
grep -q "b_noemb: FAILED: .*b_noemb.fasta: missing embeddings" "$T/a5.err" || fail "missing embeddings error"
grep -q "c_dim: FAILED: .*c_dim.npy.*record 0.*dimension 48 but the SAE expects 32" "$T/a5.err" || fail "dimension error"
grep -q "d_id: FAILED: .*d_id.npy: record 2: id 'NOT_A_PROTEIN' is not in .*d_id.fasta" "$T/a5.err" || fail "id error"
grep -q "e_trunc: FAILED: .*e_trunc.npy" "$T/a5.err" || fail "truncated npy error"
for n in a_nan b_noemb c_dim d_id e_trunc; do
  [ -s "$d/failed/$n.error" ] || fail "$n not listed in failed/"
  [ ! -e "$T/o3/$n.tsv" ] || fail "$n has output"
done
[ "$(wc -l <"$T/o3/z_good.jsonl")" -eq 400 ] || fail "the good proteome after the bad ones"
[ "$(ls "$T/o3/ledger")" = "$(ls "$T/o3/ledger" | grep '^z_good\.')" ] || fail "ledger lists a failed proteome"

# 5. watching: a bad and a good proteome dropped while it runs (NAME.ready marks a complete drop)
w=$T/d4; mkdir -p "$w"
"$P" annotate "${A[@]}" --watch "$w" --out "$T/o4" --interval-ms 100 --settle-ms 300 >"$T/a6.out" 2>"$T/a6.err" &
pid=$!
sleep 0.5
cp "$T/s2/proteins.fasta" "$w/bad.fasta"; touch "$w/bad.ready"
drop good "$w" "$T/s2"
for i in $(seq 1 200); do [ -s "$T/o4/good.jsonl" ] && [ -s "$w/failed/bad.error" ] && break; sleep 0.05; done
kill -TERM $pid; wait $pid || fail "watcher exit status after SIGTERM"
[ -s "$T/o4/good.jsonl" ] || { tail "$T/a6.err"; fail "watcher did not annotate the dropped proteome"; }
[ -s "$w/failed/bad.error" ] || fail "watcher did not fail the bad proteome"
cmp "$T/o4/good.tsv" "$T/o3/z_good.tsv" || fail "the same proteome under another name gives other rows"

# 5. parsers that crash inside a third-party library fail only their proteome: corrupt HDF5 files
# (50 random bytes overwritten, seeded; libhdf5 aborts the process on some of them) dropped beside
# a good proteome. Each is read in a child process: a crash fails that proteome (named, moved to
# failed/), the watcher goes on and annotates the good one.
"$P" synth --data "$data" --out "$T/s3" --dim 32 --n-terms 60 --seed 4 --formats h5 --max-proteins 300 --quiet 1 \
  >"$T/synth3.log" 2>&1 || { cat "$T/synth3.log"; fail synth3; }
h5=$(ls "$T"/s3/*.h5 | head -1)
mkdir -p "$T/d9"
/usr/bin/python3 - "$h5" "$T/d9" "$T/s3/proteins.fasta" <<'PY'
import os, random, shutil, sys
src, out, fasta = sys.argv[1:4]
data = open(src, "rb").read()
rng = random.Random(7)
for i in range(24):
    b = bytearray(data)
    at = rng.randrange(0, max(1, len(b) - 50))
    b[at:at + 50] = bytes(rng.randrange(256) for _ in range(50))
    open(os.path.join(out, "h%02d.h5" % i), "wb").write(b)
    shutil.copy(fasta, os.path.join(out, "h%02d.fasta" % i))
PY
drop zz "$T/d9" "$T/s"
set +e
ann --watch "$T/d9" --out "$T/o9" --once 1 --settle-ms 0 >"$T/a13.out" 2>"$T/a13.err"; rc=$?
set -e
[ $rc -le 1 ] || { tail "$T/a13.err"; fail "the watcher died on corrupt HDF5 inputs (exit $rc)"; }
[ -f "$T/o9/zz.tsv" ] || { tail "$T/a13.err"; fail "the good proteome after the corrupt ones was not annotated"; }
n_failed=$(ls "$T/d9/failed/" 2>/dev/null | grep -c '\.error$' || true)
n_crash=$(grep -l 'crashed' "$T/d9/failed/"*.error 2>/dev/null | wc -l)
n_done=$(ls "$T/o9/" | grep -c '^h.*\.tsv$' || true)
[ $((n_failed + n_done)) -eq 24 ] || fail "corrupt HDF5: $n_failed failed + $n_done annotated of 24"
if [ "$n_crash" -gt 0 ]; then
  grep -h 'crashed' "$T/d9/failed/"*.error | head -1 | grep -q '\.h5' || fail "a crash report does not name the file"
fi
echo "corrupt HDF5: $n_failed of 24 failed cleanly ($n_crash of them crashed the reading child), $n_done annotated; the good proteome after them annotated"
echo OK
