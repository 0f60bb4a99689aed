#!/usr/bin/python3
"""The reference protsae's GO enrichment is measured against: per feature, per term, the way
goatools' GOEnrichmentStudy does it (count the study proteins of every term from the proteins'
propagated annotations, then one scipy.stats.fisher_exact call per term), with the p-values
protsae reports by default (alternative='greater', terms with >= min_size population proteins).
goatools itself (not a Debian package) tests every term with >= 1 protein with the two-sided
test, ~18x slower per feature (../shared/bench/README.md).

Inputs (written by tests/bench/bench_enrich.c into --dir): assoc.tsv (population protein, its
GO ids), study.tsv (feature, its active proteins), protsae_p.tsv (feature, GO id, ln p of
protsae's enriched terms for those features). Prints `key: value` lines: the measured seconds
per feature, the time scaled to every feature, the speedup of protsae, and the largest relative
difference between the two sets of p-values.
"""
import argparse
import math
import time
from collections import defaultdict

from scipy.stats import fisher_exact

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--min-size", type=int, default=5)
ap.add_argument("--features-total", type=int, required=True)
ap.add_argument("--protsae-seconds", type=float, required=True)
ap.add_argument("--protsae-seconds-all-exact", type=float, default=0)
ap.add_argument("--protsae-seconds-two-sided", type=float, default=0)
a = ap.parse_args()

assoc = {}
for line in open(a.dir + "/assoc.tsv"):
    x = line.rstrip("\n").split("\t")
    assoc[int(x[0])] = set(x[1:])
pop_n = len(assoc)
pop_cnt = defaultdict(int)
for terms in assoc.values():
    for t in terms:
        pop_cnt[t] += 1
tested = [t for t, c in pop_cnt.items() if c >= a.min_size]

ours = defaultdict(dict)
for line in open(a.dir + "/protsae_p.tsv"):
    f, t, lp = line.split("\t")
    ours[int(f)][t] = float(lp)

times, worst, compared, sizes, two_times = [], 0.0, 0, [], []
study_lines = open(a.dir + "/study.tsv").readlines()
for li, line in enumerate(study_lines):
    x = line.rstrip("\n").split("\t")
    feat = int(x[0])
    t0 = time.perf_counter()
    study = [int(p) for p in x[1:] if int(p) in assoc]
    n = len(study)
    cnt = defaultdict(int)
    for p in study:
        for t in assoc[p]:
            cnt[t] += 1
    pvals = {}
    for t in tested:
        k, K = cnt.get(t, 0), pop_cnt[t]
        pvals[t] = fisher_exact([[k, n - k], [K - k, pop_n - K - n + k]], alternative="greater").pvalue
    times.append(time.perf_counter() - t0)
    sizes.append(n)
    for t, lp in ours[feat].items():
        ref = pvals[t]
        if ref >= 1e-300:
            compared += 1
            worst = max(worst, abs(math.exp(lp) - ref) / ref)

    if a.protsae_seconds_two_sided > 0 and li == len(study_lines) // 2:
        # goatools' own test, on the median feature: two-sided fisher_exact per term
        t0 = time.perf_counter()
        for t in tested:
            k, K = cnt.get(t, 0), pop_cnt[t]
            fisher_exact([[k, n - k], [K - k, pop_n - K - n + k]])
        two_times.append(time.perf_counter() - t0)

per = sum(times) / len(times)
scaled = per * a.features_total
print("scipy_features_measured: %d" % len(times))
print("scipy_study_sizes: %s" % ",".join(str(s) for s in sizes))
print("scipy_terms_per_feature: %d" % len(tested))
print("scipy_seconds_per_feature: %.3f" % per)
print("scipy_seconds_all_features_scaled: %.1f" % scaled)
print("enrich_speedup_vs_scipy: %.0f" % (scaled / a.protsae_seconds))
if a.protsae_seconds_all_exact > 0:
    print("enrich_speedup_vs_scipy_all_exact: %.0f" % (scaled / a.protsae_seconds_all_exact))
if two_times:
    per2 = sum(two_times) / len(two_times)
    print("scipy_two_sided_seconds_per_feature: %.3f" % per2)
    print("enrich_speedup_vs_scipy_two_sided: %.0f" % (per2 * a.features_total / a.protsae_seconds_two_sided))
print("scipy_pvalues_compared: %d" % compared)
print("scipy_max_rel_diff_vs_protsae: %.3g" % worst)
