#!/usr/bin/python3
"""ESM2 forward in plain PyTorch (the reference for protsae's native ESM2), float32, CPU.

Same semantics as Hugging Face's EsmModel / fair-esm: ESM-1b alphabet with BOS/EOS, token-dropout
scaling, rotary embeddings with the stored inv_freq, pre-LayerNorm blocks, exact GELU, the final
LayerNorm on the last layer, lm_head for logits. Batches are padded (pad token, masked keys) as
fair-esm batches them: sequences sorted by length, cut by a token budget counted with padding
(FastaBatchedDataset.get_batch_indices).

Reads the Hugging Face checkpoint directory (config.json + model.safetensors) with a small
safetensors reader (the safetensors package is not in Debian 12).

Usage (Debian's /usr/bin/python3 with python3-torch):
  esm2_torch.py --model DIR --fasta F --compare C_OUT.safetensors [--expected EXP.safetensors]
      forward of every sequence (layers 0..L per residue, logits), compared with protsae's output
      (keys ID.layerK.per_residue, ID.logits) and the expected tensors; prints `key: value` lines
      torch_vs_c_max_abs_err, torch_vs_expected_max_abs_err.
  esm2_torch.py --model DIR --fasta F --bench [--threads 2] [--tokens-per-batch 4096] [--repeat 1]
      times the forward (all layers, last layer kept); prints torch_tokens_per_s (tokens = residues
      + BOS/EOS, padding not counted), torch_seconds, torch_tokens, and torch_last_mean_checksum (sum of squares of the last layer's means).
"""
import argparse, gzip, json, math, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

DT = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def load_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        raw = buf[base + b: base + e]
        if v["dtype"] == "BF16":
            a = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            a = a.view(np.float32)
        else:
            a = np.frombuffer(raw, dtype=DT[v["dtype"]])
        out[k] = torch.from_numpy(a.astype(np.float32).reshape(v["shape"]).copy())
    return out


def read_fasta(path):
    op = gzip.open if path.endswith(".gz") else open
    recs, name, seq = [], None, []
    with op(path, "rt") as f:
        for line in f:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    recs.append((name, "".join(seq)))
                name, seq = line[1:].split()[0], []
            elif line:
                seq.append(line)
    if name is not None:
        recs.append((name, "".join(seq)))
    return recs


