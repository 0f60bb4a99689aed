// npy.c — see npy.h.
#include "npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emb.h"

#define NPY_MAX_HEADER (1u << 20)

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && isspace((unsigned char)*p)) p++;
  return p;
}

// Find 'key': in a Python dict literal; returns a pointer after the colon or NULL.
static const char *dict_value(const char *s, const char *end, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = s; p + kl + 2 < end; p++) {
    if ((*p == '\'' || *p == '"') && p[kl + 1] == *p && !memcmp(p + 1, key, kl)) {
      const char *q = skip_ws(p + kl + 2, end);
      if (q < end && *q == ':') return skip_ws(q + 1, end);
    }
  }
  return NULL;
}

int npy_parse_header(const uint8_t *buf, size_t len, const char *name, npy_header_t *h, ps_err_t *err) {
  memset(h, 0, sizeof *h);
  if (len < 10) return ps_err_set(err, PS_ETRUNC, "%s: byte 0: file shorter than the 10-byte npy preamble", name);
  if (memcmp(buf, "\x93NUMPY", 6)) return ps_err_set(err, PS_EFORMAT, "%s: byte 0: not an .npy file (bad magic)", name);
  unsigned major = buf[6];
  uint64_t hl, pre;
  if (major == 1) {
    hl = buf[8] | (uint64_t)buf[9] << 8;
    pre = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) return ps_err_set(err, PS_ETRUNC, "%s: byte 10: truncated npy v%u preamble", name, major);
    hl = buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
    pre = 12;
  } else {
    return ps_err_set(err, PS_EUNSUPP, "%s: byte 6: npy format version %u is not supported", name, major);
  }
  if (hl > NPY_MAX_HEADER) return ps_err_set(err, PS_EFORMAT, "%s: byte 8: header length %llu is absurd", name, (unsigned long long)hl);
  if (pre + hl > len) return ps_err_set(err, PS_ETRUNC, "%s: byte %llu: header truncated", name, (unsigned long long)len);
  const char *s = (const char *)buf + pre, *end = s + hl;
  const char *d = dict_value(s, end, "descr");
  if (!d || d >= end || (*d != '\'' && *d != '"'))
    return ps_err_set(err, PS_EFORMAT, "%s: header: no 'descr'", name);
  char q = *d++;
  const char *de = memchr(d, q, (size_t)(end - d));
  if (!de || de - d > 8) return ps_err_set(err, PS_EFORMAT, "%s: header: bad 'descr'", name);
  char descr[9] = {0};
  memcpy(descr, d, (size_t)(de - d));
  const char *t = descr;
  if (*t == '<' || *t == '|' || *t == '=') t++;
  else if (*t == '>') return ps_err_set(err, PS_EUNSUPP, "%s: header: big-endian dtype '%s' is not supported", name, descr);
  if (!strcmp(t, "f4")) h->dtype = NPY_F32, h->esize = 4;
  else if (!strcmp(t, "f2")) h->dtype = NPY_F16, h->esize = 2;
  else if (!strcmp(t, "f8")) h->dtype = NPY_F64, h->esize = 8;
  else if (!strcmp(t, "i8")) h->dtype = NPY_I64, h->esize = 8;
  else if (!strcmp(t, "i4")) h->dtype = NPY_I32, h->esize = 4;
  else return ps_err_set(err, PS_EUNSUPP, "%s: header: dtype '%s' is not supported (f4, f2, f8, i8, i4)", name, descr);
  const char *fo = dict_value(s, end, "fortran_order");
  if (!fo) return ps_err_set(err, PS_EFORMAT, "%s: header: no 'fortran_order'", name);
  if (end - fo >= 4 && !memcmp(fo, "True", 4))
    return ps_err_set(err, PS_EUNSUPP, "%s: header: Fortran-order arrays are not supported (save C order)", name);
  const char *sh = dict_value(s, end, "shape");
  if (!sh || *sh != '(') return ps_err_set(err, PS_EFORMAT, "%s: header: no 'shape' tuple", name);
  sh++;
  int nd = 0;
  uint64_t dims[3];
  for (;;) {
    sh = skip_ws(sh, end);
    if (sh >= end) return ps_err_set(err, PS_EFORMAT, "%s: header: unterminated shape", name);
    if (*sh == ')') break;
    if (!isdigit((unsigned char)*sh)) return ps_err_set(err, PS_EFORMAT, "%s: header: bad shape", name);
    uint64_t v = 0;
    while (sh < end && isdigit((unsigned char)*sh)) {
      if (v > (UINT64_MAX - 9) / 10) return ps_err_set(err, PS_EFORMAT, "%s: header: shape overflows", name);
      v = v * 10 + (uint64_t)(*sh++ - '0');
    }
    if (nd >= 3) return ps_err_set(err, PS_EDIM, "%s: header: more than 2 dimensions", name);
    dims[nd++] = v;
    sh = skip_ws(sh, end);
    if (sh < end && *sh == ',') sh++;
  }
  if (nd == 0 || nd > 2) return ps_err_set(err, PS_EDIM, "%s: header: %d-dimensional array (need 1 or 2)", name, nd);
  h->ndim = nd;
  h->shape[0] = dims[0];
  h->shape[1] = nd == 2 ? dims[1] : 1;
  if (h->shape[1] && h->shape[0] > UINT64_MAX / h->shape[1] / 8)
    return ps_err_set(err, PS_EFORMAT, "%s: header: shape overflows", name);
  h->data_offset = pre + hl;
  return 0;
}

