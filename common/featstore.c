// featstore.c — the feature store on RocksDB: column families, reads, iteration, write batches,
// the feature-major view, string keys and the dump. The records' byte layouts are in
// featstore_rec.c. See featstore.h.
#include "featstore_priv.h"

#include "fsutil.h"
#include "rdb.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

static const char *const cf_names[CF_N] = {"default", "feat", "codes", "applied", "enrich", "interp", "rcodes", "concept"};

// ---- the store ----------------------------------------------------------------------------------
static int rerr(ps_err_t *err, char *e, const char *what, const char *path) { return rdb_err(err, e, what, path); }

int fs_open(fs_t **out, const char *path, int mode, ps_err_t *err) {
  *out = NULL;
  uint32_t n_shards = 0;
  int src = fs_shards_count(path, &n_shards, err);
  if (src < 0) return src;
  if (src == 1) return fs_open_sharded(out, path, mode, err);
  fs_t *s = ps_xcalloc(1, sizeof *s);
  s->path = ps_xstrdup(path);
  s->readonly = mode == FS_OPEN_READONLY;
  s->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(s->opts, mode == FS_OPEN_CREATE);
  rocksdb_options_set_create_missing_column_families(s->opts, mode == FS_OPEN_CREATE);
  rocksdb_options_set_max_open_files(s->opts, 256);
  rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
  s->ro = rocksdb_readoptions_create();
  s->wo = rocksdb_writeoptions_create();
  s->wo_sync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(s->wo_sync, 1);
  const rocksdb_options_t *cfo[CF_N];
  for (int i = 0; i < CF_N; i++) cfo[i] = s->opts;
  char *e = NULL;
  if (s->readonly) {
    // A store written before a family existed opens without it (reads of it find nothing).
    size_t n_have = 0;
    char **have = rocksdb_list_column_families(s->opts, path, &n_have, &e);
    if (e) {
      rocksdb_list_column_families_destroy(have, n_have);  // RocksDB allocates the (empty) list on error too
      int rc = rerr(err, e, "cannot open the feature store (run the scorer first?)", path);
      fs_close(&s);
      return rc;
    }
    const char *names[CF_N];
    int map[CF_N], n = 0;
    for (int i = 0; i < CF_N; i++)
      for (size_t j = 0; j < n_have; j++)
        if (!strcmp(have[j], cf_names[i])) {
          map[n] = i;
          names[n++] = cf_names[i];
          break;
        }
    rocksdb_list_column_families_destroy(have, n_have);
    rocksdb_column_family_handle_t *h[CF_N] = {0};
    s->db = rocksdb_open_for_read_only_column_families(s->opts, path, n, names, cfo, h, 0, &e);
    for (int i = 0; i < n && s->db; i++) s->cf[map[i]] = h[i];
  } else {
    rocksdb_options_set_create_missing_column_families(s->opts, 1);  // an older store gains the new families
    s->db = rocksdb_open_column_families(s->opts, path, CF_N, cf_names, cfo, s->cf, &e);
  }
  if (e || !s->db) {
    int rc = rerr(err, e, mode == FS_OPEN_CREATE ? "cannot open or create the feature store"
                                                  : "cannot open the feature store (run the scorer first?)", path);
    s->db = NULL;
    fs_close(&s);
    return rc;
  }
  *out = s;
  return 0;
}

void fs_close(fs_t **fsp) {
  fs_t *s = *fsp;
  if (!s) return;
  for (uint32_t k = 0; k < s->n_shards; k++) fs_close(&s->shard[k]);
  free(s->shard);
  if (s->db && !s->broken) {  // after a failed write: left to the process exit (what was committed is safe)
    for (int i = 0; i < CF_N; i++)
      if (s->cf[i]) rocksdb_column_family_handle_destroy(s->cf[i]);
    rocksdb_close(s->db);
  }
  if (s->ro) rocksdb_readoptions_destroy(s->ro);
  if (s->wo) rocksdb_writeoptions_destroy(s->wo);
  if (s->wo_sync) rocksdb_writeoptions_destroy(s->wo_sync);
  if (s->opts) rocksdb_options_destroy(s->opts);
  free(s->buf);
  free(s->path);
  free(s);
  *fsp = NULL;
}

