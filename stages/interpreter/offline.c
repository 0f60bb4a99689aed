// offline.c — see offline.h.
#include "offline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "pfam.h"

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


// ---- a protein's elements (what its prompt line shows) -----------------------------------------
#define KIND_SHIFT 60
static uint64_t key_of(int kind, uint64_t id) { return (uint64_t)kind << KIND_SHIFT | (id & ((1ull << KIND_SHIFT) - 1)); }
static int kind_of(uint64_t key) { return (int)(key >> KIND_SHIFT); }
static int32_t id_of(uint64_t key) { return (int32_t)(key & 0x7fffffff); }

typedef struct elist {
  uint64_t *k;
  size_t n, cap;
} elist_t;

static void push(elist_t *l, uint64_t k) {
  if (l->n == l->cap) l->k = ps_xrealloc(l->k, (l->cap = l->cap ? 2 * l->cap : 64) * sizeof *l->k);
  l->k[l->n++] = k;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int has_key(const elist_t *l, uint64_t k) {
  return l->n && bsearch(&k, l->k, l->n, sizeof *l->k, cmp_u64) != NULL;
}

// Words of a protein name: letters and digits, lower-cased, at least 4 bytes, starting with a
// letter, not a generic word. Calls fn(word) for each.
static void name_words(const char *name, void (*fn)(const char *w, void *ctx), void *ctx) {
  static const char *const stop[] = {"protein", "proteins", "with", "containing", "family", "member", "like",
                                     "subunit", "domain", "putative", "probable", "uncharacterized", "type",
                                     "isoform", "fragment", "homolog", "some", "other", "from", "that", "this"};
  char w[32];
  size_t l = 0;
  for (const char *p = name;; p++) {
    int alnum = *p && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));
    if (alnum) {
      if (l < sizeof w - 1) w[l++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
      continue;
    }
    w[l] = 0;
    int ok = l >= 4 && w[0] >= 'a' && w[0] <= 'z';
    for (size_t i = 0; ok && i < sizeof stop / sizeof *stop; i++) ok = strcmp(w, stop[i]) != 0;
    if (ok) fn(w, ctx);
    l = 0;
    if (!*p) break;
  }
}

static void push_word(const char *w, void *ctx) { push(ctx, key_of(OFF_WORD, ps_fnv1a64(w))); }

// The elements of db protein d (sorted, unique) into l (emptied first).
static void elements(const interp_opts_t *o, const interp_db_t *db, int64_t d, elist_t *l) {
  l->n = 0;
  if (d < 0) return;
  const interp_protein_t *p = &db->p[d];
  if (db->go && p->n_direct) {
    int32_t terms[256], *anc = NULL;
    size_t nt = interp_prompt_go_terms(o, db, d, terms, sizeof terms / sizeof *terms), cap = 0;
    for (size_t i = 0; i < nt; i++) {
      size_t na = go_ancestors(db->go, terms[i], NULL, 0);
      if (na > cap) anc = ps_xrealloc(anc, (cap = na) * sizeof *anc);
      go_ancestors(db->go, terms[i], anc, na);
      for (size_t j = 0; j < na; j++) {
        const go_term_t *t = go_term(db->go, anc[j]);
        if (t && t->n_parents) push(l, key_of(OFF_GO, (uint64_t)anc[j]));  // roots say nothing
      }
    }
    free(anc);
  }
  for (uint32_t i = 0; i < p->n_pfam; i++) push(l, key_of(OFF_PFAM, (uint64_t)p->pfam[i]));
  if (p->stem >= 0) push(l, key_of(OFF_STEM, (uint64_t)p->stem));
  if (p->name) name_words(p->name, push_word, l);
  qsort(l->k, l->n, sizeof *l->k, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < l->n; i++)
    if (!u || l->k[i] != l->k[u - 1]) l->k[u++] = l->k[i];
  l->n = u;
}

// ---- the explanation -------------------------------------------------------------------------------
typedef struct cand {
  uint64_t key;
  double p, m;
  uint32_t k, c;
  int32_t depth;  // GO depth (more specific first), -1 otherwise
} cand_t;

static int cmp_cand(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->p != y->p) return x->p < y->p ? -1 : 1;
  if (x->depth != y->depth) return x->depth > y->depth ? -1 : 1;
  if (x->c != y->c) return x->c < y->c ? -1 : 1;
  return x->key < y->key ? -1 : x->key > y->key;
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

typedef struct word_find {
  uint64_t key;
  char *out;
} word_find_t;

static void find_word(const char *w, void *ctx) {
  word_find_t *f = ctx;
  if (!f->out[0] && key_of(OFF_WORD, ps_fnv1a64(w)) == f->key) snprintf(f->out, 32, "%s", w);
}

void offline_expl_free(offline_expl_t *x) {
  free(x->text);
  memset(x, 0, sizeof *x);
}

