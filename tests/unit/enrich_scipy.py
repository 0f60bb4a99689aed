#!/usr/bin/python3
"""GO enrichment p-values (common/enrich) against scipy.stats.fisher_exact / hypergeom.

usage: enrich_scipy.py DRIVER [OBO TSV]

1. Tables: random (small and large), realistic (N = 17,424 like the human population), extreme
   (full overlap, zero cells, huge tails, symmetric tables with exact ties for the two-sided
   test). Every p-value >= 1e-300 must equal scipy's to 1e-9 relative (greater, two-sided, less,
   and hypergeom.sf); p-values scipy cannot represent (< 1e-300) are checked in log space
   against an exact big-integer sum (|ln p - ln p_exact| <= 1e-9).
2. Engine, when OBO and TSV are given: the real human annotations, planted-like study sets;
   every tested term's p-value recomputed with scipy (vectorised hypergeom.sf, or fisher_exact
   for the two-sided test), Bonferroni and Benjamini-Hochberg recomputed here, and the set of
   kept terms must be exactly the enriched significant ones, with equal values.
Prints the max relative errors; exits 1 on any failure.
"""
import math
import random
import subprocess
import sys

import numpy as np
from scipy.stats import fisher_exact, hypergeom

TOL = 1e-9
fail = []


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def exact_ln_sf(a, N, K, n):
    """ln P(X >= a), X ~ Hypergeom(N, K, n), with Python integers (exact up to the final log)."""
    lo, hi = max(0, n - (N - K)), min(n, K)
    if a <= lo:
        return 0.0
    if a > hi:
        return -math.inf
    num = sum(math.comb(K, i) * math.comb(N - K, n - i) for i in range(a, hi + 1))
    return math.log(num) - math.log(math.comb(N, n))


