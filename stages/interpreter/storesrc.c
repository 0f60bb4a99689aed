// storesrc.c — see storesrc.h.
#include "storesrc.h"

#include <string.h>

#include "featstore.h"

struct interp_storesrc {
  fs_csc_t csc;
};

static int column(void *ctx, size_t unit, float *out, ps_err_t *err) {
  const fs_csc_t *c = &((interp_storesrc_t *)ctx)->csc;
  if (unit >= c->n_features) return ps_err_set(err, PS_ENOTFOUND, "unit %zu of %u", unit, c->n_features);
  memset(out, 0, c->n_proteins * sizeof *out);
  for (uint64_t j = c->colptr[unit]; j < c->colptr[unit + 1]; j++) out[c->rows[j]] = c->vals[j];
  return 0;
}

int interp_storesrc_open(interp_storesrc_t **out, const char *db_path, interp_source_t *src, ps_err_t *err) {
  *out = NULL;
  fs_t *fs = NULL;
  int rc = fs_open(&fs, db_path, FS_OPEN_READONLY, err);
  if (rc < 0) return rc;
  interp_storesrc_t *s = ps_xcalloc(1, sizeof *s);
  rc = fs_load_csc(fs, &s->csc, err);
  fs_close(&fs);
  if (rc < 0) {
    free(s);
    return rc;
  }
  memset(src, 0, sizeof *src);
  src->n_proteins = s->csc.n_proteins;
  src->n_units = s->csc.n_features;
  src->protein_ids = (const char *const *)s->csc.ids;
  src->column = column;
  src->ctx = s;
  *out = s;
  return 0;
}

void interp_storesrc_destroy(interp_storesrc_t **sp) {
  if (!*sp) return;
  fs_csc_free(&(*sp)->csc);
  free(*sp);
  *sp = NULL;
}
