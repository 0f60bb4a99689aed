// offline.c — see offline.h.
#include "offline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct offline_bg {
  size_t n_go, n_pfam, n_stem;
  uint32_t *go, *pfam, *stem;  // background counts per term / family / stem
  uint64_t n_annot;            // analysed proteins with GO annotations
  uint64_t n_known;            // analysed proteins known to the db (Pfam / stem background)
};

double offline_hypergeom_sf(uint64_t k, uint64_t N, uint64_t K, uint64_t n) {
  if (K > N || n > N) return 1;
  uint64_t lo = n + K > N ? n + K - N : 0, hi = K < n ? K : n;
  if (k <= lo) return 1;
  if (k > hi) return 0;
  // log pmf(x), then a sum by the ratio recurrence away from the mode (terms only shrink): the
  // upper tail from k when k is above the mean, else 1 - the lower tail below k
  double lnorm = lgamma((double)N + 1) - lgamma((double)n + 1) - lgamma((double)(N - n) + 1);
  int upper = (double)k * (double)N >= (double)n * (double)K;
  uint64_t x0 = upper ? k : k - 1;
  double lp = lgamma((double)K + 1) - lgamma((double)x0 + 1) - lgamma((double)(K - x0) + 1) +
              lgamma((double)(N - K) + 1) - lgamma((double)(n - x0) + 1) - lgamma((double)(N - K - n + x0) + 1) - lnorm;
  double term = 1, sum = 1;
  if (upper) {
    for (uint64_t x = x0; x < hi; x++) {
      term *= (double)(K - x) * (double)(n - x) / ((double)(x + 1) * (double)(N - K - n + x + 1));
      sum += term;
      if (term < sum * 1e-17) break;
    }
    double p = exp(lp) * sum;
    return p > 1 ? 1 : p;
  }
  for (uint64_t x = x0; x > lo; x--) {
    term *= (double)x * (double)(N - K - n + x) / ((double)(K - x + 1) * (double)(n - x + 1));
    sum += term;
    if (term < sum * 1e-17) break;
  }
  double p = 1 - exp(lp) * sum;
  return p < 0 ? 0 : p > 1 ? 1 : p;
}

offline_bg_t *offline_bg_new(const interp_db_t *db, const int64_t *row_db, size_t n_rows) {
  offline_bg_t *bg = ps_xcalloc(1, sizeof *bg);
  bg->n_go = db->go ? go_n_terms(db->go) : 0;
  bg->n_pfam = db->n_pfam_names;
  bg->n_stem = db->n_stem_names;
  bg->go = ps_xcalloc(bg->n_go + 1, sizeof *bg->go);
  bg->pfam = ps_xcalloc(bg->n_pfam + 1, sizeof *bg->pfam);
  bg->stem = ps_xcalloc(bg->n_stem + 1, sizeof *bg->stem);
  for (size_t i = 0; i < n_rows; i++) {
    if (row_db[i] < 0) continue;
    const interp_protein_t *p = &db->p[row_db[i]];
    bg->n_known++;
    if (p->n_prop) bg->n_annot++;
    for (uint32_t k = 0; k < p->n_prop; k++) bg->go[p->prop[k]]++;
    for (uint32_t k = 0; k < p->n_pfam; k++) bg->pfam[p->pfam[k]]++;
    if (p->stem >= 0) bg->stem[p->stem]++;
  }
  return bg;
}

void offline_bg_destroy(offline_bg_t **bgp) {
  if (!bgp || !*bgp) return;
  free((*bgp)->go);
  free((*bgp)->pfam);
  free((*bgp)->stem);
  free(*bgp);
  *bgp = NULL;
}

void offline_expl_free(offline_expl_t *x) {
  free(x->text);
  memset(x, 0, sizeof *x);
}

typedef struct cand {
  int32_t id;
  uint32_t k;
  double p, fold;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->p != y->p) return x->p < y->p ? -1 : 1;
  if (x->fold != y->fold) return x->fold > y->fold ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

// Candidates among ids with study counts sk[] (only those listed in touched[0..nt)).
static size_t rank(const uint32_t *sk, const int32_t *touched, size_t nt, const uint32_t *bgc, const uint32_t *exc,
                   uint64_t N, uint64_t n, uint32_t min_k, cand_t *out) {
  size_t m = 0;
  for (size_t i = 0; i < nt; i++) {
    int32_t id = touched[i];
    uint32_t k = sk[id];
    uint64_t K = bgc[id] - exc[id];
    if (k < min_k || K == 0 || N == 0 || n == 0) continue;
    double fold = ((double)k / (double)n) / ((double)K / (double)N);
    if (fold < 2) continue;
    double p = offline_hypergeom_sf(k, N, K, n);
    if (p >= 1e-3) continue;
    out[m++] = (cand_t){id, k, p, fold};
  }
  qsort(out, m, sizeof *out, cmp_cand);
  return m;
}

