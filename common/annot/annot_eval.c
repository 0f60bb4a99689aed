// annot_eval.c — the CAFA protein-centric Fmax, the naive baseline, the truth and the
// NAME.eval.txt text. See annot.h.
#include "annot_priv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int annot_cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

// ---- Fmax ----------------------------------------------------------------------------------
void annot_fmax_init(annot_fmax_t *f) { memset(f, 0, sizeof *f); }

void annot_fmax_add(annot_fmax_t *f, const float *score, const uint8_t *correct, size_t n_pred, size_t n_true) {
  if (!n_true) return;
  // per threshold bin: predictions (and true ones) whose score reaches exactly that bin
  int64_t np[ANNOT_N_TAU + 2] = {0}, ntp[ANNOT_N_TAU + 2] = {0};
  for (size_t i = 0; i < n_pred; i++) {
    double s = score[i];
    if (!(s > 0)) continue;
    int b = (int)floor(s * ANNOT_N_TAU + 1e-4);  // float 0.9f counts at 0.90 (scores have 4 decimals)
    if (b > ANNOT_N_TAU) b = ANNOT_N_TAU;
    if (b < 1) continue;  // below the lowest threshold
    np[b]++;
    if (correct[i]) ntp[b]++;
  }
  int64_t cp = 0, ctp = 0;
  for (int i = ANNOT_N_TAU; i >= 1; i--) {  // suffix sums: predictions with score >= i / 100
    cp += np[i];
    ctp += ntp[i];
    if (cp > 0) {
      f->prec_sum[i] += (double)ctp / (double)cp;
      f->n_prec[i]++;
    }
    f->rec_sum[i] += (double)ctp / (double)n_true;
  }
  f->n_proteins++;
}

void annot_fmax_result(const annot_fmax_t *f, annot_fmax_result_t *r) {
  memset(r, 0, sizeof *r);
  r->n_proteins = f->n_proteins;
  if (!f->n_proteins) return;
  for (int i = 1; i <= ANNOT_N_TAU; i++) {
    if (!f->n_prec[i]) continue;
    double pr = f->prec_sum[i] / (double)f->n_prec[i], rc = f->rec_sum[i] / (double)f->n_proteins;
    double fv = pr + rc > 0 ? 2 * pr * rc / (pr + rc) : 0;
    if (fv >= r->fmax && fv > 0) {
      r->fmax = fv;
      r->tau = (double)i / ANNOT_N_TAU;
      r->precision = pr;
      r->recall = rc;
    }
  }
}

void annot_fmax_add_ns(annot_fmax_t *fm, const go_ontology_t *o, const int32_t roots[3], const scored_t *pr, size_t np,
                       const int32_t *tt, uint32_t ntt, float *sc, uint8_t *cor) {
  for (int k = 0; k < ANNOT_N_FM; k++) {
    size_t n = 0, n_true = 0;
    for (uint32_t j = 0; j < ntt; j++)
      if (tt[j] != roots[0] && tt[j] != roots[1] && tt[j] != roots[2] && (!k || (int)go_term(o, tt[j])->ns == k - 1))
        n_true++;
    for (size_t j = 0; j < np; j++) {
      if (k && (int)go_term(o, pr[j].id)->ns != k - 1) continue;
      sc[n] = pr[j].v;
      cor[n++] = bsearch(&pr[j].id, tt, ntt, sizeof *tt, annot_cmp_i32) != NULL;
    }
    annot_fmax_add(&fm[k], sc, cor, n, n_true);
  }
}

void annot_fmax_add_terms(annot_fmax_t fm[ANNOT_N_FM], const go_ontology_t *o, const int32_t *terms,
                          const float *scores, size_t n, const int32_t *true_terms, uint32_t n_true) {
  int32_t roots[3] = {go_lookup(o, "GO:0008150"), go_lookup(o, "GO:0003674"), go_lookup(o, "GO:0005575")};
  scored_t *pr = ps_xmalloc((n ? n : 1) * sizeof *pr);
  float *sc = ps_xmalloc((n ? n : 1) * sizeof *sc);
  uint8_t *cor = ps_xmalloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) pr[i] = (scored_t){terms[i], scores[i]};
  annot_fmax_add_ns(fm, o, roots, pr, n, true_terms, n_true, sc, cor);
  free(cor);
  free(sc);
  free(pr);
}

