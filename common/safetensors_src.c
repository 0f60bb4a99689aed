// safetensors_src.c — the safetensors embedding source (emb.h): finds the layout of a file
// (layered, single matrix or one tensor a protein) and streams its records. See safetensors.h.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "safetensors.h"

enum { LAYOUT_PER_PROTEIN = 'a', LAYOUT_LAYERED = 'b', LAYOUT_MATRIX = 'c' };

typedef struct st_rec {
  size_t tensor;     // index in the file's offset order
  uint32_t id_len;   // id = first id_len bytes of the tensor's name
  uint32_t n_rows;
} st_rec_t;

typedef struct st_source {
  emb_source_t base;
  st_file_t *f;
  int layout;
  int layer;
  uint32_t dim;
  st_rec_t *recs;
  uint64_t n_records, rec;
  uint64_t n_skipped;
  const st_tensor_info_t *mat;  // matrix layout
  npy_ids_t *ids;               // matrix layout
  char *idbuf;
  size_t idbuf_cap;
  float *rows;
  size_t rows_cap;
} st_source_t;

static const emb_source_vt st_vt;

uint64_t safetensors_source_n_skipped(const emb_source_t *s) {
  return s && s->vt == &st_vt ? ((const st_source_t *)s)->n_skipped : 0;
}

int safetensors_source_layer(const emb_source_t *s) {
  return s && s->vt == &st_vt && ((const st_source_t *)s)->layout == LAYOUT_LAYERED ? ((const st_source_t *)s)->layer : -1;
}

static void st_src_destroy(emb_source_t *s) {
  st_source_t *n = (st_source_t *)s;
  st_close(&n->f);
  npy_ids_destroy(&n->ids);
  free(n->recs);
  free(n->idbuf);
  free(n->rows);
  free(n);
}

static int64_t st_src_count(emb_source_t *s) { return (int64_t)((st_source_t *)s)->n_records; }

static int st_src_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err) {
  st_source_t *n = (st_source_t *)s;
  if (n->rec >= n->n_records) return 0;
  char ctx[64];
  snprintf(ctx, sizeof ctx, "record %" PRIu64, n->rec);
  int rc;
  if (n->layout == LAYOUT_MATRIX) {
    if (n->rows_cap < n->dim) {
      n->rows = ps_xrealloc(n->rows, n->dim * sizeof(float));
      n->rows_cap = n->dim;
    }
    snprintf(ctx, sizeof ctx, "record %" PRIu64 " (row %" PRIu64 ")", n->rec, n->rec);
    if ((rc = st_read_range_f32_ctx(n->f, n->mat, n->rec * n->dim, n->dim, n->rows, ctx, err)) < 0) return rc;
    const char *id;
    if ((rc = npy_ids_next(n->ids, &id, err)) < 0) return rc;
    rec->id = id;
    rec->n_rows = 1;
  } else {
    const st_rec_t *r = &n->recs[n->rec];
    const st_tensor_info_t *t = st_tensor_info(n->f, r->tensor);
    size_t nv = (size_t)t->n_elems;
    if (n->rows_cap < nv) {
      n->rows = ps_xrealloc(n->rows, nv * sizeof(float));
      n->rows_cap = nv;
    }
    if ((rc = st_read_range_f32_ctx(n->f, t, 0, nv, n->rows, ctx, err)) < 0) return rc;
    if (n->idbuf_cap < (size_t)r->id_len + 1) {
      n->idbuf_cap = (size_t)r->id_len + 1;
      n->idbuf = ps_xrealloc(n->idbuf, n->idbuf_cap);
    }
    memcpy(n->idbuf, t->name, r->id_len);
    n->idbuf[r->id_len] = 0;
    rec->id = n->idbuf;
    rec->n_rows = r->n_rows;
  }
  rec->dim = n->dim;
  rec->rows = n->rows;
  n->rec++;
  return 1;
}

static int st_src_skip(emb_source_t *s, uint64_t k, ps_err_t *err) {
  st_source_t *n = (st_source_t *)s;
  if (k > n->n_records - n->rec)
    return ps_err_set(err, PS_ETRUNC, "%s: cannot skip to record %" PRIu64 ": the file has %" PRIu64, st_path(n->f),
                      n->rec + k, n->n_records);
  if (n->ids) {
    int rc = npy_ids_skip(n->ids, k, err);
    if (rc < 0) return rc;
  }
  n->rec += k;
  return 0;
}

