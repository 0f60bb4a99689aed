#!/usr/bin/env bash
# Integration: the front command's single-step verbs on a small planted set (protsae synth, 1,500
# proteins, d 32).
#  1. protsae train with validation and save-best: the SAE it reports is OUT/best, the checkpoint
#     of the lowest validation MSE in metrics.jsonl (not the last step), its step and MSE printed;
#     the reader flagged the validation share and the trainer got every key (effective config).
#  2. protsae train CONFIG of a transcoder (target = 1.5 x input, so target - input = 0.5 x input):
#     cfg.json says "protsae_target": "delta", the trainer's config says target-mode=delta and its
#     dataset scale of the targets is twice the inputs' (the delta reached the trainer, not the raw
#     target: that would be 2/3 of it); refusals: a delta target of another dimension (both files
#     named), save-best without val-fraction (both keys named), an OUT that holds an SAE.
#  3. the transcoder encodes downstream: reader -> encoder --sae TRANSCODER -> scorer makes a store
#     with live features; protsae interpret --db STORE explains and scores units (offline), and a
#     second run asks nothing again.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
data=$SHARED/data/human-swissprot
[ -f "$data/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
P=$B/cli/protsae
T=$(mktemp -d /tmp/protsae-verbs.XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
val() { awk -F': ' -v k="$1" '$1==k{print $2}' "$2"; }
unset ANTHROPIC_API_KEY OPENAI_API_KEY PROTSAE_DATA

"$P" synth --data "$data" --out "$T/s" --dim 32 --n-terms 60 --seed 5 --formats npy --max-proteins 1500 --quiet 1 \
  >"$T/synth.log" 2>&1 || { cat "$T/synth.log"; fail synth; }
S="--emb $T/s/emb.npy --fasta $T/s/proteins.fasta --ids $T/s/proteins.ids"

# 1. validation and the best checkpoint (a high lr without decay: validation MSE goes up again)
"$P" train --help | grep -q -- "--save-best" || fail "train --help"
# shellcheck disable=SC2086
"$P" train $S --out "$T/sae" --arch topk --d-sae 1024 --k 16 --train-epochs 40 --train-batch 32 --lr 0.03 \
  --lr-decay 0 --tie-coeff 0 --val-fraction 0.3 --save-best 1 --ckpt-every 50 --batch-rows 128 >"$T/train.out" \
  2>"$T/train.err" || { cat "$T/train.out" "$T/train.err"; fail "protsae train"; }
cat "$T/train.out"
[ "$(val sae "$T/train.out")" = "$T/sae/best (SAELens directory)" ] || fail "the SAE reported is not OUT/best"
m=$T/sae/metrics.jsonl
# the lowest validation MSE among the evaluations, and its step
read -r min_step min_mse < <(grep '"kind":"eval"' "$m" | sed 's/.*"step":\([0-9]*\).*"val_mse":\([0-9.e+-]*\).*/\1 \2/' |
  sort -g -k2 | head -1)
last_step=$(tail -1 "$m" | sed 's/.*"step":\([0-9]*\).*/\1/')
best_step=$(tail -1 "$m" | sed 's/.*"best_step":\([0-9]*\).*/\1/')
echo "min val step $min_step ($min_mse), metrics best_step $best_step, last step $last_step"
[ "$best_step" = "$min_step" ] || fail "metrics.jsonl best_step $best_step is not the lowest validation MSE's $min_step"
[ "$(readlink "$T/sae/best")" = "$(printf 'ckpt-%010d' "$min_step")" ] || fail "OUT/best -> $(readlink "$T/sae/best")"
[ "$(val sae_step "$T/train.out")" = "$min_step" ] || fail "sae_step is not the best step $min_step"
[ "$min_step" -lt "$last_step" ] || fail "the best step is the last one: the test shows nothing"
awk -v a="$(val best_val_mse "$T/train.out")" -v b="$min_mse" 'BEGIN{exit !(a == b)}' || fail "best_val_mse"
n_val=$(val val_proteins "$T/train.out")
[ "$n_val" -gt 300 ] && [ "$n_val" -lt 600 ] || fail "val_proteins $n_val: expected about 30% of 1500"
for f in train-reader trainer; do
  grep -q "config val-fraction=0.3 origin=flag" "$T/sae/logs/$f.log" || fail "$f did not get val-fraction"
done
grep -q "val mse [0-9]" "$T/sae/logs/trainer.log" || fail "the trainer validated on no rows"
for c in "arch=topk" "lr=0.03" "batch-rows=32" "d-sae=1024" "k=16"; do
  grep -q "config $c origin=flag" "$T/sae/logs/trainer.log" || fail "the trainer did not get --${c/=/ }"
done

# 2. a transcoder from a CONFIG file: the delta target reaches the trainer
python3 - "$T/s/emb.npy" "$T" <<'EOF'
import array, ast, struct, sys
src, out = sys.argv[1], sys.argv[2]
b = open(src, 'rb').read()
hl = struct.unpack('<H', b[8:10])[0]
n, d = ast.literal_eval(b[10:10 + hl].decode())['shape']
a = array.array('f'); a.frombytes(b[10 + hl:])
def write(path, scale, cols):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, cols)
    hdr += ' ' * ((64 - (10 + len(hdr) + 1) % 64) % 64) + '\n'
    body = array.array('f', (scale * a[r * d + c] for r in range(n) for c in range(cols)))
    open(path, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + body.tobytes())
write(out + '/h1.npy', 1.5, d)      # h1 = h0 + 0.5 h0
write(out + '/h16.npy', 1.0, 16)    # another dimension
EOF
cat >"$T/tc.conf" <<CONF
emb = $T/s/emb.npy
fasta = $T/s/proteins.fasta    # ids: the FASTA's order
target = $T/h1.npy
arch = topk
d-sae = 256
k = 8
train-epochs = 20
batch-rows = 128
CONF
"$P" train "$T/tc.conf" --out "$T/tc" >"$T/tc.out" 2>"$T/tc.err" || { cat "$T/tc.out" "$T/tc.err"; fail "train CONFIG"; }
cat "$T/tc.out"
[ "$(val transcoder "$T/tc.out")" = 1 ] && [ "$(val target_mode "$T/tc.out")" = delta ] || fail "not a delta transcoder"
grep -q '"protsae_target": "delta"' "$T/tc/latest/cfg.json" || fail "cfg.json: no protsae_target delta"
grep -q '"architecture": "topk_transcoder"' "$T/tc/latest/cfg.json" || fail "cfg.json: not a transcoder"
grep -q "config target-mode=delta origin=flag" "$T/tc/logs/trainer.log" || fail "the trainer did not get target-mode"
grep -q "config target=$T/h1.npy origin=flag" "$T/tc/logs/train-reader.log" || fail "the reader did not get target"
read -r sin sout < <(sed -n 's/.*inputs x \([0-9.e+-]*\), targets x \([0-9.e+-]*\).*/\1 \2/p' "$T/tc/logs/trainer.log")
awk -v a="$sin" -v b="$sout" 'BEGIN{r = b / a; exit !(r > 1.99 && r < 2.01)}' ||
  fail "target scale / input scale = $sout / $sin: expected 2 (target - input = 0.5 x input)"
# refusals, before anything runs
# shellcheck disable=SC2086
if "$P" train $S --out "$T/bad1" --target "$T/h16.npy" >"$T/bad.out" 2>&1; then fail "a 16-d delta target accepted"; fi
grep -q "emb.npy has 32, --target $T/h16.npy has 16" "$T/bad.out" || { cat "$T/bad.out"; fail "dims not named"; }
# shellcheck disable=SC2086
"$P" train $S --out "$T/raw16" --target "$T/h16.npy" --target-mode raw --train-epochs 1 --d-sae 64 --k 4 \
  >"$T/raw16.out" 2>&1 || { cat "$T/raw16.out"; fail "a raw 16-d target refused"; }
grep -q '"protsae_target": "raw"' "$T/raw16/latest/cfg.json" || fail "cfg.json: no protsae_target raw"
# shellcheck disable=SC2086
if "$P" train $S --out "$T/bad2" --save-best 1 >"$T/bad.out" 2>&1; then fail "save-best without validation accepted"; fi
grep -q -- "--save-best 1 needs --val-fraction > 0" "$T/bad.out" || { cat "$T/bad.out"; fail "save-best: keys not named"; }
if "$P" train "$T/tc.conf" --out "$T/tc" >"$T/bad.out" 2>&1; then fail "an OUT holding an SAE accepted"; fi
grep -q "already holds a trained SAE" "$T/bad.out" || { cat "$T/bad.out"; fail "OUT in use not said"; }

# 3. the transcoder encodes downstream, then protsae interpret on the store
RD=$B/stages/reader/protsae-reader EN=$B/stages/encoder/protsae-encoder SC=$B/stages/scorer/protsae-scorer
"$SC" --db "$T/f.db" --in "@ipc://$T/sc.ipc" --control ">ipc://$T/ctl.ipc" --data "$data" --run-id features \
  --enrich-threads 2 2>"$T/scorer.log" & spid=$!
"$EN" --sae "$T/tc/latest" --in ">ipc://$T/rd.ipc" --out ">ipc://$T/sc.ipc" --producer enc-0 --run-id features \
  2>"$T/encoder.log" &
# shellcheck disable=SC2086
"$RD" $S --out "@ipc://$T/rd.ipc" --control "@ipc://$T/ctl.ipc" --consumers 0 --batch-rows 256 --run-id features \
  2>"$T/reader.log" &
wait $spid || { tail "$T/scorer.log" "$T/encoder.log"; fail "encoding with the transcoder"; }
"$P" features --db "$T/f.db" --limit 1 >"$T/feat.out"
dead=$(sed -n 's/.*dead \([0-9]*\) .*/\1/p' "$T/feat.out")
[ -n "$dead" ] && [ "$dead" -lt 200 ] || { cat "$T/feat.out"; fail "the transcoder's features are dead in the store"; }
"$P" interpret --help | grep -q -- "--db" || fail "interpret --help"
"$P" interpret --db "$T/f.db" --data "$data" --n-interpret 8 --mode offline --workdir "$T/iw" >"$T/int.out" 2>&1 ||
  { cat "$T/int.out"; fail "protsae interpret"; }
cat "$T/int.out"
[ "$(val interpret_mode "$T/int.out")" = offline ] || fail "interpret_mode"
[ "$(val scored "$T/int.out")" = 8 ] || fail "scored: expected 8"
awk -v v="$(val mean_r "$T/int.out")" 'BEGIN{exit !(v + 0 == v && v > -1 && v <= 1)}' || fail "mean_r"
grep -q "config mode=offline origin=flag" "$T/iw/logs/interpreter-0.log" || fail "the interpreter did not get --mode"
"$P" interpret --db "$T/f.db" --data "$data" --n-interpret 8 --mode offline --workdir "$T/iw" >"$T/int2.out" 2>&1 ||
  { cat "$T/int2.out"; fail "protsae interpret again"; }
grep -q "8 features planned (8 eligible wanted of 256), 8 already stored" "$T/iw/logs/scorer.log" ||
  fail "the second run asked again"
if "$P" interpret --db "$T/none.db" >"$T/bad.out" 2>&1; then fail "a missing store accepted"; fi
grep -q "none.db" "$T/bad.out" || fail "missing store not named"
! pgrep -f "$T/" >/dev/null || { pgrep -af "$T/"; fail "stages left running"; }
echo OK
