// sae_train_topk.c — TopK and BatchTopK: which latents a row keeps (the forward selection; the
// backward through the kept ones is the shared sparse path, sae_train_rows.c).
//   TopK:      f_b = the k largest positive pre_bj of the row.
//   BatchTopK: f_bj = pre_bj where pre_bj >= thr, thr the (k B)-th largest positive
//              pre-activation of the batch (so k per row on average); at inference the model is
//              a JumpReLU with threshold = a moving average of thr (batchtopk_update_threshold).
#include <math.h>
#include <stdlib.h>

#include "sae_train_impl.h"

int64_t topk_select_row(tpart_t *p, const float *pre, int64_t n, int k) {
  tr_part_grow(&p->idx, &p->f, &p->dpre, &p->cap, p->nnz + k);
  return sae_topk_relu(pre, n, k, p->idx + p->nnz, p->f + p->nnz);
}

static float kth_largest(float *a, int64_t n, int64_t k) {  // k-th largest (1-based), a reordered
  int64_t lo = 0, hi = n - 1, want = k - 1;
  while (lo < hi) {
    float piv = a[lo + (hi - lo) / 2];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (a[i] > piv) i++;
      while (a[j] < piv) j--;
      if (i <= j) {
        float tmp = a[i]; a[i] = a[j]; a[j] = tmp;
        i++;
        j--;
      }
    }
    if (want <= j) hi = j;
    else if (want >= i) lo = i;
    else return a[want];
  }
  return a[want];
}

// This chunk's (the whole batch's) selection threshold over t->pre.
float batchtopk_threshold(sae_trainer_t *t) {
  const sae_cfg_t *c = &t->s->cfg;
  int64_t n = c->d_sae, R = t->rows, K = (int64_t)c->k * R;
  // lower bound: the smallest per-row k-th value (every row has k values >= it)
  int32_t *ix = ps_xmalloc((size_t)c->k * sizeof(int32_t));
  float *v = ps_xmalloc((size_t)c->k * sizeof(float));
  float lb = INFINITY;
  for (int64_t r = 0; r < R; r++) {
    int m = sae_topk_relu(t->pre + r * n, n, c->k, ix, v);
    float kth = INFINITY;
    for (int q = 0; q < m; q++) kth = v[q] < kth ? v[q] : kth;
    if (m < c->k) kth = 0.0f;
    lb = kth < lb ? kth : lb;
  }
  free(ix);
  free(v);
  int64_t cnt = 0, cap = K * 2 + 16;
  float *cand = ps_xmalloc((size_t)cap * sizeof(float));
  for (int64_t q = 0; q < R * n; q++) {
    float x = t->pre[q];
    if (x > 0.0f && x >= lb) {
      if (cnt == cap) {
        cap *= 2;
        cand = ps_xrealloc(cand, (size_t)cap * sizeof(float));
      }
      cand[cnt++] = x;
    }
  }
  float thr = cnt == 0 ? INFINITY : cnt <= K ? 0.0f : kth_largest(cand, cnt, K);
  if (cnt > 0 && cnt <= K) {  // fewer positive candidates than K: all of them
    thr = INFINITY;
    for (int64_t q = 0; q < cnt; q++) thr = cand[q] < thr ? cand[q] : thr;
  }
  free(cand);
  return thr;
}

// After a step: the model's (inference) threshold <- ema thr + (1 - ema) this batch's.
void batchtopk_update_threshold(sae_trainer_t *t) {
  sae_t *s = t->s;
  if (!isfinite(t->btk_thr)) return;
  float old = s->threshold[0];
  float nv = t->step == 1 ? t->btk_thr : (float)(t->o.threshold_ema * old + (1.0 - t->o.threshold_ema) * t->btk_thr);
  for (int64_t j = 0; j < s->cfg.d_sae; j++) s->threshold[j] = nv;
}