static const emb_source_vt st_vt = {"safetensors", st_src_next, st_src_skip, st_src_destroy, st_src_count};

enum { KIND_PLAIN = 0, KIND_MEAN = 1, KIND_PER_RESIDUE = 2 };

static int ends_with(const char *s, size_t len, const char *suf) {
  size_t b = strlen(suf);
  return len >= b && !memcmp(s + len - b, suf, b);
}

// "ID.layerK[.mean|.per_residue]" -> 1 with *id_len, *layer, *kind; 0 otherwise.
static int parse_layer_name(const char *name, uint32_t *id_len, int *layer, int *kind) {
  size_t len = strlen(name);
  *kind = KIND_PLAIN;
  if (ends_with(name, len, ".mean")) len -= 5, *kind = KIND_MEAN;
  else if (ends_with(name, len, ".per_residue")) len -= 12, *kind = KIND_PER_RESIDUE;
  size_t d = len;
  while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9') d--;
  size_t nd = len - d;
  if (nd == 0 || nd > 6 || d < 7 || memcmp(name + d - 6, ".layer", 6)) return 0;
  if (d - 6 > UINT32_MAX) return 0;
  int k = 0;
  for (size_t i = d; i < len; i++) k = k * 10 + (name[i] - '0');
  *id_len = (uint32_t)(d - 6);
  *layer = k;
  return 1;
}

static int skipped_suffix(const char *name) {
  size_t len = strlen(name);
  return ends_with(name, len, ".tokens") || ends_with(name, len, ".logits") || ends_with(name, len, ".contacts") ||
         ends_with(name, len, ".attentions");
}

// Check t as a record and fill r->n_rows; sets n->dim from the first record.
static int check_record(st_source_t *n, const st_tensor_info_t *t, st_rec_t *r, ps_err_t *err) {
  const char *p = st_path(n->f);
  if (!st_dtype_is_float(t->dtype))
    return ps_err_set(err, PS_EUNSUPP, "%s: tensor '%s' has dtype %s: embeddings must be F32, F16, BF16 or F64", p, t->name,
                      st_dtype_name(t->dtype));
  if (t->ndim < 1 || t->ndim > 2)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has %d dimensions (embeddings are [d] or [L, d])", p, t->name, t->ndim);
  if (t->ndim == 1 && n->base.opts.level == EMB_LEVEL_RESIDUE)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' is 1-D [%" PRIu64 "]: residue level needs [L, d]", p, t->name,
                      t->shape[0]);
  uint64_t d = t->shape[t->ndim - 1], rows = t->ndim == 2 ? t->shape[0] : 1;
  if (d == 0 || d > EMB_MAX_DIM)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': embedding dimension %" PRIu64 " is out of range (1 .. %u)", p,
                      t->name, d, EMB_MAX_DIM);
  if (n->dim && d != n->dim)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has dimension %" PRIu64 " but the first record has %u", p, t->name, d,
                      n->dim);
  if (rows > UINT32_MAX || rows * d > ST_MAX_RECORD_FLOATS)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' ([%" PRIu64 ", %" PRIu64 "]) is larger than the %" PRIu64
                      "-float record limit", p, t->name, rows, d, ST_MAX_RECORD_FLOATS);
  n->dim = (uint32_t)d;
  r->n_rows = (uint32_t)rows;
  return 0;
}

typedef struct {
  size_t tensor;
  uint32_t id_len;
  int layer, kind;
  const char *name;
} lay_ent_t;

static int cmp_lay(const void *a, const void *b) {
  const lay_ent_t *x = a, *y = b;
  size_t m = x->id_len < y->id_len ? x->id_len : y->id_len;
  int c = memcmp(x->name, y->name, m);
  if (c) return c;
  if (x->id_len != y->id_len) return x->id_len < y->id_len ? -1 : 1;
  return x->tensor < y->tensor ? -1 : x->tensor > y->tensor;
}

static int cmp_rec(const void *a, const void *b) {
  const st_rec_t *x = a, *y = b;
  return x->tensor < y->tensor ? -1 : x->tensor > y->tensor;
}