static int is_ancestor(const go_ontology_t *o, int32_t anc, int32_t of) {
  size_t n = go_ancestors(o, of, NULL, 0);
  int32_t *buf = ps_xmalloc((n ? n : 1) * sizeof *buf);
  go_ancestors(o, of, buf, n);
  int found = 0;
  for (size_t i = 0; i < n && !found; i++) found = buf[i] == anc;
  free(buf);
  return found;
}

static double weight_of(double p) {
  double w = p > 0 ? -log10(p) / 20.0 : 1.0;
  return w > 1 ? 1 : w < 0.05 ? 0.05 : w;
}

void offline_explain(const offline_bg_t *bg, const interp_db_t *db, const int64_t *row_db, const int64_t *study,
                     size_t n_study, const int64_t *excl, size_t n_excl, const char *unit_kind, offline_expl_t *out) {
  memset(out, 0, sizeof *out);
  size_t nmax = bg->n_go + bg->n_pfam + bg->n_stem + 1;
  uint32_t *sk = ps_xcalloc(nmax, sizeof *sk);
  uint32_t *exc = ps_xcalloc(nmax, sizeof *exc);
  int32_t *touched = ps_xmalloc(nmax * sizeof *touched);
  cand_t *cand = ps_xmalloc(nmax * sizeof *cand);
  // background minus the held-out proteins
  uint64_t ex_annot = 0, ex_known = 0;
  for (size_t i = 0; i < n_excl; i++) {
    int64_t d = row_db[excl[i]];
    if (d < 0) continue;
    const interp_protein_t *p = &db->p[d];
    ex_known++;
    ex_annot += p->n_prop > 0;
  }
  char text[2048];
  size_t tl = (size_t)snprintf(text, sizeof text, "[offline] This %s fires on proteins", unit_kind);
  int parts = 0;
  for (int kind = 0; kind < 3; kind++) {
    size_t nids = kind == 0 ? bg->n_go : kind == 1 ? bg->n_pfam : bg->n_stem;
    const uint32_t *bgc = kind == 0 ? bg->go : kind == 1 ? bg->pfam : bg->stem;
    memset(sk, 0, (nids + 1) * sizeof *sk);
    memset(exc, 0, (nids + 1) * sizeof *exc);
    size_t nt = 0;
    uint64_t n = 0;
    for (size_t i = 0; i < n_excl; i++) {
      int64_t d = row_db[excl[i]];
      if (d < 0) continue;
      const interp_protein_t *p = &db->p[d];
      if (kind == 0)
        for (uint32_t k = 0; k < p->n_prop; k++) exc[p->prop[k]]++;
      else if (kind == 1)
        for (uint32_t k = 0; k < p->n_pfam; k++) exc[p->pfam[k]]++;
      else if (p->stem >= 0)
        exc[p->stem]++;
    }
    for (size_t i = 0; i < n_study; i++) {
      int64_t d = row_db[study[i]];
      if (d < 0) continue;
      const interp_protein_t *p = &db->p[d];
      if (kind == 0) {
        if (!p->n_prop) continue;
        n++;
        for (uint32_t k = 0; k < p->n_prop; k++)
          if (sk[p->prop[k]]++ == 0) touched[nt++] = p->prop[k];
      } else {
        n++;
        if (kind == 1) {
          for (uint32_t k = 0; k < p->n_pfam; k++)
            if (sk[p->pfam[k]]++ == 0) touched[nt++] = p->pfam[k];
        } else if (p->stem >= 0 && sk[p->stem]++ == 0) {
          touched[nt++] = p->stem;
        }
      }
    }
    uint64_t N = kind == 0 ? bg->n_annot - ex_annot : bg->n_known - ex_known;
    // at least 3 proteins, and 5% (GO) or 10% (Pfam, gene stems) of the study set
    double share = kind == 0 ? 0.05 : 0.10;
    uint32_t min_k = (uint32_t)ceil(share * (double)n);
    if (min_k < 3) min_k = 3;
    size_t m = rank(sk, touched, nt, bgc, exc, N, n, min_k, cand);
    size_t limit = kind == 0 ? 3 : 2, got = 0;
    for (size_t i = 0; i < m && got < limit && out->n < 8; i++) {
      if (kind == 0) {  // no term that is an ancestor or descendant of one already kept; no roots
        const go_term_t *t = go_term(db->go, cand[i].id);
        if (!t || t->n_parents == 0) continue;
        int clash = 0;
        for (size_t j = 0; j < out->n && !clash; j++)
          if (out->e[j].kind == OFF_GO)
            clash = is_ancestor(db->go, cand[i].id, out->e[j].id) || is_ancestor(db->go, out->e[j].id, cand[i].id);
        if (clash) continue;
      }
      offline_elem_t *e = &out->e[out->n++];
      e->kind = (offline_kind_t)kind;
      e->id = cand[i].id;
      e->p = cand[i].p;
      e->fold = cand[i].fold;
      e->k = cand[i].k;
      e->n = (uint32_t)n;
      e->weight = weight_of(cand[i].p);
      got++;
      const char *lead = parts == 0 ? " " : "; or ";
      if (kind == 0) {
        const go_term_t *t = go_term(db->go, e->id);
        tl += (size_t)snprintf(text + tl, sizeof text - tl, "%sannotated with '%s' (%s, %u of %u)", lead, t->name, t->id, e->k, e->n);
      } else if (kind == 1) {
        tl += (size_t)snprintf(text + tl, sizeof text - tl, "%swith the Pfam family %s (%u of %u)", lead, db->pfam_names[e->id], e->k, e->n);
      } else {
        tl += (size_t)snprintf(text + tl, sizeof text - tl, "%swhose gene name starts with %s (%u of %u)", lead, db->stem_names[e->id], e->k, e->n);
      }
      if (tl >= sizeof text) tl = sizeof text - 1;
      parts++;
    }
  }
  if (!parts) snprintf(text, sizeof text, "[offline] No GO term, Pfam family or gene family is enriched among the proteins this %s fires on.", unit_kind);
  else if (tl + 2 < sizeof text) strcat(text, ".");
  out->text = ps_xstrdup(text);
  free(sk);
  free(exc);
  free(touched);
  free(cand);
}

