// featstore_rcode.c — the feature store's residue codes (family "rcodes": each protein's top
// residues per active feature) and residue concepts (family "concept": each feature's best concept
// by F1): their records, reads, iteration, writes and dump lines. See featstore.h.
#include <inttypes.h>
#include <jansson.h>

#include "featstore_priv.h"

// ---- residue codes --------------------------------------------------------------------------------
// u32 len, u32 n, then n x (u32 feature, u32 pos, f32 value), little-endian.
size_t fs_rcode_encode(const fs_rcode_t *rc, uint8_t **buf, size_t *cap) {
  size_t need = 8 + (size_t)rc->n * 12;
  fs_grow(buf, cap, need);
  uint8_t *p = *buf;
  put_u32(p, rc->len);
  put_u32(p + 4, rc->n);
  for (uint32_t i = 0; i < rc->n; i++) {
    put_u32(p + 8 + 12 * i, rc->feat[i]);
    put_u32(p + 12 + 12 * i, rc->pos[i]);
    put_f32(p + 16 + 12 * i, rc->val[i]);
  }
  return need;
}

int fs_rcode_decode(const uint8_t *b, size_t n, fs_rcode_t *rc, void **owned, const char *what, ps_err_t *err) {
  memset(rc, 0, sizeof *rc);
  *owned = NULL;
  if (n < 8) return ps_err_set(err, PS_ETRUNC, "%s: residue code of %zu bytes (< 8)", what, n);
  uint32_t len = get_u32(b), cnt = get_u32(b + 4);
  if (n != 8 + (size_t)cnt * 12)
    return ps_err_set(err, PS_EFORMAT, "%s: residue code of %zu bytes for %u entries", what, n, cnt);
  uint8_t *m = ps_xmalloc(cnt ? (size_t)cnt * 12 : 1);
  uint32_t *feat = (uint32_t *)m, *pos = feat + cnt;
  float *val = (float *)(pos + cnt);
  for (uint32_t i = 0; i < cnt; i++) {
    const uint8_t *q = b + 8 + 12 * (size_t)i;
    feat[i] = get_u32(q);
    pos[i] = get_u32(q + 4);
    val[i] = get_f32(q + 8);
    uint32_t f = feat[i], ps = pos[i];
    if (ps >= len || (i && (f < feat[i - 1] || (f == feat[i - 1] && ps <= pos[i - 1])))) {
      free(m);
      return ps_err_set(err, PS_EFORMAT, "%s: residue code entry %u (feature %u, position %u) at offset %zu: %s", what,
                        i, f, ps, (size_t)(8 + 12 * (size_t)i),
                        ps >= len ? "position past the protein's length" : "not after the previous (feature, pos)");
    }
  }
  *rc = (fs_rcode_t){len, cnt, feat, pos, val};
  *owned = m;
  return 0;
}

void fs_wb_put_rcode(fs_t *fs, fs_wb_t *w, const char *id, const fs_rcode_t *rc) {
  size_t n = fs_rcode_encode(rc, &w->buf, &w->cap);
  rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_RCODES], id, strlen(id), (const char *)w->buf, n);
}

int fs_rcode_get(fs_t *fs, const char *id, fs_rcode_t *rc, void **owned, ps_err_t *err) {
  if (fs->n_shards) return fs_sh_rcode_get(fs, id, rc, owned, err);
  memset(rc, 0, sizeof *rc);
  *owned = NULL;
  char *v;
  size_t n;
  int r = fs_raw_get(fs, CF_RCODES, id, strlen(id), &v, &n, err);
  if (r <= 0) return r;
  char what[300];
  snprintf(what, sizeof what, "%s: protein %s", fs->path, id);
  r = fs_rcode_decode((const uint8_t *)v, n, rc, owned, what, err);
  rocksdb_free(v);
  return r < 0 ? r : 1;
}

struct rcode_ctx {
  int (*cb)(const char *, const fs_rcode_t *, void *);
  void *ctx;
  char *id;
  size_t idcap;
  const char *path;
};
static int rcode_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct rcode_ctx *x = c;
  fs_key_cstr(&x->id, &x->idcap, k, kl);
  char what[300];
  snprintf(what, sizeof what, "%s: protein %s", x->path, x->id);
  fs_rcode_t rc;
  void *owned = NULL;
  int r = fs_rcode_decode((const uint8_t *)v, vl, &rc, &owned, what, err);
  if (r < 0) return r;
  r = x->cb(x->id, &rc, x->ctx);
  free(owned);
  return r;
}
int fs_rcode_each(fs_t *fs, int (*cb)(const char *, const fs_rcode_t *, void *), void *ctx, ps_err_t *err) {
  if (fs->n_shards) return fs_sh_rcode_each(fs, cb, ctx, err);
  struct rcode_ctx x = {cb, ctx, NULL, 0, fs->path};
  int r = fs_raw_iterate(fs, CF_RCODES, NULL, 0, rcode_fn, &x, err);
  free(x.id);
  return r;
}

