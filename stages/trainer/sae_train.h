// sae_train.h — one SAE / transcoder training step: loss, gradients (sparse where the
// architecture allows), gradient clipping, Adam, decoder constraints, dead-latent bookkeeping.
//
// Inputs are rows already scaled by the dataset normalisation; per-sample normalisation
// (cfg.normalize_per_sample) is applied here to x and to the target, as in sae_enc_run.
// Loss, for a batch of B rows (y = x for an SAE, the paired target for a transcoder):
//   mse  = 1/B sum_b ||y^_b - y_b||^2                    (SAELens: sum over dims, mean over rows)
//   l1   = c_l1(t)/B sum_b sum_j f_bj ||W_dec_j||        relu; c_l1 ramps up over l1_warmup_steps
//   l0   = c_l0(t)/B sum_b sum_j H(pre_bj - theta_j)         jumprelu; c_l0 ramps like c_l1
//   aux  = c_aux min(n_dead/k_aux, 1)/B sum_b ||a_b - (y_b - y^_b)||^2     topk / batchtopk (AuxK)
//          a_b = sum over the top min(k_aux, n_dead) dead latents of ReLU(pre_bj) W_dec_j (no bias);
//          the residual is a constant (detached); dead = no firing in the last dead_steps steps.
// JumpReLU (Rajamanoharan et al. 2024, as SAELens' JumpReLUTrainingSAE): f_bj = pre_bj H(pre_bj -
// theta_j), theta_j = exp(log_threshold_j) learnt (Adam, clipped with the rest). pre gets the true
// gradient (H(pre - theta) dL/df); theta gets the straight-through pseudo-gradients with the
// rectangle kernel K(u) = 1 for |u| < 1/2 and bandwidth eps:
//   dL/dtheta_j = sum_b K((pre_bj - theta_j)/eps) (-(theta_j/eps) dL/df_bj - c_l0/(B eps))
// and dL/dlog_threshold_j = theta_j dL/dtheta_j. The L0 term gives no gradient to pre (as in
// SAELens, whose "step" L0 is not weighted by decoder norms; with the unit-norm decoder, on by
// default, a norm weighting would be the same loss). The model's threshold mirrors
// exp(log_threshold) after every step (SAELens saves threshold = exp(log_threshold)).
// Matryoshka (Bussmann et al. 2025; topk / batchtopk): with prefixes m_1 < ... < m_P = d_sae the
// loss sums the reconstruction error of every nested dictionary: y^(p)_b = sum_{j < m_p} f_bj
// W_dec_j + b_dec; the loss's reconstruction term is 1/(B P) sum_b sum_p ||y^(p)_b - y_b||^2, the
// mean over the prefixes (the selection is the full model's; latents beyond m_p are dropped from
// prefix p; losses.mse reports the full model's error). AuxK uses the full model's residual.
// Speed: only the encoder product (B x d_in x d_sae) is dense for topk / batchtopk and for relu
// when few latents fire (active fraction <= dense_threshold); the decoder, its gradient and the
// encoder gradient touch the active latents only. Adam updates every parameter every step
// (exact semantics, as torch.optim.Adam). Results are bitwise reproducible at a fixed thread count.
// Memory: params + grad + 2 Adam moments (4 x params) + chunk_rows x d_sae (pre-activations;
// batchtopk: the whole batch) + the batch's inputs and errors (B x (d_in + 2 d_out) floats, more
// with matryoshka) and its active entries (the weight gradients run once a batch).
#ifndef PS_SAE_TRAIN_H
#define PS_SAE_TRAIN_H

#include <stdint.h>

#include "err.h"
#include "pool.h"
#include "sae.h"

typedef struct sae_train_opts {
  double lr, beta1, beta2, eps;
  int64_t warmup_steps;       // linear warm-up of the learning rate from 0 (0 = none)
  int64_t decay_steps;        // linear decay to 0 over the last decay_steps of total_steps (0 = none)
  int64_t total_steps;
  double clip_norm;           // global gradient norm clip (0 = none)
  double l1_coeff;            // relu
  int64_t l1_warmup_steps;
  int32_t k_aux;              // topk / batchtopk AuxK (0 = off)
  double aux_coeff;
  int64_t dead_steps;         // a latent is dead after this many steps without firing
  int unit_norm_decoder;      // remove the gradient parallel to each decoder row, renormalise after
  double dense_threshold;     // relu: dense GEMM path when the active fraction exceeds this
  double threshold_ema;       // batchtopk: threshold <- ema thr + (1 - ema) batch minimum
  int64_t chunk_rows;         // rows per pass (memory bound), ignored by batchtopk
  double l0_coeff;            // jumprelu: L0 coefficient (ramps up over l1_warmup_steps)
  double jumprelu_bandwidth;  // jumprelu: STE rectangle width eps
  double jumprelu_init_threshold;  // jumprelu: initial theta (latents whose model threshold is <= 0)
  int32_t n_matryoshka;       // topk / batchtopk: number of nested prefixes (0 = plain loss)
  int64_t matryoshka[16];     // prefix sizes, increasing, the last one = d_sae
  double tie_coeff;           // encoder-decoder tie (d_in == d_out): coeff x sum_j ||W_enc_j - W_dec_j||^2
                              // (W_enc_j: latent j's encoder column); 0 = off
} sae_train_opts_t;

void sae_train_opts_default(sae_train_opts_t *o, const sae_cfg_t *cfg);

