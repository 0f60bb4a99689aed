#!/usr/bin/env bash
# Integration: the second half of the dataflow. reader -> 2 encoders -> scorer, which runs the GO
# enrichment into its store when the stream is complete and hands interpretation requests to
# interpreters (OpenAI-compatible API served by llm_serve on 127.0.0.1).
#  1. reference: undisturbed, one interpreter, a server that always answers;
#  2. disturbed: the scorer killed -9 in the middle of writing the enrichment and restarted; two
#     interpreters share the queue and one is killed -9 while it works; the server answers 500 to
#     the first requests, garbage to others and is slow; malformed and forged messages are sent to
#     the scorer; a third interpreter is fed malformed requests. The store (statistics, codes,
#     enrichment, explanations, summaries: `protsae dump`) must equal the reference byte for byte.
#  3. a data directory without an ontology is refused at start, naming the directory.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-analysis.XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do echo "--- $f"; tail -n 15 "$f"; done >&2; exit 1; }
P=$B/cli/protsae
RD=$B/stages/reader/protsae-reader EN=$B/stages/encoder/protsae-encoder SC=$B/stages/scorer/protsae-scorer
IN=$B/stages/interpreter/protsae-interpreter SERVE=$B/tests/integration/llm_serve INJ=$B/tests/integration/wire_inject

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 5 --formats npy --max-proteins 3000 --quiet 1 \
  >"$T/synth.log" 2>&1 || fail synth
"$B/stages/trainer/protsae-trainer" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 2 --d-sae 1024 --k 8 \
  --batch-rows 128 --threads 1 --out "$T/sae" >"$T/train.log" 2>&1 || fail train

start_server() {  # NAME ARGS... -> sets PORT
  "$SERVE" "${@:2}" >"$T/$1.out" 2>"$T/$1.log" &
  for _ in $(seq 100); do grep -q '^port:' "$T/$1.out" 2>/dev/null && break; sleep 0.05; done
  PORT=$(awk '/^port:/{print $2}' "$T/$1.out")
  [ -n "$PORT" ] || fail "llm_serve $1 did not start"
}

scorer_args() {  # NAME
  echo --db "$T/$1.db" --in "@ipc://$T/$1-sc.ipc" --control ">ipc://$T/$1-ctl.ipc" --data "$data" \
    --interp-out "@ipc://$T/$1-int.ipc" --n-interpret 24 --interp-min-active 10 --run-id features \
    --interp-timeout-ms 3000 --interp-backoff-ms 200 --interp-attempts 12 --enrich-threads 2
}
interp() {  # NAME I PORT
  "$IN" --in ">ipc://$T/$1-int.ipc" --results ">ipc://$T/$1-sc.ipc" --data "$data" --mode openai \
    --base-url "http://127.0.0.1:$3/v1" --model test --max-retries 0 --parallel 2 --cache "$T/$1-cache-$2" --rpm 0 \
    --producer "interp-$2" 2>"$T/$1-interp-$2.log" &
}
feed() {  # NAME: reader + 2 encoders
  for i in 0 1; do
    "$EN" --sae "$T/sae/best" --in ">ipc://$T/$1-rd.ipc" --out ">ipc://$T/$1-sc.ipc" --producer "enc-$i" --run-id features \
      2>"$T/$1-enc-$i.log" &
  done
  "$RD" --emb "$T/s/emb.npy" --fasta "$T/s/proteins.fasta" --ids "$T/s/proteins.ids" --out "@ipc://$T/$1-rd.ipc" \
    --control "@ipc://$T/$1-ctl.ipc" --consumers 0 --batch-rows 256 --run-id features 2>"$T/$1-reader.log" &
}

# 1. reference
start_server srv-ref
# shellcheck disable=SC2046
"$SC" $(scorer_args ref) 2>"$T/ref-scorer.log" & spid=$!
interp ref 0 "$PORT"
feed ref
wait $spid || fail "reference scorer exit $?"
"$P" dump --db "$T/ref.db" --out "$T/ref.dump" || fail "dump ref"
grep -q '^kv	enrich/state	done' "$T/ref.dump" || fail "reference: enrichment not complete"
grep -q '^kv	interp/summary	' "$T/ref.dump" || fail "reference: no interpretation summary"
n_int=$(grep -c '^interp	' "$T/ref.dump"); n_enr=$(grep -c '^enrich	' "$T/ref.dump")
[ "$n_int" -eq 24 ] || fail "reference: $n_int explanations stored, 24 asked"
[ "$n_enr" -gt 100 ] || fail "reference: only $n_enr features with enrichment records"
n_sc=$(grep -c '"scored":true' "$T/ref.dump" || true); [ "$n_sc" -gt 0 ] || fail "reference: nothing scored"
echo "reference: $n_enr enrichment records, $n_int explanations"
sleep 1
for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
wait 2>/dev/null || true

