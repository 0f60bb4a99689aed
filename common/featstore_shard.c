// featstore_shard.c — a feature store split by feature range over N shard stores, read as one
// (featstore.h, "Sharded stores"): the layout file, the shard ranges, the sharded open, the
// merged reads, and the completion count a front uses to know every shard has its whole stream.
#include "featstore_priv.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "strmap.h"

#define SHARDS_MAGIC "protsae-shards 1"

void fs_shard_range(uint32_t k, uint32_t n, uint32_t n_features, uint32_t *lo, uint32_t *hi) {
  *lo = (uint32_t)((uint64_t)k * n_features / n);
  *hi = (uint32_t)((uint64_t)(k + 1) * n_features / n);
}

void fs_shard_path(const char *dir, uint32_t k, char *out, size_t cap) { snprintf(out, cap, "%s/shard-%u", dir, k); }

int fs_shards_count(const char *dir, uint32_t *n, ps_err_t *err) {
  char p[4096], buf[128];
  snprintf(p, sizeof p, "%s/shards", dir);
  *n = 0;
  FILE *f = fopen(p, "r");
  if (!f) return errno == ENOENT || errno == ENOTDIR ? 0 : ps_err_set(err, -errno, "%s: cannot read", p);
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = 0;
  unsigned v = 0;
  char tail = 0;
  if (strncmp(buf, SHARDS_MAGIC "\n", sizeof SHARDS_MAGIC) != 0 ||
      sscanf(buf + sizeof SHARDS_MAGIC, "shards %u%c", &v, &tail) != 2 || tail != '\n' || v < 1 || v > FS_MAX_SHARDS)
    return ps_err_set(err, PS_EFORMAT, "%s: not a shard layout file (want \"%s\\nshards N\\n\", N in 1..%d)", p,
                      SHARDS_MAGIC, FS_MAX_SHARDS);
  *n = v;
  return 1;
}

int fs_shards_init(const char *dir, uint32_t n, ps_err_t *err) {
  if (n < 1 || n > FS_MAX_SHARDS) return ps_err_set(err, PS_ECONFIG, "%s: %u shards (1..%d)", dir, n, FS_MAX_SHARDS);
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) return ps_err_set(err, -errno, "%s: cannot create the store directory", dir);
  uint32_t have = 0;
  int rc = fs_shards_count(dir, &have, err);
  if (rc < 0) return rc;
  if (rc == 1) {
    if (have != n)
      return ps_err_set(err, PS_EMISMATCH, "%s: the store was made with %u shards, this process was given %u "
                                           "(--shards): a store keeps its shard count", dir, have, n);
    return 0;
  }
  // Several processes (the front, the shards) may create it at once: each writes the same bytes to
  // its own temporary name and renames it over the final one (atomic), so any of them wins.
  char p[4096], tmp[4200], body[64];
  snprintf(p, sizeof p, "%s/shards", dir);
  snprintf(tmp, sizeof tmp, "%s/shards.%ld.tmp", dir, (long)getpid());
  int len = snprintf(body, sizeof body, SHARDS_MAGIC "\nshards %u\n", n);
  if ((rc = ps_write_file_atomic(tmp, body, (size_t)len, err)) < 0) return rc;
  if (rename(tmp, p) < 0) {
    rc = ps_err_set(err, -errno, "%s: cannot rename to %s", tmp, p);
    unlink(tmp);
    return rc;
  }
  ps_fsync_dir(dir);
  return fs_shards_count(dir, &have, err) == 1 && have == n ? 0 : ps_err_set(err, PS_EIO, "%s: not written", p);
}

