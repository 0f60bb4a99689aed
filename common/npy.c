// npy.c — see npy.h.
#include "npy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "strmap.h"

#define CONV_BYTES ((size_t)64 * 1024)  // conversion buffer for f16 / f64 data

const char *npy_dtype_descr(npy_dtype_t t) {
  switch (t) {
  case NPY_F32: return "<f4";
  case NPY_F16: return "<f2";
  case NPY_F64: return "<f8";
  case NPY_I64: return "<i8";
  case NPY_I32: return "<i4";
  }
  return "?";
}

// ---- header ------------------------------------------------------------------------------
static const char *skip_ws(const char *p, const char *end) {
  while (p < end && isspace((unsigned char)*p)) p++;
  return p;
}

// Find 'key': in a Python dict literal; returns a pointer after the colon (and spaces) or NULL.
static const char *dict_value(const char *s, const char *end, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = s; end - p >= (ptrdiff_t)(kl + 2); p++) {
    if ((*p == '\'' || *p == '"') && p[kl + 1] == *p && !memcmp(p + 1, key, kl)) {
      const char *q = skip_ws(p + kl + 2, end);
      if (q < end && *q == ':') return skip_ws(q + 1, end);
    }
  }
  return NULL;
}

int npy_parse_header(const uint8_t *buf, size_t len, const char *name, npy_header_t *h, ps_err_t *err) {
  memset(h, 0, sizeof *h);
  if (len < 6 || memcmp(buf, "\x93NUMPY", 6))
    return ps_err_set(err, len < 6 ? PS_ETRUNC : PS_EFORMAT, "%s: byte 0: not an .npy file (bad magic)", name);
  if (len < 10) return ps_err_set(err, PS_ETRUNC, "%s: byte %zu: file ends inside the 10-byte npy preamble", name, len);
  unsigned major = buf[6];
  uint64_t hl, pre;
  if (major == 1) {
    hl = buf[8] | (uint64_t)buf[9] << 8;
    pre = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) return ps_err_set(err, PS_ETRUNC, "%s: byte %zu: file ends inside the npy v%u preamble", name, len, major);
    hl = buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
    pre = 12;
  } else {
    return ps_err_set(err, PS_EUNSUPP, "%s: byte 6: npy format version %u is not supported (1, 2, 3)", name, major);
  }
  if (hl > NPY_MAX_HEADER)
    return ps_err_set(err, PS_EFORMAT, "%s: byte 8: header length %" PRIu64 " exceeds the %" PRIu64 "-byte limit", name, hl,
                      NPY_MAX_HEADER);
  if (pre + hl > len)
    return ps_err_set(err, PS_ETRUNC, "%s: byte %zu: file ends inside the %" PRIu64 "-byte header", name, len, hl);
  const char *base = (const char *)buf, *s = base + pre, *end = s + hl;
