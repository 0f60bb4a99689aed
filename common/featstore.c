// featstore.c — see featstore.h.
#include "featstore.h"

#include "fsutil.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

enum { CF_DEFAULT = 0, CF_FEAT, CF_CODES, CF_APPLIED, CF_ENRICH, CF_INTERP, CF_N };
static const char *const cf_names[CF_N] = {"default", "feat", "codes", "applied", "enrich", "interp"};

struct fs {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_readoptions_t *ro;
  rocksdb_writeoptions_t *wo, *wo_sync;
  rocksdb_column_family_handle_t *cf[CF_N];
  char *path;
  int readonly;
  int broken;                 // a write failed: RocksDB is not touched again (not even to close it)
  unsigned long long min_free;  // bytes that must be free before a commit (0 = no check)
  uint8_t *buf;  // encode scratch
  size_t cap;
};

struct fs_wb {
  rocksdb_writebatch_t *wb;
  uint8_t *buf;
  size_t cap;
};

// ---- statistics ---------------------------------------------------------------------------------
void fs_feat_init(fs_feat_t *f, uint32_t top_n) {
  memset(f, 0, sizeof *f);
  f->top = ps_xcalloc(top_n ? top_n : 1, sizeof *f->top);
}

void fs_feat_clear(fs_feat_t *f) {
  if (!f->top) return;
  for (uint32_t i = 0; i < f->n_top; i++) free(f->top[i].id);
  free(f->top);
  memset(f, 0, sizeof *f);
}

int fs_hist_bin(float v) {
  int e;
  float m = frexpf(v, &e);  // v = m 2^e, m in [0.5, 1): log2 v = e - 1 + log2(2m)
  int b = 2 * (e - 1) + (2.0f * m >= 1.41421356f ? 1 : 0) + 32;
  return b < 0 ? 0 : b >= FS_HIST_BINS ? FS_HIST_BINS - 1 : b;
}

double fs_hist_lower(int b) { return b <= 0 ? 0.0 : pow(2.0, (b - 32) / 2.0); }

void fs_feat_add(fs_feat_t *f, float v) {
  f->n_active++;
  double d = (double)v;
  f->sum_fx = fs_fx_add(f->sum_fx, fs_fx(d));
  f->sumsq_fx = fs_fx_add(f->sumsq_fx, fs_fx(d * d));  // exact: a float squared fits a double
  if (v > f->max) f->max = v;
  f->hist[fs_hist_bin(v)]++;
}

// a better than b?
static int top_better(float va, const char *ia, uint32_t pa, float vb, const char *ib, uint32_t pb) {
  if (va != vb) return va > vb;
  int c = strcmp(ia, ib);
  if (c) return c < 0;
  return pa < pb;
}

int fs_feat_offer_top(fs_feat_t *f, uint32_t top_n, float value, const char *id, uint32_t pos) {
  if (!top_n) return 0;
  if (f->n_top == top_n) {
    const fs_top_t *w = &f->top[top_n - 1];
    if (!top_better(value, id, pos, w->value, w->id, w->pos)) return 0;
  }
  // The same (id, pos) offered twice (a replayed protein) keeps one entry.
  for (uint32_t i = 0; i < f->n_top; i++)
    if (f->top[i].pos == pos && !strcmp(f->top[i].id, id)) {
      if (!top_better(value, id, pos, f->top[i].value, id, pos)) return 0;
      free(f->top[i].id);
      memmove(&f->top[i], &f->top[i + 1], (f->n_top - i - 1) * sizeof *f->top);
      f->n_top--;
      break;
    }
  uint32_t i = f->n_top < top_n ? f->n_top : top_n - 1;
  if (f->n_top == top_n) free(f->top[top_n - 1].id);
  else f->n_top++;
  while (i > 0 && top_better(value, id, pos, f->top[i - 1].value, f->top[i - 1].id, f->top[i - 1].pos)) {
    f->top[i] = f->top[i - 1];
    i--;
  }
  f->top[i].value = value;
  f->top[i].pos = pos;
  f->top[i].id = ps_xstrdup(id);
  return 1;
}

double fs_feat_mean(const fs_feat_t *f) { return f->n_active ? fs_fx_double(f->sum_fx) / (double)f->n_active : 0.0; }

