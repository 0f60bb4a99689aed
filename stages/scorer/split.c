// split.c — see split.h.
#include "split.h"

#include <stdlib.h>
#include <string.h>

#include "featstore.h"

typedef struct part {
  Protsae__FeatureBatch fb;
  uint32_t *indptr, *indices, *pindptr, *pindices;
  float *values, *pvalues;
  size_t cap_rows, cap_nnz, cap_prot, cap_pnnz;
} part_t;

struct fb_split {
  uint32_t n;
  part_t *p;
  Protsae__FeatureBatch **out;
};

fb_split_t *fb_split_new(uint32_t n_shards) {
  fb_split_t *s = ps_xcalloc(1, sizeof *s);
  s->n = n_shards;
  s->p = ps_xcalloc(n_shards, sizeof *s->p);
  return s;
}

void fb_split_destroy(fb_split_t **sp) {
  fb_split_t *s = *sp;
  if (!s) return;
  for (uint32_t k = 0; k < s->n; k++) {
    part_t *p = &s->p[k];
    free(p->indptr), free(p->indices), free(p->values);
    free(p->pindptr), free(p->pindices), free(p->pvalues);
  }
  free(s->p);
  free(s);
  *sp = NULL;
}

static void grow_u32(uint32_t **a, size_t *cap, size_t need) {
  if (need <= *cap) return;
  *cap = need + need / 2 + 16;
  *a = ps_xrealloc(*a, *cap * sizeof **a);
}

// One CSR (rows x entries) cut by feature range into every part's (indptr, indices, values).
// which: 0 the residue/protein codes, 1 the pooled codes.
static int cut(fb_split_t *s, uint32_t n_features, size_t rows, const uint32_t *indptr, const uint32_t *idx,
               const float *val, int which, ps_err_t *err) {
  size_t nnz = indptr[rows];
  for (uint32_t k = 0; k < s->n; k++) {
    part_t *p = &s->p[k];
    size_t *cr = which ? &p->cap_prot : &p->cap_rows, *cn = which ? &p->cap_pnnz : &p->cap_nnz;
    uint32_t **ip = which ? &p->pindptr : &p->indptr, **ix = which ? &p->pindices : &p->indices;
    float **vv = which ? &p->pvalues : &p->values;
    size_t old = *cn;
    grow_u32(ip, cr, rows + 1);
    grow_u32(ix, cn, nnz);
    if (*cn != old) *vv = ps_xrealloc(*vv, *cn * sizeof **vv);
    (*ip)[0] = 0;
  }
  uint32_t *fill = ps_xcalloc(s->n, sizeof *fill);
  int rc = 0;
  for (size_t r = 0; r < rows && rc == 0; r++) {
    for (uint32_t j = indptr[r]; j < indptr[r + 1]; j++) {
      uint32_t f = idx[j];
      if (f >= n_features) {
        rc = ps_err_set(err, PS_EPROTO, "FeatureBatch: %sfeature %u at entry %u >= n_features %u", which ? "pooled " : "",
                        f, j, n_features);
        break;
      }
      uint32_t k = (uint32_t)(((uint64_t)f * s->n + s->n - 1) / n_features);  // first k with hi_k > f ...
      uint32_t lo, hi;
      fs_shard_range(k, s->n, n_features, &lo, &hi);
      while (k > 0 && f < lo) fs_shard_range(--k, s->n, n_features, &lo, &hi);  // ... exact by the same formula
      while (f >= hi) fs_shard_range(++k, s->n, n_features, &lo, &hi);
      part_t *p = &s->p[k];
      uint32_t at = fill[k]++;
      (which ? p->pindices : p->indices)[at] = f;
      (which ? p->pvalues : p->values)[at] = val[j];
    }
    for (uint32_t k = 0; k < s->n; k++) (which ? s->p[k].pindptr : s->p[k].indptr)[r + 1] = fill[k];
  }
  free(fill);
  return rc;
}

int fb_split_run(fb_split_t *s, const Protsae__FeatureBatch *fb, Protsae__FeatureBatch **out, ps_err_t *err) {
  if (!fb->n_features) return ps_err_set(err, PS_EPROTO, "FeatureBatch with n_features 0");
  int rc = cut(s, fb->n_features, fb->n_rows, fb->indptr, fb->indices, fb->values, 0, err);
  if (rc < 0) return rc;
  int pooled = fb->n_pooled_indptr > 0;
  if (pooled) {
    if (fb->n_pooled_indptr != fb->n_protein_ids + 1 || fb->pooled_indptr[0] != 0 ||
        fb->n_pooled_indices != fb->n_pooled_values || fb->pooled_indptr[fb->n_protein_ids] != fb->n_pooled_indices)
      return ps_err_set(err, PS_EPROTO, "FeatureBatch: pooled codes inconsistent (%zu indptr entries for %zu proteins, "
                                        "%zu indices, %zu values)", fb->n_pooled_indptr, fb->n_protein_ids,
                        fb->n_pooled_indices, fb->n_pooled_values);
    for (size_t p = 0; p < fb->n_protein_ids; p++)
      if (fb->pooled_indptr[p + 1] < fb->pooled_indptr[p])
        return ps_err_set(err, PS_EPROTO, "FeatureBatch: pooled indptr decreases at protein %zu", p);
    if ((rc = cut(s, fb->n_features, fb->n_protein_ids, fb->pooled_indptr, fb->pooled_indices, fb->pooled_values, 1,
                  err)) < 0)
      return rc;
  }
  for (uint32_t k = 0; k < s->n; k++) {
    part_t *p = &s->p[k];
    p->fb = *fb;  // shared fields borrowed
    p->fb.indptr = p->indptr;
    p->fb.n_indices = p->fb.n_values = p->indptr[fb->n_rows];
    p->fb.indices = p->indices;
    p->fb.values = p->values;
    if (pooled) {
      p->fb.pooled_indptr = p->pindptr;
      p->fb.n_pooled_indices = p->fb.n_pooled_values = p->pindptr[fb->n_protein_ids];
      p->fb.pooled_indices = p->pindices;
      p->fb.pooled_values = p->pvalues;
    }
    out[k] = &p->fb;
  }
  return 0;
}