void annot_naive_fmax(const go_ontology_t *onto, const go_annotations_t *truth, char *const *eval_ids, size_t n,
                      annot_fmax_result_t *r) {
  size_t nt = go_n_terms(onto);
  int32_t roots[3] = {go_lookup(onto, "GO:0008150"), go_lookup(onto, "GO:0003674"), go_lookup(onto, "GO:0005575")};
  int64_t *cnt = ps_xcalloc(nt, sizeof *cnt);
  uint8_t *held = ps_xcalloc(truth->n_proteins ? truth->n_proteins : 1, 1);
  for (size_t i = 0; i < n; i++) {
    int64_t p = go_annotations_find(truth, eval_ids[i]);
    if (p >= 0) held[p] = 1;
  }
  int64_t n_train = 0;
  for (size_t p = 0; p < truth->n_proteins; p++) {
    if (held[p] || !truth->n_terms[p]) continue;
    n_train++;
    for (uint32_t j = 0; j < truth->n_terms[p]; j++) cnt[truth->terms[p][j]]++;
  }
  // the terms with frequency >= 0.01 (4 decimals, as annotate writes scores), ascending term index
  scored_t *pr = ps_xmalloc(nt * sizeof *pr);
  size_t m = 0;
  for (size_t t = 0; t < nt && n_train; t++) {
    if ((int32_t)t == roots[0] || (int32_t)t == roots[1] || (int32_t)t == roots[2]) continue;
    float v = floorf((float)((double)cnt[t] / (double)n_train) * 1e4f + 0.5f) / 1e4f;
    if (v < 0.01f) continue;
    pr[m++] = (scored_t){(int32_t)t, v};
  }
  annot_fmax_t fm[ANNOT_N_FM];
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_init(&fm[k]);
  uint8_t *cor = ps_xmalloc(m ? m : 1);
  float *sc = ps_xmalloc((m ? m : 1) * sizeof *sc);
  for (size_t i = 0; i < n; i++) {
    int64_t p = go_annotations_find(truth, eval_ids[i]);
    if (p >= 0) annot_fmax_add_ns(fm, onto, roots, pr, m, truth->terms[p], truth->n_terms[p], sc, cor);
  }
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_result(&fm[k], &r[k]);
  free(cor);
  free(sc);
  free(pr);
  free(held);
  free(cnt);
}

int annot_truth_load(go_annotations_t **out, const go_ontology_t *o, const char *annotations, int gaf, ps_err_t *err) {
  go_annotations_t *a = go_annotations_new();
  int rc = gaf ? go_annotations_load_gaf(a, o, annotations, NULL, NULL, err)
               : go_annotations_load_tsv(a, o, annotations, NULL, NULL, err);
  if (rc < 0) {
    go_annotations_destroy(&a);
    *out = NULL;
    return rc;
  }
  go_annotations_propagate(a, o);
  *out = a;
  return 0;
}

void annot_eval_finish(const annot_model_t *m, const go_annotations_t *truth, const annot_fmax_t fm[ANNOT_N_FM],
                       const annot_stats_t *st, annot_eval_t *ev) {
  memset(ev, 0, sizeof *ev);
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_result(&fm[k], &ev->fm[k]);
  annot_naive_fmax(m->onto, truth, st->eval_ids, st->n_eval, ev->naive);
  ev->n_proteins = st->n_proteins;
  ev->n_evaluated = ev->fm[0].n_proteins;
}

int annot_eval_text(const annot_eval_t *ev, char *buf, size_t cap) {
  const annot_fmax_result_t *fa = ev->fm, *nva = ev->naive;
  int o = snprintf(buf, cap,
                   "proteins: %lld\nproteins_evaluated: %lld\nfmax: %.4f\nthreshold: %.2f\nprecision: %.4f\n"
                   "recall: %.4f\nnaive_fmax: %.4f\nnaive_threshold: %.2f\n",
                   (long long)ev->n_proteins, (long long)fa[0].n_proteins, fa[0].fmax, fa[0].tau, fa[0].precision,
                   fa[0].recall, nva[0].fmax, nva[0].tau);
  static const char *const nsn[] = {"bp", "mf", "cc"};
  for (int k = 1; k < ANNOT_N_FM && o > 0 && (size_t)o < cap; k++)
    o += snprintf(buf + o, cap - (size_t)o,
                  "proteins_evaluated_%s: %lld\nfmax_%s: %.4f\nthreshold_%s: %.2f\nnaive_fmax_%s: %.4f\n", nsn[k - 1],
                  (long long)fa[k].n_proteins, nsn[k - 1], fa[k].fmax, nsn[k - 1], fa[k].tau, nsn[k - 1], nva[k].fmax);
  return o;
}
