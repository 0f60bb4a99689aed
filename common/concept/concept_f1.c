// concept_f1.c — InterPLM's concept F1 of features against residue concepts, accumulated one
// protein's residue code at a time (counts per (feature, concept, threshold) in a hash table),
// then each feature's best pair. See concept.h.
#include "concept.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

typedef struct cell {
  uint64_t key;      // feature << 35 | concept << 3 | threshold, +1 (0 = empty slot)
  uint64_t tp, found;
} cell_t;

struct concept_f1 {
  concept_set_t *s;
  uint32_t nf;
  const float *fmax;
  concept_f1_opts_t o;
  uint64_t *n_pred;                // nf x T
  uint64_t *inst, *res;            // per concept: instances and residues in the evaluated proteins
  size_t n_concepts;
  cell_t *cells;
  size_t n_cells, cap_cells;       // cap a power of two
  concept_f1_summary_t sum;
  // per-protein scratch
  uint32_t *roff, *rlist;          // residue -> annotation indices (CSR)
  size_t cap_res, cap_list;
  uint64_t *stamp;                 // per (annotation, threshold): the feature group that found it
  size_t cap_stamp;
  uint64_t group;
};

void concept_f1_opts_default(concept_f1_opts_t *o) {
  memset(o, 0, sizeof *o);
  const double t[] = {0, 0.15, 0.5, 0.6, 0.8};
  o->n_thresholds = 5;
  memcpy(o->thresholds, t, sizeof t);
  o->min_instances = 10;
}

concept_f1_t *concept_f1_new(concept_set_t *s, uint32_t n_features, const float *feat_max, const concept_f1_opts_t *o) {
  PS_ASSERT(o->n_thresholds >= 1 && o->n_thresholds <= CONCEPT_MAX_THRESHOLDS);
  PS_ASSERT(n_features < (1u << 28) && concept_set_n_concepts(s) < (1u << 28));
  concept_f1_t *a = ps_xcalloc(1, sizeof *a);
  a->s = s;
  a->nf = n_features;
  a->fmax = feat_max;
  a->o = *o;
  a->n_pred = ps_xcalloc((size_t)n_features * o->n_thresholds + 1, sizeof *a->n_pred);
  a->n_concepts = concept_set_n_concepts(s);
  a->inst = ps_xcalloc(a->n_concepts + 1, sizeof *a->inst);
  a->res = ps_xcalloc(a->n_concepts + 1, sizeof *a->res);
  a->cap_cells = 1024;
  a->cells = ps_xcalloc(a->cap_cells, sizeof *a->cells);
  return a;
}

void concept_f1_destroy(concept_f1_t **ap) {
  concept_f1_t *a = *ap;
  if (!a) return;
  free(a->n_pred), free(a->inst), free(a->res), free(a->cells);
  free(a->roff), free(a->rlist), free(a->stamp);
  free(a);
  *ap = NULL;
}

static cell_t *cell_get(concept_f1_t *a, uint32_t f, uint32_t c, uint32_t t) {
  if (2 * (a->n_cells + 1) > a->cap_cells) {  // grow: load <= 1/2
    size_t cap = a->cap_cells * 2;
    cell_t *n = ps_xcalloc(cap, sizeof *n);
    for (size_t i = 0; i < a->cap_cells; i++)
      if (a->cells[i].key) {
        size_t j = ps_mix64(a->cells[i].key) & (cap - 1);
        while (n[j].key) j = (j + 1) & (cap - 1);
        n[j] = a->cells[i];
      }
    free(a->cells);
    a->cells = n;
    a->cap_cells = cap;
  }
  uint64_t key = ((uint64_t)f << 35 | (uint64_t)c << 3 | t) + 1;
  size_t j = ps_mix64(key) & (a->cap_cells - 1);
  while (a->cells[j].key && a->cells[j].key != key) j = (j + 1) & (a->cap_cells - 1);
  if (!a->cells[j].key) {
    a->cells[j].key = key;
    a->n_cells++;
  }
  return &a->cells[j];
}

static int u32_cmp_concept(const void *x, const void *y, void *ctx) {
  const concept_ann_t *an = ctx;
  uint32_t cx = an[*(const uint32_t *)x].concept, cy = an[*(const uint32_t *)y].concept;
  return cx < cy ? -1 : cx > cy;
}

