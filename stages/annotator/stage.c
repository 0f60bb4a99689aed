// stage.c — the sink's staging records in the annotation store: keys, byte layouts, reads. See
// stage.h.
#include "stage.h"

#include <stdlib.h>
#include <string.h>

// ---- keys and little-endian values ----------------------------------------------------------------
#define KEY_MAX 600  // 1 + K (at most 128 + 17 bytes, checked by the sink) + 1 + 8, with room

static size_t key_of(char *b, char tag, const char *key, int with_num, uint64_t num) {
  size_t kl = strlen(key), n = 0;
  PS_ASSERT(kl + 10 <= KEY_MAX);
  b[n++] = tag;
  memcpy(b + n, key, kl);
  n += kl;
  if (with_num) {
    b[n++] = 0;
    for (int i = 7; i >= 0; i--) b[n++] = (char)(num >> (8 * i));
  }
  return n;
}
static uint64_t num_of(const char *k, size_t kl) {  // the trailing big-endian u64 of a key
  uint64_t v = 0;
  for (size_t i = kl - 8; i < kl; i++) v = v << 8 | (uint8_t)k[i];
  return v;
}

static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

// ---- writes ---------------------------------------------------------------------------------------
void stage_put_head(as_t *as, as_wb_t *wb, const char *key, double t_first, const char *producer) {
  char k[KEY_MAX];
  size_t kl = key_of(k, 'k', key, 0, 0), pl = strlen(producer);
  uint8_t *v = ps_xmalloc(8 + pl);
  uint64_t u;
  memcpy(&u, &t_first, 8);
  put_u64(v, u);
  memcpy(v + 8, producer, pl);
  as_wb_put_stage(as, wb, k, kl, v, 8 + pl);
  free(v);
}

void stage_put_seq(as_t *as, as_wb_t *wb, const char *key, uint64_t seq) {
  char k[KEY_MAX];
  size_t kl = key_of(k, 's', key, 1, seq);
  as_wb_put_stage(as, wb, k, kl, "", 0);
}

void stage_put_protein(as_t *as, as_wb_t *wb, const char *key, uint64_t index, const char *id, uint32_t nnz,
                       const uint32_t *idx, const float *val) {
  char k[KEY_MAX];
  size_t kl = key_of(k, 'r', key, 1, index), il = strlen(id), n = 8 + il + 8 * (size_t)nnz;
  uint8_t *v = ps_xmalloc(n), *p = v;
  put_u32(p, (uint32_t)il);
  memcpy(p + 4, id, il);
  p += 4 + il;
  put_u32(p, nnz);
  p += 4;
  for (uint32_t j = 0; j < nnz; j++, p += 8) {
    uint32_t u;
    memcpy(&u, &val[j], 4);
    put_u32(p, idx[j]);
    put_u32(p + 4, u);
  }
  as_wb_put_stage(as, wb, k, kl, v, n);
  free(v);
}

void stage_put_eos(as_t *as, as_wb_t *wb, const char *key, const stage_eos_t *e) {
  char k[KEY_MAX];
  size_t kl = key_of(k, 'e', key, 0, 0), rl = strnlen(e->reason, sizeof e->reason);
  uint8_t v[32 + sizeof e->reason];
  put_u64(v, e->batches);
  put_u64(v + 8, e->proteins);
  put_u64(v + 16, e->skipped);
  put_u64(v + 24, e->residues);
  memcpy(v + 32, e->reason, rl);
  as_wb_put_stage(as, wb, k, kl, v, 32 + rl);
}

void stage_drop(as_t *as, as_wb_t *wb, const char *key) {
  char b[KEY_MAX], e[KEY_MAX];
  static const char tags[] = {'s', 'r'};
  for (int t = 0; t < 2; t++) {  // [tag K 0x00, tag K 0x01): every numbered record of K
    size_t bl = key_of(b, tags[t], key, 0, 0), el = key_of(e, tags[t], key, 0, 0);
    b[bl++] = 0;
    e[el++] = 1;
    as_wb_del_stage_range(as, wb, b, bl, e, el);
  }
  size_t kl = key_of(b, 'k', key, 0, 0);
  as_wb_del_stage(as, wb, b, kl);
  kl = key_of(b, 'e', key, 0, 0);
  as_wb_del_stage(as, wb, b, kl);
}

// ---- reads ----------------------------------------------------------------------------------------
int stage_has_seq(as_t *as, const char *key, uint64_t seq, ps_err_t *err) {
  char k[KEY_MAX], *v = NULL;
  size_t kl = key_of(k, 's', key, 1, seq), vl;
  int rc = as_stage_get(as, k, kl, &v, &vl, err);
  free(v);
  return rc;
}

