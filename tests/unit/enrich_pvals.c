// enrich_pvals — driver for tests/unit/enrich_scipy.py (p-values checked against scipy).
//   enrich_pvals tables            stdin: "a b c d" per line (a 2x2 table [[a, b], [c, d]]);
//                                  stdout: ln p greater, two-sided, less (fisher_exact's), per line
//   enrich_pvals engine OBO TSV NFEAT SEED ALT CORR
//                                  the engine on the real annotations with NFEAT planted-like study
//                                  sets (a random term's members, 70% kept, + random proteins);
//                                  dumps every tested term's K, every feature's k vector (counted
//                                  here, independently of the engine) and the engine's kept hits.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enrich.h"

static uint64_t rng_s = 88172645463325252ULL;
static uint64_t rnd(void) {
  rng_s ^= rng_s << 13;
  rng_s ^= rng_s >> 7;
  rng_s ^= rng_s << 17;
  return rng_s;
}

static int tables(void) {
  enrich_hyper_t *h = NULL;
  int64_t cap = 1 << 16;
  ps_err_t err = {0};
  if (enrich_hyper_new(&h, cap, &err)) return 1;
  long long a, b, c, d;
  while (scanf("%lld %lld %lld %lld", &a, &b, &c, &d) == 4) {
    if (a + b + c + d > cap) {
      enrich_hyper_free(&h);
      cap = a + b + c + d;
      if (enrich_hyper_new(&h, cap, &err)) return 1;
    }
    printf("%.17g %.17g %.17g\n", enrich_fisher_ln_p(h, a, b, c, d, ENRICH_GREATER),
           enrich_fisher_ln_p(h, a, b, c, d, ENRICH_TWO_SIDED), enrich_fisher_ln_p(h, a, b, c, d, ENRICH_LESS));
  }
  enrich_hyper_free(&h);
  return 0;
}

