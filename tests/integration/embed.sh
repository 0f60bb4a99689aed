#!/usr/bin/env bash
# Integration: `protsae embed` (native ESM2) writes safetensors and npy that match the reference
# forward pass of ../shared/testvectors/esm2-tiny within 1e-4 (numpy reads them back), and its npy
# output streams through protsae-reader (ids, offsets and dimension checked against the FASTA).
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
tv=$SHARED/testvectors/esm2-tiny
[ -f "$tv/expected.safetensors" ] || { echo "no test vectors: skip"; exit 77; }
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "no numpy: skip"; exit 77; }
P=$B/cli/protsae; R=$B/stages/reader/protsae-reader
T=$(mktemp -d /tmp/protsae-embed.XXXXXX); trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$P" embed --model "$tv" --fasta "$tv/sequences.fasta" --out "$T/all.safetensors" --layers all --level both \
  --tokens-per-batch 256 --threads 2 >"$T/e1.log" 2>&1 || { cat "$T/e1.log"; fail "embed safetensors"; }
"$P" embed --model "$tv" --fasta "$tv/sequences.fasta" --out "$T/npy" --level both --sort-window 1 \
  >"$T/e2.log" 2>&1 || { cat "$T/e2.log"; fail "embed npy"; }
/usr/bin/python3 - "$tv/expected.safetensors" "$T/all.safetensors" "$T/npy" <<'PY'
import json, struct, sys, numpy as np
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        dt = {'F32': np.float32, 'F16': np.float16, 'I64': np.int64, 'I32': np.int32}[v['dtype']]
        d[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v['shape']).astype(np.float64)
    return d
exp, out = load(sys.argv[1]), load(sys.argv[2])
keys = [k for k in exp if k.split('.')[-1] in ('mean', 'per_residue')]
worst = 0.0
for k in keys:
    assert k in out, f"missing {k}"
    assert out[k].shape == exp[k].shape, f"{k}: shape {out[k].shape} != {exp[k].shape}"
    worst = max(worst, float(np.abs(out[k] - exp[k]).max()))
assert worst < 1e-4, f"safetensors: max abs err {worst}"
print(f"safetensors: {len(keys)} tensors, max abs err {worst:.2e}")
# npy: last layer, rows in FASTA order (ids.txt), residues with offsets
d = sys.argv[3]
ids = open(f"{d}/ids.txt").read().split()
L = max(int(k.split('.')[1][5:]) for k in keys)
prot = np.load(f"{d}/layer{L}.npy"); res = np.load(f"{d}/layer{L}.residue.npy")
off = np.load(f"{d}/layer{L}.residue.offsets.npy")
assert prot.shape[0] == len(ids) and off.shape[0] == len(ids) + 1 and off[-1] == res.shape[0]
w = 0.0
for i, pid in enumerate(ids):
    if f"{pid}.layer{L}.mean" not in exp: continue
    w = max(w, float(np.abs(prot[i] - exp[f"{pid}.layer{L}.mean"]).max()))
    w = max(w, float(np.abs(res[off[i]:off[i + 1]] - exp[f"{pid}.layer{L}.per_residue"]).max()))
assert w < 1e-4, f"npy: max abs err {w}"
print(f"npy: {len(ids)} proteins, layer {L}, max abs err {w:.2e}")
PY
# the reader streams embed's npy output, checked against the FASTA
L=$(ls "$T/npy" | sed -n 's/^layer\([0-9]*\)\.npy$/\1/p' | head -1)
"$R" --emb "$T/npy/layer$L.residue.npy" --fasta "$tv/sequences.fasta" --level residue --out "@ipc://$T/r.ipc" \
  --consumers 1 >"$T/r.log" 2>&1 &
rd=$!
"$B/stages/trainer/protsae-trainer" --in ">ipc://$T/r.ipc" --d-sae 32 --k 4 --batch-rows 64 --epochs 1 --threads 1 \
  --val-fraction 0 --out "$T/sae" >"$T/t.log" 2>&1 || { tail "$T/t.log" "$T/r.log"; fail "trainer on embed output"; }
wait $rd || { cat "$T/r.log"; fail "reader on embed output"; }
grep -q "finished reason=done.* rows=1078 " "$T/r.log" || { tail -3 "$T/r.log" "$T/t.log"; fail "not all 1078 residues streamed"; }
echo "OK"
