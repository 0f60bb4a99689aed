#!/usr/bin/env bash
# Fault suite (meson suites `faults` and `integration`; `scripts/bench faults` tallies it). Each
# case ends with the store byte-identical to an undisturbed run, or with a clear error and nothing
# committed half-way. Prints "fault_case: NAME ok|FAILED" per case and "kill9_count: N".
#  1. disk_full: the scorer's store on a small tmpfs in a private mount namespace (unshare -m):
#     the scorer stops with an error naming the store and the free space, the store still opens
#     (only whole commits in it); after the disk is grown the restarted scorer completes the store
#     byte-identical to the reference (the reader re-sends what is missing).
#  2. chaos: one run of reader -> 2 encoders -> scorer (GO enrichment, interpretation) -> 2
#     interpreters in which a random stage is killed -9 at random times ($FAULT_KILLS times,
#     seeded by $FAULT_SEED) and restarted: the store equals the reference.
#  3. hostile messages into that run's scorer while it works (garbage, truncated, foreign version,
#     NaN batch, out-of-range seq, absurd feature count, forged ends, a forged answer, a 200 MB
#     message): the store still equals the reference.
# The reference: the same pipeline undisturbed.
set -uo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
KILLS=${FAULT_KILLS:-12}; SEED=${FAULT_SEED:-$RANDOM}
T=$(mktemp -d /tmp/protsae-faults.XXXXXX)
cleanup() { kill -9 $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT
P=$B/cli/protsae RD=$B/stages/reader/protsae-reader EN=$B/stages/encoder/protsae-encoder
SC=$B/stages/scorer/protsae-scorer IN=$B/stages/interpreter/protsae-interpreter INJ=$B/tests/integration/wire_inject
die() { echo "FAIL: $*" >&2; exit 1; }
failed=0; kills=0
verdict() { if [ "$2" = ok ]; then echo "fault_case: $1 ok"; else echo "fault_case: $1 FAILED ($3)"; failed=$((failed + 1)); fi; }
echo "seed: $SEED"
RANDOM=$SEED

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 6 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || die synth
"$B/stages/trainer/protsae-trainer" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 2 --d-sae 256 --k 8 \
  --batch-rows 128 --threads 1 --out "$T/sae" >"$T/train.log" 2>&1 || die train

# stage command lines of run NAME (store T/NAME.db, sockets T/NAME-*.ipc)
sc_cmd() { echo "$SC" --db "$2" --in "@ipc://$T/$1-sc.ipc" --control ">ipc://$T/$1-ctl.ipc" --data "$data" \
  --interp-out "@ipc://$T/$1-int.ipc" --n-interpret 24 --interp-min-active 10 --run-id features \
  --interp-timeout-ms 2000 --commit-batches 2 "${@:3}"; }
en_cmd() { echo "$EN" --sae "$T/sae/best" --in ">ipc://$T/$1-rd.ipc" --out ">ipc://$T/$1-sc.ipc" --producer "enc-$2" \
  --run-id features; }
in_cmd() { echo "$IN" --in ">ipc://$T/$1-int.ipc" --results ">ipc://$T/$1-sc.ipc" --data "$data" --mode offline \
  --producer "interp-$2"; }
rd_cmd() { echo "$RD" --emb "$T/s/emb.npy" --fasta "$T/s/proteins.fasta" --ids "$T/s/proteins.ids" \
  --out "@ipc://$T/$1-rd.ipc" --control "@ipc://$T/$1-ctl.ipc" --consumers 0 --batch-rows 64 --run-id features \
  --linger-ms 5000; }

# reference
$(sc_cmd ref "$T/ref.db") 2>"$T/ref-sc.log" & sp=$!
for i in 0 1; do $(in_cmd ref $i) 2>"$T/ref-in$i.log" & done
for i in 0 1; do $(en_cmd ref $i) 2>"$T/ref-en$i.log" & done
$(rd_cmd ref) 2>"$T/ref-rd.log" &
wait $sp || die "reference scorer exit $?"
"$P" dump --db "$T/ref.db" --out "$T/ref.dump" || die "dump"
grep -q '^kv	interp/summary' "$T/ref.dump" || die "reference: not interpreted"
sleep 1; kill $(jobs -p) 2>/dev/null; wait 2>/dev/null

# 1. disk full
q() { printf '%q ' "$@"; }  # a command line for the generated script, quoted (">ipc://..." is no redirection)
case1() {
  command -v unshare >/dev/null && unshare -m true 2>/dev/null || { echo "fault_case: disk_full skipped (no unshare -m)"; return; }
  mkdir -p "$T/full"
  cat >"$T/full.sh" <<EOF
mount -t tmpfs -o size=2m tmpfs "$T/full" || exit 90
$(q $(sc_cmd full "$T/full/f.db" --min-free-mb 1)) 2>"$T/full-sc1.log" & sp=\$!
$(q $(en_cmd full 0)) 2>"$T/full-en0.log" &
$(q $(rd_cmd full)) 2>"$T/full-rd1.log" & rp=\$!
wait \$sp; echo "first=\$?"
kill -9 %2 \$rp 2>/dev/null; wait 2>/dev/null
"$P" dump --db "$T/full/f.db" >"$T/full-partial.dump" 2>"$T/full-partial.err"; echo "partial_dump=\$?"
mount -o remount,size=64m "$T/full"
$(q $(sc_cmd full "$T/full/f.db" --min-free-mb 1)) 2>"$T/full-sc2.log" & sp=\$!
$(q $(in_cmd full 0)) 2>"$T/full-in0.log" &
$(q $(in_cmd full 1)) 2>"$T/full-in1.log" &
$(q $(en_cmd full 0)) 2>"$T/full-en1.log" &
$(q $(rd_cmd full)) 2>"$T/full-rd2.log" &
wait \$sp; echo "second=\$?"
"$P" dump --db "$T/full/f.db" --out "$T/full.dump"; echo "dump=\$?"
kill \$(jobs -p) 2>/dev/null; wait 2>/dev/null
EOF
  timeout 300 unshare -m bash "$T/full.sh" >"$T/full.out" 2>&1
  local out; out=$(cat "$T/full.out")
  if echo "$out" | grep -q '^first=0'; then verdict disk_full FAILED "the scorer did not stop on a full disk"
  elif ! grep -q 'disk nearly full: .* KiB free' "$T/full-sc1.log"; then verdict disk_full FAILED "no clear error: $(tail -1 "$T/full-sc1.log")"
  elif ! echo "$out" | grep -q '^partial_dump=0'; then verdict disk_full FAILED "the store does not open after the stop"
  elif ! echo "$out" | grep -q '^second=0'; then verdict disk_full FAILED "restart after the disk grew failed"
  elif ! cmp -s "$T/ref.dump" "$T/full.dump"; then verdict disk_full FAILED "store after restart differs from the reference"
  else echo "disk full: stopped with '$(grep -o 'disk nearly full: [^(]*' "$T/full-sc1.log" | head -1)'; restart byte-identical"; verdict disk_full ok; fi
}
case1

# 2 + 3. chaos: random kill -9s while hostile messages arrive
declare -A pid cmd
start() { cmd[$1]=$2; $2 2>>"$T/chaos-$1.log" & pid[$1]=$!; }
start scorer "$(sc_cmd chaos "$T/chaos.db")"
start in0 "$(in_cmd chaos 0)"; start in1 "$(in_cmd chaos 1)"
start en0 "$(en_cmd chaos 0)"; start en1 "$(en_cmd chaos 1)"
start reader "$(rd_cmd chaos) --max-rate 6"  # ~8 s a pass: time for the kills
names=(scorer in0 in1 en0 en1 reader)
hostile=0; deadline=$((SECONDS + 240))
while [ $SECONDS -lt $deadline ]; do
  sleep "0.$((RANDOM % 9 + 1))"
  if ! kill -0 "${pid[scorer]}" 2>/dev/null; then
    wait "${pid[scorer]}"; rc=$?
    [ $rc -eq 0 ] && break
    start scorer "${cmd[scorer]}"  # killed: restart
  fi
  if [ $kills -lt "$KILLS" ]; then
    n=${names[$((RANDOM % ${#names[@]}))]}
    if kill -0 "${pid[$n]}" 2>/dev/null; then
      kill -9 "${pid[$n]}" 2>/dev/null && kills=$((kills + 1)) && echo "kill -9 $n (#$kills)"
      wait "${pid[$n]}" 2>/dev/null
      start "$n" "${cmd[$n]}"
    fi
  fi
  for n in in0 in1 en0 en1 reader; do  # the others: a dead one (not by us) is restarted too
    kill -0 "${pid[$n]}" 2>/dev/null || { wait "${pid[$n]}" 2>/dev/null; [ $? -ne 0 ] && start "$n" "${cmd[$n]}"; }
  done
  if [ $hostile -eq 0 ] && [ $kills -ge 3 ]; then
    "$INJ" ">ipc://$T/chaos-sc.ipc" garbage truncated version batch-nan batch-seq=9223372036854775808 \
      batch-nfeat=4000000000 eos-relayed=2 eos-relayed=4611686018427387904 result-unknown result-store \
      >"$T/inject.log" 2>&1 && hostile=1
    "$INJ" ">ipc://$T/chaos-sc.ipc" oversize=200 >>"$T/inject.log" 2>&1 && hostile=2
  fi
done
"$P" dump --db "$T/chaos.db" --out "$T/chaos.dump" 2>/dev/null
if kill -0 "${pid[scorer]}" 2>/dev/null; then verdict chaos FAILED "the scorer did not finish in 240 s"
elif ! cmp -s "$T/ref.dump" "$T/chaos.dump"; then verdict chaos FAILED "store differs from the reference after $kills kills"
else echo "chaos: $kills kill -9s, store byte-identical"; verdict chaos ok; fi
if [ $hostile -lt 2 ]; then verdict hostile FAILED "the messages could not be sent"
elif ! cmp -s "$T/ref.dump" "$T/chaos.dump"; then verdict hostile FAILED "store differs"
else verdict hostile ok; fi
echo "kill9_count: $kills"
[ $failed -eq 0 ] || die "$failed fault case(s) failed (seed $SEED)"
echo ok
