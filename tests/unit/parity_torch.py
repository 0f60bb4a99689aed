#!/usr/bin/python3
"""PyTorch reference for protsae's SAE trainer (stages/trainer/sae_train.h), checked against a
parity_torch run (tests/unit/parity_torch.c; the meson test unit_torch_parity runs parity_torch.sh).

Usage: parity_torch.py OUTDIR [--perturb NAME] [--require LIST] [--dtype float32|float64] [--verbose]

Reads OUTDIR/params.json (the settings of the C run), OUTDIR/init (SAELens directory),
OUTDIR/batches.safetensors and OUTDIR/state.safetensors, and implements the training step with
autograd:
  x' = (x - mean) / std per row (normalize_per_sample; population std floored at 1e-6); y' too
  pre = (x' - b_dec) W_enc + b_enc (b_dec only with apply_b_dec_to_input)
  f = relu(pre) | top-k of pre then ReLU | batch-wide top (k B) of ReLU(pre) (batchtopk) |
      pre H(pre - theta), theta = exp(log_threshold) (jumprelu: SAELens' JumpReLU / Step autograd
      functions, straight-through rectangle kernel of width bandwidth for theta; log_threshold is
      one more parameter, clipped and stepped by Adam with the others)
  y^ = f W_dec + b_dec
  mse = 1/B sum_b ||y^_b - y_b||^2
  l1  = c_l1 min(1, step / l1_warmup) / B sum_bj f_bj ||W_dec_j||                          (relu)
        c_l0 min(1, step / l1_warmup) / B sum_bj Step(pre_bj, theta_j)                 (jumprelu)
  aux = c_aux min(n_dead / k_aux, 1) / B sum_b ||a_b - (y_b - y^_b).detach()||^2   (topk family)
        a_b = ReLU(top min(k_aux, n_dead) of pre_bj over the dead latents) W_dec (no bias);
        dead: since_fired >= dead_steps; since_fired updated after each step (fired: f > 0)
  unit-norm decoder: each W_dec row's gradient loses its component along the row; then
  clip_grad_norm_(all parameters, clip), torch.optim.Adam(lr, betas, eps); rows renormalised.
  batchtopk threshold: the step's selection threshold (smallest selected value), then
  thr <- ema thr + (1 - ema) batch threshold (the first step takes the batch threshold).

Two comparisons, both float32 in C and in torch (different summation orders):
 1. Step by step at the C side's own parameters (state.safetensors params, i.e. teacher forced,
    so rounding does not accumulate): mse, aux, l1, loss, grad norm within TOL_STEP relative
    (+1e-7 absolute); l0 and the number of dead latents exactly; the gradient fed to Adam per
    parameter block (W_enc, b_enc, W_dec, b_dec): max |g_C - g_torch| <= TOL_STEP x the block's
    max |g_torch| (+1e-9); batchtopk threshold update within TOL_STEP relative.
 2. PyTorch's own 20-step run with torch.optim.Adam from the same initial weights: per-step
    losses within TOL_RUN relative; final parameters max |p_C - p_torch| <= TOL_RUN x
    max(max |p_torch|, 1e-2) per block; Adam exp_avg (TOL_RUN) and exp_avg_sq (10 TOL_RUN, it is
    a square) per block as for the gradient; steps since fired exactly; batchtopk threshold
    TOL_RUN. Looser: Adam's first steps normalise each gradient element (m / sqrt(v) = sign g
    at step 1), so an element whose true gradient is ~0 moves by an amount set by rounding
    (measured up to ~1e-5 of the block scale on some seeds, torch float32 vs float64 alike).
The measured maxima are printed.

--require LIST (comma separated) asserts that the run exercised what it is meant to:
  aux: AuxK active (aux > 0 and some positive dead-latent activation selected);
  aux_trunc: some row had more positive dead pre-activations than k_aux (top-k_aux matters);
  aux_scale: some step had 0 < n_dead < k_aux (the min(n_dead / k_aux, 1) factor matters);
  dense, sparse, mixed: relu chunks on the dense path / on the sparse path / a step with both.
  window: jumprelu pre-activations inside the STE window, both above and below theta.
Default: aux for the topk family with k_aux > 0, dense,sparse for relu, dense,sparse,window for
jumprelu.
--perturb NAME changes the reference on purpose, as a negative control (the comparison must then
fail): aux_coeff (x 1.25), no_detach (AuxK residual not detached), l1_coeff (x 1.25), l1_warmup
(none), dead_steps (+1), unit_norm (no gradient projection), clip (none), eps (x 100), k_aux (-1),
lr (x 1.1), beta2 (0.99), ema (0.9), l0_coeff (x 1.25), bandwidth (x 1.25), no_theta_ste (JumpReLU's
own threshold pseudo-gradient -(theta/eps) K dL/df dropped, only the L0 step's kept).
--dtype float64 runs the reference in double (to see how far each side is from exact).
Exit 0 = match, 1 = mismatch, 2 = usage / bad input, 77 = torch not importable (skip).
"""
import json
import struct
import sys

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001 - any import failure means: skip
    print(f"torch_parity: skip: cannot import torch/numpy ({e})")
    sys.exit(77)

