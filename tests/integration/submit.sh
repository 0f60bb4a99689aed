#!/usr/bin/env bash
# Integration: `protsae submit` against a running annotation service head (protsae-reader --watch
# with --requests, native ESM2 on the tiny test model; no sink needed to take requests):
#  - a FASTA by its bytes (plain, gzip) and by its path lands in the drop directory as
#    NAME.fasta(.gz) + NAME.ready with the submitted bytes; the reply's key is NAME.<16 hex>, the
#    hash recomputed here (FNV-1a over the bytes, then the file separator) and equal to the one the
#    reader logs;
#  - a bad name is refused with the service's reason (exit 1);
#  - a proteome whose key is in the ledger (written here by hand) is answered "duplicate" (exit 0);
#  - no service at the endpoint: a clear error naming it after --timeout-ms (exit 1);
#  - `protsae status` on the reader's --metrics-port shows the proteome counts (2 in flight, at
#    --max-in-flight 2 without acknowledgements; 2 queued) and the ESM2 rates; --healthy 1 exits 1
#    when an endpoint does not answer.
# The reader's --out connects to an endpoint nobody binds: its batches wait in the socket's queue
# (a few messages, far below the high-water mark), so the reader streams without a consumer.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
tv=$SHARED/testvectors/esm2-tiny
[ -f "$tv/model.safetensors" ] || { echo "no test vectors: skip"; exit 77; }
command -v curl >/dev/null || { echo "no curl: skip"; exit 77; }
P=$B/cli/protsae; R=$B/stages/reader/protsae-reader
T=$(mktemp -d /tmp/protsae-submit.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

D=$T/drop; mkdir -p "$D" "$T/src"
cp "$tv/sequences.fasta" "$T/src/seq.fasta"
gzip -c "$tv/sequences.fasta" >"$T/src/seq.fasta.gz"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REQ="ipc://$T/sock/requests.ipc"
"$R" --watch "$D" --esm2 "$tv" --control "@ipc://$T/sock/control.ipc" --requests "@$REQ" \
  --out ">ipc://$T/sock/nobody.ipc" --interval-ms 200 --max-in-flight 2 --linger-ms 500 \
  --metrics-port "$port" >"$T/reader.out" 2>"$T/reader.err" &
rp=$!

# The key the service must give: NAME.<FNV-1a 64 of the bytes, then a 0xff separator>.
key_of() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
h, p, m = 1469598103934665603, 1099511628211, (1 << 64) - 1
for b in open(sys.argv[2], 'rb').read():
    h = ((h ^ b) * p) & m
h = ((h ^ 0xff) * p) & m
print(f"{sys.argv[1]}.{h:016x}")
PY
}
# submit NAME [args...]: the reply's key; the reply must say accepted.
submit() {
  local name=$1; shift
  local rc=0
  "$P" submit --to "$REQ" --name "$name" "$@" >"$T/$name.reply" 2>"$T/$name.rerr" || rc=$?
  [ $rc = 0 ] || { cat "$T/$name.reply" "$T/$name.rerr" "$T/reader.err" >&2; fail "submit $name: exit $rc"; }
  grep -qx "status: accepted" "$T/$name.reply" || { cat "$T/$name.reply" >&2; fail "submit $name: not accepted"; }
  sed -n 's/^key: //p' "$T/$name.reply"
}

k_plain=$(submit plain --fasta "$T/src/seq.fasta")
k_gz=$(submit gzipped --fasta "$T/src/seq.fasta.gz")
(cd "$T/src" && "$P" submit --to "$REQ" --name bypath --path seq.fasta >"$T/bypath.reply" 2>"$T/bypath.rerr") ||
  { cat "$T/bypath.rerr"; fail "submit by a relative path"; }
k_path=$(sed -n 's/^key: //p' "$T/bypath.reply")
for f in plain.fasta plain.ready gzipped.fasta.gz gzipped.ready bypath.fasta bypath.ready; do
  [ -f "$D/$f" ] || { ls -la "$D"; fail "$f not in the drop directory"; }
done
cmp "$D/plain.fasta" "$T/src/seq.fasta" || fail "plain.fasta differs from the submitted bytes"
cmp "$D/gzipped.fasta.gz" "$T/src/seq.fasta.gz" || fail "gzipped.fasta.gz differs from the submitted bytes"
cmp "$D/bypath.fasta" "$T/src/seq.fasta" || fail "bypath.fasta differs from the file at the path"
for nk in "plain $k_plain $T/src/seq.fasta" "gzipped $k_gz $T/src/seq.fasta.gz" "bypath $k_path $T/src/seq.fasta"; do
  set -- $nk
  [[ $2 =~ ^$1\.[0-9a-f]{16}$ ]] || fail "$1: key '$2' is not NAME.<16 hex>"
  want=$(key_of "$1" "$3")
  [ "$2" = "$want" ] || fail "$1: key $2, recomputed $want"
  grep -q "request accepted name=$1 key=$2 duplicate=0" "$T/reader.err" || { cat "$T/reader.err"; fail "$1: the reader logs another key than $2"; }