double fs_feat_std(const fs_feat_t *f) {
  if (f->n_active < 2) return 0.0;
  double n = (double)f->n_active, m = fs_feat_mean(f);
  double var = fs_fx_double(f->sumsq_fx) / n - m * m;
  return var > 0 ? sqrt(var * n / (n - 1)) : 0.0;
}

// ---- encoding -----------------------------------------------------------------------------------
static void grow(uint8_t **buf, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  *buf = ps_xrealloc(*buf, c);
  *cap = c;
}
static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_f32(uint8_t *p, float v) { uint32_t u; memcpy(&u, &v, 4); put_u32(p, u); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static float get_f32(const uint8_t *p) { uint32_t u = get_u32(p); float v; memcpy(&v, &u, 4); return v; }
static void put_u128(uint8_t *p, fs_u128 v) { put_u64(p, (uint64_t)v); put_u64(p + 8, (uint64_t)(v >> 64)); }
static fs_u128 get_u128(const uint8_t *p) { return (fs_u128)get_u64(p) | (fs_u128)get_u64(p + 8) << 64; }

#define FEAT_MAGIC 0x31465350u  // "PSF1"
#define FEAT_FIXED (4 + 8 + 16 + 16 + 4 + 8 + 4 + 8 * FS_HIST_BINS + 4)

size_t fs_feat_encode(const fs_feat_t *f, uint8_t **buf, size_t *cap) {
  size_t need = FEAT_FIXED;
  for (uint32_t i = 0; i < f->n_top; i++) need += 10 + strlen(f->top[i].id);
  grow(buf, cap, need);
  uint8_t *p = *buf;
  put_u32(p, FEAT_MAGIC); p += 4;
  put_u64(p, f->n_active); p += 8;
  put_u128(p, f->sum_fx); p += 16;
  put_u128(p, f->sumsq_fx); p += 16;
  put_f32(p, f->max); p += 4;
  put_u64(p, f->res_active); p += 8;
  put_f32(p, f->res_max); p += 4;
  for (int b = 0; b < FS_HIST_BINS; b++, p += 8) put_u64(p, f->hist[b]);
  put_u32(p, f->n_top); p += 4;
  for (uint32_t i = 0; i < f->n_top; i++) {
    size_t l = strlen(f->top[i].id);
    put_f32(p, f->top[i].value);
    put_u32(p + 4, f->top[i].pos);
    put_u16(p + 8, (uint16_t)l);
    memcpy(p + 10, f->top[i].id, l);
    p += 10 + l;
  }
  return (size_t)(p - *buf);
}

int fs_feat_decode(fs_feat_t *f, uint32_t top_n, const uint8_t *buf, size_t len, const char *what, ps_err_t *err) {
  for (uint32_t i = 0; i < f->n_top; i++) free(f->top[i].id);
  f->n_top = 0;
  if (len < FEAT_FIXED) return ps_err_set(err, PS_ETRUNC, "%s: feature record of %zu bytes (< %d)", what, len, FEAT_FIXED);
  const uint8_t *p = buf;
  if (get_u32(p) != FEAT_MAGIC) return ps_err_set(err, PS_EFORMAT, "%s: feature record: bad magic at offset 0", what);
  p += 4;
  f->n_active = get_u64(p); p += 8;
  f->sum_fx = get_u128(p); p += 16;
  f->sumsq_fx = get_u128(p); p += 16;
  f->max = get_f32(p); p += 4;
  f->res_active = get_u64(p); p += 8;
  f->res_max = get_f32(p); p += 4;
  for (int b = 0; b < FS_HIST_BINS; b++, p += 8) f->hist[b] = get_u64(p);
  uint32_t n = get_u32(p); p += 4;
  if (n > top_n)
    return ps_err_set(err, PS_EFORMAT, "%s: %u top entries but the store keeps %u (offset %zu)", what, n, top_n,
                      (size_t)(p - buf - 4));
  const uint8_t *end = buf + len;
  for (uint32_t i = 0; i < n; i++) {
    if (end - p < 10) return ps_err_set(err, PS_ETRUNC, "%s: top entry %u truncated at offset %zu", what, i, (size_t)(p - buf));
    uint16_t l = get_u16(p + 8);
    if (end - p - 10 < l) return ps_err_set(err, PS_ETRUNC, "%s: top entry %u id truncated at offset %zu", what, i, (size_t)(p - buf));
    if (memchr(p + 10, 0, l)) return ps_err_set(err, PS_EFORMAT, "%s: top entry %u: id with a NUL byte at offset %zu", what, i, (size_t)(p - buf));
    fs_top_t *t = &f->top[i];
    t->value = get_f32(p);
    t->pos = get_u32(p + 4);
    t->id = ps_xmalloc((size_t)l + 1);
    memcpy(t->id, p + 10, l);
    t->id[l] = 0;
    f->n_top = i + 1;
    p += 10 + l;
  }
  if (p != end) return ps_err_set(err, PS_EFORMAT, "%s: %zu trailing bytes at offset %zu", what, (size_t)(end - p), (size_t)(p - buf));
  return 0;
}

#define META_MAGIC 0x314d5350u  // "PSM1"
#define META_LEN (4 * 7 + 8 * 4)
static void meta_encode(const fs_meta_t *m, uint8_t *p) {
  put_u32(p, META_MAGIC);
  put_u32(p + 4, m->format);
  put_u32(p + 8, m->n_features);
  put_u32(p + 12, m->top_n);
  put_u32(p + 16, m->level);
  put_u32(p + 20, m->neurons);
  put_u32(p + 24, m->pooling);
  put_u64(p + 28, m->proteins);
  put_u64(p + 36, m->residues);
  put_u64(p + 44, m->batches);
  put_u64(p + 52, m->nnz);
}

// ---- the store ----------------------------------------------------------------------------------
static int rerr(ps_err_t *err, char *e, const char *what, const char *path) {
  int rc = ps_err_set(err, PS_ESTORE, "%s: %s: %s", path, what, e ? e : "unknown RocksDB error");
  rocksdb_free(e);
  return rc;
}

int fs_open(fs_t **out, const char *path, int mode, ps_err_t *err) {
  *out = NULL;
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

static int get_raw(fs_t *fs, int cf, const char *key, size_t klen, char **val, size_t *vlen, ps_err_t *err) {
  char *e = NULL;
  *val = NULL;
  if (!fs->cf[cf]) return 0;  // a family this (older) store does not have
  *val = rocksdb_get_cf(fs->db, fs->ro, fs->cf[cf], key, klen, vlen, &e);
  if (e) return rerr(err, e, "read", fs->path);
  return *val ? 1 : 0;
}

int fs_meta_get(fs_t *fs, fs_meta_t *m, ps_err_t *err) {
  char *v;
  size_t n;
  int rc = get_raw(fs, CF_DEFAULT, "meta", 4, &v, &n, err);
  if (rc <= 0) return rc;
  const uint8_t *p = (const uint8_t *)v;
  if (n != META_LEN || get_u32(p) != META_MAGIC) {
    rocksdb_free(v);
    return ps_err_set(err, PS_EFORMAT, "%s: meta record of %zu bytes is not a protsae feature store's", fs->path, n);
  }
  m->format = get_u32(p + 4);
  m->n_features = get_u32(p + 8);
  m->top_n = get_u32(p + 12);
  m->level = get_u32(p + 16);
  m->neurons = get_u32(p + 20);
  m->pooling = get_u32(p + 24);
  m->proteins = get_u64(p + 28);
  m->residues = get_u64(p + 36);
  m->batches = get_u64(p + 44);
  m->nnz = get_u64(p + 52);
  rocksdb_free(v);
  if (m->format != FS_FORMAT)
    return ps_err_set(err, PS_EUNSUPP, "%s: feature store format %u, this build reads %d", fs->path, m->format, FS_FORMAT);
  return 1;
}

static void feat_key(uint32_t id, char k[4]) {
  k[0] = (char)(id >> 24); k[1] = (char)(id >> 16); k[2] = (char)(id >> 8); k[3] = (char)id;
}

int fs_feat_get(fs_t *fs, uint32_t feature, uint32_t top_n, fs_feat_t *f, ps_err_t *err) {
  char k[4], *v;
  size_t n;
  feat_key(feature, k);
  int rc = get_raw(fs, CF_FEAT, k, 4, &v, &n, err);
  if (rc <= 0) return rc;
  char what[64];
  snprintf(what, sizeof what, "feature %u", feature);
  rc = fs_feat_decode(f, top_n, (const uint8_t *)v, n, what, err);
  rocksdb_free(v);
  return rc < 0 ? ps_err_prefix(err, "%s: ", fs->path) : 1;
}

typedef int (*iter_fn)(const char *k, size_t kl, const char *v, size_t vl, void *ctx, ps_err_t *err);
static int iterate(fs_t *fs, int cf, const char *prefix, size_t plen, iter_fn fn, void *ctx, ps_err_t *err) {
  if (!fs->cf[cf]) return 0;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(fs->db, fs->ro, fs->cf[cf]);
  if (plen) rocksdb_iter_seek(it, prefix, plen);
  else rocksdb_iter_seek_to_first(it);
  int rc = 0;
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
    if (plen && (kl < plen || memcmp(k, prefix, plen))) break;
    if ((rc = fn(k, kl, v, vl, ctx, err)) != 0) break;
  }
  if (rc == 0) {
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    if (e) rc = rerr(err, e, "iterate", fs->path);
  }
  rocksdb_iter_destroy(it);
  return rc < 0 ? rc : 0;
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
  struct eos_ctx x = {cb, ctx, fs->path};
  return iterate(fs, CF_DEFAULT, "eos/", 4, eos_fn, &x, err);
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
  struct applied_ctx x = {cb, ctx, fs->path};
  return iterate(fs, CF_APPLIED, NULL, 0, applied_fn, &x, err);
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
  struct feat_ctx x = {cb, ctx, {0}, top_n, fs->path};
  fs_feat_init(&x.f, top_n);
  int rc = iterate(fs, CF_FEAT, NULL, 0, feat_fn, &x, err);
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
static int code_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct code_ctx *x = c;
  if (kl + 1 > x->idcap) {
    x->idcap = kl + 64;
    x->id = ps_xrealloc(x->id, x->idcap);
  }
  memcpy(x->id, k, kl);
  x->id[kl] = 0;
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
  struct code_ctx x = {cb, ctx, NULL, NULL, 0, NULL, 0, fs->path};
  int rc = iterate(fs, CF_CODES, NULL, 0, code_fn, &x, err);
  free(x.idx);
  free(x.val);
  free(x.id);
  return rc;
}

int fs_code_get(fs_t *fs, const char *id, uint32_t *nnz, uint32_t **idx, float **val, ps_err_t *err) {
  char *v;
  size_t n;
  *idx = NULL;
  *val = NULL;
  *nnz = 0;
  int rc = get_raw(fs, CF_CODES, id, strlen(id), &v, &n, err);
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
  uint8_t b[META_LEN];
  meta_encode(m, b);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_DEFAULT], "meta", 4, (const char *)b, META_LEN);
}

