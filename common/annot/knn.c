// knn.c — see knn.h: nearest-neighbour GO transfer by cosine, scored with CAFA Fmax.
#include "knn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "godata.h"
#include "strmap.h"

typedef struct knn {
  const go_ontology_t *onto;
  const go_annotations_t *truth;
  int32_t roots[3];
  int64_t k, bn;
  // training: n rows of d unit-normalised floats, their truth indices
  float *t;
  int64_t *tp;
  int64_t n, cap;
  uint32_t d;
  // one held-out block
  float *h, *s;
  char **hid;
  uint64_t *hidx;
  int64_t nh;
  // per protein scratch
  int64_t *nb;
  float *nb_sim;
  double *acc;     // per GO term (0: untouched)
  int32_t *touched, *terms;
  float *scores;
  annot_fmax_t fm[ANNOT_N_FM];
} knn_t;

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

// x / |x| in place (a zero vector stays zero: cosine 0 to everything).
static void unit(float *x, uint32_t d) {
  double ss = 0;
  for (uint32_t c = 0; c < d; c++) ss += (double)x[c] * x[c];
  if (ss <= 0) return;
  float inv = (float)(1.0 / sqrt(ss));
  for (uint32_t c = 0; c < d; c++) x[c] *= inv;
}

// The held-out ids (the exclusion from training) and their count.
static int held_ids(strmap_t **out, const emb_source_opts_t *held, int64_t *n, ps_err_t *err) {
  emb_source_t *src = NULL;
  emb_record_t rec;
  int rc = emb_source_open(&src, held, err);
  *out = strmap_new(1024);
  *n = 0;
  while (rc >= 0 && (rc = emb_source_next(src, &rec, err)) > 0) {
    strmap_put(*out, rec.id, 1);
    (*n)++;
  }
  emb_source_destroy(&src);
  return rc < 0 ? rc : 0;
}

static int dim_error(const char *path, const emb_record_t *rec, uint32_t d, const char *train, ps_err_t *err) {
  return ps_err_set(err, PS_EDIM, "%s: record %llu (id %s): dimension %u, the training embeddings (%s) have %u", path,
                    (unsigned long long)rec->index, rec->id, rec->dim, train, d);
}

static int load_train(knn_t *kn, const emb_source_opts_t *train, const strmap_t *exclude, annot_knn_stats_t *st,
                      ps_err_t *err) {
  emb_source_t *src = NULL;
  emb_record_t rec;
  int rc = emb_source_open(&src, train, err);
  while (rc >= 0 && (rc = emb_source_next(src, &rec, err)) > 0) {
    if (kn->d == 0) kn->d = rec.dim;
    if (rec.dim != kn->d) {
      rc = dim_error(train->path, &rec, kn->d, train->path, err);
      break;
    }
    if (strmap_get(exclude, rec.id, NULL)) {
      st->n_train_held++;
      continue;
    }
    int64_t p = go_annotations_find(kn->truth, rec.id);
    if (p < 0 || !kn->truth->n_terms[p]) {
      st->n_train_unannotated++;
      continue;
    }
    if (kn->n == kn->cap) {
      kn->cap = kn->cap ? 2 * kn->cap : 1024;
      kn->t = ps_xrealloc(kn->t, (size_t)kn->cap * kn->d * sizeof *kn->t);
      kn->tp = ps_xrealloc(kn->tp, (size_t)kn->cap * sizeof *kn->tp);
    }
    float *row = kn->t + (size_t)kn->n * kn->d;
    memcpy(row, rec.rows, (size_t)kn->d * sizeof *row);
    unit(row, kn->d);
    kn->tp[kn->n++] = p;
  }
  emb_source_destroy(&src);
  if (rc < 0) return rc;
  if (kn->n == 0)
    return ps_err_set(err, PS_EFORMAT, "%s: no annotated training protein (of %lld held out, %lld unannotated)",
                      train->path, (long long)st->n_train_held, (long long)st->n_train_unannotated);
  st->n_train = kn->n;
  return 0;
}

