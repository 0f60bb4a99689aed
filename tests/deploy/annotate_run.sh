# tests/deploy/annotate_run.sh — run d of the deploy test (sourced by deploy.sh, which provides
# P, B, SHARED, T, tag, COMPOSE, log, fail, secs, ms, cids, save_logs, show_logs): the compose
# file's `annotate` profile for real.
# On the host: an SAE on the tiny test-vector ESM2 (d 64) and its feature store with GO enrichment
# (protsae embed -> trainer; reader -> encoder -> scorer). Then, in run-d/ (models/{esm2,sae,
# features.db} read-only, data/, drop/, annotated/, state/, secrets/):
#   up --profile annotate --scale annotate-encoder=2; every container turns healthy (the file's
#   healthchecks, probed every 2 s here); proteome `new` submitted over tcp:// with the cluster
#   CURVE key (`protsae submit` in a container on the compose network), proteome `other` (the same
#   sequences under another name) dropped as a file + .ready; the annotator SIGKILLed while they
#   stream (its restart policy brings it back). Both are written, the inputs retired to drop/done/
#   with ledger entries, and the outputs are byte-identical to the image's own one-shot
#   `protsae annotate --once 1` on the same inputs and settings.

annotate_prepare() {
  local tv=$SHARED/testvectors/esm2-tiny a=$T/ann t
  [ -f "$tv/model.safetensors" ] || fail "run d: no test-vector ESM2 ($tv)"
  t=$(ms)
  mkdir -p "$a"
  # 1,000 human proteins of 50..400 residues (training), 150 others (the proteome annotated)
  zcat "$data/proteins.fasta.gz" | awk -v out="$a" '
    /^>/ { if (id != "" && length(seq) >= 50 && length(seq) <= 400) { n++; f = n <= 1000 ? out "/train.fasta" : out "/new.fasta";
             if (n <= 1150) print ">" id "\n" seq > f }
           id = substr($1, 2); seq = ""; next }
    { seq = seq $0 }'
  "$P" embed --model "$tv" --fasta "$a/train.fasta" --out "$a/emb" --threads 2 >"$a/embed.log" 2>&1 ||
    { cat "$a/embed.log"; fail "run d: embed"; }
  "$B/stages/trainer/protsae-trainer" --emb "$a/emb/layer2.npy" --ids "$a/emb/ids.txt" --epochs 10 --d-sae 128 --k 6 \
    --batch-rows 128 --threads 1 --seed 2 --out "$a/sae" >"$a/tr.out" 2>"$a/tr.err" || { tail "$a/tr.err"; fail "run d: train"; }
  local ep="ipc://$a/sock" sc
  "$B/stages/scorer/protsae-scorer" --db "$a/features.db" --in "@$ep-sc" --control ">$ep-ctl" --data "$data" >"$a/sc.log" 2>&1 &
  sc=$!
  "$B/stages/encoder/protsae-encoder" --sae "$a/sae/latest" --in ">$ep-rd" --out ">$ep-sc" >"$a/en.log" 2>&1 &
  "$B/stages/reader/protsae-reader" --emb "$a/emb/layer2.npy" --ids "$a/emb/ids.txt" --batch-rows 128 --out "@$ep-rd" \
    --control "@$ep-ctl" --consumers 1 >"$a/rd.log" 2>&1 &
  wait $sc || { tail "$a/sc.log"; fail "run d: scorer"; }
  log "run d: ESM2-tiny SAE (d_sae 128, k 6) and its feature store with GO enrichment, on the host, in $(secs "$t")"
}

