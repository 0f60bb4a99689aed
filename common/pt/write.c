// write.c — pt_write_extract: one sequence's extract.py dict as a torch.save archive, float32
// storages (protsae synth's pt/ and residues_pt/ output). The pickle is protocol 2 as CPython's
// pickler writes torch.save's objects; the zip is built by libzip in memory (stored entries, a
// fixed timestamp, so equal input gives equal bytes) and written with ps_write_file_atomic.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zip.h>

#include "internal.h"
#include "io.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "write.c stores the caller's float32 arrays as they are: little-endian hosts only"
#endif

typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf_t;

static void b_put(buf_t *b, const void *x, size_t n) {
  if (b->n + n > b->cap) {
    while (b->n + n > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
    b->p = ps_xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, x, n);
  b->n += n;
}
static void b_u8(buf_t *b, uint8_t x) { b_put(b, &x, 1); }
static void b_u16(buf_t *b, uint16_t x) {
  uint8_t t[2] = {(uint8_t)x, (uint8_t)(x >> 8)};
  b_put(b, t, 2);
}
static void b_u32(buf_t *b, uint32_t x) {
  uint8_t t[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
  b_put(b, t, 4);
}

// The pickle, as CPython's C pickler (protocol 2) writes torch.save's objects.
typedef struct pkw {
  buf_t b;
  uint32_t memo;  // next memo index
  int64_t m_rebuild, m_storage, m_type, m_cpu, m_od;
} pkw_t;

static void pk_put(pkw_t *w) {
  if (w->memo < 256) {
    b_u8(&w->b, 'q');
    b_u8(&w->b, (uint8_t)w->memo);
  } else {
    b_u8(&w->b, 'r');
    b_u32(&w->b, w->memo);
  }
  w->memo++;
}
static void pk_get(pkw_t *w, int64_t idx) {
  if (idx < 256) {
    b_u8(&w->b, 'h');
    b_u8(&w->b, (uint8_t)idx);
  } else {
    b_u8(&w->b, 'j');
    b_u32(&w->b, (uint32_t)idx);
  }
}
static void pk_int(pkw_t *w, int64_t x) {
  if (x >= 0 && x <= 0xff) {
    b_u8(&w->b, 'K');
    b_u8(&w->b, (uint8_t)x);
  } else if (x >= 0 && x <= 0xffff) {
    b_u8(&w->b, 'M');
    b_u16(&w->b, (uint16_t)x);
  } else if (x >= INT32_MIN && x <= INT32_MAX) {
    b_u8(&w->b, 'J');
    b_u32(&w->b, (uint32_t)(int32_t)x);
  } else {  // LONG1: minimal two's complement
    uint8_t t[8];
    int n = 8;
    for (int k = 0; k < 8; k++) t[k] = (uint8_t)((uint64_t)x >> (8 * k));
    while (n > 1 && ((t[n - 1] == 0 && !(t[n - 2] & 0x80)) || (t[n - 1] == 0xff && (t[n - 2] & 0x80)))) n--;
    b_u8(&w->b, 0x8a);
    b_u8(&w->b, (uint8_t)n);
    b_put(&w->b, t, (size_t)n);
  }
}
static void pk_str(pkw_t *w, const char *s) {  // BINUNICODE + BINPUT
  size_t n = strlen(s);
  b_u8(&w->b, 'X');
  b_u32(&w->b, (uint32_t)n);
  b_put(&w->b, s, n);
  pk_put(w);
}
static void pk_str_once(pkw_t *w, const char *s, int64_t *memo) {
  if (*memo >= 0) {
    pk_get(w, *memo);
    return;
  }
  *memo = w->memo;
  pk_str(w, s);
}
static void pk_global_once(pkw_t *w, const char *mod, const char *name, int64_t *memo) {
  if (*memo >= 0) {
    pk_get(w, *memo);
    return;
  }
  b_u8(&w->b, 'c');
  b_put(&w->b, mod, strlen(mod));
  b_u8(&w->b, '\n');
  b_put(&w->b, name, strlen(name));
  b_u8(&w->b, '\n');
  *memo = w->memo;
  pk_put(w);
}
static void pk_tuple_ints(pkw_t *w, const int64_t *v, int n) {
  if (n == 0) {
    b_u8(&w->b, ')');
    return;
  }
  if (n > 3) b_u8(&w->b, '(');
  for (int k = 0; k < n; k++) pk_int(w, v[k]);
  b_u8(&w->b, n > 3 ? 't' : (uint8_t)(0x84 + n));
  pk_put(w);
}

// torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())
static void pk_tensor(pkw_t *w, const char *storage_type, uint64_t key, uint64_t numel, const int64_t *size, int ndim) {
  int64_t stride[2];
  int64_t acc = 1;
  for (int k = ndim - 1; k >= 0; k--) {
    stride[k] = acc;
    acc *= size[k];
  }
  char ks[24];
  snprintf(ks, sizeof ks, "%llu", (unsigned long long)key);
  pk_global_once(w, "torch._utils", "_rebuild_tensor_v2", &w->m_rebuild);
  b_u8(&w->b, '(');
  b_u8(&w->b, '(');
  pk_str_once(w, "storage", &w->m_storage);
  pk_global_once(w, "torch", storage_type, &w->m_type);
  pk_str(w, ks);
  pk_str_once(w, "cpu", &w->m_cpu);
  pk_int(w, (int64_t)numel);
  b_u8(&w->b, 't');
  pk_put(w);
  b_u8(&w->b, 'Q');
  pk_int(w, 0);
  pk_tuple_ints(w, size, ndim);
  pk_tuple_ints(w, stride, ndim);
  b_u8(&w->b, 0x89);
  pk_global_once(w, "collections", "OrderedDict", &w->m_od);
  b_u8(&w->b, ')');
  b_u8(&w->b, 'R');
  pk_put(w);
  b_u8(&w->b, 't');
  pk_put(w);
  b_u8(&w->b, 'R');
  pk_put(w);
}

// {layer: tensor} in batches of 1000 as the pickler does; storage keys from *key on.
static void pk_layer_dict(pkw_t *w, const char *storage_type, const int *layers, size_t n, uint64_t *key,
                          uint64_t numel, const int64_t *size, int ndim) {
  b_u8(&w->b, '}');
  pk_put(w);
  for (size_t s = 0; s < n; s += 1000) {
    size_t m = n - s < 1000 ? n - s : 1000;
    if (m > 1) b_u8(&w->b, '(');
    for (size_t k = s; k < s + m; k++) {
      pk_int(w, layers[k]);
      pk_tensor(w, storage_type, (*key)++, numel, size, ndim);
    }
    b_u8(&w->b, m > 1 ? 'u' : 's');
  }
}

static int utf8_ok(const unsigned char *s) {
  while (*s) {
    unsigned c = *s;
    int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0 || (n == 1 && c < 0xc2) || (c == 0xf0 && n == 3 && (s[1] & 0xf0) == 0x80) ||
        (c == 0xe0 && n == 2 && s[1] < 0xa0) || c > 0xf4)
      return 0;
    for (int k = 1; k <= n; k++)
      if ((s[k] & 0xc0) != 0x80) return 0;
    s += n + 1;
  }
  return 1;
}


#define PT_WRITE_MTIME ((time_t)315576000)  // 1980-01-01 12:00 UTC: zip's first day in any time zone

// Add name -> data[0, n) (borrowed until zip_close), stored, with the fixed time. 0 or -1.
static int add_entry(zip_t *za, const char *name, const void *data, size_t n) {
  zip_source_t *s = zip_source_buffer(za, n ? data : NULL, n, 0);
  if (!s) return -1;
  zip_int64_t idx = zip_file_add(za, name, s, ZIP_FL_ENC_UTF_8);
  if (idx < 0) {
    zip_source_free(s);
    return -1;
  }
  if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) < 0 ||
      zip_file_set_mtime(za, (zip_uint64_t)idx, PT_WRITE_MTIME, 0) < 0)
    return -1;
  return 0;
}

