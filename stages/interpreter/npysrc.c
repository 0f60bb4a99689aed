// npysrc.c — see npysrc.h.
#include "npysrc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "emb.h"
#include "io.h"
#include "npy.h"

struct interp_npysrc {
  npy_header_t h;
  void *map;
  size_t map_len;
  char **ids;
  size_t n_ids;
  char *path;
};

// The ids file: the first token of each non-blank line (plain or gzip).
static int read_ids(const char *path, char ***ids, size_t *n, ps_err_t *err) {
  *ids = NULL;
  *n = 0;
  ps_lines_t *r = NULL;
  int rc = ps_lines_open(&r, path, 0, err);
  size_t acap = 0, len;
  char *line;
  while (rc >= 0 && (rc = ps_lines_next(r, &line, &len, err)) == 1) {
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    size_t t = strcspn(s, " \t\r\n");
    if (!t) continue;
    s[t] = 0;
    if (*n == acap) {
      acap = acap ? acap * 2 : 1024;
      *ids = ps_xrealloc(*ids, acap * sizeof **ids);
    }
    (*ids)[(*n)++] = ps_xstrdup(s);
  }
  ps_lines_close(&r);
  return rc < 0 ? rc : 0;
}

static int column(void *ctx, size_t unit, float *out, ps_err_t *err) {
  interp_npysrc_t *s = ctx;
  uint64_t rows = s->h.shape[0], cols = s->h.shape[1];
  if (unit >= cols) return ps_err_set(err, PS_EDIM, "%s: column %zu of %llu", s->path, unit, (unsigned long long)cols);
  const uint8_t *base = (const uint8_t *)s->map + s->h.data_offset;
  for (uint64_t r = 0; r < rows; r++) {
    const uint8_t *q = base + (r * cols + unit) * s->h.esize;
    switch (s->h.dtype) {
      case NPY_F32: {
        float v;
        memcpy(&v, q, 4);
        out[r] = v;
        break;
      }
      case NPY_F16: {
        uint16_t v;
        memcpy(&v, q, 2);
        out[r] = emb_half_to_float(v);
        break;
      }
      case NPY_F64: {
        double v;
        memcpy(&v, q, 8);
        out[r] = (float)v;
        break;
      }
      default:
        return ps_err_set(err, PS_EUNSUPP, "%s: dtype %s", s->path, npy_dtype_descr(s->h.dtype));
    }
  }
  return 0;
}

int interp_npysrc_open(interp_npysrc_t **out, const char *npy_path, const char *ids_path, interp_source_t *src,
                       ps_err_t *err) {
  *out = NULL;
  interp_npysrc_t *s = ps_xcalloc(1, sizeof *s);
  s->path = ps_xstrdup(npy_path);
  int rc = 0;
  FILE *f = fopen(npy_path, "rb");
  if (!f) {
    rc = ps_err_set(err, -errno, "%s: cannot open: %s", npy_path, strerror(errno));
    goto fail;
  }
  rc = npy_read_header(f, npy_path, &s->h, err);
  if (rc == 0) rc = npy_check_size(f, npy_path, &s->h, err);
  if (rc == 0 && s->h.dtype != NPY_F32 && s->h.dtype != NPY_F16 && s->h.dtype != NPY_F64)
    rc = ps_err_set(err, PS_EUNSUPP, "%s: dtype %s (f4, f2 or f8 expected)", npy_path, npy_dtype_descr(s->h.dtype));
  if (rc == 0 && s->h.ndim != 2) rc = ps_err_set(err, PS_EDIM, "%s: a 2-D array (proteins x units) expected", npy_path);
  if (rc < 0) {
    fclose(f);
    goto fail;
  }
  s->map_len = (size_t)(s->h.data_offset + s->h.shape[0] * s->h.shape[1] * s->h.esize);
  s->map = mmap(NULL, s->map_len ? s->map_len : 1, PROT_READ, MAP_PRIVATE, fileno(f), 0);
  fclose(f);
  if (s->map == MAP_FAILED) {
    s->map = NULL;
    rc = ps_err_set(err, -errno, "%s: mmap: %s", npy_path, strerror(errno));
    goto fail;
  }
  if ((rc = read_ids(ids_path, &s->ids, &s->n_ids, err)) < 0) goto fail;
  if (s->n_ids != s->h.shape[0]) {
    rc = ps_err_set(err, PS_EMISMATCH, "%s: %zu ids for the %llu rows of %s", ids_path, s->n_ids,
                    (unsigned long long)s->h.shape[0], npy_path);
    goto fail;
  }
  src->n_proteins = (size_t)s->h.shape[0];
  src->n_units = (size_t)s->h.shape[1];
  src->protein_ids = (const char *const *)s->ids;
  src->column = column;
  src->ctx = s;
  *out = s;
  return 0;
fail:
  interp_npysrc_destroy(&s);
  return rc;
}

void interp_npysrc_destroy(interp_npysrc_t **sp) {
  if (!sp || !*sp) return;
  interp_npysrc_t *s = *sp;
  if (s->map) munmap(s->map, s->map_len ? s->map_len : 1);
  for (size_t i = 0; i < s->n_ids; i++) free(s->ids[i]);
  free(s->ids);
  free(s->path);
  free(s);
  *sp = NULL;
}
