// sae_train_impl.h — private to the sae_train*.c files: the trainer's state, the per-thread
// partials, the small vector kernels, and the functions the files call in one another.
//
// Where each part of a step lives:
//   sae_train.c          the trainer object, sae_trainer_grad (the chunk pipeline: which path and
//                        which architecture runs) and sae_trainer_step (the update, in order)
//   sae_train_rows.c     the sparse path every architecture shares: inputs, encoder product,
//                        per-row decode / error / d pre, the latent-parallel weight gradients
//   sae_train_topk.c     TopK and BatchTopK: selection, the batch threshold and its moving average
//   sae_train_relu.c     ReLU: selection, the decoder-norm weighted L1 penalty (forward, backward)
//   sae_train_jumprelu.c JumpReLU: selection, the straight-through threshold gradient, L0, Adam on
//                        log_threshold
//   sae_train_dense.c    ReLU / JumpReLU at high L0: the whole chunk with sgemm
//   sae_train_reg.c      AuxK, encoder-decoder tie, the unit-norm decoder
//   sae_train_adam.c     gradient norm, clipping, the learning-rate schedule, Adam
//   sae_train_init.c     weight and b_dec initialisation
// Numerics: every sum runs in a fixed order (rows in order, latents by one thread each), so
// results are bitwise reproducible at a fixed thread count; moving code between these files does
// not change them (C11 mode: no floating-point contraction; no fast-math).
#ifndef PS_SAE_TRAIN_IMPL_H
#define PS_SAE_TRAIN_IMPL_H

#include <math.h>
#include <stdint.h>

#include "hash.h"
#include "sae_train.h"

typedef struct {
  int32_t row;      // row within the chunk
  int32_t kind;     // 0 main (uses e_b), 1 aux (uses ga_b)
  float f;          // activation
  float dpre;       // d loss / d pre
} centry_t;

typedef struct {
  int64_t rb, re;           // rows of the chunk handled by this thread
  int64_t *cnt, *acnt;      // per row: main / aux entries
  int32_t *idx, *aidx;
  float *f, *dpre, *af, *adpre;
  int64_t nnz, cap, annz, acap;
  double mse, l1, aux, var_part;
  double mse_nested;        // matryoshka: sum over prefixes of the squared errors
  uint64_t hash;
  double *gbdec;            // d_out partial of d b_dec (double: summed over rows)
  double *ysum;             // d_out partial of sum y (for var)
  int32_t *widx;            // jumprelu: (row, latent) pairs in the STE window, row order
  int32_t *wrow;
  float *wg;                // their d loss / d theta contributions
  int64_t wnnz, wcap;
} tpart_t;

struct sae_trainer {
  sae_t *s;
  sae_train_opts_t o;
  ps_pool_t *pool;
  int nt;
  float *grad, *m, *v;
  int64_t step;
  int64_t *since_fired;     // d_sae
  int64_t *fire_steps;      // d_sae: steps in which the latent fired (checkpointed)
  uint8_t *fired;           // d_sae, this step
  int32_t *dead;            // list of dead latents this step
  int64_t n_dead;
  float *dec_norm;          // d_sae, ||W_dec_j|| at the start of the step
  // workspace: pre-activations for a chunk of rows, the rest for the whole batch (the weight
  // gradients run once a batch over the entries of all its sparse chunks)
  int64_t chunk, brows;     // rows allocated: pre / dpre_dense, and the batch buffers
  float *pre, *dpre_dense;
  float *xin_b, *yn_b, *ebuf_b, *gabuf_b;   // batch rows
  float *xin, *ebuf, *gabuf;                // the current chunk's rows within them
  const float *yn;                          // the chunk's targets (yn_b, or x: tr_target)
  tpart_t *parts;
  int64_t *ccount;          // d_sae + 1
  int np;                   // matryoshka prefixes (1 = plain loss); ebuf holds np error rows a row
  uint8_t *mgroup;          // d_sae: first prefix that contains the latent
  centry_t *cent;           // the pending entries by latent (CSC), rows ascending
  int64_t ccap;
  centry_t *coo;            // the pending entries in row order, and their latents
  int32_t *coo_j;
  int64_t coo_n, coo_cap;
  int64_t pend_n;           // sparse chunks whose weight gradients wait (tr_flush)
  double *gbenc;            // [thread][d_in]: d b_dec through the encoder input (tr_cols)
  int grad_ready;           // the gradient buffer holds this batch's values (zeroed or written)
  // current job
  const float *x, *y;
  int64_t rows, B, r0;      // rows in chunk, rows in batch, first row of the chunk
  uint64_t dense_hash;
  double l1c, auxc;
  int32_t kaux;
  float btk_thr;            // batchtopk: this batch's selection threshold
  double gnorm2_part[64];
  // jumprelu
  float *lt, *glt, *mlt, *vlt;   // log_threshold, gradient, Adam moments (d_sae each)
  double *glt_acc;          // d loss / d theta, summed in row order
  double l0c;
  int64_t *dwin;            // dense path: window entries (r n + j) of the chunk
  int64_t dwin_n, dwin_cap;
};