#define AT(p) ((size_t)((p) - base))
  const char *d = dict_value(s, end, "descr");
  if (!d || d >= end || (*d != '\'' && *d != '"'))
    return ps_err_set(err, PS_EFORMAT, "%s: byte %" PRIu64 ": header has no 'descr' string", name, pre);
  char q = *d++;
  const char *de = memchr(d, q, (size_t)(end - d));
  if (!de || de - d > 8) return ps_err_set(err, PS_EFORMAT, "%s: byte %zu: bad 'descr' value", name, AT(d));
  char descr[9] = {0};
  memcpy(descr, d, (size_t)(de - d));
  const char *t = descr;
  if (*t == '<' || *t == '|' || *t == '=') t++;
  else if (*t == '>')
    return ps_err_set(err, PS_EUNSUPP, "%s: byte %zu: big-endian dtype '%s' is not supported (save little-endian)", name,
                      AT(d), descr);
  if (!strcmp(t, "f4")) h->dtype = NPY_F32, h->esize = 4;
  else if (!strcmp(t, "f2")) h->dtype = NPY_F16, h->esize = 2;
  else if (!strcmp(t, "f8")) h->dtype = NPY_F64, h->esize = 8;
  else if (!strcmp(t, "i8")) h->dtype = NPY_I64, h->esize = 8;
  else if (!strcmp(t, "i4")) h->dtype = NPY_I32, h->esize = 4;
  else
    return ps_err_set(err, PS_EUNSUPP, "%s: byte %zu: dtype '%s' is not supported (f4, f2, f8, i8, i4)", name, AT(d),
                      descr);
  const char *fo = dict_value(s, end, "fortran_order");
  if (!fo) return ps_err_set(err, PS_EFORMAT, "%s: byte %" PRIu64 ": header has no 'fortran_order'", name, pre);
  if (end - fo >= 4 && !memcmp(fo, "True", 4))
    return ps_err_set(err, PS_EUNSUPP, "%s: byte %zu: Fortran-order arrays are not supported (save in C order)", name,
                      AT(fo));
  if (end - fo < 5 || memcmp(fo, "False", 5))
    return ps_err_set(err, PS_EFORMAT, "%s: byte %zu: 'fortran_order' is neither True nor False", name, AT(fo));
  const char *sh = dict_value(s, end, "shape");
  if (!sh || sh >= end || *sh != '(')
    return ps_err_set(err, PS_EFORMAT, "%s: byte %" PRIu64 ": header has no 'shape' tuple", name, pre);
  sh++;
  int nd = 0;
  uint64_t dims[2] = {0, 0};
  for (;;) {
    sh = skip_ws(sh, end);
    if (sh >= end) return ps_err_set(err, PS_EFORMAT, "%s: byte %zu: unterminated 'shape'", name, AT(sh));
    if (*sh == ')') break;
    if (!isdigit((unsigned char)*sh)) return ps_err_set(err, PS_EFORMAT, "%s: byte %zu: bad 'shape'", name, AT(sh));
    uint64_t v = 0;
    while (sh < end && isdigit((unsigned char)*sh)) {
      if (v > (UINT64_MAX - 9) / 10) return ps_err_set(err, PS_EFORMAT, "%s: byte %zu: 'shape' overflows", name, AT(sh));
      v = v * 10 + (uint64_t)(*sh++ - '0');
    }
    if (sh < end && *sh == 'L') sh++;  // Python 2 long literal
    if (nd >= 2) return ps_err_set(err, PS_EDIM, "%s: byte %zu: array has more than 2 dimensions", name, AT(sh));
    dims[nd++] = v;
    sh = skip_ws(sh, end);
    if (sh < end && *sh == ',') sh++;
    else if (sh < end && *sh != ')') return ps_err_set(err, PS_EFORMAT, "%s: byte %zu: bad 'shape'", name, AT(sh));
  }
#undef AT
  if (nd == 0) return ps_err_set(err, PS_EDIM, "%s: header: 0-dimensional array (need 1 or 2 dimensions)", name);
  h->ndim = nd;
  h->shape[0] = dims[0];
  h->shape[1] = nd == 2 ? dims[1] : 1;
  // element count and byte size must fit comfortably in off_t
  if (h->shape[1] && h->shape[0] > ((uint64_t)1 << 60) / h->shape[1] / h->esize)
    return ps_err_set(err, PS_EFORMAT, "%s: header: shape (%" PRIu64 ", %" PRIu64 ") is too large", name, h->shape[0],
                      h->shape[1]);
  h->data_offset = pre + hl;
  h->version = (int)major;
  return 0;
}

