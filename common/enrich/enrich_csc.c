// enrich_csc.c — the enrichment engine's input: checking feature-major sparse activations (CSC)
// and building them from the SAE's protein-major codes (CSR). See enrich.h.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "enrich.h"

int enrich_csc_check(const enrich_csc_t *c, const char *what, ps_err_t *err) {
  if (c->n_features < 0 || c->n_proteins < 0 || (c->n_features > 0 && !c->indptr))
    return ps_err_set(err, PS_EDIM, "%s: bad shape (%lld features, %lld proteins)", what, (long long)c->n_features,
                      (long long)c->n_proteins);
  if (c->n_features >= (int64_t)UINT32_MAX)
    return ps_err_set(err, PS_EDIM, "%s: %lld features (at most %u)", what, (long long)c->n_features, UINT32_MAX - 1);
  if (c->n_features > 0 && c->indptr[0] != 0)
    return ps_err_set(err, PS_EFORMAT, "%s: indptr[0] is %lld, not 0", what, (long long)c->indptr[0]);
  uint32_t *seen = c->n_proteins ? ps_xcalloc((size_t)c->n_proteins, sizeof *seen) : NULL;
  int rc = 0;
  for (int64_t f = 0; f < c->n_features && !rc; f++) {
    if (c->indptr[f + 1] < c->indptr[f]) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: feature %lld: indptr decreases (%lld -> %lld)", what, (long long)f,
                      (long long)c->indptr[f], (long long)c->indptr[f + 1]);
      break;
    }
    for (int64_t j = c->indptr[f]; j < c->indptr[f + 1]; j++) {
      int32_t r = c->rows[j];
      if (r < 0 || r >= c->n_proteins) {
        rc = ps_err_set(err, PS_EDIM, "%s: feature %lld: entry %lld: protein %d outside [0, %lld)", what, (long long)f,
                        (long long)(j - c->indptr[f]), r, (long long)c->n_proteins);
        break;
      }
      if (!isfinite(c->values[j])) {
        rc = ps_err_set(err, PS_ENAN, "%s: feature %lld: entry %lld (protein %d): value %g is not finite", what,
                        (long long)f, (long long)(j - c->indptr[f]), r, (double)c->values[j]);
        break;
      }
      if (seen[r] == (uint32_t)f + 1) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: feature %lld: entry %lld: protein %d listed twice", what, (long long)f,
                        (long long)(j - c->indptr[f]), r);
        break;
      }
      seen[r] = (uint32_t)f + 1;
    }
  }
  free(seen);
  return rc;
}

int enrich_csc_from_csr(enrich_csc_buf_t *out, int64_t n_rows, int64_t n_features, const int64_t *indptr,
                        const int32_t *cols, const float *values, ps_err_t *err) {
  memset(out, 0, sizeof *out);
  if (n_rows < 0 || n_rows > INT32_MAX || n_features < 0)
    return ps_err_set(err, PS_EDIM, "csr: bad shape (%lld rows, %lld features)", (long long)n_rows,
                      (long long)n_features);
  int64_t nnz = n_rows ? indptr[n_rows] : 0;
  out->indptr = ps_xcalloc((size_t)n_features + 1, sizeof *out->indptr);
  out->rows = ps_xmalloc((size_t)(nnz ? nnz : 1) * sizeof *out->rows);
  out->values = ps_xmalloc((size_t)(nnz ? nnz : 1) * sizeof *out->values);
  for (int64_t r = 0; r < n_rows; r++) {
    if (indptr[r + 1] < indptr[r]) {
      enrich_csc_buf_free(out);
      return ps_err_set(err, PS_EFORMAT, "csr: row %lld: indptr decreases", (long long)r);
    }
    for (int64_t j = indptr[r]; j < indptr[r + 1]; j++) {
      if (cols[j] < 0 || cols[j] >= n_features) {
        int32_t c = cols[j];
        enrich_csc_buf_free(out);
        return ps_err_set(err, PS_EDIM, "csr: row %lld: latent %d outside [0, %lld)", (long long)r, c,
                          (long long)n_features);
      }
      out->indptr[cols[j] + 1]++;
    }
  }
  for (int64_t f = 0; f < n_features; f++) out->indptr[f + 1] += out->indptr[f];
  int64_t *pos = ps_xmalloc((size_t)(n_features ? n_features : 1) * sizeof *pos);
  memcpy(pos, out->indptr, (size_t)n_features * sizeof *pos);
  for (int64_t r = 0; r < n_rows; r++)
    for (int64_t j = indptr[r]; j < indptr[r + 1]; j++) {
      int64_t q = pos[cols[j]]++;
      out->rows[q] = (int32_t)r;
      out->values[q] = values[j];
    }
  free(pos);
  out->csc.n_features = n_features;
  out->csc.n_proteins = n_rows;
  out->csc.indptr = out->indptr;
  out->csc.rows = out->rows;
  out->csc.values = out->values;
  return 0;
}

void enrich_csc_buf_free(enrich_csc_buf_t *b) {
  if (!b) return;
  free(b->indptr);
  free(b->rows);
  free(b->values);
  memset(b, 0, sizeof *b);
}

