// analysis.c — see analysis.h.
#include "analysis.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "go.h"
#include "godata.h"
#include "io.h"
#include "log.h"
#include "pool.h"
#include "strmap.h"

static const char *base_name(const char *p) {
  const char *s = p ? strrchr(p, '/') : NULL;
  return s ? s + 1 : p ? p : "";
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static char *json_take(json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(o);
  return s;
}

// ---- enrichment -------------------------------------------------------------------------------------
struct scorer_enrich {
  scorer_enrich_cfg_t cfg;
  ps_godata_t data;
  go_ontology_t *onto;
  go_annotations_t *annot;
  strmap_t *excl;
  uint64_t n_excl, excl_hash;
  ps_pool_t *pool;
};

int scorer_enrich_new(scorer_enrich_t **out, const scorer_enrich_cfg_t *cfg, ps_err_t *err) {
  *out = NULL;
  scorer_enrich_t *e = ps_xcalloc(1, sizeof *e);
  e->cfg = *cfg;
  int rc = ps_godata_find(cfg->data_dir, PS_GODATA_NEED_ONTOLOGY | PS_GODATA_NEED_ANNOTATIONS, &e->data, err);
  if (rc < 0) goto fail;
  go_load_opts_t lo = {cfg->rels};
  if ((rc = go_ontology_load(&e->onto, e->data.obo, &lo, err)) < 0) goto fail;
  e->annot = go_annotations_new();
  rc = e->data.annotations_gaf ? go_annotations_load_gaf(e->annot, e->onto, e->data.annotations, NULL, NULL, err)
                               : go_annotations_load_tsv(e->annot, e->onto, e->data.annotations, NULL, NULL, err);
  if (rc < 0) goto fail;
  go_annotations_propagate(e->annot, e->onto);
  if (cfg->exclude_file && cfg->exclude_file[0]) {
    FILE *f = fopen(cfg->exclude_file, "r");
    if (!f) {
      rc = ps_err_set(err, -errno, "%s: cannot open the exclude list: %s", cfg->exclude_file, strerror(errno));
      goto fail;
    }
    e->excl = strmap_new(1024);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
      line[strcspn(line, "\r\n")] = 0;
      if (line[0] && !strmap_get(e->excl, line, NULL)) {
        strmap_put(e->excl, line, 1);
        e->n_excl++;
        e->excl_hash += strmap_hash(line);  // order-free
      }
    }
    fclose(f);
  }
  if (cfg->threads > 1) e->pool = ps_pool_new(cfg->threads);
  *out = e;
  return 0;
fail:
  scorer_enrich_destroy(&e);
  return rc;
}

void scorer_enrich_destroy(scorer_enrich_t **ep) {
  scorer_enrich_t *e = *ep;
  if (!e) return;
  go_annotations_destroy(&e->annot);
  go_ontology_destroy(&e->onto);
  strmap_destroy(&e->excl);
  ps_pool_destroy(&e->pool);
  free(e);
  *ep = NULL;
}

// The settings that determine the results (file names, not paths: the same data mounted elsewhere
// gives the same settings).
static char *settings_json(const scorer_enrich_t *e, int64_t n_prot, int64_t pop, uint32_t tested) {
  const enrich_opts_t *o = &e->cfg.opts;
  json_t *j = json_object(), *f1 = json_array();
  json_object_set_new(j, "obo", json_string(base_name(e->data.obo)));
  json_object_set_new(j, "annotations", json_string(base_name(e->data.annotations)));
  go_ontology_info_t oi;
  go_ontology_info(e->onto, &oi);
  json_object_set_new(j, "propagation", json_string(enrich_rels_name(oi.rels)));
  json_object_set_new(j, "population_rule", json_string(enrich_pop_name(o->population)));
  json_object_set_new(j, "correction_scope", json_string(enrich_scope_name(o->scope)));
  json_object_set_new(j, "depth", json_string(enrich_depth_name(o->depth)));
  json_object_set_new(j, "min_size", json_integer(o->min_size));
  json_object_set_new(j, "act_frac", jnum(o->act_frac));
  json_object_set_new(j, "alternative", json_string(enrich_alt_name(o->alternative)));
  json_object_set_new(j, "correction", json_string(enrich_corr_name(o->correction)));
  json_object_set_new(j, "alpha", jnum(o->alpha));
  json_object_set_new(j, "max_hits", json_integer(o->max_hits));
  for (uint32_t i = 0; i < o->n_f1; i++) json_array_append_new(f1, jnum(o->f1_thresholds[i]));
  json_object_set_new(j, "f1_thresholds", f1);
  json_object_set_new(j, "exclude_file", json_string(base_name(e->cfg.exclude_file)));
  json_object_set_new(j, "excluded", json_integer((json_int_t)e->n_excl));
  char h[32];
  snprintf(h, sizeof h, "%016" PRIx64, e->excl_hash);
  json_object_set_new(j, "excluded_hash", json_string(h));
  json_object_set_new(j, "proteins_analysed", json_integer(n_prot));
  json_object_set_new(j, "population", json_integer(pop));
  json_object_set_new(j, "tested_terms", json_integer(tested));
  return json_take(j);
}

