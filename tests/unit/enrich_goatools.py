#!/usr/bin/python3
"""GO enrichment as the reference study ran goatools, recomputed independently with scipy.

usage: enrich_goatools.py PROTSAE OBO_GZ ANNOTATIONS_TSV_GZ DATA_DIR WORKDIR

No project code is used for the reference: this script parses the OBO itself (is_a, part_of,
alt_id, replaced_by, is_obsolete), maps and propagates the annotations itself, and computes every
p-value with scipy.stats.hypergeom.sf (= fisher_exact(alternative='greater')).

Units: 8 protein sets drawn with a fixed seed (70% of a random GO term's proteins + 40..400
random others + 5..40 of the unannotated proteins) written as the columns of an .npy (1 = in the set),
so `protsae enrich --neurons 1` enriches exactly those sets. The proteins are the annotated human
proteins plus 300 made-up accessions without annotations.

Runs `protsae enrich` with --enrich-relations is_a --enrich-correction bonferroni
--enrich-correction-scope namespace --enrich-depth is_a --alpha 1 (every term with
p x m_ns < 1 kept, so many p-values are compared), once with --enrich-population annotated and
once with analysed, and checks against the reference of the same settings:
  - the kept (unit, term) pairs are exactly the reference's (enriched, p x m_ns < alpha), and also
    at alpha 0.05 (p_bonf < 0.05);
  - k, n, K, N equal; p and p_bonf within 1e-6 relative (p > 1e-300); depth = the longest is_a path.
It also checks the test can fail: the reference with is_a + part_of propagation, and with one
Bonferroni family over all namespaces, must each disagree with the engine's output.
Exits 1 on any failure.
"""
import gzip
import math
import random
import subprocess
import sys

import numpy as np
from scipy.special import gammaln
from scipy.stats import hypergeom

TOL = 1e-6
MIN_SIZE = 5
fail = []


def parse_obo(path):
    terms, cur, stanza = {}, None, None
    with gzip.open(path, "rt") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("["):
                stanza = line
                cur = None
                continue
            if stanza != "[Term]" or ": " not in line:
                continue
            tag, val = line.split(": ", 1)
            val = val.split(" ! ")[0].strip()
            if tag == "id":
                cur = terms.setdefault(val, {"ns": None, "obs": False, "is_a": [], "part_of": [], "alt": [],
                                             "repl": None})
            elif cur is None:
                continue
            elif tag == "namespace":
                cur["ns"] = val
            elif tag == "is_obsolete" and val == "true":
                cur["obs"] = True
            elif tag == "is_a":
                cur["is_a"].append(val.split()[0])
            elif tag == "relationship" and val.split()[0] == "part_of":
                cur["part_of"].append(val.split()[1])
            elif tag == "alt_id":
                cur["alt"].append(val)
            elif tag == "replaced_by" and cur["repl"] is None:
                cur["repl"] = val.split()[0]
    alt = {a: t for t, r in terms.items() for a in r["alt"]}
    return terms, alt


def resolve(terms, alt, gid):
    gid = alt.get(gid, gid)
    seen = set()
    while gid in terms and terms[gid]["obs"]:
        if gid in seen or not terms[gid]["repl"]:
            return None
        seen.add(gid)
        gid = alt.get(terms[gid]["repl"], terms[gid]["repl"])
    return gid if gid in terms else None


def ancestors_fn(terms, rels):
    memo = {}

    def anc(t):
        if t in memo:
            return memo[t]
        out = {t}
        if not terms[t]["obs"]:
            for r in rels:
                for p in terms[t][r]:
                    out |= anc(p)
        memo[t] = out
        return out
    return anc


def is_a_depths(terms):
    memo = {}

    def depth(t):
        if t not in memo:
            ps = terms[t]["is_a"]
            memo[t] = 1 + max(depth(p) for p in ps) if ps else 0
        return memo[t]
    return depth


def load_annotations(path, terms, alt):
    ann, order = {}, []
    with gzip.open(path, "rt") as f:
        for i, line in enumerate(f):
            cols = line.rstrip("\n").split("\t")
            if i == 0 and ":" not in cols[1]:
                continue
            g = resolve(terms, alt, cols[1])
            if g is None:
                continue
            if cols[0] not in ann:
                ann[cols[0]] = set()
                order.append(cols[0])
            ann[cols[0]].add(g)
    return ann, order


