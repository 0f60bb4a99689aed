// concepts.c — see concepts.h.
#include "concepts.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

struct scorer_concepts {
  scorer_concepts_cfg_t cfg;
  concept_set_t *set;
  json_t *files;               // [{name, bytes}]
  concept_load_stats_t st;
};

int scorer_concepts_new(scorer_concepts_t **out, const scorer_concepts_cfg_t *cfg, ps_err_t *err) {
  *out = NULL;
  scorer_concepts_t *c = ps_xcalloc(1, sizeof *c);
  c->cfg = *cfg;
  c->set = concept_set_new();
  c->files = json_array();
  char *list = ps_xstrdup(cfg->files ? cfg->files : ""), *save = NULL;
  int rc = 0;
  for (char *p = strtok_r(list, ",", &save); p && rc == 0; p = strtok_r(NULL, ",", &save)) {
    if (!*p) continue;
    concept_load_stats_t st = {0};
    if ((rc = concept_set_load(c->set, p, &st, err)) < 0) break;
    struct stat sb;
    const char *base = strrchr(p, '/');
    json_array_append_new(c->files, json_pack("{s:s, s:I}", "name", base ? base + 1 : p, "bytes",
                                              (json_int_t)(stat(p, &sb) == 0 ? sb.st_size : -1)));
    PS_INFO("concepts: %s: %" PRIu64 " annotations kept of %" PRIu64 " entries (skipped: %" PRIu64 " unknown "
            "positions, %" PRIu64 " on other sequences, %" PRIu64 " of other feature types)", p, st.kept, st.entries,
            st.skipped_unknown, st.skipped_other_seq, st.skipped_type);
    c->st.kept += st.kept, c->st.skipped_unknown += st.skipped_unknown, c->st.skipped_other_seq += st.skipped_other_seq;
  }
  free(list);
  if (rc == 0 && !concept_set_n_annotations(c->set))
    rc = ps_err_set(err, PS_ECONFIG, "--concepts '%s': no annotations", cfg->files ? cfg->files : "");
  if (rc < 0) {
    scorer_concepts_destroy(&c);
    return rc;
  }
  *out = c;
  return 0;
}

void scorer_concepts_destroy(scorer_concepts_t **cp) {
  scorer_concepts_t *c = *cp;
  if (!c) return;
  concept_set_destroy(&c->set);
  json_decref(c->files);
  free(c);
  *cp = NULL;
}

static char *dump_json(json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(o);
  return s;
}

static json_t *thresholds_json(const concept_f1_opts_t *o) {
  json_t *t = json_array();
  for (size_t i = 0; i < o->n_thresholds; i++) json_array_append_new(t, json_real(o->thresholds[i]));
  return t;
}

struct feat_ctx {
  float *fmax;
  uint32_t nf, alive;
};
static int feat_fn(uint32_t f, const fs_feat_t *ft, void *ctx) {
  struct feat_ctx *x = ctx;
  if (f >= x->nf) return ps_err_set(NULL, PS_EFORMAT, "feature %u", f);
  x->fmax[f] = ft->res_max;
  x->alive += ft->res_active > 0;
  return 0;
}

struct rc_ctx {
  concept_f1_t *acc;
  ps_err_t *err;
  int rc;
};
static int rcode_fn(const char *id, const fs_rcode_t *rc, void *ctx) {
  struct rc_ctx *x = ctx;
  int r = concept_f1_add(x->acc, id, rc, x->err);
  return r < 0 ? (x->rc = r) : 0;
}