void fs_wb_put_feat(fs_t *fs, fs_wb_t *w, uint32_t feature, const fs_feat_t *f) {
  char k[4];
  feat_key(feature, k);
  size_t n = fs_feat_encode(f, &w->buf, &w->cap);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_FEAT], k, 4, (const char *)w->buf, n);
}

void fs_wb_put_code(fs_t *fs, fs_wb_t *w, const char *id, uint32_t nnz, const uint32_t *idx, const float *val) {
  grow(&w->buf, &w->cap, 4 + (size_t)nnz * 8);
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
  int rc = get_raw(fs, CF_DEFAULT, key, strlen(key), &v, &n, err);
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

// ---- enrichment records ----------------------------------------------------------------------------
// JSON with fixed key order and %.17g numbers: equal records give equal bytes.
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static double num_get(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}
static int64_t int_get(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : -1;
}

void fs_enrich_feat_free(fs_enrich_feat_t *e) {
  for (uint32_t i = 0; i < e->n_hits; i++) free(e->hits[i].name);
  free(e->hits);
  memset(e, 0, sizeof *e);
}

char *fs_enrich_feat_to_json(const fs_enrich_feat_t *e) {
  json_t *o = json_object(), *hits = json_array();
  json_object_set_new(o, "n_active", json_integer((json_int_t)e->n_active));
  json_object_set_new(o, "n_study", json_integer((json_int_t)e->n_study));
  json_object_set_new(o, "max_act", num(e->max_act));
  json_object_set_new(o, "n_touched", json_integer(e->n_touched));
  json_object_set_new(o, "best_f1_go", json_string(e->best_f1_go));
  json_object_set_new(o, "best_f1", num(e->best_f1));
  json_object_set_new(o, "best_f1_threshold", num(e->best_f1_threshold));
  for (uint32_t i = 0; i < e->n_hits; i++) {
    const fs_term_hit_t *h = &e->hits[i];
    json_t *a = json_array();
    json_array_append_new(a, json_string(h->go_id));
    json_array_append_new(a, json_integer(h->ns));
    json_array_append_new(a, json_integer(h->depth));
    json_array_append_new(a, json_string(h->name ? h->name : ""));
    json_array_append_new(a, json_integer(h->k));
    json_array_append_new(a, json_integer(h->n));
    json_array_append_new(a, json_integer(h->K));
    json_array_append_new(a, json_integer(h->N));
    json_array_append_new(a, num(h->fold));
    json_array_append_new(a, num(h->p));
    json_array_append_new(a, num(h->ln_p));
    json_array_append_new(a, num(h->p_bonf));
    json_array_append_new(a, num(h->q_bh));
    json_array_append_new(a, num(h->f1));
    json_array_append_new(a, num(h->f1_threshold));
    json_array_append_new(hits, a);
  }
  json_object_set_new(o, "hits", hits);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(o);
  return s;
}

int fs_enrich_feat_from_json(fs_enrich_feat_t *e, const char *txt, size_t len, const char *what, ps_err_t *err) {
  memset(e, 0, sizeof *e);
  json_error_t je;
  json_t *o = json_loadb(txt, len, 0, &je);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: %s at offset %d", what, o ? "not an object" : je.text,
                      o ? 0 : je.position);
  }
  e->n_active = int_get(o, "n_active");
  e->n_study = int_get(o, "n_study");
  e->max_act = (float)num_get(o, "max_act");
  e->n_touched = (uint32_t)int_get(o, "n_touched");
  const char *b = json_string_value(json_object_get(o, "best_f1_go"));
  snprintf(e->best_f1_go, sizeof e->best_f1_go, "%s", b ? b : "");
  e->best_f1 = (float)num_get(o, "best_f1");
  e->best_f1_threshold = (float)num_get(o, "best_f1_threshold");
  json_t *hits = json_object_get(o, "hits");
  int rc = 0;
  if (!json_is_array(hits)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: enrichment record without a hits array", what);
    goto out;
  }
  size_t n = json_array_size(hits);
  e->hits = ps_xcalloc(n ? n : 1, sizeof *e->hits);
  for (size_t i = 0; i < n; i++) {
    json_t *a = json_array_get(hits, i);
    if (!json_is_array(a) || json_array_size(a) != 15 || !json_is_string(json_array_get(a, 0)) ||
        !json_is_string(json_array_get(a, 3))) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: enrichment hit %zu malformed", what, i);
      goto out;
    }
    fs_term_hit_t *h = &e->hits[i];
    snprintf(h->go_id, sizeof h->go_id, "%s", json_string_value(json_array_get(a, 0)));
    h->ns = (int)json_integer_value(json_array_get(a, 1));
    h->depth = (int)json_integer_value(json_array_get(a, 2));
    h->name = ps_xstrdup(json_string_value(json_array_get(a, 3)));
    h->k = (uint32_t)json_integer_value(json_array_get(a, 4));
    h->n = (uint32_t)json_integer_value(json_array_get(a, 5));
    h->K = (uint32_t)json_integer_value(json_array_get(a, 6));
    h->N = (uint32_t)json_integer_value(json_array_get(a, 7));
    double *d[] = {&h->fold, &h->p, &h->ln_p, &h->p_bonf, &h->q_bh};
    for (int j = 0; j < 5; j++) {
      json_t *v = json_array_get(a, (size_t)(8 + j));
      *d[j] = json_is_number(v) ? json_number_value(v) : (j == 2 ? -INFINITY : NAN);
    }
    json_t *f1 = json_array_get(a, 13), *ft = json_array_get(a, 14);
    h->f1 = json_is_number(f1) ? (float)json_number_value(f1) : NAN;
    h->f1_threshold = json_is_number(ft) ? (float)json_number_value(ft) : NAN;
    e->n_hits = (uint32_t)(i + 1);
  }