class ESM2:
    def __init__(self, d):
        cfg = json.load(open(f"{d}/config.json"))
        W = load_safetensors(f"{d}/model.safetensors")
        p = "esm." if "esm.embeddings.word_embeddings.weight" in W else ""
        self.cfg = cfg
        self.L, self.D, self.H = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]
        self.hd = self.D // self.H
        self.eps = cfg.get("layer_norm_eps", 1e-5)
        self.token_dropout = cfg.get("token_dropout", True)
        vocab = cfg.get("vocab_list") or ["<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T",
                                          "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U",
                                          "Z", "O", ".", "-", "<null_1>", "<mask>"]
        self.tok = {t: i for i, t in enumerate(vocab)}
        self.cls, self.eos, self.pad = self.tok["<cls>"], self.tok["<eos>"], cfg.get("pad_token_id", 1)
        self.mask = cfg.get("mask_token_id", self.tok.get("<mask>"))
        self.emb = W[p + "embeddings.word_embeddings.weight"]
        self.lnf = (W[p + "encoder.emb_layer_norm_after.weight"], W[p + "encoder.emb_layer_norm_after.bias"])
        self.layers = []
        for l in range(self.L):
            q = f"{p}encoder.layer.{l}."
            g = lambda n: W[q + n]
            inv = W.get(q + "attention.self.rotary_embeddings.inv_freq")
            if inv is None:
                inv = (1.0 / (10000 ** (torch.arange(0, self.hd, 2).float() / self.hd))).half().float()
            self.layers.append(dict(
                wq=g("attention.self.query.weight"), bq=g("attention.self.query.bias"),
                wk=g("attention.self.key.weight"), bk=g("attention.self.key.bias"),
                wv=g("attention.self.value.weight"), bv=g("attention.self.value.bias"),
                wo=g("attention.output.dense.weight"), bo=g("attention.output.dense.bias"),
                ln1=(g("attention.LayerNorm.weight"), g("attention.LayerNorm.bias")),
                w1=g("intermediate.dense.weight"), b1=g("intermediate.dense.bias"),
                w2=g("output.dense.weight"), b2=g("output.dense.bias"),
                ln2=(g("LayerNorm.weight"), g("LayerNorm.bias")), inv_freq=inv))
        self.lm = None
        if "lm_head.dense.weight" in W:
            self.lm = dict(dw=W["lm_head.dense.weight"], db=W["lm_head.dense.bias"],
                           lw=W["lm_head.layer_norm.weight"], lb=W["lm_head.layer_norm.bias"],
                           dec=W.get("lm_head.decoder.weight", self.emb), bias=W["lm_head.bias"])

    def tokens(self, seq, max_res=1022):
        return [self.cls] + [self.tok[c] for c in seq[:max_res]] + [self.eos]

    @staticmethod
    def rot(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def forward(self, toks, keep_all=False, logits=False):
        """toks: (B, T) long, padded with pad. Returns ({layer: (B,T,D)}, logits or None)."""
        B, T = toks.shape
        pad = toks.eq(self.pad)
        x = F.embedding(toks, self.emb)
        if self.token_dropout:
            m = toks.eq(self.mask)
            x = x.masked_fill(m.unsqueeze(-1), 0.0)
            ratio = m.sum(-1).float() / (~pad).sum(-1).float()
            x = x * (1 - 0.15 * 0.8) / (1 - ratio)[:, None, None]
        x = x * (~pad).unsqueeze(-1).type_as(x)
        reps = {0: x} if keep_all else {}
        t = torch.arange(T, dtype=torch.float32)
        kmask = pad[:, None, None, :]
        for l, P in enumerate(self.layers):
            h = F.layer_norm(x, (self.D,), *P["ln1"], eps=self.eps)
            q = F.linear(h, P["wq"], P["bq"]) * self.hd ** -0.5
            k = F.linear(h, P["wk"], P["bk"])
            v = F.linear(h, P["wv"], P["bv"])
            q, k, v = (z.view(B, T, self.H, self.hd).transpose(1, 2) for z in (q, k, v))
            fr = torch.outer(t, P["inv_freq"])
            e = torch.cat((fr, fr), dim=-1)
            cos, sin = e.cos()[None, None], e.sin()[None, None]
            q = q * cos + self.rot(q) * sin
            k = k * cos + self.rot(k) * sin
            s = torch.matmul(q, k.transpose(-1, -2)).masked_fill(kmask, float("-inf"))
            o = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(B, T, self.D)
            x = x + F.linear(o, P["wo"], P["bo"])
            h = F.layer_norm(x, (self.D,), *P["ln2"], eps=self.eps)
            x = x + F.linear(F.gelu(F.linear(h, P["w1"], P["b1"])), P["w2"], P["b2"])
            if l == self.L - 1:
                x = F.layer_norm(x, (self.D,), *self.lnf, eps=self.eps)
            if keep_all:
                reps[l + 1] = x
        if not keep_all:
            reps[self.L] = x
        lg = None
        if logits and self.lm is not None:
            z = F.gelu(F.linear(x, self.lm["dw"], self.lm["db"]))
            z = F.layer_norm(z, (self.D,), self.lm["lw"], self.lm["lb"], eps=self.eps)
            lg = F.linear(z, self.lm["dec"]) + self.lm["bias"]
        return reps, lg


def batches(lens, budget):
    """fair-esm FastaBatchedDataset.get_batch_indices: sort by length, padded token budget."""
    order = sorted(range(len(lens)), key=lambda i: lens[i])
    out, cur, mx = [], [], 0
    for i in order:
        sz = lens[i] + 2
        if cur and max(mx, sz) * (len(cur) + 1) > budget:
            out.append(cur)
            cur, mx = [], 0
        cur.append(i)
        mx = max(mx, sz)
    if cur:
        out.append(cur)
    return out


def pad_batch(model, seqs, idx):
    tk = [model.tokens(seqs[i]) for i in idx]
    T = max(len(t) for t in tk)
    out = torch.full((len(tk), T), model.pad, dtype=torch.long)
    for r, t in enumerate(tk):
        out[r, :len(t)] = torch.tensor(t)
    return out, [len(t) for t in tk]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--fasta", required=True)
    ap.add_argument("--compare")
    ap.add_argument("--expected")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens-per-batch", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = ESM2(a.model)
    recs = read_fasta(a.fasta)
    names, seqs = [r[0] for r in recs], [r[1] for r in recs]
    if a.compare:
        c_out = load_safetensors(a.compare)
        exp = load_safetensors(a.expected) if a.expected else None
        toks, lens = pad_batch(model, seqs, list(range(len(seqs))))  # all in one padded batch
        with torch.inference_mode():
            reps, lg = model.forward(toks, keep_all=True, logits=True)
        e_c, e_x = 0.0, 0.0
        for b, name in enumerate(names):
            n = lens[b]
            for l in range(model.L + 1):
                r = reps[l][b, 1:n - 1]
                key = f"{name}.layer{l}.per_residue"
                e_c = max(e_c, (r - c_out[key]).abs().max().item())
                if exp is not None:
                    e_x = max(e_x, (r - exp[key]).abs().max().item())
                    e_x = max(e_x, (r.mean(0) - exp[f"{name}.layer{l}.mean"]).abs().max().item())
            if lg is not None and f"{name}.logits" in c_out:
                e_c = max(e_c, (lg[b, :n] - c_out[f"{name}.logits"]).abs().max().item())
                if exp is not None:
                    e_x = max(e_x, (lg[b, :n] - exp[f"{name}.logits"]).abs().max().item())
        print(f"torch_vs_c_max_abs_err: {e_c:.3g}")
        if exp is not None:
            print(f"torch_vs_expected_max_abs_err: {e_x:.3g}")
    if a.bench:
        lens = [min(len(s), 1022) for s in seqs]
        bl = batches(lens, a.tokens_per_batch)
        ntok = sum(l + 2 for l in lens)
        best, checksum = None, 0.0
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            checksum = 0.0
            with torch.inference_mode():
                for idx in bl:
                    toks, ls = pad_batch(model, seqs, idx)
                    reps, _ = model.forward(toks)
                    x = reps[model.L]
                    for r, n in enumerate(ls):
                        checksum += x[r, 1:n - 1].mean(0).double().pow(2).sum().item()
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        print(f"torch_tokens: {ntok}")
        print(f"torch_seconds: {best:.3f}")
        print(f"torch_tokens_per_s: {ntok / best:.1f}")
        print(f"torch_last_mean_checksum: {checksum:.6f}")


if __name__ == "__main__":
    sys.exit(main())