static char *summary_json(const enrich_summary_t *s, int64_t pop, uint32_t tested) {
  json_t *j = json_object();
  double fa = s->n_alive ? (double)s->with_any / (double)s->n_alive : 0.0;
#define I(k, v) json_object_set_new(j, k, json_integer((json_int_t)(v)))
#define R(k, v) json_object_set_new(j, k, jnum(v))
  I("n_features", s->n_features);
  I("n_alive", s->n_alive);
  I("with_any", s->with_any);
  I("with_bp", s->with_ns[0]);
  I("with_mf", s->with_ns[1]);
  I("with_cc", s->with_ns[2]);
  R("frac_alive_with_term", fa);
  I("n_sig_pairs", s->n_sig_pairs);
  I("n_sig_terms", s->n_sig_terms);
  R("mean_depth", s->mean_depth);
  R("median_best_f1", s->median_best_f1);
  I("f1_over_05", s->f1_over_05);
  I("mono_features", s->mono_features);
  R("mono_dist", s->mono_dist);
  R("mono_rand_dist", s->mono_rand_dist);
  R("mono_lca_depth", s->mono_lca_depth);
  R("mono_rand_lca_depth", s->mono_rand_lca_depth);
  R("mono_same_branch", s->mono_same_branch);
  R("mono_rand_same_branch", s->mono_rand_same_branch);
  I("population", pop);
  I("tested_terms", tested);
#undef I
#undef R
  return json_take(j);
}

static void fill_record(const enrich_engine_t *eng, const enrich_results_t *r, int64_t f, fs_enrich_feat_t *rec) {
  const go_ontology_t *o = enrich_ontology(eng);
  const enrich_feature_t *ef = &r->features[f];
  memset(rec, 0, sizeof *rec);
  rec->n_active = ef->n_active;
  rec->n_study = ef->n_study;
  rec->max_act = ef->max_act;
  rec->n_touched = ef->n_touched;
  rec->best_f1 = ef->best_f1;
  rec->best_f1_threshold = ef->best_f1_threshold;
  if (ef->best_f1_term >= 0) snprintf(rec->best_f1_go, sizeof rec->best_f1_go, "%s", go_term(o, ef->best_f1_term)->id);
  uint32_t n = 0;
  const enrich_hit_t *h = enrich_feature_hits(r, f, &n);
  rec->hits = ps_xcalloc(n ? n : 1, sizeof *rec->hits);
  rec->n_hits = n;
  for (uint32_t i = 0; i < n; i++) {
    const go_term_t *t = go_term(o, h[i].term);
    fs_term_hit_t *x = &rec->hits[i];
    snprintf(x->go_id, sizeof x->go_id, "%s", t->id);
    x->ns = (int)t->ns;
    x->depth = enrich_term_depth(eng, h[i].term);
    x->name = (char *)t->name;  // borrowed: only encoded, never freed here
    x->k = h[i].k;
    x->n = (uint32_t)ef->n_study;
    x->K = h[i].K;
    x->N = (uint32_t)r->pop_n;
    x->fold = h[i].fold;
    x->p = h[i].p;
    x->ln_p = h[i].ln_p;
    x->p_bonf = h[i].p_bonf;
    x->q_bh = h[i].q_bh;
    x->f1 = h[i].f1;
    x->f1_threshold = h[i].f1_threshold;
  }
}

