// sae_train_relu.c — the ReLU SAE: f_bj = pre_bj where pre_bj > 0, with the decoder-norm weighted
// L1 penalty l1 = c_l1(t)/B sum_b sum_j f_bj ||W_dec_j|| (c_l1 ramps up over l1_warmup_steps).
// Forward and backward of the penalty side by side:
//   forward   l1 += f_bj ||W_dec_j||                                     relu_l1_row
//   backward  d pre_bj += c_l1/B ||W_dec_j||                             relu_l1_row
//             d W_dec_j += c_l1/B (sum_b f_bj) W_dec_j / ||W_dec_j||     relu_l1_col
// The selection (relu_select_row) serves BatchTopK too, with its batch threshold. When many
// latents fire the whole chunk runs dense (sae_train_dense.c), rectified here first.
#include "sae_train_impl.h"

int64_t relu_select_row(tpart_t *p, const float *pre, int64_t n, float thr) {
  int64_t cnt = 0;
  for (int64_t j = 0; j < n; j++) {
    float v = pre[j];
    if (v > 0.0f && v >= thr) {
      tr_part_grow(&p->idx, &p->f, &p->dpre, &p->cap, p->nnz + cnt + 1);
      p->idx[p->nnz + cnt] = (int32_t)j;
      p->f[p->nnz + cnt] = v;
      cnt++;
    }
  }
  return cnt;
}

void relu_l1_row(const sae_trainer_t *t, tpart_t *p, const int32_t *ix, const float *fv, float *dp, int64_t cnt) {
  const float l1B = (float)(t->l1c / (double)t->B);
  if (l1B == 0.0f) return;
  for (int64_t q = 0; q < cnt; q++) {
    dp[q] += l1B * t->dec_norm[ix[q]];
    p->l1 += (double)fv[q] * t->dec_norm[ix[q]];
  }
}

void relu_l1_col(const sae_trainer_t *t, int64_t j, float fsum, float *gd) {
  const float l1B = (float)(t->l1c / (double)t->B);
  if (l1B != 0.0f && t->dec_norm[j] > 0) {  // d/dW_dec_j of l1B * sum_b f_bj ||W_dec_j||
    int64_t o = t->s->cfg.d_out;
    axpyf(l1B * fsum / t->dec_norm[j], t->s->W_dec + j * o, gd, o);
  }
}

// Dense path: pre <- relu(pre) = F.
void relu_dense_rectify(sae_trainer_t *t) {
  for (int64_t q = 0; q < t->rows * t->s->cfg.d_sae; q++) t->pre[q] = t->pre[q] > 0.0f ? t->pre[q] : 0.0f;
}
