// `protsae enrich-store`: GO enrichment of feature stores.
//  --scorer ENDPOINT: asks a running protsae-scorer (its --in endpoint) to enrich its store now
//    (an EnrichRequest; the scorer writes the results into the store, as at the end of a stream).
//  otherwise, a standalone analysis of finished stores (read-only): reads the codes feature-major
//    (fs_load_csc), runs the engine in-process and prints the features-vs-neurons summary, with
//    TSVs in --out. The pipeline does not use these files: its enrichment is the scorer's.
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "curve.h"
#include "enrich.h"
#include "featstore.h"
#include "godata.h"
#include "pool.h"
#include "wire.h"
#include <zmq.h>

typedef struct store_run {
  enrich_engine_t *eng;
  enrich_results_t res;
  enrich_summary_t sum;
  int64_t *annot_of;
  int have;
} store_run_t;

// The enrichment of one store's features: summary in out, TSVs tsv_dir/NAME_terms.tsv and NAME.tsv.
static int run_store(const char *store, const go_ontology_t *onto, const go_annotations_t *annot,
                     const enrich_opts_t *opts, ps_pool_t *pool, const char *tsv_dir, const char *name, store_run_t *out,
                     ps_err_t *err) {
  fs_t *fs = NULL;
  fs_csc_t c = {0};
  int rc = fs_open(&fs, store, FS_OPEN_READONLY, err);
  if (rc < 0) return rc;
  rc = fs_load_csc(fs, &c, err);
  fs_close(&fs);
  if (rc < 0) return rc;
  int64_t nf = c.n_features, np = (int64_t)c.n_proteins, nnz = (int64_t)c.colptr[c.n_features];
  int64_t *indptr = ps_xmalloc((size_t)(nf + 1) * sizeof *indptr);
  int32_t *rows = ps_xmalloc((size_t)(nnz ? nnz : 1) * sizeof *rows);
  out->annot_of = ps_xmalloc((size_t)(np ? np : 1) * sizeof *out->annot_of);
  for (int64_t p = 0; p < np; p++) out->annot_of[p] = go_annotations_find(annot, c.ids[p]);
  for (int64_t f = 0; f <= nf; f++) indptr[f] = (int64_t)c.colptr[f];
  for (int64_t j = 0; j < nnz; j++) rows[j] = (int32_t)c.rows[j];
  enrich_csc_t acts = {nf, np, indptr, rows, c.vals};
  rc = enrich_engine_new(&out->eng, onto, annot, out->annot_of, np, opts, err);
  if (rc == 0) rc = enrich_run(out->eng, &acts, pool, &out->res, err);
  if (rc == 0) {
    enrich_summarize(out->eng, &out->res, 1, 0, &out->sum);
    char p1[PATH_MAX], p2[PATH_MAX];
    snprintf(p1, sizeof p1, "%s/%s_terms.tsv", tsv_dir, name);
    snprintf(p2, sizeof p2, "%s/%s.tsv", tsv_dir, name);
    rc = enrich_write_tsv(out->eng, &out->res, p1, err);
    if (rc == 0) rc = enrich_write_features_tsv(out->eng, &out->res, p2, err);
    out->have = rc == 0;
  }
  free(indptr);
  free(rows);
  fs_csc_free(&c);
  if (rc < 0) ps_err_prefix(err, "%s: ", store);
  return rc;
}

static void free_run(store_run_t *r) {
  enrich_results_free(&r->res);
  enrich_engine_free(&r->eng);
  free(r->annot_of);
}

static double frac(int64_t a, int64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

// The headline figures, features beside neurons (the full table goes to summary.txt).
static void print_compact(const enrich_summary_t *f, const enrich_summary_t *n) {
  printf("      %-44s %10s %10s\n", "", "features", "neurons");
#define ROW(label, fmt, a, b) do { \
    char x_[32], y_[32] = "-"; snprintf(x_, sizeof x_, fmt, a); if (n) snprintf(y_, sizeof y_, fmt, b); \
    printf("      %-44s %10s %10s\n", label, x_, y_); } while (0)
  ROW("units alive (active on an annotated protein)", "%lld", (long long)f->n_alive, (long long)(n ? n->n_alive : 0));
  ROW("with >= 1 significant GO term", "%.1f%%", frac(f->with_any, f->n_alive), n ? frac(n->with_any, n->n_alive) : 0.0);
  ROW("  ... biological process", "%.1f%%", frac(f->with_ns[0], f->n_alive), n ? frac(n->with_ns[0], n->n_alive) : 0.0);
  ROW("  ... molecular function", "%.1f%%", frac(f->with_ns[1], f->n_alive), n ? frac(n->with_ns[1], n->n_alive) : 0.0);
  ROW("  ... cellular component", "%.1f%%", frac(f->with_ns[2], f->n_alive), n ? frac(n->with_ns[2], n->n_alive) : 0.0);
  ROW("median best F1 to a GO term", "%.3f", f->median_best_f1, n ? n->median_best_f1 : 0.0);
  ROW("with a GO term at F1 >= 0.5", "%.1f%%", frac(f->f1_over_05, f->n_alive), n ? frac(n->f1_over_05, n->n_alive) : 0.0);
  ROW("DAG distance between a unit's terms", "%.2f", f->mono_dist, n ? n->mono_dist : 0.0);
  ROW("  ... between random terms", "%.2f", f->mono_rand_dist, n ? n->mono_rand_dist : 0.0);
#undef ROW
}