int scorer_enrich_run(scorer_enrich_t *e, fs_t *fs, int force, int *ran, double *seconds, ps_err_t *err) {
  *ran = 0;
  *seconds = 0;
  double t0 = ps_mono_s();
  fs_csc_t c = {0};
  int64_t *indptr = NULL, *annot_of = NULL;
  int32_t *rows = NULL;
  enrich_engine_t *eng = NULL;
  enrich_results_t res = {0};
  fs_wb_t *wb = NULL;
  char *settings = NULL, *stored = NULL, *state = NULL;
  int rc = fs_load_csc(fs, &c, err);
  if (rc < 0) goto out;
  int64_t nf = c.n_features, np = (int64_t)c.n_proteins, nnz = (int64_t)c.colptr[nf];
  indptr = ps_xmalloc((size_t)(nf + 1) * sizeof *indptr);
  rows = ps_xmalloc((size_t)(nnz ? nnz : 1) * sizeof *rows);
  annot_of = ps_xmalloc((size_t)(np ? np : 1) * sizeof *annot_of);
  uint8_t *held = ps_xcalloc((size_t)(np ? np : 1), 1);
  for (int64_t p = 0; p < np; p++) {
    held[p] = e->excl && strmap_get(e->excl, c.ids[p], NULL);
    annot_of[p] = held[p] ? -2 : go_annotations_find(e->annot, c.ids[p]);  // -2: never in the population
  }
  int64_t o = 0;
  indptr[0] = 0;
  for (int64_t f = 0; f < nf; f++) {  // excluded proteins' activations dropped (in place)
    for (uint64_t j = c.colptr[f]; j < c.colptr[f + 1]; j++)
      if (!held[c.rows[j]]) {
        rows[o] = (int32_t)c.rows[j];
        c.vals[o++] = c.vals[j];
      }
    indptr[f + 1] = o;
  }
  free(held);
  if ((rc = enrich_engine_new(&eng, e->onto, e->annot, annot_of, np, &e->cfg.opts, err)) < 0) goto out;
  settings = settings_json(e, np, enrich_pop_size(eng), enrich_n_tested(eng));
  size_t sl = 0;
  if ((rc = fs_kv_get(fs, "enrich/settings", &stored, &sl, err)) < 0) goto out;
  if ((rc = fs_kv_get(fs, "enrich/state", &state, NULL, err)) < 0) goto out;
  int same = stored && !strcmp(stored, settings);
  int64_t next = 0;
  if (same && state && !strcmp(state, "done") && !force) {
    PS_INFO("enrichment: the store already holds a complete enrichment with these settings");
    rc = 0;
    goto out;
  }
  if (same && state && strcmp(state, "done") != 0 && !force) next = strtoll(state, NULL, 10);
  wb = fs_wb_new();
  if (!same || force) {  // a new run: the old records go in the same batch as the new settings
    fs_wb_clear_enrich(fs, wb);
    fs_wb_del_kv(fs, wb, "enrich/summary");
  }
  enrich_csc_t acts = {nf, np, indptr, rows, c.vals};
  if ((rc = enrich_run(eng, &acts, e->pool, &res, err)) < 0) goto out;
  PS_INFO("enrichment: %" PRId64 " features x %u tested terms over %" PRId64 " proteins (population %" PRId64
          ", %" PRIu64 " excluded): %" PRId64 " significant pairs in %.2f s%s",
          nf, enrich_n_tested(eng), np, enrich_pop_size(eng), e->n_excl, res.n_hits, res.seconds,
          next ? " (resuming the writes)" : "");
  if (next < 0 || next > nf) next = 0;
  for (int64_t g = next; g < nf; g += SCORER_ENRICH_GROUP) {
    int64_t end = g + SCORER_ENRICH_GROUP < nf ? g + SCORER_ENRICH_GROUP : nf;
    if (g == next) fs_wb_put_kv(fs, wb, "enrich/settings", settings, strlen(settings));
    for (int64_t f = g; f < end; f++) {
      if (res.features[f].n_active == 0) continue;  // dead: nothing to say
      fs_enrich_feat_t rec;
      fill_record(eng, &res, f, &rec);
      fs_wb_put_enrich(fs, wb, (uint32_t)f, &rec);
      free(rec.hits);  // names borrowed from the ontology
    }
    char st[32];
    snprintf(st, sizeof st, "%" PRId64, end);
    fs_wb_put_kv(fs, wb, "enrich/state", st, strlen(st));
    if ((rc = fs_commit(fs, wb, 0, err)) < 0) goto out;
  }
  if (next >= nf) fs_wb_put_kv(fs, wb, "enrich/settings", settings, strlen(settings));
  enrich_summary_t sum;
  enrich_summarize(eng, &res, 1, 0, &sum);
  char *sj = summary_json(&sum, enrich_pop_size(eng), enrich_n_tested(eng));  // no time: a function of the data only
  fs_wb_put_kv(fs, wb, "enrich/summary", sj, strlen(sj));
  free(sj);
  fs_wb_put_kv(fs, wb, "enrich/state", "done", 4);
  if ((rc = fs_commit(fs, wb, 1, err)) < 0) goto out;
  *ran = 1;
out:
  *seconds = ps_mono_s() - t0;
  free(settings);
  free(stored);
  free(state);
  fs_wb_free(&wb);
  enrich_results_free(&res);
  enrich_engine_free(&eng);
  free(indptr);
  free(rows);
  free(annot_of);
  fs_csc_free(&c);
  if (rc < 0) ps_err_prefix(err, "enrichment of %s: ", fs_path(fs));
  return rc;
}

