// annot.c — see annot.h.
#include "annot.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emb.h"
#include "fasta.h"
#include "featstore.h"
#include "godata.h"
#include "strmap.h"

static int cmp_i32_(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

typedef struct scored {
  int32_t id;
  float v;
} scored_t;

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

// One protein into fm[0] (all namespaces) and fm[1 + ns] (BP, MF, CC): predictions pr[0..np)
// (term, score), true terms tt (sorted, propagated). sc / cor: scratch of np entries.
static void fmax_add_ns(annot_fmax_t *fm, const go_ontology_t *o, const int32_t roots[3], const scored_t *pr, size_t np,
                        const int32_t *tt, uint32_t ntt, float *sc, uint8_t *cor) {
  for (int k = 0; k < ANNOT_N_FM; k++) {
    size_t n = 0, n_true = 0;
    for (uint32_t j = 0; j < ntt; j++)
      if (tt[j] != roots[0] && tt[j] != roots[1] && tt[j] != roots[2] && (!k || (int)go_term(o, tt[j])->ns == k - 1))
        n_true++;
    for (size_t j = 0; j < np; j++) {
      if (k && (int)go_term(o, pr[j].id)->ns != k - 1) continue;
      sc[n] = pr[j].v;
      cor[n++] = bsearch(&pr[j].id, tt, ntt, sizeof *tt, cmp_i32_) != NULL;
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
  fmax_add_ns(fm, o, roots, pr, n, true_terms, n_true, sc, cor);
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
    if (p >= 0) fmax_add_ns(fm, onto, roots, pr, m, truth->terms[p], truth->n_terms[p], sc, cor);
  }
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_result(&fm[k], &r[k]);
  free(cor);
  free(sc);
  free(pr);
  free(held);
  free(cnt);
}

void annot_stats_free(annot_stats_t *st) {
  for (size_t i = 0; i < st->n_eval; i++) free(st->eval_ids[i]);
  free(st->eval_ids);
  st->eval_ids = NULL;
  st->n_eval = st->cap_eval = 0;
}

// ---- the model -------------------------------------------------------------------------------
struct annot_model {
  annot_opts_t o;
  sae_t *sae;
  sae_enc_t *enc;
  go_ontology_t *onto;
  int64_t n_features;
  float *max_act;         // per feature (0: unknown / dead)
  int64_t *t_ptr;         // per feature CSR of closed terms
  int32_t *t_go;
  float *t_conf;
  char **expl;            // per feature explanation or NULL
  double *expl_r;         // its score (NAN when none)
  int32_t roots[3];
  // scratch
  float *score;           // per ontology term
  int32_t *touched;
  size_t n_touched;
};

const go_ontology_t *annot_model_onto(const annot_model_t *m) { return m->onto; }
int64_t annot_model_d_in(const annot_model_t *m) { return m->sae->cfg.d_in; }
int64_t annot_model_n_with_terms(const annot_model_t *m) {
  int64_t n = 0;
  for (int64_t f = 0; f < m->n_features; f++) n += m->t_ptr[f + 1] > m->t_ptr[f];
  return n;
}

void annot_model_free(annot_model_t **mp) {
  annot_model_t *m = *mp;
  if (!m) return;
  sae_enc_free(&m->enc);
  sae_free(&m->sae);
  go_ontology_destroy(&m->onto);
  free(m->max_act);
  free(m->t_ptr);
  free(m->t_go);
  free(m->t_conf);
  if (m->expl)
    for (int64_t f = 0; f < m->n_features; f++) free(m->expl[f]);
  free(m->expl);
  free(m->expl_r);
  free(m->score);
  free(m->touched);
  free(m);
  *mp = NULL;
}

static int is_root(const annot_model_t *m, int32_t t) { return t == m->roots[0] || t == m->roots[1] || t == m->roots[2]; }

typedef struct pair {
  int64_t feat;
  int32_t term;
  float conf;
} pair_t;

static int cmp_pair(const void *a, const void *b) {
  const pair_t *x = a, *y = b;
  if (x->feat != y->feat) return x->feat < y->feat ? -1 : 1;
  return (x->term > y->term) - (x->term < y->term);
}
static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

// The enrichment records of the store: max activations and the (feature, term, confidence) pairs.
struct load_ctx {
  annot_model_t *m;
  const char *db;
  pair_t *pairs;
  size_t np, pcap;
  int64_t unknown, n_records;
  ps_err_t *err;
};
static int load_enrich(uint32_t feat, const fs_enrich_feat_t *e, void *ctx) {
  struct load_ctx *c = ctx;
  annot_model_t *m = c->m;
  if ((int64_t)feat >= m->n_features)
    return ps_err_set(c->err, PS_EDIM, "%s: enrichment of feature %u but the SAE has %lld features", c->db, feat,
                      (long long)m->n_features);
  c->n_records++;
  m->max_act[feat] = isfinite(e->max_act) && e->max_act > 0 ? e->max_act : 0.f;
  for (uint32_t i = 0; i < e->n_hits; i++) {
    const fs_term_hit_t *h = &e->hits[i];
    int32_t t = go_lookup(m->onto, h->go_id);
    if (t >= 0) t = go_resolve(m->onto, t);
    if (t < 0) {
      c->unknown++;
      continue;
    }
    double cf = m->o.conf == ANNOT_CONF_F1          ? (double)h->f1
                : m->o.conf == ANNOT_CONF_PRECISION ? (h->n > 0 ? (double)h->k / (double)h->n : 0)
                                                    : 1 - h->q_bh;
    if (!(cf > 0)) continue;
    if (cf > 1) cf = 1;
    if (c->np == c->pcap) {
      c->pcap = c->pcap ? 2 * c->pcap : 4096;
      c->pairs = ps_xrealloc(c->pairs, c->pcap * sizeof *c->pairs);
    }
    c->pairs[c->np++] = (pair_t){(int64_t)feat, t, (float)cf};
  }
  return 0;
}

static int load_terms(annot_model_t *m, fs_t *fs, ps_err_t *err) {
  const char *path = fs_path(fs);
  struct load_ctx lc = {m, path, NULL, 0, 0, 0, 0, err};
  int rc = fs_enrich_each(fs, load_enrich, &lc, err);
  pair_t *pairs = lc.pairs;
  size_t np = lc.np;
  int64_t unknown = lc.unknown;
  if (rc < 0) {
    free(pairs);
    return rc;
  }
  if (np) qsort(pairs, np, sizeof *pairs, cmp_pair);
  // close each feature's terms upward: conf(f, a) = max over its terms at or below a
  size_t nt = go_n_terms(m->onto), tcap = 0, nout = 0;
  int32_t *anc = ps_xmalloc(nt * sizeof *anc);
  m->t_ptr = ps_xcalloc((size_t)m->n_features + 1, sizeof *m->t_ptr);
  size_t i = 0;
  for (int64_t feat = 0; feat < m->n_features; feat++) {
    m->t_ptr[feat] = (int64_t)nout;
    m->n_touched = 0;
    for (; i < np && pairs[i].feat == feat; i++) {
      size_t na = go_ancestors(m->onto, pairs[i].term, anc, nt);
      for (size_t a = 0; a < na; a++) {
        int32_t t = anc[a];
        if (is_root(m, t)) continue;
        if (m->score[t] == 0) m->touched[m->n_touched++] = t;
        if (pairs[i].conf > m->score[t]) m->score[t] = pairs[i].conf;
      }
    }
    qsort(m->touched, m->n_touched, sizeof *m->touched, cmp_i32);
    if (nout + m->n_touched > tcap) {
      tcap = (nout + m->n_touched) * 2 + 1024;
      m->t_go = ps_xrealloc(m->t_go, tcap * sizeof *m->t_go);
      m->t_conf = ps_xrealloc(m->t_conf, tcap * sizeof *m->t_conf);
    }
    for (size_t j = 0; j < m->n_touched; j++) {
      int32_t t = m->touched[j];
      m->t_go[nout] = t;
      m->t_conf[nout++] = m->score[t];
      m->score[t] = 0;
    }
  }
  m->t_ptr[m->n_features] = (int64_t)nout;
  m->n_touched = 0;
  free(anc);
  free(pairs);
  if (unknown)
    fprintf(stderr, "annotate: %s: %lld enriched terms name a GO id the ontology does not know (skipped)\n", path,
            (long long)unknown);
  return 0;
}

// The store's explanations (family "interp"): per feature its text and score.
static int load_expl_fn(uint32_t unit, const fs_interp_t *x, const char *json, void *ctx) {
  (void)json;
  annot_model_t *m = ctx;
  if ((int64_t)unit >= m->n_features || !x->explanation) return 0;
  free(m->expl[unit]);
  m->expl[unit] = ps_xstrdup(x->explanation);
  m->expl_r[unit] = x->scored ? x->r : NAN;
  return 0;
}

static int load_explanations(annot_model_t *m, fs_t *fs, ps_err_t *err) {
  m->expl = ps_xcalloc((size_t)m->n_features, sizeof *m->expl);
  m->expl_r = ps_xmalloc((size_t)m->n_features * sizeof *m->expl_r);
  for (int64_t i = 0; i < m->n_features; i++) m->expl_r[i] = NAN;
  return fs_interp_each(fs, load_expl_fn, m, err);
}

int annot_model_load(annot_model_t **out, const annot_opts_t *o, ps_err_t *err) {
  *out = NULL;
  annot_model_t *m = ps_xcalloc(1, sizeof *m);
  m->o = *o;
  if (m->o.batch_rows <= 0) m->o.batch_rows = 256;
  int rc;
  fs_t *fs = NULL;
  if ((rc = sae_load(&m->sae, o->sae_dir, err)) < 0) goto fail;
  if ((rc = sae_enc_new(&m->enc, m->sae, NULL, m->o.batch_rows, err)) < 0) goto fail;
  m->n_features = m->sae->cfg.d_sae;
  if ((rc = go_ontology_load(&m->onto, o->obo, NULL, err)) < 0) goto fail;
  m->roots[0] = go_lookup(m->onto, "GO:0008150");
  m->roots[1] = go_lookup(m->onto, "GO:0003674");
  m->roots[2] = go_lookup(m->onto, "GO:0005575");
  m->score = ps_xcalloc(go_n_terms(m->onto), sizeof *m->score);
  m->touched = ps_xmalloc(go_n_terms(m->onto) * sizeof *m->touched);
  m->max_act = ps_xcalloc((size_t)m->n_features, sizeof *m->max_act);
  if ((rc = fs_open(&fs, o->db, FS_OPEN_READONLY, err)) < 0) goto fail;
  fs_meta_t meta;
  if ((rc = fs_meta_get(fs, &meta, err)) <= 0) {
    if (rc == 0) rc = ps_err_set(err, PS_ENOTFOUND, "%s: the feature store is empty (nothing committed yet)", o->db);
    goto fail;
  }
  if (meta.neurons || (int64_t)meta.n_features != m->n_features) {
    rc = ps_err_set(err, PS_EMISMATCH, "%s: a store of %u %s, but the SAE %s has %lld features", o->db,
                    meta.n_features, meta.neurons ? "neurons" : "features", o->sae_dir, (long long)m->n_features);
    goto fail;
  }
  if ((rc = fs_enrich_done(fs, err)) <= 0) {
    if (rc == 0)
      rc = ps_err_set(err, PS_ENOTFOUND,
                      "%s: the store's GO enrichment is not complete (enrich/state is not \"done\"): let the scorer "
                      "(--data DIR) finish its stream first",
                      o->db);
    goto fail;
  }
  if ((rc = load_terms(m, fs, err)) < 0) goto fail;
  if ((rc = load_explanations(m, fs, err)) < 0) goto fail;
  fs_close(&fs);
  *out = m;
  return 0;
fail:
  fs_close(&fs);
  annot_model_free(&m);
  return rc;
}

// ---- one proteome ------------------------------------------------------------------------------
typedef struct fa_ids {
  char **ids;
  size_t n, cap;
  strmap_t *idx;
} fa_ids_t;

static void fa_ids_free(fa_ids_t *f) {
  for (size_t i = 0; i < f->n; i++) free(f->ids[i]);
  free(f->ids);
  strmap_destroy(&f->idx);
}

static int read_fasta_ids(const char *path, fa_ids_t *out, ps_err_t *err) {
  fasta_reader_t *r = NULL;
  int rc = fasta_open(&r, path, err);
  if (rc < 0) return rc;
  out->idx = strmap_new(1024);
  fasta_record_t rec;
  while ((rc = fasta_next(r, &rec, err)) > 0) {
    if (strmap_get(out->idx, rec.id, NULL)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: duplicate id '%s'", path, (unsigned long long)rec.line, rec.id);
      break;
    }
    if (out->n == out->cap) {
      out->cap = out->cap ? 2 * out->cap : 1024;
      out->ids = ps_xrealloc(out->ids, out->cap * sizeof *out->ids);
    }
    strmap_put(out->idx, rec.id, out->n);
    out->ids[out->n++] = ps_xstrdup(rec.id);
  }
  fasta_close(&r);
  if (rc == 0 && out->n == 0) rc = ps_err_set(err, PS_EFORMAT, "%s: no FASTA record", path);
  return rc;
}

static int cmp_scored(const void *a, const void *b) {  // value descending, then id ascending
  const scored_t *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static const char *ns_short(go_namespace_t ns) { return ns == GO_NS_BP ? "BP" : ns == GO_NS_MF ? "MF" : ns == GO_NS_CC ? "CC" : "?"; }

// A label for a TSV cell: tabs and newlines become spaces.
static void tsv_cell(FILE *f, const char *s) {
  for (; s && *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Encode and write the rows of one batch.
static int write_batch(annot_model_t *m, const float *x, char **ids, int64_t n, sae_codes_t *codes, FILE *tsv,
                       FILE *jsonl, const go_annotations_t *truth, annot_fmax_t *fm, annot_stats_t *st,
                       scored_t **sbuf, size_t *scap, uint8_t **cbuf, ps_err_t *err) {
  int rc = sae_enc_run(m->enc, x, n, codes, err);
  if (rc < 0) return rc;
  const go_ontology_t *o = m->onto;
  for (int64_t r = 0; r < n; r++) {
    int64_t a0 = codes->indptr[r], a1 = codes->indptr[r + 1];
    size_t na = (size_t)(a1 - a0);
    // features, strongest first
    if (na > *scap) {
      *scap = na + go_n_terms(o);
      *sbuf = ps_xrealloc(*sbuf, *scap * sizeof **sbuf);
      *cbuf = ps_xrealloc(*cbuf, *scap);
    }
    scored_t *fs = *sbuf;
    for (size_t j = 0; j < na; j++) fs[j] = (scored_t){codes->indices[a0 + (int64_t)j], codes->values[a0 + (int64_t)j]};
    qsort(fs, na, sizeof *fs, cmp_scored);
    json_t *jo = json_object();
    json_object_set_new(jo, "protein", json_string(ids[r]));
    json_t *jf = json_array();
    m->n_touched = 0;
    for (size_t j = 0; j < na; j++) {
      int32_t f = fs[j].id;
      float a = fs[j].v, mx = m->max_act[f];
      float s = mx > 0 ? (m->o.no_scaling || a / mx >= 1 ? 1 : a / mx) : 0;
      const char *ex = m->expl ? m->expl[f] : NULL;
      fprintf(tsv, "%s\tfeature\t%d\t%.6g\t%.4f\t", ids[r], f, (double)a, (double)s);
      tsv_cell(tsv, ex ? ex : "");
      fputc('\n', tsv);
      json_t *e = json_object();
      json_object_set_new(e, "id", json_integer(f));
      json_object_set_new(e, "activation", json_real(a));
      json_object_set_new(e, "scaled", json_real(s));
      json_object_set_new(e, "explanation", ex ? json_string(ex) : json_null());
      if (ex && isfinite(m->expl_r[f])) json_object_set_new(e, "explanation_r", json_real(m->expl_r[f]));
      json_array_append_new(jf, e);
      for (int64_t t = m->t_ptr[f]; t < m->t_ptr[f + 1]; t++) {
        int32_t g = m->t_go[t];
        float v = s * m->t_conf[t];
        if (m->score[g] == 0 && v > 0) m->touched[m->n_touched++] = g;
        if (v > m->score[g]) m->score[g] = v;
      }
    }
    json_object_set_new(jo, "features", jf);
    // GO terms, best first
    size_t ng = 0;
    scored_t *gs = fs;  // the features are written: reuse the buffer
    if (m->n_touched > *scap) {
      *scap = m->n_touched;
      *sbuf = gs = fs = ps_xrealloc(*sbuf, *scap * sizeof **sbuf);
      *cbuf = ps_xrealloc(*cbuf, *scap);
    }
    for (size_t j = 0; j < m->n_touched; j++) {
      int32_t g = m->touched[j];
      float v = floorf(m->score[g] * 1e4f + 0.5f) / 1e4f;  // the 4 decimals written are the scores evaluated
      m->score[g] = 0;
      if (v >= m->o.min_score && v > 0) gs[ng++] = (scored_t){g, v};
    }
    m->n_touched = 0;
    qsort(gs, ng, sizeof *gs, cmp_scored);
    if (m->o.max_terms > 0 && ng > (size_t)m->o.max_terms) ng = (size_t)m->o.max_terms;
    json_t *jg = json_array();
    for (size_t j = 0; j < ng; j++) {
      const go_term_t *t = go_term(o, gs[j].id);
      fprintf(tsv, "%s\tgo\t%s\t%.4f\t%s\t", ids[r], t->id, (double)gs[j].v, ns_short(t->ns));
      tsv_cell(tsv, t->name);
      fputc('\n', tsv);
      json_t *e = json_object();
      json_object_set_new(e, "id", json_string(t->id));
      json_object_set_new(e, "score", json_real(gs[j].v));
      json_object_set_new(e, "namespace", json_string(ns_short(t->ns)));
      json_object_set_new(e, "name", json_string(t->name));
      json_array_append_new(jg, e);
    }
    json_object_set_new(jo, "go", jg);
    char *line = json_dumps(jo, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(jo);
    if (!line) return ps_err_set(err, PS_EFORMAT, "protein %s: cannot encode its JSON line (invalid UTF-8?)", ids[r]);
    fputs(line, jsonl);
    fputc('\n', jsonl);
    free(line);
    st->n_proteins++;
    st->n_active_sum += (int64_t)na;
    st->n_with_go += ng > 0;
    if (truth && fm) {
      int64_t pi = go_annotations_find(truth, ids[r]);
      if (pi >= 0) {
        const int32_t *tt = truth->terms[pi];
        uint32_t ntt = truth->n_terms[pi];
        size_t n_true = 0;
        for (uint32_t j = 0; j < ntt; j++) n_true += !is_root(m, tt[j]);
        float *sc = ps_xmalloc((ng ? ng : 1) * sizeof *sc);
        fmax_add_ns(fm, o, m->roots, gs, ng, tt, ntt, sc, *cbuf);
        free(sc);
        if (n_true) {
          if (st->n_eval == st->cap_eval)
            st->eval_ids = ps_xrealloc(st->eval_ids, (st->cap_eval = st->cap_eval ? 2 * st->cap_eval : 256) * sizeof(char *));
          st->eval_ids[st->n_eval++] = ps_xstrdup(ids[r]);
        }
      }
    }
  }
  if (ferror(tsv) || ferror(jsonl))  // the output, not the input: callers tell by ferror on their FILEs
    return ps_err_set(err, errno ? -errno : PS_EIO, "output write failed: %s", strerror(errno ? errno : EIO));
  return 0;
}

int annot_proteome(annot_model_t *m, const char *fasta, const char *emb, const char *ids_path, FILE *tsv,
                   FILE *jsonl, const go_annotations_t *truth, annot_fmax_t *fm, int pace_ms, int (*stop)(void),
                   annot_stats_t *st, ps_err_t *err) {
  annot_stats_free(st);
  memset(st, 0, sizeof *st);
  fa_ids_t fa = {0};
  emb_source_t *src = NULL;
  sae_codes_t codes = {0};
  int64_t d = m->sae->cfg.d_in, bn = m->o.batch_rows, n = 0;
  float *x = ps_xmalloc((size_t)(bn * d) * sizeof *x);
  char **bids = ps_xcalloc((size_t)bn, sizeof *bids);
  scored_t *sbuf = NULL;
  uint8_t *cbuf = NULL;
  size_t scap = 0;
  int rc = read_fasta_ids(fasta, &fa, err);
  if (rc < 0) goto out;
  st->n_fasta = (int64_t)fa.n;
  emb_source_opts_t eo = {.path = emb, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids_path,
                          .fallback_ids = (const char *const *)fa.ids, .n_fallback_ids = fa.n};
  if ((rc = emb_source_open(&src, &eo, err)) < 0) goto out;
  fprintf(tsv, "protein\tkind\tid\tvalue\tscaled_or_namespace\tlabel\n");
  emb_record_t rec;
  for (;;) {
    rc = emb_source_next(src, &rec, err);
    if (rc < 0) goto out;
    if (rc > 0) {
      if ((int64_t)rec.dim != d) {
        rc = ps_err_set(err, PS_EDIM, "%s: record %llu (%s): dimension %u but the SAE expects %lld", emb,
                        (unsigned long long)rec.index, rec.id, rec.dim, (long long)d);
        goto out;
      }
      if (!strmap_get(fa.idx, rec.id, NULL)) {
        rc = ps_err_set(err, PS_EMISMATCH, "%s: record %llu: id '%s' is not in %s", emb, (unsigned long long)rec.index,
                        rec.id, fasta);
        goto out;
      }
      for (int64_t c = 0; c < d; c++)
        if (!isfinite(rec.rows[c])) {
          rc = ps_err_set(err, PS_ENAN, "%s: record %llu (%s): %s at column %lld", emb, (unsigned long long)rec.index,
                          rec.id, isnan(rec.rows[c]) ? "NaN" : "Inf", (long long)c);
          goto out;
        }
      memcpy(x + n * d, rec.rows, (size_t)d * sizeof *x);
      free(bids[n]);
      bids[n++] = ps_xstrdup(rec.id);
    }
    int got = rc;
    if (n == bn || (got == 0 && n > 0)) {
      if ((rc = write_batch(m, x, bids, n, &codes, tsv, jsonl, truth, fm, st, &sbuf, &scap, &cbuf, err)) < 0) {
        ps_err_prefix(err, "%s: ", emb);
        goto out;
      }
      n = 0;
      if (pace_ms > 0) sleep_ms(pace_ms);
      if (stop && stop()) {
        rc = ps_err_set(err, PS_EINTR, "stopped by a signal");
        goto out;
      }
    }
    if (got == 0) break;
  }
  if (st->n_proteins == 0) rc = ps_err_set(err, PS_EFORMAT, "%s: no embeddings", emb);
out:
  emb_source_destroy(&src);
  sae_codes_free(&codes);
  for (int64_t i = 0; i < bn; i++) free(bids[i]);
  free(bids);
  free(x);
  free(sbuf);
  free(cbuf);
  fa_ids_free(&fa);
  return rc;
}

// ---- evaluation and the one-call entry point -----------------------------------------------------
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

static int close_synced(FILE *f) {
  int e = 0;
  if (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0) e = errno ? errno : EIO;
  if (fclose(f) != 0 && !e) e = errno;
  return -e;
}

int annot_run_proteome(const char *db, const char *sae_dir, const char *data_dir, const char *fasta, const char *emb,
                       const char *ids_path, const char *out_dir, const char *name, annot_eval_t *ev, ps_err_t *err) {
  char dd[PATH_MAX], t_tsv[PATH_MAX] = "", t_js[PATH_MAX] = "", o_tsv[PATH_MAX], o_js[PATH_MAX];
  annot_model_t *m = NULL;
  go_annotations_t *truth = NULL;
  annot_stats_t st = {0};
  FILE *ft = NULL, *fj = NULL;
  ps_godata_t gd;
  int rc;
  if (!data_dir && !(data_dir = ps_godata_default_dir(dd, sizeof dd)))
    return ps_err_set(err, PS_ENOTFOUND, "no data directory with a GO ontology (PROTSAE_DATA or ../shared/data)");
  if ((rc = ps_godata_find(data_dir, PS_GODATA_NEED_ONTOLOGY | (ev ? PS_GODATA_NEED_ANNOTATIONS : 0), &gd, err)) < 0)
    return rc;
  annot_opts_t o = {.sae_dir = sae_dir, .db = db, .obo = gd.obo, .conf = ANNOT_CONF_PRECISION, .min_score = 0.01,
                    .max_terms = 100, .batch_rows = 256};
  if ((rc = annot_model_load(&m, &o, err)) < 0) goto out;
  if (ev && (rc = annot_truth_load(&truth, m->onto, gd.annotations, gd.annotations_gaf, err)) < 0) goto out;
  if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    rc = ps_err_set(err, -errno, "%s: cannot create: %s", out_dir, strerror(errno));
    goto out;
  }
  snprintf(t_tsv, sizeof t_tsv, "%s/.%s.tsv.tmp", out_dir, name);
  snprintf(t_js, sizeof t_js, "%s/.%s.jsonl.tmp", out_dir, name);
  snprintf(o_tsv, sizeof o_tsv, "%s/%s.tsv", out_dir, name);
  snprintf(o_js, sizeof o_js, "%s/%s.jsonl", out_dir, name);
  if (!(ft = fopen(t_tsv, "w")) || !(fj = fopen(t_js, "w"))) {
    rc = ps_err_set(err, -errno, "%s: cannot create: %s", ft ? t_js : t_tsv, strerror(errno));
    goto out;
  }
  annot_fmax_t fm[ANNOT_N_FM];
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_init(&fm[k]);
  if ((rc = annot_proteome(m, fasta, emb, ids_path, ft, fj, truth, fm, 0, NULL, &st, err)) < 0) goto out;
  int rt = close_synced(ft), rj = close_synced(fj);
  ft = fj = NULL;
  if (rt < 0 || rj < 0) {
    rc = ps_err_set(err, PS_EIO, "%s: write failed: %s", rt < 0 ? t_tsv : t_js, strerror(-(rt < 0 ? rt : rj)));
    goto out;
  }
  if (rename(t_tsv, o_tsv) != 0 || rename(t_js, o_js) != 0) {
    rc = ps_err_set(err, -errno, "%s: cannot rename into place: %s", out_dir, strerror(errno));
    goto out;
  }
  int dfd = open(out_dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  if (ev) annot_eval_finish(m, truth, fm, &st, ev);
out:
  if (ft) fclose(ft);
  if (fj) fclose(fj);
  if (rc < 0 && t_tsv[0]) unlink(t_tsv), unlink(t_js);
  annot_stats_free(&st);
  go_annotations_destroy(&truth);
  annot_model_free(&m);
  return rc;
}