// GO enrichment of the feature stores fstore (and nstore, neurons; may be NULL) against the data
// directory's ontology (loaded with the edges of rels) and annotations, with opts; summary on stdout,
// TSVs in outdir. 0 or 1.
static int enrich_stores(const char *fstore, const char *nstore, const char *datadir, const char *outdir, int threads,
                         const enrich_opts_t *opts, unsigned rels) {
  ps_err_t err = {0};
  go_ontology_t *onto = NULL;
  go_annotations_t *annot = NULL;
  ps_pool_t *pool = threads > 1 ? ps_pool_new(threads) : NULL;
  store_run_t f = {0}, n = {0};
  int status = 1;
  ps_godata_t gd;
  mkdir(outdir, 0755);
  if (ps_godata_find(datadir, PS_GODATA_NEED_ONTOLOGY | PS_GODATA_NEED_ANNOTATIONS, &gd, &err) < 0) goto out;
  go_load_opts_t lo = {rels};
  if (go_ontology_load(&onto, gd.obo, &lo, &err) < 0) goto out;
  annot = go_annotations_new();
  if ((gd.annotations_gaf ? go_annotations_load_gaf(annot, onto, gd.annotations, NULL, NULL, &err)
                          : go_annotations_load_tsv(annot, onto, gd.annotations, NULL, NULL, &err)) < 0)
    goto out;
  go_annotations_propagate(annot, onto);
  if (run_store(fstore, onto, annot, opts, pool, outdir, "features", &f, &err) < 0) goto out;
  if (nstore && run_store(nstore, onto, annot, opts, pool, outdir, "neurons", &n, &err) < 0) goto out;
  {
    char sp[PATH_MAX];
    snprintf(sp, sizeof sp, "%s/summary.txt", outdir);
    FILE *sf = fopen(sp, "w");
    if (sf) {
      if (n.have) enrich_summary_print_pair(&f.sum, "features", &n.sum, "neurons", sf);
      enrich_summary_print(&f.sum, "features_", sf);
      if (n.have) enrich_summary_print(&n.sum, "neurons_", sf);
      fclose(sf);
    }
  }
  print_compact(&f.sum, n.have ? &n.sum : NULL);
  status = 0;
out:
  if (status && err.msg[0]) fprintf(stderr, "protsae: enrichment: %s\n", err.msg);
  free_run(&f);
  free_run(&n);
  go_annotations_destroy(&annot);
  go_ontology_destroy(&onto);
  ps_pool_destroy(&pool);
  return status;
}

static const ps_config_entry_t store_table[] = {
    {"db", "protsae-features.db", "feature store of the SAE features (protsae-scorer --db)"},
    {"neurons-db", NULL, "feature store of the neurons (protsae-encoder --neurons 1), for the side-by-side summary"},
    {"data", NULL, "data directory: go*.obo[.gz] and go_annotations.tsv[.gz] (default: the shared human data)"},
    {"out", "protsae-enrichment", "output directory: features.tsv, features_terms.tsv (neurons*.tsv)"},
    {"threads", "2", "threads"},
    ENRICH_CONFIG_ENTRIES("bonferroni"),
    {"scorer", NULL, "ask the running scorer at this endpoint (its --in, e.g. >tcp://scorer:5557) to enrich its store now"},
    {"force", "0", "with --scorer: also when the store holds a complete enrichment with the same settings"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

static int request_enrichment(const char *ep, int force) {
  ps_err_t err = {0};
  void *ctx = zmq_ctx_new();
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  wo.linger_ms = 5000;
  void *s = wire_socket(ctx, ZMQ_PUSH, ep, &wo, &err);
  int rc = 1;
  if (s) {
    Protsae__Envelope env;
    Protsae__EnrichRequest rq = PROTSAE__ENRICH_REQUEST__INIT;
    rq.force = force;
    wire_envelope_init(&env, "run", "protsae-enrich-store", 0);
    env.body_case = PROTSAE__ENVELOPE__BODY_ENRICH_REQUEST;
    env.enrich_request = &rq;
    if (wire_send_timeout(s, &env, 10000, &err) == 0) {
      printf("enrichment requested from %s\n", ep);
      rc = 0;
    }
  }
  if (rc) fprintf(stderr, "protsae enrich-store: %s: %s\n", ep, err.msg);
  wire_close(&s);
  zmq_ctx_term(ctx);
  return rc;
}

int cli_enrich_store(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, store_table, "protsae enrich-store", argc, argv);
  if (crc >= 0) return crc;
  const char *scorer = ps_config_str(cfg, "scorer");
  if (scorer) {
    int force = 0;
    ps_config_bool(cfg, "force", &force, NULL);
    if (curve_from_config(cfg, &err) < 0) {  // a scorer on tcp:// with CURVE: the cluster key
      fprintf(stderr, "protsae enrich-store: %s\n", err.msg);
      ps_config_destroy(&cfg);
      return 1;
    }
    int r = request_enrichment(scorer, force);
    ps_config_destroy(&cfg);
    return r;
  }
  char dd[PATH_MAX];
  const char *data = ps_config_str(cfg, "data");
  if (!data) data = ps_godata_default_dir(dd, sizeof dd);
  int64_t threads = 2;
  int rc = 2;
  enrich_opts_t eo;
  enrich_opts_default(&eo);
  unsigned rels = GO_REL_IS_A | GO_REL_PART_OF;
  if (!data) fprintf(stderr, "protsae enrich-store: no data directory (--data or PROTSAE_DATA)\n");
  else if (ps_config_i64(cfg, "threads", &threads, &err) < 0 || enrich_opts_config(cfg, &eo, &rels, &err) < 0)
    fprintf(stderr, "protsae enrich-store: %s\n", err.msg);
  else
    rc = enrich_stores(ps_config_str(cfg, "db"), ps_config_str(cfg, "neurons-db"), data, ps_config_str(cfg, "out"),
                     (int)threads, &eo, rels);
  ps_config_destroy(&cfg);
  return rc;
}