int fs_open_sharded(fs_t **out, const char *dir, int mode, ps_err_t *err) {
  *out = NULL;
  uint32_t n = 0;
  int rc = fs_shards_count(dir, &n, err);
  if (rc < 0) return rc;
  if (rc == 0) return ps_err_set(err, PS_ENOTFOUND, "%s: not a sharded feature store (no shards file)", dir);
  char p[4096];
  snprintf(p, sizeof p, "%s/analysis", dir);
  fs_t *s = NULL;
  struct stat sb;
  if (mode != FS_OPEN_READONLY || stat(p, &sb) == 0) {
    if ((rc = fs_open(&s, p, mode, err)) < 0) return rc;
  } else {  // no analysis written yet: an empty, read-only part
    s = ps_xcalloc(1, sizeof *s);
    s->path = ps_xstrdup(p);
    s->readonly = 1;
  }
  s->shard = ps_xcalloc(n, sizeof *s->shard);
  s->n_shards = n;
  for (uint32_t k = 0; k < n; k++) {
    fs_shard_path(dir, k, p, sizeof p);
    if ((rc = fs_open(&s->shard[k], p, FS_OPEN_READONLY, err)) < 0) {
      ps_err_prefix(err, "shard %u of %u: ", k, n);
      fs_close(&s);
      return rc;
    }
  }
  *out = s;
  return 0;
}

int fs_sh_meta_get(fs_t *fs, fs_meta_t *m, ps_err_t *err) {
  int rc = fs_meta_get(fs->shard[0], m, err);
  if (rc <= 0) return rc;
  m->nnz = 0;
  for (uint32_t k = 0; k < fs->n_shards; k++) {
    fs_meta_t o;
    if ((rc = fs_meta_get(fs->shard[k], &o, err)) < 0) return rc;
    if (rc == 0) continue;  // nothing committed there yet
    if (o.n_features != m->n_features || o.level != m->level || o.neurons != m->neurons || o.top_n != m->top_n ||
        o.residue_top != m->residue_top)
      return ps_err_set(err, PS_EMISMATCH, "%s: shard %u holds %u %s (level %u, top %u, residue top %u), shard 0 %u %s "
                        "(level %u, top %u, residue top %u)", fs->path, k, o.n_features,
                        o.neurons ? "neurons" : "features", o.level, o.top_n, o.residue_top, m->n_features,
                        m->neurons ? "neurons" : "features", m->level, m->top_n, m->residue_top);
    m->nnz += o.nnz;
  }
  return 1;
}

int fs_sh_feat_get(fs_t *fs, uint32_t feature, uint32_t top_n, fs_feat_t *f, ps_err_t *err) {
  for (uint32_t k = 0; k < fs->n_shards; k++) {
    int rc = fs_feat_get(fs->shard[k], feature, top_n, f, err);
    if (rc != 0) return rc;
  }
  return 0;
}

int fs_sh_feat_each(fs_t *fs, uint32_t top_n, int (*cb)(uint32_t, const fs_feat_t *, void *), void *ctx, ps_err_t *err) {
  for (uint32_t k = 0; k < fs->n_shards; k++) {  // ranges ascend with k: feature order is kept
    int rc = fs_feat_each(fs->shard[k], top_n, cb, ctx, err);
    if (rc < 0) return rc;
  }
  return 0;
}

// 1 when *cap was grown (doubling) to hold need entries: the caller reallocs its arrays to *cap.
static int parts_grow(size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  *cap = need * 2;
  return 1;
}

// Append id's code parts from shards 1.. to (*idx, *val, *nnz) of capacity *cap (grown as needed):
// each shard holds its range of the code, so the concatenation keeps indices ascending.
static int append_rest(fs_t *fs, const char *id, uint32_t **idx, float **val, size_t *nnz, size_t *cap, ps_err_t *err) {
  for (uint32_t k = 1; k < fs->n_shards; k++) {
    uint32_t n2 = 0, *i2 = NULL;
    float *v2 = NULL;
    int rc = fs_code_get(fs->shard[k], id, &n2, &i2, &v2, err);
    if (rc < 0) return rc;
    if (parts_grow(cap, *nnz + n2)) {
      *idx = ps_xrealloc(*idx, *cap * sizeof **idx);
      *val = ps_xrealloc(*val, *cap * sizeof **val);
    }
    if (n2) memcpy(*idx + *nnz, i2, n2 * sizeof *i2), memcpy(*val + *nnz, v2, n2 * sizeof *v2);
    *nnz += n2;
    free(i2);
    free(v2);
  }
  return 0;
}