done
echo "keys: $k_plain $k_gz $k_path"

# A bad name: refused with the reason, exit 1.
if "$P" submit --to "$REQ" --name ../evil --fasta "$T/src/seq.fasta" >"$T/bad.out" 2>"$T/bad.err"; then
  fail "a bad name was accepted: $(cat "$T/bad.out")"
fi
grep -q "refused proteome '../evil': proteome name '../evil': use 1-128 of" "$T/bad.err" || { cat "$T/bad.err"; fail "bad name: message"; }
grep -q "$REQ" "$T/bad.err" || fail "bad name: the message does not name the endpoint"
[ ! -e "$T/evil.fasta" ] && [ -z "$(ls "$D" | grep evil || true)" ] || fail "a bad name wrote a file"

# Already annotated: its key in the ledger -> duplicate, exit 0.
k_again=$(key_of again "$T/src/seq.fasta")
mkdir -p "$D/.reader/ledger"
printf 'by hand\n' >"$D/.reader/ledger/$k_again"
"$P" submit --to "$REQ" --name again --fasta "$T/src/seq.fasta" >"$T/again.reply" 2>"$T/again.rerr" ||
  { cat "$T/again.rerr"; fail "duplicate: exit status"; }
grep -qx "key: $k_again" "$T/again.reply" || { cat "$T/again.reply"; fail "duplicate: key"; }
grep -qx "status: duplicate" "$T/again.reply" || { cat "$T/again.reply"; fail "duplicate: not reported"; }

# Both --fasta and --path, or neither: usage (exit 2).
set +e
"$P" submit --to "$REQ" --name x --fasta "$T/src/seq.fasta" --path "$T/src/seq.fasta" >/dev/null 2>"$T/usage.err"; u1=$?
"$P" submit --to "$REQ" --name x >/dev/null 2>>"$T/usage.err"; u2=$?
set -e
[ $u1 = 2 ] && [ $u2 = 2 ] || { cat "$T/usage.err"; fail "usage errors exit $u1 $u2, not 2"; }

# No service: an error naming the endpoint after --timeout-ms.
t0=$(date +%s%N)
if "$P" submit --to "ipc://$T/nobody-here.ipc" --name plain --fasta "$T/src/seq.fasta" --timeout-ms 700 \
  >"$T/tmo.out" 2>"$T/tmo.err"; then fail "no service, yet exit 0"; fi
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "ipc://$T/nobody-here.ipc: no answer within 700 ms" "$T/tmo.err" || { cat "$T/tmo.err"; fail "timeout message"; }
[ $ms -ge 700 ] || fail "gave up after $ms ms, before --timeout-ms 700"
echo "timeout: $(cat "$T/tmo.err") ($ms ms)"

# The metrics: 2 proteomes in flight (never acknowledged: --max-in-flight 2), 2 queued (the third
# and the duplicate, which waits behind the in-flight limit like any other).
ok=0
for i in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$port/metrics" >"$T/m.txt" 2>/dev/null &&
     awk '/^protsae_proteomes_in_flight\{/{f=$2} /^protsae_proteomes_queued\{/{q=$2} END{exit !(f == 2 && q == 2)}' \
       "$T/m.txt"; then ok=1; break; fi
  sleep 0.1
done
[ $ok = 1 ] || { cat "$T/m.txt" "$T/reader.err" | tail -40; fail "metrics: not 2 in flight and 2 queued"; }
"$P" status --endpoints "127.0.0.1:$port" >"$T/status.out" || { cat "$T/status.out"; fail "protsae status"; }
cat "$T/status.out"
grep -Eq " reader +reader-0 .* ok$" "$T/status.out" || fail "status: no healthy reader line"
grep -Eq "^ +proteomes: queued 2, in flight 2, done 0, failed 0; [1-9][0-9]* residues/s, [1-9][0-9]* ESM2 tokens/s$" \
  "$T/status.out" || fail "status: the reader's proteome line"

# --healthy 1 (the compose healthchecks): 0 while the reader's /healthz is ok, 1 with a dead endpoint.
"$P" status --endpoints "127.0.0.1:$port" --healthy 1 >/dev/null || fail "status --healthy 1: a healthy reader, exit 1"
dead=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if "$P" status --endpoints "127.0.0.1:$port,127.0.0.1:$dead" --healthy 1 >"$T/dead.out"; then
  cat "$T/dead.out"; fail "status --healthy 1: an endpoint without an answer, exit 0"
fi
grep -q "2 endpoints answered, 1 healthy\|1 of 2 endpoints answered, 1 healthy" "$T/dead.out" || { cat "$T/dead.out"; fail "status: the count line"; }

kill -TERM $rp
wait $rp || { tail "$T/reader.err"; fail "reader did not exit 0 on SIGTERM"; }

