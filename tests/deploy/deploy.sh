#!/usr/bin/env bash
# Deploy test: compose/docker-compose.yml on a real Docker engine (scripts/docker-setup makes the
# engine and the protsae:latest image from the Debian mirror; exit 77 = skip when it cannot run).
# A small planted dataset and a tiny SAE are made on the host; each run gets a directory with a
# copy of the compose file, ./data and a fresh ./state, and the pipeline profile's
# reader -> encoder x3 -> scorer (GO enrichment at completion) -> interpreter x2 (offline mode;
# answers back into the scorer):
#   a. docker-compose up --scale encoder=3 --scale interpreter=2, undisturbed
#   b. the same in a fresh state dir, the scorer and one encoder SIGKILLed mid-stream (their
#      restart policy brings them back; the reader serves the missing batches again)
#   c. the same file on a one-node swarm (docker swarm init --advertise-addr 127.0.0.1):
#      docker stack deploy with PROTSAE_ENCODERS=3 / PROTSAE_INTERPRETERS=2 replicas; the stack
#      gets the file without its `profiles:` keys (its schema rejects them), nothing else changed
#   d. the annotate profile (the continuous annotation service): tests/deploy/annotate_run.sh
#   e. the feature store sharded over 3 scorers: PROTSAE_SCORER_SHARDS=3 docker-compose up
#      --scale scorer-shard=3 (the scorer service is the store's front), one shard SIGKILLed
#      mid-stream; its dump (read over the shards through the store API) is compared like a, b, c
# The scorer's --dump of the three stores (codes, per-feature stats, the GO enrichment, the
# interpretations) and `protsae features --dump 1` on the host must be byte-identical, and run a
# must equal a direct encode (protsae encode-check, run in the image). Run d checks its own outputs.
# Crashes are SIGKILLs of the container's process from the host: `docker kill` counts as a manual
# stop, which a restart policy never restarts.
# Needs: root, PROTSAE_BUILD (host binaries for synth / training / checks), PROTSAE_SHARED.
# Environment: KEEP=1 keeps the work dir; DEPLOY_RUNS="a b c d" selects runs; DEPLOY_SERVICES
# (default "reader encoder scorer interpreter") the pipeline services to run; PROTSAE_SRC the
# repo root; PROTSAE_IMAGE (protsae:latest).
# Traffic stays on the containers' own networks (internal: no route out) and loopback.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
SRC=${PROTSAE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
data=$SHARED/data/human-swissprot
RUNS=${DEPLOY_RUNS:-a b c d e}
PRUNS=$(for r in $RUNS; do case $r in a|b|c|e) printf '%s ' "$r" ;; esac; done)  # the pipeline runs
SERVICES=${DEPLOY_SERVICES:-reader encoder scorer interpreter}
N_ENC=3
N_INT=2
P=$B/cli/protsae

ms() { date +%s%3N; }
secs() { local d=$(( $(ms) - $1 )); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }
T0=$(ms)
log() { echo "deploy: [$(secs "$T0")] $*"; }
fail() { echo "deploy: FAIL: $*" >&2; exit 1; }

[ -f "$data/proteins.fasta.gz" ] || { echo "deploy: no shared data: skip"; exit 77; }
[ -x "$P" ] || fail "no $P (PROTSAE_BUILD=$B)"

# --- engine and image
t=$(ms)
set +e
"$SRC/scripts/docker-setup"
rc=$?
set -e
[ $rc -eq 77 ] && { echo "deploy: SKIP: scripts/docker-setup cannot provide a Docker engine here (reason above)"; exit 77; }
[ $rc -eq 0 ] || fail "scripts/docker-setup exited $rc"
log "engine and image ready in $(secs "$t")"
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
command -v "${COMPOSE[0]}" >/dev/null || fail "no docker-compose"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml missing (docker-compose depends on it)"