// Row i of the block: its k nearest training proteins, its term scores, the callback, Fmax.
static int predict_row(knn_t *kn, int64_t i, annot_knn_cb cb, void *ctx, ps_err_t *err) {
  const float *s = kn->s + (size_t)i * kn->n;
  int64_t m = 0;
  for (int64_t j = 0; j < kn->n; j++) {  // insertion into the best m (strict: earlier records win ties)
    if (m == kn->k && !(s[j] > kn->nb_sim[m - 1])) continue;
    int64_t q = m < kn->k ? m++ : m - 1;
    while (q > 0 && s[j] > kn->nb_sim[q - 1]) {
      kn->nb_sim[q] = kn->nb_sim[q - 1];
      kn->nb[q] = kn->nb[q - 1];
      q--;
    }
    kn->nb_sim[q] = s[j];
    kn->nb[q] = j;
  }
  double wsum = 0;
  size_t nt = 0;
  for (int64_t q = 0; q < m; q++) {
    double w = kn->nb_sim[q] > 0 ? kn->nb_sim[q] : 0;
    int64_t p = kn->tp[kn->nb[q]];
    kn->nb[q] = p;  // from here on the truth index
    if (w <= 0) continue;
    wsum += w;
    for (uint32_t j = 0; j < kn->truth->n_terms[p]; j++) {
      int32_t t = kn->truth->terms[p][j];
      if (t == kn->roots[0] || t == kn->roots[1] || t == kn->roots[2]) continue;
      if (kn->acc[t] == 0) kn->touched[nt++] = t;
      kn->acc[t] += w;
    }
  }
  qsort(kn->touched, nt, sizeof *kn->touched, cmp_i32);
  size_t np = 0;
  for (size_t j = 0; j < nt; j++) {
    int32_t t = kn->touched[j];
    float v = floorf((float)(kn->acc[t] / wsum) * 1e4f + 0.5f) / 1e4f;
    kn->acc[t] = 0;
    if (v > 0) kn->terms[np] = t, kn->scores[np++] = v;
  }
  int64_t p = go_annotations_find(kn->truth, kn->hid[i]);
  if (p >= 0)
    annot_fmax_add_terms(kn->fm, kn->onto, kn->terms, kn->scores, np, kn->truth->terms[p], kn->truth->n_terms[p]);
  if (!cb) return 0;
  annot_knn_pred_t pr = {.id = kn->hid[i], .index = kn->hidx[i], .truth_index = p, .n_nb = (size_t)m, .nb = kn->nb,
                         .nb_sim = kn->nb_sim, .n_terms = np, .terms = kn->terms, .scores = kn->scores};
  return cb(&pr, ctx, err);
}

// The block in kn->h (nh rows): similarities to every training protein (one sgemm), then each row.
// h (nh, d) x t^T (d, n) -> s (nh, n)
static int predict_block(knn_t *kn, annot_knn_cb cb, void *ctx, ps_err_t *err) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)kn->nh, (blasint)kn->n, (blasint)kn->d, 1.0f, kn->h,
              (blasint)kn->d, kn->t, (blasint)kn->d, 0.0f, kn->s, (blasint)kn->n);
  int rc = 0;
  for (int64_t i = 0; i < kn->nh && rc >= 0; i++) rc = predict_row(kn, i, cb, ctx, err);
  for (int64_t i = 0; i < kn->nh; i++) {
    free(kn->hid[i]);
    kn->hid[i] = NULL;
  }
  kn->nh = 0;
  return rc;
}

static void knn_free(knn_t *kn) {
  free(kn->t);
  free(kn->tp);
  free(kn->h);
  free(kn->s);
  if (kn->hid)
    for (int64_t i = 0; i < kn->bn; i++) free(kn->hid[i]);
  free(kn->hid);
  free(kn->hidx);
  free(kn->nb);
  free(kn->nb_sim);
  free(kn->acc);
  free(kn->touched);
  free(kn->terms);
  free(kn->scores);
}

