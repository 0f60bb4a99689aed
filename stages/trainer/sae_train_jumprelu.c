// sae_train_jumprelu.c — JumpReLU (Rajamanoharan et al. 2024, as SAELens' JumpReLUTrainingSAE):
// f_bj = pre_bj H(pre_bj - theta_j), theta_j = exp(log_threshold_j) learnt with the rest (Adam,
// sae_train_adam.c); the penalty is L0: c_l0(t)/B sum_b sum_j H(pre_bj - theta_j).
// Forward and backward side by side:
//   forward   select pre_bj > theta_j; note the pairs in the straight-through window
//             |pre_bj - theta_j| < eps/2 (rectangle kernel)                jumprelu_select_row
//   backward  d pre_bj: the shared sparse path (H(pre - theta) dL/df); the window pairs give
//             dL/dtheta_j += -(theta_j/eps) dL/df_bj - c_l0/(B eps)        jumprelu_ste_row
//             dL/dlog_threshold_j = theta_j dL/dtheta_j                    jumprelu_finish_grad
// The dense path (sae_train_dense.c) collects the window over the chunk (jumprelu_dense_window)
// and applies the same kernel to its dense dL/df (jumprelu_dense_ste).
#include <math.h>
#include <string.h>

#include "sae_train_impl.h"

// Is pre in the STE window of theta (rectangle kernel, computed as torch does)?
static inline int in_window(float v, float th, float bw) {
  float u = (v - th) / bw;
  return u > -0.5f && u < 0.5f;
}

static void win_grow(tpart_t *p, int64_t need) {
  if (need <= p->wcap) return;
  int64_t c = p->wcap ? p->wcap : 1024;
  while (c < need) c *= 2;
  p->widx = ps_xrealloc(p->widx, (size_t)c * sizeof(int32_t));
  p->wrow = ps_xrealloc(p->wrow, (size_t)c * sizeof(int32_t));
  p->wg = ps_xrealloc(p->wg, (size_t)c * sizeof(float));
  p->wcap = c;
}

// log_threshold and its gradient and Adam moments; it continues from the model's threshold where
// it has one (a loaded SAE), else starts at the initial value.
void jumprelu_state_init(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae;
  t->lt = ps_xmalloc((size_t)n * sizeof(float));
  t->glt = ps_xcalloc((size_t)n, sizeof(float));
  t->mlt = ps_xcalloc((size_t)n, sizeof(float));
  t->vlt = ps_xcalloc((size_t)n, sizeof(float));
  t->glt_acc = ps_xcalloc((size_t)n, sizeof(double));
  for (int64_t j = 0; j < n; j++)
    t->lt[j] = t->s->threshold[j] > 0 ? logf(t->s->threshold[j]) : (float)log(t->o.jumprelu_init_threshold);
  sae_trainer_sync_threshold(t);
}

void sae_trainer_sync_threshold(sae_trainer_t *t) {
  if (!t->lt) return;
  for (int64_t j = 0; j < t->s->cfg.d_sae; j++) t->s->threshold[j] = expf(t->lt[j]);
}

int64_t jumprelu_select_row(const sae_trainer_t *t, tpart_t *p, const float *pre, int64_t r) {
  const float *th = t->s->threshold;
  const float bw = (float)t->o.jumprelu_bandwidth;
  int64_t cnt = 0;
  for (int64_t j = 0; j < t->s->cfg.d_sae; j++) {
    float v = pre[j];
    if (v > th[j]) {
      tr_part_grow(&p->idx, &p->f, &p->dpre, &p->cap, p->nnz + cnt + 1);
      p->idx[p->nnz + cnt] = (int32_t)j;
      p->f[p->nnz + cnt] = v;
      cnt++;
    }
    if (in_window(v, th[j], bw)) {
      win_grow(p, p->wnnz + 1);
      p->widx[p->wnnz] = (int32_t)j;
      p->wrow[p->wnnz] = (int32_t)r;
      p->wnnz++;
    }
  }
  return cnt;
}

// Row r's L0 and its window pairs' d loss / d theta (er: 2/B times the row's error).
void jumprelu_ste_row(const sae_trainer_t *t, tpart_t *p, const float *er, int64_t cnt, int64_t r) {
  const sae_t *s = t->s;
  const int64_t o = s->cfg.d_out;
  const float bw = (float)t->o.jumprelu_bandwidth, l0B = (float)(t->l0c / (double)t->B);
  const float *th = s->threshold;
  p->l1 += (double)cnt;
  // STE: d/dtheta of JumpReLU (-(theta/eps) dL/df) and of the L0 step (-(1/eps) c_l0/B)
  for (int64_t q = p->wnnz - 1; q >= 0 && p->wrow[q] == (int32_t)r; q--) {
    int32_t j = p->widx[q];
    float gf = dotf(er, s->W_dec + (int64_t)j * o, o);
    p->wg[q] = -(th[j] / bw) * gf + -(1.0f / bw) * l0B;
  }
}

// Dense path: the chunk's window entries (r n + j, row order) into t->dwin; pre <- f.
void jumprelu_dense_window(sae_trainer_t *t) {
  const sae_t *s = t->s;
  int64_t n = s->cfg.d_sae;
  const float bw = (float)t->o.jumprelu_bandwidth;
  t->dwin_n = 0;
  for (int64_t r = 0; r < t->rows; r++)
    for (int64_t j = 0; j < n; j++) {
      float *v = &t->pre[r * n + j];
      if (in_window(*v, s->threshold[j], bw)) {
        if (t->dwin_n == t->dwin_cap) {
          t->dwin_cap = t->dwin_cap ? 2 * t->dwin_cap : 4096;
          t->dwin = ps_xrealloc(t->dwin, (size_t)t->dwin_cap * sizeof(int64_t));
        }
        t->dwin[t->dwin_n++] = r * n + j;
      }
      *v = *v > s->threshold[j] ? *v : 0.0f;
    }
}

// Dense path: the window entries' d loss / d theta from DP = dL/df (chunk rows x d_sae, unmasked).
void jumprelu_dense_ste(sae_trainer_t *t, const float *DP) {
  int64_t n = t->s->cfg.d_sae;
  const float bw = (float)t->o.jumprelu_bandwidth, l0B = (float)(t->l0c / (double)t->B);
  for (int64_t q = 0; q < t->dwin_n; q++) {
    int64_t j = t->dwin[q] % n;
    float th = t->s->threshold[j];
    t->glt_acc[j] += -(th / bw) * DP[t->dwin[q]] + -(1.0f / bw) * l0B;
  }
}

// d loss / d log_threshold = theta d loss / d theta.
void jumprelu_finish_grad(sae_trainer_t *t) {
  for (int64_t j = 0; j < t->s->cfg.d_sae; j++) t->glt[j] = (float)t->glt_acc[j] * t->s->threshold[j];
}