// ---- interpretation -------------------------------------------------------------------------------
typedef struct unit_plan {
  uint32_t unit;
  uint64_t n_active;
  float max_act;
  double mean_act;
  size_t n_shown, n_held;
  char **ids;                 // shown then held (owned)
  float *act;                 // scaled, same order
  int32_t *bin;
  Protsae__EnrichedTerm *terms;
  char **term_strs;           // go_id, name pairs (owned)
  size_t n_terms;
  int stored;
  uint32_t attempts;
  uint64_t sent_at, next_at;  // 0 = not in flight / due now
  int inflight;
  char last_failure[256];
} unit_plan_t;

struct scorer_interp {
  scorer_interp_cfg_t cfg;
  int neurons;
  unit_plan_t *u;
  size_t n;
  strmap_t *by_unit;          // "unit" -> index
  size_t inflight;
  int summary_written;
  scorer_interp_counts_t c;
  // the request handed out by scorer_interp_next
  Protsae__InterpretRequest req;
  Protsae__EnrichedTerm **term_ptrs;
  size_t term_cap;
};

static void plan_free(unit_plan_t *p) {
  for (size_t i = 0; i < p->n_shown + p->n_held; i++) free(p->ids[i]);
  free(p->ids);
  free(p->act);
  free(p->bin);
  for (size_t i = 0; i < 2 * p->n_terms; i++) free(p->term_strs[i]);
  free(p->term_strs);
  free(p->terms);
}

void scorer_interp_destroy(scorer_interp_t **sp) {
  scorer_interp_t *s = *sp;
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) plan_free(&s->u[i]);
  free(s->u);
  free(s->term_ptrs);
  strmap_destroy(&s->by_unit);
  free(s);
  *sp = NULL;
}

static int find_unit(const scorer_interp_t *s, uint32_t unit) {
  char k[16];
  uint64_t v;
  snprintf(k, sizeof k, "%u", unit);
  return strmap_get(s->by_unit, k, &v) ? (int)v : -1;
}