int npy_read_header(FILE *f, const char *name, npy_header_t *h, ps_err_t *err) {
  uint8_t pre[12];
  size_t n = fread(pre, 1, sizeof pre, f);
  if (n < 10 || memcmp(pre, "\x93NUMPY", 6) || (pre[6] != 1 && n < 12))
    return npy_parse_header(pre, n, name, h, err);  // gives the precise message
  uint64_t hl = pre[6] == 1 ? (pre[8] | (uint64_t)pre[9] << 8)
                            : (pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24);
  if (hl > NPY_MAX_HEADER || pre[6] < 1 || pre[6] > 3) return npy_parse_header(pre, n, name, h, err);
  size_t total = (pre[6] == 1 ? 10 : 12) + (size_t)hl;
  uint8_t *buf = ps_xmalloc(total);
  size_t got = n < total ? n : total;
  memcpy(buf, pre, got);
  if (got < total) got += fread(buf + got, 1, total - got, f);
  int rc = npy_parse_header(buf, got, name, h, err);
  free(buf);
  if (rc < 0) return rc;
  if (fseeko(f, (off_t)h->data_offset, SEEK_SET) != 0)
    return ps_err_set(err, -errno, "%s: byte %" PRIu64 ": seek: %s", name, h->data_offset, strerror(errno));
  return 0;
}

int npy_check_size(FILE *f, const char *name, const npy_header_t *h, ps_err_t *err) {
  struct stat st;
  if (fstat(fileno(f), &st) != 0) return ps_err_set(err, -errno, "%s: %s", name, strerror(errno));
  if (!S_ISREG(st.st_mode)) return 0;  // pipes etc.: truncation is caught at the row
  uint64_t want = h->data_offset + h->shape[0] * h->shape[1] * h->esize;
  if ((uint64_t)st.st_size < want) {
    uint64_t have = (uint64_t)st.st_size > h->data_offset ? (uint64_t)st.st_size - h->data_offset : 0;
    uint64_t row_bytes = h->shape[1] * h->esize;
    return ps_err_set(err, PS_ETRUNC,
                      "%s: truncated at byte %" PRIu64 " (row %" PRIu64 "): the header promises %" PRIu64 " x %" PRIu64
                      " values (%" PRIu64 " bytes) but the file has %" PRIu64 " bytes",
                      name, (uint64_t)st.st_size, row_bytes ? have / row_bytes : 0, h->shape[0], h->shape[1], want,
                      (uint64_t)st.st_size);
  }
  return 0;
}

int npy_read_i64_vector(const char *path, int64_t **out, uint64_t *n, ps_err_t *err) {
  *out = NULL;
  *n = 0;
  int64_t *v = NULL;
  int32_t *tmp = NULL;
  int rc = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return ps_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
  npy_header_t h;
  if ((rc = npy_read_header(f, path, &h, err)) < 0 || (rc = npy_check_size(f, path, &h, err)) < 0) goto fail;
  if (h.ndim != 1 || (h.dtype != NPY_I64 && h.dtype != NPY_I32)) {
    rc = ps_err_set(err, PS_EDIM, "%s: must be a 1-D int64 or int32 array (it is %d-D %s)", path, h.ndim,
                    npy_dtype_descr(h.dtype));
    goto fail;
  }
  v = ps_xmalloc((h.shape[0] ? h.shape[0] : 1) * sizeof(int64_t));
  if (h.dtype == NPY_I64) {
    size_t got = fread(v, 8, h.shape[0], f);
    if (got != h.shape[0]) {
      rc = ps_err_set(err, PS_ETRUNC, "%s: entry %zu (byte %" PRIu64 "): truncated", path, got, h.data_offset + 8 * got);
      goto fail;
    }
  } else {
    tmp = ps_xmalloc((h.shape[0] ? h.shape[0] : 1) * sizeof(int32_t));
    size_t got = fread(tmp, 4, h.shape[0], f);
    if (got != h.shape[0]) {
      rc = ps_err_set(err, PS_ETRUNC, "%s: entry %zu (byte %" PRIu64 "): truncated", path, got, h.data_offset + 4 * got);
      goto fail;
    }
    for (uint64_t i = 0; i < h.shape[0]; i++) v[i] = tmp[i];
  }
  *out = v;
  *n = h.shape[0];
  v = NULL;
fail:
  free(tmp);
  free(v);
  fclose(f);
  return rc;
}

