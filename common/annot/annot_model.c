// annot_model.c — the annotation model: the features' closed GO terms with their confidences, max
// activations and explanations from a feature store, the ontology, and (optionally) the SAE that
// encodes embeddings in-process. See annot.h.
#include "annot_priv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "featstore.h"

const go_ontology_t *annot_model_onto(const annot_model_t *m) { return m->onto; }
int64_t annot_model_d_in(const annot_model_t *m) { return m->sae ? m->sae->cfg.d_in : 0; }
int64_t annot_model_n_features(const annot_model_t *m) { return m->n_features; }
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
  free(m->sbuf);
  free(m->cbuf);
  free(m);
  *mp = NULL;
}

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
        if (annot_is_root(m->roots, t)) continue;
        if (m->score[t] == 0) m->touched[m->n_touched++] = t;
        if (pairs[i].conf > m->score[t]) m->score[t] = pairs[i].conf;
      }
    }
    qsort(m->touched, m->n_touched, sizeof *m->touched, annot_cmp_i32);
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
  if (o->sae_dir) {
    if ((rc = sae_load(&m->sae, o->sae_dir, err)) < 0) goto fail;
    if ((rc = sae_enc_new(&m->enc, m->sae, NULL, m->o.batch_rows, err)) < 0) goto fail;
    m->n_features = m->sae->cfg.d_sae;
  }
  if ((rc = go_ontology_load(&m->onto, o->obo, NULL, err)) < 0) goto fail;
  m->roots[0] = go_lookup(m->onto, "GO:0008150");
  m->roots[1] = go_lookup(m->onto, "GO:0003674");
  m->roots[2] = go_lookup(m->onto, "GO:0005575");
  m->score = ps_xcalloc(go_n_terms(m->onto), sizeof *m->score);
  m->touched = ps_xmalloc(go_n_terms(m->onto) * sizeof *m->touched);
  if ((rc = fs_open(&fs, o->db, FS_OPEN_READONLY, err)) < 0) goto fail;
  fs_meta_t meta;
  if ((rc = fs_meta_get(fs, &meta, err)) <= 0) {
    if (rc == 0) rc = ps_err_set(err, PS_ENOTFOUND, "%s: the feature store is empty (nothing committed yet)", o->db);
    goto fail;
  }
  if (!m->sae) m->n_features = meta.n_features;  // codes come from elsewhere: the store says how many features
  if (meta.neurons || (int64_t)meta.n_features != m->n_features) {
    rc = ps_err_set(err, PS_EMISMATCH, "%s: a store of %u %s, but the SAE %s has %lld features", o->db,
                    meta.n_features, meta.neurons ? "neurons" : "features", o->sae_dir ? o->sae_dir : "(none)",
                    (long long)m->n_features);
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
  m->max_act = ps_xcalloc((size_t)m->n_features + 1, sizeof *m->max_act);
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