int scorer_interp_new(scorer_interp_t **out, const scorer_interp_cfg_t *cfg, fs_t *fs, ps_err_t *err) {
  *out = NULL;
  fs_meta_t m;
  int rc = fs_meta_get(fs, &m, err);
  if (rc < 0) return rc;
  if (rc == 0) return ps_err_set(err, PS_ENOTFOUND, "%s: empty feature store: nothing to interpret", fs_path(fs));
  fs_csc_t c = {0};
  if ((rc = fs_load_csc(fs, &c, err)) < 0) return rc;
  scorer_interp_t *s = ps_xcalloc(1, sizeof *s);
  s->cfg = *cfg;
  s->neurons = (int)m.neurons;
  s->cfg.sample.relu = s->neurons && !cfg->neuron_minmax;
  if (s->neurons && cfg->neuron_minmax)  // the encoder's neuron mode stores v > 0 only
    PS_WARN("interp-neuron-scaling minmax: the neuron store holds the positive values only (protsae-encoder "
            "--neurons), so min-max over them equals relu here; raw values are min-max scaled in the "
            "interpreter's file mode (--neurons .npy)");
  s->by_unit = strmap_new(256);
  size_t nf = c.n_features, np = c.n_proteins;
  size_t want = cfg->n_units && cfg->n_units < nf ? cfg->n_units : nf;
  size_t *perm = ps_xmalloc((nf ? nf : 1) * sizeof *perm);
  ps_sample_unit_order(cfg->sample.seed, nf, cfg->n_units, perm);
  float *col = ps_xmalloc((np ? np : 1) * sizeof *col);
  s->u = ps_xcalloc(want ? want : 1, sizeof *s->u);
  for (size_t pi = 0; pi < nf && s->n < want; pi++) {
    size_t u = perm[pi];
    memset(col, 0, np * sizeof *col);
    double sum = 0;
    for (uint64_t j = c.colptr[u]; j < c.colptr[u + 1]; j++) {
      col[c.rows[j]] = c.vals[j];
      sum += c.vals[j];
    }
    ps_sample_t smp;
    char why[128];
    if (!ps_sample_unit(&s->cfg.sample, col, np, u, &smp, why, sizeof why)) continue;
    unit_plan_t *p = &s->u[s->n];
    p->unit = (uint32_t)u;
    p->n_active = smp.n_active;
    float mx = 0;
    for (uint64_t j = c.colptr[u]; j < c.colptr[u + 1]; j++) mx = c.vals[j] > mx ? c.vals[j] : mx;
    p->max_act = mx;
    uint64_t na = c.colptr[u + 1] - c.colptr[u];
    p->mean_act = na ? sum / (double)na : 0;
    p->n_shown = smp.n_shown;
    p->n_held = smp.n_held;
    size_t tot = smp.n_shown + smp.n_held;
    p->ids = ps_xmalloc((tot ? tot : 1) * sizeof *p->ids);
    p->act = ps_xmalloc((tot ? tot : 1) * sizeof *p->act);
    p->bin = ps_xmalloc((tot ? tot : 1) * sizeof *p->bin);
    for (size_t i = 0; i < smp.n_shown; i++) {
      p->ids[i] = ps_xstrdup(c.ids[smp.shown[i]]);
      p->act[i] = smp.shown_act[i];
      p->bin[i] = smp.shown_bin[i];
    }
    for (size_t i = 0; i < smp.n_held; i++) {
      p->ids[smp.n_shown + i] = ps_xstrdup(c.ids[smp.held[i]]);
      p->act[smp.n_shown + i] = smp.held_act[i];
      p->bin[smp.n_shown + i] = smp.held_bin[i];
    }
    ps_sample_free(&smp);
    fs_enrich_feat_t ef;
    if ((rc = fs_enrich_get(fs, (uint32_t)u, &ef, err)) < 0) goto fail;
    if (rc == 1) {
      size_t nt = ef.n_hits < cfg->max_terms ? ef.n_hits : cfg->max_terms;
      p->terms = ps_xcalloc(nt ? nt : 1, sizeof *p->terms);
      p->term_strs = ps_xcalloc(2 * (nt ? nt : 1), sizeof *p->term_strs);
      for (size_t i = 0; i < nt; i++) {
        const fs_term_hit_t *h = &ef.hits[i];
        Protsae__EnrichedTerm *t = &p->terms[i];
        protsae__enriched_term__init(t);
        p->term_strs[2 * i] = ps_xstrdup(h->go_id);
        p->term_strs[2 * i + 1] = ps_xstrdup(h->name ? h->name : "");
        t->go_id = p->term_strs[2 * i];
        t->name = p->term_strs[2 * i + 1];
        t->ns = (uint32_t)h->ns;
        t->depth = h->depth;
        t->p = h->p;
        t->q_bh = h->q_bh;
        t->fold = h->fold;
        t->k = h->k;
        t->n = h->n;
        t->f1 = h->f1;
      }
      p->n_terms = nt;
      fs_enrich_feat_free(&ef);
    }
    fs_interp_t x;
    if ((rc = fs_interp_get(fs, (uint32_t)u, &x, NULL, err)) < 0) goto fail;
    if (rc == 1) {
      p->stored = 1;
      s->c.stored++;
      fs_interp_free(&x);
    }
    char k[16];
    snprintf(k, sizeof k, "%zu", u);
    strmap_put(s->by_unit, k, s->n);
    s->n++;
  }
  s->c.planned = s->n;
  char *sv = NULL;
  if ((rc = fs_kv_get(fs, "interp/summary", &sv, NULL, err)) < 0) goto fail;
  s->summary_written = rc == 1 && s->c.stored == s->n;
  free(sv);
  PS_INFO("interpretation: %zu %s planned (%zu eligible wanted of %zu), %" PRIu64 " already stored", s->n,
          s->neurons ? "neurons" : "features", want, nf, s->c.stored);
  free(perm);
  free(col);
  fs_csc_free(&c);
  *out = s;
  return 0;
fail:
  free(perm);
  free(col);
  fs_csc_free(&c);
  scorer_interp_destroy(&s);
  return rc;
}