const char *fs_path(const fs_t *fs) { return fs->path; }

int fs_raw_get(fs_t *fs, int cf, const char *key, size_t klen, char **val, size_t *vlen, ps_err_t *err) {
  char *e = NULL;
  *val = NULL;
  if (!fs->cf[cf]) return 0;  // a family this (older) store does not have
  *val = rocksdb_get_cf(fs->db, fs->ro, fs->cf[cf], key, klen, vlen, &e);
  if (e) return rerr(err, e, "read", fs->path);
  return *val ? 1 : 0;
}

int fs_meta_get(fs_t *fs, fs_meta_t *m, ps_err_t *err) {
  if (fs->n_shards) return fs_sh_meta_get(fs, m, err);
  char *v;
  size_t n;
  int rc = fs_raw_get(fs, CF_DEFAULT, "meta", 4, &v, &n, err);
  if (rc <= 0) return rc;
  rc = fs_meta_decode(m, (const uint8_t *)v, n);
  rocksdb_free(v);
  if (rc < 0) return ps_err_set(err, PS_EFORMAT, "%s: meta record of %zu bytes is not a protsae feature store's", fs->path, n);
  if (m->format != FS_FORMAT)
    return ps_err_set(err, PS_EUNSUPP, "%s: feature store format %u, this build reads %d", fs->path, m->format, FS_FORMAT);
  return 1;
}

void fs_feat_key(uint32_t id, char k[4]) {
  k[0] = (char)(id >> 24); k[1] = (char)(id >> 16); k[2] = (char)(id >> 8); k[3] = (char)id;
}

int fs_feat_get(fs_t *fs, uint32_t feature, uint32_t top_n, fs_feat_t *f, ps_err_t *err) {
  if (fs->n_shards) return fs_sh_feat_get(fs, feature, top_n, f, err);
  char k[4], *v;
  size_t n;
  fs_feat_key(feature, k);
  int rc = fs_raw_get(fs, CF_FEAT, k, 4, &v, &n, err);
  if (rc <= 0) return rc;
  char what[64];
  snprintf(what, sizeof what, "feature %u", feature);
  rc = fs_feat_decode(f, top_n, (const uint8_t *)v, n, what, err);
  rocksdb_free(v);
  return rc < 0 ? ps_err_prefix(err, "%s: ", fs->path) : 1;
}

int fs_raw_iterate(fs_t *fs, int cf, const char *prefix, size_t plen, rdb_iter_fn fn, void *ctx, ps_err_t *err) {
  return fs->cf[cf] ? rdb_iterate(fs->db, fs->ro, fs->cf[cf], prefix, plen, fn, ctx, fs->path, err) : 0;
}

struct eos_ctx {
  int (*cb)(const char *, const fs_eos_t *, void *);
  void *ctx;
  const char *path;
};
static int eos_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct eos_ctx *x = c;
  if (vl != 24) return ps_err_set(err, PS_EFORMAT, "%s: EndOfStream record of %zu bytes", x->path, vl);
  char prod[256];
  size_t n = kl - 4 < sizeof prod - 1 ? kl - 4 : sizeof prod - 1;
  memcpy(prod, k + 4, n);
  prod[n] = 0;
  const uint8_t *p = (const uint8_t *)v;
  fs_eos_t e = {get_u64(p), get_u64(p + 8), get_u64(p + 16)};
  return x->cb(prod, &e, x->ctx);
}
int fs_eos_each(fs_t *fs, int (*cb)(const char *, const fs_eos_t *, void *), void *ctx, ps_err_t *err) {
  if (fs->n_shards) return fs_eos_each(fs->shard[0], cb, ctx, err);  // every shard saw every stream end
  struct eos_ctx x = {cb, ctx, fs->path};
  return fs_raw_iterate(fs, CF_DEFAULT, "eos/", 4, eos_fn, &x, err);
}