int annot_knn_run(const go_ontology_t *onto, const go_annotations_t *truth, const emb_source_opts_t *train,
                  const emb_source_opts_t *held, const annot_knn_opts_t *o, annot_knn_cb cb, void *ctx,
                  annot_fmax_result_t r[ANNOT_N_FM], annot_knn_stats_t *st, ps_err_t *err) {
  annot_knn_opts_t def = {.k = ANNOT_KNN_K, .block_rows = ANNOT_KNN_BLOCK_ROWS};
  annot_knn_stats_t st0;
  if (!o) o = &def;
  if (!st) st = &st0;
  memset(st, 0, sizeof *st);
  PS_ASSERT(o->k >= 1 && o->block_rows >= 1);
  knn_t kn = {.onto = onto, .truth = truth, .bn = o->block_rows,
              .roots = {go_lookup(onto, "GO:0008150"), go_lookup(onto, "GO:0003674"), go_lookup(onto, "GO:0005575")}};
  for (int f = 0; f < ANNOT_N_FM; f++) annot_fmax_init(&kn.fm[f]);
  emb_source_opts_t to = *train, ho = *held;  // protein level, finite, whatever the options say
  to.level = ho.level = EMB_LEVEL_PROTEIN;
  to.allow_nonfinite = ho.allow_nonfinite = 0;  // NaN/Inf is always an error naming file and record
  train = &to, held = &ho;
  strmap_t *excl = NULL;
  emb_source_t *src = NULL;
  emb_record_t rec;
  int64_t n_held = 0;
  int rc = held_ids(&excl, held, &n_held, err);
  if (rc >= 0) rc = load_train(&kn, train, excl, st, err);
  strmap_destroy(&excl);
  if (rc < 0) goto out;
  kn.k = o->k < kn.n ? o->k : kn.n;
  size_t nterm = go_n_terms(onto);
  kn.h = ps_xmalloc((size_t)kn.bn * kn.d * sizeof *kn.h);
  kn.s = ps_xmalloc((size_t)kn.bn * (size_t)kn.n * sizeof *kn.s);
  kn.hid = ps_xcalloc((size_t)kn.bn, sizeof *kn.hid);
  kn.hidx = ps_xmalloc((size_t)kn.bn * sizeof *kn.hidx);
  kn.nb = ps_xmalloc((size_t)kn.k * sizeof *kn.nb);
  kn.nb_sim = ps_xmalloc((size_t)kn.k * sizeof *kn.nb_sim);
  kn.acc = ps_xcalloc(nterm ? nterm : 1, sizeof *kn.acc);
  kn.touched = ps_xmalloc((nterm ? nterm : 1) * sizeof *kn.touched);
  kn.terms = ps_xmalloc((nterm ? nterm : 1) * sizeof *kn.terms);
  kn.scores = ps_xmalloc((nterm ? nterm : 1) * sizeof *kn.scores);
  if ((rc = emb_source_open(&src, held, err)) < 0) goto out;
  while ((rc = emb_source_next(src, &rec, err)) > 0) {
    if (rec.dim != kn.d) {
      rc = dim_error(held->path, &rec, kn.d, train->path, err);
      goto out;
    }
    float *row = kn.h + (size_t)kn.nh * kn.d;
    memcpy(row, rec.rows, (size_t)kn.d * sizeof *row);
    unit(row, kn.d);
    kn.hid[kn.nh] = ps_xstrdup(rec.id);
    kn.hidx[kn.nh++] = rec.index;
    st->n_held++;
    if (kn.nh == kn.bn && (rc = predict_block(&kn, cb, ctx, err)) < 0) goto out;
  }
  if (rc < 0) goto out;
  if (kn.nh > 0 && (rc = predict_block(&kn, cb, ctx, err)) < 0) goto out;
  st->n_evaluated = kn.fm[0].n_proteins;
  if (r)
    for (int f = 0; f < ANNOT_N_FM; f++) annot_fmax_result(&kn.fm[f], &r[f]);
  rc = 0;
out:
  emb_source_destroy(&src);
  knn_free(&kn);
  return rc;
}

int annot_knn_eval(const char *data_dir, const char *train_emb, const char *train_ids, const char *held_emb,
                   const char *held_ids, const annot_knn_opts_t *o, annot_fmax_result_t r[ANNOT_N_FM],
                   annot_knn_stats_t *st, ps_err_t *err) {
  char dd[PATH_MAX];
  ps_godata_t gd;
  go_ontology_t *onto = NULL;
  go_annotations_t *truth = NULL;
  int rc;
  if (!data_dir && !(data_dir = ps_godata_default_dir(dd, sizeof dd)))
    return ps_err_set(err, PS_ENOTFOUND, "no data directory with a GO ontology (PROTSAE_DATA or ../shared/data)");
  if ((rc = ps_godata_find(data_dir, PS_GODATA_NEED_ONTOLOGY | PS_GODATA_NEED_ANNOTATIONS, &gd, err)) < 0) return rc;
  if ((rc = go_ontology_load(&onto, gd.obo, NULL, err)) < 0) goto out;
  if ((rc = annot_truth_load(&truth, onto, gd.annotations, gd.annotations_gaf, err)) < 0) goto out;
  emb_source_opts_t to = emb_source_opts_protein(train_emb, train_ids), ho = emb_source_opts_protein(held_emb, held_ids);
  rc = annot_knn_run(onto, truth, &to, &ho, o, NULL, NULL, r, st, err);
out:
  go_annotations_destroy(&truth);
  go_ontology_destroy(&onto);
  return rc;
}
