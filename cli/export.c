// protsae export — the results held in a feature store (featstore.h: GO enrichment, explanations,
// their summaries) as files, for people and other tools. Steps never read these files: they read
// the store. Written into --out:
//   PREFIX_terms.tsv    one line per (feature, significant term): feature go_id namespace depth name
//                       k n K N fold p ln_p p_bonf q_bh f1 f1_threshold (enrich_write_tsv's columns)
//   PREFIX.tsv          one line per feature with an enrichment record: feature n_active n_study
//                       max_act n_touched n_hits top_go_id top_name top_p best_f1_go_id best_f1
//                       best_f1_threshold (enrich_write_features_tsv's columns)
//   PREFIX.jsonl        the explanation records (one JSON object a line, unit order)
//   PREFIX_summary.json {"store", "enrich/state", "enrich/summary", "enrich/settings", "interp/summary"}
//                       (null when the store has none)
// Each file is written to DIR/.NAME.tmp, fsynced and renamed (then the directory fsynced): a reader
// sees the old file or the new one. The store is opened read-only (works while the scorer runs).
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "featstore.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const ps_config_entry_t table[] = {
    {"db", NULL, "feature store with results (protsae-scorer --db)"},
    {"out", NULL, "output directory (created)"},
    {"prefix", "features", "file name prefix: PREFIX_terms.tsv, PREFIX.tsv, PREFIX.jsonl, PREFIX_summary.json"},
    {NULL, NULL, NULL},
};

typedef struct out_file {
  char tmp[PATH_MAX], path[PATH_MAX];
  FILE *f;
} out_file_t;

static int out_open(out_file_t *o, const char *dir, const char *prefix, const char *suffix, ps_err_t *err) {
  snprintf(o->path, sizeof o->path, "%s/%s%s", dir, prefix, suffix);
  snprintf(o->tmp, sizeof o->tmp, "%s/.%s%s.tmp", dir, prefix, suffix);
  o->f = fopen(o->tmp, "w");
  if (!o->f) return ps_err_set(err, -errno, "%s: cannot create: %s", o->tmp, strerror(errno));
  return 0;
}

static int out_commit(out_file_t *o, ps_err_t *err) {
  int e = 0;
  if (ferror(o->f) || fflush(o->f) != 0 || fsync(fileno(o->f)) != 0) e = errno ? errno : EIO;
  if (fclose(o->f) != 0 && !e) e = errno;
  o->f = NULL;
  if (!e && rename(o->tmp, o->path) != 0) e = errno;
  if (e) {
    unlink(o->tmp);
    return ps_err_set(err, -e, "%s: write failed: %s", o->path, strerror(e));
  }
  return 0;
}

static void out_abort(out_file_t *o) {
  if (!o->f) return;
  fclose(o->f);
  o->f = NULL;
  unlink(o->tmp);
}

static const char *ns_name(int ns) {
  return ns == 0 ? "biological_process" : ns == 1 ? "molecular_function" : ns == 2 ? "cellular_component" : "unknown";
}

