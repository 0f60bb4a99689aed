// annstore.c — the annotation results store on RocksDB: two column families, the result record as
// JSON, write batches and the staging family's raw access. See annstore.h.
#include "annstore.h"
#include "rdb.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CF_DEFAULT = 0, CF_STAGE, CF_N };
static const char *const cf_names[CF_N] = {"default", "stage"};

struct as {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_readoptions_t *ro;
  rocksdb_writeoptions_t *wo, *wo_sync;
  rocksdb_column_family_handle_t *cf[CF_N];
  char *path;
};

struct as_wb {
  rocksdb_writebatch_t *wb;
};

static int rerr(ps_err_t *err, char *e, const char *what, const char *path) { return rdb_err(err, e, what, path); }

int as_open(as_t **out, const char *path, int mode, ps_err_t *err) {
  *out = NULL;
  as_t *s = ps_xcalloc(1, sizeof *s);
  s->path = ps_xstrdup(path);
  s->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(s->opts, mode == AS_OPEN_CREATE);
  rocksdb_options_set_create_missing_column_families(s->opts, mode == AS_OPEN_CREATE);
  rocksdb_options_set_max_open_files(s->opts, 64);
  rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
  s->ro = rocksdb_readoptions_create();
  s->wo = rocksdb_writeoptions_create();
  s->wo_sync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(s->wo_sync, 1);
  const rocksdb_options_t *cfo[CF_N] = {s->opts, s->opts};
  char *e = NULL;
  if (mode == AS_OPEN_READONLY)
    s->db = rocksdb_open_for_read_only_column_families(s->opts, path, CF_N, cf_names, cfo, s->cf, 0, &e);
  else
    s->db = rocksdb_open_column_families(s->opts, path, CF_N, cf_names, cfo, s->cf, &e);
  if (e || !s->db) {
    int rc = rerr(err, e, mode == AS_OPEN_CREATE ? "cannot open or create the annotation store"
                                                  : "cannot open the annotation store (has protsae-annotator run?)",
                  path);
    s->db = NULL;
    as_close(&s);
    return rc;
  }
  *out = s;
  return 0;
}

void as_close(as_t **ap) {
  as_t *s = *ap;
  if (!s) return;
  if (s->db) {
    for (int i = 0; i < CF_N; i++)
      if (s->cf[i]) rocksdb_column_family_handle_destroy(s->cf[i]);
    rocksdb_close(s->db);
  }
  if (s->ro) rocksdb_readoptions_destroy(s->ro);
  if (s->wo) rocksdb_writeoptions_destroy(s->wo);
  if (s->wo_sync) rocksdb_writeoptions_destroy(s->wo_sync);
  if (s->opts) rocksdb_options_destroy(s->opts);
  free(s->path);
  free(s);
  *ap = NULL;
}

const char *as_path(const as_t *as) { return as->path; }

// ---- the result record ---------------------------------------------------------------------------
void as_result_free(as_result_t *r) {
  free(r->key);
  free(r->name);
  free(r->producer);
  free(r->error);
  free(r->tsv);
  free(r->jsonl);
  free(r->eval_txt);
  memset(r, 0, sizeof *r);
}

const char *as_status_name(as_status_t s) { return s == AS_STATUS_DONE ? "done" : s == AS_STATUS_FAILED ? "failed" : "?"; }