// ---- ids ---------------------------------------------------------------------------------
struct npy_ids {
  ps_lines_t *in;            // ids file (read twice: counted at open, then streamed), or NULL
  char *path;
  const char *const *fb;     // fallback ids (borrowed)
  uint64_t n, i;             // records, next record
  char rowbuf[32];
};

// First whitespace-separated token of the line, NUL-terminated in place; NULL for a blank line.
static char *first_token(char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  if (!*s) return NULL;
  char *e = s;
  while (*e && !isspace((unsigned char)*e)) e++;
  *e = 0;
  return s;
}

void npy_ids_destroy(npy_ids_t **p) {
  if (!p || !*p) return;
  npy_ids_t *ids = *p;
  ps_lines_close(&ids->in);
  free(ids->path);
  free(ids);
  *p = NULL;
}

// Count the ids of the file and refuse a repeated one: a duplicate would make one protein
// silently missing and another counted twice downstream (the map is freed before streaming).
static int count_ids(const char *path, uint64_t *count, ps_err_t *err) {
  ps_lines_t *in;
  int rc = ps_lines_open(&in, path, 0, err);
  if (rc < 0) return rc;
  strmap_t *seen = strmap_new(1 << 12);
  char *line;
  size_t len;
  *count = 0;
  while ((rc = ps_lines_next(in, &line, &len, err)) > 0) {
    const char *t = first_token(line);
    if (!t) continue;
    uint64_t first, line_no = ps_lines_lineno(in);
    if (strmap_get(seen, t, &first)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %" PRIu64 ": duplicate id '%s' (first on line %" PRIu64 ")", path,
                      line_no, t, first);
      break;
    }
    strmap_put(seen, t, line_no);
    (*count)++;
  }
  strmap_destroy(&seen);
  ps_lines_close(&in);
  return rc;
}

int npy_ids_open(npy_ids_t **out, const emb_source_opts_t *o, const char *data_name, uint64_t n_records,
                 ps_err_t *err) {
  *out = NULL;
  npy_ids_t *ids = ps_xcalloc(1, sizeof *ids);
  ids->n = n_records;
  int rc = 0;
  if (o->ids_path) {
    ids->path = ps_xstrdup(o->ids_path);
    uint64_t count;
    if ((rc = count_ids(o->ids_path, &count, err)) < 0) goto fail;
    if (count != n_records) {
      rc = ps_err_set(err, PS_EMISMATCH, "%s has %" PRIu64 " ids but %s has %" PRIu64 " records", o->ids_path, count,
                      data_name, n_records);
      goto fail;
    }
    if ((rc = ps_lines_open(&ids->in, o->ids_path, 0, err)) < 0) goto fail;
  } else if (o->fallback_ids) {
    if (o->n_fallback_ids != n_records) {
      rc = ps_err_set(err, PS_EMISMATCH,
                      "%s has %" PRIu64 " records but the FASTA has %zu sequences (give an ids file, one id a line)",
                      data_name, n_records, o->n_fallback_ids);
      goto fail;
    }
    ids->fb = o->fallback_ids;
  }
  *out = ids;
  return 0;
fail:
  npy_ids_destroy(&ids);
  return rc;
}

int npy_ids_next(npy_ids_t *ids, const char **id, ps_err_t *err) {
  *id = NULL;
  if (ids->i >= ids->n) return ps_err_set(err, PS_ESTATE, "ids: record %" PRIu64 " is past the end", ids->i);
  if (ids->in) {
    for (;;) {
      char *line;
      size_t len;
      int rc = ps_lines_next(ids->in, &line, &len, err);
      if (rc < 0) return rc;
      if (rc == 0)
        return ps_err_set(err, PS_ETRUNC, "%s: line %" PRIu64 ": ids end before record %" PRIu64 " (file changed?)",
                          ids->path, ps_lines_lineno(ids->in) + 1, ids->i);
      char *t = first_token(line);
      if (t) {
        *id = t;
        break;
      }
    }
  } else if (ids->fb) {
    *id = ids->fb[ids->i];
    if (!*id) return ps_err_set(err, PS_EFORMAT, "fallback id %" PRIu64 " is NULL", ids->i);
  } else {
    snprintf(ids->rowbuf, sizeof ids->rowbuf, "row%" PRIu64, ids->i);
    *id = ids->rowbuf;
  }
  ids->i++;
  return 0;
}