T=$(mktemp -d /tmp/protsae-deploy.XXXXXX)
tag=pd$$                  # compose project / stack name prefix: several runs may share the engine
swarm_ours=0
cleanup() {
  set +e
  local d p c n
  for d in "$T"/run-*; do
    [ -f "$d/docker-compose.yml" ] || continue
    p=$tag${d##*/run-}
    (cd "$d" && "${COMPOSE[@]}" -p "$p" --profile pipeline --profile annotate down -t 2 --remove-orphans >/dev/null 2>&1)
    c=$(docker ps -aq --filter "label=com.docker.compose.project=$p")
    [ -n "$c" ] && docker rm -f $c >/dev/null 2>&1
    for n in $(docker network ls -q --filter "label=com.docker.compose.project=$p"); do docker network rm "$n" >/dev/null 2>&1; done
  done
  if docker stack ls --format '{{.Name}}' 2>/dev/null | grep -qx "${tag}c"; then
    docker stack rm "${tag}c" >/dev/null 2>&1
    for _ in $(seq 1 60); do
      [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=${tag}c")" ] &&
        ! docker network ls --format '{{.Name}}' | grep -q "^${tag}c_" && break
      sleep 0.5
    done
  fi
  [ $swarm_ours -eq 1 ] && { docker swarm leave --force >/dev/null 2>&1; docker network rm docker_gwbridge >/dev/null 2>&1; }
  # images stay (protsae:latest, debian:12) for the next run; the state dirs are root-owned
  [ -n "${KEEP:-}" ] && echo "deploy: kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- data and a tiny SAE, on the host
. "$(dirname "$0")/annotate_run.sh"
t=$(ms)
if [ -n "$PRUNS" ]; then
"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 5 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
"$B/stages/trainer/protsae-trainer" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 2 --d-sae 128 --k 6 \
  --batch-rows 128 --threads 1 --out "$T/sae" >"$T/train.out" 2>"$T/train.err" || { tail "$T/train.err"; fail train; }
mkdir -p "$T/data/annotations"
cp "$T/s/emb.npy" "$T/s/proteins.fasta" "$T/s/proteins.ids" "$T/data/"
cp -L "$data"/* "$T/data/annotations/"
log "dataset (3000 proteins, dim 32) and SAE (d_sae 128, k 6) in $(secs "$t")"
fi

# The reader of this checkout may predate PROTSAE_CONSUMERS=0 (one EndOfStream per live consumer):
# then it is given the encoder count, which is what --scale / replicas make it.
probe=$(docker run --rm --network none "${PROTSAE_IMAGE:-protsae:latest}" protsae-reader --consumers 0 \
  --emb /nonexistent 2>&1 || true)
if grep -q "consumers .*must be >= 1" <<<"$probe"; then
  consumers=$N_ENC; log "the image's reader does not take --consumers 0: PROTSAE_CONSUMERS=$N_ENC"
else
  consumers=0
fi

# layout: run-X/{docker-compose.yml (the file, unchanged), docker-compose.override.yml (test knobs),
# data/ (copy), state/ (fresh, with the SAE)}
rows=16   # 3000 proteins -> 188 batches, paced at 25/s: ~7.5 s of stream, time to kill mid-way
layout() {
  local d=$T/run-$1
  mkdir -p "$d/state"
  cp "$SRC/compose/docker-compose.yml" "$d/"
  cp -al "$T/data" "$d/data"
  cp -r "$T/sae" "$d/state/sae"
  "$P" keys --out "$d/secrets" >/dev/null  # the file's CURVE secrets (a fresh cluster keypair)
  cat >"$d/docker-compose.override.yml" <<EOF
# test knobs over the unchanged file: paced small batches, the store dumped at completion,
# offline interpretation (no API calls), no route out of the network
services:
  reader:
    environment:
      PROTSAE_BATCH_ROWS: "$rows"
      PROTSAE_MAX_RATE: "25"
      PROTSAE_CONSUMERS: "$consumers"
      PROTSAE_LINGER_MS: "2000"
  scorer:
    environment:
      PROTSAE_DUMP: /state/dump.txt
  interpreter:
    environment:
      PROTSAE_MODE: offline
networks:
  default:
    internal: true
EOF
}
cids() { docker ps -q --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2"; }
# wait until a compose service's containers have all exited 0 (none restarting): wait_done PROJECT SERVICE SECS
wait_done() {
  local end=$(( $(date +%s) + $3 )) c st
  while [ "$(date +%s)" -lt $end ]; do
    c=$(docker ps -aq --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2")
    if [ -n "$c" ]; then
      st=$(docker inspect -f '{{.State.Status}}:{{.State.ExitCode}}:{{.State.Restarting}}' $c | sort -u)
      [ "$st" = "exited:0:false" ] && return 0
      case "$st" in exited:[1-9]*:false) echo "$2 exited: $st" >&2; return 1 ;; esac
    fi
    sleep 0.5
  done
  echo "$2 not done within $3 s" >&2; return 1
}
save_logs() {  # save_logs RUN PROJECT
  local d=$T/run-$1 c
  for c in $(docker ps -aq --filter "label=com.docker.compose.project=$2"); do
    docker logs "$c" >"$d/$(docker inspect -f '{{.Name}}' "$c" | tr -d /).log" 2>&1 || true
  done
}
show_logs() { for f in "$T/run-$1"/*.log; do echo "--- $f"; tail -15 "$f"; done >&2; }

compose_run() {  # compose_run RUN KILL(0|1) [SHARDS]   (SHARDS > 0: KILL SIGKILLs one shard instead)
  local r=$1 kill=$2 shards=${3:-0} d=$T/run-$1 proj=$tag$1 t svcs=$SERVICES scale=""
  layout "$r"
  t=$(ms)
  if [ "$shards" != 0 ]; then
    svcs="$svcs scorer-shard"; scale="--scale scorer-shard=$shards"
    # three more containers make `up` slower: a slower stream (~24 s) so the kill lands mid-stream
    sed -i 's/PROTSAE_MAX_RATE: "25"/PROTSAE_MAX_RATE: "8"/' "$d/docker-compose.override.yml"
  fi
  # shellcheck disable=SC2086
  (cd "$d" && PROTSAE_SCORER_SHARDS=$shards "${COMPOSE[@]}" -p "$proj" --profile pipeline up -d --no-build \
    --scale encoder=$N_ENC --scale interpreter=$N_INT $scale $svcs) \
    >"$d/up.log" 2>&1 || { cat "$d/up.log"; fail "run $r: compose up"; }
  local n; n=$(cids "$proj" encoder | wc -l)
  [ "$n" -eq $N_ENC ] || fail "run $r: $n encoder containers, not $N_ENC"
  if [ "$shards" != 0 ]; then
    n=$(cids "$proj" scorer-shard | wc -l)
    [ "$n" -eq "$shards" ] || fail "run $r: $n scorer-shard containers, not $shards"
  fi
  log "run $r: up ($N_ENC encoders${scale:+, $shards scorer shards}) in $(secs "$t")"
  if [ "$kill" = 1 ]; then
    sleep 2.5
    local sc en pid
    sc=$(cids "$proj" scorer); en=$(cids "$proj" encoder | head -1)
    [ "$shards" = 0 ] || { sc=$(cids "$proj" scorer-shard | shuf -n 1); en=""; }
    [ -n "$sc" ] || fail "run $r: nothing running to kill (the stream ended before the kill)"
    # SIGKILL of the container's process from the host = a crash: the restart policy applies
    # (`docker kill` would count as a manual stop, which on-failure does not restart)
    for c in $en $sc; do
      pid=$(docker inspect -f '{{.State.Pid}}' "$c")
      [ "$pid" -gt 0 ] || fail "run $r: container $c not running"
      kill -9 "$pid"
    done
    local what="scorer"; [ "$shards" = 0 ] || what="scorer shard"
    log "run $r: SIGKILLed $what ${sc:0:12}${en:+ and encoder ${en:0:12}} mid-stream"
  fi
  wait_done "$proj" scorer 300 || { save_logs "$r" "$proj"; show_logs "$r"; fail "run $r: scorer did not finish"; }
  if [ "$shards" != 0 ]; then
    wait_done "$proj" scorer-shard 60 || { save_logs "$r" "$proj"; show_logs "$r"; fail "run $r: a shard did not finish"; }
  fi
  log "run $r: scorer complete after $(secs "$t")"
  save_logs "$r" "$proj"
  if [ "$kill" = 1 ]; then
    local c rc
    for c in $sc $en; do
      rc=$(docker inspect -f '{{.RestartCount}}' "$c")
      [ "$rc" -ge 1 ] || fail "run $r: container ${c:0:12} was not restarted"
    done
    local so; so=$(grep -ho 'store [^ ]*: [0-9]* features, [0-9]* batches' "$d"/*scorer*.log | sort -k5,5n | tail -1 || true)
    log "run $r: the killed stages restarted; the restarted scorer found: ${so#*: }"
    grep -Eq ' [1-9][0-9]* batches' <<<"$so" || log "run $r: note: the scorer was killed before its first commit"
  fi
  (cd "$d" && "${COMPOSE[@]}" -p "$proj" --profile pipeline down -t 2 --remove-orphans >/dev/null 2>&1) || true
  [ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$proj")" ] || fail "run $r: containers left after down"
  log "run $r: down; run took $(secs "$t")"
}

stack_run() {  # stack_run RUN
  local r=$1 d=$T/run-$1 stack=$tag$1 t
  layout "$r"
  t=$(ms)
  if ! docker info --format '{{.Swarm.LocalNodeState}}' | grep -qx active; then
    docker swarm init --advertise-addr 127.0.0.1 >"$d/swarm.log" 2>&1 || { cat "$d/swarm.log"; fail "swarm init"; }
    swarm_ours=1
  fi
  # docker stack deploy rejects `profiles:` (and deploys every service): it gets the file with
  # that key removed and only $SERVICES, merged by itself with the same override
  /usr/bin/python3 - "$d/docker-compose.yml" $SERVICES >"$d/stack.yml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
keep = sys.argv[2:]
doc["services"] = {n: s for n, s in doc["services"].items() if n in keep}
for s in doc["services"].values():
    s.pop("profiles", None)
yaml.safe_dump(doc, sys.stdout, sort_keys=False)
PY
  (cd "$d" && PROTSAE_HOME=$d PROTSAE_ENCODERS=$N_ENC PROTSAE_INTERPRETERS=$N_INT docker stack deploy --resolve-image never \
     -c stack.yml -c docker-compose.override.yml "$stack") >"$d/deploy.log" 2>&1 ||
    { cat "$d/deploy.log"; fail "run $r: docker stack deploy"; }
  log "run $r: stack deployed on a one-node swarm in $(secs "$t")"
  local end=$(( $(date +%s) + 300 )) st=""
  while [ "$(date +%s)" -lt $end ]; do
    st=$(docker service ps "${stack}_scorer" --format '{{.CurrentState}}|{{.Error}}' 2>/dev/null | head -1)
    case "$st" in Complete*) break ;; esac
    sleep 1
  done
  local c
  for c in $(docker ps -aq --filter "label=com.docker.stack.namespace=$stack"); do
    docker logs "$c" >"$d/$(docker inspect -f '{{.Name}}' "$c" | tr -d / | cut -d. -f1,2).log" 2>&1 || true
  done
  for s in $SERVICES; do docker service ps --no-trunc "${stack}_$s" >>"$d/$s.tasks" 2>&1 || true; done
  case "$st" in Complete*) ;; *) show_logs "$r"; cat "$d"/*.tasks >&2; fail "run $r: scorer task not complete: $st" ;; esac
  local n; n=$(docker service ls --filter "name=${stack}_encoder" --format '{{.Replicas}}')
  log "run $r: scorer task complete after $(secs "$t") (encoder replicas $n)"
  docker stack rm "$stack" >/dev/null
  for _ in $(seq 1 60); do
    [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] &&
      ! docker network ls --format '{{.Name}}' | grep -q "^${stack}_" && break
    sleep 0.5
  done
  if [ $swarm_ours -eq 1 ]; then  # the swarm was ours: leave it, and the bridge its init made
    docker swarm leave --force >/dev/null; swarm_ours=0
    docker network rm docker_gwbridge >/dev/null 2>&1 || true
  fi
  log "run $r: stack removed, swarm left; run took $(secs "$t")"
}

for r in $RUNS; do
  case $r in
    a) compose_run a 0 ;;
    b) compose_run b 1 ;;
    e) compose_run e 1 3 ;;
    c) stack_run c ;;
    d) annotate_run ;;
    *) fail "unknown run $r" ;;
  esac
done

# --- the stores
t=$(ms)
ref=""
[ -n "$PRUNS" ] || { log "OK in $(secs "$T0")"; exit 0; }
for r in $PRUNS; do
  d=$T/run-$r
  [ -s "$d/state/dump.txt" ] || fail "run $r: the scorer wrote no dump"
  "$P" features --db "$d/state/features.db" --dump 1 >"$d/features.dump" 2>"$d/features.err" ||
    { cat "$d/features.err"; fail "run $r: protsae features --dump"; }
  "$P" features --db "$d/state/features.db" --limit 1 | grep -q "3000 proteins" || fail "run $r: store does not hold 3000 proteins"
  if [ -z "$ref" ]; then
    ref=$r
    cmp "$d/state/dump.txt" "$d/features.dump" || fail "run $r: protsae features --dump 1 differs from the scorer's --dump"
    # the image's own binary: the encoders' arithmetic (the host build may use other CPU kernels)
    docker run --rm --network none -v "$d/state:/state" -v "$d/data:/data:ro" "${PROTSAE_IMAGE:-protsae:latest}" \
      protsae encode-check --db /state/features.db --sae /state/sae/best --emb /data/emb.npy --ids /data/proteins.ids \
      --batch-rows $rows >"$d/encode-check.out" 2>&1 || true
    grep -q "^mismatches: 0$" "$d/encode-check.out" || { tail "$d/encode-check.out"; fail "run $r: store differs from a direct encode"; }
    continue
  fi
  cmp "$T/run-$ref/state/dump.txt" "$d/state/dump.txt" || fail "scorer dumps of runs $ref and $r differ"
  cmp "$T/run-$ref/features.dump" "$d/features.dump" || fail "stores of runs $ref and $r differ (protsae features --dump 1)"
done
# extension point: compare `protsae export` / enrichment / interpretation outputs of the runs here
n_en=$(grep -c '^enrich' "$T/run-$ref/state/dump.txt" || true)
n_in=$(grep -c '^interp' "$T/run-$ref/state/dump.txt" || true)
[ "$n_en" -gt 0 ] || fail "no GO enrichment in the store"
case " $SERVICES " in *" interpreter "*) [ "$n_in" -gt 0 ] || fail "no interpretation in the store" ;; esac
log "stores of runs $PRUNS: 3000 proteins, equal to a direct encode, GO enrichment of $n_en features, $n_in interpretations, byte-identical ($(wc -c <"$T/run-$ref/state/dump.txt") bytes dump) in $(secs "$t")"
log "OK in $(secs "$T0")"