annotate_run() {
  local d=$T/run-d proj=${tag}d a=$T/ann tv=$SHARED/testvectors/esm2-tiny t n img=${PROTSAE_IMAGE:-protsae:latest}
  annotate_prepare
  mkdir -p "$d"/{models/esm2,drop,annotated,state,data}
  cp "$SRC/compose/docker-compose.yml" "$d/"
  cp "$tv/config.json" "$tv/model.safetensors" "$d/models/esm2/"
  cp -rL "$a/sae/latest" "$d/models/sae"
  cp -r "$a/features.db" "$d/models/features.db"
  mkdir -p "$d/data/annotations"
  cp -L "$data"/* "$d/data/annotations/"
  "$P" keys --out "$d/secrets" >/dev/null
  # test knobs over the unchanged file: small paced batches (10 of new: ~2 s of stream, time to
  # kill the annotator mid-way), healthchecks every 2 s, no route out
  cat >"$d/docker-compose.override.yml" <<'EOF'
services:
  annotate-reader:
    environment:
      PROTSAE_BATCH_ROWS: "16"
      PROTSAE_TOKENS_PER_BATCH: "2048"
      PROTSAE_PACE_MS: "200"
      PROTSAE_INTERVAL_MS: "500"
      PROTSAE_LINGER_MS: "2000"
    healthcheck: {interval: 2s, start_period: 60s}
  annotate-encoder:
    environment:
      PROTSAE_MAX_BATCH_ROWS: "16"
    healthcheck: {interval: 2s}
  annotator:
    healthcheck: {interval: 2s}
networks:
  default:
    internal: true
EOF
  t=$(ms)
  (cd "$d" && "${COMPOSE[@]}" -p "$proj" --profile annotate up -d --no-build --scale annotate-encoder=2) >"$d/up.log" 2>&1 ||
    { cat "$d/up.log"; fail "run d: compose up --profile annotate"; }
  n=$(cids "$proj" annotate-encoder | wc -l)
  [ "$n" -eq 2 ] || fail "run d: $n annotate-encoder containers, not 2"
  local end=$(( $(date +%s) + 120 )) c st bad
  while :; do
    bad=0
    for c in $(docker ps -aq --filter "label=com.docker.compose.project=$proj"); do
      st=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")
      [ "$st" = healthy ] || bad=1
    done
    [ $bad = 0 ] && break
    [ "$(date +%s)" -lt $end ] || { save_logs d "$proj"; show_logs d; fail "run d: not every container healthy within 120 s"; }
    sleep 1
  done
  log "run d: up (reader, 2 encoders, annotator), all healthy in $(secs "$t")"

  # `new` by protsae submit over tcp:// + CURVE from the compose network; `other` as a dropped file
  docker run --rm --network "${proj}_default" -v "$d/secrets:/k:ro" -v "$a:/in:ro" "$img" \
    protsae submit --to tcp://annotate-reader:5572 --name new --fasta /in/new.fasta --curve-secret /k/protsae.key \
    >"$d/submit.out" 2>"$d/submit.err" || { cat "$d/submit.err"; fail "run d: protsae submit over tcp:// with CURVE"; }
  grep -qx "status: accepted" "$d/submit.out" || { cat "$d/submit.out"; fail "run d: submit not accepted"; }
  local key; key=$(sed -n 's/^key: //p' "$d/submit.out")
  cp "$a/new.fasta" "$d/drop/.other.fasta" && mv "$d/drop/.other.fasta" "$d/drop/other.fasta" && : >"$d/drop/other.ready"
  # the annotator SIGKILLed while proteomes are in flight (a crash: the restart policy applies)
  local an pid
  an=$(cids "$proj" annotator)
  for _ in $(seq 1 200); do
    grep -q "proteome start name=new" <(docker logs "$(cids "$proj" annotate-reader)" 2>&1) && break
    sleep 0.1
  done
  sleep 0.5
  pid=$(docker inspect -f '{{.State.Pid}}' "$an")
  [ "$pid" -gt 0 ] || fail "run d: annotator not running"
  kill -9 "$pid"
  log "run d: annotator ${an:0:12} SIGKILLed while proteome new streams"
  end=$(( $(date +%s) + 300 ))
  until [ -f "$d/annotated/new.jsonl" ] && [ -f "$d/annotated/other.jsonl" ] && [ -f "$d/drop/done/new.fasta" ] &&
        [ -f "$d/drop/done/other.fasta" ]; do
    [ "$(date +%s)" -lt $end ] || { save_logs d "$proj"; show_logs d; ls -R "$d/annotated" "$d/drop" >&2; fail "run d: proteomes not annotated within 300 s"; }
    sleep 1
  done
  log "run d: new and other annotated and retired in $(secs "$t")"
  [ "$(docker inspect -f '{{.RestartCount}}' "$an")" -ge 1 ] || fail "run d: the annotator was not restarted"
  [ -f "$d/state/annotate-reader/ledger/$key" ] || { ls "$d/state/annotate-reader/ledger" >&2; fail "run d: no ledger entry $key"; }
  n=$(grep -c '>' "$a/new.fasta")
  [ "$(wc -l <"$d/annotated/new.jsonl")" -eq "$n" ] || fail "run d: new.jsonl has $(wc -l <"$d/annotated/new.jsonl") lines, want $n"
  save_logs d "$proj"
  (cd "$d" && "${COMPOSE[@]}" -p "$proj" --profile annotate down -t 5 --remove-orphans >/dev/null 2>&1) || true
  [ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$proj")" ] || fail "run d: containers left after down"

  # the image's one-shot launcher on the same inputs and settings: the same bytes
  mkdir -p "$T/ref-d/drop"
  cp "$a/new.fasta" "$T/ref-d/drop/new.fasta"
  docker run --rm --network none -v "$d/models:/models:ro" -v "$d/data:/data:ro" -v "$T/ref-d:/ref" "$img" \
    protsae annotate --sae /models/sae --db /models/features.db --data /data/annotations --esm2 /models/esm2 \
    --esm2-threads 2 --tokens-per-batch 2048 --batch-rows 16 --encoders 2 --watch /ref/drop --out /ref/out --once 1 \
    >"$T/ref-d/annotate.log" 2>&1 || { tail "$T/ref-d/annotate.log"; fail "run d: protsae annotate --once 1 in the image"; }
  local f
  for f in new.tsv new.jsonl; do
    cmp "$T/ref-d/out/$f" "$d/annotated/$f" || fail "run d: $f differs from protsae annotate's"
  done
  cmp "$d/annotated/new.tsv" "$d/annotated/other.tsv" || fail "run d: other.tsv (the same sequences) differs from new.tsv"
  log "run d: $n proteins; new.tsv / new.jsonl byte-identical to protsae annotate --once 1 after the annotator's kill -9; down in $(secs "$t")"
}
