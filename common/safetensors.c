// safetensors.c — see safetensors.h.
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"
#include "strmap.h"

#define CONV_BYTES ((size_t)64 * 1024)

// ---- dtypes --------------------------------------------------------------------------------
static const struct {
  const char *name;
  size_t size;
} DTYPES[] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2},   [ST_I32] = {"I32", 4},
    [ST_U32] = {"U32", 4},   [ST_I64] = {"I64", 8},   [ST_U64] = {"U64", 8},
    [ST_F16] = {"F16", 2},   [ST_BF16] = {"BF16", 2}, [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8},   [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

const char *st_dtype_name(st_dtype_t t) { return (size_t)t < N_DTYPES ? DTYPES[t].name : "?"; }
size_t st_dtype_size(st_dtype_t t) { return (size_t)t < N_DTYPES ? DTYPES[t].size : 0; }

int st_dtype_from_name(const char *s) {
  for (size_t i = 0; i < N_DTYPES; i++)
    if (!strcmp(s, DTYPES[i].name)) return (int)i;
  return -1;
}

static int dtype_is_float(st_dtype_t t) { return t == ST_F32 || t == ST_F16 || t == ST_BF16 || t == ST_F64; }

static float e4m3_to_float(uint8_t b) {
  int sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 7;
  float v;
  if (exp == 15 && man == 7) return sign ? -NAN : NAN;
  if (exp == 0) v = (float)man / 8.0f * (1.0f / 64.0f);
  else v = (1.0f + (float)man / 8.0f) * (exp >= 7 ? (float)(1u << (exp - 7)) : 1.0f / (float)(1u << (7 - exp)));
  return sign ? -v : v;
}

// n elements of dtype t at src (little-endian) -> float
static void convert(st_dtype_t t, const uint8_t *src, size_t n, float *dst) {
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = src + i * DTYPES[t].size;
    switch (t) {
    case ST_BOOL: dst[i] = p[0] ? 1.0f : 0.0f; break;
    case ST_U8: dst[i] = (float)p[0]; break;
    case ST_I8: dst[i] = (float)(int8_t)p[0]; break;
    case ST_I16: { int16_t x; memcpy(&x, p, 2); dst[i] = (float)x; break; }
    case ST_U16: { uint16_t x; memcpy(&x, p, 2); dst[i] = (float)x; break; }
    case ST_I32: { int32_t x; memcpy(&x, p, 4); dst[i] = (float)x; break; }
    case ST_U32: { uint32_t x; memcpy(&x, p, 4); dst[i] = (float)x; break; }
    case ST_I64: { int64_t x; memcpy(&x, p, 8); dst[i] = (float)x; break; }
    case ST_U64: { uint64_t x; memcpy(&x, p, 8); dst[i] = (float)x; break; }
    case ST_F16: { uint16_t x; memcpy(&x, p, 2); dst[i] = emb_half_to_float(x); break; }
    case ST_BF16: { uint16_t x; memcpy(&x, p, 2); dst[i] = emb_bf16_to_float(x); break; }
    case ST_F32: memcpy(&dst[i], p, 4); break;
    case ST_F64: { double x; memcpy(&x, p, 8); dst[i] = (float)x; break; }
    case ST_F8_E4M3: dst[i] = e4m3_to_float(p[0]); break;
    case ST_F8_E5M2: dst[i] = emb_half_to_float((uint16_t)(p[0] << 8)); break;
    }
  }
}

// ---- reader --------------------------------------------------------------------------------
struct st_file {
  int fd;
  char *path;
  uint64_t file_size, data_start;
  st_tensor_info_t *t;  // sorted by offset
  size_t n;
  strmap_t *by_name;    // name -> index in t
  char **meta_k, **meta_v;
  size_t n_meta;
};

const char *st_path(const st_file_t *f) { return f->path; }
size_t st_n_tensors(const st_file_t *f) { return f->n; }
const st_tensor_info_t *st_tensor_info(const st_file_t *f, size_t i) { return i < f->n ? &f->t[i] : NULL; }

const st_tensor_info_t *st_tensor_find(const st_file_t *f, const char *name) {
  uint64_t i;
  return strmap_get(f->by_name, name, &i) ? &f->t[i] : NULL;
}

