// sae_train_reg.c — the terms added to the reconstruction loss and the decoder constraint, each
// with its forward (the penalty) and backward (its gradient) together:
//   AuxK (TopK / BatchTopK)    aux = c_aux min(n_dead/k_aux, 1)/B sum_b ||a_b - (y_b - y^_b)||^2,
//                              a_b from the top min(k_aux, n_dead) dead latents (auxk_prepare, auxk_row)
//   decoder orthogonality      over the latents active in the batch or in a row (ortho_grad, ortho_rows)
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

// ---- decoder orthogonality ---------------------------------------------------------------------------
// Decoder orthogonality over the latents A that fired in this batch: P = c sum_{i != j in A} h_ij^2
// with h = sign(g) max(|g| - margin, 0), g = w_i . w_j; dP/dw_i = 4 c sum_{j != i} h_ij w_j.
// With a unit-norm decoder the dot products are cosines: P pulls apart decoder rows that share a direction, as a child feature's row does when
// it absorbs its parent's direction (OrtSAE, Korznikov et al. 2025, penalise the same). Cost: two
// |A| x |A| x d_out products. Returns P; adds dP/dW_dec to the gradient.
double ortho_grad(sae_trainer_t *t) {
  sae_t *s = t->s;
  int64_t n = s->cfg.d_sae, o = s->cfg.d_out, d = s->cfg.d_in, m = 0;
  for (int64_t j = 0; j < n; j++) m += t->fired[j] != 0;
  if (m < 2) return 0.0;
  int32_t *act = ps_xmalloc((size_t)m * sizeof *act);
  float *W = ps_xmalloc((size_t)(m * o) * sizeof *W), *G = ps_xmalloc((size_t)(m * m) * sizeof *G);
  float *gW = ps_xmalloc((size_t)(m * o) * sizeof *gW);
  m = 0;
  for (int64_t j = 0; j < n; j++)
    if (t->fired[j]) {
      act[m] = (int32_t)j;
      memcpy(W + m * o, s->W_dec + j * o, (size_t)o * sizeof *W);
      m++;
    }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)m, (blasint)o, 1.0f, W, (blasint)o, W,
              (blasint)o, 0.0f, G, (blasint)m);
  double pen = 0;
  const float tau = (float)t->o.ortho_margin;
  for (int64_t i = 0; i < m; i++) {
    G[i * m + i] = 0.0f;
    for (int64_t j = 0; j < m; j++) {  // G <- sign(g) max(|g| - margin, 0)
      float g = G[i * m + j], a = fabsf(g) - tau;
      G[i * m + j] = a > 0.0f ? copysignf(a, g) : 0.0f;
      pen += (double)G[i * m + j] * G[i * m + j];
    }
  }
  const double c = t->o.ortho_coeff;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)o, (blasint)m, (float)(4.0 * c), G,
              (blasint)m, W, (blasint)o, 0.0f, gW, (blasint)o);
  float *gWd = t->grad + n * d + n;
  for (int64_t i = 0; i < m; i++) axpyf(1.0f, gW + i * o, gWd + (int64_t)act[i] * o, o);
  free(act);
  free(W);
  free(G);
  free(gW);
  return c * pen;
}

// Per-row decoder orthogonality, on the chunk just processed: P += c/B sum_b sum_{i != j active in
// row b} h_ij^2 (h as above), dP/dw_i = 4c/B sum_b sum_{j != i in b} h_ij w_j. Only latents that fire
// together pay, in proportion to how often they do: a child feature whose row absorbed its
// parent's direction fires with the parent on the child's proteins. Cost: k^2 d_out per row, run
// in row order (bitwise reproducible). Returns the chunk's P. Scope row-rarer (ortho_per_row 2)
// moves only the row of the latent that has fired in fewer steps so far (both on a tie): the
// specific feature gives up the general one's direction, the general one stays where it is. That
// is a stop-gradient on the more frequent latent's row, not the gradient of P.
static double ortho_row(sae_trainer_t *t, const int32_t *ix, int64_t m) {
  sae_t *s = t->s;
  int64_t n = s->cfg.d_sae, o = s->cfg.d_out, d = s->cfg.d_in;
  float *gWd = t->grad + n * d + n;
  const float tau = (float)t->o.ortho_margin, g4 = (float)(4.0 * t->o.ortho_coeff / (double)t->B);
  const int rarer = t->o.ortho_per_row == 2;
  double pen = 0;
  for (int64_t a = 0; a < m; a++)
    for (int64_t b = a + 1; b < m; b++) {
      const float *wa = s->W_dec + (int64_t)ix[a] * o, *wb = s->W_dec + (int64_t)ix[b] * o;
      float g = dotf(wa, wb, o), h = fabsf(g) - tau;
      if (h <= 0.0f) continue;
      h = copysignf(h, g);
      pen += 2.0 * (double)h * h;  // ordered pairs (a, b) and (b, a)
      int64_t fa = t->fire_steps[ix[a]], fb = t->fire_steps[ix[b]];
      if (!rarer || fa <= fb) axpyf(g4 * h, wb, gWd + (int64_t)ix[a] * o, o);
      if (!rarer || fb <= fa) axpyf(g4 * h, wa, gWd + (int64_t)ix[b] * o, o);
    }
  return t->o.ortho_coeff * pen / (double)t->B;
}

double ortho_rows(sae_trainer_t *t) {  // sparse path: the rows' active lists
  double pen = 0;
  for (int i = 0; i < t->nt; i++) {
    const tpart_t *p = &t->parts[i];
    const int32_t *ix = p->idx;
    for (int64_t r = p->rb; r < p->re; ix += p->cnt[r - p->rb], r++) pen += ortho_row(t, ix, p->cnt[r - p->rb]);
  }
  return pen;
}

double ortho_rows_dense(sae_trainer_t *t) {  // dense path: F = t->pre (already rectified)
  int64_t n = t->s->cfg.d_sae;
  int32_t *ix = ps_xmalloc((size_t)n * sizeof *ix);
  double pen = 0;
  for (int64_t r = 0; r < t->rows; r++) {
    int64_t m = 0;
    for (int64_t j = 0; j < n; j++)
      if (t->pre[r * n + j] > 0.0f) ix[m++] = (int32_t)j;
    pen += ortho_row(t, ix, m);
  }
  free(ix);
  return pen;
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