int fs_sh_code_get(fs_t *fs, const char *id, uint32_t *nnz, uint32_t **idx, float **val, ps_err_t *err) {
  int rc = fs_code_get(fs->shard[0], id, nnz, idx, val, err);
  if (rc <= 0) return rc;
  size_t n = *nnz, cap = n;
  if ((rc = append_rest(fs, id, idx, val, &n, &cap, err)) < 0) {
    free(*idx), free(*val);
    *idx = NULL, *val = NULL;
    return rc;
  }
  *nnz = (uint32_t)n;
  return 1;
}

// Every shard applies every batch (each gets every protein, with its part of the code, possibly
// empty), so shard 0's ids are every protein: each is completed from the other shards.
struct sh_code_ctx {
  fs_t *fs;
  int (*cb)(const char *, uint32_t, const uint32_t *, const float *, void *);
  void *ctx;
  uint32_t *idx;
  float *val;
  size_t cap;
  ps_err_t *err;
  int rc;
};
static int sh_code_fn(const char *id, uint32_t n, const uint32_t *idx, const float *val, void *c) {
  struct sh_code_ctx *x = c;
  if (x->fs->n_shards == 1) return x->cb(id, n, idx, val, x->ctx);
  if (parts_grow(&x->cap, n)) {
    x->idx = ps_xrealloc(x->idx, x->cap * sizeof *x->idx);
    x->val = ps_xrealloc(x->val, x->cap * sizeof *x->val);
  }
  if (n) memcpy(x->idx, idx, n * sizeof *idx), memcpy(x->val, val, n * sizeof *val);
  size_t nn = n;
  int rc = append_rest(x->fs, id, &x->idx, &x->val, &nn, &x->cap, x->err);
  if (rc < 0) return x->rc = rc;
  return x->cb(id, (uint32_t)nn, x->idx, x->val, x->ctx);
}
int fs_sh_code_each(fs_t *fs, int (*cb)(const char *, uint32_t, const uint32_t *, const float *, void *), void *ctx,
                    ps_err_t *err) {
  struct sh_code_ctx x = {fs, cb, ctx, NULL, NULL, 0, err, 0};
  int rc = fs_code_each(fs->shard[0], sh_code_fn, &x, err);
  free(x.idx);
  free(x.val);
  return x.rc < 0 ? x.rc : rc;
}

// Residue codes: a protein's parts from every shard concatenated in shard order (feature ranges
// ascend, so (feature, pos) order is kept); the residue count is shard 0's (every shard has it).
typedef struct rc_acc {
  uint32_t *feat, *pos;
  float *val;
  size_t n, cap;
} rc_acc_t;
static void rc_acc_add(rc_acc_t *a, const fs_rcode_t *rc) {
  if (parts_grow(&a->cap, a->n + rc->n)) {
    a->feat = ps_xrealloc(a->feat, a->cap * sizeof *a->feat);
    a->pos = ps_xrealloc(a->pos, a->cap * sizeof *a->pos);
    a->val = ps_xrealloc(a->val, a->cap * sizeof *a->val);
  }
  if (rc->n) {
    memcpy(a->feat + a->n, rc->feat, rc->n * sizeof *rc->feat);
    memcpy(a->pos + a->n, rc->pos, rc->n * sizeof *rc->pos);
    memcpy(a->val + a->n, rc->val, rc->n * sizeof *rc->val);
  }
  a->n += rc->n;
}
static void rc_acc_free(rc_acc_t *a) { free(a->feat), free(a->pos), free(a->val); }
// Append id's parts from shards 1.. to a.
static int rc_append_rest(fs_t *fs, const char *id, rc_acc_t *a, ps_err_t *err) {
  for (uint32_t k = 1; k < fs->n_shards; k++) {
    fs_rcode_t p;
    void *owned = NULL;
    int rc = fs_rcode_get(fs->shard[k], id, &p, &owned, err);
    if (rc < 0) return rc;
    if (rc > 0) rc_acc_add(a, &p);
    free(owned);
  }
  return 0;
}