int npy_read_header(FILE *f, const char *name, npy_header_t *h, ps_err_t *err) {
  uint8_t pre[12];
  size_t n = fread(pre, 1, sizeof pre, f);
  if (n < 10) return ps_err_set(err, PS_ETRUNC, "%s: byte %zu: file shorter than the npy preamble", name, n);
  if (memcmp(pre, "\x93NUMPY", 6)) return ps_err_set(err, PS_EFORMAT, "%s: byte 0: not an .npy file (bad magic)", name);
  uint64_t hl = pre[6] == 1 ? (pre[8] | (uint64_t)pre[9] << 8)
                            : (pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24);
  if (hl > NPY_MAX_HEADER) return ps_err_set(err, PS_EFORMAT, "%s: byte 8: header length %llu is absurd", name, (unsigned long long)hl);
  size_t total = (pre[6] == 1 ? 10 : 12) + (size_t)hl;
  uint8_t *buf = ps_xmalloc(total);
  memcpy(buf, pre, n < total ? n : total);
  size_t got = n < total ? n : total;
  if (got < total) got += fread(buf + got, 1, total - got, f);
  int rc = npy_parse_header(buf, got, name, h, err);
  free(buf);
  if (rc < 0) return rc;
  if (fseeko(f, (off_t)h->data_offset, SEEK_SET) != 0) return ps_err_set(err, -errno, "%s: seek: %s", name, strerror(errno));
  return 0;
}

static int check_size(FILE *f, const char *name, const npy_header_t *h, ps_err_t *err) {
  struct stat st;
  if (fstat(fileno(f), &st) != 0) return ps_err_set(err, -errno, "%s: %s", name, strerror(errno));
  uint64_t want = h->data_offset + h->shape[0] * h->shape[1] * h->esize;
  if ((uint64_t)st.st_size < want)
    return ps_err_set(err, PS_ETRUNC, "%s: truncated: the header promises %llu x %llu values (%llu bytes) but the file has %llu bytes",
                      name, (unsigned long long)h->shape[0], (unsigned long long)h->shape[1], (unsigned long long)want,
                      (unsigned long long)st.st_size);
  return 0;
}