int scorer_concepts_run(scorer_concepts_t *c, fs_t *fs, int force, int *ran, ps_err_t *err) {
  *ran = 0;
  fs_meta_t m;
  int rc = fs_meta_get(fs, &m, err);
  if (rc <= 0) return rc < 0 ? rc : ps_err_set(err, PS_ESTATE, "%s: empty store", fs_path(fs));
  if (!m.level || !m.residue_top) {
    PS_WARN("concepts: %s %s: no concept analysis", fs_path(fs),
            !m.level ? "is a protein-level store" : "keeps no residue codes (residue_top 0)");
    return 0;
  }
  const concept_f1_opts_t *o = &c->cfg.opts;
  json_t *sj = json_object();
  json_object_set_new(sj, "files", json_deep_copy(c->files));
  json_object_set_new(sj, "thresholds", thresholds_json(o));
  json_object_set_new(sj, "min_instances", json_integer(o->min_instances));
  json_object_set_new(sj, "residue_top", json_integer(m.residue_top));
  json_object_set_new(sj, "annotations", json_integer((json_int_t)concept_set_n_annotations(c->set)));
  char *settings = dump_json(sj), *stored = NULL, *summary = NULL;
  concept_f1_t *acc = NULL;
  concept_f1_best_t *best = NULL;
  fs_wb_t *wb = NULL;
  struct feat_ctx fx = {ps_xcalloc(m.n_features ? m.n_features : 1, sizeof(float)), m.n_features, 0};
  if ((rc = fs_kv_get(fs, "concept/settings", &stored, NULL, err)) < 0) goto out;
  if ((rc = fs_kv_get(fs, "concept/summary", &summary, NULL, err)) < 0) goto out;
  if (!force && stored && summary && !strcmp(stored, settings)) {
    PS_INFO("concepts: the store already holds the concept analysis with these settings");
    rc = 0;
    goto out;
  }
  free(summary);
  summary = NULL;
  if ((rc = fs_feat_each(fs, m.top_n, feat_fn, &fx, err)) < 0) goto out;
  acc = concept_f1_new(c->set, m.n_features, fx.fmax, o);
  struct rc_ctx rx = {acc, err, 0};
  rc = fs_rcode_each(fs, rcode_fn, &rx, err);
  if (rx.rc < 0) rc = rx.rc;
  if (rc < 0) goto out;
  size_t nb = 0;
  concept_f1_summary_t s;
  concept_f1_finish(acc, &best, &nb, &s);
  wb = fs_wb_new();
  fs_wb_clear_concept(fs, wb);
  for (size_t i = 0; i < nb; i++) {
    const concept_f1_best_t *b = &best[i];
    fs_concept_t rec = {b->feature, (char *)concept_set_name(c->set, b->concept), b->threshold, b->precision,
                        b->recall, b->f1, b->tp, b->n_pred, b->found, b->instances};
    fs_wb_put_concept(fs, wb, &rec);
  }
  double frac = fx.alive ? (double)s.features_f1_over_05 / fx.alive : 0.0;
  json_t *j = json_object();
#define I(k, v) json_object_set_new(j, k, json_integer((json_int_t)(v)))
  I("n_proteins", s.n_proteins);
  I("n_residues", s.n_residues);
  I("n_concepts", s.n_concepts);
  I("n_concepts_seen", s.n_concepts_seen);
  json_object_set_new(j, "thresholds", thresholds_json(o));
  I("min_instances", o->min_instances);
  I("features_f1_over_05", s.features_f1_over_05);
  json_object_set_new(j, "frac_f1_over_05", json_real(frac));
  I("concepts_covered", s.concepts_covered);
  I("n_features", fx.alive);
  I("n_features_scored", s.n_features_scored);
  I("residue_top", m.residue_top);
  I("annotated_proteins", concept_set_n_proteins(c->set));
  I("annotations_out_of_range", s.ann_out_of_range);
#undef I
  summary = dump_json(j);
  fs_wb_put_kv(fs, wb, "concept/settings", settings, strlen(settings));
  fs_wb_put_kv(fs, wb, "concept/summary", summary, strlen(summary));
  if ((rc = fs_commit(fs, wb, 1, err)) < 0) goto out;
  *ran = 1;
  PS_INFO("concepts: %" PRIu64 " proteins, %u concepts tested (of %u seen), %u of %u features at F1 > 0.5 (%.4f), "
          "%u concepts covered", s.n_proteins, s.n_concepts, s.n_concepts_seen, s.features_f1_over_05, fx.alive, frac,
          s.concepts_covered);
out:
  if (rc < 0) ps_err_prefix(err, "concept analysis of %s: ", fs_path(fs));
  fs_wb_free(&wb);
  concept_f1_destroy(&acc);
  free(best);
  free(fx.fmax);
  free(settings);
  free(stored);
  free(summary);
  return rc;
}