out:
  json_decref(o);
  if (rc < 0) fs_enrich_feat_free(e);
  return rc;
}

#define ENRICH_MAGIC 0x31455350u  // "PSE1"
#define ENRICH_FIXED (4 + 8 + 8 + 4 + 4 + 1 + 4 + 4 + 4)
#define HIT_FIXED (1 + 1 + 2 + 2 + 16 + 40 + 8)
static void put_f64(uint8_t *p, double v) { uint64_t u; memcpy(&u, &v, 8); put_u64(p, u); }
static double get_f64(const uint8_t *p) { uint64_t u = get_u64(p); double v; memcpy(&v, &u, 8); return v; }

size_t fs_enrich_feat_encode(const fs_enrich_feat_t *e, uint8_t **buf, size_t *cap) {
  size_t bl = strnlen(e->best_f1_go, sizeof e->best_f1_go - 1), need = ENRICH_FIXED + bl;
  for (uint32_t i = 0; i < e->n_hits; i++)
    need += HIT_FIXED + strnlen(e->hits[i].go_id, sizeof e->hits[i].go_id - 1) +
            (e->hits[i].name ? strnlen(e->hits[i].name, 65535) : 0);
  grow(buf, cap, need);
  uint8_t *p = *buf;
  put_u32(p, ENRICH_MAGIC); p += 4;
  put_u64(p, (uint64_t)e->n_active); p += 8;
  put_u64(p, (uint64_t)e->n_study); p += 8;
  put_f32(p, e->max_act); p += 4;
  put_u32(p, e->n_touched); p += 4;
  *p++ = (uint8_t)bl;
  memcpy(p, e->best_f1_go, bl); p += bl;
  put_f32(p, e->best_f1); p += 4;
  put_f32(p, e->best_f1_threshold); p += 4;
  put_u32(p, e->n_hits); p += 4;
  for (uint32_t i = 0; i < e->n_hits; i++) {
    const fs_term_hit_t *h = &e->hits[i];
    size_t gl = strnlen(h->go_id, sizeof h->go_id - 1), nl = h->name ? strnlen(h->name, 65535) : 0;
    *p++ = (uint8_t)gl;
    memcpy(p, h->go_id, gl); p += gl;
    *p++ = (uint8_t)h->ns;
    put_u16(p, (uint16_t)(int16_t)h->depth); p += 2;
    put_u16(p, (uint16_t)nl); p += 2;
    memcpy(p, h->name, nl); p += nl;
    put_u32(p, h->k); put_u32(p + 4, h->n); put_u32(p + 8, h->K); put_u32(p + 12, h->N); p += 16;
    put_f64(p, h->fold); put_f64(p + 8, h->p); put_f64(p + 16, h->ln_p); put_f64(p + 24, h->p_bonf);
    put_f64(p + 32, h->q_bh); p += 40;
    put_f32(p, h->f1); put_f32(p + 4, h->f1_threshold); p += 8;
  }
  return (size_t)(p - *buf);
}