int npy_read_i64_vector(const char *path, int64_t **out, uint64_t *n, ps_err_t *err) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return ps_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
  npy_header_t h;
  int rc = npy_read_header(f, path, &h, err);
  if (rc == 0) rc = check_size(f, path, &h, err);
  if (rc == 0 && (h.ndim != 1 || (h.dtype != NPY_I64 && h.dtype != NPY_I32)))
    rc = ps_err_set(err, PS_EDIM, "%s: offsets must be a 1-D int64 or int32 array", path);
  if (rc == 0) {
    int64_t *v = ps_xmalloc((h.shape[0] ? h.shape[0] : 1) * sizeof(int64_t));
    for (uint64_t i = 0; i < h.shape[0] && rc == 0; i++) {
      if (h.dtype == NPY_I64) {
        if (fread(&v[i], 8, 1, f) != 1) rc = ps_err_set(err, PS_ETRUNC, "%s: entry %llu: truncated", path, (unsigned long long)i);
      } else {
        int32_t x;
        if (fread(&x, 4, 1, f) != 1) rc = ps_err_set(err, PS_ETRUNC, "%s: entry %llu: truncated", path, (unsigned long long)i);
        v[i] = x;
      }
    }
    if (rc == 0) {
      *out = v;
      *n = h.shape[0];
    } else {
      free(v);
    }
  }
  fclose(f);
  return rc;
}

// ---- embedding source ----------------------------------------------------------------------
typedef struct npy_source {
  emb_source_t base;
  FILE *f;
  char *path;
  npy_header_t h;
  FILE *ids;               // ids file, read line by line
  const char *const *fb;   // fallback ids
  size_t n_fb;
  int64_t *off;            // residue level: N+1 offsets
  uint64_t n_records;
  uint64_t rec;            // next record
  char idbuf[256];
  char *line;
  size_t line_cap;
  float *rows;
  size_t rows_cap;
  void *raw;
  size_t raw_cap;
} npy_source_t;

static void npy_destroy(emb_source_t *s) {
  npy_source_t *n = (npy_source_t *)s;
  if (n->f) fclose(n->f);
  if (n->ids) fclose(n->ids);
  free(n->path);
  free(n->off);
  free(n->line);
  free(n->rows);
  free(n->raw);
  free(n);
}

static int64_t npy_count(emb_source_t *s) { return (int64_t)((npy_source_t *)s)->n_records; }

static int next_id(npy_source_t *n, ps_err_t *err) {
  if (n->ids) {
    ssize_t len = getline(&n->line, &n->line_cap, n->ids);
    if (len < 0)
      return ps_err_set(err, PS_EMISMATCH, "%s: ends before record %llu of %s", n->base.opts.ids_path,
                        (unsigned long long)n->rec, n->path);
    while (len && (n->line[len - 1] == '\n' || n->line[len - 1] == '\r')) n->line[--len] = 0;
    char *sp = strpbrk(n->line, " \t");
    if (sp) *sp = 0;
    snprintf(n->idbuf, sizeof n->idbuf, "%s", n->line);
  } else if (n->fb) {
    snprintf(n->idbuf, sizeof n->idbuf, "%s", n->fb[n->rec]);
  } else {
    snprintf(n->idbuf, sizeof n->idbuf, "row%llu", (unsigned long long)n->rec);
  }
  return 0;
}