TOL_STEP = 1e-5   # teacher-forced, per step
TOL_RUN = 1e-4    # free-running trajectory
BLOCKS = ("W_enc", "b_enc", "W_dec", "b_dec")
PERTURBATIONS = ("aux_coeff", "no_detach", "l1_coeff", "l1_warmup", "dead_steps", "unit_norm", "clip", "eps",
                 "k_aux", "lr", "beta2", "ema", "l0_coeff", "bandwidth", "no_theta_ste", "matryoshka_sum",
                 "matryoshka_prefix")
REQUIREMENTS = ("aux", "aux_trunc", "aux_scale", "dense", "sparse", "mixed", "window")


def rectangle(u):
    return ((u > -0.5) & (u < 0.5)).to(u)


class StepFn(torch.autograd.Function):
    """SAELens' Step: H(x - threshold); d/dthreshold = -(1/bw) K((x - threshold)/bw), none for x."""

    @staticmethod
    def forward(ctx, x, threshold, bandwidth):
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return (x > threshold).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        return None, torch.sum(-(1.0 / bw) * rectangle((x - threshold) / bw) * grad_output, dim=0), None


class JumpReLUFn(torch.autograd.Function):
    """SAELens' JumpReLU: x H(x - threshold); d/dx = H(x - threshold) (no STE for x),
    d/dthreshold = -(threshold/bw) K((x - threshold)/bw) (times the upstream gradient)."""

    @staticmethod
    def forward(ctx, x, threshold, bandwidth, theta_ste=True):
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth, ctx.theta_ste = bandwidth, theta_ste
        return (x * (x > threshold)).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        x_grad = (x > threshold) * grad_output
        t_grad = torch.sum(-(threshold / bw) * rectangle((x - threshold) / bw) * grad_output, dim=0)
        return x_grad, (t_grad if ctx.theta_ste else torch.zeros_like(t_grad)), None, None


def usage(msg=""):
    if msg:
        print(f"torch_parity: {msg}")
    print(__doc__.split("\n\n")[1])
    sys.exit(2)


def load_st(path):
    """safetensors file -> {name: numpy array} (F32 / I64)."""
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        hdr = json.loads(fh.read(n))
        data = fh.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        dt = {"F32": "<f4", "I64": "<i8"}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"]).copy()
    return out