static int open_layered(st_source_t *n, lay_ent_t *le, size_t nl, ps_err_t *err) {
  const char *p = st_path(n->f);
  int max_k = -1;
  for (size_t i = 0; i < nl; i++)
    if (le[i].layer > max_k) max_k = le[i].layer;
  int k = n->base.opts.layer >= 0 ? n->base.opts.layer : max_k;
  n->layer = k;
  int found = 0;
  for (size_t i = 0; i < nl && !found; i++) found = le[i].layer == k;
  if (!found) {
    char have[256] = "";
    size_t hl = 0;
    for (int l = 0; l <= max_k && hl < sizeof have - 16; l++) {
      for (size_t i = 0; i < nl; i++)
        if (le[i].layer == l) {
          hl += (size_t)snprintf(have + hl, sizeof have - hl, "%s%d", hl ? ", " : "", l);
          break;
        }
    }
    return ps_err_set(err, PS_ENOTFOUND, "%s: no tensor of layer %d (layers present: %s)", p, k, have);
  }
  qsort(le, nl, sizeof *le, cmp_lay);
  n->recs = ps_xcalloc(nl ? nl : 1, sizeof *n->recs);
  for (size_t g = 0; g < nl;) {
    size_t h = g;
    while (h < nl && le[h].id_len == le[g].id_len && !memcmp(le[h].name, le[g].name, le[g].id_len)) h++;
    // group [g, h): one id
    const lay_ent_t *mean = NULL, *per = NULL, *plain1 = NULL, *plain2 = NULL;
    for (size_t i = g; i < h; i++) {
      if (le[i].layer != k) {
        n->n_skipped++;
        continue;
      }
      const st_tensor_info_t *t = st_tensor_info(n->f, le[i].tensor);
      if (le[i].kind == KIND_MEAN) mean = &le[i];
      else if (le[i].kind == KIND_PER_RESIDUE) per = &le[i];
      else if (t->ndim == 1) plain1 = &le[i];
      else plain2 = &le[i];
    }
    const lay_ent_t *use;
    if (n->base.opts.level == EMB_LEVEL_RESIDUE) use = per ? per : plain2;
    else use = mean ? mean : plain1 ? plain1 : per ? per : plain2;
    size_t used = (size_t)!!mean + !!per + !!plain1 + !!plain2;
    if (!use) {
      if (used == 0)
        return ps_err_set(err, PS_ENOTFOUND, "%s: '%.*s' has layer tensors but none of layer %d (e.g. '%s')", p,
                          (int)le[g].id_len, le[g].name, k, le[g].name);
      return ps_err_set(err, PS_ENOTFOUND, "%s: '%.*s' has no per-residue tensor of layer %d for residue level (e.g. '%s')",
                        p, (int)le[g].id_len, le[g].name, k, le[g].name);
    }
    n->n_skipped += used - 1;
    st_rec_t *r = &n->recs[n->n_records];
    r->tensor = use->tensor;
    r->id_len = use->id_len;
    int rc = check_record(n, st_tensor_info(n->f, use->tensor), r, err);
    if (rc < 0) return rc;
    n->n_records++;
    g = h;
  }
  qsort(n->recs, n->n_records, sizeof *n->recs, cmp_rec);
  return 0;
}

// A file that holds tensors but none usable as embeddings (no float tensor, or only scalars and
// .tokens/.logits/... companions) is an error listing what it holds: streaming 0 records would
// look like success. An empty file (no tensors) stays a valid empty source (an empty proteome).
static int no_embeddings(st_source_t *n, ps_err_t *err) {
  size_t nt = st_n_tensors(n->f);
  char have[600];
  size_t o = 0;
  have[0] = 0;
  for (size_t i = 0; i < nt && o < sizeof have - 1; i++) {
    const st_tensor_info_t *t = st_tensor_info(n->f, i);
    if (i == 8) {
      o += (size_t)snprintf(have + o, sizeof have - o, ", ... (%zu more)", nt - i);
      break;
    }
    int w = snprintf(have + o, sizeof have - o, "%s'%s' %s [", i ? ", " : "", t->name, st_dtype_name(t->dtype));
    o += w > 0 ? (size_t)w : 0;
    for (int k = 0; k < t->ndim && o < sizeof have - 1; k++) {
      w = snprintf(have + o, sizeof have - o, "%s%" PRIu64, k ? ", " : "", t->shape[k]);
      o += w > 0 ? (size_t)w : 0;
    }
    if (o < sizeof have - 1) o += (size_t)snprintf(have + o, sizeof have - o, "]");
  }
  return ps_err_set(err, PS_ENOTFOUND,
                    "%s: no embedding tensor (F32/F16/BF16/F64, [d] or [L, d]) among its %zu tensors: %s", st_path(n->f),
                    nt, have);
}