struct applied_ctx {
  int (*cb)(const char *, uint64_t, void *);
  void *ctx;
  const char *path;
};
static int applied_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct applied_ctx *x = c;
  const char *z = memchr(k, 0, kl);
  if (!z || (size_t)(k + kl - z) != 9 || (size_t)(z - k) > 255)
    return ps_err_set(err, PS_EFORMAT, "%s: malformed applied key of %zu bytes", x->path, kl);
  char prod[256];
  memcpy(prod, k, (size_t)(z - k));
  prod[z - k] = 0;
  uint64_t seq = 0;
  for (int i = 1; i <= 8; i++) seq = seq << 8 | (uint8_t)z[i];
  return x->cb(prod, seq, x->ctx);
}
int fs_applied_each(fs_t *fs, int (*cb)(const char *, uint64_t, void *), void *ctx, ps_err_t *err) {
  if (fs->n_shards) return fs_applied_each(fs->shard[0], cb, ctx, err);
  struct applied_ctx x = {cb, ctx, fs->path};
  return fs_raw_iterate(fs, CF_APPLIED, NULL, 0, applied_fn, &x, err);
}

struct feat_ctx {
  int (*cb)(uint32_t, const fs_feat_t *, void *);
  void *ctx;
  fs_feat_t f;
  uint32_t top_n;
  const char *path;
};
static int feat_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct feat_ctx *x = c;
  if (kl != 4) return ps_err_set(err, PS_EFORMAT, "%s: feature key of %zu bytes", x->path, kl);
  uint32_t id = (uint32_t)(uint8_t)k[0] << 24 | (uint32_t)(uint8_t)k[1] << 16 | (uint32_t)(uint8_t)k[2] << 8 | (uint8_t)k[3];
  char what[300];
  snprintf(what, sizeof what, "%s: feature %u", x->path, id);
  int rc = fs_feat_decode(&x->f, x->top_n, (const uint8_t *)v, vl, what, err);
  return rc < 0 ? rc : x->cb(id, &x->f, x->ctx);
}
int fs_feat_each(fs_t *fs, uint32_t top_n, int (*cb)(uint32_t, const fs_feat_t *, void *), void *ctx, ps_err_t *err) {
  if (fs->n_shards) return fs_sh_feat_each(fs, top_n, cb, ctx, err);
  struct feat_ctx x = {cb, ctx, {0}, top_n, fs->path};
  fs_feat_init(&x.f, top_n);
  int rc = fs_raw_iterate(fs, CF_FEAT, NULL, 0, feat_fn, &x, err);
  fs_feat_clear(&x.f);
  return rc;
}

static int code_decode(const char *v, size_t vl, uint32_t *nnz, const uint8_t **body, const char *path, const char *id,
                       ps_err_t *err) {
  if (vl < 4) return ps_err_set(err, PS_ETRUNC, "%s: code of %s: %zu bytes", path, id, vl);
  *nnz = get_u32((const uint8_t *)v);
  if (vl != 4 + (size_t)*nnz * 8)
    return ps_err_set(err, PS_EFORMAT, "%s: code of %s: %zu bytes for %u entries", path, id, vl, *nnz);
  *body = (const uint8_t *)v + 4;
  return 0;
}

struct code_ctx {
  int (*cb)(const char *, uint32_t, const uint32_t *, const float *, void *);
  void *ctx;
  uint32_t *idx;
  float *val;
  size_t cap;
  char *id;
  size_t idcap;
  const char *path;
};
const char *fs_key_cstr(char **buf, size_t *cap, const char *k, size_t kl) {
  if (kl + 1 > *cap) {
    *cap = kl + 64;
    *buf = ps_xrealloc(*buf, *cap);
  }
  memcpy(*buf, k, kl);
  (*buf)[kl] = 0;
  return *buf;
}

static int code_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct code_ctx *x = c;
  fs_key_cstr(&x->id, &x->idcap, k, kl);
  uint32_t nnz = 0;
  const uint8_t *b = NULL;
  int rc = code_decode(v, vl, &nnz, &b, x->path, x->id, err);
  if (rc < 0) return rc;
  if (nnz > x->cap) {
    x->cap = nnz;
    x->idx = ps_xrealloc(x->idx, nnz * sizeof *x->idx);
    x->val = ps_xrealloc(x->val, nnz * sizeof *x->val);
  }
  for (uint32_t i = 0; i < nnz; i++) {
    x->idx[i] = get_u32(b + 8 * i);
    x->val[i] = get_f32(b + 8 * i + 4);
  }
  return x->cb(x->id, nnz, x->idx, x->val, x->ctx);
}
int fs_code_each(fs_t *fs, int (*cb)(const char *, uint32_t, const uint32_t *, const float *, void *), void *ctx,
                 ps_err_t *err) {
  if (fs->n_shards) return fs_sh_code_each(fs, cb, ctx, err);
  struct code_ctx x = {cb, ctx, NULL, NULL, 0, NULL, 0, fs->path};
  int rc = fs_raw_iterate(fs, CF_CODES, NULL, 0, code_fn, &x, err);
  free(x.idx);
  free(x.val);
  free(x.id);
  return rc;
}

