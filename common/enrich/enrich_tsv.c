// enrich_tsv.c — enrichment results as TSV files (one line per kept (feature, term), or per
// feature), each written to path.tmp, fsynced and renamed. See enrich.h.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "enrich.h"

// ---- export -------------------------------------------------------------------------------------
static int tsv_open(FILE **f, char *tmp, size_t cap, const char *path, ps_err_t *err) {
  snprintf(tmp, cap, "%s.tmp", path);
  *f = fopen(tmp, "w");
  if (!*f) return ps_err_set(err, -errno, "%s: %s", tmp, strerror(errno));
  return 0;
}

static int tsv_close(FILE *f, const char *tmp, const char *path, ps_err_t *err) {
  int bad = ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0;
  int e = errno;
  if (fclose(f) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  if (bad) {
    remove(tmp);
    return ps_err_set(err, e ? -e : PS_EIO, "%s: write failed: %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    e = errno;
    remove(tmp);
    return ps_err_set(err, -e, "%s: rename to %s: %s", tmp, path, strerror(e));
  }
  return 0;
}

int enrich_write_tsv(const enrich_engine_t *e, const enrich_results_t *r, const char *path, ps_err_t *err) {
  FILE *f;
  char tmp[4096];
  int rc = tsv_open(&f, tmp, sizeof tmp, path, err);
  if (rc) return rc;
  fprintf(f, "feature\tgo_id\tnamespace\tdepth\tname\tk\tn\tK\tN\tfold\tp\tln_p\tp_bonf\tq_bh\tf1\tf1_threshold\n");
  for (int64_t fi = 0; fi < r->n_features; fi++) {
    const enrich_feature_t *ft = &r->features[fi];
    for (uint32_t i = 0; i < ft->n_hits; i++) {
      const enrich_hit_t *h = &r->hits[ft->hit0 + i];
      const go_term_t *t = go_term(enrich_ontology(e), h->term);
      fprintf(f, "%lld\t%s\t%s\t%d\t%s\t%u\t%lld\t%u\t%lld\t%.6g\t%.10e\t%.17g\t%.10e\t%.10e\t%.4f\t%.2f\n",
              (long long)fi, t->id, go_namespace_name(t->ns), enrich_term_depth(e, h->term), t->name, h->k,
              (long long)ft->n_study, h->K, (long long)r->pop_n, h->fold, h->p, h->ln_p, h->p_bonf, h->q_bh, (double)h->f1,
              (double)h->f1_threshold);
    }
  }
  return tsv_close(f, tmp, path, err);
}

int enrich_write_features_tsv(const enrich_engine_t *e, const enrich_results_t *r, const char *path, ps_err_t *err) {
  FILE *f;
  char tmp[4096];
  int rc = tsv_open(&f, tmp, sizeof tmp, path, err);
  if (rc) return rc;
  fprintf(f, "feature\tn_active\tn_study\tmax_act\tn_touched\tn_hits\ttop_go_id\ttop_name\ttop_p\tbest_f1_go_id\t"
             "best_f1\tbest_f1_threshold\n");
  for (int64_t fi = 0; fi < r->n_features; fi++) {
    const enrich_feature_t *ft = &r->features[fi];
    const go_term_t *top = ft->n_hits ? go_term(enrich_ontology(e), r->hits[ft->hit0].term) : NULL;
    const go_term_t *bf = ft->best_f1_term >= 0 ? go_term(enrich_ontology(e), ft->best_f1_term) : NULL;
    fprintf(f, "%lld\t%lld\t%lld\t%.6g\t%u\t%u\t%s\t%s\t%.6e\t%s\t%.4f\t%.2f\n", (long long)fi, (long long)ft->n_active,
            (long long)ft->n_study, (double)ft->max_act, ft->n_touched, ft->n_hits, top ? top->id : "-",
            top ? top->name : "-", top ? r->hits[ft->hit0].p : 1.0, bf ? bf->id : "-", (double)ft->best_f1,
            (double)ft->best_f1_threshold);
  }
  return tsv_close(f, tmp, path, err);
}