static int name_in(const char *name, const char *const *ids, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] && !strcmp(ids[i], name)) return 1;
  return 0;
}

int safetensors_source_open(emb_source_t **out, const emb_source_opts_t *o, ps_err_t *err) {
  *out = NULL;
  st_source_t *n = ps_xcalloc(1, sizeof *n);
  n->base.vt = &st_vt;
  n->base.opts = *o;
  n->layer = -1;
  lay_ent_t *le = NULL;
  int rc;
  if ((rc = st_open(&n->f, o->path, err)) < 0) goto fail;
  size_t nt = st_n_tensors(n->f);
  const char *p = st_path(n->f);
  le = ps_xcalloc(nt ? nt : 1, sizeof *le);
  size_t nl = 0, n_float = 0, last_float = 0;
  for (size_t i = 0; i < nt; i++) {
    const st_tensor_info_t *t = st_tensor_info(n->f, i);
    lay_ent_t *e = &le[nl];
    if (parse_layer_name(t->name, &e->id_len, &e->layer, &e->kind)) {
      e->tensor = i;
      e->name = t->name;
      nl++;
    }
    if (st_dtype_is_float(t->dtype) && t->ndim > 0 && !skipped_suffix(t->name)) {
      n_float++;
      last_float = i;
    }
  }
  if (nl > 0) {
    n->layout = LAYOUT_LAYERED;
    n->n_skipped = nt - nl;
    if ((rc = open_layered(n, le, nl, err)) < 0) goto fail;
  } else if (o->level == EMB_LEVEL_PROTEIN && n_float == 1 && st_tensor_info(n->f, last_float)->ndim == 2 &&
             !(o->fallback_ids && name_in(st_tensor_info(n->f, last_float)->name, o->fallback_ids, o->n_fallback_ids))) {
    n->layout = LAYOUT_MATRIX;
    n->mat = st_tensor_info(n->f, last_float);
    n->n_skipped = nt - 1;
    n->n_records = n->mat->shape[0];
    uint64_t d = n->mat->shape[1];
    if (d == 0 || d > EMB_MAX_DIM) {  // one row a record: only the row must fit
      rc = ps_err_set(err, PS_EDIM, "%s: tensor '%s': embedding dimension %" PRIu64 " is out of range (1 .. %u)", p,
                      n->mat->name, d, EMB_MAX_DIM);
      goto fail;
    }
    n->dim = (uint32_t)d;
    if ((rc = npy_ids_open(&n->ids, o, p, n->n_records, err)) < 0) goto fail;
  } else {
    n->layout = LAYOUT_PER_PROTEIN;
    n->recs = ps_xcalloc(nt ? nt : 1, sizeof *n->recs);
    for (size_t i = 0; i < nt; i++) {
      const st_tensor_info_t *t = st_tensor_info(n->f, i);
      if (!st_dtype_is_float(t->dtype) || t->ndim == 0 || skipped_suffix(t->name)) {
        n->n_skipped++;
        continue;
      }
      if (!t->name[0]) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: tensor %zu (byte %" PRIu64 ") has an empty name", p, i, t->offset);
        goto fail;
      }
      size_t len = strlen(t->name);
      if (len > UINT32_MAX) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: tensor %zu: name too long", p, i);
        goto fail;
      }
      st_rec_t *r = &n->recs[n->n_records];
      r->tensor = i;
      r->id_len = (uint32_t)len;
      if ((rc = check_record(n, t, r, err)) < 0) goto fail;
      n->n_records++;
    }
    if (n->n_records == 0 && nt > 0) {
      rc = no_embeddings(n, err);
      goto fail;
    }
  }
  free(le);
  *out = &n->base;
  return 0;
fail:
  free(le);
  st_src_destroy(&n->base);
  return rc;
}
