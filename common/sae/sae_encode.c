// sae_encode.c — see sae.h: encoding rows into sparse codes (a chunk at a time: one sgemm for the
// pre-activations, then the selection row-parallel on the pool) and decoding codes.
#include "sae.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int64_t n_rows;
  int64_t *counts;     // per row
  int32_t *idx;
  float *val;
  int64_t nnz, cap;
} enc_part_t;

struct sae_enc {
  const sae_t *s;
  ps_pool_t *pool;
  int64_t chunk;
  float *xin, *pre;
  enc_part_t *parts;   // one per thread
  // per-run job
  int64_t rows;
  const float *x;
  int bad_row;         // first non-finite row in the chunk (-1)
};

int sae_enc_new(sae_enc_t **out, const sae_t *s, ps_pool_t *pool, int64_t chunk_rows, ps_err_t *err) {
  if (chunk_rows <= 0) chunk_rows = 1024;
  sae_enc_t *e = ps_xcalloc(1, sizeof *e);
  e->s = s;
  e->pool = pool;
  e->chunk = chunk_rows;
  e->xin = malloc((size_t)(chunk_rows * s->cfg.d_in) * sizeof(float));
  e->pre = malloc((size_t)(chunk_rows * s->cfg.d_sae) * sizeof(float));
  if (!e->xin || !e->pre) {
    sae_enc_free(&e);
    return ps_err_set(err, PS_ENOMEM, "sae: cannot allocate an encoding workspace of %lld rows",
                      (long long)chunk_rows);
  }
  int nt = ps_pool_size(pool);
  e->parts = ps_xcalloc((size_t)nt, sizeof *e->parts);
  for (int t = 0; t < nt; t++) e->parts[t].counts = ps_xmalloc((size_t)chunk_rows * sizeof(int64_t));
  *out = e;
  return 0;
}

void sae_enc_free(sae_enc_t **ep) {
  if (!ep || !*ep) return;
  sae_enc_t *e = *ep;
  free(e->xin);
  free(e->pre);
  if (e->parts)
    for (int t = 0; t < ps_pool_size(e->pool); t++) {
      free(e->parts[t].counts);
      free(e->parts[t].idx);
      free(e->parts[t].val);
    }
  free(e->parts);
  free(e);
  *ep = NULL;
}

void sae_codes_free(sae_codes_t *c) {
  free(c->indptr);
  free(c->indices);
  free(c->values);
  memset(c, 0, sizeof *c);
}

static void part_reserve(enc_part_t *p, int64_t extra) {
  if (p->nnz + extra <= p->cap) return;
  int64_t cap = p->cap ? p->cap : 4096;
  while (cap < p->nnz + extra) cap *= 2;
  p->idx = ps_xrealloc(p->idx, (size_t)cap * sizeof(int32_t));
  p->val = ps_xrealloc(p->val, (size_t)cap * sizeof(float));
  p->cap = cap;
}

static void enc_prepare(void *ctx, int tid, int nt) {
  sae_enc_t *e = ctx;
  const sae_cfg_t *c = &e->s->cfg;
  int64_t b, en, d = c->d_in;
  ps_pool_range(e->rows, tid, nt, &b, &en);
  for (int64_t r = b; r < en; r++) {
    float *row = e->xin + r * d;
    memcpy(row, e->x + r * d, (size_t)d * sizeof(float));
    for (int64_t i = 0; i < d; i++)
      if (!isfinite(row[i])) {
        __atomic_store_n(&e->bad_row, (int)r, __ATOMIC_RELAXED);  // any bad row; reported by row index
        break;
      }
    if (c->normalize_per_sample) sae_normalize_row(row, d, NULL, NULL);
    if (c->apply_b_dec_to_input)
      for (int64_t i = 0; i < d; i++) row[i] -= e->s->b_dec[i];
  }
}