const Protsae__InterpretRequest *scorer_interp_next(scorer_interp_t *s, uint64_t now) {
  for (size_t i = 0; i < s->n; i++) {
    unit_plan_t *p = &s->u[i];
    if (p->stored) continue;
    if (p->inflight) {
      if (now - p->sent_at < (uint64_t)s->cfg.timeout_ms) continue;
      // no answer in time (a dead interpreter, a lost message): ask again
      p->inflight = 0;
      s->inflight--;
      s->c.resent++;
      PS_WARN("interpretation of unit %u: no answer after %lld ms, asking again", p->unit, (long long)s->cfg.timeout_ms);
    }
    if (s->inflight >= (size_t)s->cfg.inflight) return NULL;
    if (p->next_at > now) continue;
    Protsae__InterpretRequest *r = &s->req;
    protsae__interpret_request__init(r);
    r->unit = p->unit;
    r->neurons = s->neurons;
    r->store = (char *)s->cfg.store_name;
    r->n_shown_ids = p->n_shown;
    r->shown_ids = p->ids;
    r->n_shown_act = p->n_shown;
    r->shown_act = p->act;
    r->n_shown_bin = p->n_shown;
    r->shown_bin = p->bin;
    r->n_held_ids = p->n_held;
    r->held_ids = p->ids + p->n_shown;
    r->n_held_act = p->n_held;
    r->held_act = p->act + p->n_shown;
    r->n_held_bin = p->n_held;
    r->held_bin = p->bin + p->n_shown;
    r->n_active = p->n_active;
    r->max_act = p->max_act;
    r->mean_act = p->mean_act;
    if (p->n_terms > s->term_cap) {
      s->term_cap = p->n_terms;
      s->term_ptrs = ps_xrealloc(s->term_ptrs, s->term_cap * sizeof *s->term_ptrs);
    }
    for (size_t t = 0; t < p->n_terms; t++) s->term_ptrs[t] = &p->terms[t];
    r->n_terms = p->n_terms;
    r->terms = s->term_ptrs;
    r->attempt = p->attempts + 1;
    return r;
  }
  return NULL;
}

void scorer_interp_sent(scorer_interp_t *s, const Protsae__InterpretRequest *req, uint64_t now) {
  int i = find_unit(s, req->unit);
  if (i < 0) return;
  unit_plan_t *p = &s->u[i];
  p->inflight = 1;
  p->sent_at = now ? now : 1;
  p->attempts++;
  s->inflight++;
  s->c.sent++;
}

