// safetensors.c — the safetensors reader: dtypes, the header (JSON) checked at open, tensor reads
// with conversion to float. The embedding source is safetensors_src.c, the writer
// safetensors_write.c. See safetensors.h.
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

int st_dtype_is_float(st_dtype_t t) { return t == ST_F32 || t == ST_F16 || t == ST_BF16 || t == ST_F64; }

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

int st_read_range_f32_ctx(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t count, float *out,
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
  return st_read_range_f32_ctx(f, t, first, count, out, NULL, err);
}

int st_read_f32(st_file_t *f, const char *name, float *out, uint64_t count, ps_err_t *err) {
  const st_tensor_info_t *t = st_tensor_find(f, name);
  if (!t) return ps_err_set(err, PS_ENOTFOUND, "%s: no tensor named '%s'", f->path, name);
  if (count != t->n_elems)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has %" PRIu64 " elements, the caller expects %" PRIu64, f->path, name,
                      t->n_elems, count);
  return st_read_range_f32_ctx(f, t, 0, count, out, NULL, err);
}