typedef struct sae_losses {
  double loss, mse, l1, aux;   // l1: the sparsity penalty (relu: L1, jumprelu: L0 term)
  double tie;                 // the encoder-decoder tie term (tie_coeff > 0)
  double l0;                  // mean active latents per row
  double var;                 // 1/B sum_b ||y_b - mean_y||^2 (FVU = mse / var)
  double grad_norm;           // before clipping
  double lr;
  int64_t n_dead;
  int64_t n_rows;
  int dense_path;             // 1 when the relu dense path ran
  uint64_t selection_hash;    // fingerprint of the (row, latent) pairs selected (main and aux)
} sae_losses_t;

typedef struct sae_trainer sae_trainer_t;

// model is borrowed (updated in place). pool may be NULL.
int sae_trainer_new(sae_trainer_t **out, sae_t *model, const sae_train_opts_t *o, ps_pool_t *pool, ps_err_t *err);
void sae_trainer_free(sae_trainer_t **t);

// Loss and gradient of the batch into the gradient buffer (no update; step counter unchanged).
// y may be NULL (SAE: y = x). Non-finite rows are the caller's job (the loop skips them).
int sae_trainer_grad(sae_trainer_t *t, const float *x, const float *y, int64_t n, sae_losses_t *out, ps_err_t *err);
// grad, clip, Adam, decoder constraint, dead-latent and threshold bookkeeping; step += 1.
int sae_trainer_step(sae_trainer_t *t, const float *x, const float *y, int64_t n, sae_losses_t *out, ps_err_t *err);

// State (for checkpoints and tests). Flat arrays of sae->n_params floats.
float *sae_trainer_grad_buf(sae_trainer_t *t);
float *sae_trainer_adam_m(sae_trainer_t *t);
float *sae_trainer_adam_v(sae_trainer_t *t);
int64_t *sae_trainer_steps_since_fired(sae_trainer_t *t);   // d_sae
int64_t *sae_trainer_fire_steps(sae_trainer_t *t);          // d_sae: steps in which each latent fired
int64_t sae_trainer_step_count(const sae_trainer_t *t);
void sae_trainer_set_step_count(sae_trainer_t *t, int64_t step);
const sae_train_opts_t *sae_trainer_opts(const sae_trainer_t *t);
int64_t sae_trainer_n_dead(const sae_trainer_t *t);
// jumprelu (NULL otherwise): log_threshold [d_sae], its gradient (after sae_trainer_grad) and Adam
// moments. After changing log_threshold call sae_trainer_sync_threshold (model threshold = exp).
float *sae_trainer_log_threshold(sae_trainer_t *t);
float *sae_trainer_log_threshold_grad(sae_trainer_t *t);
float *sae_trainer_log_threshold_adam_m(sae_trainer_t *t);
float *sae_trainer_log_threshold_adam_v(sae_trainer_t *t);
void sae_trainer_sync_threshold(sae_trainer_t *t);
// Parse "128,512,2048" into o->matryoshka (sorted, unique, capped and completed with d_sae).
int sae_train_parse_matryoshka(sae_train_opts_t *o, const char *list, int64_t d_sae, ps_err_t *err);

// ---- initialisation ----------------------------------------------------------------------------
// Decoder rows: random directions (Gaussian, normalised) of norm dec_norm; W_enc = W_dec^T when
// d_in == d_out (else its own random directions); b_enc = 0; b_dec = 0. Deterministic in seed.
void sae_init_weights(sae_t *s, uint64_t seed, float dec_norm);
// b_dec from the first batch of targets (n rows x d_out, per-sample normalised when the model
// is): geometric median (Weiszfeld, max_iter iterations) or, with max_iter = 0, the mean.
void sae_init_b_dec(sae_t *s, const float *y, int64_t n, int max_iter);
// Decoder rows from data: row j = (y_r - b_dec) scaled to dec_norm, r drawn from the n rows
// (n x d_out; without replacement while rows last, a fresh permutation after); the encoder column
// is the same row (an SAE) or a transcoder's (x_r - b_dec when applied to the input) scaled to dec_norm.
// A row too close to b_dec keeps its random init. Call after sae_init_b_dec. Deterministic in seed.
void sae_init_rows_from_data(sae_t *s, const float *x, const float *y, int64_t n, uint64_t seed, float dec_norm);


// ---- dead-latent resampling (sae_train_resample.c) ------------------------------------------------
// Each dead latent (no firing for dead_after steps; <= 0: dead_steps) takes one of the n rows (x: model inputs, y:
// targets or NULL, dataset-scaled as for sae_trainer_step), drawn without replacement with
// probability proportional to the square of the row's loss ||y - y^||^2 under the current model:
// decoder row = the row's residual y - y^ at unit norm (at the row's current norm without the
// unit-norm decoder); encoder column = the same direction at enc_scale x the mean encoder norm of
// the live latents, or a copy of the decoder row when enc_scale is 0; b_enc_j = 0; the Adam moments
// of the three are zeroed and the latent's dead count restarts. *n_resampled = latents changed.
// TopK / BatchTopK SAEs only (PS_ECONFIG otherwise). Deterministic in seed.
int sae_trainer_resample(sae_trainer_t *t, const float *x, const float *y, int64_t n, uint64_t seed,
                         int64_t dead_after, double enc_scale, int64_t *n_resampled, ps_err_t *err);

#endif
