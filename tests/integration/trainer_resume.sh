#!/usr/bin/env bash
# Integration: protsae-trainer on protsae synth data.
#  - kill -9 mid-run, restart: the resumed run ends with byte-identical weights to an
#    uninterrupted one (same threads), TopK, JumpReLU, Matryoshka TopK and BatchTopK with
#    dead-latent resampling; also after SIGTERM (checkpoint on stop, exit 0).
#  - checkpoints are SAELens directories (cfg.json + sae_weights.safetensors); `best` and
#    `latest` point at complete directories; metrics.jsonl has train and eval lines.
#  - a trainer fed over the wire (protsae-reader -> --in) trains on the same stream.
#  - NaN records are skipped and counted; a diverging run stops with its last good checkpoint.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae; TR=$B/stages/trainer/protsae-trainer; R=$B/stages/reader/protsae-reader
T=$(mktemp -d /tmp/protsae-tr.XXXXXX); trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 3 --formats npy --max-proteins 4000 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
args=(--emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --epochs 6 --d-sae 256 --k 8 --batch-rows 128
      --shuffle-rows 1000 --ckpt-every 10 --eval-every 15 --log-every 5 --threads 2 --seed 4 --dead-steps 5)

# uninterrupted
"$TR" "${args[@]}" --out "$T/A" >"$T/A.out" 2>"$T/A.err" || { tail "$T/A.err"; fail "run A"; }
steps=$(awk '/^steps:/{print $2}' "$T/A.out")
[ "$steps" -gt 100 ] || fail "run A: only $steps steps"
for f in cfg.json sae_weights.safetensors trainer_state.safetensors; do
  [ -s "$T/A/latest/$f" ] || fail "A/latest/$f missing"; [ -s "$T/A/best/$f" ] || fail "A/best/$f missing"
done
grep -q '"architecture": "topk"' "$T/A/latest/cfg.json" || fail "cfg.json: architecture"
grep -q '"kind":"eval"' "$T/A/metrics.jsonl" || fail "metrics.jsonl: no eval line"
ls -d "$T"/A/ckpt-*.tmp 2>/dev/null && fail "stale .tmp checkpoint left"

# kill_resume_check NAME REF OUT ARGS...: the trainer with ARGS into OUT, killed with -9 once its
# `latest` checkpoint is past step 30, then resumed; the resumed run must end byte-identical to the
# uninterrupted run REF (sae weights, trainer state and cfg.json). Logs: OUT1.* and OUT2.*.
kill_resume_check() {
  local name=$1 ref=$2 out=$3; shift 3
  "$TR" "$@" --out "$out" >"${out}1.out" 2>"${out}1.err" &
  local pid=$! at i
  for i in $(seq 1 600); do
    [ -L "$out/latest" ] && [ "$(readlink "$out/latest")" \> "ckpt-0000000030" ] && break
    sleep 0.05
  done
  kill -9 $pid 2>/dev/null || fail "$name: run finished before it could be killed"
  wait $pid 2>/dev/null || true
  at=$(readlink "$out/latest")
  "$TR" "$@" --out "$out" >"${out}2.out" 2>"${out}2.err" || { tail "${out}2.err"; fail "$name: resume"; }
  grep -q "resumed from" "${out}2.err" || fail "$name: the second run did not resume"
  cmp "$ref/latest/sae_weights.safetensors" "$out/latest/sae_weights.safetensors" ||
    fail "$name: kill -9 at $at + resume: weights differ from the uninterrupted run"
  cmp "$ref/latest/trainer_state.safetensors" "$out/latest/trainer_state.safetensors" ||
    fail "$name: trainer state differs"
  cmp "$ref/latest/cfg.json" "$out/latest/cfg.json" || fail "$name: cfg.json differs"
  echo "$name: kill -9 at $at + resume: identical weights, trainer state and cfg.json"
}

# kill -9 after the first checkpoints, then resume (the uninterrupted run A above)
kill_resume_check topk "$T/A" "$T/B" "${args[@]}"

# JumpReLU (learnt per-latent threshold, its Adam state in the checkpoint): kill -9 + resume is
# byte-identical too; saved as SAELens "jumprelu" with a learnt threshold
jargs=("${args[@]}" --arch jumprelu --lr 1e-3 --l0-coeff 0.05 --jumprelu-bandwidth 0.05 --jumprelu-init-threshold 0.02)
"$TR" "${jargs[@]}" --out "$T/JA" >"$T/JA.out" 2>"$T/JA.err" || { tail "$T/JA.err"; fail "jumprelu run"; }
grep -q '"architecture": "jumprelu"' "$T/JA/latest/cfg.json" || fail "jumprelu cfg.json: architecture"
/usr/bin/python3 - "$T/JA/latest/sae_weights.safetensors" <<'PY' || fail "jumprelu threshold not learnt"
import json, struct, sys
import numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])["threshold"]
t = np.frombuffer(b[8 + n + h["data_offsets"][0]:8 + n + h["data_offsets"][1]], dtype="<f4")
print(f"jumprelu threshold: min {t.min():.4g} median {np.median(t):.4g} max {t.max():.4g}")
sys.exit(0 if np.all(t > 0) and np.ptp(t) > 1e-3 else 1)
PY
kill_resume_check jumprelu "$T/JA" "$T/JB" "${jargs[@]}"