int fs_sh_rcode_get(fs_t *fs, const char *id, fs_rcode_t *out, void **owned, ps_err_t *err) {
  fs_rcode_t p;
  void *first = NULL;
  int rc = fs_rcode_get(fs->shard[0], id, &p, &first, err);
  if (rc <= 0) return rc;
  rc_acc_t a = {0};
  rc_acc_add(&a, &p);
  free(first);
  if ((rc = rc_append_rest(fs, id, &a, err)) < 0) {
    rc_acc_free(&a);
    memset(out, 0, sizeof *out);
    return rc;
  }
  uint8_t *m = ps_xmalloc(a.n ? a.n * 12 : 1);  // one block, as fs_rcode_decode gives it
  uint32_t *feat = (uint32_t *)m, *pos = feat + a.n;
  float *val = (float *)(pos + a.n);
  if (a.n) memcpy(feat, a.feat, a.n * 4), memcpy(pos, a.pos, a.n * 4), memcpy(val, a.val, a.n * 4);
  *out = (fs_rcode_t){p.len, (uint32_t)a.n, feat, pos, val};
  *owned = m;
  rc_acc_free(&a);
  return 1;
}

struct sh_rcode_ctx {
  fs_t *fs;
  int (*cb)(const char *, const fs_rcode_t *, void *);
  void *ctx;
  rc_acc_t a;
  ps_err_t *err;
  int rc;
};
static int sh_rcode_fn(const char *id, const fs_rcode_t *p, void *c) {
  struct sh_rcode_ctx *x = c;
  if (x->fs->n_shards == 1) return x->cb(id, p, x->ctx);
  x->a.n = 0;
  rc_acc_add(&x->a, p);
  int rc = rc_append_rest(x->fs, id, &x->a, x->err);
  if (rc < 0) return x->rc = rc;
  fs_rcode_t m = {p->len, (uint32_t)x->a.n, x->a.feat, x->a.pos, x->a.val};
  return x->cb(id, &m, x->ctx);
}
int fs_sh_rcode_each(fs_t *fs, int (*cb)(const char *, const fs_rcode_t *, void *), void *ctx, ps_err_t *err) {
  struct sh_rcode_ctx x = {fs, cb, ctx, {0}, err, 0};
  int rc = fs_rcode_each(fs->shard[0], sh_rcode_fn, &x, err);
  rc_acc_free(&x.a);
  return x.rc < 0 ? x.rc : rc;
}

// ---- completion ----------------------------------------------------------------------------------
struct done_ctx {
  strmap_t *m;       // producer -> index
  uint64_t *batches, *applied;
  size_t n;
};
static int done_eos(const char *producer, const fs_eos_t *e, void *c) {
  struct done_ctx *x = c;
  if (x->n == 4096) return 0;  // bounded; a store has a few streams
  strmap_put(x->m, producer, x->n);
  x->batches[x->n] = e->batches;
  x->applied[x->n++] = 0;
  return 0;
}
static int done_applied(const char *producer, uint64_t seq, void *c) {
  struct done_ctx *x = c;
  uint64_t i;
  if (strmap_get(x->m, producer, &i) && seq < x->batches[i]) x->applied[i]++;
  return 0;
}
int fs_streams_complete(fs_t *fs, size_t *complete, size_t *known, ps_err_t *err) {
  struct done_ctx x = {strmap_new(16), ps_xcalloc(4096, sizeof(uint64_t)), ps_xcalloc(4096, sizeof(uint64_t)), 0};
  int rc = fs_eos_each(fs, done_eos, &x, err);
  if (rc >= 0) rc = fs_applied_each(fs, done_applied, &x, err);
  *complete = 0;
  *known = x.n;
  for (size_t i = 0; i < x.n; i++) *complete += x.applied[i] == x.batches[i];
  strmap_destroy(&x.m);
  free(x.batches);
  free(x.applied);
  return rc < 0 ? rc : 0;
}