static void enc_select(void *ctx, int tid, int nt) {
  sae_enc_t *e = ctx;
  const sae_t *s = e->s;
  int64_t b, en, m = s->cfg.d_sae;
  ps_pool_range(e->rows, tid, nt, &b, &en);
  enc_part_t *p = &e->parts[tid];
  p->n_rows = en - b;
  p->nnz = 0;
  for (int64_t r = b; r < en; r++) {
    const float *pre = e->pre + r * m;
    int64_t cnt = 0;
    if (s->cfg.arch == SAE_TOPK) {
      part_reserve(p, s->cfg.k);
      cnt = sae_topk_relu_bias(pre, s->b_enc, m, s->cfg.k, p->idx + p->nnz, p->val + p->nnz);
    } else {
      const float *th = s->threshold, *be = s->b_enc;
      for (int64_t j = 0; j < m; j++) {
        float v = pre[j] + be[j];
        if (v > 0.0f && (!th || v > th[j])) {
          part_reserve(p, cnt + 1);  // room past the entries of this row already written
          p->idx[p->nnz + cnt] = (int32_t)j;
          p->val[p->nnz + cnt] = v;
          cnt++;
        }
      }
    }
    p->counts[r - b] = cnt;
    p->nnz += cnt;
  }
}

int sae_enc_run(sae_enc_t *e, const float *x, int64_t n, sae_codes_t *codes, ps_err_t *err) {
  const sae_t *s = e->s;
  int nt = ps_pool_size(e->pool);
  if (codes->cap_rows < n + 1) {
    codes->indptr = ps_xrealloc(codes->indptr, (size_t)(n + 1) * sizeof(int64_t));
    codes->cap_rows = n + 1;
  }
  codes->n_rows = 0;
  codes->indptr[0] = 0;
  int64_t nnz = 0;
  for (int64_t r0 = 0; r0 < n; r0 += e->chunk) {
    e->rows = n - r0 < e->chunk ? n - r0 : e->chunk;
    e->x = x + r0 * s->cfg.d_in;
    e->bad_row = -1;
    ps_pool_run(e->pool, enc_prepare, e);
    if (e->bad_row >= 0) {
      int64_t row = r0 + e->bad_row;
      for (int64_t i = 0; i < s->cfg.d_in; i++)
        if (!isfinite(x[row * s->cfg.d_in + i]))
          return ps_err_set(err, PS_ENAN, "sae encode: non-finite input at row %lld, column %lld", (long long)row,
                            (long long)i);
    }
    // pre = xin W_enc only (beta 0: OpenBLAS clears C inside its own threads); b_enc is added
    // during the selection, which reads every pre-activation once anyway.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)e->rows, (blasint)s->cfg.d_sae,
                (blasint)s->cfg.d_in, 1.0f, e->xin, (blasint)s->cfg.d_in, s->W_encT, (blasint)s->cfg.d_in, 0.0f, e->pre,
                (blasint)s->cfg.d_sae);
    ps_pool_run(e->pool, enc_select, e);
    int64_t add = 0;
    for (int t = 0; t < nt; t++) add += e->parts[t].nnz;
    if (codes->cap_nnz < nnz + add) {
      int64_t cap = codes->cap_nnz ? codes->cap_nnz : 4096;
      while (cap < nnz + add) cap *= 2;
      codes->indices = ps_xrealloc(codes->indices, (size_t)cap * sizeof(int32_t));
      codes->values = ps_xrealloc(codes->values, (size_t)cap * sizeof(float));
      codes->cap_nnz = cap;
    }
    for (int t = 0; t < nt; t++) {
      enc_part_t *p = &e->parts[t];
      if (p->nnz) {  // a thread with no rows in this chunk has no buffers yet
        memcpy(codes->indices + nnz, p->idx, (size_t)p->nnz * sizeof(int32_t));
        memcpy(codes->values + nnz, p->val, (size_t)p->nnz * sizeof(float));
      }
      for (int64_t r = 0; r < p->n_rows; r++) {
        codes->indptr[codes->n_rows + 1] = codes->indptr[codes->n_rows] + p->counts[r];
        codes->n_rows++;
      }
      nnz += p->nnz;
    }
  }
  return 0;
}

void sae_decode(const sae_t *s, const sae_codes_t *codes, float *y) {
  int64_t o = s->cfg.d_out;
  for (int64_t r = 0; r < codes->n_rows; r++) {
    float *yr = y + r * o;
    memcpy(yr, s->b_dec, (size_t)o * sizeof(float));
    for (int64_t p = codes->indptr[r]; p < codes->indptr[r + 1]; p++) {
      const float *w = s->W_dec + (int64_t)codes->indices[p] * o;
      float a = codes->values[p];
      for (int64_t i = 0; i < o; i++) yr[i] += a * w[i];
    }
  }
}