int npy_ids_skip(npy_ids_t *ids, uint64_t n, ps_err_t *err) {
  if (n > ids->n - ids->i)
    return ps_err_set(err, PS_ETRUNC, "ids: cannot skip %" PRIu64 " past record %" PRIu64 " of %" PRIu64, n, ids->i,
                      ids->n);
  if (!ids->in) {
    ids->i += n;
    return 0;
  }
  const char *id;
  for (uint64_t k = 0; k < n; k++) {
    int rc = npy_ids_next(ids, &id, err);
    if (rc < 0) return rc;
  }
  return 0;
}

// ---- embedding source ----------------------------------------------------------------------
typedef struct npy_source {
  emb_source_t base;
  FILE *f;
  char *path;
  char *off_path;
  npy_header_t h;
  uint32_t dim;
  int64_t *off;        // residue level: N+1 offsets, or NULL
  uint64_t n_records;
  uint64_t rec;        // next record
  uint64_t pos_row;    // row at which f is positioned
  npy_ids_t *ids;
  float *rows;
  size_t rows_cap;     // floats
  uint8_t *raw;        // CONV_BYTES, for f16 / f64
} npy_source_t;

static void npy_destroy(emb_source_t *s) {
  npy_source_t *n = (npy_source_t *)s;
  if (n->f) fclose(n->f);
  npy_ids_destroy(&n->ids);
  free(n->path);
  free(n->off_path);
  free(n->off);
  free(n->rows);
  free(n->raw);
  free(n);
}

static int64_t npy_count(emb_source_t *s) { return (int64_t)((npy_source_t *)s)->n_records; }

static int seek_row(npy_source_t *n, uint64_t row, ps_err_t *err) {
  if (n->pos_row == row) return 0;
  uint64_t at = n->h.data_offset + row * n->dim * n->h.esize;
  if (fseeko(n->f, (off_t)at, SEEK_SET) != 0)
    return ps_err_set(err, -errno, "%s: record %" PRIu64 ": seek to byte %" PRIu64 ": %s", n->path, n->rec, at,
                      strerror(errno));
  n->pos_row = row;
  return 0;
}

// Read nv values starting at row r0 (already positioned) into n->rows, converting to float.
static int read_values(npy_source_t *n, uint64_t r0, size_t nv, ps_err_t *err) {
  size_t done = 0;
  while (done < nv) {
    size_t want = nv - done, got;
    if (n->h.dtype == NPY_F32) {
      got = fread(n->rows + done, 4, want, n->f);
    } else {
      size_t cap = CONV_BYTES / n->h.esize;
      if (want > cap) want = cap;
      got = fread(n->raw, n->h.esize, want, n->f);
      for (size_t i = 0; i < got; i++) {
        if (n->h.dtype == NPY_F16) {
          uint16_t x;
          memcpy(&x, n->raw + 2 * i, 2);
          n->rows[done + i] = emb_half_to_float(x);
        } else {
          double x;
          memcpy(&x, n->raw + 8 * i, 8);
          n->rows[done + i] = (float)x;
        }
      }
    }
    done += got;
    if (got < want) {
      uint64_t row = r0 + done / n->dim;
      uint64_t byte = n->h.data_offset + (r0 * n->dim + done) * n->h.esize;
      n->pos_row = UINT64_MAX;  // position unknown
      if (ferror(n->f))
        return ps_err_set(err, PS_EIO, "%s: record %" PRIu64 ", row %" PRIu64 " (byte %" PRIu64 "): read error", n->path,
                          n->rec, row, byte);
      return ps_err_set(err, PS_ETRUNC,
                        "%s: record %" PRIu64 ", row %" PRIu64 " (byte %" PRIu64 "): file ends early (truncated data)",
                        n->path, n->rec, row, byte);
    }
  }
  return 0;
}

