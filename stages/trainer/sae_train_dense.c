// sae_train_dense.c — ReLU and JumpReLU when many latents fire (active fraction above
// dense_threshold): the chunk's forward and backward with sgemm instead of the sparse path.
//   forward   F = act(pre) (rectified by the caller); E = F W_dec + b_dec - y; mse, l1 / l0
//   backward  E <- 2/B E; DP = (E W_dec^T + c_l1/B ||W_dec_j||) masked by F > 0
//             d W_dec += F^T E (+ the L1 term), d W_enc += DP^T xin, d b_enc += column sums of DP
// The result equals the sparse path's up to summation order (unit-tested).
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "sae_train_impl.h"

// 1 when this chunk's pre-activations (t->pre) should take the dense path.
int tr_dense_wanted(const sae_trainer_t *t) {
  const sae_t *s = t->s;
  int64_t n = s->cfg.d_sae, pos = 0, tot = t->rows * n;
  if (s->cfg.arch == SAE_RELU) {
    for (int64_t q = 0; q < tot; q++) {
      float v = t->pre[q];
      pos += v > 0.0f;
    }
  } else if (s->cfg.arch == SAE_JUMPRELU) {
    for (int64_t r = 0; r < t->rows; r++)
      for (int64_t j = 0; j < n; j++) pos += t->pre[r * n + j] > s->threshold[j];
  } else {
    return 0;
  }
  return (double)pos > t->o.dense_threshold * (double)tot;
}

// pre holds act(pre) = F on entry.
void tr_dense_chunk(sae_trainer_t *t, double *mse, double *l1, double *var, double *l0, double *ysum, double *gbdec) {
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, n = c->d_sae, o = c->d_out, R = t->rows;
  float *F = t->pre, *E = t->ebuf, *DP = t->dpre_dense;
  float *gWe = t->grad, *gbe = t->grad + n * d, *gWd = gbe + n;
  const float inv2B = (float)(2.0 / (double)t->B);
  const float l1B = (float)(t->l1c / (double)t->B);
  // E = F W_dec + b_dec - y
  for (int64_t r = 0; r < R; r++) memcpy(E + r * o, s->b_dec, (size_t)o * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)R, (blasint)o, (blasint)n, 1.0f, F, (blasint)n,
              s->W_dec, (blasint)o, 1.0f, E, (blasint)o);
  for (int64_t r = 0; r < R; r++) {
    float *er = E + r * o;
    const float *yr = t->yn + r * o;
    double se = 0;
    for (int64_t i = 0; i < o; i++) {
      er[i] -= yr[i];
      se += (double)er[i] * er[i];
      ysum[i] += yr[i];
      *var += (double)yr[i] * yr[i];
      er[i] *= inv2B;
      gbdec[i] += er[i];
    }
    *mse += se;
    const float *fr = F + r * n;
    for (int64_t j = 0; j < n; j++)
      if (fr[j] > 0) {
        t->dense_hash += sel_mix((uint64_t)(t->r0 + r), (uint64_t)j, 0);
        *l0 += 1;
        *l1 += c->arch == SAE_JUMPRELU ? 1.0 : (double)fr[j] * t->dec_norm[j];
      }
  }
  // DP = (E W_dec^T + l1B ||W_dec_j||) * (F > 0)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)R, (blasint)n, (blasint)o, 1.0f, E, (blasint)o,
              s->W_dec, (blasint)o, 0.0f, DP, (blasint)n);
  if (c->arch == SAE_JUMPRELU) jumprelu_dense_ste(t, DP);  // STE window entries (row order), before DP is masked
  float *colf = ps_xcalloc((size_t)n, sizeof(float)), *cold = ps_xcalloc((size_t)n, sizeof(float));
  for (int64_t r = 0; r < R; r++) {
    float *dr = DP + r * n;
    const float *fr = F + r * n;
    for (int64_t j = 0; j < n; j++) {
      dr[j] = fr[j] > 0 ? dr[j] + l1B * t->dec_norm[j] : 0.0f;
      colf[j] += fr[j];
      cold[j] += dr[j];
    }
  }
  for (int64_t j = 0; j < n; j++) {
    if (colf[j] > 0) t->fired[j] = 1;
    gbe[j] += cold[j];
  }
  // dW_dec += F^T E (+ L1 term); dW_enc += DP^T xin
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)n, (blasint)o, (blasint)R, 1.0f, F, (blasint)n, E,
              (blasint)o, 1.0f, gWd, (blasint)o);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)n, (blasint)d, (blasint)R, 1.0f, DP, (blasint)n,
              t->xin, (blasint)d, 1.0f, gWe, (blasint)d);
  if (l1B != 0.0f)
    for (int64_t j = 0; j < n; j++)
      if (colf[j] > 0 && t->dec_norm[j] > 0) axpyf(l1B * colf[j] / t->dec_norm[j], s->W_dec + j * o, gWd + j * o, o);
  if (c->apply_b_dec_to_input) {
    float *tmp = ps_xcalloc((size_t)d, sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)n, (blasint)d, 1.0f, s->W_encT, (blasint)d, cold, 1, 0.0f, tmp, 1);
    for (int64_t i = 0; i < d; i++) gbdec[i] -= tmp[i];
    free(tmp);
  }
  free(colf);
  free(cold);
}