static int dump_rcode(const char *id, const fs_rcode_t *rc, void *ctx) {
  FILE *o = ctx;
  fprintf(o, "rcode\t%s\tlen=%u\t", id, rc->len);
  for (uint32_t i = 0; i < rc->n; i++) fprintf(o, "%s%u:%u:%a", i ? "," : "", rc->feat[i], rc->pos[i], (double)rc->val[i]);
  fputc('\n', o);
  return 0;
}
int fs_rcode_dump(fs_t *fs, FILE *o, ps_err_t *err) { return fs_rcode_each(fs, dump_rcode, o, err); }

// ---- residue concepts -------------------------------------------------------------------------------
void fs_concept_free(fs_concept_t *c) {
  free(c->concept);
  memset(c, 0, sizeof *c);
}

char *fs_concept_to_json(const fs_concept_t *c) {
  json_t *o = json_pack("{s:I, s:s, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I}", "feature", (json_int_t)c->feature,
                        "concept", c->concept ? c->concept : "", "threshold", c->threshold, "precision", c->precision,
                        "recall", c->recall, "f1", c->f1, "tp", (json_int_t)c->tp, "n_pred", (json_int_t)c->n_pred,
                        "found", (json_int_t)c->found, "instances", (json_int_t)c->instances);
  if (!o) return NULL;
  char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(o);
  return s;
}

int fs_concept_from_json(fs_concept_t *c, uint32_t feature, const char *json, size_t len, const char *what,
                         ps_err_t *err) {
  memset(c, 0, sizeof *c);
  json_error_t je;
  json_t *o = json_loadb(json, len, 0, &je);
  if (!o) return ps_err_set(err, PS_EFORMAT, "%s: concept record of feature %u: %s", what, feature, je.text);
  const char *name = NULL;
  json_int_t tp = 0, np = 0, fd = 0, in = 0;
  int r = json_unpack_ex(o, &je, 0, "{s:s, s:F, s:F, s:F, s:F, s:I, s:I, s:I, s:I}", "concept", &name, "threshold",
                         &c->threshold, "precision", &c->precision, "recall", &c->recall, "f1", &c->f1, "tp", &tp,
                         "n_pred", &np, "found", &fd, "instances", &in);
  if (r < 0 || tp < 0 || np < 0 || fd < 0 || in < 0 || fd > UINT32_MAX || in > UINT32_MAX) {
    json_decref(o);
    return ps_err_set(err, PS_EFORMAT, "%s: concept record of feature %u: %s", what, feature,
                      r < 0 ? je.text : "negative or oversized count");
  }
  c->feature = feature;
  c->concept = ps_xstrdup(name);
  c->tp = (uint64_t)tp, c->n_pred = (uint64_t)np, c->found = (uint32_t)fd, c->instances = (uint32_t)in;
  json_decref(o);
  return 0;
}

void fs_wb_put_concept(fs_t *fs, fs_wb_t *w, const fs_concept_t *c) {
  char k[4], *j = fs_concept_to_json(c);
  fs_feat_key(c->feature, k);
  if (j) rocksdb_writebatch_put_cf(w->wb, fs->cf[CF_CONCEPT], k, 4, j, strlen(j));
  free(j);
}

void fs_wb_clear_concept(fs_t *fs, fs_wb_t *w) { fs_wb_clear_u32_family(fs, w, CF_CONCEPT); }

int fs_concept_get(fs_t *fs, uint32_t feature, fs_concept_t *c, ps_err_t *err) {
  char *v;
  size_t n;
  memset(c, 0, sizeof *c);
  int r = fs_raw_get_u32(fs, CF_CONCEPT, feature, &v, &n, err);
  if (r <= 0) return r;
  r = fs_concept_from_json(c, feature, v, n, fs->path, err);
  rocksdb_free(v);
  return r < 0 ? r : 1;
}

struct concept_ctx {
  int (*cb)(const fs_concept_t *, void *);
  void *ctx;
  const char *path;
};
static int concept_fn(const char *k, size_t kl, const char *v, size_t vl, void *c, ps_err_t *err) {
  struct concept_ctx *x = c;
  if (kl != 4) return ps_err_set(err, PS_EFORMAT, "%s: concept key of %zu bytes", x->path, kl);
  fs_concept_t r;
  int rc = fs_concept_from_json(&r, fs_key_u32(k), v, vl, x->path, err);
  if (rc < 0) return rc;
  rc = x->cb(&r, x->ctx);
  fs_concept_free(&r);
  return rc;
}
int fs_concept_each(fs_t *fs, int (*cb)(const fs_concept_t *, void *), void *ctx, ps_err_t *err) {
  struct concept_ctx x = {cb, ctx, fs->path};
  return fs_raw_iterate(fs, CF_CONCEPT, NULL, 0, concept_fn, &x, err);
}

static int dump_concept(const fs_concept_t *c, void *ctx) {
  char *j = fs_concept_to_json(c);
  fprintf(ctx, "concept\t%u\t%s\n", c->feature, j ? j : "null");
  free(j);
  return 0;
}
int fs_concept_dump(fs_t *fs, FILE *o, ps_err_t *err) { return fs_concept_each(fs, dump_concept, o, err); }