static int npy_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err) {
  npy_source_t *n = (npy_source_t *)s;
  if (n->rec >= n->n_records) return 0;
  uint64_t r0 = n->off ? (uint64_t)n->off[n->rec] : n->rec;
  uint64_t r1 = n->off ? (uint64_t)n->off[n->rec + 1] : n->rec + 1;
  uint64_t nrows = r1 - r0;
  size_t nv = (size_t)(nrows * n->dim);  // <= NPY_MAX_RECORD_FLOATS (checked at open)
  if (nv > n->rows_cap) {
    n->rows = ps_xrealloc(n->rows, nv * sizeof(float));
    n->rows_cap = nv;
  }
  int rc;
  if ((rc = seek_row(n, r0, err)) < 0 || (rc = read_values(n, r0, nv, err)) < 0) return rc;
  n->pos_row = r1;
  const char *id;
  if ((rc = npy_ids_next(n->ids, &id, err)) < 0) return rc;
  rec->id = id;
  rec->n_rows = (uint32_t)nrows;
  rec->dim = n->dim;
  rec->rows = n->rows;
  n->rec++;
  return 1;
}

static int npy_skip(emb_source_t *s, uint64_t k, ps_err_t *err) {
  npy_source_t *n = (npy_source_t *)s;
  if (k > n->n_records - n->rec)
    return ps_err_set(err, PS_ETRUNC, "%s: cannot skip to record %" PRIu64 ": the file has %" PRIu64, n->path, n->rec + k,
                      n->n_records);
  int rc = npy_ids_skip(n->ids, k, err);
  if (rc < 0) return rc;
  n->rec += k;
  if (n->rec < n->n_records) return seek_row(n, n->off ? (uint64_t)n->off[n->rec] : n->rec, err);
  return 0;
}

static const emb_source_vt npy_vt = {"npy", npy_next, npy_skip, npy_destroy, npy_count};