// A label for a TSV cell: tabs and newlines become spaces.
static void cell(FILE *f, const char *s) {
  for (; s && *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

struct ex_ctx {
  FILE *terms, *feats;
  size_t n_feat, n_pairs;
};
static int ex_enrich(uint32_t id, const fs_enrich_feat_t *e, void *ctx) {
  struct ex_ctx *c = ctx;
  for (uint32_t i = 0; i < e->n_hits; i++) {
    const fs_term_hit_t *h = &e->hits[i];
    fprintf(c->terms, "%u\t%s\t%s\t%d\t", id, h->go_id, ns_name(h->ns), h->depth);
    cell(c->terms, h->name);
    fprintf(c->terms, "\t%u\t%u\t%u\t%u\t%.6g\t%.6e\t%.10g\t%.6e\t%.6e\t%.4f\t%.2f\n", h->k, h->n, h->K, h->N, h->fold,
            h->p, h->ln_p, h->p_bonf, h->q_bh, (double)h->f1, (double)h->f1_threshold);
  }
  const fs_term_hit_t *top = e->n_hits ? &e->hits[0] : NULL;
  fprintf(c->feats, "%u\t%lld\t%lld\t%.6g\t%u\t%u\t%s\t", id, (long long)e->n_active, (long long)e->n_study,
          (double)e->max_act, e->n_touched, e->n_hits, top ? top->go_id : "-");
  cell(c->feats, top ? top->name : "-");
  fprintf(c->feats, "\t%.6e\t%s\t%.4f\t%.2f\n", top ? top->p : 1.0, e->best_f1_go[0] ? e->best_f1_go : "-",
          (double)e->best_f1, (double)e->best_f1_threshold);
  c->n_feat++;
  c->n_pairs += e->n_hits;
  return 0;
}

struct ex_interp {
  FILE *f;
  size_t n;
};
static int ex_interp_fn(uint32_t unit, const fs_interp_t *x, const char *json, void *ctx) {
  (void)unit, (void)x;
  struct ex_interp *c = ctx;
  if (strpbrk(json, "\r\n")) {  // one record a line: re-encode (JSON strings escape newlines)
    json_t *j = json_loads(json, 0, NULL);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    if (s) fputs(s, c->f);
    free(s);
  } else {
    fputs(json, c->f);
  }
  fputc('\n', c->f);
  c->n++;
  return 0;
}

// The string key as JSON text, verbatim when it is JSON (numbers as the writer printed them), as a
// JSON string when it is not; null when absent. *out: caller frees.
static int kv_json(fs_t *fs, const char *key, char **out, ps_err_t *err) {
  char *v = NULL;
  size_t n = 0;
  int rc = fs_kv_get(fs, key, &v, &n, err);
  if (rc < 0) return rc;
  json_t *j = rc ? json_loadb(v, n, JSON_DECODE_ANY, NULL) : NULL;
  if (!rc) *out = ps_xstrdup("null");
  else if (j && !memchr(v, 0, n) && !strpbrk(v, "\r\n")) *out = v, v = NULL;
  else {
    json_t *s = j ? json_incref(j) : json_stringn(v, n);
    *out = s ? json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
    json_decref(s);
    if (!*out) *out = ps_xstrdup("null");
  }
  json_decref(j);
  free(v);
  return 0;
}

int cli_export(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae export", argc, argv);
  if (crc >= 0) return crc;
  const char *db = ps_config_str(cfg, "db"), *dir = ps_config_str(cfg, "out"), *prefix = ps_config_str(cfg, "prefix");
  if (!db || !dir) return ps_config_cli_bad(&cfg, table, "protsae export", "needs --db and --out");
  fs_t *fs = NULL;
  out_file_t ft = {0}, ff = {0}, fj = {0}, fsum = {0};
  int status = 1;
  if (!prefix[0] || strchr(prefix, '/')) {
    ps_err_set(&err, PS_ECONFIG, "--prefix must be a file name prefix, not '%s'", prefix);
    goto out;
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    ps_err_set(&err, -errno, "%s: cannot create: %s", dir, strerror(errno));
    goto out;
  }
  fs_meta_t m;
  if (cli_store_open(db, &fs, &m, &err) < 0) goto out;
  int done = fs_enrich_done(fs, &err);
  if (done < 0) goto out;
  if (out_open(&ft, dir, prefix, "_terms.tsv", &err) < 0 || out_open(&ff, dir, prefix, ".tsv", &err) < 0 ||
      out_open(&fj, dir, prefix, ".jsonl", &err) < 0 || out_open(&fsum, dir, prefix, "_summary.json", &err) < 0)
    goto out;
  fprintf(ft.f, "feature\tgo_id\tnamespace\tdepth\tname\tk\tn\tK\tN\tfold\tp\tln_p\tp_bonf\tq_bh\tf1\tf1_threshold\n");
  fprintf(ff.f, "feature\tn_active\tn_study\tmax_act\tn_touched\tn_hits\ttop_go_id\ttop_name\ttop_p\tbest_f1_go_id\t"
                "best_f1\tbest_f1_threshold\n");
  struct ex_ctx ec = {ft.f, ff.f, 0, 0};
  if (fs_enrich_each(fs, ex_enrich, &ec, &err) < 0) goto out;
  struct ex_interp ei = {fj.f, 0};
  if (fs_interp_each(fs, ex_interp_fn, &ei, &err) < 0) goto out;
  json_t *js = json_string(db);
  char *dbs = json_dumps(js, JSON_ENCODE_ANY);
  json_decref(js);
  fprintf(fsum.f, "{\n  \"store\": %s", dbs ? dbs : "null");
  free(dbs);
  static const char *const keys[] = {"enrich/state", "enrich/summary", "enrich/settings", "interp/summary"};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    char *v;
    if (kv_json(fs, keys[k], &v, &err) < 0) goto out;
    fprintf(fsum.f, ",\n  \"%s\": %s", keys[k], v);
    free(v);
  }
  fputs("\n}\n", fsum.f);
  if (out_commit(&ft, &err) < 0 || out_commit(&ff, &err) < 0 || out_commit(&fj, &err) < 0 ||
      out_commit(&fsum, &err) < 0)
    goto out;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  if (!done && ec.n_feat) fprintf(stderr, "protsae export: %s: the enrichment is not complete (exported as it is)\n", db);
  printf("%s: %zu features with enrichment records (%zu significant pairs), %zu explanations -> %s/%s{_terms.tsv,.tsv,"
         ".jsonl,_summary.json}\n", db, ec.n_feat, ec.n_pairs, ei.n, dir, prefix);
  status = 0;
out:
  if (status) fprintf(stderr, "protsae export: %s%s%s\n", db && !strstr(err.msg, db) ? db : "",
                      db && !strstr(err.msg, db) ? ": " : "", err.msg);
  out_abort(&ft), out_abort(&ff), out_abort(&fj), out_abort(&fsum);
  fs_close(&fs);
  ps_config_destroy(&cfg);
  return status;
}