int fs_code_get(fs_t *fs, const char *id, uint32_t *nnz, uint32_t **idx, float **val, ps_err_t *err) {
  if (fs->n_shards) return fs_sh_code_get(fs, id, nnz, idx, val, err);
  char *v;
  size_t n;
  *idx = NULL;
  *val = NULL;
  *nnz = 0;
  int rc = fs_raw_get(fs, CF_CODES, id, strlen(id), &v, &n, err);
  if (rc <= 0) return rc;
  const uint8_t *b = NULL;
  if ((rc = code_decode(v, n, nnz, &b, fs->path, id, err)) < 0) {
    rocksdb_free(v);
    return rc;
  }
  *idx = ps_xmalloc((*nnz ? *nnz : 1) * sizeof **idx);
  *val = ps_xmalloc((*nnz ? *nnz : 1) * sizeof **val);
  for (uint32_t i = 0; i < *nnz; i++) {
    (*idx)[i] = get_u32(b + 8 * i);
    (*val)[i] = get_f32(b + 8 * i + 4);
  }
  rocksdb_free(v);
  return 1;
}

// ---- writes -------------------------------------------------------------------------------------
fs_wb_t *fs_wb_new(void) {
  fs_wb_t *w = ps_xcalloc(1, sizeof *w);
  w->wb = rocksdb_writebatch_create();
  return w;
}
void fs_wb_free(fs_wb_t **wbp) {
  fs_wb_t *w = *wbp;
  if (!w) return;
  rocksdb_writebatch_destroy(w->wb);
  free(w->buf);
  free(w);
  *wbp = NULL;
}
void fs_wb_clear(fs_wb_t *w) { rocksdb_writebatch_clear(w->wb); }
size_t fs_wb_bytes(const fs_wb_t *w) {
  size_t n;
  rocksdb_writebatch_data(w->wb, &n);
  return n;
}

void fs_wb_put_meta(fs_t *fs, fs_wb_t *w, const fs_meta_t *m) {
  uint8_t b[FS_META_LEN];
  fs_meta_encode(m, b);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_DEFAULT], "meta", 4, (const char *)b, FS_META_LEN);
}

void fs_wb_put_feat(fs_t *fs, fs_wb_t *w, uint32_t feature, const fs_feat_t *f) {
  char k[4];
  fs_feat_key(feature, k);
  size_t n = fs_feat_encode(f, &w->buf, &w->cap);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_FEAT], k, 4, (const char *)w->buf, n);
}

void fs_wb_put_code(fs_t *fs, fs_wb_t *w, const char *id, uint32_t nnz, const uint32_t *idx, const float *val) {
  fs_grow(&w->buf, &w->cap, 4 + (size_t)nnz * 8);
  put_u32(w->buf, nnz);
  for (uint32_t i = 0; i < nnz; i++) {
    put_u32(w->buf + 4 + 8 * i, idx[i]);
    put_f32(w->buf + 8 + 8 * i, val[i]);
  }
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_CODES], id, strlen(id), (const char *)w->buf, 4 + (size_t)nnz * 8);
}

void fs_wb_put_applied(fs_t *fs, fs_wb_t *w, const char *producer, uint64_t seq) {
  char k[256 + 9];
  size_t l = strlen(producer);
  if (l > 255) l = 255;
  memcpy(k, producer, l);
  k[l] = 0;
  for (int i = 0; i < 8; i++) k[l + 1 + i] = (char)(seq >> (56 - 8 * i));
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_APPLIED], k, l + 9, "", 0);
}