static int load_offsets(npy_source_t *n, ps_err_t *err) {
  uint64_t no;
  int rc = npy_read_i64_vector(n->off_path, &n->off, &no, err);
  if (rc < 0) {
    ps_err_prefix(err, "%s needs residue offsets: ", n->path);
    return rc;
  }
  uint64_t rows = n->h.shape[0];
  if (no < 1 || n->off[0] != 0)
    return ps_err_set(err, PS_EFORMAT, "%s: entry 0: offsets must start at 0 (they %s)", n->off_path,
                      no ? "start elsewhere" : "are empty");
  for (uint64_t i = 1; i < no; i++) {
    if (n->off[i] < n->off[i - 1])
      return ps_err_set(err, PS_EFORMAT, "%s: entry %" PRIu64 ": offsets decrease (%" PRId64 " after %" PRId64 ")",
                        n->off_path, i, n->off[i], n->off[i - 1]);
    if ((uint64_t)n->off[i] > rows)
      return ps_err_set(err, PS_EMISMATCH, "%s: entry %" PRIu64 ": offset %" PRId64 " is past the %" PRIu64 " rows of %s",
                        n->off_path, i, n->off[i], rows, n->path);
    uint64_t len = (uint64_t)(n->off[i] - n->off[i - 1]);
    if (len > UINT32_MAX || len * n->dim > NPY_MAX_RECORD_FLOATS)
      return ps_err_set(err, PS_EDIM, "%s: record %" PRIu64 " has %" PRIu64 " rows of %u: larger than the %" PRIu64
                        "-float record limit", n->off_path, i - 1, len, n->dim, NPY_MAX_RECORD_FLOATS);
  }
  if ((uint64_t)n->off[no - 1] != rows)
    return ps_err_set(err, PS_EMISMATCH,
                      "%s: entry %" PRIu64 ": offsets must end at the %" PRIu64 " rows of %s (they end at %" PRId64 ")",
                      n->off_path, no - 1, rows, n->path, n->off[no - 1]);
  n->n_records = no - 1;
  return 0;
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
  if ((rc = npy_read_header(n->f, o->path, &n->h, err)) < 0 || (rc = npy_check_size(n->f, o->path, &n->h, err)) < 0)
    goto fail;
  n->pos_row = 0;
  if (n->h.dtype != NPY_F32 && n->h.dtype != NPY_F16 && n->h.dtype != NPY_F64) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: embeddings must be float32, float16 or float64, not %s", o->path,
                    npy_dtype_descr(n->h.dtype));
    goto fail;
  }
  if (n->h.ndim != 2) {
    rc = ps_err_set(err, PS_EDIM, "%s: embeddings must be a 2-D array (rows x dim), not 1-D of %" PRIu64, o->path,
                    n->h.shape[0]);
    goto fail;
  }
  if (n->h.shape[1] == 0 || n->h.shape[1] > EMB_MAX_DIM) {
    rc = ps_err_set(err, PS_EDIM, "%s: embedding dimension %" PRIu64 " is out of range (1 .. %u)", o->path,
                    n->h.shape[1], EMB_MAX_DIM);
    goto fail;
  }
  n->dim = (uint32_t)n->h.shape[1];
  n->n_records = n->h.shape[0];
  if (n->h.dtype != NPY_F32) n->raw = ps_xmalloc(CONV_BYTES);
  // Per-residue file: an offsets file is given or sits beside it (<stem>.offsets.npy). Asked at
  // protein level, its proteins are mean-pooled (emb.c); at residue level offsets are required.
  if (o->offsets_path) {
    n->off_path = ps_xstrdup(o->offsets_path);
  } else {
    size_t l = strlen(o->path);
    size_t stem = l > 4 && !strcmp(o->path + l - 4, ".npy") ? l - 4 : l;
    n->off_path = ps_xmalloc(stem + sizeof ".offsets.npy");
    memcpy(n->off_path, o->path, stem);
    memcpy(n->off_path + stem, ".offsets.npy", sizeof ".offsets.npy");
  }
  if (o->level == EMB_LEVEL_RESIDUE || o->offsets_path || access(n->off_path, F_OK) == 0) {
    if ((rc = load_offsets(n, err)) < 0) goto fail;
  }
  if ((rc = npy_ids_open(&n->ids, o, o->path, n->n_records, err)) < 0) goto fail;
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

#define NPY_WRITER_HEADER 128  // fixed header room (a multiple of 64) so the final shape fits

static int write_header(npy_writer_t *w, ps_err_t *err) {
  char hdr[NPY_WRITER_HEADER + 1];
  const char *descr = npy_dtype_descr(w->dtype);
  int n = w->ncols ? snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRIu64
                              ", %" PRIu64 "), }", descr, w->n, w->ncols)
                   : snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRIu64
                              ",), }", descr, w->n);
  PS_ASSERT(n > 0 && n < NPY_WRITER_HEADER - 11);
  memcpy(hdr, "\x93NUMPY\x01\x00", 8);
  uint16_t hl = NPY_WRITER_HEADER - 10;
  hdr[8] = (char)(hl & 0xff);
  hdr[9] = (char)(hl >> 8);
  memset(hdr + 10 + n, ' ', (size_t)(NPY_WRITER_HEADER - 10 - n));
  hdr[NPY_WRITER_HEADER - 1] = '\n';
  if (fseeko(w->f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, NPY_WRITER_HEADER, w->f) != NPY_WRITER_HEADER ||
      fseeko(w->f, 0, SEEK_END) != 0)
    return ps_err_set(err, -errno, "%s: byte 0: writing the header: %s", w->tmp, strerror(errno));
  return 0;
}