def gen_tables(rng):
    t = []
    for _ in range(600):  # small, every shape
        N = rng.randint(1, 60)
        a = rng.randint(0, N)
        b = rng.randint(0, N - a)
        c = rng.randint(0, N - a - b)
        t.append((a, b, c, N - a - b - c))
    for _ in range(600):  # large random
        N = rng.randint(100, 60000)
        K = rng.randint(0, N)
        n = rng.randint(0, N)
        lo, hi = max(0, n - (N - K)), min(n, K)
        a = rng.randint(lo, hi)
        t.append((a, K - a, n - a, N - K - n + a))
    N = 17424
    for _ in range(1500):  # realistic GO tables, mostly enriched
        K = int(math.exp(rng.uniform(math.log(5), math.log(8000))))
        n = int(math.exp(rng.uniform(0, math.log(4000))))
        lo, hi = max(0, n - (N - K)), min(n, K)
        mean = n * K / N
        a = min(hi, max(lo, int(mean + abs(rng.gauss(0, 1)) * rng.choice([1, 3, 10, 30]) * (math.sqrt(mean) + 1))))
        if rng.random() < 0.2:
            a = rng.randint(lo, hi)
        t.append((a, K - a, n - a, N - K - n + a))
    # extremes
    for K, n in [(5, 5), (60, 60), (100, 80), (300, 300), (2000, 1900), (8000, 9000), (17000, 17000), (1, 1),
                 (17423, 5), (5, 17423), (120, 17424 - 120)]:
        N = 17424
        hi = min(n, K)
        lo = max(0, n - (N - K))
        for a in sorted({hi, hi - 1, lo, lo + 1, (hi + lo) // 2}):
            if lo <= a <= hi:
                t.append((a, K - a, n - a, N - K - n + a))
    t += [(0, 0, 0, 5), (3, 0, 0, 0), (0, 7, 0, 0), (4, 0, 0, 9), (0, 4, 9, 0), (10, 0, 0, 10), (0, 10, 10, 0)]
    for half in [1, 2, 5, 10, 50, 500, 5000]:  # symmetric: P(x) = P(n - x), exact ties
        for a in sorted({0, 1, half // 2, half - 1, half}):
            if 0 <= a <= half:
                t.append((a, half - a, half - a, a))
    return t


def check_tables(driver):
    rng = random.Random(20261125)
    tabs = gen_tables(rng)
    inp = "".join("%d %d %d %d\n" % x for x in tabs)
    out = subprocess.run([driver, "tables"], input=inp, capture_output=True, text=True, check=True).stdout.split("\n")
    worst = {"greater": 0.0, "two-sided": 0.0, "less": 0.0, "hypergeom.sf": 0.0, "exact_ln": 0.0}
    n_exact = 0
    for (a, b, c, d), line in zip(tabs, out):
        lg, l2, ll = (float(v) for v in line.split())
        mine = {"greater": lg, "two-sided": l2, "less": ll}
        for alt in ("greater", "two-sided", "less"):
            ref = fisher_exact([[a, b], [c, d]], alternative=alt).pvalue
            p = math.exp(mine[alt])
            if ref >= 1e-300 or p >= 1e-300:
                e = rel(p, ref)
                worst[alt] = max(worst[alt], e)
                if e > TOL:
                    fail.append("table %s %s: protsae %.17g scipy %.17g (rel %.3g)" % ((a, b, c, d), alt, p, ref, e))
        N, K, n = a + b + c + d, a + b, a + c
        if N and K and n and b + d and c + d:
            ref = hypergeom.sf(a - 1, N, K, n)
            p = math.exp(lg)
            if ref >= 1e-300:
                e = rel(p, ref)
                worst["hypergeom.sf"] = max(worst["hypergeom.sf"], e)
                if e > TOL:
                    fail.append("table %s hypergeom.sf: protsae %.17g scipy %.17g" % ((a, b, c, d), p, ref))
            if (ref < 1e-280 or rng.random() < 0.02) and N <= 20000 and min(n, K) - a < 400:
                ex = exact_ln_sf(a, N, K, n)
                n_exact += 1
                e = abs(lg - ex) if ex != -math.inf else (0 if lg == -math.inf else 1)
                worst["exact_ln"] = max(worst["exact_ln"], e)
                if e > TOL:
                    fail.append("table %s ln p: protsae %.17g exact %.17g" % ((a, b, c, d), lg, ex))
    print("tables: %d (%d checked against exact integers in log space)" % (len(tabs), n_exact))
    for k, v in worst.items():
        print("max_rel_err_%s: %.3g" % (k.replace("-", "_").replace(".", "_"), v))
    return worst


def bh(p):
    m = len(p)
    order = np.argsort(p, kind="stable")
    q = np.empty(m)
    run = 1.0
    for r in range(m - 1, -1, -1):
        i = order[r]
        run = min(run, p[i] * m / (r + 1))
        q[i] = run
    return q


def check_engine(driver, obo, tsv, nfeat, alt, corr, act_frac, seed=7):
    out = subprocess.run([driver, "engine", obo, tsv, str(nfeat), str(seed), alt, corr, str(act_frac)], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    head = out[0].split()
    N, m = int(head[1]), int(head[3])
    K = np.array([int(v) for v in out[1].split()[1:]])
    T = out[2].split()[1:]
    assert len(K) == m and len(T) == m
    i = 3
    worst = {"p": 0.0, "bonf": 0.0, "q": 0.0}
    n_hits = 0
    n_exact = 0
    while i < len(out) and out[i].startswith("F"):
        _, f, n, n_engine = out[i].split()
        n, n_engine = int(n), int(n_engine)
        if n != n_engine:
            fail.append("engine feature %s: study size %d, engine %d" % (f, n, n_engine))
        k = np.array([int(v) for v in out[i + 1].split()[1:]])
        i += 2
        hits = {}
        while i < len(out) and out[i].startswith("H"):
            x = out[i].split()
            hits[x[1]] = (int(x[2]), int(x[3]), float(x[4]), float(x[5]), float(x[6]), float(x[7]))
            i += 1
        n_hits += len(hits)
        if alt == "greater":
            p = hypergeom.sf(k - 1, N, K, n)
            p[k == 0] = 1.0
        else:
            memo = {}
            for j in range(m):  # fisher_exact once per distinct (k, K)
                key = (int(k[j]), int(K[j]))
                if key not in memo:
                    memo[key] = fisher_exact([[k[j], n - k[j]], [K[j] - k[j], N - K[j] - n + k[j]]]).pvalue
            p = np.array([memo[(int(k[j]), int(K[j]))] for j in range(m)])
        q = bh(p)
        bonf = np.minimum(1.0, p * m)
        enriched = k * N > n * K
        sig = (q < 0.05) if corr == "fdr" else (bonf < 0.05)
        want = {T[j] for j in np.nonzero(enriched & sig)[0]}
        got = set(hits)
        if want != got:
            fail.append("engine feature %s: kept %d terms, scipy says %d (missing %s, extra %s)" %
                        (f, len(got), len(want), sorted(want - got)[:5], sorted(got - want)[:5]))
        idx = {t: j for j, t in enumerate(T)}
        for t, (hk, hK, lnp, pb, hq, fold) in hits.items():
            j = idx[t]
            if hk != k[j] or hK != K[j]:
                fail.append("engine feature %s term %s: k/K %d/%d, expected %d/%d" % (f, t, hk, hK, k[j], K[j]))
            if p[j] >= 1e-300:
                for name, mine, ref in (("p", math.exp(lnp), p[j]), ("bonf", pb, bonf[j]), ("q", hq, q[j])):
                    if ref >= 1e-300:
                        e = rel(mine, ref)
                        worst[name] = max(worst[name], e)
                        if e > TOL:
                            fail.append("engine feature %s term %s %s: protsae %.17g scipy %.17g" % (f, t, name, mine,
                                                                                                    ref))
            else:
                ex = None
                if alt == "greater" and n_exact < 12:
                    ex = exact_ln_sf(int(k[j]), N, int(K[j]), n)
                    n_exact += 1
                if ex is not None and abs(ex - lnp) > TOL:
                    fail.append("engine feature %s term %s ln p %.17g exact %.17g" % (f, t, lnp, ex))
            if abs(fold - (k[j] / n) / (K[j] / N)) > 1e-12 * fold:
                fail.append("engine feature %s term %s fold %.17g" % (f, t, fold))
    print("engine %s/%s act_frac %g: %d kept terms checked; max_rel_err p %.3g bonf %.3g q %.3g" %
          (alt, corr, act_frac, n_hits, worst["p"], worst["bonf"], worst["q"]))
    if n_hits == 0:
        fail.append("engine %s/%s: no kept term at all" % (alt, corr))
    return worst


def main():
    driver = sys.argv[1]
    check_tables(driver)
    if len(sys.argv) >= 4:
        check_engine(driver, sys.argv[2], sys.argv[3], 6, "greater", "fdr", 0)
        check_engine(driver, sys.argv[2], sys.argv[3], 4, "greater", "bonferroni", 0.5)
        check_engine(driver, sys.argv[2], sys.argv[3], 1, "two-sided", "fdr", 0, seed=8)
    else:
        print("engine check skipped: no annotation data")
    for f in fail[:30]:
        print("FAIL", f)
    print("failures: %d" % len(fail))
    sys.exit(1 if fail else 0)


if __name__ == "__main__":
    main()