# The compose file's annotate-reader (profile annotate) as a local process: its command and its
# PROTSAE_* environment (paths and ports rewritten for this host), CURVE on its tcp:// sockets.
# Its healthcheck command passes; a submit without the cluster key gets no answer, one with it is
# accepted into the drop directory.
SRC=${PROTSAE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then echo "python3-yaml missing: compose part skipped"; echo OK; exit 0; fi
C=$T/compose; mkdir -p "$C/drop" "$C/state"
"$P" keys --out "$C/secrets" >/dev/null || fail "protsae keys"
mport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 - "$SRC/compose/docker-compose.yml" "$C" "$tv" "$mport" >"$C/reader.env" 2>"$C/env.err" <<'PY' ||
import random, re, sys, yaml
path, tmp, model, mport = sys.argv[1:5]
svc = yaml.safe_load(open(path))["services"]["annotate-reader"]
assert svc["command"] == ["protsae-reader"], svc["command"]
assert "annotate" in svc["profiles"]
shift = random.randint(20000, 40000)
hc = svc["healthcheck"]["test"]
assert hc[:3] == ["CMD", "protsae", "status"], hc
print("HEALTHCHECK=" + " ".join(hc[2:]).replace("127.0.0.1:9100", "127.0.0.1:" + mport))
for k, v in svc["environment"].items():
    v = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(v))
    v = re.sub(r"tcp://\*:(\d+)", lambda m: "tcp://127.0.0.1:%d" % (int(m.group(1)) + shift), v)
    v = v.replace("/models/esm2", model).replace("/run/secrets", tmp + "/secrets")
    v = re.sub(r"^/(drop|state)", tmp + r"/\1", v)
    if k == "PROTSAE_METRICS_PORT": v = mport
    if k == "PROTSAE_METRICS_BIND": v = "127.0.0.1"
    print("%s=%s" % (k, v))
print("REQUESTS_PORT=%d" % (5572 + shift))
PY
  { cat "$C/env.err"; fail "compose file: annotate-reader"; }
grep -q "^PROTSAE_WATCH=$C/drop$" "$C/reader.env" && grep -q "^PROTSAE_ESM2=$tv$" "$C/reader.env" &&
  grep -q "^PROTSAE_CURVE_SECRET=$C/secrets/protsae.key$" "$C/reader.env" || { cat "$C/reader.env"; fail "annotate-reader environment"; }
hc=$(sed -n 's/^HEALTHCHECK=//p' "$C/reader.env"); rq=$(sed -n 's/^REQUESTS_PORT=//p' "$C/reader.env")
mapfile -t envs < <(grep '^PROTSAE_' "$C/reader.env")
env -i PATH="$PATH" HOME="$T" "${envs[@]}" PROTSAE_LINGER_MS=500 "$R" >"$C/reader.out" 2>"$C/reader.err" &
cp=$!
for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# shellcheck disable=SC2086  # the healthcheck's words
"$P" $hc >"$C/health.out" || { cat "$C/health.out" "$C/reader.err"; fail "the annotate-reader healthcheck fails"; }
if "$P" submit --to "tcp://127.0.0.1:$rq" --name nokey --fasta "$T/src/seq.fasta" --timeout-ms 1500 \
  >"$C/nokey.out" 2>"$C/nokey.err"; then fail "a submit without the CURVE key was answered"; fi
grep -q "no answer within 1500 ms .* CURVE answers only --curve-secret holders" "$C/nokey.err" ||
  { cat "$C/nokey.err"; fail "no key: message"; }
for i in $(seq 1 50); do grep -q "refused a peer on tcp://.*handshake" "$C/reader.err" && break; sleep 0.1; done
grep -q "refused a peer on tcp://.*handshake" "$C/reader.err" || { tail "$C/reader.err"; fail "the reader did not refuse the keyless peer"; }
"$P" submit --to "tcp://127.0.0.1:$rq" --name viacompose --fasta "$T/src/seq.fasta" \
  --curve-secret "$C/secrets/protsae.key" >"$C/key.out" 2>"$C/key.err" ||
  { cat "$C/key.err" "$C/reader.err"; fail "submit with the cluster key to the compose reader"; }
grep -qx "key: $(key_of viacompose "$T/src/seq.fasta")" "$C/key.out" || { cat "$C/key.out"; fail "compose reader: key"; }
cmp "$C/drop/viacompose.fasta" "$T/src/seq.fasta" || fail "compose reader: the drop directory"
[ ! -e "$C/drop/nokey.fasta" ] || fail "the keyless submit reached the drop directory"
grep -q "ledger $C/state/annotate-reader/ledger" "$C/reader.err" || fail "compose reader: ledger not under /state/annotate-reader"
kill -TERM $cp
wait $cp || { tail "$C/reader.err"; fail "compose reader did not exit 0 on SIGTERM"; }
echo "compose annotate-reader: healthcheck ok, CURVE: keyless submit unanswered, keyed accepted"
echo OK