class Reference:
    """The settings of one run and the loss / gradient of one step."""

    def __init__(self, P, perturb, dtype):
        self.P, self.dtype = P, dtype
        self.arch = P["arch"]
        self.relu, self.btk = self.arch == "relu", self.arch == "batchtopk"
        self.jr = self.arch == "jumprelu"
        self.names = BLOCKS + (("log_threshold",) if self.jr else ())
        self.l0_coeff = P.get("l0_coeff", 0.0)
        self.bw = P.get("jumprelu_bandwidth", 0.001)
        self.init_thr = P.get("jumprelu_init_threshold", 0.001)
        self.theta_ste = True
        self.transcoder = P["transcoder"]
        self.k, self.B, self.n = P["k"], P["batch"], P["d_sae"]
        self.d, self.o = P["d_in"], P["d_out"]
        self.lr, self.betas, self.eps, self.clip = P["lr"], (P["beta1"], P["beta2"]), P["eps"], P["clip_norm"]
        self.k_aux, self.aux_coeff, self.dead_steps = P["k_aux"], P["aux_coeff"], P["dead_steps"]
        self.l1_coeff, self.l1_warm = P["l1_coeff"], P["l1_warmup_steps"]
        self.unit, self.norm, self.bdec_in = P["unit_norm_decoder"], P["normalize_per_sample"], P["apply_b_dec_to_input"]
        self.ema = P["threshold_ema"]
        self.chunk = P["chunk_rows"] if P["chunk_rows"] > 0 else 1024
        # Matryoshka: the loss is the mean over the nested prefixes m_1 < ... < m_P = d_sae of the
        # reconstruction error using only the first m_p latents (the full model's selection)
        self.mat = list(P.get("matryoshka", []))
        self.detach = True
        self.mat_sum = False
        if perturb == "matryoshka_sum":
            self.mat_sum = True
        elif perturb == "matryoshka_prefix":  # the first boundary one latent later
            self.mat[0] += 1
        elif perturb == "aux_coeff":
            self.aux_coeff *= 1.25
        elif perturb == "no_detach":
            self.detach = False
        elif perturb == "l1_coeff":
            self.l1_coeff *= 1.25
        elif perturb == "l1_warmup":
            self.l1_warm = 0
        elif perturb == "dead_steps":
            self.dead_steps += 1
        elif perturb == "unit_norm":
            self.unit = False
        elif perturb == "clip":
            self.clip = 0.0
        elif perturb == "eps":
            self.eps *= 100
        elif perturb == "k_aux":
            self.k_aux -= 1
        elif perturb == "lr":
            self.lr *= 1.1
        elif perturb == "beta2":
            self.betas = (self.betas[0], 0.99)
        elif perturb == "ema":
            self.ema = 0.9
        elif perturb == "l0_coeff":
            self.l0_coeff *= 1.25
        elif perturb == "bandwidth":
            self.bw *= 1.25
        elif perturb == "no_theta_ste":
            self.theta_ste = False

    def normrows(self, t):
        t64 = t.double()
        m = t64.mean(-1, keepdim=True)
        sd = ((t64 - m) ** 2).mean(-1, keepdim=True).sqrt().clamp(min=1e-6)
        return (t - m.to(t.dtype)) * (1.0 / sd).to(t.dtype)

    def step(self, params, x, y, since, s):
        """Loss and gradients (in .grad, after the unit-norm projection) at params = [W_enc [d, n],
        b_enc, W_dec [n, o], b_dec (, log_threshold)] for step s (0-based). Returns a dict of results."""
        W_enc, b_enc, W_dec, b_dec = params[:4]
        B, n = self.B, self.n
        xn = self.normrows(x) if self.norm else x
        y = (self.normrows(y) if self.norm else y) if self.transcoder else xn
        xin = xn - b_dec if self.bdec_in else xn
        pre = xin @ W_enc + b_enc
        btk_thr = None
        win_on = win_off = 0
        if self.jr:
            theta = torch.exp(params[4])
            f = JumpReLUFn.apply(pre, theta, self.bw, self.theta_ste)
            pd, td = pre.detach(), theta.detach()
            inwin = rectangle((pd - td) / self.bw) > 0
            win_on = int((inwin & (pd > td)).sum())
            win_off = int((inwin & (pd <= td)).sum())
        elif self.relu:
            f = torch.relu(pre)
        elif self.btk:
            pos = pre.detach()[pre.detach() > 0]
            if pos.numel() > 0:
                btk_thr = pos.topk(min(self.k * B, pos.numel())).values.min()
                f = torch.where((pre > 0) & (pre >= btk_thr), pre, torch.zeros_like(pre))
            else:
                f = torch.zeros_like(pre)
        else:
            v, idx = pre.topk(self.k, dim=-1)
            f = torch.zeros_like(pre).scatter(-1, idx, torch.relu(v))
        yh = f @ W_dec + b_dec
        mse = ((yh - y) ** 2).sum(-1).mean()
        loss = mse
        if len(self.mat) > 1:
            nested = [((f[:, :m] @ W_dec[:m] + b_dec - y) ** 2).sum(-1).mean() for m in self.mat]
            loss = sum(nested) / (1.0 if self.mat_sum else len(self.mat))
        l1v = torch.zeros((), dtype=self.dtype)
        if self.relu and self.l1_coeff != 0:
            c1 = self.l1_coeff * (min(1.0, (s + 1) / self.l1_warm) if self.l1_warm > 0 else 1.0)
            l1v = c1 * (f * W_dec.norm(dim=1)).sum(-1).mean()
            loss = loss + l1v
        if self.jr:
            c0 = self.l0_coeff * (min(1.0, (s + 1) / self.l1_warm) if self.l1_warm > 0 else 1.0)
            l1v = (c0 * StepFn.apply(pre, theta, self.bw).sum(-1)).mean()
            loss = loss + l1v
        auxv = torch.zeros((), dtype=self.dtype)
        if self.k_aux > 0 and self.dead_steps > 0:
            dead = since >= self.dead_steps
        else:
            dead = torch.zeros(n, dtype=torch.bool)
        nd = int(dead.sum())
        aux_pos = aux_trunc = 0
        if nd > 0:
            ka = min(self.k_aux, nd)
            scale = self.aux_coeff * min(nd / self.k_aux, 1.0)
            masked = pre.masked_fill(~dead[None, :], float("-inf"))
            v, idx = masked.topk(ka, dim=-1)
            a = torch.zeros_like(pre).scatter(-1, idx, torch.relu(v))
            aux_pos = int((a > 0).sum())
            aux_trunc = int((((pre.detach() > 0) & dead[None, :]).sum(-1) > self.k_aux).sum())
            resid = (y - yh).detach() if self.detach else (y - yh)
            auxv = scale * ((a @ W_dec - resid) ** 2).sum(-1).mean()
            loss = loss + auxv
        dense_kinds = []
        if self.relu or self.jr:  # the C side's path for each chunk (decided on the pre-activations)
            for r0 in range(0, B, self.chunk):
                pc = pre.detach()[r0:r0 + self.chunk]
                on = (pc > theta.detach()) if self.jr else (pc > 0)
                dense_kinds.append(int(on.sum()) > self.P["dense_threshold"] * pc.numel())
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            if self.unit:
                nn2 = (W_dec * W_dec).sum(1, keepdim=True)
                W_dec.grad -= (W_dec.grad * W_dec).sum(1, keepdim=True) / nn2 * W_dec
            gnorm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))
        fired = (f.detach() > 0).any(0)
        return {"mse": float(mse), "aux": float(auxv), "l1": float(l1v), "loss": float(loss), "gnorm": gnorm,
                "l0": float((f.detach() > 0).sum()) / B, "n_dead": nd, "fired": fired, "btk_thr": btk_thr,
                "aux_pos": aux_pos, "aux_trunc": aux_trunc, "dense_kinds": dense_kinds, "win_on": win_on,
                "win_off": win_off}

    def blocks(self, wenc, benc, wdec, bdec, lt=None):
        """C layout: W_encT (d_sae x d_in), b_enc, W_dec, b_dec (, log_threshold), each flat, float64."""
        res = {"W_enc": wenc.detach().t().reshape(-1).double(), "b_enc": benc.detach().reshape(-1).double(),
               "W_dec": wdec.detach().reshape(-1).double(), "b_dec": bdec.detach().reshape(-1).double()}
        if lt is not None:
            res["log_threshold"] = torch.as_tensor(lt).detach().reshape(-1).double()
        return res

    def split_flat(self, flat):
        n, d, o = self.n, self.d, self.o
        res, pos = {}, 0
        for name, sz in (("W_enc", n * d), ("b_enc", n), ("W_dec", n * o), ("b_dec", o)):
            res[name] = torch.from_numpy(np.ascontiguousarray(flat[pos:pos + sz])).double()
            pos += sz
        if pos != flat.shape[0]:
            usage(f"flat parameter vector of {flat.shape[0]} floats, expected {pos}")
        return res

    def params_from_flat(self, flat, lt=None):
        b = self.split_flat(flat)
        res = [torch.nn.Parameter(b["W_enc"].reshape(self.n, self.d).t().contiguous().to(self.dtype)),
               torch.nn.Parameter(b["b_enc"].to(self.dtype)),
               torch.nn.Parameter(b["W_dec"].reshape(self.n, self.o).to(self.dtype)),
               torch.nn.Parameter(b["b_dec"].to(self.dtype))]
        if lt is not None:
            res.append(torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(lt)).to(self.dtype)))
        return res