int concept_f1_add(concept_f1_t *a, const char *id, const fs_rcode_t *rc, ps_err_t *err) {
  uint32_t prot;
  if (!concept_set_find(a->s, id, &prot)) return 0;
  size_t na;
  const concept_ann_t *an = concept_set_anns(a->s, prot, &na);
  uint32_t len = rc->len, T = (uint32_t)a->o.n_thresholds;
  a->sum.n_proteins++;
  a->sum.n_residues += len;
  // residue -> annotations covering it (CSR), annotations past the length dropped
  if (len + 1 > a->cap_res) {
    a->cap_res = (size_t)len + 1;
    a->roff = ps_xrealloc(a->roff, a->cap_res * sizeof *a->roff);
  }
  memset(a->roff, 0, ((size_t)len + 1) * sizeof *a->roff);
  size_t total = 0;
  uint8_t *keep = ps_xcalloc(na ? na : 1, 1);
  for (size_t i = 0; i < na; i++) {
    if (an[i].a >= len || an[i].b >= len) {
      a->sum.ann_out_of_range++;
      continue;
    }
    keep[i] = 1;
    a->inst[an[i].concept]++;
    if (an[i].pair) a->roff[an[i].a + 1]++, a->roff[an[i].b + 1]++, total += 2;
    else
      for (uint32_t r = an[i].a; r <= an[i].b; r++) a->roff[r + 1]++, total++;
  }
  for (uint32_t r = 0; r < len; r++) a->roff[r + 1] += a->roff[r];
  if (total > a->cap_list) {
    a->cap_list = total;
    a->rlist = ps_xrealloc(a->rlist, total * sizeof *a->rlist);
  }
  uint32_t *fill = ps_xmalloc(((size_t)len + 1) * sizeof *fill);
  memcpy(fill, a->roff, ((size_t)len + 1) * sizeof *fill);
  for (size_t i = 0; i < na; i++) {
    if (!keep[i]) continue;
    if (an[i].pair) a->rlist[fill[an[i].a]++] = (uint32_t)i, a->rlist[fill[an[i].b]++] = (uint32_t)i;
    else
      for (uint32_t r = an[i].a; r <= an[i].b; r++) a->rlist[fill[r]++] = (uint32_t)i;
  }
  free(fill);
  free(keep);
  // per residue: grouped by concept; residues per concept counted once
  for (uint32_t r = 0; r < len; r++) {
    uint32_t *l = a->rlist + a->roff[r];
    size_t n = a->roff[r + 1] - a->roff[r];
    if (n > 1) qsort_r(l, n, sizeof *l, u32_cmp_concept, (void *)an);
    for (size_t k = 0; k < n; k++)
      if (!k || an[l[k]].concept != an[l[k - 1]].concept) a->res[an[l[k]].concept]++;
  }
  if ((size_t)na * T > a->cap_stamp) {
    a->cap_stamp = (size_t)na * T;
    a->stamp = ps_xrealloc(a->stamp, a->cap_stamp * sizeof *a->stamp);
    memset(a->stamp, 0, a->cap_stamp * sizeof *a->stamp);
    a->group = 0;
  }
  uint32_t prev = UINT32_MAX;
  for (uint32_t e = 0; e < rc->n; e++) {
    uint32_t f = rc->feat[e], pos = rc->pos[e];
    if (f >= a->nf) return ps_err_set(err, PS_EFORMAT, "protein %s: residue code names feature %u >= %u", id, f, a->nf);
    if (pos >= len) return ps_err_set(err, PS_EFORMAT, "protein %s: residue %u past its length %u", id, pos, len);
    if (f != prev) a->group++, prev = f;  // a new feature: every instance unfound again
    float mx = a->fmax[f];
    if (!(mx > 0) || !(rc->val[e] > 0)) continue;
    double v = (double)rc->val[e] / (double)mx;
    uint32_t *l = a->rlist + a->roff[pos];
    size_t n = a->roff[pos + 1] - a->roff[pos];
    for (uint32_t t = 0; t < T; t++) {
      if (!(v > a->o.thresholds[t])) break;  // ascending thresholds
      a->n_pred[(size_t)f * T + t]++;
      cell_t *cl = NULL;
      for (size_t k = 0; k < n; k++) {
        const concept_ann_t *x = &an[l[k]];
        if (!k || x->concept != an[l[k - 1]].concept) {
          cl = cell_get(a, f, x->concept, t);
          cl->tp++;
        }
        uint64_t *st = &a->stamp[(size_t)l[k] * T + t];
        if (*st != a->group) {
          *st = a->group;
          cl->found++;
        }
      }
    }
  }
  return 1;
}

