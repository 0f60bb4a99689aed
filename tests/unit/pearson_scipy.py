"""Compare the interpreter's Pearson r / p-value and hypergeometric tail with SciPy.

Usage: pearson_scipy.py DRIVER   (DRIVER = test_interp_protocol; "--pearson" / "--hypergeom" modes)
Fails (exit 1) printing both values when any case differs beyond the tolerance.
"""
import subprocess
import sys

import numpy as np
from scipy import stats

drv = sys.argv[1]
rng = np.random.default_rng(7)
cases = []
for n in [3, 4, 5, 8, 16, 17, 30, 100, 1000]:
    for kind in range(6):
        x = rng.normal(size=n)
        if kind == 0:
            y = rng.normal(size=n)
        elif kind == 1:
            y = x + 0.3 * rng.normal(size=n)
        elif kind == 2:
            y = -x + 2.0 * rng.normal(size=n)
        elif kind == 3:  # protocol-like: scaled activations and predictions in [0, 1]
            x = np.clip(rng.random(n) * (rng.random(n) < 0.5), 0, 1)
            y = np.round(np.clip(x + 0.2 * rng.normal(size=n), 0, 1), 2)
        elif kind == 4:
            y = x + 1e-3 * rng.normal(size=n)  # r close to 1, tiny p
        else:
            y = rng.integers(0, 3, size=n).astype(float)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        cases.append((x, y))
inp = "".join(f"{len(x)} " + " ".join(repr(float(v)) for v in np.concatenate([x, y])) + "\n" for x, y in cases)
out = subprocess.run([drv, "--pearson"], input=inp, capture_output=True, text=True, check=True).stdout.split("\n")
bad = 0
for (x, y), line in zip(cases, out):
    r, p = map(float, line.split())
    ref = stats.pearsonr(x, y)
    rr, pr = float(ref[0]), float(ref[1])
    ok_r = abs(r - rr) <= 1e-10
    ok_p = abs(p - pr) <= 1e-9 + 1e-7 * abs(pr)
    if not (ok_r and ok_p):
        bad += 1
        print(f"n={len(x)}: r {r!r} vs scipy {rr!r}; p {p!r} vs scipy {pr!r}")
print(f"pearson: {len(cases)} cases, {bad} mismatches")

hcases = []
for N in [20, 50, 300, 17000]:
    for _ in range(12):
        K = int(rng.integers(1, N))
        n = int(rng.integers(1, N))
        lo, hi = max(0, n + K - N), min(n, K)
        k = int(rng.integers(lo, hi + 1))
        hcases.append((k, N, K, n))
hcases += [(40, 17000, 100, 200), (3, 17000, 50, 100), (90, 17000, 120, 100)]
inp = "".join(f"{k} {N} {K} {n}\n" for k, N, K, n in hcases)
out = subprocess.run([drv, "--hypergeom"], input=inp, capture_output=True, text=True, check=True).stdout.split("\n")
hbad = 0
for (k, N, K, n), line in zip(hcases, out):
    v = float(line)
    ref = float(stats.hypergeom.sf(k - 1, N, K, n))
    if not abs(v - ref) <= 1e-12 + 1e-8 * abs(ref):
        hbad += 1
        print(f"P(X>={k}; N={N} K={K} n={n}): {v!r} vs scipy {ref!r}")
print(f"hypergeom: {len(hcases)} cases, {hbad} mismatches")
sys.exit(1 if bad or hbad else 0)