static int npy_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err) {
  npy_source_t *n = (npy_source_t *)s;
  if (n->rec >= n->n_records) return 0;
  uint64_t r0 = n->off ? (uint64_t)n->off[n->rec] : n->rec, r1 = n->off ? (uint64_t)n->off[n->rec + 1] : n->rec + 1;
  uint64_t nrows = r1 - r0, d = n->h.shape[1];
  size_t nv = (size_t)(nrows * d);
  if (nv > n->rows_cap) {
    n->rows = ps_xrealloc(n->rows, nv * sizeof(float));
    n->rows_cap = nv;
  }
  if (n->off && fseeko(n->f, (off_t)(n->h.data_offset + r0 * d * n->h.esize), SEEK_SET) != 0)
    return ps_err_set(err, -errno, "%s: record %llu: seek: %s", n->path, (unsigned long long)n->rec, strerror(errno));
  if (n->h.dtype == NPY_F32) {
    if (fread(n->rows, 4, nv, n->f) != nv)
      return ps_err_set(err, PS_ETRUNC, "%s: record %llu (row %llu): truncated data", n->path, (unsigned long long)n->rec,
                        (unsigned long long)r0);
  } else {
    if (nv * n->h.esize > n->raw_cap) {
      n->raw_cap = nv * n->h.esize;
      n->raw = ps_xrealloc(n->raw, n->raw_cap);
    }
    if (fread(n->raw, n->h.esize, nv, n->f) != nv)
      return ps_err_set(err, PS_ETRUNC, "%s: record %llu (row %llu): truncated data", n->path, (unsigned long long)n->rec,
                        (unsigned long long)r0);
    for (size_t i = 0; i < nv; i++) {
      if (n->h.dtype == NPY_F16) {
        uint16_t x;
        memcpy(&x, (uint8_t *)n->raw + 2 * i, 2);
        n->rows[i] = emb_half_to_float(x);
      } else {
        double x;
        memcpy(&x, (uint8_t *)n->raw + 8 * i, 8);
        n->rows[i] = (float)x;
      }
    }
  }
  int rc = next_id(n, err);
  if (rc < 0) return rc;
  rec->id = n->idbuf;
  rec->n_rows = (uint32_t)nrows;
  rec->dim = (uint32_t)d;
  rec->rows = n->rows;
  n->rec++;
  return 1;
}

static int npy_skip(emb_source_t *s, uint64_t k, ps_err_t *err) {
  npy_source_t *n = (npy_source_t *)s;
  if (n->rec + k > n->n_records)
    return ps_err_set(err, PS_ETRUNC, "%s: cannot skip to record %llu: the file has %llu", n->path,
                      (unsigned long long)(n->rec + k), (unsigned long long)n->n_records);
  for (uint64_t i = 0; i < k; i++) {
    if (n->ids) {
      int rc = next_id(n, err);
      if (rc < 0) return rc;
    }
    n->rec++;
  }
  uint64_t row = n->off ? (uint64_t)n->off[n->rec] : n->rec;
  if (fseeko(n->f, (off_t)(n->h.data_offset + row * n->h.shape[1] * n->h.esize), SEEK_SET) != 0)
    return ps_err_set(err, -errno, "%s: seek: %s", n->path, strerror(errno));
  return 0;
}

static const emb_source_vt npy_vt = {"npy", npy_next, npy_skip, npy_destroy, npy_count};

static uint64_t count_lines(FILE *f) {
  uint64_t n = 0;
  int c, last = '\n';
  while ((c = getc(f)) != EOF) {
    if (c == '\n') n++;
    last = c;
  }
  if (last != '\n') n++;
  rewind(f);
  return n;
}