static int engine(int argc, char **argv) {
  if (argc < 9) return 2;
  ps_err_t err = {0};
  go_ontology_t *o = NULL;
  go_annotations_t *an = go_annotations_new();
  int nfeat = atoi(argv[4]);
  rng_s ^= (uint64_t)atoll(argv[5]) * 0x9e3779b97f4a7c15ULL;
  enrich_opts_t opts;
  enrich_opts_default(&opts);
  if (enrich_alt_parse(argv[6], &opts.alternative) || enrich_corr_parse(argv[7], &opts.correction)) return 2;
  opts.act_frac = atof(argv[8]);
  if (go_ontology_load(&o, argv[2], NULL, &err) || go_annotations_load_tsv(an, o, argv[3], NULL, NULL, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  go_annotations_propagate(an, o);
  int64_t np = (int64_t)an->n_proteins + 200;  // 200 analysed proteins without annotations
  int64_t *annot_of = malloc((size_t)np * sizeof *annot_of);
  for (int64_t p = 0; p < np; p++) annot_of[p] = p < (int64_t)an->n_proteins ? p : -1;
  enrich_engine_t *e = NULL;
  if (enrich_engine_new(&e, o, an, annot_of, np, &opts, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  uint32_t m = enrich_n_tested(e);
  printf("N %lld m %u\n", (long long)enrich_pop_size(e), m);
  printf("K");
  for (uint32_t i = 0; i < m; i++) printf(" %u", enrich_term_pop(e, enrich_tested_term(e, i)));
  printf("\nT");
  for (uint32_t i = 0; i < m; i++) printf(" %s", go_term(o, enrich_tested_term(e, i))->id);
  printf("\n");
  // study sets
  int64_t *indptr = calloc((size_t)nfeat + 1, sizeof *indptr);
  int64_t cap = 1 << 20, nnz = 0;
  int32_t *rows = malloc((size_t)cap * sizeof *rows);
  float *vals = malloc((size_t)cap * sizeof *vals);
  uint8_t *in = malloc((size_t)np);
  int32_t *pos = malloc(m * sizeof *pos);
  size_t nt = go_n_terms(o);
  int32_t *compact = malloc(nt * sizeof *compact);
  for (size_t t = 0; t < nt; t++) compact[t] = -1;
  for (uint32_t i = 0; i < m; i++) compact[enrich_tested_term(e, i)] = (int32_t)i;
  for (int f = 0; f < nfeat; f++) {
    memset(in, 0, (size_t)np);
    int32_t t;
    uint32_t K;
    do {
      t = enrich_tested_term(e, (uint32_t)(rnd() % m));
      K = enrich_term_pop(e, t);
    } while (K < 8 || K > 3000);
    for (int64_t p = 0; p < (int64_t)an->n_proteins; p++) {
      int has = 0;
      for (uint32_t j = 0; j < an->n_terms[p]; j++) has |= an->terms[p][j] == t;
      if (has && rnd() % 10 < 7) in[p] = 1;
    }
    int64_t noise = (int64_t)(rnd() % 400);
    for (int64_t i = 0; i < noise; i++) in[rnd() % (uint64_t)np] = 1;
    for (int64_t p = 0; p < np; p++) {
      if (!in[p]) continue;
      if (nnz == cap) {
        cap *= 2;
        rows = realloc(rows, (size_t)cap * sizeof *rows);
        vals = realloc(vals, (size_t)cap * sizeof *vals);
      }
      rows[nnz] = (int32_t)p;
      vals[nnz++] = (float)(0.01 + (double)(rnd() % 1000) / 100.0);
    }
    indptr[f + 1] = nnz;
  }
  enrich_csc_t csc = {nfeat, np, indptr, rows, vals};
  enrich_results_t res;
  ps_pool_t *pool = ps_pool_new(2);
  if (enrich_run(e, &csc, pool, &res, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  uint32_t *kv = malloc(m * sizeof *kv);
  for (int f = 0; f < nfeat; f++) {
    // independent count of k over the study set (value > act_frac * max)
    memset(kv, 0, m * sizeof *kv);
    float mx = 0;
    for (int64_t j = indptr[f]; j < indptr[f + 1]; j++) mx = vals[j] > mx ? vals[j] : mx;
    int64_t n = 0;
    for (int64_t j = indptr[f]; j < indptr[f + 1]; j++) {
      int32_t p = rows[j];
      if (!((double)vals[j] > opts.act_frac * (double)mx) || annot_of[p] < 0) continue;
      n++;
      for (uint32_t q = 0; q < an->n_terms[p]; q++)
        if (compact[an->terms[p][q]] >= 0) kv[compact[an->terms[p][q]]]++;
    }
    const enrich_feature_t *ft = &res.features[f];
    printf("F %d %lld %lld\nk", f, (long long)n, (long long)ft->n_study);
    for (uint32_t i = 0; i < m; i++) printf(" %u", kv[i]);
    printf("\n");
    uint32_t nh;
    const enrich_hit_t *h = enrich_feature_hits(&res, f, &nh);
    for (uint32_t i = 0; i < nh; i++)
      printf("H %s %u %u %.17g %.17g %.17g %.17g\n", go_term(o, h[i].term)->id, h[i].k, h[i].K, h[i].ln_p, h[i].p_bonf,
             h[i].q_bh, h[i].fold);
  }
  free(kv);
  enrich_results_free(&res);
  ps_pool_destroy(&pool);
  enrich_engine_free(&e);
  free(indptr);
  free(rows);
  free(vals);
  free(in);
  free(pos);
  free(compact);
  free(annot_of);
  go_annotations_destroy(&an);
  go_ontology_destroy(&o);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "tables")) return tables();
  if (argc >= 2 && !strcmp(argv[1], "engine")) return engine(argc, argv);
  fprintf(stderr, "usage: enrich_pvals tables | engine OBO TSV NFEAT SEED ALT CORR ACT_FRAC\n");
  return 2;
}