const char *st_metadata(const st_file_t *f, const char *key) {
  for (size_t i = 0; i < f->n_meta; i++)
    if (!strcmp(f->meta_k[i], key)) return f->meta_v[i];
  return NULL;
}

size_t st_n_metadata(const st_file_t *f) { return f->n_meta; }

int st_metadata_at(const st_file_t *f, size_t i, const char **key, const char **value) {
  if (i >= f->n_meta) return PS_ENOTFOUND;
  *key = f->meta_k[i];
  *value = f->meta_v[i];
  return 0;
}

void st_close(st_file_t **fp) {
  if (!fp || !*fp) return;
  st_file_t *f = *fp;
  if (f->fd >= 0) close(f->fd);
  for (size_t i = 0; i < f->n; i++) free((char *)f->t[i].name);
  for (size_t i = 0; i < f->n_meta; i++) {
    free(f->meta_k[i]);
    free(f->meta_v[i]);
  }
  free(f->meta_k);
  free(f->meta_v);
  free(f->t);
  strmap_destroy(&f->by_name);
  free(f->path);
  free(f);
  *fp = NULL;
}

// pread exactly len bytes at off; 0, PS_ETRUNC (file shorter) or -errno.
static int pread_full(int fd, void *buf, size_t len, uint64_t off) {
  uint8_t *p = buf;
  while (len) {
    ssize_t r = pread(fd, p, len, (off_t)off);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return PS_ETRUNC;
    p += r;
    len -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static int json_u64(const json_t *v, uint64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

// One header entry -> info (name not set). 0 or <0 with err naming file and tensor.
static int parse_entry(const st_file_t *f, const char *key, const json_t *v, st_tensor_info_t *ti, ps_err_t *err) {
  const char *p = f->path;
  if (!json_is_object(v)) return ps_err_set(err, PS_EFORMAT, "%s: header: tensor '%s' is not a JSON object", p, key);
  const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
               *of = json_object_get(v, "data_offsets");
  if (!json_is_string(dt)) return ps_err_set(err, PS_EFORMAT, "%s: header: tensor '%s' has no \"dtype\" string", p, key);
  int d = st_dtype_from_name(json_string_value(dt));
  if (d < 0)
    return ps_err_set(err, PS_EUNSUPP, "%s: header: tensor '%s' has unknown dtype \"%s\"", p, key, json_string_value(dt));
  ti->dtype = (st_dtype_t)d;
  if (!json_is_array(sh)) return ps_err_set(err, PS_EFORMAT, "%s: header: tensor '%s' has no \"shape\" array", p, key);
  size_t nd = json_array_size(sh);
  if (nd > ST_MAX_DIMS)
    return ps_err_set(err, PS_EDIM, "%s: header: tensor '%s' has %zu dimensions (at most %d)", p, key, nd, ST_MAX_DIMS);
  ti->ndim = (int)nd;
  uint64_t n = 1;
  int overflow = 0, zero = 0;
  for (size_t i = 0; i < nd; i++) {
    if (json_u64(json_array_get(sh, i), &ti->shape[i]) < 0)
      return ps_err_set(err, PS_EFORMAT, "%s: header: tensor '%s': shape[%zu] is not a non-negative integer", p, key, i);
    if (ti->shape[i] == 0) zero = 1;
    else if (n > UINT64_MAX / ti->shape[i]) overflow = 1;
    n *= ti->shape[i];
  }
  size_t es = st_dtype_size(ti->dtype);
  if (zero) n = 0, overflow = 0;  // a zero dimension makes the product 0 whatever came before
  if (overflow || n > UINT64_MAX / es)
    return ps_err_set(err, PS_EFORMAT, "%s: header: tensor '%s': shape overflows", p, key);
  ti->n_elems = n;
  ti->nbytes = n * es;
  uint64_t b, e;
  if (!json_is_array(of) || json_array_size(of) != 2 || json_u64(json_array_get(of, 0), &b) < 0 ||
      json_u64(json_array_get(of, 1), &e) < 0)
    return ps_err_set(err, PS_EFORMAT, "%s: header: tensor '%s' has no \"data_offsets\" [begin, end] of non-negative integers",
                      p, key);
  uint64_t data_size = f->file_size - f->data_start;
  if (b > e || e > data_size)
    return ps_err_set(err, e > data_size ? PS_ETRUNC : PS_EFORMAT,
                      "%s: header: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] out of range (data buffer is %" PRIu64
                      " bytes, from byte %" PRIu64 ")",
                      p, key, b, e, data_size, f->data_start);
  if (e - b != ti->nbytes)
    return ps_err_set(err, PS_EFORMAT,
                      "%s: header: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                      " bytes but %s x %" PRIu64 " elements need %" PRIu64,
                      p, key, b, e, e - b, st_dtype_name(ti->dtype), n, ti->nbytes);
  ti->offset = f->data_start + b;
  return 0;
}

typedef struct {
  st_tensor_info_t t;
  size_t order;
} sort_ent_t;

static int cmp_offset(const void *a, const void *b) {
  const sort_ent_t *x = a, *y = b;
  if (x->t.offset != y->t.offset) return x->t.offset < y->t.offset ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

int st_open(st_file_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  st_file_t *f = ps_xcalloc(1, sizeof *f);
  f->path = ps_xstrdup(path);
  f->fd = -1;
  char *hdr = NULL;
  json_t *root = NULL;
  sort_ent_t *ents = NULL;
  size_t n_ents = 0;
  int rc = 0;
  if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = ps_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  struct stat st;
  if (fstat(f->fd, &st) != 0) {
    rc = ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
    goto fail;
  }
  f->file_size = (uint64_t)st.st_size;
  uint8_t lenb[8];
  if (f->file_size < 8 || (rc = pread_full(f->fd, lenb, 8, 0)) < 0) {
    rc = ps_err_set(err, rc < 0 && rc != PS_ETRUNC ? rc : PS_ETRUNC,
                    "%s: byte 0: file of %" PRIu64 " bytes is too short for the 8-byte safetensors header length", path,
                    f->file_size);
    goto fail;
  }
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | lenb[i];
  if (hl > ST_MAX_HEADER) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: byte 0: header length %" PRIu64 " exceeds the %" PRIu64
                    "-byte limit (not a safetensors file?)", path, hl, ST_MAX_HEADER);
    goto fail;
  }
  if (hl < 2) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: byte 0: header length %" PRIu64 " is too small for a JSON object", path, hl);
    goto fail;
  }
  if (8 + hl > f->file_size) {
    rc = ps_err_set(err, PS_ETRUNC, "%s: byte 8: the %" PRIu64 "-byte header runs past the end of the file (%" PRIu64
                    " bytes): truncated?", path, hl, f->file_size);
    goto fail;
  }
  f->data_start = 8 + hl;
  hdr = ps_xmalloc((size_t)hl);
  if ((rc = pread_full(f->fd, hdr, (size_t)hl, 8)) < 0) {
    rc = ps_err_set(err, rc, "%s: byte 8: reading the header: %s", path, rc == PS_ETRUNC ? "file ends early" : strerror(-rc));
    goto fail;
  }
  if (hdr[0] != '{') {
    rc = ps_err_set(err, PS_EFORMAT, "%s: byte 8: the header does not start with '{' (not a safetensors file?)", path);
    goto fail;
  }
  json_error_t je;
  root = json_loadb(hdr, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: byte %" PRIu64 ": bad JSON header: %s", path, 8 + (uint64_t)je.position, je.text);
    goto fail;
  }
  free(hdr);
  hdr = NULL;
  if (!json_is_object(root)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: byte 8: the header is not a JSON object", path);
    goto fail;
  }
  size_t cap = json_object_size(root);
  ents = ps_xcalloc(cap ? cap : 1, sizeof *ents);
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (!strcmp(key, "__metadata__")) {
      if (!json_is_object(v)) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: header: __metadata__ is not a JSON object", path);
        goto fail;
      }
      size_t nm = json_object_size(v);
      f->meta_k = ps_xcalloc(nm ? nm : 1, sizeof(char *));
      f->meta_v = ps_xcalloc(nm ? nm : 1, sizeof(char *));
      const char *mk;
      json_t *mv;
      json_object_foreach(v, mk, mv) {
        if (!json_is_string(mv)) {
          rc = ps_err_set(err, PS_EFORMAT, "%s: header: __metadata__ value of '%s' is not a string", path, mk);
          goto fail;
        }
        f->meta_k[f->n_meta] = ps_xstrdup(mk);
        f->meta_v[f->n_meta++] = ps_xstrdup(json_string_value(mv));
      }
      continue;
    }
    sort_ent_t *e = &ents[n_ents];
    if ((rc = parse_entry(f, key, v, &e->t, err)) < 0) goto fail;
    e->t.name = ps_xstrdup(key);
    e->order = n_ents++;
  }
  json_decref(root);
  root = NULL;
  qsort(ents, n_ents, sizeof *ents, cmp_offset);
  uint64_t end = f->data_start;
  const char *end_name = NULL;
  for (size_t i = 0; i < n_ents; i++) {
    if (ents[i].t.offset < end) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: header: tensor '%s' (bytes %" PRIu64 "..%" PRIu64 ") overlaps tensor '%s' (ends at byte %" PRIu64 ")",
                      path, ents[i].t.name, ents[i].t.offset, ents[i].t.offset + ents[i].t.nbytes, end_name, end);
      goto fail;
    }
    if (ents[i].t.nbytes) {
      end = ents[i].t.offset + ents[i].t.nbytes;
      end_name = ents[i].t.name;
    }
  }
  f->t = ps_xcalloc(n_ents ? n_ents : 1, sizeof *f->t);
  f->by_name = strmap_new(n_ents);
  for (size_t i = 0; i < n_ents; i++) {
    f->t[i] = ents[i].t;
    ents[i].t.name = NULL;
    strmap_put(f->by_name, f->t[i].name, i);
  }
  f->n = n_ents;
  free(ents);
  *out = f;
  return 0;