def lbinom(a, b):
    return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)


def propagate(ann, anc):
    return {a: frozenset().union(*(anc(t) for t in ann[a])) for a in ann}


def reference(ids, prop, units, population, scope, ns_of, alpha):
    """{(unit, term): (k, n, K, N, p, p_bonf)} of the kept pairs, and the tested count per namespace.
    prop: each annotated accession's propagated terms."""
    pop = [i for i in ids if i in prop] if population == "annotated" else list(ids)
    N = len(pop)
    K = {}
    for a in pop:
        for t in prop.get(a, ()):
            K[t] = K.get(t, 0) + 1
    tested = {t for t, c in K.items() if c >= MIN_SIZE}
    m_ns = {}
    for t in tested:
        m_ns[ns_of[t]] = m_ns.get(ns_of[t], 0) + 1
    m_all = len(tested)
    popset = set(pop)
    out = {}
    for u, members in enumerate(units):
        study = [a for a in members if a in popset]
        n = len(study)
        k = {}
        for a in study:
            for t in prop.get(a, ()):
                if t in tested:
                    k[t] = k.get(t, 0) + 1
        ts = sorted(k)
        kv = np.array([k[t] for t in ts])
        Kv = np.array([K[t] for t in ts])
        fam = np.array([m_ns[ns_of[t]] if scope == "namespace" else m_all for t in ts])
        # p >= P(X = k): a term whose P(X = k) x family >= alpha cannot be kept (scipy 1.10's
        # hypergeom is slow on N ~ 17,000: the screen, from log-gamma, keeps the run short and
        # the kept set exact)
        lpmf = (lbinom(Kv, kv) + lbinom(N - Kv, n - kv)) - lbinom(N, n)
        need = (kv * N > n * Kv) & (lpmf + np.log(fam) < math.log(alpha) + 1e-9)
        pv = np.ones(len(ts))
        pv[need] = hypergeom.sf(kv[need] - 1, N, Kv[need], n)
        for t, kk, KK, p, fm in zip(ts, kv, Kv, pv, fam):
            if kk * N > n * KK and p * fm < alpha:
                out[(u, t)] = (int(kk), n, int(KK), N, float(p), min(1.0, float(p) * int(fm)))
    return out, m_ns


def run_engine(protsae, npy, idsf, data, outdir, population):
    cmd = [protsae, "enrich", "--neurons", "1", "--emb", npy, "--ids", idsf, "--data", data, "--threads", "2",
           "--enrich-population", population, "--enrich-relations", "is_a", "--enrich-correction", "bonferroni",
           "--enrich-correction-scope", "namespace", "--enrich-depth", "is_a", "--alpha", "1", "--out", outdir]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        sys.exit("protsae enrich failed: " + " ".join(cmd))
    for key in ("enrich_population", "enrich_relations", "enrich_correction_scope", "enrich_depth"):
        if f"{key}: " not in r.stdout:
            fail.append(f"protsae enrich printed no {key}")
    rows = {}
    with open(f"{outdir}/enrich_neurons.tsv") as f:
        hdr = f.readline().rstrip("\n").split("\t")
        for line in f:
            c = dict(zip(hdr, line.rstrip("\n").split("\t")))
            rows[(int(c["feature"]), c["go_id"])] = (int(c["k"]), int(c["n"]), int(c["K"]), int(c["N"]),
                                                     math.exp(float(c["ln_p"])), float(c["p_bonf"]), int(c["depth"]))
    return rows


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def compare(name, got, ref, depth, alpha_sets=(1.0, 0.05)):
    """Mismatches between the engine's rows and a reference; also records failures when depth is given."""
    bad = 0
    worst_p = worst_b = 0.0
    for a in alpha_sets:
        g = {key for key, v in got.items() if v[5] < a}
        r = {key for key, v in ref.items() if v[5] < a}
        # a pair within 1e-9 of the threshold may land on either side: not counted
        edge = {key for key in g ^ r if abs((got.get(key) or ref.get(key))[5] / a - 1) < 1e-9}
        diff = (g ^ r) - edge
        bad += len(diff)
        if depth and diff:
            fail.append(f"{name}: alpha {a}: {len(diff)} pairs kept by one side only, e.g. {sorted(diff)[:3]}")
    for key in set(got) & set(ref):
        gv, rv = got[key], ref[key]
        if gv[:4] != rv[:4]:
            bad += 1
            if depth:
                fail.append(f"{name}: {key}: k n K N engine {gv[:4]} reference {rv[:4]}")
            continue
        if rv[4] > 1e-300:
            e1, e2 = rel(gv[4], rv[4]), rel(gv[5], rv[5])
            worst_p, worst_b = max(worst_p, e1), max(worst_b, e2)
            if e1 > TOL or e2 > TOL:
                bad += 1
                if depth:
                    fail.append(f"{name}: {key}: p {gv[4]:.10g} vs {rv[4]:.10g}, p_bonf {gv[5]:.10g} vs {rv[5]:.10g}")
        if depth and gv[6] != depth(key[1]):
            fail.append(f"{name}: {key}: depth {gv[6]}, longest is_a path {depth(key[1])}")
    return bad, worst_p, worst_b


