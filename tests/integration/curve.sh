#!/usr/bin/env bash
# Integration: CURVE on tcp:// (common/curve.h) and permissions on ipc://.
#  - `protsae keys` writes a cluster keypair (secret 0600) and refuses to overwrite it;
#  - reader -> encoder -> scorer over tcp://127.0.0.1 with the cluster key: the store is complete;
#  - the same run with attacks first: a peer without keys (wire_inject, plain) and a peer with
#    its own keypair (not on the allowed list) send forged batches and EndOfStreams to the
#    scorer's input, and a plain peer sends to the reader's control socket: all are refused
#    (protsae_auth_refused_total on the scorer's /metrics and the reader's, log lines) and the
#    store equals the undisturbed run's (protsae dump);
#  - an encoder with the wrong server key gets nothing from the reader (its handshake fails);
#  - a bound ipc:// socket file is mode 0600, in a directory created 0700.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
command -v curl >/dev/null || { echo "no curl: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
EN=$B/stages/encoder/protsae-encoder; SC=$B/stages/scorer/protsae-scorer; WI=$B/tests/integration/wire_inject
T=$(mktemp -d /tmp/protsae-curve.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
base=$((20000 + RANDOM % 20000))

# keys
"$P" keys --out "$T/keys" >"$T/keys.out" || fail "protsae keys"
"$P" keys --out "$T/keys" --name rogue >/dev/null || fail "protsae keys --name rogue"
[ "$(stat -c %a "$T/keys/protsae.key")" = 600 ] || fail "secret key mode $(stat -c %a "$T/keys/protsae.key"), not 600"
[ "$(wc -c <"$T/keys/protsae.pub")" -eq 41 ] || fail "public key file is not 40 characters + newline"
before=$(cat "$T/keys/protsae.key")
if "$P" keys --out "$T/keys" 2>"$T/keys.err"; then fail "protsae keys overwrote an existing keypair"; fi
grep -q "exists" "$T/keys.err" || fail "no 'exists' in: $(cat "$T/keys.err")"
[ "$before" = "$(cat "$T/keys/protsae.key")" ] || fail "the secret key changed"
echo "protsae keys: ok"
export PROTSAE_CURVE_SECRET="$T/keys/protsae.key"  # every stage below: the cluster keypair

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 3 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 1 --d-sae 128 --k 6 --batch-rows 128 --threads 1 \
  --seed 2 --out "$T/sae" >"$T/tr.out" 2>"$T/tr.err" || { tail "$T/tr.err"; fail train; }

metric() {  # metric PORT NAME
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="protsae_$2" '$1 ~ "^"m"({|$)" {print $2}'
}
# run NAME OFFSET [attack]: reader -> encoder -> scorer over tcp:// with CURVE
run() {
  local name=$1 o=$(($2 + base)) attack=${3:-} d=$T/$1
  mkdir -p "$d"
  local rd_ep=tcp://127.0.0.1:$o ctl_ep=tcp://127.0.0.1:$((o + 1)) sc_ep=tcp://127.0.0.1:$((o + 2))
  local sport=$((o + 3)) rport=$((o + 4))
  "$SC" --db "$d/db" --in "@$sc_ep" --control ">$ctl_ep" --resend-after-ms 700 --metrics-port $sport \
    >"$d/sc.log" 2>&1 &
  local sc=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$sport/metrics" >/dev/null && break; sleep 0.1; done
  [ "$(metric $sport auth_refused_total)" = 0 ] || fail "$name: scorer auth_refused_total not 0 at start"
  if [ -n "$attack" ]; then
    # (a plain peer retries its connection for the 5 s of its LINGER: several refusals; the log
    # shows the first 5 refusals, then one line per 10 s. A client refused by ZAP does not retry
    # and libzmq drops its queue, so a further send blocks for ever: hence the timeouts)
    # a peer with its own keypair and the right server key: the ZAP handler refuses its key
    PROTSAE_CURVE_SECRET="$T/keys/rogue.key" PROTSAE_CURVE_SERVER_PUBLIC="$T/keys/protsae.pub" \
      timeout -s KILL 8 "$WI" ">$sc_ep" batch-seq=0 eos-relayed=1 >"$d/rogue.log" 2>&1 || true
    local n1; n1=$(metric $sport auth_refused_total)
    [ "${n1:-0}" -ge 1 ] || { tail "$d/sc.log"; fail "$name: scorer auth_refused_total=$n1 after a rogue peer"; }
    grep -qF "refused client key $(cat "$T/keys/rogue.pub") from 127.0.0.1" "$d/sc.log" ||
      { tail "$d/sc.log"; fail "$name: the rogue key is not in the scorer's log"; }
    # a plain peer: its handshake fails (no CURVE); the forged messages stay in its queue
    timeout -s KILL 8 env -u PROTSAE_CURVE_SECRET "$WI" ">$sc_ep" batch-seq=0 batch-seq=1 eos-relayed=2 >"$d/plain.log" 2>&1 || true
    local n; n=$(metric $sport auth_refused_total)
    [ "${n:-0}" -gt "$n1" ] || { tail "$d/sc.log"; fail "$name: scorer auth_refused_total=$n after a plain peer (was $n1)"; }
    echo "$name: scorer refused $n1 attempts of the rogue peer, $((n - n1)) of the plain peer"
  fi
  "$EN" --sae "$T/sae/latest" --in ">$rd_ep" --out ">$sc_ep" --hwm 2 >"$d/e.log" 2>&1 &
  local en=$!
  if [ -n "$attack" ]; then
    # an encoder with a wrong server key: its handshake with the reader fails, it gets nothing
    PROTSAE_CURVE_SERVER_PUBLIC="$T/keys/rogue.pub" "$EN" --sae "$T/sae/latest" --in ">$rd_ep" --out ">$sc_ep" \
      --producer encoder-wrong --hwm 2 >"$d/ewrong.log" 2>&1 &
    local ew=$!
  fi
  "$R" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --batch-rows 16 --hwm 2 --out "@$rd_ep" \
    --control "@$ctl_ep" --consumers 1 --metrics-port $rport --max-rate $([ -n "$attack" ] && echo 20 || echo 0) \
    >"$d/rd.log" 2>&1 &
  local rd=$!
  if [ -n "$attack" ]; then
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$rport/metrics" >/dev/null && break; sleep 0.1; done
    # a forged EndOfStream to the reader's control socket from a peer without keys
    # (a refused peer's send blocks for ever: 5 s is enough for the refusal; the reader, paced at
    # 20 batches/s over 188, is still running then)
    timeout -s KILL 5 env -u PROTSAE_CURVE_SECRET "$WI" ">$ctl_ep" eos eos >"$d/ctl.log" 2>&1 || true
    local r; r=$(metric $rport auth_refused_total || true)
    [ "${r:-0}" -ge 1 ] || { tail "$d/rd.log"; fail "$name: reader auth_refused_total=$r after a plain peer on control"; }
    echo "$name: reader refused $r attempts (control), encoder-wrong got nothing so far"
  fi
  wait $sc || { tail "$d/sc.log"; fail "$name: scorer"; }
  kill -TERM $en 2>/dev/null || true; wait $en 2>/dev/null || true  # (it may have exited: stream finished)
  if [ -n "$attack" ]; then
    kill -TERM $ew 2>/dev/null || true; wait $ew 2>/dev/null || true
    grep -q "finished batches=0 " "$d/ewrong.log" || { tail "$d/ewrong.log"; fail "$name: the encoder with a wrong server key got batches"; }
  fi
  wait $rd || { tail "$d/rd.log"; fail "$name: reader"; }
  "$P" dump --db "$d/db" --out "$d/dump.txt" || fail "$name: dump"
  grep -q "^meta.*proteins=3000" "$d/dump.txt" || fail "$name: not every protein applied: $(head -1 "$d/dump.txt")"
}
run clean 0
echo "clean: store complete over CURVE ($(wc -l <"$T/clean/dump.txt") dump lines)"
run attacked 10 attack
cmp "$T/clean/dump.txt" "$T/attacked/dump.txt" || fail "the attacked run's store differs from the undisturbed run's"
grep -q "P99999" "$T/attacked/dump.txt" && fail "a forged protein reached the store"
echo "attacked: refused, store identical"

# ipc://: the bound socket file is 0600, its directory created 0700
env -u PROTSAE_CURVE_SECRET "$P" consume --in "@ipc://$T/ipcdir/sock" --quiet 1 >"$T/consume.log" 2>&1 &
cs=$!
for _ in $(seq 50); do [ -S "$T/ipcdir/sock" ] && break; sleep 0.1; done
[ -S "$T/ipcdir/sock" ] || { cat "$T/consume.log"; fail "no ipc socket file"; }
[ "$(stat -c %a "$T/ipcdir/sock")" = 600 ] || fail "ipc socket mode $(stat -c %a "$T/ipcdir/sock"), not 600"
[ "$(stat -c %a "$T/ipcdir")" = 700 ] || fail "ipc socket directory mode $(stat -c %a "$T/ipcdir"), not 700"
kill -TERM $cs; wait $cs 2>/dev/null || true
echo "ipc: socket 0600 in a 0700 directory"
echo OK