fail:
  for (size_t i = 0; i < n_ents; i++) free((char *)ents[i].t.name);
  free(ents);
  json_decref(root);
  free(hdr);
  st_close(&f);
  return rc;
}

// Read bytes [first, first+len) of t. ctx (may be NULL) says which record asked, for messages.
static int read_raw_ctx(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t len, void *out,
                        const char *ctx, ps_err_t *err) {
  if (first > t->nbytes || len > t->nbytes - first)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': bytes [%" PRIu64 ", +%" PRIu64 ") are outside its %" PRIu64 " bytes",
                      f->path, t->name, first, len, t->nbytes);
  int rc = pread_full(f->fd, out, (size_t)len, t->offset + first);
  if (rc < 0)
    return ps_err_set(err, rc, "%s: %s%stensor '%s' (byte %" PRIu64 "): %s", f->path, ctx ? ctx : "", ctx ? ", " : "",
                      t->name, t->offset + first,
                      rc == PS_ETRUNC ? "file ends early (truncated after it was opened?)" : strerror(-rc));
  return 0;
}

int st_read_raw(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t len, void *out, ps_err_t *err) {
  return read_raw_ctx(f, t, first, len, out, NULL, err);
}

static int read_range_ctx(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t count, float *out,
                          const char *ctx, ps_err_t *err) {
  if (first > t->n_elems || count > t->n_elems - first)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': elements [%" PRIu64 ", +%" PRIu64 ") are outside its %" PRIu64,
                      f->path, t->name, first, count, t->n_elems);
  size_t es = st_dtype_size(t->dtype);
  if (t->dtype == ST_F32) return read_raw_ctx(f, t, first * 4, count * 4, out, ctx, err);
  uint8_t buf[4096];
  size_t per = sizeof buf / es;
  uint64_t done = 0;
  while (done < count) {
    size_t k = count - done < per ? (size_t)(count - done) : per;
    int rc = read_raw_ctx(f, t, (first + done) * es, (uint64_t)k * es, buf, ctx, err);
    if (rc < 0) return rc;
    convert(t->dtype, buf, k, out + done);
    done += k;
  }
  return 0;
}