int fs_enrich_feat_decode(fs_enrich_feat_t *e, const uint8_t *buf, size_t len, const char *what, ps_err_t *err) {
  memset(e, 0, sizeof *e);
  const uint8_t *p = buf, *end = buf + len;
#define NEED(n, part)                                                                                         \
  do {                                                                                                        \
    if ((size_t)(end - p) < (size_t)(n)) {                                                                    \
      fs_enrich_feat_free(e);                                                                                 \
      return ps_err_set(err, PS_ETRUNC, "%s: enrichment record truncated in %s at offset %zu", what, part,     \
                        (size_t)(p - buf));                                                                   \
    }                                                                                                         \
  } while (0)
  NEED(4, "the header");
  if (get_u32(p) != ENRICH_MAGIC)
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: bad magic at offset 0 (not a protsae record)", what);
  p += 4;
  NEED(8 + 8 + 4 + 4 + 1, "the header");
  e->n_active = (int64_t)get_u64(p); p += 8;
  e->n_study = (int64_t)get_u64(p); p += 8;
  e->max_act = get_f32(p); p += 4;
  e->n_touched = get_u32(p); p += 4;
  size_t bl = *p++;
  NEED(bl + 12, "the header");
  if (bl >= sizeof e->best_f1_go) return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: GO id of %zu bytes", what, bl);
  memcpy(e->best_f1_go, p, bl);
  e->best_f1_go[bl] = 0;
  p += bl;
  e->best_f1 = get_f32(p); p += 4;
  e->best_f1_threshold = get_f32(p); p += 4;
  uint32_t n = get_u32(p); p += 4;
  if (n > (size_t)(end - p) / HIT_FIXED)
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: %u terms cannot fit in %zu bytes", what, n, (size_t)(end - p));
  e->hits = ps_xcalloc(n ? n : 1, sizeof *e->hits);
  for (uint32_t i = 0; i < n; i++) {
    fs_term_hit_t *h = &e->hits[i];
    NEED(1, "a term");
    size_t gl = *p++;
    if (gl >= sizeof h->go_id) {
      fs_enrich_feat_free(e);
      return ps_err_set(err, PS_EFORMAT, "%s: enrichment term %u: GO id of %zu bytes at offset %zu", what, i, gl,
                        (size_t)(p - buf));
    }
    NEED(gl + 5, "a term");
    memcpy(h->go_id, p, gl);
    h->go_id[gl] = 0;
    p += gl;
    h->ns = *p++;
    h->depth = (int16_t)get_u16(p); p += 2;
    size_t nl = get_u16(p); p += 2;
    NEED(nl + 64, "a term");
    h->name = ps_xmalloc(nl + 1);
    memcpy(h->name, p, nl);
    h->name[nl] = 0;
    p += nl;
    e->n_hits = i + 1;
    h->k = get_u32(p); h->n = get_u32(p + 4); h->K = get_u32(p + 8); h->N = get_u32(p + 12); p += 16;
    h->fold = get_f64(p); h->p = get_f64(p + 8); h->ln_p = get_f64(p + 16); h->p_bonf = get_f64(p + 24);
    h->q_bh = get_f64(p + 32); p += 40;
    h->f1 = get_f32(p); h->f1_threshold = get_f32(p + 4); p += 8;
  }
#undef NEED
  if (p != end) {
    fs_enrich_feat_free(e);
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: %zu trailing bytes at offset %zu", what,
                      (size_t)(end - p), (size_t)(p - buf));
  }
  return 0;
}