def main():
    args = sys.argv[1:]
    perturb, dtype, verbose, require = None, torch.float32, False, None
    if not args or args[0].startswith("-"):
        usage()
    out = args[0]
    i = 1
    while i < len(args):
        a = args[i]
        if a == "--verbose":
            verbose = True
            i += 1
            continue
        if i + 1 >= len(args):
            usage(f"{a} needs a value")
        v = args[i + 1]
        if a == "--perturb":
            if v not in PERTURBATIONS:
                usage(f"unknown perturbation {v}; one of {', '.join(PERTURBATIONS)}")
            perturb = v
        elif a == "--require":
            require = [r for r in v.split(",") if r]
            bad = [r for r in require if r not in REQUIREMENTS]
            if bad:
                usage(f"unknown requirement {bad[0]}; one of {', '.join(REQUIREMENTS)}")
        elif a == "--dtype" and v in ("float32", "float64"):
            dtype = torch.float32 if v == "float32" else torch.float64
        else:
            usage(f"bad argument {a} {v}")
        i += 2
    torch.set_num_threads(1)

    P = json.load(open(f"{out}/params.json"))
    cfg = json.load(open(f"{out}/init/cfg.json"))
    R = Reference(P, perturb, dtype)
    if (cfg["d_in"], cfg["d_sae"], cfg["d_out"]) != (R.d, R.n, R.o) or \
            cfg["apply_b_dec_to_input"] != R.bdec_in or (cfg["normalize_activations"] != "none") != R.norm:
        usage(f"init/cfg.json disagrees with params.json: {cfg}")
    if require is None:
        require = (["dense", "sparse"] if R.relu else ["dense", "sparse", "window"] if R.jr else
                   (["aux"] if P["k_aux"] > 0 else []))
    steps, B = P["steps"], R.B
    init = load_st(f"{out}/init/sae_weights.safetensors")
    final = load_st(f"{out}/final/sae_weights.safetensors")
    state = load_st(f"{out}/state.safetensors")
    batches = load_st(f"{out}/batches.safetensors")
    X = torch.from_numpy(batches["x"]).to(dtype)
    Y = torch.from_numpy(batches["y"]).to(dtype) if R.transcoder else None
    rows = [l.split() for l in open(f"{out}/losses.txt") if not l.startswith("#")]
    C = [dict(zip(("step", "mse", "aux", "l1", "loss", "l0", "n_dead", "dense", "gnorm", "lr"), map(float, r)))
         for r in rows]
    if len(C) != steps or state["grad"].shape[0] != steps or state["params"].shape[0] != steps:
        usage(f"{out}: expected {steps} steps, losses.txt has {len(C)}")

    failures = []

    def fail(msg):
        if len(failures) < 12:
            print(f"MISMATCH {R.arch}: {msg}")
        failures.append(msg)

    def cmp_scalar(tag, tv, cv, tol, worst, key):
        d_ = abs(tv - cv)
        worst[key] = max(worst.get(key, 0.0), d_ / max(abs(tv), 1e-30))
        if d_ > tol * abs(tv) + 1e-7:
            fail(f"{tag}: torch {tv:.9g} C {cv:.9g} (rel {d_ / max(abs(tv), 1e-30):.2e}, tolerance {tol:g})")

    def cmp_blocks(tag, tb, cb, tol, worst, floor=0.0, absol=1e-9):
        rel = {}
        for name in R.names:
            t_, c_ = tb[name], cb[name]
            scale_ = max(float(t_.abs().max()), floor)
            diff = float((t_ - c_).abs().max())
            rel[name] = diff / scale_ if scale_ > 0 else diff
            worst[name] = max(worst.get(name, 0.0), rel[name])
            if diff > tol * scale_ + absol:
                fail(f"{tag} {name}: max |diff| {diff:.3g} vs block scale {scale_:.3g} (rel {rel[name]:.2e}, "
                     f"tolerance {tol:g})")
        return rel

    def batch(s):
        return X[s * B:(s + 1) * B], (Y[s * B:(s + 1) * B] if R.transcoder else None)

    # ---- 1. teacher forced: every step at the C side's parameters ----
    w1, wg = {}, {}
    cov = {"aux_pos": 0, "aux_steps": 0, "aux_trunc": 0, "aux_scale": 0, "dense": 0, "sparse": 0, "mixed": 0,
           "win_on": 0, "win_off": 0}
    if R.jr:
        lt0 = np.full(R.n, np.log(R.init_thr), dtype=np.float32)
        if not np.array_equal(state["log_threshold"][0], lt0):
            fail(f"initial log_threshold on the C side is not log({R.init_thr}) everywhere")
    since = torch.zeros(R.n, dtype=torch.long)
    for s in range(steps):
        x, y = batch(s)
        params = R.params_from_flat(state["params"][s], state["log_threshold"][s] if R.jr else None)
        r = R.step(params, x, y, since, s)
        cs = C[s]
        for name in ("mse", "aux", "l1", "loss", "gnorm"):
            cmp_scalar(f"step {s + 1} (at C's parameters) {name}", r[name], cs[name], TOL_STEP, w1,
                       "gnorm" if name == "gnorm" else "loss")
        if abs(r["l0"] - cs["l0"]) > 1e-9:
            fail(f"step {s + 1}: l0 torch {r['l0']} C {cs['l0']}")
        if r["n_dead"] != int(cs["n_dead"]):
            fail(f"step {s + 1}: dead latents torch {r['n_dead']} C {int(cs['n_dead'])}")
        cg = R.split_flat(state["grad"][s])
        if R.jr:
            cg["log_threshold"] = torch.from_numpy(state["log_threshold_grad"][s]).double()
        rel = cmp_blocks(f"step {s + 1} gradient", R.blocks(*(p.grad for p in params)), cg, TOL_STEP, wg)
        if R.btk and r["btk_thr"] is not None:
            bt = float(r["btk_thr"])
            old = float(state["threshold"][s])
            want = bt if s == 0 else R.ema * old + (1.0 - R.ema) * bt
            got = float(state["threshold"][s + 1]) if s + 1 < steps else float(final["threshold"][0])
            cmp_scalar(f"step {s + 1} batchtopk threshold", want, got, TOL_STEP, w1, "threshold")
        kinds = r["dense_kinds"]
        cov["win_on"] += r["win_on"]
        cov["win_off"] += r["win_off"]
        if R.relu or R.jr:
            cov["dense"] += sum(kinds)
            cov["sparse"] += len(kinds) - sum(kinds)
            cov["mixed"] += 0 < sum(kinds) < len(kinds)
            if int(any(kinds)) != int(cs["dense"]):
                fail(f"step {s + 1}: relu dense path {int(cs['dense'])} on the C side, expected {int(any(kinds))}")
        cov["aux_pos"] += r["aux_pos"]
        cov["aux_steps"] += r["aux"] > 0
        cov["aux_trunc"] += r["aux_trunc"]
        cov["aux_scale"] += 0 < r["n_dead"] < R.k_aux
        if verbose:
            print(f"step {s + 1}: n_dead {r['n_dead']} l0 {r['l0']:g} mse {r['mse']:.6g} aux {r['aux']:.6g} "
                  f"l1 {r['l1']:.6g} gnorm {r['gnorm']:.6g} aux+ {r['aux_pos']} trunc {r['aux_trunc']} "
                  f"dense {kinds}; gradient rel diff " + " ".join(f"{k_} {v:.2e}" for k_, v in rel.items()))
        since = torch.where(r["fired"], torch.zeros_like(since), since + 1)

    # ---- 2. free running: PyTorch's own training from the initial weights ----
    w2, wp, wm, wv = {}, {}, {}, {}
    params = [torch.nn.Parameter(torch.from_numpy(init[k_]).to(dtype)) for k_ in BLOCKS]
    if R.jr:  # as SAELens: torch.ones(d_sae) * np.log(jumprelu_init_threshold)
        params.append(torch.nn.Parameter(torch.ones(R.n, dtype=dtype) * np.log(R.init_thr)))
    W_dec = params[2]
    opt = torch.optim.Adam(params, lr=R.lr, betas=R.betas, eps=R.eps)
    thr = None
    since = torch.zeros(R.n, dtype=torch.long)
    for s in range(steps):
        x, y = batch(s)
        r = R.step(params, x, y, since, s)
        with torch.no_grad():
            if R.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, R.clip)
        opt.step()
        with torch.no_grad():
            if R.unit:
                W_dec /= W_dec.norm(dim=1, keepdim=True)
        since = torch.where(r["fired"], torch.zeros_like(since), since + 1)
        if R.btk and r["btk_thr"] is not None:
            bt = float(r["btk_thr"])
            thr = float(np.float32(bt if s == 0 else R.ema * thr + (1.0 - R.ema) * bt))
        for name in ("mse", "aux", "l1", "loss"):
            cmp_scalar(f"step {s + 1} (own run) {name}", r[name], C[s][name], TOL_RUN, w2, "loss")
    cmp_blocks("final parameters", R.blocks(*params),
               R.blocks(*(torch.from_numpy(final[k_]) for k_ in BLOCKS),
                        np.log(final["threshold"]) if R.jr else None), TOL_RUN, wp, floor=1e-2, absol=0.0)
    if R.jr:  # the saved threshold is exp(log_threshold)
        tt = torch.exp(params[4].detach()).double()
        dt = float((tt - torch.from_numpy(final["threshold"]).double()).abs().max() / tt.abs().max())
        wp["threshold"] = dt
        if dt > TOL_RUN:
            fail(f"final threshold: max rel diff {dt:.2e} (tolerance {TOL_RUN:g})")
    cm, cv = R.split_flat(state["adam_m"]), R.split_flat(state["adam_v"])
    if R.jr:
        cm["log_threshold"] = torch.from_numpy(state["log_threshold_adam_m"]).double()
        cv["log_threshold"] = torch.from_numpy(state["log_threshold_adam_v"]).double()
    cmp_blocks("final Adam exp_avg", R.blocks(*(opt.state[p]["exp_avg"] for p in params)), cm, TOL_RUN, wm,
               absol=1e-12)
    cmp_blocks("final Adam exp_avg_sq", R.blocks(*(opt.state[p]["exp_avg_sq"] for p in params)), cv, 10 * TOL_RUN,
               wv, absol=1e-14)
    sf = torch.from_numpy(state["since_fired"])
    if not torch.equal(sf, since):
        fail(f"final steps since fired differ at {int((sf != since).sum())} latents")
    if R.btk and thr is not None:
        cmp_scalar("final batchtopk threshold", thr, float(final["threshold"][0]), TOL_RUN, w2, "threshold")

    # ---- coverage ----
    have = {"aux": cov["aux_pos"] > 0 and cov["aux_steps"] > 0, "aux_trunc": cov["aux_trunc"] > 0,
            "aux_scale": cov["aux_scale"] > 0, "dense": cov["dense"] > 0, "sparse": cov["sparse"] > 0,
            "mixed": cov["mixed"] > 0, "window": cov["win_on"] > 0 and cov["win_off"] > 0}
    for req in require:
        if not have[req]:
            fail(f"required coverage '{req}' not reached: {cov}")

    def fmt(d):
        return " ".join(f"{k_} {v:.1e}" for k_, v in d.items())

    tag = f" [perturbed: {perturb}]" if perturb else ""
    name = R.arch + (" transcoder" if R.transcoder else "")
    covs = (f"relu chunks: dense {cov['dense']}, sparse {cov['sparse']}, mixed steps {cov['mixed']}" if R.relu else
            f"jumprelu chunks: dense {cov['dense']}, sparse {cov['sparse']}, mixed steps {cov['mixed']}; STE window "
            f"entries above theta {cov['win_on']}, at or below {cov['win_off']}" if R.jr else
            f"aux > 0 in {cov['aux_steps']}/{steps} steps, {cov['aux_pos']} positive AuxK activations, "
            f"{cov['aux_trunc']} rows capped by k_aux, {cov['aux_scale']} steps with n_dead < k_aux")
    print(f"{name}{tag}: per step at C's params (tol {TOL_STEP:g}): {fmt(w1)}; gradient {fmt(wg)}")
    print(f"{name}{tag}: own torch run (tol {TOL_RUN:g}): {fmt(w2)}; final params {fmt(wp)}; "
          f"adam m {max(wm.values()):.1e} v {max(wv.values()):.1e}")
    print(f"{name}{tag}: {covs}")
    if failures:
        print(f"FAIL {name}{tag}: {len(failures)} mismatches")
        sys.exit(1)
    print(f"PASS {name}")
    sys.exit(0)


if __name__ == "__main__":
    main()