void fs_wb_put_eos(fs_t *fs, fs_wb_t *w, const char *producer, const fs_eos_t *e) {
  char k[4 + 256];
  size_t l = strlen(producer);
  if (l > 255) l = 255;
  memcpy(k, "eos/", 4);
  memcpy(k + 4, producer, l);
  uint8_t v[24];
  put_u64(v, e->batches);
  put_u64(v + 8, e->rows);
  put_u64(v + 16, e->proteins);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_DEFAULT], k, 4 + l, (const char *)v, 24);
}

void fs_set_min_free(fs_t *fs, unsigned long long bytes) { fs->min_free = bytes; }

int fs_commit(fs_t *fs, fs_wb_t *w, int sync, ps_err_t *err) {
  if (fs->readonly) return ps_err_set(err, PS_ESTATE, "%s: the feature store is open read-only", fs->path);
  if (fs->broken) return ps_err_set(err, PS_ESTATE, "%s: an earlier write failed: restart the stage", fs->path);
  if (fs->min_free) {
    size_t n = fs_wb_bytes(w);
    int rc = ps_disk_free_check(fs->path, fs->min_free + 2ull * n, err);
    if (rc < 0) return rc;
  }
  char *e = NULL;
  rocksdb_write(fs->db, sync ? fs->wo_sync : fs->wo, w->wb, &e);
  if (e) {
    fs->broken = 1;  // RocksDB (Debian's build keeps its assertions) aborts when used again after an I/O error
    return rerr(err, e, "commit", fs->path);
  }
  rocksdb_writebatch_clear(w->wb);
  return 0;
}

// ---- feature-major view --------------------------------------------------------------------------
struct csc_ctx {
  fs_csc_t *c;
  int pass;
  size_t cap_ids;
  uint64_t *fill;
  const char *path;
};
static int csc_fn(const char *id, uint32_t n, const uint32_t *idx, const float *val, void *ctx) {
  struct csc_ctx *x = ctx;
  fs_csc_t *c = x->c;
  if (x->pass == 0) {
    for (uint32_t j = 0; j < n; j++) {
      if (idx[j] >= c->n_features)
        return ps_err_set(NULL, PS_EFORMAT, "feature %u", idx[j]);  // caught below with a message
      c->colptr[idx[j] + 1]++;
    }
    if (c->n_proteins == x->cap_ids) {
      x->cap_ids = x->cap_ids ? 2 * x->cap_ids : 1024;
      c->ids = ps_xrealloc(c->ids, x->cap_ids * sizeof *c->ids);
    }
    c->ids[c->n_proteins++] = ps_xstrdup(id);
  } else {
    uint32_t row = (uint32_t)x->fill[c->n_features];  // protein counter kept past the columns
    for (uint32_t j = 0; j < n; j++) {
      uint64_t at = x->fill[idx[j]]++;
      c->rows[at] = row;
      c->vals[at] = val[j];
    }
    x->fill[c->n_features]++;
  }
  return 0;
}

int fs_load_csc(fs_t *fs, fs_csc_t *c, ps_err_t *err) {
  memset(c, 0, sizeof *c);
  fs_meta_t m;
  int rc = fs_meta_get(fs, &m, err);
  if (rc < 0) return rc;
  if (rc == 0) return ps_err_set(err, PS_ENOTFOUND, "%s: empty feature store (nothing committed)", fs->path);
  c->n_features = m.n_features;
  c->colptr = ps_xcalloc((size_t)m.n_features + 1, sizeof *c->colptr);
  struct csc_ctx x = {c, 0, 0, NULL, fs->path};
  if ((rc = fs_code_each(fs, csc_fn, &x, err)) < 0) {
    if (rc == PS_EFORMAT) ps_err_set(err, rc, "%s: a protein code names a feature >= %u", fs->path, m.n_features);
    fs_csc_free(c);
    return rc;
  }
  if (c->n_proteins > UINT32_MAX) {
    fs_csc_free(c);
    return ps_err_set(err, PS_EDIM, "%s: more than 2^32 proteins", fs->path);
  }
  for (uint32_t f = 0; f < m.n_features; f++) c->colptr[f + 1] += c->colptr[f];
  uint64_t nnz = c->colptr[m.n_features];
  c->rows = ps_xmalloc((nnz ? nnz : 1) * sizeof *c->rows);
  c->vals = ps_xmalloc((nnz ? nnz : 1) * sizeof *c->vals);
  x.fill = ps_xmalloc(((size_t)m.n_features + 1) * sizeof *x.fill);
  memcpy(x.fill, c->colptr, (size_t)m.n_features * sizeof *x.fill);
  x.fill[m.n_features] = 0;
  x.pass = 1;
  size_t n_prot = c->n_proteins;
  rc = fs_code_each(fs, csc_fn, &x, err);
  if (rc >= 0 && x.fill[m.n_features] != n_prot)
    rc = ps_err_set(err, PS_ESTATE, "%s: the store changed while it was read (%llu then %zu proteins)", fs->path,
                    (unsigned long long)x.fill[m.n_features], n_prot);
  free(x.fill);
  if (rc < 0) fs_csc_free(c);
  return rc < 0 ? rc : 0;
}

