// sae_train_reg.c — the terms added to the reconstruction loss and the decoder constraint, each
// with its forward (the penalty) and backward (its gradient) together:
//   AuxK (TopK / BatchTopK)    aux = c_aux min(n_dead/k_aux, 1)/B sum_b ||a_b - (y_b - y^_b)||^2,
//                              a_b from the top min(k_aux, n_dead) dead latents (auxk_prepare, auxk_row)
//   encoder-decoder tie        c sum_j ||W_enc_j - W_dec_j||^2 (tie_grad)
//   unit-norm decoder          the gradient's component along each row removed before the step,
//                              rows renormalised after it (decoder_project_grad, decoder_renormalise)
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sae_train_impl.h"

// ---- AuxK -----------------------------------------------------------------------------------------
// This step's dead latents (no firing in the last dead_steps steps), k_aux in use and coefficient.
void auxk_prepare(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae;
  t->n_dead = 0;
  if (t->o.k_aux > 0 && t->o.dead_steps > 0)
    for (int64_t j = 0; j < n; j++)
      if (t->since_fired[j] >= t->o.dead_steps) t->dead[t->n_dead++] = (int32_t)j;
  t->kaux = t->n_dead > 0 ? (int32_t)(t->o.k_aux < t->n_dead ? t->o.k_aux : t->n_dead) : 0;
  t->auxc = t->kaux > 0 ? t->o.aux_coeff * fmin((double)t->n_dead / (double)t->o.k_aux, 1.0) : 0.0;
}

// Row r: select the top kaux dead latents of pre, a_b = sum ReLU(pre_bj) W_dec_j, the residual
// ga_b = a_b + err (err = y^_b - y_b, not yet scaled; a constant: no gradient flows into it);
// aux += ||ga_b||^2; ga_b <- 2 c_aux/B ga_b (into t->gabuf) and d pre_bj = ga_b . W_dec_j for the
// aux entries. Returns their count.
int64_t auxk_row(sae_trainer_t *t, tpart_t *p, const float *pre, const float *er, int64_t r) {
  const sae_t *s = t->s;
  const int64_t o = s->cfg.d_out;
  const float ga_scale = (float)(2.0 * t->auxc / (double)t->B);
  tr_part_grow(&p->aidx, &p->af, &p->adpre, &p->acap, p->annz + t->kaux);
  int32_t *aix = p->aidx + p->annz;
  float *afv = p->af + p->annz, *adp = p->adpre + p->annz;
  int64_t acnt = sae_topk_subset(pre, t->dead, t->n_dead, t->kaux, aix, afv);
  float *ga = t->gabuf + r * o;
  memcpy(ga, er, (size_t)o * sizeof(float));
  for (int64_t q = 0; q < acnt; q++) axpyf(afv[q], s->W_dec + (int64_t)aix[q] * o, ga, o);
  double sa = 0;
  for (int64_t i = 0; i < o; i++) sa += (double)ga[i] * ga[i];
  p->aux += sa;
  for (int64_t i = 0; i < o; i++) ga[i] *= ga_scale;
  for (int64_t q = 0; q < acnt; q++) adp[q] = dotf(ga, s->W_dec + (int64_t)aix[q] * o, o);
  return acnt;
}

// ---- encoder-decoder tie ------------------------------------------------------------------------------
// Encoder-decoder tie (d_in == d_out): P = c sum_j ||e_j - w_j||^2, e_j latent j's encoder column, w_j
// its decoder row; dP/de_j = 2c (e_j - w_j) = -dP/dw_j. Every latent, every step (n d_in). A latent
// whose encoder leans away from its own decoder direction, as a general feature's does when it
// must stay silent where a specific feature has absorbed its direction, pays for it.
double tie_grad(sae_trainer_t *t) {
  sae_t *s = t->s;
  int64_t n = s->cfg.d_sae, d = s->cfg.d_in;
  float *gWe = t->grad, *gWd = t->grad + n * d + n;
  const float c2 = (float)(2.0 * t->o.tie_coeff);
  double pen = 0;
  for (int64_t j = 0; j < n; j++) {
    const float *e = s->W_encT + j * d, *w = s->W_dec + j * d;
    float *ge = gWe + j * d, *gw = gWd + j * d;
    double pj = 0;
    for (int64_t i = 0; i < d; i++) {
      float df = e[i] - w[i];
      pj += (double)df * df;
      ge[i] += c2 * df;
      gw[i] -= c2 * df;
    }
    pen += pj;
  }
  return t->o.tie_coeff * pen;
}

// ---- unit-norm decoder ------------------------------------------------------------------------------------
// Before the step: remove the gradient component parallel to each decoder row.
void decoder_project_grad(sae_trainer_t *t) {
  const sae_t *s = t->s;
  int64_t n = s->cfg.d_sae, d = s->cfg.d_in, o = s->cfg.d_out;
  float *gWd = t->grad + n * d + n;
  for (int64_t j = 0; j < n; j++) {
    const float *w = s->W_dec + j * o;
    float *g = gWd + j * o;
    float nn = t->dec_norm[j] * t->dec_norm[j];
    if (nn > 0) axpyf(-dotf(g, w, o) / nn, w, g, o);
  }
}

// After the step: every decoder row back to norm 1.
void decoder_renormalise(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae, o = t->s->cfg.d_out;
  for (int64_t j = 0; j < n; j++) {
    float *w = t->s->W_dec + j * o;
    float nrm = sqrtf(dotf(w, w, o));
    if (nrm > 0)
      for (int64_t i = 0; i < o; i++) w[i] /= nrm;
  }
}