static char *record_json(const scorer_interp_t *s, const unit_plan_t *p, const Protsae__InterpretResult *r,
                         const char *final_failure) {
  json_t *j = json_object(), *shown = json_array(), *held = json_array();
  json_object_set_new(j, "kind", json_string(s->neurons ? "neuron" : "feature"));
  json_object_set_new(j, "unit", json_integer(p->unit));
  json_object_set_new(j, "mode", json_string(r && r->mode ? r->mode : ""));
  json_object_set_new(j, "offline", json_boolean(r && r->mode && !strcmp(r->mode, "offline")));
  json_object_set_new(j, "n_active", json_integer((json_int_t)p->n_active));
  json_object_set_new(j, "explanation",
                      !final_failure && r && r->explanation && r->explanation[0] ? json_string(r->explanation) : json_null());
  for (size_t i = 0; i < p->n_shown; i++) {
    json_t *e = json_object();
    json_object_set_new(e, "id", json_string(p->ids[i]));
    json_object_set_new(e, "act", jnum(p->act[i]));
    json_array_append_new(shown, e);
  }
  for (size_t i = 0; i < p->n_held; i++) {
    json_t *e = json_object();
    json_object_set_new(e, "id", json_string(p->ids[p->n_shown + i]));
    json_object_set_new(e, "act", jnum(p->act[p->n_shown + i]));
    json_object_set_new(e, "pred", !final_failure && r && r->n_predictions == p->n_held ? jnum(r->predictions[i]) : json_null());
    json_array_append_new(held, e);
  }
  json_object_set_new(j, "shown", shown);
  json_object_set_new(j, "held", held);
  int scored = !final_failure && r && r->scored;
  json_object_set_new(j, "scored", json_boolean(scored));
  json_object_set_new(j, "r", scored ? jnum(r->r) : json_null());
  json_object_set_new(j, "p", scored ? jnum(r->p) : json_null());
  json_object_set_new(j, "constant_prediction", json_boolean(scored && r->constant_prediction));
  json_object_set_new(j, "failure", json_string(final_failure ? final_failure : ""));
  json_object_set_new(j, "answer1", json_string(!final_failure && r && r->answer1 ? r->answer1 : ""));
  json_object_set_new(j, "answer2", json_string(!final_failure && r && r->answer2 ? r->answer2 : ""));
  char *out = json_take(j);
  if (!out) {  // an answer that is not valid UTF-8: keep the record without the raw answers
    j = json_object();
    json_object_set_new(j, "kind", json_string(s->neurons ? "neuron" : "feature"));
    json_object_set_new(j, "unit", json_integer(p->unit));
    json_object_set_new(j, "explanation", json_null());
    json_object_set_new(j, "scored", json_false());
    json_object_set_new(j, "failure", json_string("answer is not valid UTF-8"));
    out = json_take(j);
  }
  return out;
}

int scorer_interp_apply(scorer_interp_t *s, fs_t *fs, fs_wb_t *wb, const Protsae__InterpretResult *r, uint64_t now,
                        ps_err_t *err) {
  s->c.answers++;
  if (!r->store || strcmp(r->store, s->cfg.store_name) != 0) {
    s->c.rejected++;
    return ps_err_set(err, PS_EPROTO, "answer for store '%s', this is '%s'", r->store ? r->store : "", s->cfg.store_name);
  }
  int i = find_unit(s, r->unit);
  if (i < 0) {
    s->c.rejected++;
    return ps_err_set(err, PS_EPROTO, "answer for unit %u, which was not asked for", r->unit);
  }
  unit_plan_t *p = &s->u[i];
  if (p->stored) {
    s->c.duplicates++;
    return 0;
  }
  const char *why = NULL;
  char wbuf[160];
  if (!r->failure || !r->failure[0]) {
    if (!r->explanation || !r->explanation[0]) why = "no explanation";
    else if (r->n_predictions != p->n_held) {
      snprintf(wbuf, sizeof wbuf, "%zu predictions for %zu held-out proteins", r->n_predictions, p->n_held);
      why = wbuf;
    } else if (r->scored && (!isfinite(r->r) || r->r < -1.000001 || r->r > 1.000001 || !(r->p >= 0 && r->p <= 1)))
      why = "r or p out of range";
    for (size_t k = 0; !why && k < r->n_predictions; k++)
      if (!(r->predictions[k] >= 0 && r->predictions[k] <= 1)) {
        snprintf(wbuf, sizeof wbuf, "prediction %zu is %g, not in [0, 1]", k, r->predictions[k]);
        why = wbuf;
      }
    if (why) {
      s->c.rejected++;
      return ps_err_set(err, PS_EPROTO, "answer for unit %u rejected: %s", r->unit, why);
    }
  }
  if (p->inflight) {
    p->inflight = 0;
    s->inflight--;
  }
  if (r->failure && r->failure[0]) {
    s->c.failures++;
    snprintf(p->last_failure, sizeof p->last_failure, "%s", r->failure);
    if (p->attempts < s->cfg.max_attempts) {
      uint64_t d = (uint64_t)s->cfg.backoff_ms << (p->attempts > 10 ? 10 : p->attempts - 1);
      p->next_at = now + d;
      PS_WARN("interpretation of unit %u failed (attempt %u of %u): %s; asking again in %llu ms", p->unit, p->attempts,
              s->cfg.max_attempts, r->failure, (unsigned long long)d);
      return 0;
    }
    PS_ERROR("interpretation of unit %u failed %u times, stored as failed: %s", p->unit, p->attempts, r->failure);
    char *j = record_json(s, p, r, p->last_failure);
    fs_wb_put_interp(fs, wb, p->unit, j, strlen(j));
    free(j);
    p->stored = 1;
    s->c.stored++;
    s->c.failed_final++;
    return 1;
  }
  char *j = record_json(s, p, r, NULL);
  fs_wb_put_interp(fs, wb, p->unit, j, strlen(j));
  free(j);
  p->stored = 1;
  s->c.stored++;
  return 1;
}