void fs_wb_put_enrich(fs_t *fs, fs_wb_t *w, uint32_t feature, const fs_enrich_feat_t *e) {
  char k[4];
  feat_key(feature, k);
  size_t n = fs_enrich_feat_encode(e, &w->buf, &w->cap);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_ENRICH], k, 4, (const char *)w->buf, n);
}

void fs_wb_clear_enrich(fs_t *fs, fs_wb_t *w) {
  const char lo[4] = {0, 0, 0, 0}, hi[5] = {(char)0xff, (char)0xff, (char)0xff, (char)0xff, 0};
  rocksdb_writebatch_delete_range_cf(w->wb, fs->cf[CF_ENRICH], lo, 4, hi, 5);
}

int fs_enrich_get(fs_t *fs, uint32_t feature, fs_enrich_feat_t *e, ps_err_t *err) {
  char k[4], *v;
  size_t n;
  memset(e, 0, sizeof *e);
  feat_key(feature, k);
  int rc = get_raw(fs, CF_ENRICH, k, 4, &v, &n, err);
  if (rc <= 0) return rc;
  char what[300];
  snprintf(what, sizeof what, "%s: feature %u", fs->path, feature);
  rc = fs_enrich_feat_decode(e, (const uint8_t *)v, n, what, err);
  rocksdb_free(v);
  return rc < 0 ? rc : 1;
}

