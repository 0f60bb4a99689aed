#!/usr/bin/env bash
# Integration: protsae-trainer serves Prometheus metrics while it trains (--metrics-port): steps,
# rows, rate, loss, L0, dead fraction, validation MSE; /healthz answers; SIGTERM still exits 0; and
# `protsae status` shows its loss / L0 / dead %. Every line of metrics.jsonl is strict JSON (no bare
# nan), with and without a validation split (without one, the validation figures are null).
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
command -v curl >/dev/null || { echo "no curl: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer
T=$(mktemp -d /tmp/protsae-trm.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 3 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 100000 --d-sae 128 --k 4 --batch-rows 64 --threads 1 \
  --log-every 5 --eval-every 20 --out "$T/sae" --metrics-port "$port" >"$T/tr.out" 2>"$T/tr.err" &
tp=$!
ok=0
for i in $(seq 1 200); do
  if curl -sf "http://127.0.0.1:$port/metrics" >"$T/m.txt" 2>/dev/null &&
     awk '/^protsae_steps_total\{/{s=$2} /^protsae_val_mse\{/{v=$2} END{exit !(s > 40 && v > 0)}' "$T/m.txt"; then ok=1; break; fi
  sleep 0.1
done
[ $ok = 1 ] || { cat "$T/m.txt" "$T/tr.err" | tail; fail "no training progress in /metrics"; }
for k in rows_total rows_per_second loss l0 dead_fraction val_mse; do
  grep -Eq "^protsae_$k\{stage=\"trainer\",producer=\"trainer-0\"\} [0-9.e+-]+$" "$T/m.txt" || { cat "$T/m.txt"; fail "metric $k"; }
done
awk '/^protsae_l0\{/{exit !($2 > 3.9 && $2 <= 4.0)}' "$T/m.txt" || fail "L0 of a k=4 TopK SAE: $(grep '^protsae_l0' "$T/m.txt")"
curl -sf "http://127.0.0.1:$port/healthz" | grep -q ok || fail "/healthz"
"$P" status --endpoints "127.0.0.1:$port" >"$T/status.out" || fail "protsae status"
cat "$T/status.out"
grep -Eq " trainer +trainer-0 .* [0-9.]+ +4\.0 +[0-9.]+ ok$" "$T/status.out" || fail "status: trainer line lacks loss / L0 / dead"
kill -TERM $tp
wait $tp || { tail "$T/tr.err"; fail "trainer did not exit 0 on SIGTERM"; }
# metrics.jsonl: strict JSON on every line (Python's json accepts NaN / Infinity unless told not to)
"$TR" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 1 --d-sae 128 --k 4 --batch-rows 64 --threads 1 \
  --log-every 5 --eval-every 20 --val-fraction 0 --out "$T/sae0" >"$T/tr0.out" 2>"$T/tr0.err" ||
  { tail "$T/tr0.err"; fail "trainer without a validation split"; }
/usr/bin/python3 - "$T/sae/metrics.jsonl" "$T/sae0/metrics.jsonl" <<'PY' || fail "metrics.jsonl is not strict JSON"
import json, sys
def refuse(c): raise ValueError("non-JSON constant " + c)
for n, path in enumerate(sys.argv[1:]):
    lines = open(path).read().splitlines()
    kinds = set()
    for i, line in enumerate(lines, 1):
        try:
            r = json.loads(line, parse_constant=refuse)
        except ValueError as e:
            sys.exit("%s line %d: %s: %s" % (path, i, e, line))
        if not isinstance(r, dict) or not isinstance(r.get("step"), int): sys.exit("%s line %d: no step: %s" % (path, i, line))
        kinds.add(r.get("kind"))
        if n == 1 and r.get("val_mse") is not None: sys.exit("%s line %d: val_mse without validation rows: %s" % (path, i, line))
    want = {"train", "eval", "final"} if n == 1 else {"train", "eval"}
    if not want <= kinds: sys.exit("%s: kinds %s, want %s" % (path, sorted(kinds), sorted(want)))
    print("%s: %d lines, strict JSON" % (path, len(lines)))
PY
echo OK