void fs_csc_free(fs_csc_t *c) {
  for (size_t i = 0; i < c->n_proteins; i++) free(c->ids[i]);
  free(c->ids);
  free(c->colptr);
  free(c->rows);
  free(c->vals);
  memset(c, 0, sizeof *c);
}

// ---- string keys ---------------------------------------------------------------------------------
int fs_kv_get(fs_t *fs, const char *key, char **val, size_t *len, ps_err_t *err) {
  char *v;
  size_t n;
  *val = NULL;
  if (len) *len = 0;
  int rc = fs_raw_get(fs, CF_DEFAULT, key, strlen(key), &v, &n, err);
  if (rc <= 0) return rc;
  *val = ps_xmalloc(n + 1);
  memcpy(*val, v, n);
  (*val)[n] = 0;
  if (len) *len = n;
  rocksdb_free(v);
  return 1;
}

void fs_wb_put_kv(fs_t *fs, fs_wb_t *w, const char *key, const char *val, size_t len) {
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_DEFAULT], key, strlen(key), val, len);
}

void fs_wb_del_kv(fs_t *fs, fs_wb_t *w, const char *key) {
  rocksdb_writebatch_delete_cf(w->wb, fs->cf[CF_DEFAULT], key, strlen(key));
}

void fs_wb_put_enrich(fs_t *fs, fs_wb_t *w, uint32_t feature, const fs_enrich_feat_t *e) {
  char k[4];
  fs_feat_key(feature, k);
  size_t n = fs_enrich_feat_encode(e, &w->buf, &w->cap);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_ENRICH], k, 4, (const char *)w->buf, n);
}

void fs_wb_clear_u32_family(fs_t *fs, fs_wb_t *w, int cf) {
  const char lo[4] = {0, 0, 0, 0}, hi[5] = {(char)0xff, (char)0xff, (char)0xff, (char)0xff, 0};
  rocksdb_writebatch_delete_range_cf(w->wb, fs->cf[cf], lo, 4, hi, 5);
}

void fs_wb_clear_enrich(fs_t *fs, fs_wb_t *w) { fs_wb_clear_u32_family(fs, w, CF_ENRICH); }

int fs_raw_get_u32(fs_t *fs, int cf, uint32_t id, char **val, size_t *vlen, ps_err_t *err) {
  char k[4];
  fs_feat_key(id, k);
  return fs_raw_get(fs, cf, k, 4, val, vlen, err);
}

int fs_enrich_get(fs_t *fs, uint32_t feature, fs_enrich_feat_t *e, ps_err_t *err) {
  char *v;
  size_t n;
  memset(e, 0, sizeof *e);
  int rc = fs_raw_get_u32(fs, CF_ENRICH, feature, &v, &n, err);
  if (rc <= 0) return rc;
  char what[300];
  snprintf(what, sizeof what, "%s: feature %u", fs->path, feature);
  rc = fs_enrich_feat_decode(e, (const uint8_t *)v, n, what, err);
  rocksdb_free(v);
  return rc < 0 ? rc : 1;
}

uint32_t fs_key_u32(const char *k) {
  return (uint32_t)(uint8_t)k[0] << 24 | (uint32_t)(uint8_t)k[1] << 16 | (uint32_t)(uint8_t)k[2] << 8 | (uint8_t)k[3];
}

