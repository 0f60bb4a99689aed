#!/usr/bin/python3
"""PyTorch side of the trainer parity test. Usage: parity_torch.py ARCH OUTDIR (after parity_torch).

Re-implements protsae's training step with autograd (stages/trainer/sae_train.h): SAELens-style
MSE (sum over dims, mean over rows), decoder-norm weighted L1 with linear warm-up (relu), AuxK on
dead latents with the residual detached (topk / batchtopk), unit-norm decoder (gradient parallel
to each row removed before the step, rows renormalised after), clip_grad_norm_(1.0) and
torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8). Starting from the C side's initial
weights on the same batches, compares every step's losses and the final weights.
Tolerance: per-step losses within 1e-4 relative (+1e-6 absolute), final parameters within
2e-4 of max(1, |p|) -- float32 summation order differs between BLAS and autograd.
Exit 0 = match, 1 = mismatch, 77 = torch unavailable (skip).
"""
import json, struct, sys
try:
    import numpy as np
    import torch
except Exception as e:  # noqa
    print(f"skip: {e}")
    sys.exit(77)

arch, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)


def load_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    res = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        res[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(v["shape"]).copy())
    return res


init = load_st(f"{out}/init/sae_weights.safetensors")
final = load_st(f"{out}/final/sae_weights.safetensors")
X = torch.from_numpy(np.load(f"{out}/x.npy"))
Y = torch.from_numpy(np.load(f"{out}/y.npy"))
c_losses = [list(map(float, l.split())) for l in open(f"{out}/losses.txt")]
transcoder = arch == "transcoder"
relu = arch == "relu"
btk = arch == "batchtopk"
k, B, steps = 8, 32, len(c_losses)
l1, l1_warm = 0.5, 5
k_aux, aux_coeff, dead_steps = 6, 1.0 / 32.0, 2
unit = not relu

W_enc = torch.nn.Parameter(init["W_enc"].clone())
b_enc = torch.nn.Parameter(init["b_enc"].clone())
W_dec = torch.nn.Parameter(init["W_dec"].clone())
b_dec = torch.nn.Parameter(init["b_dec"].clone())
params = [W_enc, b_enc, W_dec, b_dec]
opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
n = W_enc.shape[1]
since = torch.zeros(n, dtype=torch.long)
worst_loss = 0.0
aux_seen = False
for s in range(steps):
    x = X[s * B:(s + 1) * B]
    y = Y[s * B:(s + 1) * B] if transcoder else x
    xin = x if transcoder else x - b_dec
    pre = xin @ W_enc + b_enc
    if relu:
        f = torch.relu(pre)
    elif btk:
        pos = torch.relu(pre).flatten()
        thr = pos.topk(k * B).values.min().detach()
        f = torch.where((pre > 0) & (pre >= thr), pre, torch.zeros_like(pre))
    else:
        v, i = pre.topk(k, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, i, torch.relu(v))
    yh = f @ W_dec + b_dec
    mse = ((yh - y) ** 2).sum(-1).mean()
    loss = mse
    l1v = torch.tensor(0.0)
    if relu:
        l1c = l1 * min(1.0, (s + 1) / l1_warm)
        l1v = l1c * (f * W_dec.norm(dim=1)).sum(-1).mean()
        loss = loss + l1v
    auxv = torch.tensor(0.0)
    dead = since >= dead_steps
    nd = int(dead.sum())
    if not relu and nd > 0:
        ka = min(k_aux, nd)
        scale = min(nd / k_aux, 1.0)
        masked = pre.masked_fill(~dead[None, :], float("-inf"))
        v, i = masked.topk(ka, dim=-1)
        a = torch.zeros_like(pre).scatter(-1, i, torch.relu(v))
        resid = (y - yh).detach()
        auxv = aux_coeff * scale * ((a @ W_dec - resid) ** 2).sum(-1).mean()
        loss = loss + auxv
        aux_seen = aux_seen or float(auxv) > 0
    opt.zero_grad()
    loss.backward()
    with torch.no_grad():
        if unit:
            nn2 = (W_dec * W_dec).sum(1, keepdim=True)
            W_dec.grad -= (W_dec.grad * W_dec).sum(1, keepdim=True) / nn2 * W_dec
        torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    with torch.no_grad():
        if unit:
            W_dec /= W_dec.norm(dim=1, keepdim=True)
        fired = (f > 0).any(0)
        since = torch.where(fired, torch.zeros_like(since), since + 1)
    cm, ca, cl = c_losses[s][:3]
    for name, tv, cv in (("mse", float(mse), cm), ("aux", float(auxv), ca), ("l1", float(l1v), cl)):
        d = abs(tv - cv) / (abs(tv) + 1e-6)
        worst_loss = max(worst_loss, d)
        if abs(tv - cv) > 1e-4 * abs(tv) + 1e-6:
            print(f"MISMATCH step {s + 1} {name}: torch {tv:.9g} C {cv:.9g}")
            sys.exit(1)

worst = {}
for name, p in (("W_enc", W_enc), ("b_enc", b_enc), ("W_dec", W_dec), ("b_dec", b_dec)):
    d = ((p.detach() - final[name]).abs() / p.detach().abs().clamp(min=1.0)).max().item()
    worst[name] = d
dense_steps = sum(int(l[3]) for l in c_losses)
print(f"{arch}: steps {steps}, max loss rel diff {worst_loss:.2e}, max param diff "
      + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
      + f", aux active {aux_seen}, relu dense-path steps {dense_steps}")
if max(worst.values()) > 2e-4:
    print("MISMATCH in final parameters")
    sys.exit(1)
if not relu and not aux_seen:
    print("AuxK never became active: the test would not check it")
    sys.exit(1)
if relu and not (0 < dense_steps < steps):
    print(f"relu: expected both the dense and the sparse path, dense in {dense_steps}/{steps} steps")
    sys.exit(1)
