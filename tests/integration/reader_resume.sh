#!/usr/bin/env bash
# Integration: protsae-reader -> protsae consume as separate processes over ipc://: epochs repeat
# the data (every EndOfStream arrives with its counts matched), and SIGTERM mid-stream stops
# cleanly (exit 0, the consumer still gets the EndOfStream) with a state file from which a
# resumed reader sends exactly the rest, with the same rows as an uninterrupted run.
# Regression: a reader that exited right after its EndOfStream lost the tail of the stream
# whenever the consumer lagged (see wire.h, "Ending a stream").
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae; R=$B/stages/reader/protsae-reader
T=$(mktemp -d /tmp/protsae-it.XXXXXX); trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$P" synth --data "$data" --out "$T/s" --dim 24 --n-terms 40 --seed 7 --level both \
  --residue-proteins 30 --formats npy,safetensors,h5 >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
N=$(wc -l <"$T/s/proteins.ids")
[ "$N" -gt 1000 ] || fail "expected >1000 proteins, got $N"

# run_pipe NAME ENDPOINT_BIND ENDPOINT_CONNECT READER_ARGS...
run_pipe() {
  # the consumer binds and the reader connects (the zguide pipeline direction)
  local name=$1 ep_r=">${2#@}" ep_c="@${3#>}"; shift 3
  "$P" consume --in "$ep_c" --dump "$T/$name.dump" --timeout-ms 60000 >"$T/$name.out" 2>"$T/$name.cerr" &
  local c=$!
  sleep 0.3
  "$R" --out "$ep_r" "$@" 2>"$T/$name.rerr" || { cat "$T/$name.rerr"; fail "$name: reader failed"; }
  wait $c || { cat "$T/$name.cerr" "$T/$name.out" "$T/$name.rerr" | tail -20; fail "$name: consumer failed"; }
  grep -q "counts_match: yes" "$T/$name.out" || fail "$name: EndOfStream counts differ"
}
check_once() {  # every id of FILE exactly once in DUMP
  local dump=$1 ids=$2
  cut -d' ' -f3 "$dump" | sort >"$T/got"; sort "$ids" >"$T/want"
  cmp -s "$T/got" "$T/want" || { diff "$T/got" "$T/want" | head; fail "$dump: ids differ from $ids"; }
}

key() { cut -d' ' -f3- "$1" | sort; }  # id, rows, checksum, split flag

common=(--fasta "$T/s/proteins.fasta" --batch-rows 100 --val-fraction 0.2 --seed 5)
# reference: one uninterrupted epoch
run_pipe ref "@ipc://$T/r.ipc" ">ipc://$T/r.ipc" --emb "$T/s/emb.npy" "${common[@]}"
check_once "$T/ref.dump" "$T/s/proteins.ids"
# two epochs: every protein twice, with the same rows
run_pipe ep2 "@ipc://$T/e.ipc" ">ipc://$T/e.ipc" --emb "$T/s/emb.npy" "${common[@]}" --epochs 2
[ "$(wc -l <"$T/ep2.dump")" -eq $((2 * N)) ] || fail "2 epochs gave $(wc -l <"$T/ep2.dump") proteins"
cmp -s <(key "$T/ep2.dump") <(key "$T/ref.dump" | sed p) || fail "2 epochs: rows differ from the reference twice"

# SIGTERM mid-stream: slow consumer, small HWM; reader exits 0 and records its position
"$P" consume --in "@ipc://$T/k.ipc" --dump "$T/k1.dump" --delay-ms 20 --timeout-ms 60000 >"$T/k1.out" 2>&1 &
c=$!
sleep 0.3
"$R" --out ">ipc://$T/k.ipc" --emb "$T/s/emb.npy" "${common[@]}" --hwm 1 --batch-rows 50 \
  --state "$T/k.state" 2>"$T/k1.rerr" &
r=$!
sleep 1.5
kill -TERM $r
wait $r || { cat "$T/k1.rerr"; fail "reader did not exit 0 after SIGTERM"; }
wait $c || { cat "$T/k1.out"; fail "consumer of the stopped stream failed"; }
grep -q "reason=signal" "$T/k1.rerr" || fail "reader did not report the stop"
n1=$(wc -l <"$T/k1.dump")
[ "$n1" -gt 0 ] && [ "$n1" -lt "$N" ] || fail "stopped stream carried $n1 of $N proteins"
# resume: the rest, exactly once overall
run_pipe k2 "@ipc://$T/k2.ipc" ">ipc://$T/k2.ipc" --emb "$T/s/emb.npy" "${common[@]}" --batch-rows 50 \
  --state "$T/k.state" --resume
cat "$T/k1.dump" "$T/k2.dump" >"$T/k.dump"
check_once "$T/k.dump" "$T/s/proteins.ids"
cmp -s <(key "$T/k.dump") <(key "$T/ref.dump") || fail "resumed rows differ from the reference"
echo "reader_resume: epochs, SIGTERM+resume: ok"