int scorer_interp_done(const scorer_interp_t *s) { return s->c.stored == s->n; }

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct sum_ctx {
  const scorer_interp_t *s;
  double *rs;
  size_t n, n05, failed, constant;
  char mode[64];
};
static int sum_fn(uint32_t unit, const fs_interp_t *x, const char *json, void *c) {
  struct sum_ctx *sc = c;
  if (find_unit(sc->s, unit) < 0) return 0;
  if (!sc->mode[0] && x->mode && x->mode[0]) snprintf(sc->mode, sizeof sc->mode, "%s", x->mode);
  if (!x->scored || !isfinite(x->r)) {
    sc->failed++;
    return 0;
  }
  sc->rs[sc->n++] = x->r;
  sc->n05 += x->p < 0.05;
  sc->constant += x->constant_pred;
  return 0;
}

int scorer_interp_finish(scorer_interp_t *s, fs_t *fs, fs_wb_t *wb, ps_err_t *err) {
  if (!scorer_interp_done(s)) return 0;
  if (s->summary_written) return 0;
  struct sum_ctx sc = {s, ps_xmalloc((s->n ? s->n : 1) * sizeof(double)), 0, 0, 0, 0, ""};
  int rc = fs_interp_each(fs, sum_fn, &sc, err);
  if (rc < 0) {
    free(sc.rs);
    return rc;
  }
  double mean = NAN, med = NAN, f05 = NAN;
  if (sc.n) {
    double t = 0;
    for (size_t i = 0; i < sc.n; i++) t += sc.rs[i];
    qsort(sc.rs, sc.n, sizeof *sc.rs, cmp_d);
    mean = t / (double)sc.n;
    med = sc.n % 2 ? sc.rs[sc.n / 2] : 0.5 * (sc.rs[sc.n / 2 - 1] + sc.rs[sc.n / 2]);
    f05 = (double)sc.n05 / (double)sc.n;
  }
  free(sc.rs);
  json_t *j = json_object();
  json_object_set_new(j, "mode", json_string(sc.mode));
  json_object_set_new(j, "kind", json_string(s->neurons ? "neuron" : "feature"));
  json_object_set_new(j, "units", json_integer((json_int_t)s->n));
  json_object_set_new(j, "selected", json_integer((json_int_t)s->n));
  json_object_set_new(j, "scored", json_integer((json_int_t)sc.n));
  json_object_set_new(j, "failed", json_integer((json_int_t)sc.failed));
  json_object_set_new(j, "constant_predictions", json_integer((json_int_t)sc.constant));
  json_object_set_new(j, "mean_r", jnum(mean));
  json_object_set_new(j, "median_r", jnum(med));
  json_object_set_new(j, "frac_p_lt_0.05", jnum(f05));
  char *txt = json_take(j);
  fs_wb_put_kv(fs, wb, "interp/summary", txt, strlen(txt));
  free(txt);
  s->summary_written = 1;
  PS_INFO("interpretation complete: %zu units, %zu scored, mean r %.4f", s->n, sc.n, mean);
  return 1;
}

const scorer_interp_counts_t *scorer_interp_counts(const scorer_interp_t *s) { return &s->c; }