static uint32_t key_u32(const char *k) {
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
  uint32_t id = key_u32(k);
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
  return iterate(fs, CF_ENRICH, NULL, 0, enrich_fn, &x, err);
}

int fs_enrich_done(fs_t *fs, ps_err_t *err) {
  char *v = NULL;
  int rc = fs_kv_get(fs, "enrich/state", &v, NULL, err);
  if (rc > 0) rc = !strcmp(v, "done");
  free(v);
  return rc;
}

// ---- explanations ------------------------------------------------------------------------------------
void fs_interp_free(fs_interp_t *x) {
  free(x->explanation);
  free(x->failure);
  free(x->mode);
  memset(x, 0, sizeof *x);
}

static int interp_decode(fs_interp_t *x, uint32_t unit, const char *v, size_t vl, const char *path, ps_err_t *err) {
  memset(x, 0, sizeof *x);
  json_error_t je;
  json_t *o = json_loadb(v, vl, 0, &je);
  if (!json_is_object(o)) {
    int rc = ps_err_set(err, PS_EFORMAT, "%s: explanation of unit %u: %s", path, unit, o ? "not a JSON object" : je.text);
    json_decref(o);
    return rc;
  }
  x->unit = unit;
  const char *s = json_string_value(json_object_get(o, "explanation"));
  x->explanation = s ? ps_xstrdup(s) : NULL;
  x->r = num_get(o, "r");
  x->p = num_get(o, "p");
  // older interpreter lines: no "scored" (scored when r is a number), "constant_predictions", "offline"
  json_t *sc = json_object_get(o, "scored");
  x->scored = sc ? json_is_true(sc) : json_is_number(json_object_get(o, "r"));
  x->constant_pred = json_is_true(json_object_get(o, "constant_prediction")) ||
                     json_is_true(json_object_get(o, "constant_predictions"));
  s = json_string_value(json_object_get(o, "failure"));
  x->failure = ps_xstrdup(s ? s : "");
  s = json_string_value(json_object_get(o, "mode"));
  x->mode = ps_xstrdup(s ? s : json_is_true(json_object_get(o, "offline")) ? "offline" : "");
  int64_t a = int_get(o, "attempts");
  x->attempts = a > 0 ? (uint32_t)a : 0;
  json_decref(o);
  return 0;
}