struct enrich_ctx {
  int (*cb)(uint32_t, const fs_enrich_feat_t *, void *);
  void *ctx;
  const char *path;
};
static int enrich_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct enrich_ctx *x = c;
  if (kl != 4) return ps_err_set(err, PS_EFORMAT, "%s: enrichment key of %zu bytes", x->path, kl);
  uint32_t id = fs_key_u32(k);
  char what[300];
  snprintf(what, sizeof what, "%s: feature %u", x->path, id);
  fs_enrich_feat_t e;
  int rc = fs_enrich_feat_decode(&e, (const uint8_t *)v, vl, what, err);
  if (rc < 0) return rc;
  rc = x->cb(id, &e, x->ctx);
  fs_enrich_feat_free(&e);
  return rc;
}
int fs_enrich_each(fs_t *fs, int (*cb)(uint32_t, const fs_enrich_feat_t *, void *), void *ctx, ps_err_t *err) {
  struct enrich_ctx x = {cb, ctx, fs->path};
  return fs_raw_iterate(fs, CF_ENRICH, NULL, 0, enrich_fn, &x, err);
}

int fs_enrich_done(fs_t *fs, ps_err_t *err) {
  char *v = NULL;
  int rc = fs_kv_get(fs, "enrich/state", &v, NULL, err);
  if (rc > 0) rc = !strcmp(v, "done");
  free(v);
  return rc;
}

// ---- explanations ------------------------------------------------------------------------------------
void fs_wb_put_interp(fs_t *fs, fs_wb_t *w, uint32_t unit, const char *json, size_t len) {
  char k[4];
  fs_feat_key(unit, k);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_INTERP], k, 4, json, len);
}

int fs_interp_get(fs_t *fs, uint32_t unit, fs_interp_t *x, char **json, ps_err_t *err) {
  char k[4], *v;
  size_t n;
  if (json) *json = NULL;
  memset(x, 0, sizeof *x);
  fs_feat_key(unit, k);
  int rc = fs_raw_get(fs, CF_INTERP, k, 4, &v, &n, err);
  if (rc <= 0) return rc;
  rc = fs_interp_decode(x, unit, v, n, fs->path, err);
  if (rc == 0 && json) {
    *json = ps_xmalloc(n + 1);
    memcpy(*json, v, n);
    (*json)[n] = 0;
  }
  rocksdb_free(v);
  return rc < 0 ? rc : 1;
}

struct interp_ctx {
  int (*cb)(uint32_t, const fs_interp_t *, const char *, void *);
  void *ctx;
  const char *path;
  char *buf;
  size_t cap;
};
static int interp_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct interp_ctx *x = c;
  if (kl != 4) return ps_err_set(err, PS_EFORMAT, "%s: explanation key of %zu bytes", x->path, kl);
  uint32_t id = fs_key_u32(k);
  fs_interp_t r;
  int rc = fs_interp_decode(&r, id, v, vl, x->path, err);
  if (rc < 0) return rc;
  if (vl + 1 > x->cap) {
    x->cap = vl + 1024;
    x->buf = ps_xrealloc(x->buf, x->cap);
  }
  memcpy(x->buf, v, vl);
  x->buf[vl] = 0;
  rc = x->cb(id, &r, x->buf, x->ctx);
  fs_interp_free(&r);
  return rc;
}
int fs_interp_each(fs_t *fs, int (*cb)(uint32_t, const fs_interp_t *, const char *, void *), void *ctx,
                   ps_err_t *err) {
  struct interp_ctx x = {cb, ctx, fs->path, NULL, 0};
  int rc = fs_raw_iterate(fs, CF_INTERP, NULL, 0, interp_fn, &x, err);
  free(x.buf);
  return rc;
}

// ---- dump ---------------------------------------------------------------------------------------
static void put_hex128(FILE *o, fs_u128 v) { fprintf(o, "%016" PRIx64 "%016" PRIx64, (uint64_t)(v >> 64), (uint64_t)v); }