static void writer_free(npy_writer_t *w) {
  free(w->half);
  free(w->path);
  free(w->tmp);
  free(w);
}

int npy_writer_open(npy_writer_t **out, const char *path, npy_dtype_t dtype, uint64_t ncols, ps_err_t *err) {
  *out = NULL;
  if (dtype != NPY_F32 && dtype != NPY_F16 && dtype != NPY_I64)
    return ps_err_set(err, PS_EUNSUPP, "%s: the npy writer writes f4, f2 and i8, not %s", path, npy_dtype_descr(dtype));
  npy_writer_t *w = ps_xcalloc(1, sizeof *w);
  w->path = ps_xstrdup(path);
  w->tmp = ps_xmalloc(strlen(path) + 5);
  sprintf(w->tmp, "%s.tmp", path);
  w->dtype = dtype;
  w->ncols = ncols;
  if (!(w->f = fopen(w->tmp, "wb"))) {
    int rc = ps_err_set(err, -errno, "%s: cannot create: %s", w->tmp, strerror(errno));
    writer_free(w);
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

static int write_fail(npy_writer_t *w, ps_err_t *err) {
  int e = errno ? errno : EIO;
  return ps_err_set(err, -e, "%s: row %" PRIu64 ": write: %s", w->tmp, w->n, strerror(e));
}

int npy_writer_append_f32(npy_writer_t *w, const float *rows, uint64_t n, ps_err_t *err) {
  uint64_t nv = n * (w->ncols ? w->ncols : 1);
  errno = 0;
  if (w->dtype == NPY_F32) {
    if (fwrite(rows, 4, nv, w->f) != nv) return write_fail(w, err);
  } else if (w->dtype == NPY_F16) {
    if (nv > w->half_cap) {
      w->half = ps_xrealloc(w->half, nv * 2);
      w->half_cap = nv;
    }
    for (uint64_t i = 0; i < nv; i++) w->half[i] = emb_float_to_half(rows[i]);
    if (fwrite(w->half, 2, nv, w->f) != nv) return write_fail(w, err);
  } else {
    return ps_err_set(err, PS_ESTATE, "%s: float rows appended to an int64 array", w->path);
  }
  w->n += n;
  return 0;
}

int npy_writer_append_i64(npy_writer_t *w, const int64_t *vals, uint64_t n, ps_err_t *err) {
  if (w->dtype != NPY_I64) return ps_err_set(err, PS_ESTATE, "%s: int64 values appended to a float array", w->path);
  uint64_t nv = n * (w->ncols ? w->ncols : 1);
  errno = 0;
  if (fwrite(vals, 8, nv, w->f) != nv) return write_fail(w, err);
  w->n += n;
  return 0;
}

uint64_t npy_writer_count(const npy_writer_t *w) { return w ? w->n : 0; }

int npy_writer_close(npy_writer_t **wp, ps_err_t *err) {
  if (!wp || !*wp) return 0;
  npy_writer_t *w = *wp;
  int rc = write_header(w, err);
  if (rc == 0 && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
    rc = ps_err_set(err, -errno, "%s: flush: %s", w->tmp, strerror(errno));
  if (fclose(w->f) != 0 && rc == 0) rc = ps_err_set(err, -errno, "%s: close: %s", w->tmp, strerror(errno));
  w->f = NULL;
  if (rc == 0 && rename(w->tmp, w->path) != 0)
    rc = ps_err_set(err, -errno, "%s: rename from %s: %s", w->path, w->tmp, strerror(errno));
  if (rc < 0) unlink(w->tmp);
  else (void)ps_fsync_parent(w->path);  // best effort: some file systems refuse fsync on directories
  writer_free(w);
  *wp = NULL;
  return rc;
}

void npy_writer_abort(npy_writer_t **wp) {
  if (!wp || !*wp) return;
  npy_writer_t *w = *wp;
  if (w->f) fclose(w->f);
  unlink(w->tmp);
  writer_free(w);
  *wp = NULL;
}