int npy_source_open(emb_source_t **out, const emb_source_opts_t *o, ps_err_t *err) {
  *out = NULL;
  npy_source_t *n = ps_xcalloc(1, sizeof *n);
  n->base.vt = &npy_vt;
  n->base.opts = *o;
  n->path = ps_xstrdup(o->path);
  int rc;
  if (!(n->f = fopen(o->path, "rb"))) {
    rc = ps_err_set(err, -errno, "%s: cannot open: %s", o->path, strerror(errno));
    goto fail;
  }
  if ((rc = npy_read_header(n->f, o->path, &n->h, err)) < 0 || (rc = check_size(n->f, o->path, &n->h, err)) < 0) goto fail;
  if (n->h.dtype != NPY_F32 && n->h.dtype != NPY_F16 && n->h.dtype != NPY_F64) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: embeddings must be float32, float16 or float64", o->path);
    goto fail;
  }
  if (n->h.ndim != 2) {
    rc = ps_err_set(err, PS_EDIM, "%s: embeddings must be a 2-D array (rows x dim), not 1-D", o->path);
    goto fail;
  }
  n->n_records = n->h.shape[0];
  // Per-residue file: an offsets file is given or sits beside it (<stem>.offsets.npy). Asked at
  // protein level, its proteins are mean-pooled (emb.c); at residue level offsets are required.
  char op[4096];
  if (o->offsets_path) {
    snprintf(op, sizeof op, "%s", o->offsets_path);
  } else {
    size_t l = strlen(o->path);
    snprintf(op, sizeof op, "%.*s.offsets.npy", (int)(l > 4 && !strcmp(o->path + l - 4, ".npy") ? l - 4 : l), o->path);
  }
  if (o->level == EMB_LEVEL_RESIDUE || o->offsets_path || access(op, R_OK) == 0) {
    uint64_t no;
    if ((rc = npy_read_i64_vector(op, &n->off, &no, err)) < 0) {
      ps_err_prefix(err, "residue-level %s needs offsets: ", o->path);
      goto fail;
    }
    if (no < 1 || n->off[0] != 0 || (uint64_t)n->off[no - 1] != n->h.shape[0]) {
      rc = ps_err_set(err, PS_EMISMATCH, "%s: offsets must start at 0 and end at the %llu rows of %s (they end at %lld)", op,
                      (unsigned long long)n->h.shape[0], o->path, no ? (long long)n->off[no - 1] : -1LL);
      goto fail;
    }
    for (uint64_t i = 1; i < no; i++)
      if (n->off[i] < n->off[i - 1]) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: entry %llu: offsets decrease (%lld after %lld)", op, (unsigned long long)i,
                        (long long)n->off[i], (long long)n->off[i - 1]);
        goto fail;
      }
    n->n_records = no - 1;
  }
  if (o->ids_path) {
    if (!(n->ids = fopen(o->ids_path, "r"))) {
      rc = ps_err_set(err, -errno, "%s: cannot open: %s", o->ids_path, strerror(errno));
      goto fail;
    }
    uint64_t nl = count_lines(n->ids);
    if (nl != n->n_records) {
      rc = ps_err_set(err, PS_EMISMATCH, "%s has %llu ids but %s has %llu records", o->ids_path, (unsigned long long)nl,
                      o->path, (unsigned long long)n->n_records);
      goto fail;
    }
  } else if (o->fallback_ids) {
    if (o->n_fallback_ids != n->n_records) {
      rc = ps_err_set(err, PS_EMISMATCH, "%s has %llu records but the FASTA has %zu sequences (give --ids)", o->path,
                      (unsigned long long)n->n_records, o->n_fallback_ids);
      goto fail;
    }
    n->fb = o->fallback_ids;
    n->n_fb = o->n_fallback_ids;
  }
  *out = &n->base;
  return 0;
fail:
  npy_destroy(&n->base);
  return rc;
}

// ---- writer --------------------------------------------------------------------------------
struct npy_writer {
  FILE *f;
  char *path, *tmp;
  npy_dtype_t dtype;
  uint64_t ncols, n;
  uint16_t *half;
  size_t half_cap;
};

#define NPY_WRITER_HEADER 128  // fixed header room so the final shape fits without moving data

static int write_header(npy_writer_t *w, ps_err_t *err) {
  char hdr[NPY_WRITER_HEADER];
  const char *descr = w->dtype == NPY_F32 ? "<f4" : w->dtype == NPY_F16 ? "<f2" : "<i8";
  int n = w->ncols ? snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (%llu, %llu), }",
                              descr, (unsigned long long)w->n, (unsigned long long)w->ncols)
                   : snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (%llu,), }", descr,
                              (unsigned long long)w->n);
  memcpy(hdr, "\x93NUMPY\x01\x00", 8);
  uint16_t hl = NPY_WRITER_HEADER - 10;
  hdr[8] = (char)(hl & 0xff);
  hdr[9] = (char)(hl >> 8);
  memset(hdr + 10 + n, ' ', (size_t)(NPY_WRITER_HEADER - 10 - n));
  hdr[NPY_WRITER_HEADER - 1] = '\n';
  if (fseeko(w->f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, sizeof hdr, w->f) != sizeof hdr)
    return ps_err_set(err, -errno, "%s: write: %s", w->tmp, strerror(errno));
  return 0;
}

