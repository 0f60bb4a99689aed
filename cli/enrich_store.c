// GO enrichment of the features (and neurons) in scorer feature stores: the demo's step 4 and
// `protsae enrich-store`. Reads the stores' per-protein codes feature-major (fs_load_csc), the
// ontology and annotations of the data directory, runs the enrichment engine
// (stages/scorer/enrich) and prints the features-vs-neurons summary; writes per-feature TSVs.
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "enrich.h"
#include "featstore.h"
#include "pool.h"
#include "strmap.h"

static int find_obo(const char *dir, char *out, size_t cap) {
  DIR *dh = opendir(dir);
  if (!dh) return -1;
  char best[256] = "";
  struct dirent *de;
  while ((de = readdir(dh))) {
    const char *n = de->d_name;
    size_t l = strlen(n);
    if (!strncmp(n, "go", 2) && ((l > 4 && !strcmp(n + l - 4, ".obo")) || (l > 7 && !strcmp(n + l - 7, ".obo.gz"))) &&
        strcmp(n, best) > 0 && l < sizeof best)
      snprintf(best, sizeof best, "%s", n);
  }
  closedir(dh);
  if (!best[0]) return -1;
  snprintf(out, cap, "%s/%s", dir, best);
  return 0;
}

typedef struct store_run {
  enrich_engine_t *eng;
  enrich_results_t res;
  enrich_summary_t sum;
  int64_t *annot_of;
  int have;
} store_run_t;

// excl (may be NULL): proteins left out (not in the population, their activations dropped).
static int run_store(const char *store, const go_ontology_t *onto, const go_annotations_t *annot, ps_pool_t *pool,
                     const char *tsv_dir, const char *name, const strmap_t *excl, store_run_t *out, ps_err_t *err) {
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
  uint8_t *held = ps_xcalloc((size_t)(np ? np : 1), 1);
  for (int64_t p = 0; p < np; p++) {
    held[p] = excl && strmap_get(excl, c.ids[p], NULL);
    out->annot_of[p] = held[p] ? -1 : go_annotations_find(annot, c.ids[p]);
  }
  float *vals = c.vals;
  int64_t o = 0;
  indptr[0] = 0;
  for (int64_t f = 0; f < nf; f++) {  // held-out proteins' activations dropped (in place)
    for (uint64_t j = c.colptr[f]; j < c.colptr[f + 1]; j++)
      if (!held[c.rows[j]]) {
        rows[o] = (int32_t)c.rows[j];
        vals[o++] = c.vals[j];
      }
    indptr[f + 1] = o;
  }
  free(held);
  enrich_csc_t acts = {nf, np, indptr, rows, vals};
  rc = enrich_engine_new(&out->eng, onto, annot, out->annot_of, np, NULL, err);
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

int demo_enrich(const char *fstore, const char *nstore, const char *datadir, const char *outdir, int threads) {
  return demo_enrich_holdout(fstore, nstore, datadir, outdir, threads, NULL);
}

int demo_enrich_holdout(const char *fstore, const char *nstore, const char *datadir, const char *outdir, int threads,
                        const char *holdout_ids) {
  strmap_t *excl = NULL;
  ps_err_t err = {0};
  go_ontology_t *onto = NULL;
  go_annotations_t *annot = NULL;
  ps_pool_t *pool = threads > 1 ? ps_pool_new(threads) : NULL;
  store_run_t f = {0}, n = {0};
  int status = 1;
  char obo[PATH_MAX], ann[PATH_MAX];
  mkdir(outdir, 0755);
  if (find_obo(datadir, obo, sizeof obo) < 0) {
    fprintf(stderr, "protsae: %s: no GO ontology (go*.obo[.gz])\n", datadir);
    goto out;
  }
  snprintf(ann, sizeof ann, "%s/go_annotations.tsv.gz", datadir);
  if (access(ann, R_OK) != 0) snprintf(ann, sizeof ann, "%s/go_annotations.tsv", datadir);
  if (go_ontology_load(&onto, obo, NULL, &err) < 0) goto out;
  annot = go_annotations_new();
  if (go_annotations_load_tsv(annot, onto, ann, NULL, NULL, &err) < 0) goto out;
  go_annotations_propagate(annot, onto);
  if (holdout_ids) {
    FILE *hf = fopen(holdout_ids, "r");
    if (!hf) {
      ps_err_set(&err, PS_EIO, "%s: cannot open", holdout_ids);
      goto out;
    }
    excl = strmap_new(1024);
    char line[512];
    while (fgets(line, sizeof line, hf)) {
      line[strcspn(line, "\r\n")] = 0;
      if (line[0]) strmap_put(excl, line, 1);
    }
    fclose(hf);
  }
  if (run_store(fstore, onto, annot, pool, outdir, "features", excl, &f, &err) < 0) goto out;
  if (nstore && run_store(nstore, onto, annot, pool, outdir, "neurons", excl, &n, &err) < 0) goto out;
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
  strmap_destroy(&excl);
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
    {NULL, NULL, NULL},
};

int cli_enrich_store(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, store_table, "protsae enrich-store", argc, argv);
  if (crc >= 0) return crc;
  char dd[PATH_MAX];
  const char *data = ps_config_str(cfg, "data");
  if (!data) data = cli_data_dir(dd, sizeof dd);
  int64_t threads = 2;
  int rc = 2;
  if (!data) fprintf(stderr, "protsae enrich-store: no data directory (--data or PROTSAE_DATA)\n");
  else if (ps_config_i64(cfg, "threads", &threads, &err) < 0) fprintf(stderr, "protsae enrich-store: %s\n", err.msg);
  else
    rc = demo_enrich(ps_config_str(cfg, "db"), ps_config_str(cfg, "neurons-db"), data, ps_config_str(cfg, "out"),
                     (int)threads);
  ps_config_destroy(&cfg);
  return rc;
}