static const char *const fm_names[AS_N_FM] = {"all", "bp", "mf", "cc"};

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static char *result_json(const as_result_t *r) {
  json_t *o = json_object();
  json_object_set_new(o, "key", json_string(r->key ? r->key : ""));
  json_object_set_new(o, "name", json_string(r->name ? r->name : ""));
  json_object_set_new(o, "status", json_string(as_status_name(r->status)));
  json_object_set_new(o, "producer", json_string(r->producer ? r->producer : ""));
  json_object_set_new(o, "proteins", json_integer(r->proteins));
  json_object_set_new(o, "skipped", json_integer(r->skipped));
  json_object_set_new(o, "with_go", json_integer(r->with_go));
  json_object_set_new(o, "residues", json_integer(r->residues));
  json_object_set_new(o, "mean_active", jnum(r->mean_active));
  json_object_set_new(o, "error", json_string(r->error ? r->error : ""));
  json_object_set_new(o, "tsv", json_string(r->tsv ? r->tsv : ""));
  json_object_set_new(o, "jsonl", json_string(r->jsonl ? r->jsonl : ""));
  json_object_set_new(o, "eval_txt", json_string(r->eval_txt ? r->eval_txt : ""));
  if (r->evaluated) {
    json_t *ev = json_object();
    json_object_set_new(ev, "proteins_evaluated", json_integer(r->n_evaluated));
    for (int k = 0; k < AS_N_FM; k++) {
      json_t *f = json_object();
      json_object_set_new(f, "fmax", jnum(r->fmax[k]));
      json_object_set_new(f, "threshold", jnum(r->threshold[k]));
      json_object_set_new(f, "naive_fmax", jnum(r->naive[k]));
      json_object_set_new(ev, fm_names[k], f);
    }
    json_object_set_new(o, "eval", ev);
  }
  json_object_set_new(o, "t_first", jnum(r->t_first));
  json_object_set_new(o, "t_done", jnum(r->t_done));
  char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
  json_decref(o);
  return s;
}

static char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return ps_xstrdup(s ? s : "");
}
static double jdbl(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static int result_parse(as_result_t *r, const char *v, size_t vl, const char *path, const char *key, ps_err_t *err) {
  memset(r, 0, sizeof *r);
  json_error_t je;
  json_t *o = json_loadb(v, vl, 0, &je);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    return ps_err_set(err, PS_EFORMAT, "%s: result %s: not a JSON object (%s)", path, key, o ? "" : je.text);
  }
  r->key = jstr(o, "key");
  r->name = jstr(o, "name");
  const char *st = json_string_value(json_object_get(o, "status"));
  r->status = st && !strcmp(st, "done") ? AS_STATUS_DONE : AS_STATUS_FAILED;
  r->producer = jstr(o, "producer");
  r->proteins = json_integer_value(json_object_get(o, "proteins"));
  r->skipped = json_integer_value(json_object_get(o, "skipped"));
  r->with_go = json_integer_value(json_object_get(o, "with_go"));
  r->residues = json_integer_value(json_object_get(o, "residues"));
  r->mean_active = jdbl(o, "mean_active");
  r->error = jstr(o, "error");
  r->tsv = jstr(o, "tsv");
  r->jsonl = jstr(o, "jsonl");
  r->eval_txt = jstr(o, "eval_txt");
  json_t *ev = json_object_get(o, "eval");
  if (json_is_object(ev)) {
    r->evaluated = 1;
    r->n_evaluated = json_integer_value(json_object_get(ev, "proteins_evaluated"));
    for (int k = 0; k < AS_N_FM; k++) {
      json_t *f = json_object_get(ev, fm_names[k]);
      r->fmax[k] = jdbl(f, "fmax");
      r->threshold[k] = jdbl(f, "threshold");
      r->naive[k] = jdbl(f, "naive_fmax");
    }
  }
  r->t_first = jdbl(o, "t_first");
  r->t_done = jdbl(o, "t_done");
  json_decref(o);
  return 0;
}

#define RES_PREFIX "res/"

int as_result_get(as_t *as, const char *key, as_result_t *r, ps_err_t *err) {
  size_t kl = strlen(key), vl = 0;
  char *k = ps_xmalloc(kl + 4), *e = NULL;
  memcpy(k, RES_PREFIX, 4);
  memcpy(k + 4, key, kl);
  char *v = rocksdb_get_cf(as->db, as->ro, as->cf[CF_DEFAULT], k, kl + 4, &vl, &e);
  free(k);
  if (e) return rerr(err, e, "read", as->path);
  if (!v) return 0;
  int rc = result_parse(r, v, vl, as->path, key, err);
  rocksdb_free(v);
  return rc < 0 ? rc : 1;
}

static int iterate(as_t *as, int cf, const void *prefix, size_t plen, rdb_iter_fn fn, void *ctx, ps_err_t *err) {
  return rdb_iterate(as->db, as->ro, as->cf[cf], prefix, plen, fn, ctx, as->path, err);
}