// ---- kernels ------------------------------------------------------------------------------------
// 16 independent partial sums: vectorises without -ffast-math; the summation order is fixed, so
// results stay bitwise reproducible.
static inline float dotf(const float *restrict a, const float *restrict b, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
  float s = 0.0f;
  for (; i < n; i++) s += a[i] * b[i];
  for (int l = 0; l < 16; l++) s += acc[l];
  return s;
}

// y += a x in blocks of 16 (x and y never alias here): vectorises at -O2.
static inline void axpyf(float a, const float *restrict x, float *restrict y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) y[i + l] += a * x[i + l];
  for (; i < n; i++) y[i] += a * x[i];
}

// The selection fingerprint of one (row, latent, main / aux) pair.
static inline uint64_t sel_mix(uint64_t row, uint64_t j, uint64_t kind) {
  uint64_t st = (row << 32) ^ (j << 1) ^ kind;
  return ps_splitmix64(&st);
}

// Grow a thread's entry arrays (index, activation, d pre) to hold need entries.
void tr_part_grow(int32_t **idx, float **f, float **dp, int64_t *cap, int64_t need);

// ---- sae_train_rows.c: the sparse path ----------------------------------------------------------
void tr_update_dec_norms(sae_trainer_t *t);
void tr_prepare(void *ctx, int tid, int nt);              // pool job: xin, yn of the batch
const float *tr_target(const sae_trainer_t *t, const float *x);
void tr_preact(const sae_t *s, const float *xin, int64_t n, float *pre);
void tr_rows(void *ctx, int tid, int nt);                 // pool job: select, decode, error, d pre
void tr_collect(sae_trainer_t *t);                        // a sparse chunk's entries into the pending list
void tr_flush(sae_trainer_t *t, double *gbdec);           // the pending chunks' weight gradients

// ---- sae_train_topk.c ---------------------------------------------------------------------------
int64_t topk_select_row(tpart_t *p, const float *pre, int64_t n, int k);
float batchtopk_threshold(sae_trainer_t *t);
void batchtopk_update_threshold(sae_trainer_t *t);

// ---- sae_train_relu.c ---------------------------------------------------------------------------
int64_t relu_select_row(tpart_t *p, const float *pre, int64_t n, float thr);
void relu_l1_row(const sae_trainer_t *t, tpart_t *p, const int32_t *ix, const float *fv, float *dp, int64_t cnt);
void relu_l1_col(const sae_trainer_t *t, int64_t j, float fsum, float *gd);
void relu_dense_rectify(sae_trainer_t *t);

// ---- sae_train_jumprelu.c -----------------------------------------------------------------------
void jumprelu_state_init(sae_trainer_t *t);
int64_t jumprelu_select_row(const sae_trainer_t *t, tpart_t *p, const float *pre, int64_t r);
void jumprelu_ste_row(const sae_trainer_t *t, tpart_t *p, const float *er, int64_t cnt, int64_t r);
void jumprelu_dense_window(sae_trainer_t *t);
void jumprelu_dense_ste(sae_trainer_t *t, const float *DP);
void jumprelu_finish_grad(sae_trainer_t *t);

// ---- sae_train_dense.c --------------------------------------------------------------------------
int tr_dense_wanted(const sae_trainer_t *t);
void tr_dense_chunk(sae_trainer_t *t, double *mse, double *l1, double *var, double *l0, double *ysum, double *gbdec);

// ---- sae_train_reg.c ----------------------------------------------------------------------------
void auxk_prepare(sae_trainer_t *t);
int64_t auxk_row(sae_trainer_t *t, tpart_t *p, const float *pre, const float *er, int64_t r);
double tie_grad(sae_trainer_t *t);
void decoder_project_grad(sae_trainer_t *t);
void decoder_renormalise(sae_trainer_t *t);

// ---- sae_train_adam.c ---------------------------------------------------------------------------
typedef struct {
  sae_trainer_t *t;
  float scale, b1, b2, omb1, omb2, step_size, bc2s, eps;
} adam_job_t;

// One Adam update of p[b..e) from g (scaled by the clip factor), moments m and v.
static inline void adam_update(float *restrict p, float *restrict m, float *restrict v, const float *restrict g,
                               int64_t b, int64_t e, const adam_job_t *a) {
  const float sc = a->scale, b1 = a->b1, b2 = a->b2, omb1 = a->omb1, omb2 = a->omb2, ss = a->step_size,
              bc2s = a->bc2s, eps = a->eps;
  for (int64_t i = b; i < e; i++) {
    float gi = g[i] * sc;
    float mi = m[i] * b1 + gi * omb1;
    float vi = v[i] * b2 + gi * gi * omb2;
    m[i] = mi;
    v[i] = vi;
    float den = sqrtf(vi) / bc2s + eps;
    p[i] -= ss * (mi / den);
  }
}

double tr_grad_norm(sae_trainer_t *t);
float tr_clip_scale(const sae_trainer_t *t, double grad_norm);
double tr_lr(const sae_train_opts_t *o, int64_t step);
void tr_adam(sae_trainer_t *t, float scale, double lr);

#endif