static int dump_eos(const char *p, const fs_eos_t *e, void *ctx) {
  fprintf(ctx, "eos\t%s\tbatches=%" PRIu64 "\trows=%" PRIu64 "\tproteins=%" PRIu64 "\n", p, e->batches, e->rows, e->proteins);
  return 0;
}
static int dump_feat(uint32_t id, const fs_feat_t *f, void *ctx) {
  FILE *o = ctx;
  fprintf(o, "feature\t%u\tn=%" PRIu64 "\tsum=", id, f->n_active);
  put_hex128(o, f->sum_fx);
  fprintf(o, "\tsumsq=");
  put_hex128(o, f->sumsq_fx);
  fprintf(o, "\tmax=%a\tres_n=%" PRIu64 "\tres_max=%a\thist=", (double)f->max, f->res_active, (double)f->res_max);
  for (int b = 0; b < FS_HIST_BINS; b++) fprintf(o, "%s%" PRIu64, b ? "," : "", f->hist[b]);
  fprintf(o, "\ttop=");
  for (uint32_t i = 0; i < f->n_top; i++)
    fprintf(o, "%s%s:%d:%a", i ? "," : "", f->top[i].id, f->top[i].pos == FS_POS_NONE ? -1 : (int)f->top[i].pos,
            (double)f->top[i].value);
  fputc('\n', o);
  return 0;
}
static int dump_code(const char *id, uint32_t n, const uint32_t *idx, const float *val, void *ctx) {
  FILE *o = ctx;
  fprintf(o, "code\t%s\t", id);
  for (uint32_t i = 0; i < n; i++) fprintf(o, "%s%u:%a", i ? "," : "", idx[i], (double)val[i]);
  fputc('\n', o);
  return 0;
}

struct dump_ctx {
  FILE *o;
  const char *tag;
};
// string keys (not meta, not eos/): "key<TAB>value"
static int dump_kv(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  if ((kl == 4 && !memcmp(k, "meta", 4)) || (kl >= 4 && !memcmp(k, "eos/", 4))) return 0;
  fprintf(c, "kv\t%.*s\t%.*s\n", (int)kl, k, (int)vl, v);
  return 0;
}
static int dump_u32_json(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  const struct dump_ctx *x = c;
  if (kl != 4) return ps_err_set(err, PS_EFORMAT, "%s record key of %zu bytes", x->tag, kl);
  fprintf(x->o, "%s\t%u\t%.*s\n", x->tag, fs_key_u32(k), (int)vl, v);
  return 0;
}
static int dump_enrich(uint32_t id, const fs_enrich_feat_t *e, void *c) {
  char *j = fs_enrich_feat_to_json(e);
  fprintf(c, "enrich\t%u\t%s\n", id, j ? j : "null");
  free(j);
  return 0;
}

int fs_dump(fs_t *fs, FILE *o, ps_err_t *err) {
  fs_meta_t m;
  int rc = fs_meta_get(fs, &m, err);
  if (rc < 0) return rc;
  if (rc == 0) return ps_err_set(err, PS_ENOTFOUND, "%s: empty feature store (nothing committed)", fs->path);
  fprintf(o, "meta\tformat=%u\tn_features=%u\ttop_n=%u\tlevel=%u\tneurons=%u\tpooling=%u\tproteins=%" PRIu64
             "\tresidues=%" PRIu64 "\tbatches=%" PRIu64 "\tnnz=%" PRIu64 "\tresidue_top=%u\n",
          m.format, m.n_features, m.top_n, m.level, m.neurons, m.pooling, m.proteins, m.residues, m.batches, m.nnz,
          m.residue_top);
  if ((rc = fs_eos_each(fs, dump_eos, o, err)) < 0) return rc;
  if ((rc = fs_feat_each(fs, m.top_n, dump_feat, o, err)) < 0) return rc;
  if ((rc = fs_code_each(fs, dump_code, o, err)) < 0) return rc;
  if ((rc = fs_rcode_dump(fs, o, err)) < 0) return rc;
  if ((rc = fs_raw_iterate(fs, CF_DEFAULT, NULL, 0, dump_kv, o, err)) < 0) return rc;
  struct dump_ctx di = {o, "interp"};
  if ((rc = fs_enrich_each(fs, dump_enrich, o, err)) < 0) return rc;
  if ((rc = fs_raw_iterate(fs, CF_INTERP, NULL, 0, dump_u32_json, &di, err)) < 0) return rc;
  return fs_concept_dump(fs, o, err);
}