void offline_explain(const interp_opts_t *o, const interp_db_t *db, const int64_t *row_db, const int64_t *shown,
                     const float *act, size_t n, offline_expl_t *out) {
  memset(out, 0, sizeof *out);
  double mean = 0;
  for (size_t i = 0; i < n; i++) mean += act[i];
  mean = n ? mean / (double)n : 0;
  elist_t *el = ps_xcalloc(n ? n : 1, sizeof *el), all = {0};
  uint32_t n_high = 0;
  for (size_t i = 0; i < n; i++) {
    elements(o, db, row_db ? row_db[shown[i]] : -1, &el[i]);
    for (size_t j = 0; j < el[i].n; j++) push(&all, el[i].k[j]);
    n_high += act[i] > mean;
  }
  qsort(all.k, all.n, sizeof *all.k, cmp_u64);
  cand_t *cand = ps_xmalloc((all.n ? all.n : 1) * sizeof *cand);
  size_t nc = 0;
  for (size_t a = 0; a < all.n;) {
    size_t b = a;
    while (b < all.n && all.k[b] == all.k[a]) b++;
    uint64_t key = all.k[a];
    uint32_t c = (uint32_t)(b - a), k = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
      if (has_key(&el[i], key)) {
        k += act[i] > mean;
        sum += act[i];
      }
    a = b;
    if (c < 2 || !k) continue;
    double p = offline_hypergeom_sf(k, n, c, n_high), m = sum / c;
    if (!(p < 0.1) || !(m > mean)) continue;
    int32_t depth = -1;
    if (kind_of(key) == OFF_GO) depth = go_term(db->go, id_of(key))->depth;
    cand[nc++] = (cand_t){key, p, m, k, c, depth};
  }
  qsort(cand, nc, sizeof *cand, cmp_cand);
  static const size_t limit[4] = {3, 2, 1, 2};
  size_t got[4] = {0};
  for (size_t i = 0; i < nc && out->n < OFFLINE_MAX_ELEMS; i++) {
    int kind = kind_of(cand[i].key);
    if (got[kind] >= limit[kind]) continue;
    int32_t id = id_of(cand[i].key);
    int clash = 0;
    for (size_t j = 0; kind == OFF_GO && j < out->n && !clash; j++)
      if (out->e[j].kind == OFF_GO)
        clash = is_ancestor(db->go, id, out->e[j].id) || is_ancestor(db->go, out->e[j].id, id);
    if (clash) continue;
    offline_elem_t *e = &out->e[out->n++];
    got[kind]++;
    e->kind = (offline_kind_t)kind;
    e->key = cand[i].key;
    e->id = kind == OFF_WORD ? -1 : id;
    e->p = cand[i].p;
    e->w = -log10(cand[i].p > 1e-300 ? cand[i].p : 1e-300);
    e->m = cand[i].m;
    e->k = cand[i].k;
    e->c = cand[i].c;
    if (kind == OFF_WORD) {  // the word itself, from a carrier's name
      word_find_t f = {e->key, e->word};
      for (size_t r = 0; r < n && !e->word[0]; r++) {
        int64_t d = row_db ? row_db[shown[r]] : -1;
        if (d >= 0 && has_key(&el[r], e->key) && db->p[d].name) name_words(db->p[d].name, find_word, &f);
      }
    }
  }
  // b: the shown proteins that match no kept element
  double bs = 0;
  size_t bn = 0;
  for (size_t i = 0; i < n; i++) {
    int any = 0;
    for (size_t j = 0; j < out->n && !any; j++) any = has_key(&el[i], out->e[j].key);
    if (!any) bs += act[i], bn++;
  }
  out->base = out->n && bn ? bs / (double)bn : out->n ? 0 : mean;
  out->n_shown = (uint32_t)n;
  out->n_high = n_high;
  char text[2048];
  size_t tl = (size_t)snprintf(text, sizeof text, "[offline] From the %zu proteins shown (%u above their mean activation), this %s is high on proteins",
                               n, n_high, o->unit_kind);
  for (size_t j = 0; j < out->n && tl < sizeof text; j++) {
    const offline_elem_t *e = &out->e[j];
    const char *lead = j ? "; or " : " ";
    char what[512];
    if (e->kind == OFF_GO) {
      const go_term_t *t = go_term(db->go, e->id);
      snprintf(what, sizeof what, "annotated with '%s' (%s)", t->name, t->id);
    } else if (e->kind == OFF_PFAM) {
      const char *lab = interp_pfam_label(db, e->id);
      snprintf(what, sizeof what, "with the Pfam family %s%s%s%s", db->pfam_names[e->id], lab ? " (" : "", lab ? lab : "",
               lab ? ")" : "");
    } else if (e->kind == OFF_STEM) {
      snprintf(what, sizeof what, "whose gene name starts with %s", db->stem_names[e->id]);
    } else {
      snprintf(what, sizeof what, "whose name has the word '%s'", e->word);
    }
    tl += (size_t)snprintf(text + tl, sizeof text - tl, "%s%s (%u of the %u high, mean activation %.2f)", lead, what,
                           e->k, n_high, e->m);
  }
  if (tl >= sizeof text) tl = sizeof text - 1;
  if (!out->n)
    snprintf(text, sizeof text, "[offline] No annotation is over-represented among the %zu proteins shown where this %s is high.", n,
             o->unit_kind);
  else if (tl + 2 < sizeof text)
    strcat(text, ".");
  out->text = ps_xstrdup(text);
  for (size_t i = 0; i < n; i++) free(el[i].k);
  free(el);
  free(all.k);
  free(cand);
}

double offline_predict(const offline_expl_t *x, const interp_opts_t *o, const interp_db_t *db, int64_t d) {
  if (!x->n) return x->base;
  elist_t l = {0};
  elements(o, db, d, &l);
  double wsum = 0, lift = 0;
  for (size_t i = 0; i < x->n; i++) {
    wsum += x->e[i].w;
    if (has_key(&l, x->e[i].key)) lift += x->e[i].w * (x->e[i].m - x->base);
  }
  free(l.k);
  double v = x->base + (wsum > 0 ? lift / wsum : 0);
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
