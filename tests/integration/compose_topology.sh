#!/usr/bin/env bash
# Integration: compose/docker-compose.yml's topology as local processes over tcp:// (loopback),
# each started with its service's command and PROTSAE_* environment from the file (hosts ->
# 127.0.0.1, fixed ports shifted to free ones, /data and /state -> temp dirs, the CURVE secrets
# /run/secrets -> a keypair from `protsae keys` in a temp dir), 3 encoders
# (--scale encoder=3), the feature store sharded over 2 scorers (PROTSAE_SCORER_SHARDS=2 and
# --scale scorer-shard=2: the scorer service is the front), metrics on; `protsae status` sees
# every stage mid-run; the store (read as one through the store API) holds
# every protein and equals a direct encode; the interpreter service (offline: no API key here)
# answers the scorer's interpretation requests into the store.
# With Debian's docker-compose installed, `docker-compose config` validates the file first.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}; SRC=${PROTSAE_SRC:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "python3-yaml missing: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-compose.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
if command -v docker-compose >/dev/null; then
  docker-compose -f "$SRC/compose/docker-compose.yml" config -q || fail "docker-compose config rejects the file"
  echo "docker-compose config: ok"
else
  echo "docker-compose not installed: file not validated by it (the topology still runs)"
fi
P=$B/cli/protsae
mkdir -p "$T/data" "$T/state"
"$P" keys --out "$T/secrets" >/dev/null || fail "protsae keys"
"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 5 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
ln -s "$T/s/emb.npy" "$T/data/emb.npy"; ln -s "$T/s/proteins.fasta" "$T/data/proteins.fasta"
ln -s "$data" "$T/data/annotations"
"$B/stages/trainer/protsae-trainer" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 2 --d-sae 128 --k 6 \
  --batch-rows 128 --threads 1 --out "$T/state/sae" >"$T/tr.out" 2>"$T/tr.err" || { tail "$T/tr.err"; fail train; }

# service -> "exe<TAB>KEY=VALUE..." lines, rewritten for this host
/usr/bin/python3 - "$SRC/compose/docker-compose.yml" "$T" "$B" >"$T/services.tsv" <<'PY'
import os, random, sys, yaml
path, tmp, build = sys.argv[1:4]
doc = yaml.safe_load(open(path))
shift = random.randint(20000, 40000)
exe = {"protsae-reader": "stages/reader/protsae-reader", "protsae-encoder": "stages/encoder/protsae-encoder",
       "protsae-scorer": "stages/scorer/protsae-scorer", "protsae-interpreter": "stages/interpreter/protsae-interpreter",
       "protsae-trainer": "stages/trainer/protsae-trainer"}
metrics = {"reader": 1, "encoder": 2, "scorer": 5, "interpreter": 6, "scorer-shard": 7}
for name in ["reader", "encoder", "scorer", "interpreter", "scorer-shard"]:
    svc = doc["services"][name]
    cmd = svc["command"][0]
    env = {}
    for k, v in (svc.get("environment") or {}).items():
        v = str(v)
        if v.startswith("${"):
            continue
        for host in ("reader", "scorer"):
            v = v.replace("tcp://%s:" % host, "tcp://127.0.0.1:")
        for port in ("5555", "5556", "5557", "5558", "5570"):
            v = v.replace(":" + port, ":%d" % (int(port) + shift))
        v = v.replace("/data", tmp + "/data").replace("/state", tmp + "/state")
        v = v.replace("/run/secrets", tmp + "/secrets")
        if k == "PROTSAE_METRICS_PORT":
            v = str(9100 + shift + metrics[name])
        if k == "PROTSAE_METRICS_BIND":
            v = "127.0.0.1"
        env[k] = v
    print("\t".join([name, os.path.join(build, exe[cmd])] + ["%s=%s" % kv for kv in sorted(env.items())]))
PY
svc() { awk -F'\t' -v s="$1" '$1==s' "$T/services.tsv"; }
start() {  # start SERVICE LOG [extra env...]
  local line; line=$(svc "$1"); local log=$2; shift 2
  IFS=$'\t' read -r -a f <<<"$line"
  # only the service's environment (plus PATH, and OPENBLAS_* so BLAS picks the same kernels as the check)
  env -i PATH="$PATH" HOME="$T" $(env | grep '^OPENBLAS_' || true) "${f[@]:2}" "$@" "${f[1]}" >"$log" 2>&1 &
}
grep -q "PROTSAE_SAE=$T/state/sae/best" "$T/services.tsv" || fail "encoder service: PROTSAE_SAE not rewritten"
for s in reader encoder scorer interpreter scorer-shard; do
  svc "$s" | grep -q "PROTSAE_CURVE_SECRET=$T/secrets/protsae.key" || fail "$s service: no CURVE secret"
done
start scorer "$T/scorer.log" PROTSAE_EXIT_WHEN_COMPLETE=0 PROTSAE_N_INTERPRET=20 PROTSAE_SHARDS=2; sc=$!  # stays up until told
# --scale scorer-shard=2: two replicas of the same service, each takes the first free shard
shp=$(svc scorer-shard | grep -o 'PROTSAE_METRICS_PORT=[0-9]*' | cut -d= -f2)
start scorer-shard "$T/shard-a.log" PROTSAE_SHARDS=2 PROTSAE_PRODUCER=shard-a; sha=$!
start scorer-shard "$T/shard-b.log" PROTSAE_SHARDS=2 PROTSAE_PRODUCER=shard-b PROTSAE_METRICS_PORT=$((shp + 1)); shb=$!
start interpreter "$T/interp.log"; ip=$!
# the scorer loads the GO data before it listens: the reader starts once the scorer's /metrics
# answers, so the stream is still running when the scorer is up (protsae status must see both)
sport=$(svc scorer | grep -o 'PROTSAE_METRICS_PORT=[0-9]*' | cut -d= -f2)
for i in $(seq 1 300); do curl -sf "http://127.0.0.1:$sport/metrics" >/dev/null 2>&1 && break; sleep 0.1; done
enc=()
for i in 1 2 3; do
  start encoder "$T/enc$i.log" PROTSAE_PRODUCER="encoder-$i" PROTSAE_METRICS_PORT=$(( $(svc encoder | grep -o 'PROTSAE_METRICS_PORT=[0-9]*' | cut -d= -f2) + i - 1 ))
  enc+=($!)