// The archive folder: the file's base name without its extension (as torch 1.x names it).
static char *archive_name(const char *path) {
  const char *base = strrchr(path, '/');
  char *arch = ps_xstrdup(base ? base + 1 : path);
  char *dot = strrchr(arch, '.');
  if (dot) *dot = 0;
  if (!*arch) {
    free(arch);
    arch = ps_xstrdup("archive");
  }
  return arch;
}

static int check_args(const char *path, const char *label, const int *layers, size_t n_layers,
                      const float *const *per_residue, const float *const *mean, uint32_t L, uint32_t d, ps_err_t *err) {
  if (!path || !*path) return ps_err_set(err, PS_ECONFIG, "pt writer: no path");
  if (!label || !*label) return ps_err_set(err, PS_ECONFIG, "%s: empty label", path);
  if (!utf8_ok((const unsigned char *)label)) return ps_err_set(err, PS_EFORMAT, "%s: the label is not valid UTF-8", path);
  if (!per_residue && !mean) return ps_err_set(err, PS_ECONFIG, "%s: neither per-residue nor mean tensors given", path);
  if (n_layers == 0 || !layers || d == 0) return ps_err_set(err, PS_ECONFIG, "%s: no layers or dimension 0", path);
  for (size_t i = 0; i < n_layers; i++) {
    for (size_t j = 0; j < i; j++)
      if (layers[i] == layers[j]) return ps_err_set(err, PS_ECONFIG, "%s: layer %d given twice", path, layers[i]);
    if ((per_residue && !per_residue[i]) || (mean && !mean[i]))
      return ps_err_set(err, PS_ECONFIG, "%s: no tensor for layer %d", path, layers[i]);
  }
  uint64_t total = (uint64_t)n_layers * ((per_residue ? (uint64_t)L * d : 0) + (mean ? d : 0)) * 4;
  if ((uint64_t)L * d > UINT32_MAX || n_layers > ((size_t)1 << 20) || total >= UINT32_MAX)
    return ps_err_set(err, PS_EUNSUPP, "%s: %zu layers of %u x %u: files of 4 GiB or more are not written", path,
                      n_layers, L, d);
  return 0;
}

