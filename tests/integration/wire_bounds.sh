#!/usr/bin/env bash
# Integration: what arrives off the wire is untrusted (DESIGN.md). A running protsae-scorer gets
#  - a 200 MB message: libzmq drops it unread (ZMQ_MAXMSGSIZE, --max-message-mb): RSS stays small;
#  - FeatureBatches with seq 2^63 and 2^40, n_features 4e9 and 3M: rejected, counted per reason;
#  - forged EndOfStreams (next seq 3 below an applied batch, 2^62): ignored, the stream stays open;
# and keeps running: it applies a genuine batch, exits 0 on SIGTERM, and a restart on the same
# store completes once the real stream is in, without hanging on anything stored.
set -euo pipefail
B=${PROTSAE_BUILD:?}
S=$B/stages/scorer/protsae-scorer; I=$B/tests/integration/wire_inject
command -v curl >/dev/null || { echo "no curl: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-it.XXXXXX); trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$T"/scorer*.log >&2 || true; exit 1; }
PORT=$((20000 + RANDOM % 20000))
EP="ipc://$T/s.ipc"

"$S" --db "$T/db" --in "@$EP" --metrics-port "$PORT" --commit-ms 100 --resend-after-ms 100000 2>"$T/scorer.log" &
sp=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$sp/status"; }
rss0=$(rss)
metric() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="protsae_$1" '$1 ~ "^"m"({|$)" {print $2}'; }

# 1. a 200 MB message: sampled every 50 ms while it is sent
"$I" ">$EP" oversize=200 &
ip=$!
peak=$rss0
while kill -0 $ip 2>/dev/null; do r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.05; done
wait $ip || true
kill -0 $sp || fail "scorer died on a 200 MB message"
echo "RSS before ${rss0} kB, peak while a 200 MB message arrived ${peak} kB"
[ $((peak - rss0)) -lt 65536 ] || fail "RSS grew by $((peak - rss0)) kB on a 200 MB message"

# 2. out-of-bounds batches, then a genuine one, then forged ends
t0=$(date +%s%N)
"$I" ">$EP" batch-seq=0x8000000000000000 batch-seq=0x10000000000 batch-nfeat=4000000000 batch-nfeat=3000000 \
  batch-seq=5 eos-relayed=3 eos-relayed=0x4000000000000000 || fail inject
sleep 0.5
kill -0 $sp || fail "scorer died on out-of-bounds messages"
echo "out-of-bounds messages handled in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
[ "$(metric messages_rejected_seq_out_of_range_total)" = 2 ] || fail "seq_out_of_range: $(metric messages_rejected_seq_out_of_range_total)"
[ "$(metric messages_rejected_n_features_total)" = 2 ] || fail "n_features: $(metric messages_rejected_n_features_total)"
[ "$(metric messages_rejected_eos_inconsistent_total)" = 2 ] || fail "eos: $(metric messages_rejected_eos_inconsistent_total)"
[ "$(metric batches_applied_total)" = 1 ] || fail "applied: $(metric batches_applied_total)"
[ "$(metric streams_ended)" = 0 ] || fail "a forged EndOfStream was recorded"
[ "$(grep -c 'seq_out_of_range' "$T/scorer.log")" = 1 ] || fail "rejections not logged once per sender and reason"
kill -TERM $sp
wait $sp || fail "scorer exit after SIGTERM"

# 3. restart on the same store: the genuine stream completes (seqs 0..5, end 6); nothing forged was kept
"$S" --db "$T/db" --in "@$EP" --commit-ms 100 --resend-after-ms 100000 --dump "$T/dump" 2>"$T/scorer2.log" &
sp=$!
sleep 0.3
"$I" ">$EP" batch-seq=0 batch-seq=1 batch-seq=2 batch-seq=3 batch-seq=4 eos-relayed=6 || fail inject2
for _ in $(seq 100); do kill -0 $sp 2>/dev/null || break; sleep 0.1; done
kill -0 $sp 2>/dev/null && fail "restarted scorer did not complete"
wait $sp || fail "restarted scorer failed"
grep -q "complete=1" "$T/scorer2.log" || fail "not complete"
grep -q "batches=6" "$T/dump" || { head "$T/dump"; fail "store batches"; }
echo "wire_bounds: oversize, seq, n_features, forged ends: ok"
