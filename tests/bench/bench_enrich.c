// bench_enrich — GO enrichment of every feature of a 10,240-latent SAE x every GO term on the
// 17,459 human proteins, against a Python/scipy reference that computes the same p-values the
// way goatools does (per feature, per term: fisher_exact(alternative='greater')), measured on a
// few features and scaled to all of them.
//
// usage: bench_enrich --data DIR --emb FILE [--ids FILE] [--truth SYNTH_DIR] [--sae DIR]
//                     [--d-sae 10240] [--k 64] [--threads 2] [--ref-features 4]
//                     [--ref PATH] [--python /usr/bin/python3] [--no-ref]
// Activations: --sae DIR encodes with a trained SAE; otherwise a TopK SAE of d-sae latents is
// built whose first encoder rows are the planted directions of --truth (GO-aligned features, as
// a trained SAE has) and the rest random unit vectors, applied to the centred embeddings.
// Prints `key: value` lines.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emb.h"
#include "enrich.h"
#include "fsutil.h"
#include "go.h"
#include "io.h"
#include "pool.h"
#include "sae.h"

static uint64_t rs = 0x243f6a8885a308d3ULL;
static double rnorm(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  double u1 = ((rs >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  double u2 = ((rs >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static int read_matrix(const char *path, const char *ids_path, float **x, char ***ids, int64_t *n, int64_t *d,
                       ps_err_t *err) {
  emb_source_t *src = NULL;
  emb_source_opts_t eo = emb_source_opts_protein(path, ids_path);
  int rc = emb_source_open(&src, &eo, err);
  if (rc) return rc;
  int64_t cap = 0;
  *n = 0;
  *d = -1;
  *x = NULL;
  if (ids) *ids = NULL;
  emb_record_t rec;
  int g;
  while ((g = emb_source_next(src, &rec, err)) == 1) {
    if (*d < 0) *d = rec.dim;
    if (*n == cap) {
      cap = cap ? cap * 2 : 4096;
      *x = ps_xrealloc(*x, (size_t)(cap * *d) * sizeof **x);
      if (ids) *ids = ps_xrealloc(*ids, (size_t)cap * sizeof **ids);
    }
    memcpy(*x + *n * *d, rec.rows, (size_t)*d * sizeof **x);
    if (ids) (*ids)[*n] = ps_xstrdup(rec.id);
    (*n)++;
  }
  emb_source_destroy(&src);
  return g < 0 ? g : 0;
}

int main(int argc, char **argv) {
  const char *data = NULL, *emb = NULL, *ids_path = NULL, *truth = NULL, *sae_dir = NULL;
  #ifndef ENRICH_SCIPY_REF
#define ENRICH_SCIPY_REF "tests/bench/enrich_scipy_ref.py"
#endif
  const char *ref = ENRICH_SCIPY_REF, *python = "/usr/bin/python3";
  int64_t d_sae = 10240, k = 64, threads = 2, ref_features = 4;
  int no_ref = 0;
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, dst, conv)                                                                                          \
  if (!strcmp(f, name) && v) {                                                                                          \
    dst = conv;                                                                                                         \
    i++;                                                                                                                \
    continue;                                                                                                           \
  }
    OPT("--data", data, v)
    OPT("--emb", emb, v)
    OPT("--ids", ids_path, v)
    OPT("--truth", truth, v)
    OPT("--sae", sae_dir, v)
    OPT("--ref", ref, v)
    OPT("--python", python, v)
    OPT("--d-sae", d_sae, atoll(v))
    OPT("--k", k, atoll(v))
    OPT("--threads", threads, atoll(v))
    OPT("--ref-features", ref_features, atoll(v))
    if (!strcmp(f, "--no-ref")) {
      no_ref = 1;
      continue;
    }
    fprintf(stderr, "usage: bench_enrich --data DIR --emb FILE [--ids FILE] [--truth SYNTH_DIR] [--sae DIR] "
                    "[--d-sae N] [--k K] [--threads N] [--ref-features N] [--ref PATH] [--python PATH] [--no-ref]\n");
    return 2;
  }
  if (!data || !emb) {
    fprintf(stderr, "bench_enrich: --data and --emb are required\n");
    return 2;
  }
  ps_err_t err = {0};
  char obo[4096], tsv[4096];
  snprintf(obo, sizeof obo, "%s/go-2022-07-01.obo.gz", data);
  snprintf(tsv, sizeof tsv, "%s/go_annotations.tsv.gz", data);
  double t0 = ps_mono_s();
  go_ontology_t *o = NULL;
  go_annotations_t *an = go_annotations_new();
  if (go_ontology_load(&o, obo, NULL, &err) || go_annotations_load_tsv(an, o, tsv, NULL, NULL, &err)) goto fail;
  go_annotations_propagate(an, o);
  double t_load = ps_mono_s() - t0;
  float *x = NULL;
  char **ids = NULL;
  int64_t n = 0, d = 0;
  if (read_matrix(emb, ids_path, &x, &ids, &n, &d, &err)) goto fail;
  // the SAE
  sae_t *s = NULL;
  if (sae_dir) {
    if (sae_load(&s, sae_dir, &err)) goto fail;
  } else {
    sae_cfg_t c;
    sae_cfg_default(&c);
    c.arch = SAE_TOPK;
    c.d_in = c.d_out = d;
    c.d_sae = d_sae;
    c.k = (int32_t)k;
    if (sae_new(&s, &c, &err)) goto fail;
    float *dirs = NULL;
    int64_t nd = 0, dd = 0;
    if (truth) {
      char p[4096];
      snprintf(p, sizeof p, "%s/truth/directions.npy", truth);
      if (read_matrix(p, NULL, &dirs, NULL, &nd, &dd, &err)) goto fail;
      if (dd != d) nd = 0;
    }
    for (int64_t j = 0; j < d_sae; j++) {
      float *w = s->W_encT + j * d;
      double q = 0;
      for (int64_t i = 0; i < d; i++) {
        w[i] = j < nd ? dirs[j * d + i] : (float)rnorm();
        q += (double)w[i] * w[i];
      }
      for (int64_t i = 0; i < d; i++) w[i] = (float)(w[i] / sqrt(q));
      memcpy(s->W_dec + j * d, w, (size_t)d * sizeof *w);
    }
    for (int64_t i = 0; i < d; i++) {
      double m = 0;
      for (int64_t r = 0; r < n; r++) m += x[r * d + i];
      s->b_dec[i] = (float)(m / (double)n);
    }
    free(dirs);
  }
  ps_pool_t *pool = ps_pool_new((int)threads);
  sae_enc_t *enc = NULL;
  sae_codes_t codes;
  memset(&codes, 0, sizeof codes);
  t0 = ps_mono_s();
  // encode in chunks of 2048 rows (pre-activations: 2048 x d_sae floats), appending the codes
  int64_t chunk = 2048, *ip = ps_xcalloc((size_t)n + 1, sizeof *ip), nnz = 0, capz = 0;
  int32_t *ci = NULL;
  float *cv = NULL;
  if (sae_enc_new(&enc, s, pool, chunk, &err)) goto fail;
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    int64_t nb = n - r0 < chunk ? n - r0 : chunk;
    if (sae_enc_run(enc, x + r0 * d, nb, &codes, &err)) goto fail;
    int64_t add = codes.indptr[nb];
    if (nnz + add > capz) {
      capz = (nnz + add) * 2;
      ci = ps_xrealloc(ci, (size_t)capz * sizeof *ci);
      cv = ps_xrealloc(cv, (size_t)capz * sizeof *cv);
    }
    memcpy(ci + nnz, codes.indices, (size_t)add * sizeof *ci);
    memcpy(cv + nnz, codes.values, (size_t)add * sizeof *cv);
    for (int64_t r = 0; r < nb; r++) ip[r0 + r + 1] = nnz + codes.indptr[r + 1];
    nnz += add;
  }
  double t_enc = ps_mono_s() - t0;
  int64_t *annot_of = ps_xmalloc((size_t)n * sizeof *annot_of);
  for (int64_t p = 0; p < n; p++) annot_of[p] = go_annotations_find(an, ids[p]);
  enrich_csc_buf_t csc;
  enrich_engine_t *e = NULL;
  t0 = ps_mono_s();
  if (enrich_csc_from_csr(&csc, n, s->cfg.d_sae, ip, ci, cv, &err)) goto fail;
  free(ip);
  free(ci);
  free(cv);
  double t_csc = ps_mono_s() - t0;
  t0 = ps_mono_s();
  if (enrich_engine_new(&e, o, an, annot_of, n, NULL, &err)) goto fail;
  double t_engine = ps_mono_s() - t0;
  enrich_results_t res, res_all;
  if (enrich_run(e, &csc.csc, pool, &res, &err)) goto fail;
  // the same with every p-value of a term with study hits summed exactly (alpha = 1: no screen)
  enrich_opts_t oa = *enrich_engine_opts(e);
  oa.alpha = 1;
  enrich_engine_t *ea = NULL;
  if (enrich_engine_new(&ea, o, an, annot_of, n, &oa, &err) || enrich_run(ea, &csc.csc, pool, &res_all, &err)) goto fail;
  // goatools' p-values: the two-sided test
  enrich_opts_t o2 = *enrich_engine_opts(e);
  o2.alternative = ENRICH_TWO_SIDED;
  enrich_engine_t *e2 = NULL;
  enrich_results_t res2;
  if (enrich_engine_new(&e2, o, an, annot_of, n, &o2, &err) || enrich_run(e2, &csc.csc, pool, &res2, &err)) goto fail;
  enrich_summary_t sum;
  enrich_summarize(e, &res, 1, 10, &sum);
  int64_t alive = 0;
  for (int64_t f = 0; f < res.n_features; f++) alive += res.features[f].n_study > 0;
  printf("enrich_proteins: %lld\nenrich_population: %lld\nenrich_features: %lld\nenrich_features_alive: %lld\n",
         (long long)n, (long long)enrich_pop_size(e), (long long)res.n_features, (long long)alive);
  printf("enrich_terms_tested: %u\nenrich_nnz: %lld\nenrich_threads: %d\n", enrich_n_tested(e),
         (long long)csc.csc.indptr[csc.csc.n_features], ps_pool_size(pool));
  printf("enrich_load_seconds: %.3f\nencode_seconds: %.3f\nenrich_csc_seconds: %.3f\nenrich_engine_seconds: %.3f\n",
         t_load, t_enc, t_csc, t_engine);
  printf("enrich_pairs_tested: %lld\nenrich_pairs_with_hits: %llu\nenrich_exact_pvalues: %llu\n",
         (long long)res.n_features * enrich_n_tested(e), (unsigned long long)res.n_touched,
         (unsigned long long)res.n_exact);
  printf("enrich_sig_pairs: %lld\nenrich_frac_with_term: %.4f\n", (long long)res.n_hits,
         (double)sum.with_any / (double)sum.n_features);
  printf("enrich_seconds: %.3f\nenrich_seconds_all_exact: %.3f\nenrich_all_exact_pvalues: %llu\n", res.seconds,
         res_all.seconds, (unsigned long long)res_all.n_exact);
  printf("enrich_seconds_two_sided: %.3f\nenrich_two_sided_sig_pairs: %lld\n", res2.seconds, (long long)res2.n_hits);
  if (!no_ref) {
    // the reference's inputs: population proteins with their tested terms, study sets of a few
    // features spread over the study-size range, and protsae's p-values for them
    char dir[] = "/tmp/bench-enrich.XXXXXX";
    if (!mkdtemp(dir)) {
      perror("mkdtemp");
      return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/assoc.tsv", dir);
    FILE *f = fopen(path, "w");
    for (int64_t p = 0; p < n; p++) {
      if (annot_of[p] < 0 || an->n_terms[annot_of[p]] == 0) continue;
      fprintf(f, "%lld", (long long)p);
      for (uint32_t j = 0; j < an->n_terms[annot_of[p]]; j++) fprintf(f, "\t%s", go_term(o, an->terms[annot_of[p]][j])->id);
      fprintf(f, "\n");
    }
    fclose(f);
    // features sorted by study size; pick ref_features at evenly spaced quantiles of the alive ones
    int64_t *order = ps_xmalloc((size_t)res_all.n_features * sizeof *order);
    int64_t na = 0;
    for (int64_t ff = 0; ff < res_all.n_features; ff++)
      if (res_all.features[ff].n_study > 0) order[na++] = ff;
    for (int64_t i = 1; i < na; i++)  // insertion sort by n_study (na <= d_sae)
      for (int64_t j = i; j > 0 && res_all.features[order[j]].n_study < res_all.features[order[j - 1]].n_study; j--) {
        int64_t t = order[j];
        order[j] = order[j - 1];
        order[j - 1] = t;
      }
    snprintf(path, sizeof path, "%s/study.tsv", dir);
    f = fopen(path, "w");
    char path2[4096];
    snprintf(path2, sizeof path2, "%s/protsae_p.tsv", dir);
    FILE *g = fopen(path2, "w");
    for (int64_t i = 0; i < ref_features && na > 0; i++) {
      int64_t ff = order[(na - 1) * (2 * i + 1) / (2 * ref_features)];
      fprintf(f, "%lld", (long long)ff);
      for (int64_t j = csc.csc.indptr[ff]; j < csc.csc.indptr[ff + 1]; j++) fprintf(f, "\t%d", csc.csc.rows[j]);
      fprintf(f, "\n");
      uint32_t nh;
      const enrich_hit_t *h = enrich_feature_hits(&res_all, ff, &nh);
      for (uint32_t j = 0; j < nh; j++)
        fprintf(g, "%lld\t%s\t%.17g\n", (long long)ff, go_term(o, h[j].term)->id, h[j].ln_p);
    }
    fclose(f);
    fclose(g);
    free(order);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s %s --dir %s --min-size %u --features-total %lld --protsae-seconds %.6f "
             "--protsae-seconds-all-exact %.6f --protsae-seconds-two-sided %.6f", python, ref, dir,
             enrich_engine_opts(e)->min_size, (long long)res.n_features, res.seconds, res_all.seconds, res2.seconds);
    fflush(stdout);
    int st = system(cmd);
    if (ps_rm_rf(dir) != 0) fprintf(stderr, "bench_enrich: could not remove %s\n", dir);
    if (st != 0) {
      fprintf(stderr, "bench_enrich: the scipy reference failed (%s)\n", ref);
      return 1;
    }
  }
  enrich_results_free(&res);
  enrich_results_free(&res_all);
  enrich_results_free(&res2);
  enrich_engine_free(&e2);
  enrich_engine_free(&e);
  enrich_engine_free(&ea);
  enrich_csc_buf_free(&csc);
  sae_codes_free(&codes);
  sae_enc_free(&enc);
  ps_pool_destroy(&pool);
  sae_free(&s);
  for (int64_t p = 0; p < n; p++) free(ids[p]);
  free(ids);
  free(x);
  free(annot_of);
  go_annotations_destroy(&an);
  go_ontology_destroy(&o);
  return 0;
fail:
  fprintf(stderr, "bench_enrich: %s\n", err.msg);
  return 1;
}