# Matryoshka (nested prefixes; their errors in the loss): kill -9 + resume is byte-identical too;
# saved as a plain SAELens topk SAE with the prefix sizes recorded in cfg.json
margs=("${args[@]}" --matryoshka 16,64)
"$TR" "${margs[@]}" --out "$T/MA" >"$T/MA.out" 2>"$T/MA.err" || { tail "$T/MA.err"; fail "matryoshka run"; }
grep -q '"architecture": "topk"' "$T/MA/latest/cfg.json" || fail "matryoshka cfg.json: architecture"
tr -d ' \n' <"$T/MA/latest/cfg.json" | grep -q '"protsae_matryoshka_prefixes":\[16,64,256\]' ||
  { cat "$T/MA/latest/cfg.json"; fail "matryoshka cfg.json: prefixes"; }
cmp -s "$T/A/latest/sae_weights.safetensors" "$T/MA/latest/sae_weights.safetensors" &&
  fail "matryoshka run equals the plain run"
kill_resume_check matryoshka "$T/MA" "$T/MB" "${margs[@]}"

# Dead-latent resampling (the RNG from seed and step, the rows from the checkpointed shuffle
# buffer): kill -9 + resume is byte-identical too
rargs=("${args[@]}" --arch batchtopk --resample-every 20 --resample-until 0.8)
"$TR" "${rargs[@]}" --out "$T/RA" >"$T/RA.out" 2>"$T/RA.err" || { tail "$T/RA.err"; fail "resample run"; }
grep -q "dead latents resampled" "$T/RA.err" || fail "resample run: no resampling logged"
kill_resume_check resample "$T/RA" "$T/RB" "${rargs[@]}"
"$TR" "${args[@]}" --arch relu --resample-every 20 --out "$T/RR" >"$T/RR.out" 2>"$T/RR.err" && fail "relu resampling accepted"
grep -q "resample-every" "$T/RR.err" || { tail "$T/RR.err"; fail "relu resampling: no error naming the option"; }

# SIGTERM: checkpoint on stop, exit 0, resume to the same end
"$TR" "${args[@]}" --out "$T/C" >"$T/C1.out" 2>"$T/C1.err" &
pid=$!
for i in $(seq 1 600); do [ -L "$T/C/latest" ] && break; sleep 0.05; done
kill -TERM $pid
wait $pid || fail "SIGTERM: exit code $?"
grep -q "stopped: signal" "$T/C1.out" || fail "SIGTERM: not reported as stopped"
"$TR" "${args[@]}" --out "$T/C" >"$T/C2.out" 2>"$T/C2.err" || { tail "$T/C2.err"; fail "run C resume"; }
cmp "$T/A/latest/sae_weights.safetensors" "$T/C/latest/sae_weights.safetensors" ||
  fail "SIGTERM + resume: weights differ from the uninterrupted run"

# over the wire: reader process -> trainer (no shuffle needed for the check; trains to the end)
ep="ipc://$T/tr.ipc"
"$TR" --in "@$ep" --d-sae 128 --k 4 --batch-rows 100 --shuffle-rows 0 --out "$T/W" --threads 1 \
  --timeout-ms 60000 >"$T/W.out" 2>"$T/W.err" &
tp=$!
"$R" --emb "$T/s/emb.npy" --ids "$T/s/proteins.ids" --out ">$ep" --batch-rows 200 --epochs 2 2>"$T/R.err" ||
  { tail "$T/R.err"; fail "reader"; }
wait $tp || { tail "$T/W.err"; fail "wire trainer"; }
rows=$(awk '/^rows_trained:/{print $2}' "$T/W.out"); val=$(awk '/^val_rows:/{print $2}' "$T/W.out")
n=$(wc -l <"$T/s/proteins.ids")
[ $((rows + 2 * val)) -ge $((2 * n - 2 * val)) ] || fail "wire trainer: trained $rows rows of $n x 2 epochs"

# NaN records: skipped and counted
/usr/bin/python3 - "$T" <<'PY' || fail "numpy needed for the NaN check"
import sys, numpy as np
t = sys.argv[1]
x = np.load(t + "/s/emb.npy")
x[5, 3] = np.nan; x[77, 0] = np.inf
np.save(t + "/nan.npy", x)
PY
"$TR" "${args[@]}" --emb "$T/nan.npy" --epochs 1 --out "$T/N" >"$T/N.out" 2>"$T/N.err" || { tail "$T/N.err"; fail "NaN run"; }
grep -q "^records_skipped_nonfinite: 2" "$T/N.out" || { cat "$T/N.out"; fail "NaN records not counted"; }
"$TR" "${args[@]}" --emb "$T/nan.npy" --epochs 1 --skip-nonfinite 0 --out "$T/N2" >"$T/N2.out" 2>"$T/N2.err" &&
  fail "NaN without skipping should fail"
grep -q "nan.npy" "$T/N2.err" || { tail -3 "$T/N2.err"; fail "NaN error does not name the file"; }

# divergence: absurd learning rate, no clipping; last good checkpoint kept, exit non-zero
"$TR" "${args[@]}" --lr 1e30 --clip 0 --ckpt-every 1 --eval-every 0 --out "$T/D" >"$T/D.out" 2>"$T/D.err" &&
  fail "diverging run exited 0"
grep -q "diverged" "$T/D.err" || { tail -5 "$T/D.err"; fail "divergence not reported"; }
echo "all trainer integration checks passed"