def main():
    protsae, obo, tsv, data, work = sys.argv[1:6]
    terms, alt = parse_obo(obo)
    ns_of = {t: r["ns"] for t, r in terms.items()}
    ann, order = load_annotations(tsv, terms, alt)
    prop_is_a = propagate(ann, ancestors_fn(terms, ("is_a",)))
    prop_both = propagate(ann, ancestors_fn(terms, ("is_a", "part_of")))
    unannotated = [f"XUNANNOT{i:04d}" for i in range(300)]
    rng = random.Random(18)
    members_of = {}
    for a in order:
        for t in prop_is_a[a]:
            members_of.setdefault(t, []).append(a)
    ids = order + unannotated
    cands = sorted(t for t, m in members_of.items() if 15 <= len(m) <= 1500)
    units = []
    for _ in range(8):
        t = rng.choice(cands)
        s = {a for a in members_of[t] if rng.random() < 0.7}
        s |= set(rng.sample(ids, rng.randint(40, 400))) | set(rng.sample(unannotated, rng.randint(5, 40)))
        units.append(s)
    col = {a: i for i, a in enumerate(ids)}
    X = np.zeros((len(ids), len(units)), dtype=np.float32)
    for u, s in enumerate(units):
        for a in s:
            X[col[a], u] = 1.0
    np.save(f"{work}/units.npy", X)
    with open(f"{work}/units.ids", "w") as f:
        f.write("\n".join(ids) + "\n")
    depth = is_a_depths(terms)
    for population in ("annotated", "analysed"):
        got = run_engine(protsae, f"{work}/units.npy", f"{work}/units.ids", data, f"{work}/out-{population}", population)
        ref, m_ns = reference(ids, prop_is_a, units, population, "namespace", ns_of, 1.0)
        bad, wp, wb = compare(population, got, ref, depth)
        n_unann = sum(1 for s in units for a in s if a not in ann)
        print(f"{population}: pairs_engine {len(got)} pairs_reference {len(ref)} kept_at_0.05 "
              f"{sum(1 for v in ref.values() if v[5] < 0.05)} families {dict(sorted(m_ns.items()))} "
              f"unannotated_in_units {n_unann} max_rel_err_p {wp:.2e} max_rel_err_p_bonf {wb:.2e} mismatches {bad}")
        if len(ref) < 50:
            fail.append(f"{population}: only {len(ref)} reference pairs: the units test too little")
        # the test must be able to fail: other propagation, other family
        for label, r2 in (("is_a+part_of propagation",
                           reference(ids, prop_both, units, population, "namespace", ns_of, 1.0)[0]),
                          ("Bonferroni over all namespaces",
                           reference(ids, prop_is_a, units, population, "all", ns_of, 1.0)[0])):
            b2 = compare(label, got, r2, None)[0]
            print(f"{population}: against the reference with {label}: mismatches {b2}")
            if b2 == 0:
                fail.append(f"{population}: the engine's output also matches {label}: the test cannot tell")
    if fail:
        print("FAIL:\n  " + "\n  ".join(fail[:30]))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