void fs_wb_put_interp(fs_t *fs, fs_wb_t *w, uint32_t unit, const char *json, size_t len) {
  char k[4];
  feat_key(unit, k);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_INTERP], k, 4, json, len);
}

int fs_interp_get(fs_t *fs, uint32_t unit, fs_interp_t *x, char **json, ps_err_t *err) {
  char k[4], *v;
  size_t n;
  if (json) *json = NULL;
  memset(x, 0, sizeof *x);
  feat_key(unit, k);
  int rc = get_raw(fs, CF_INTERP, k, 4, &v, &n, err);
  if (rc <= 0) return rc;
  rc = interp_decode(x, unit, v, n, fs->path, err);
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
  uint32_t id = key_u32(k);
  fs_interp_t r;
  int rc = interp_decode(&r, id, v, vl, x->path, err);
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
  int rc = iterate(fs, CF_INTERP, NULL, 0, interp_fn, &x, err);
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
  fprintf(x->o, "%s\t%u\t%.*s\n", x->tag, key_u32(k), (int)vl, v);
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
             "\tresidues=%" PRIu64 "\tbatches=%" PRIu64 "\tnnz=%" PRIu64 "\n",
          m.format, m.n_features, m.top_n, m.level, m.neurons, m.pooling, m.proteins, m.residues, m.batches, m.nnz);
  if ((rc = fs_eos_each(fs, dump_eos, o, err)) < 0) return rc;
  if ((rc = fs_feat_each(fs, m.top_n, dump_feat, o, err)) < 0) return rc;
  if ((rc = fs_code_each(fs, dump_code, o, err)) < 0) return rc;
  if ((rc = iterate(fs, CF_DEFAULT, NULL, 0, dump_kv, o, err)) < 0) return rc;
  struct dump_ctx di = {o, "interp"};
  if ((rc = fs_enrich_each(fs, dump_enrich, o, err)) < 0) return rc;
  if ((rc = iterate(fs, CF_INTERP, NULL, 0, dump_u32_json, &di, err)) < 0) return rc;
  return 0;
}