# 2. disturbed
start_server srv-bad --fail-first 6 --garbage-first 5 --delay-ms 300  # slow enough that interpreter 1 is mid-work when killed (it batches what is queued)
# shellcheck disable=SC2046
"$SC" $(scorer_args bad) 2>"$T/bad-scorer.log" & spid=$!
interp bad 1 "$PORT"
interp bad 2 "$PORT"
i1=$(jobs -p | tail -n 2 | head -n 1)
feed bad
# kill -9 the scorer as soon as it writes the enrichment
for _ in $(seq 600); do grep -q 'significant pairs' "$T/bad-scorer.log" && break; sleep 0.01; done
grep -q 'significant pairs' "$T/bad-scorer.log" || fail "the scorer never reached the enrichment"
kill -9 $spid; wait $spid 2>/dev/null || true
state=$("$P" dump --db "$T/bad.db" | awk -F'\t' '$1=="kv" && $2=="enrich/state"{print $3}')
echo "scorer killed during the enrichment (store's enrich/state: '${state:-none}')"
mv "$T/bad-scorer.log" "$T/bad-scorer-1.log"
# shellcheck disable=SC2046
"$SC" $(scorer_args bad) 2>"$T/bad-scorer.log" & spid=$!
# kill -9 one interpreter once it has answered something
for _ in $(seq 300); do grep -q 'interpretation: ' "$T/bad-scorer.log" && break; sleep 0.05; done
sleep 1
kill -9 "$i1" 2>/dev/null || fail "interpreter 1 already gone"
echo "interpreter 1 killed mid-interpretation"
# malformed and forged messages into the scorer's input while it interprets
"$INJ" ">ipc://$T/bad-sc.ipc" garbage truncated version batch-nan result-unknown result-store result-badpred \
  >"$T/inject2.log" 2>&1 || fail "inject into the scorer"
# a third interpreter fed malformed requests by an injector, answering to the scorer
"$IN" --in ">ipc://$T/bad-inj.ipc" --results ">ipc://$T/bad-sc.ipc" --data "$data" --mode offline \
  --producer interp-3 2>"$T/bad-interp-3.log" & i3=$!
"$INJ" "@ipc://$T/bad-inj.ipc" garbage truncated request-bad request-tiny eos >"$T/inject3.log" 2>&1 || fail "inject requests"
wait $i3 || fail "the interpreter fed malformed requests exited $?"
wait $spid || fail "disturbed scorer exit $?"
"$P" dump --db "$T/bad.db" --out "$T/bad.dump" || fail "dump bad"
grep -q 'rejected from injector' "$T/bad-scorer.log" || fail "the NaN FeatureBatch was not rejected"
grep -q 'answer from injector: answer for unit 999999' "$T/bad-scorer.log" || fail "a forged answer was not reported"
grep -q "answer from injector: answer for store 'someone-else'" "$T/bad-scorer.log" || fail "another store's answer was not reported"
dropped=$(sed -n 's/.*finished complete=1.* dropped=\([0-9]*\).*/\1/p' "$T/bad-scorer.log")
[ "${dropped:-0}" -ge 3 ] || fail "garbage, truncated and foreign-version messages not counted as dropped (dropped=${dropped:-none})"
grep -q 'failed (attempt' "$T/bad-scorer.log" || fail "no failed answer was retried (500s / garbage)"
grep -q 'bad request' "$T/bad-interp-3.log" || fail "the interpreter did not report the malformed requests"
if ! cmp -s "$T/ref.dump" "$T/bad.dump"; then
  diff <(cut -c1-300 "$T/ref.dump") <(cut -c1-300 "$T/bad.dump") | head -20 >&2
  fail "the disturbed store differs from the reference"
fi
echo "disturbed run: store byte-identical to the reference ($(wc -l <"$T/ref.dump") dump lines)"

# 3. no ontology: refused at start with the directory named
mkdir -p "$T/noonto"
if "$SC" --db "$T/x.db" --in "@ipc://$T/x.ipc" --data "$T/noonto" 2>"$T/noonto.log"; then fail "accepted a data dir without ontology"; fi
grep -q "$T/noonto: no GO ontology" "$T/noonto.log" || fail "no-ontology message: $(tail -1 "$T/noonto.log")"
echo "ok"