void offline_explain_terms(const interp_db_t *db, const char *const *go_ids, const double *p, const double *fold,
                           const uint32_t *k, const uint32_t *n, size_t n_terms, const char *unit_kind,
                           offline_expl_t *out) {
  memset(out, 0, sizeof *out);
  char text[2048];
  size_t tl = (size_t)snprintf(text, sizeof text, "[offline] This %s fires on proteins", unit_kind);
  for (size_t i = 0; i < n_terms && out->n < 3 && db->go; i++) {
    if (!(p[i] < 1e-3)) continue;
    int32_t id = go_lookup(db->go, go_ids[i]);
    if (id < 0) continue;
    id = go_resolve(db->go, id);
    const go_term_t *t = go_term(db->go, id);
    if (!t || t->n_parents == 0) continue;
    int clash = 0;
    for (size_t j = 0; j < out->n && !clash; j++)
      clash = is_ancestor(db->go, id, out->e[j].id) || is_ancestor(db->go, out->e[j].id, id);
    if (clash) continue;
    offline_elem_t *e = &out->e[out->n++];
    e->kind = OFF_GO;
    e->id = id;
    e->p = p[i];
    e->fold = fold[i];
    e->k = k[i];
    e->n = n[i];
    e->weight = weight_of(p[i]);
    tl += (size_t)snprintf(text + tl, sizeof text - tl, "%sannotated with '%s' (%s, %u of %u)", out->n == 1 ? " " : "; or ",
                           t->name, t->id, e->k, e->n);
    if (tl >= sizeof text) tl = sizeof text - 1;
  }
  if (!out->n)
    snprintf(text, sizeof text, "[offline] No GO term is significantly enriched among the proteins this %s fires on.",
             unit_kind);
  else if (tl + 2 < sizeof text)
    strcat(text, ".");
  out->text = ps_xstrdup(text);
}

static int has_sorted(const int32_t *a, uint32_t n, int32_t v) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && a[lo] == v;
}

double offline_predict(const offline_expl_t *x, const interp_db_t *db, int64_t d) {
  if (d < 0 || x->n == 0) return 0;
  const interp_protein_t *p = &db->p[d];
  double wsum = 0, hit = 0;
  for (size_t i = 0; i < x->n; i++) {
    const offline_elem_t *e = &x->e[i];
    wsum += e->weight;
    int m = 0;
    if (e->kind == OFF_GO) m = has_sorted(p->prop, p->n_prop, e->id);
    else if (e->kind == OFF_PFAM)
      for (uint32_t k = 0; k < p->n_pfam && !m; k++) m = p->pfam[k] == e->id;
    else
      m = p->stem == e->id;
    if (m) hit += e->weight;
  }
  return wsum > 0 ? hit / wsum : 0;
}