// The pickle of {"label": label, "representations": {...}, "mean_representations": {...}}.
static void pickle_dict(pkw_t *w, const char *label, const int *layers, size_t n_layers, int per_residue, int mean,
                        uint32_t L, uint32_t d) {
  memset(w, 0, sizeof *w);
  w->m_rebuild = w->m_storage = w->m_type = w->m_cpu = w->m_od = -1;
  b_u8(&w->b, 0x80);
  b_u8(&w->b, 2);
  b_u8(&w->b, '}');
  pk_put(w);
  b_u8(&w->b, '(');
  pk_str(w, "label");
  pk_str(w, label);
  uint64_t key = 0;
  if (per_residue) {
    int64_t size[2] = {L, d};
    pk_str(w, "representations");
    pk_layer_dict(w, "FloatStorage", layers, n_layers, &key, (uint64_t)L * d, size, 2);
  }
  if (mean) {
    int64_t size[1] = {d};
    pk_str(w, "mean_representations");
    pk_layer_dict(w, "FloatStorage", layers, n_layers, &key, d, size, 1);
  }
  b_u8(&w->b, 'u');
  b_u8(&w->b, '.');
}

// The finished archive of the buffer source out: malloc'ed bytes in *data, *len.
static int take_bytes(zip_source_t *out, uint8_t **data, size_t *len) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_source_stat(out, &st) < 0 || zip_source_open(out) < 0) return -1;
  *data = ps_xmalloc(st.size ? (size_t)st.size : 1);
  zip_int64_t got = zip_source_read(out, *data, st.size);
  zip_source_close(out);
  *len = (size_t)st.size;
  return got == (zip_int64_t)st.size ? 0 : -1;
}

int pt_write_extract(const char *path, const char *label, const int *layers, size_t n_layers,
                     const float *const *per_residue, const float *const *mean, uint32_t L, uint32_t d,
                     ps_err_t *err) {
  int rc = check_args(path, label, layers, n_layers, per_residue, mean, L, d, err);
  if (rc < 0) return rc;
  pkw_t w;
  pickle_dict(&w, label, layers, n_layers, per_residue != NULL, mean != NULL, L, d);
  char *arch = archive_name(path);
  size_t al = strlen(arch), n_rec = (per_residue ? n_layers : 0) + (mean ? n_layers : 0);
  char *name = ps_xmalloc(al + 32);
  uint8_t *bytes = NULL;
  size_t len = 0;
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *out = zip_source_buffer_create(NULL, 0, 0, &ze);
  zip_t *za = out ? zip_open_from_source(out, ZIP_TRUNCATE, &ze) : NULL;
  if (!za) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: libzip: %s", path, zip_error_strerror(&ze));
    goto out;
  }
  zip_source_keep(out);  // the archive holds one reference, we keep one to read the bytes back
  snprintf(name, al + 32, "%s/data.pkl", arch);
  int bad = add_entry(za, name, w.b.p, w.b.n);
  for (size_t k = 0; k < n_rec && !bad; k++) {  // storage keys in pickling order: per-residue, then mean
    int m = !per_residue || k >= n_layers;
    size_t i = per_residue && m ? k - n_layers : k;
    snprintf(name, al + 32, "%s/data/%zu", arch, k);
    bad = m ? add_entry(za, name, mean[i], (size_t)d * 4) : add_entry(za, name, per_residue[i], (size_t)L * d * 4);
  }
  snprintf(name, al + 32, "%s/version", arch);
  if (!bad) bad = add_entry(za, name, "3\n", 2);
  if (bad || zip_close(za) < 0) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: building the zip archive: %s", path, zip_strerror(za));
    zip_discard(za);
    goto out;
  }
  if (take_bytes(out, &bytes, &len) < 0) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: reading back the zip archive: %s", path,
                    zip_error_strerror(zip_source_error(out)));
    goto out;
  }
  rc = ps_write_file_atomic(path, bytes, len, err);
out:
  if (out) zip_source_free(out);
  zip_error_fini(&ze);
  free(bytes);
  free(name);
  free(arch);
  free(w.b.p);
  return rc;
}