done
# paced (47 batches at 15/s) so its /metrics can be read while it streams
start reader "$T/reader.log" PROTSAE_BATCH_ROWS=64 PROTSAE_HWM=2 PROTSAE_MAX_RATE=15; rd=$!
ports=$(grep -o 'PROTSAE_METRICS_PORT=[0-9]*' "$T/services.tsv" | cut -d= -f2)
eb=$(svc encoder | grep -o 'PROTSAE_METRICS_PORT=[0-9]*' | cut -d= -f2)
eps=""; for p in $ports $((eb + 1)) $((eb + 2)) $((shp + 1)); do eps="$eps${eps:+,}127.0.0.1:$p"; done
rport=$(svc reader | grep -o 'PROTSAE_METRICS_PORT=[0-9]*' | cut -d= -f2)
# (the encoders exit once the reader says the stream is finished: every poll is kept, and the
# 3 encoders and the reader must have been seen mid-run, the scorer complete at the end)
max_enc=0; seen_reader=0
for i in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$rport/metrics" >"$T/reader.tmp" 2>/dev/null && mv "$T/reader.tmp" "$T/reader.prom"
  "$P" status --endpoints "$eps" >"$T/status.out" 2>&1 || true
  cat "$T/status.out" >>"$T/status.all"
  n_enc=$(grep -c ' encoder .* ok$' "$T/status.out" || true); [ "$n_enc" -gt $max_enc ] && max_enc=$n_enc
  grep -q " reader .* ok$" "$T/status.out" && seen_reader=1
  grep -q "scorer .*100.0%" "$T/status.out" && [ -s "$T/reader.prom" ] && break
  sleep 0.3
done
cat "$T/status.out"
grep -q "scorer .*100.0%" "$T/status.out" || fail "protsae status never showed the scorer complete"
[ "$max_enc" -eq 3 ] || fail "protsae status did not see the 3 encoders mid-run (at most $max_enc)"
[ $seen_reader -eq 1 ] || fail "protsae status does not see the reader"
grep -qE "^queue: [0-9]+ batches in flight .*applied [0-9]+\)" "$T/status.all" || fail "protsae status: no or wrong queue line"
[ -s "$T/reader.prom" ] || fail "reader /metrics never answered"
/usr/bin/python3 - "$T/reader.prom" <<'PY' || fail "reader /metrics is not Prometheus text"
import re, sys
ok = 0
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line or line.startswith("# HELP ") or line.startswith("# TYPE "): continue
    assert re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? [-+0-9.eEinfaINFA]+', line), line
    ok += line.startswith("protsae_rows_total{")
assert ok == 1
PY
# after the stream: the GO enrichment (PROTSAE_DATA), then the interpretation requests
for i in $(seq 1 600); do grep -q "interpretation complete" "$T/scorer.log" && break; sleep 0.2; done
grep -q "interpretation complete" "$T/scorer.log" || { tail "$T/scorer.log" "$T/interp.log"; fail "interpretation not complete"; }
kill -TERM $sc
wait $sc || { tail "$T/scorer.log"; fail scorer; }
for p in $sha $shb; do wait "$p" || { tail "$T"/shard-*.log; fail "a shard scorer failed"; }; done
grep -h "^.*shard [01] of 2 of" "$T"/shard-*.log | grep -o "shard [01] of 2" | sort | tr '\n' ' ' | grep -q "shard 0 of 2 shard 1 of 2" ||
  fail "the two shard replicas did not take shards 0 and 1"
for n in shard-a shard-b; do
  grep -q "scorer-shard $n .* ok$" "$T/status.all" || fail "protsae status never saw the shard scorer $n"
done
wait $ip || { tail "$T/interp.log"; fail interpreter; }  # the scorer's EndOfStream ends it
kill -TERM "${enc[@]}" 2>/dev/null || true; for p in "${enc[@]}"; do wait "$p" || true; done  # (they exit by themselves once the stream is finished)
wait $rd || { tail "$T/reader.log"; fail reader; }
"$P" features --db "$T/state/features.db" --limit 1 | grep -q "3000 proteins" || fail "store does not hold 3000 proteins"
"$P" encode-check --db "$T/state/features.db" --sae "$T/state/sae/best" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" \
  --batch-rows 64 | grep -q "^mismatches: 0$" || fail "store differs from a direct encode"
for i in 1 2 3; do grep -q "finished batches=" "$T/enc$i.log" || fail "encoder $i did not run"; done
for i in 1 2 3; do grep -q "is finished (the last stage has every batch): exiting" "$T/enc$i.log" ||
  fail "encoder $i did not end with the stream (the reader's 'finished')"; done
grep -q "interpreter finished answered=[1-9]" "$T/interp.log" || { tail "$T/interp.log"; fail "the interpreter answered nothing"; }
grep -q "^interp" <("$P" features --db "$T/state/features.db" --dump 1) || fail "no interpretation in the store"
echo OK