int st_read_range_f32(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t count, float *out,
                      ps_err_t *err) {
  return read_range_ctx(f, t, first, count, out, NULL, err);
}

int st_read_f32(st_file_t *f, const char *name, float *out, uint64_t count, ps_err_t *err) {
  const st_tensor_info_t *t = st_tensor_find(f, name);
  if (!t) return ps_err_set(err, PS_ENOTFOUND, "%s: no tensor named '%s'", f->path, name);
  if (count != t->n_elems)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has %" PRIu64 " elements, the caller expects %" PRIu64, f->path, name,
                      t->n_elems, count);
  return read_range_ctx(f, t, 0, count, out, NULL, err);
}

// ---- embedding source ----------------------------------------------------------------------
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
    if ((rc = read_range_ctx(n->f, n->mat, n->rec * n->dim, n->dim, n->rows, ctx, err)) < 0) return rc;
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
    if ((rc = read_range_ctx(n->f, t, 0, nv, n->rows, ctx, err)) < 0) return rc;
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
  if (!dtype_is_float(t->dtype))
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
    if (dtype_is_float(t->dtype) && t->ndim > 0 && !skipped_suffix(t->name)) {
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
      if (!dtype_is_float(t->dtype) || t->ndim == 0 || skipped_suffix(t->name)) {
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

// ---- writer --------------------------------------------------------------------------------
struct st_writer {
  char *path, *tmp, *data_tmp;
  FILE *data;
  uint64_t data_len;
  json_t *tensors;   // name -> {dtype, shape, data_offsets}, in the order added
  json_t *meta;      // NULL until the first metadata entry
  uint64_t n;
  // tensor being written (between begin and end)
  int open;
  json_t *cur;       // its header entry (owned until end)
  char *cur_name;
  st_dtype_t cur_dtype;
  uint64_t cur_need, cur_done, cur_begin;
  uint16_t *conv;    // CONV_BYTES
};

static uint16_t float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet NaN, sign kept
  x += 0x7fffu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

static void writer_free(st_writer_t *w) {
  if (w->data) fclose(w->data);
  json_decref(w->tensors);
  json_decref(w->meta);
  json_decref(w->cur);
  free(w->cur_name);
  free(w->conv);
  free(w->path);
  free(w->tmp);
  free(w->data_tmp);
  free(w);
}

void st_writer_abort(st_writer_t **wp) {
  if (!wp || !*wp) return;
  st_writer_t *w = *wp;
  if (w->data) {
    fclose(w->data);
    w->data = NULL;
  }
  unlink(w->data_tmp);
  unlink(w->tmp);
  writer_free(w);
  *wp = NULL;
}

int st_writer_open(st_writer_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  st_writer_t *w = ps_xcalloc(1, sizeof *w);
  size_t l = strlen(path);
  w->path = ps_xstrdup(path);
  w->tmp = ps_xmalloc(l + 5);
  snprintf(w->tmp, l + 5, "%s.tmp", path);
  w->data_tmp = ps_xmalloc(l + 10);
  snprintf(w->data_tmp, l + 10, "%s.data.tmp", path);
  w->tensors = json_object();
  w->conv = ps_xmalloc(CONV_BYTES);
  if (!(w->data = fopen(w->data_tmp, "w+b"))) {
    int rc = ps_err_set(err, -errno, "%s: cannot create: %s", w->data_tmp, strerror(errno));
    writer_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

int st_writer_set_metadata(st_writer_t *w, const char *key, const char *value, ps_err_t *err) {
  json_t *k = json_string(key), *v = json_string(value);
  int bad = !k || !v;
  json_decref(k);  // only validates the key
  if (bad) {
    json_decref(v);
    return ps_err_set(err, PS_EFORMAT, "%s: metadata '%s': key and value must be valid UTF-8", w->path, key);
  }
  if (!w->meta) w->meta = json_object();
  json_object_set_new(w->meta, key, v);
  return 0;
}

int st_writer_begin(st_writer_t *w, const char *name, st_dtype_t dtype, const uint64_t *shape, int ndim, ps_err_t *err) {
  if (w->open) return ps_err_set(err, PS_ESTATE, "%s: tensor '%s' begun before '%s' ended", w->path, name, w->cur_name);
  if (!name[0] || !strcmp(name, "__metadata__"))
    return ps_err_set(err, PS_EFORMAT, "%s: tensor name '%s' is not allowed", w->path, name);
  json_t *js = json_string(name);
  if (!js) return ps_err_set(err, PS_EFORMAT, "%s: tensor name is not valid UTF-8", w->path);
  json_decref(js);
  if (json_object_get(w->tensors, name))
    return ps_err_set(err, PS_EFORMAT, "%s: tensor '%s' added twice", w->path, name);
  if (ndim < 0 || ndim > ST_MAX_DIMS)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': %d dimensions (0 .. %d)", w->path, name, ndim, ST_MAX_DIMS);
  if (dtype != ST_F32 && dtype != ST_F16 && dtype != ST_BF16 && dtype != ST_I64)
    return ps_err_set(err, PS_EUNSUPP, "%s: tensor '%s': the writer stores F32, F16, BF16 or I64, not %s", w->path, name,
                      st_dtype_name(dtype));
  uint64_t ne = 1;
  json_t *sh = json_array();
  for (int i = 0; i < ndim; i++) {
    if (shape[i] > (uint64_t)INT64_MAX || (shape[i] && ne > (UINT64_MAX >> 4) / shape[i])) {
      json_decref(sh);
      return ps_err_set(err, PS_EDIM, "%s: tensor '%s': shape overflows", w->path, name);
    }
    ne *= shape[i];
    json_array_append_new(sh, json_integer((json_int_t)shape[i]));
  }
  w->cur = json_object();
  json_object_set_new(w->cur, "dtype", json_string(st_dtype_name(dtype)));
  json_object_set_new(w->cur, "shape", sh);
  w->cur_name = ps_xstrdup(name);
  w->cur_dtype = dtype;
  w->cur_need = ne;
  w->cur_done = 0;
  w->cur_begin = w->data_len;
  w->open = 1;
  return 0;
}

static int write_data(st_writer_t *w, const void *p, size_t bytes, ps_err_t *err) {
  errno = 0;
  if (bytes && fwrite(p, 1, bytes, w->data) != bytes) {
    int e = errno ? errno : EIO;
    return ps_err_set(err, -e, "%s: tensor '%s': write at byte %" PRIu64 ": %s", w->data_tmp, w->cur_name, w->data_len,
                      strerror(e));
  }
  w->data_len += bytes;
  return 0;
}

static int append_check(st_writer_t *w, uint64_t count, ps_err_t *err) {
  if (!w->open) return ps_err_set(err, PS_ESTATE, "%s: data appended outside begin/end", w->path);
  if (count > w->cur_need - w->cur_done)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': %" PRIu64 " values appended after %" PRIu64 " of %" PRIu64, w->path,
                      w->cur_name, count, w->cur_done, w->cur_need);
  return 0;
}

int st_writer_append_f32(st_writer_t *w, const float *data, uint64_t count, ps_err_t *err) {
  int rc = append_check(w, count, err);
  if (rc < 0) return rc;
  if (w->cur_dtype == ST_I64)
    return ps_err_set(err, PS_ESTATE, "%s: tensor '%s': float data appended to an I64 tensor", w->path, w->cur_name);
  if (w->cur_dtype == ST_F32) {
    if ((rc = write_data(w, data, (size_t)count * 4, err)) < 0) return rc;
  } else {
    size_t per = CONV_BYTES / 2;
    for (uint64_t done = 0; done < count;) {
      size_t k = count - done < per ? (size_t)(count - done) : per;
      for (size_t i = 0; i < k; i++)
        w->conv[i] = w->cur_dtype == ST_F16 ? emb_float_to_half(data[done + i]) : float_to_bf16(data[done + i]);
      if ((rc = write_data(w, w->conv, k * 2, err)) < 0) return rc;
      done += k;
    }
  }
  w->cur_done += count;
  return 0;
}

int st_writer_end(st_writer_t *w, ps_err_t *err) {
  if (!w->open) return ps_err_set(err, PS_ESTATE, "%s: end without begin", w->path);
  if (w->cur_done != w->cur_need)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': %" PRIu64 " values written, its shape needs %" PRIu64, w->path,
                      w->cur_name, w->cur_done, w->cur_need);
  json_t *of = json_array();
  json_array_append_new(of, json_integer((json_int_t)w->cur_begin));
  json_array_append_new(of, json_integer((json_int_t)w->data_len));
  json_object_set_new(w->cur, "data_offsets", of);
  json_object_set_new(w->tensors, w->cur_name, w->cur);
  w->cur = NULL;
  free(w->cur_name);
  w->cur_name = NULL;
  w->open = 0;
  w->n++;
  return 0;
}

int st_writer_add_f32(st_writer_t *w, const char *name, st_dtype_t dtype, const uint64_t *shape, int ndim,
                      const float *data, ps_err_t *err) {
  if (dtype == ST_I64) return ps_err_set(err, PS_EUNSUPP, "%s: tensor '%s': use st_writer_add_i64", w->path, name);
  int rc = st_writer_begin(w, name, dtype, shape, ndim, err);
  if (rc < 0) return rc;
  if ((rc = st_writer_append_f32(w, data, w->cur_need, err)) < 0) return rc;
  return st_writer_end(w, err);
}

int st_writer_add_i64(st_writer_t *w, const char *name, const uint64_t *shape, int ndim, const int64_t *data,
                      ps_err_t *err) {
  int rc = st_writer_begin(w, name, ST_I64, shape, ndim, err);
  if (rc < 0) return rc;
  if ((rc = write_data(w, data, (size_t)w->cur_need * 8, err)) < 0) return rc;
  w->cur_done = w->cur_need;
  return st_writer_end(w, err);
}

uint64_t st_writer_count(const st_writer_t *w) { return w ? w->n : 0; }

static void fsync_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);  // best effort
    close(fd);
  }
}