struct heads_ctx {
  int (*cb)(const char *, double, const char *, void *);
  void *ctx;
  const char *path;
};
static int head_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct heads_ctx *x = c;
  char key[KEY_MAX], prod[256];
  if (kl < 2 || kl - 1 >= sizeof key || vl < 8)
    return ps_err_set(err, PS_EFORMAT, "%s: staging head of %zu bytes (key of %zu)", x->path, vl, kl);
  memcpy(key, k + 1, kl - 1);
  key[kl - 1] = 0;
  size_t pl = vl - 8 < sizeof prod - 1 ? vl - 8 : sizeof prod - 1;
  memcpy(prod, v + 8, pl);
  prod[pl] = 0;
  uint64_t u = get_u64((const uint8_t *)v);
  double t;
  memcpy(&t, &u, 8);
  return x->cb(key, t, prod, x->ctx);
}
int stage_heads_each(as_t *as, int (*cb)(const char *key, double t_first, const char *producer, void *ctx), void *ctx,
                     ps_err_t *err) {
  struct heads_ctx x = {cb, ctx, as_path(as)};
  return as_stage_each(as, "k", 1, head_fn, &x, err);
}

int stage_get_eos(as_t *as, const char *key, stage_eos_t *e, ps_err_t *err) {
  char k[KEY_MAX], *v = NULL;
  size_t kl = key_of(k, 'e', key, 0, 0), vl = 0;
  int rc = as_stage_get(as, k, kl, &v, &vl, err);
  if (rc <= 0) return rc;
  memset(e, 0, sizeof *e);
  if (vl < 32) {
    free(v);
    return ps_err_set(err, PS_EFORMAT, "%s: %s: EndOfStream record of %zu bytes", as_path(as), key, vl);
  }
  const uint8_t *p = (const uint8_t *)v;
  e->batches = get_u64(p), e->proteins = get_u64(p + 8), e->skipped = get_u64(p + 16), e->residues = get_u64(p + 24);
  size_t rl = vl - 32 < sizeof e->reason - 1 ? vl - 32 : sizeof e->reason - 1;
  memcpy(e->reason, v + 32, rl);
  e->reason[rl] = 0;
  free(v);
  return 1;
}

struct seqs_ctx {
  int (*cb)(uint64_t, void *);
  void *ctx;
};
static int seq_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  (void)v, (void)vl, (void)err;
  struct seqs_ctx *x = c;
  return x->cb(num_of(k, kl), x->ctx);
}
int stage_seqs_each(as_t *as, const char *key, int (*cb)(uint64_t seq, void *ctx), void *ctx, ps_err_t *err) {
  char p[KEY_MAX];
  size_t pl = key_of(p, 's', key, 0, 0);
  p[pl++] = 0;
  struct seqs_ctx x = {cb, ctx};
  return as_stage_each(as, p, pl, seq_fn, &x, err);
}

struct prot_ctx {
  int (*cb)(uint64_t, const char *, uint32_t, const uint32_t *, const float *, void *);
  void *ctx;
  const char *path, *key;
  char *id;
  uint32_t *idx;
  float *val;
  size_t cap_id, cap;
};
static int prot_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct prot_ctx *x = c;
  uint64_t index = num_of(k, kl);
  const uint8_t *p = (const uint8_t *)v;
  uint32_t il = vl >= 4 ? get_u32(p) : 0, nnz = 0;
  if (vl < 8 || il > vl - 8 || (nnz = get_u32(p + 4 + il), (uint64_t)nnz * 8 != vl - 8 - il))
    return ps_err_set(err, PS_EFORMAT, "%s: %s: staged protein at index %llu: record of %zu bytes is malformed",
                      x->path, x->key, (unsigned long long)index, vl);
  if (il + 1 > x->cap_id) x->id = ps_xrealloc(x->id, x->cap_id = il + 1);
  memcpy(x->id, p + 4, il);
  x->id[il] = 0;
  if (nnz > x->cap) {
    x->cap = nnz;
    x->idx = ps_xrealloc(x->idx, nnz * sizeof *x->idx);
    x->val = ps_xrealloc(x->val, nnz * sizeof *x->val);
  }
  const uint8_t *q = p + 8 + il;
  for (uint32_t j = 0; j < nnz; j++, q += 8) {
    uint32_t u = get_u32(q + 4);
    x->idx[j] = get_u32(q);
    memcpy(&x->val[j], &u, 4);
  }
  return x->cb(index, x->id, nnz, x->idx, x->val, x->ctx);
}
int stage_proteins_each(as_t *as, const char *key,
                        int (*cb)(uint64_t index, const char *id, uint32_t nnz, const uint32_t *idx, const float *val,
                                  void *ctx),
                        void *ctx, ps_err_t *err) {
  char p[KEY_MAX];
  size_t pl = key_of(p, 'r', key, 0, 0);
  p[pl++] = 0;
  struct prot_ctx x = {cb, ctx, as_path(as), key, NULL, NULL, NULL, 0, 0};
  int rc = as_stage_each(as, p, pl, prot_fn, &x, err);
  free(x.id);
  free(x.idx);
  free(x.val);
  return rc;
}