struct each_ctx {
  int (*cb)(const as_result_t *, void *);
  void *ctx;
  const char *path;
};
static int each_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct each_ctx *x = c;
  char key[512];
  size_t n = kl - 4 < sizeof key - 1 ? kl - 4 : sizeof key - 1;
  memcpy(key, k + 4, n);
  key[n] = 0;
  as_result_t r;
  int rc = result_parse(&r, v, vl, x->path, key, err);
  if (rc < 0) return rc;
  rc = x->cb(&r, x->ctx);
  as_result_free(&r);
  return rc;
}
int as_result_each(as_t *as, int (*cb)(const as_result_t *r, void *ctx), void *ctx, ps_err_t *err) {
  struct each_ctx x = {cb, ctx, as->path};
  return iterate(as, CF_DEFAULT, RES_PREFIX, 4, each_fn, &x, err);
}

// ---- writes ---------------------------------------------------------------------------------------
as_wb_t *as_wb_new(void) {
  as_wb_t *w = ps_xcalloc(1, sizeof *w);
  w->wb = rocksdb_writebatch_create();
  return w;
}
void as_wb_free(as_wb_t **wp) {
  if (!*wp) return;
  rocksdb_writebatch_destroy((*wp)->wb);
  free(*wp);
  *wp = NULL;
}
void as_wb_clear(as_wb_t *wb) { rocksdb_writebatch_clear(wb->wb); }

void as_wb_put_result(as_t *as, as_wb_t *wb, const as_result_t *r) {
  char *js = result_json(r);
  PS_ASSERT(js && r->key);
  size_t kl = strlen(r->key);
  char *k = ps_xmalloc(kl + 4);
  memcpy(k, RES_PREFIX, 4);
  memcpy(k + 4, r->key, kl);
  rocksdb_writebatch_put_cf(wb->wb, as->cf[CF_DEFAULT], k, kl + 4, js, strlen(js));
  free(k);
  free(js);
}
void as_wb_put_stage(as_t *as, as_wb_t *wb, const void *key, size_t klen, const void *val, size_t vlen) {
  rocksdb_writebatch_put_cf(wb->wb, as->cf[CF_STAGE], key, klen, val, vlen);
}
void as_wb_del_stage(as_t *as, as_wb_t *wb, const void *key, size_t klen) {
  rocksdb_writebatch_delete_cf(wb->wb, as->cf[CF_STAGE], key, klen);
}
void as_wb_del_stage_range(as_t *as, as_wb_t *wb, const void *begin, size_t blen, const void *end, size_t elen) {
  rocksdb_writebatch_delete_range_cf(wb->wb, as->cf[CF_STAGE], begin, blen, end, elen);
}

int as_commit(as_t *as, as_wb_t *wb, int sync, ps_err_t *err) {
  char *e = NULL;
  rocksdb_write(as->db, sync ? as->wo_sync : as->wo, wb->wb, &e);
  if (e) return rerr(err, e, "commit", as->path);
  rocksdb_writebatch_clear(wb->wb);
  return 0;
}

// ---- staging reads ----------------------------------------------------------------------------------
int as_stage_get(as_t *as, const void *key, size_t klen, char **val, size_t *vlen, ps_err_t *err) {
  char *e = NULL;
  *val = NULL;
  char *v = rocksdb_get_cf(as->db, as->ro, as->cf[CF_STAGE], key, klen, vlen, &e);
  if (e) return rerr(err, e, "read", as->path);
  if (!v) return 0;
  *val = ps_xmalloc(*vlen + 1);
  memcpy(*val, v, *vlen);
  (*val)[*vlen] = 0;
  rocksdb_free(v);
  return 1;
}

int as_stage_each(as_t *as, const void *prefix, size_t plen,
                  int (*cb)(const char *k, size_t kl, const char *v, size_t vl, void *ctx, ps_err_t *err), void *ctx,
                  ps_err_t *err) {
  return iterate(as, CF_STAGE, prefix, plen, cb, ctx, err);
}