int st_writer_close(st_writer_t **wp, ps_err_t *err) {
  if (!wp || !*wp) return 0;
  st_writer_t *w = *wp;
  int rc = 0;
  char *hdr = NULL;
  FILE *o = NULL;
  if (w->open) {
    rc = ps_err_set(err, PS_ESTATE, "%s: closed while tensor '%s' is unfinished", w->path, w->cur_name);
    goto fail;
  }
  json_t *root = json_object();
  if (w->meta) json_object_set(root, "__metadata__", w->meta);
  json_object_update(root, w->tensors);
  hdr = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  if (!hdr) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: cannot encode the header", w->path);
    goto fail;
  }
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
  if (padded > ST_MAX_HEADER) {
    rc = ps_err_set(err, PS_EDIM, "%s: header of %zu bytes exceeds the %" PRIu64 "-byte limit", w->path, padded,
                    ST_MAX_HEADER);
    goto fail;
  }
  if (fflush(w->data) != 0 || fseeko(w->data, 0, SEEK_SET) != 0) {
    rc = ps_err_set(err, -errno, "%s: %s", w->data_tmp, strerror(errno));
    goto fail;
  }
  if (!(o = fopen(w->tmp, "wb"))) {
    rc = ps_err_set(err, -errno, "%s: cannot create: %s", w->tmp, strerror(errno));
    goto fail;
  }
  uint8_t lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  errno = 0;
  int ok = fwrite(lenb, 1, 8, o) == 8 && fwrite(hdr, 1, hl, o) == hl;
  for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', o) != EOF;
  uint64_t copied = 0;
  while (ok && copied < w->data_len) {
    size_t k = fread(w->conv, 1, CONV_BYTES, w->data);
    if (k == 0) {
      rc = ps_err_set(err, PS_EIO, "%s: byte %" PRIu64 ": read back failed", w->data_tmp, copied);
      goto fail;
    }
    ok = fwrite(w->conv, 1, k, o) == k;
    copied += k;
  }
  if (!ok || fflush(o) != 0 || fsync(fileno(o)) != 0) {
    int e = errno ? errno : EIO;
    rc = ps_err_set(err, -e, "%s: write: %s", w->tmp, strerror(e));
    goto fail;
  }
  int crc = fclose(o);
  o = NULL;
  if (crc != 0) {
    rc = ps_err_set(err, -errno, "%s: close: %s", w->tmp, strerror(errno));
    goto fail;
  }
  if (rename(w->tmp, w->path) != 0) {
    rc = ps_err_set(err, -errno, "%s: rename from %s: %s", w->path, w->tmp, strerror(errno));
    goto fail;
  }
  fsync_dir_of(w->path);
  free(hdr);
  fclose(w->data);
  w->data = NULL;
  unlink(w->data_tmp);
  writer_free(w);
  *wp = NULL;
  return 0;
fail:
  if (o) fclose(o);
  free(hdr);
  st_writer_abort(wp);
  return rc;
}