int npy_writer_open(npy_writer_t **out, const char *path, npy_dtype_t dtype, uint64_t ncols, ps_err_t *err) {
  *out = NULL;
  if (dtype != NPY_F32 && dtype != NPY_F16 && dtype != NPY_I64)
    return ps_err_set(err, PS_EUNSUPP, "%s: the writer handles f4, f2 and i8", path);
  npy_writer_t *w = ps_xcalloc(1, sizeof *w);
  w->path = ps_xstrdup(path);
  w->tmp = ps_xmalloc(strlen(path) + 5);
  sprintf(w->tmp, "%s.tmp", path);
  w->dtype = dtype;
  w->ncols = ncols;
  if (!(w->f = fopen(w->tmp, "wb"))) {
    int rc = ps_err_set(err, -errno, "%s: cannot create: %s", w->tmp, strerror(errno));
    free(w->path);
    free(w->tmp);
    free(w);
    return rc;
  }
  int rc = write_header(w, err);
  if (rc < 0) {
    npy_writer_abort(&w);
    return rc;
  }
  *out = w;
  return 0;
}

int npy_writer_append_f32(npy_writer_t *w, const float *rows, uint64_t n, ps_err_t *err) {
  uint64_t nv = n * (w->ncols ? w->ncols : 1);
  if (w->dtype == NPY_F32) {
    if (fwrite(rows, 4, nv, w->f) != nv) return ps_err_set(err, -errno, "%s: write: %s", w->tmp, strerror(errno));
  } else if (w->dtype == NPY_F16) {
    if (nv > w->half_cap) {
      w->half = ps_xrealloc(w->half, nv * 2);
      w->half_cap = nv;
    }
    for (uint64_t i = 0; i < nv; i++) w->half[i] = emb_float_to_half(rows[i]);
    if (fwrite(w->half, 2, nv, w->f) != nv) return ps_err_set(err, -errno, "%s: write: %s", w->tmp, strerror(errno));
  } else {
    return ps_err_set(err, PS_ESTATE, "%s: float rows appended to an int64 array", w->path);
  }
  w->n += n;
  return 0;
}

int npy_writer_append_i64(npy_writer_t *w, const int64_t *vals, uint64_t n, ps_err_t *err) {
  if (w->dtype != NPY_I64) return ps_err_set(err, PS_ESTATE, "%s: int64 values appended to a float array", w->path);
  uint64_t nv = n * (w->ncols ? w->ncols : 1);
  if (fwrite(vals, 8, nv, w->f) != nv) return ps_err_set(err, -errno, "%s: write: %s", w->tmp, strerror(errno));
  w->n += n;
  return 0;
}

int npy_writer_close(npy_writer_t **wp, ps_err_t *err) {
  npy_writer_t *w = *wp;
  int rc = write_header(w, err);
  if (rc == 0 && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
    rc = ps_err_set(err, -errno, "%s: flush: %s", w->tmp, strerror(errno));
  if (fclose(w->f) != 0 && rc == 0) rc = ps_err_set(err, -errno, "%s: close: %s", w->tmp, strerror(errno));
  w->f = NULL;
  if (rc == 0 && rename(w->tmp, w->path) != 0) rc = ps_err_set(err, -errno, "%s: rename: %s", w->path, strerror(errno));
  if (rc < 0) unlink(w->tmp);
  free(w->half);
  free(w->path);
  free(w->tmp);
  free(w);
  *wp = NULL;
  return rc;
}

void npy_writer_abort(npy_writer_t **wp) {
  if (!wp || !*wp) return;
  npy_writer_t *w = *wp;
  if (w->f) fclose(w->f);
  unlink(w->tmp);
  free(w->half);
  free(w->path);
  free(w->tmp);
  free(w);
  *wp = NULL;
}