void concept_f1_concept_counts(const concept_f1_t *a, uint32_t c, uint64_t *instances, uint64_t *residues) {
  *instances = c < a->n_concepts ? a->inst[c] : 0;
  *residues = c < a->n_concepts ? a->res[c] : 0;
}

// x better than y: F1, then concept name, then the lower threshold
static int better(const concept_set_t *s, const concept_f1_best_t *x, const concept_f1_best_t *y) {
  if (x->f1 != y->f1) return x->f1 > y->f1;
  int c = strcmp(concept_set_name(s, x->concept), concept_set_name(s, y->concept));
  if (c) return c < 0;
  return x->t < y->t;
}

int concept_f1_finish(concept_f1_t *a, concept_f1_best_t **best, size_t *n_best, concept_f1_summary_t *sum) {
  uint32_t T = (uint32_t)a->o.n_thresholds;
  concept_f1_best_t *b = ps_xcalloc(a->nf ? a->nf : 1, sizeof *b);
  uint8_t *has = ps_xcalloc(a->nf ? a->nf : 1, 1);
  double *cbest = ps_xcalloc(a->n_concepts + 1, sizeof *cbest);
  uint8_t *tested = ps_xcalloc(a->n_concepts + 1, 1);
  a->sum.n_concepts = a->sum.n_concepts_seen = a->sum.features_f1_over_05 = a->sum.concepts_covered = 0;
  for (size_t c = 0; c < a->n_concepts; c++) {
    a->sum.n_concepts_seen += a->inst[c] > 0;
    tested[c] = a->inst[c] > 0 && a->inst[c] >= a->o.min_instances;
    a->sum.n_concepts += tested[c];
  }
  for (size_t i = 0; i < a->cap_cells; i++) {
    const cell_t *cl = &a->cells[i];
    if (!cl->key || !cl->tp) continue;
    uint64_t k = cl->key - 1;
    uint32_t f = (uint32_t)(k >> 35), c = (uint32_t)(k >> 3 & ((1u << 28) - 1)), t = (uint32_t)(k & 7);
    if (!tested[c]) continue;
    concept_f1_best_t x = {f, c, t, a->o.thresholds[t], 0, 0, 0, cl->tp, a->n_pred[(size_t)f * T + t], 0, 0};
    x.precision = (double)cl->tp / (double)x.n_pred;
    if (concept_is_residue_level(concept_set_name(a->s, c))) {
      x.recall = (double)cl->tp / (double)a->res[c];
      x.found = (uint32_t)cl->tp, x.instances = (uint32_t)a->res[c];
    } else {
      x.recall = (double)cl->found / (double)a->inst[c];
      x.found = (uint32_t)cl->found, x.instances = (uint32_t)a->inst[c];
    }
    x.f1 = x.precision + x.recall > 0 ? 2 * x.precision * x.recall / (x.precision + x.recall) : 0;
    if (x.f1 > cbest[c]) cbest[c] = x.f1;
    if (!has[f] || better(a->s, &x, &b[f])) b[f] = x, has[f] = 1;
  }
  size_t n = 0;
  for (uint32_t f = 0; f < a->nf; f++)
    if (has[f]) {
      b[n++] = b[f];
      a->sum.features_f1_over_05 += b[f].f1 > 0.5;
    }
  a->sum.n_features_scored = (uint32_t)n;
  for (size_t c = 0; c < a->n_concepts; c++) a->sum.concepts_covered += tested[c] && cbest[c] > 0.5;
  free(has), free(cbest), free(tested);
  *best = b;
  *n_best = n;
  if (sum) *sum = a->sum;
  return 0;
}
