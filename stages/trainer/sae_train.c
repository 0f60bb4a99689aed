// sae_train.c — see sae_train.h.
//
// A step runs over the batch in chunks of rows. For each chunk:
//   1. prepare (row-parallel): xin = norm(x) - b_dec; target yn.
//   2. pre = xin W_enc + b_enc (one sgemm; the only dense product on the sparse path).
//   3. rows (row-parallel): select the active latents (and the AuxK latents), decode them,
//      error e_b = 2/B (y^_b - y_b), dpre_bj = e_b . W_dec_j (+ L1 term), AuxK likewise;
//      per-thread partial sums for b_dec.
//   4. columns (latent-parallel, over a CSC copy of the active entries): dW_dec_j, dW_enc_j,
//      db_enc_j. Each latent's gradient is summed by one thread in row order, so the result does
//      not depend on scheduling.
// The relu dense path replaces 3-4 with sgemm when many latents fire.
#include "sae_train.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
  double *gbenc;            // d_in partial of sum_j (sum_b dpre_bj) W_enc_j (columns phase)
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
  int64_t *fire_steps;      // d_sae: steps in which the latent fired (ortho_scope row-rarer)
  uint8_t *fired;           // d_sae, this step
  int32_t *dead;            // list of dead latents this step
  int64_t n_dead;
  float *dec_norm;          // d_sae, ||W_dec_j|| at the start of the step
  // chunk workspace
  int64_t chunk;
  float *xin, *yn, *pre, *ebuf, *gabuf, *dpre_dense;
  tpart_t *parts;
  int64_t *ccount;          // d_sae + 1
  int np;                   // matryoshka prefixes (1 = plain loss); ebuf holds np error rows a row
  uint8_t *mgroup;          // d_sae: first prefix that contains the latent
  centry_t *cent;
  int64_t ccap;
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

void sae_train_opts_default(sae_train_opts_t *o, const sae_cfg_t *cfg) {
  memset(o, 0, sizeof *o);
  o->lr = cfg->arch == SAE_RELU ? 5e-5 : 1e-4;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  o->clip_norm = 1.0;
  o->l1_coeff = cfg->arch == SAE_RELU ? 5.0 : 0.0;
  o->k_aux = (cfg->arch == SAE_TOPK || cfg->arch == SAE_BATCHTOPK) ? (int32_t)(cfg->d_in / 2) : 0;
  o->aux_coeff = 1.0 / 32.0;
  o->dead_steps = 100;
  o->unit_norm_decoder = cfg->arch != SAE_RELU;
  o->dense_threshold = 0.05;
  o->threshold_ema = 0.99;
  o->chunk_rows = 1024;
  o->l0_coeff = cfg->arch == SAE_JUMPRELU ? 1.0 : 0.0;
  o->jumprelu_bandwidth = 0.001;
  o->jumprelu_init_threshold = 0.001;
}

static void *xalloc_f(int64_t n) {
  void *p = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) & ~(size_t)63);
  return p;
}

int sae_trainer_new(sae_trainer_t **out, sae_t *model, const sae_train_opts_t *o, ps_pool_t *pool, ps_err_t *err) {
  *out = NULL;
  const sae_cfg_t *c = &model->cfg;
  if (c->arch == SAE_JUMPRELU && (!(o->jumprelu_bandwidth > 0) || !(o->jumprelu_init_threshold > 0) ||
                                  !(o->l0_coeff >= 0)))
    return ps_err_set(err, PS_ECONFIG, "trainer: jumprelu needs bandwidth > 0 (%g), initial threshold > 0 (%g) and "
                      "l0 coefficient >= 0 (%g)", o->jumprelu_bandwidth, o->jumprelu_init_threshold, o->l0_coeff);
  if (o->n_matryoshka < 0 || o->n_matryoshka > 16)
    return ps_err_set(err, PS_ECONFIG, "trainer: %d matryoshka prefixes (at most 16)", o->n_matryoshka);
  if (o->n_matryoshka > 0) {
    if (c->arch != SAE_TOPK && c->arch != SAE_BATCHTOPK)
      return ps_err_set(err, PS_ECONFIG, "trainer: matryoshka prefixes need --arch topk or batchtopk");
    for (int i = 0; i < o->n_matryoshka; i++)
      if (o->matryoshka[i] <= (i ? o->matryoshka[i - 1] : 0) || o->matryoshka[i] > c->d_sae)
        return ps_err_set(err, PS_ECONFIG, "trainer: matryoshka prefix sizes must increase within [1, d_sae]");
    if (o->matryoshka[o->n_matryoshka - 1] != c->d_sae)
      return ps_err_set(err, PS_ECONFIG, "trainer: the last matryoshka prefix must be d_sae = %lld",
                        (long long)c->d_sae);
  }
  if (!(o->lr > 0) || !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0))
    return ps_err_set(err, PS_ECONFIG, "trainer: bad Adam settings lr=%g betas=(%g, %g) eps=%g", o->lr, o->beta1,
                      o->beta2, o->eps);
  if (o->k_aux < 0 || o->k_aux > c->d_sae)
    return ps_err_set(err, PS_ECONFIG, "trainer: k_aux=%d must be in [0, d_sae]", o->k_aux);
  sae_trainer_t *t = ps_xcalloc(1, sizeof *t);
  t->s = model;
  t->o = *o;
  if (t->o.chunk_rows <= 0) t->o.chunk_rows = 1024;
  t->pool = pool;
  t->nt = ps_pool_size(pool);
  if (t->nt > 64) t->nt = 64;
  size_t np = model->n_params;
  t->grad = xalloc_f((int64_t)np);
  t->m = xalloc_f((int64_t)np);
  t->v = xalloc_f((int64_t)np);
  if (!t->grad || !t->m || !t->v) {
    sae_trainer_free(&t);
    return ps_err_set(err, PS_ENOMEM, "trainer: cannot allocate gradient and Adam state (%zu params)", np);
  }
  memset(t->grad, 0, np * sizeof(float));
  memset(t->m, 0, np * sizeof(float));
  memset(t->v, 0, np * sizeof(float));
  int64_t n = c->d_sae;
  t->since_fired = ps_xcalloc((size_t)n, sizeof(int64_t));
  t->fire_steps = ps_xcalloc((size_t)n, sizeof(int64_t));
  t->fired = ps_xcalloc((size_t)n, 1);
  t->dead = ps_xmalloc((size_t)n * sizeof(int32_t));
  t->dec_norm = ps_xmalloc((size_t)n * sizeof(float));
  t->ccount = ps_xmalloc((size_t)(n + 1) * sizeof(int64_t));
  t->parts = ps_xcalloc((size_t)t->nt, sizeof(tpart_t));
  for (int i = 0; i < t->nt; i++) {
    t->parts[i].gbdec = ps_xmalloc((size_t)c->d_out * sizeof(double));
    t->parts[i].ysum = ps_xmalloc((size_t)c->d_out * sizeof(double));
    t->parts[i].gbenc = ps_xmalloc((size_t)c->d_in * sizeof(double));
  }
  t->np = o->n_matryoshka > 1 ? o->n_matryoshka : 1;
  t->mgroup = ps_xcalloc((size_t)n, 1);
  for (int g = 0, j = 0; t->np > 1 && g < t->np; g++)
    for (; j < o->matryoshka[g]; j++) t->mgroup[j] = (uint8_t)g;
  if (c->arch == SAE_JUMPRELU) {
    t->lt = ps_xmalloc((size_t)n * sizeof(float));
    t->glt = ps_xcalloc((size_t)n, sizeof(float));
    t->mlt = ps_xcalloc((size_t)n, sizeof(float));
    t->vlt = ps_xcalloc((size_t)n, sizeof(float));
    t->glt_acc = ps_xcalloc((size_t)n, sizeof(double));
    // continue from the model's threshold where it has one (a loaded SAE), else the initial value
    for (int64_t j = 0; j < n; j++)
      t->lt[j] = model->threshold[j] > 0 ? logf(model->threshold[j]) : (float)log(o->jumprelu_init_threshold);
    sae_trainer_sync_threshold(t);
  }
  *out = t;
  return 0;
}

static void free_chunk(sae_trainer_t *t) {
  free(t->xin);
  free(t->yn);
  free(t->pre);
  free(t->ebuf);
  free(t->gabuf);
  free(t->dpre_dense);
  t->xin = t->yn = t->pre = t->ebuf = t->gabuf = t->dpre_dense = NULL;
  for (int i = 0; i < t->nt; i++) {
    free(t->parts[i].cnt);
    free(t->parts[i].acnt);
    t->parts[i].cnt = t->parts[i].acnt = NULL;
  }
  t->chunk = 0;
}

void sae_trainer_free(sae_trainer_t **tp) {
  if (!tp || !*tp) return;
  sae_trainer_t *t = *tp;
  if (t->parts) {
    free_chunk(t);
    for (int i = 0; i < t->nt; i++) {
      tpart_t *p = &t->parts[i];
      free(p->idx); free(p->f); free(p->dpre); free(p->aidx); free(p->af); free(p->adpre);
      free(p->gbdec); free(p->ysum); free(p->gbenc);
      free(p->widx); free(p->wrow); free(p->wg);
    }
  }
  free(t->parts);
  free(t->grad); free(t->m); free(t->v);
  free(t->since_fired); free(t->fire_steps); free(t->fired); free(t->dead); free(t->dec_norm);
  free(t->ccount); free(t->cent); free(t->mgroup);
  free(t->lt); free(t->glt); free(t->mlt); free(t->vlt); free(t->glt_acc); free(t->dwin);
  free(t);
  *tp = NULL;
}

float *sae_trainer_grad_buf(sae_trainer_t *t) { return t->grad; }
float *sae_trainer_adam_m(sae_trainer_t *t) { return t->m; }
float *sae_trainer_adam_v(sae_trainer_t *t) { return t->v; }
int64_t *sae_trainer_steps_since_fired(sae_trainer_t *t) { return t->since_fired; }
int64_t *sae_trainer_fire_steps(sae_trainer_t *t) { return t->fire_steps; }
int64_t sae_trainer_step_count(const sae_trainer_t *t) { return t->step; }
void sae_trainer_set_step_count(sae_trainer_t *t, int64_t step) { t->step = step; }
const sae_train_opts_t *sae_trainer_opts(const sae_trainer_t *t) { return &t->o; }
float *sae_trainer_log_threshold(sae_trainer_t *t) { return t->lt; }
float *sae_trainer_log_threshold_grad(sae_trainer_t *t) { return t->glt; }
float *sae_trainer_log_threshold_adam_m(sae_trainer_t *t) { return t->mlt; }
float *sae_trainer_log_threshold_adam_v(sae_trainer_t *t) { return t->vlt; }
void sae_trainer_sync_threshold(sae_trainer_t *t) {
  if (!t->lt) return;
  for (int64_t j = 0; j < t->s->cfg.d_sae; j++) t->s->threshold[j] = expf(t->lt[j]);
}
int64_t sae_trainer_n_dead(const sae_trainer_t *t) {
  int64_t nd = 0;
  for (int64_t j = 0; j < t->s->cfg.d_sae; j++) nd += t->o.dead_steps > 0 && t->since_fired[j] >= t->o.dead_steps;
  return nd;
}

static int ensure_chunk(sae_trainer_t *t, int64_t rows, ps_err_t *err) {
  if (rows <= t->chunk) return 0;
  free_chunk(t);
  const sae_cfg_t *c = &t->s->cfg;
  t->xin = xalloc_f(rows * c->d_in);
  t->yn = xalloc_f(rows * c->d_out);
  t->pre = xalloc_f(rows * c->d_sae);
  t->ebuf = xalloc_f(rows * c->d_out * t->np);
  t->gabuf = xalloc_f(rows * c->d_out);
  if (!t->xin || !t->yn || !t->pre || !t->ebuf || !t->gabuf) {
    free_chunk(t);
    return ps_err_set(err, PS_ENOMEM, "trainer: cannot allocate a %lld-row workspace (%lld x %lld floats)",
                      (long long)rows, (long long)rows, (long long)c->d_sae);
  }
  for (int i = 0; i < t->nt; i++) {
    t->parts[i].cnt = ps_xmalloc((size_t)rows * sizeof(int64_t));
    t->parts[i].acnt = ps_xmalloc((size_t)rows * sizeof(int64_t));
  }
  t->chunk = rows;
  return 0;
}

static void part_grow(int32_t **idx, float **f, float **dp, int64_t *cap, int64_t need) {
  if (need <= *cap) return;
  int64_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  *idx = ps_xrealloc(*idx, (size_t)c * sizeof(int32_t));
  *f = ps_xrealloc(*f, (size_t)c * sizeof(float));
  *dp = ps_xrealloc(*dp, (size_t)c * sizeof(float));
  *cap = c;
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

// jumprelu: is pre in the STE window of theta (rectangle kernel, computed as torch does)?
static inline int in_window(float v, float th, float bw) {
  float u = (v - th) / bw;
  return u > -0.5f && u < 0.5f;
}

static inline uint64_t sel_mix(uint64_t row, uint64_t j, uint64_t kind) {
  uint64_t st = (row << 32) ^ (j << 1) ^ kind;
  return sae_rng_next(&st);
}

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

// ---- phase 1: inputs --------------------------------------------------------------------------
static void ph_prepare(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  const sae_cfg_t *c = &t->s->cfg;
  int64_t b, e, d = c->d_in, o = c->d_out;
  ps_pool_range(t->rows, tid, nt, &b, &e);
  for (int64_t r = b; r < e; r++) {
    float *xr = t->xin + r * d, *yr = t->yn + r * o;
    memcpy(xr, t->x + r * d, (size_t)d * sizeof(float));
    if (c->normalize_per_sample) sae_normalize_row(xr, d, NULL, NULL);
    if (t->y) {
      memcpy(yr, t->y + r * o, (size_t)o * sizeof(float));
      if (c->normalize_per_sample) sae_normalize_row(yr, o, NULL, NULL);
    } else {
      memcpy(yr, xr, (size_t)o * sizeof(float));
    }
    if (c->apply_b_dec_to_input)
      for (int64_t i = 0; i < d; i++) xr[i] -= t->s->b_dec[i];
  }
}

// ---- phase 3: rows (sparse path) --------------------------------------------------------------
static void ph_rows(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t n = c->d_sae, o = c->d_out;
  tpart_t *p = &t->parts[tid];
  ps_pool_range(t->rows, tid, nt, &p->rb, &p->re);
  p->nnz = p->annz = p->wnnz = 0;
  p->mse = p->l1 = p->aux = p->var_part = p->mse_nested = 0;
  const int NP = t->np;
  p->hash = 0;
  memset(p->gbdec, 0, (size_t)o * sizeof(double));
  memset(p->ysum, 0, (size_t)o * sizeof(double));
  const float inv2B = (float)(2.0 / (double)t->B);
  const float l1B = (float)(t->l1c / (double)t->B);
  const float ga_scale = (float)(2.0 * t->auxc / (double)t->B);
  const float bw = (float)t->o.jumprelu_bandwidth, l0B = (float)(t->l0c / (double)t->B);
  const float *th = s->threshold;
  for (int64_t r = p->rb; r < p->re; r++) {
    const float *pre = t->pre + r * n;
    const float *yr = t->yn + r * o;
    float *eb = t->ebuf + r * NP * o, *er = eb + (NP - 1) * o;  // er: the full model's error
    // select
    int64_t cnt = 0;
    if (c->arch == SAE_TOPK) {
      part_grow(&p->idx, &p->f, &p->dpre, &p->cap, p->nnz + c->k);
      cnt = sae_topk_relu(pre, n, c->k, p->idx + p->nnz, p->f + p->nnz);
    } else if (c->arch == SAE_JUMPRELU) {
      for (int64_t j = 0; j < n; j++) {
        float v = pre[j];
        if (v > th[j]) {
          part_grow(&p->idx, &p->f, &p->dpre, &p->cap, p->nnz + cnt + 1);
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
    } else {
      float thr = c->arch == SAE_BATCHTOPK ? t->btk_thr : 0.0f;
      for (int64_t j = 0; j < n; j++) {
        float v = pre[j];
        if (v > 0.0f && v >= thr) {
          part_grow(&p->idx, &p->f, &p->dpre, &p->cap, p->nnz + cnt + 1);
          p->idx[p->nnz + cnt] = (int32_t)j;
          p->f[p->nnz + cnt] = v;
          cnt++;
        }
      }
    }
    int32_t *ix = p->idx + p->nnz;
    float *fv = p->f + p->nnz, *dp = p->dpre + p->nnz;
    // decode, error (matryoshka: the partial sums at each prefix boundary; indices ascend)
    memcpy(er, s->b_dec, (size_t)o * sizeof(float));
    int g = 0;
    for (int64_t q = 0; q < cnt; q++) {
      for (; NP > 1 && g < NP - 1 && ix[q] >= t->o.matryoshka[g]; g++) memcpy(eb + g * o, er, (size_t)o * sizeof(float));
      axpyf(fv[q], s->W_dec + (int64_t)ix[q] * o, er, o);
    }
    for (; g < NP - 1; g++) memcpy(eb + g * o, er, (size_t)o * sizeof(float));
    for (int pp = 0; pp < NP - 1; pp++) {
      float *ep = eb + pp * o;
      double sp = 0;
      for (int64_t i = 0; i < o; i++) {
        ep[i] -= yr[i];
        sp += (double)ep[i] * ep[i];
      }
      p->mse_nested += sp;
    }
    double se = 0;
    for (int64_t i = 0; i < o; i++) {
      er[i] -= yr[i];
      se += (double)er[i] * er[i];
      p->ysum[i] += yr[i];
      p->var_part += (double)yr[i] * yr[i];
    }
    p->mse += se;
    p->mse_nested += se;
    // aux (before er is scaled): a_b - (y - y^) = a_b + err
    int64_t acnt = 0;
    if (t->kaux > 0) {
      part_grow(&p->aidx, &p->af, &p->adpre, &p->acap, p->annz + t->kaux);
      int32_t *aix = p->aidx + p->annz;
      float *afv = p->af + p->annz, *adp = p->adpre + p->annz;
      acnt = sae_topk_subset(pre, t->dead, t->n_dead, t->kaux, aix, afv);
      float *ga = t->gabuf + r * o;
      memcpy(ga, er, (size_t)o * sizeof(float));
      for (int64_t q = 0; q < acnt; q++) axpyf(afv[q], s->W_dec + (int64_t)aix[q] * o, ga, o);
      double sa = 0;
      for (int64_t i = 0; i < o; i++) sa += (double)ga[i] * ga[i];
      p->aux += sa;
      for (int64_t i = 0; i < o; i++) ga[i] *= ga_scale;
      for (int64_t q = 0; q < acnt; q++) adp[q] = dotf(ga, s->W_dec + (int64_t)aix[q] * o, o);
    }
    // e_b = 2/B err
    if (NP == 1) {
      for (int64_t i = 0; i < o; i++) er[i] *= inv2B;
    } else {  // d loss / d y^(p) = 2/(B P) e^(p); slot p <- sum over the prefixes >= p
      const float sc = (float)(2.0 / ((double)t->B * NP));
      for (int64_t i = 0; i < o; i++) er[i] *= sc;
      for (int pp = NP - 2; pp >= 0; pp--)
        for (int64_t i = 0; i < o; i++) eb[pp * o + i] = eb[pp * o + i] * sc + eb[(pp + 1) * o + i];
    }
    for (int64_t i = 0; i < o; i++) p->gbdec[i] += eb[i];  // every prefix holds b_dec
    for (int64_t q = 0; q < cnt; q++) {
      dp[q] = dotf(eb + (NP > 1 ? t->mgroup[ix[q]] : 0) * o, s->W_dec + (int64_t)ix[q] * o, o);
      if (c->arch == SAE_RELU && l1B != 0.0f) {
        dp[q] += l1B * t->dec_norm[ix[q]];
        p->l1 += (double)fv[q] * t->dec_norm[ix[q]];
      }
    }
    if (c->arch == SAE_JUMPRELU) {
      p->l1 += (double)cnt;
      // STE: d/dtheta of JumpReLU (-(theta/eps) dL/df) and of the L0 step (-(1/eps) c_l0/B)
      for (int64_t q = p->wnnz - 1; q >= 0 && p->wrow[q] == (int32_t)r; q--) {
        int32_t j = p->widx[q];
        float gf = dotf(er, s->W_dec + (int64_t)j * o, o);
        p->wg[q] = -(th[j] / bw) * gf + -(1.0f / bw) * l0B;
      }
    }
    for (int64_t q = 0; q < cnt; q++) p->hash += sel_mix((uint64_t)(t->r0 + r), (uint64_t)ix[q], 0);
    for (int64_t q = 0; q < acnt; q++) p->hash += sel_mix((uint64_t)(t->r0 + r), (uint64_t)p->aidx[p->annz + q], 1);
    p->cnt[r - p->rb] = cnt;
    p->acnt[r - p->rb] = acnt;
    p->nnz += cnt;
    p->annz += acnt;
  }
}

// ---- phase 4: columns -------------------------------------------------------------------------
static void ph_cols(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, n = c->d_sae, o = c->d_out, jb, je;
  ps_pool_range(n, tid, nt, &jb, &je);
  float *gWe = t->grad, *gbe = t->grad + n * d, *gWd = gbe + n;
  const float l1B = (float)(t->l1c / (double)t->B);
  double *gbenc = t->parts[tid].gbenc;
  memset(gbenc, 0, (size_t)d * sizeof(double));
  for (int64_t j = jb; j < je; j++) {
    int64_t a = t->ccount[j], b = t->ccount[j + 1];
    if (a == b) continue;
    float *gd = gWd + j * o, *ge = gWe + j * d;
    float gb = 0.0f, fsum = 0.0f;
    for (int64_t q = a; q < b; q++) {
      const centry_t *ce = &t->cent[q];
      const float *ev = ce->kind ? t->gabuf + (int64_t)ce->row * o
                                 : t->ebuf + ((int64_t)ce->row * t->np + (t->np > 1 ? t->mgroup[j] : 0)) * o;
      axpyf(ce->f, ev, gd, o);
      axpyf(ce->dpre, t->xin + (int64_t)ce->row * d, ge, d);
      gb += ce->dpre;
      if (!ce->kind) fsum += ce->f;
    }
    gbe[j] += gb;
    if (c->apply_b_dec_to_input) {  // d b_dec through the encoder input: - sum_j (sum_b dpre_bj) W_enc_j
      const float *we = s->W_encT + j * d;
      for (int64_t i = 0; i < d; i++) gbenc[i] += (double)gb * we[i];
    }
    if (c->arch == SAE_RELU && l1B != 0.0f && t->dec_norm[j] > 0) {
      // d/dW_dec_j of l1B * sum_b f_bj ||W_dec_j||
      axpyf(l1B * fsum / t->dec_norm[j], s->W_dec + j * o, gd, o);
    }
  }
}

static void build_csc(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae, total = 0;
  memset(t->ccount, 0, (size_t)(n + 1) * sizeof(int64_t));
  for (int i = 0; i < t->nt; i++) {
    tpart_t *p = &t->parts[i];
    for (int64_t q = 0; q < p->nnz; q++) t->ccount[p->idx[q] + 1]++;
    for (int64_t q = 0; q < p->annz; q++) t->ccount[p->aidx[q] + 1]++;
    total += p->nnz + p->annz;
  }
  for (int64_t j = 0; j < n; j++) t->ccount[j + 1] += t->ccount[j];
  if (total > t->ccap) {
    t->ccap = total * 2;
    t->cent = ps_xrealloc(t->cent, (size_t)t->ccap * sizeof(centry_t));
  }
  int64_t *pos = ps_xmalloc((size_t)n * sizeof(int64_t));
  memcpy(pos, t->ccount, (size_t)n * sizeof(int64_t));
  for (int i = 0; i < t->nt; i++) {
    tpart_t *p = &t->parts[i];
    int64_t q = 0, aq = 0;
    for (int64_t r = p->rb; r < p->re; r++) {
      for (int64_t e = 0; e < p->cnt[r - p->rb]; e++, q++) {
        int32_t j = p->idx[q];
        t->cent[pos[j]++] = (centry_t){(int32_t)r, 0, p->f[q], p->dpre[q]};
        t->fired[j] = 1;
      }
      for (int64_t e = 0; e < p->acnt[r - p->rb]; e++, aq++) {
        int32_t j = p->aidx[aq];
        t->cent[pos[j]++] = (centry_t){(int32_t)r, 1, p->af[aq], p->adpre[aq]};
      }
    }
  }
  free(pos);
}

// ---- relu dense path ----------------------------------------------------------------------------
// pre holds relu(pre) = F on entry.
static void dense_chunk(sae_trainer_t *t, double *mse, double *l1, double *var, double *l0, double *ysum,
                        double *gbdec) {
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
  if (c->arch == SAE_JUMPRELU) {  // STE window entries (row order), before DP is masked
    const float bw = (float)t->o.jumprelu_bandwidth, l0B = (float)(t->l0c / (double)t->B);
    for (int64_t q = 0; q < t->dwin_n; q++) {
      int64_t j = t->dwin[q] % n;
      float th = s->threshold[j];
      t->glt_acc[j] += -(th / bw) * DP[t->dwin[q]] + -(1.0f / bw) * l0B;
    }
  }
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

// ---- batchtopk threshold ------------------------------------------------------------------------
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

static float batch_threshold(sae_trainer_t *t) {
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

// ---- gradient ------------------------------------------------------------------------------------
static void update_dec_norms(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae, o = t->s->cfg.d_out;
  for (int64_t j = 0; j < n; j++) {
    const float *w = t->s->W_dec + j * o;
    t->dec_norm[j] = sqrtf(dotf(w, w, o));
  }
}

// pre (n x d_sae) = xin (n x d_in) W_enc + b_enc, via cblas_sgemm.
static void preact(const sae_t *s, const float *xin, int64_t n, float *pre) {
  int64_t d = s->cfg.d_in, m = s->cfg.d_sae;
  for (int64_t r = 0; r < n; r++) memcpy(pre + r * m, s->b_enc, (size_t)m * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)m, (blasint)d, 1.0f, xin, (blasint)d,
              s->W_encT, (blasint)d, 1.0f, pre, (blasint)m);
}

// Decoder orthogonality over the latents A that fired in this batch: P = c sum_{i != j in A} h_ij^2
// with h = sign(g) max(|g| - margin, 0), g = w_i . w_j; dP/dw_i = 4 c sum_{j != i} h_ij w_j.
// With a unit-norm decoder the dot products are cosines: P pulls apart decoder rows that share a direction, as a child feature's row does when
// it absorbs its parent's direction (OrtSAE, Korznikov et al. 2025, penalise the same). Cost: two
// |A| x |A| x d_out products. Returns P; adds dP/dW_dec to the gradient.
static double ortho_grad(sae_trainer_t *t) {
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

static double ortho_rows(sae_trainer_t *t) {  // sparse path: the rows' active lists
  double pen = 0;
  for (int i = 0; i < t->nt; i++) {
    const tpart_t *p = &t->parts[i];
    const int32_t *ix = p->idx;
    for (int64_t r = p->rb; r < p->re; ix += p->cnt[r - p->rb], r++) pen += ortho_row(t, ix, p->cnt[r - p->rb]);
  }
  return pen;
}

static double ortho_rows_dense(sae_trainer_t *t) {  // dense path: F = t->pre (already rectified)
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

// Encoder-decoder tie (d_in == d_out): P = c sum_j ||e_j - w_j||^2, e_j latent j's encoder column, w_j
// its decoder row; dP/de_j = 2c (e_j - w_j) = -dP/dw_j. Every latent, every step (n d_in). A latent
// whose encoder leans away from its own decoder direction, as a general feature's does when it
// must stay silent where a specific feature has absorbed its direction, pays for it.
static double tie_grad(sae_trainer_t *t) {
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

int sae_trainer_grad(sae_trainer_t *t, const float *x, const float *y, int64_t B, sae_losses_t *L, ps_err_t *err) {
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t n = c->d_sae, o = c->d_out, d = c->d_in;
  memset(L, 0, sizeof *L);
  if (B <= 0) return ps_err_set(err, PS_EDIM, "trainer: empty batch");
  if (c->transcoder && !y) return ps_err_set(err, PS_EDIM, "trainer: a transcoder needs target rows");
  int64_t chunk = c->arch == SAE_BATCHTOPK ? B : (t->o.chunk_rows < B ? t->o.chunk_rows : B);
  int rc = ensure_chunk(t, chunk, err);
  if (rc) return rc;
  memset(t->grad, 0, s->n_params * sizeof(float));
  memset(t->fired, 0, (size_t)n);
  t->B = B;
  // schedule-dependent coefficients (for the step about to run: step + 1)
  double st = (double)(t->step + 1);
  double ramp = t->o.l1_warmup_steps > 0 ? fmin(1.0, st / (double)t->o.l1_warmup_steps) : 1.0;
  t->l1c = c->arch == SAE_RELU ? t->o.l1_coeff * ramp : 0.0;
  t->l0c = c->arch == SAE_JUMPRELU ? t->o.l0_coeff * ramp : 0.0;
  if (t->glt_acc) memset(t->glt_acc, 0, (size_t)n * sizeof(double));
  // dead latents
  t->n_dead = 0;
  if (t->o.k_aux > 0 && t->o.dead_steps > 0)
    for (int64_t j = 0; j < n; j++)
      if (t->since_fired[j] >= t->o.dead_steps) t->dead[t->n_dead++] = (int32_t)j;
  t->kaux = t->n_dead > 0 ? (int32_t)(t->o.k_aux < t->n_dead ? t->o.k_aux : t->n_dead) : 0;
  t->auxc = t->kaux > 0 ? t->o.aux_coeff * fmin((double)t->n_dead / (double)t->o.k_aux, 1.0) : 0.0;
  update_dec_norms(t);
  double mse = 0, l1 = 0, aux = 0, var = 0, l0 = 0, mse_nested = 0, ortho = 0;
  double *ysum = ps_xcalloc((size_t)o, sizeof(double)), *gbdec = ps_xcalloc((size_t)o, sizeof(double));
  t->dense_hash = 0;
  uint64_t hash = 0;
  for (int64_t r0 = 0; r0 < B; r0 += chunk) {
    t->r0 = r0;
    t->rows = B - r0 < chunk ? B - r0 : chunk;
    t->x = x + r0 * d;
    t->y = y ? y + r0 * o : NULL;
    ps_pool_run(t->pool, ph_prepare, t);
    preact(s, t->xin, t->rows, t->pre);
    if (c->arch == SAE_BATCHTOPK) t->btk_thr = batch_threshold(t);
    int dense = 0;
    if (c->arch == SAE_RELU) {
      int64_t pos = 0, tot = t->rows * n;
      for (int64_t q = 0; q < tot; q++) {
        float v = t->pre[q];
        pos += v > 0.0f;
      }
      dense = (double)pos > t->o.dense_threshold * (double)tot;
    } else if (c->arch == SAE_JUMPRELU) {
      int64_t pos = 0, tot = t->rows * n;
      for (int64_t r = 0; r < t->rows; r++)
        for (int64_t j = 0; j < n; j++) pos += t->pre[r * n + j] > s->threshold[j];
      dense = (double)pos > t->o.dense_threshold * (double)tot;
    }
    if (dense && c->arch == SAE_JUMPRELU) {
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
    if (dense) {
      if (!t->dpre_dense) t->dpre_dense = xalloc_f(t->chunk * n);
      if (c->arch == SAE_RELU)
        for (int64_t q = 0; q < t->rows * n; q++) t->pre[q] = t->pre[q] > 0.0f ? t->pre[q] : 0.0f;
      if (t->o.ortho_coeff > 0 && t->o.ortho_per_row) ortho += ortho_rows_dense(t);
      dense_chunk(t, &mse, &l1, &var, &l0, ysum, gbdec);
      L->dense_path = 1;
      continue;
    }
    ps_pool_run(t->pool, ph_rows, t);
    for (int i = 0; i < t->nt; i++) {
      tpart_t *p = &t->parts[i];
      mse += p->mse;
      mse_nested += p->mse_nested;
      l1 += p->l1;
      aux += p->aux;
      var += p->var_part;
      l0 += (double)p->nnz;
      hash += p->hash;
      for (int64_t q = 0; q < p->wnnz; q++) t->glt_acc[p->widx[q]] += p->wg[q];  // thread order = row order
      for (int64_t k = 0; k < o; k++) {
        ysum[k] += p->ysum[k];
        gbdec[k] += p->gbdec[k];
      }
    }
    build_csc(t);
    ps_pool_run(t->pool, ph_cols, t);
    if (t->o.ortho_coeff > 0 && t->o.ortho_per_row) ortho += ortho_rows(t);
    if (c->apply_b_dec_to_input)
      for (int i = 0; i < t->nt; i++)
        for (int64_t k = 0; k < d; k++) gbdec[k] -= t->parts[i].gbenc[k];
  }
  float *gbd = t->grad + n * d + n + n * o;
  for (int64_t k = 0; k < o; k++) gbd[k] = (float)gbdec[k];
  double ss = 0;
  for (int64_t k = 0; k < o; k++) ss += ysum[k] * ysum[k];
  free(ysum);
  free(gbdec);
  L->n_rows = B;
  L->mse = mse / (double)B;
  L->l1 = (c->arch == SAE_JUMPRELU ? t->l0c : t->l1c) * l1 / (double)B;
  if (t->glt)  // d loss / d log_threshold = theta d loss / d theta
    for (int64_t j = 0; j < n; j++) t->glt[j] = (float)t->glt_acc[j] * s->threshold[j];
  L->aux = t->auxc * aux / (double)B;
  L->ortho = t->o.ortho_coeff <= 0 ? 0.0 : t->o.ortho_per_row ? ortho : ortho_grad(t);
  L->tie = t->o.tie_coeff > 0 && d == o ? tie_grad(t) : 0.0;
  L->loss = (t->np > 1 ? mse_nested / ((double)B * t->np) : L->mse) + L->l1 + L->aux + L->ortho + L->tie;
  L->l0 = l0 / (double)B;
  L->var = (var - ss / (double)B) / (double)B;
  L->n_dead = t->n_dead;
  L->selection_hash = hash + t->dense_hash;
  return 0;
}

// ---- step -------------------------------------------------------------------------------------------
typedef struct {
  sae_trainer_t *t;
  float scale, b1, b2, omb1, omb2, step_size, bc2s, eps;
} adam_job_t;

static void ph_adam(void *ctx, int tid, int nt) {
  adam_job_t *a = ctx;
  sae_trainer_t *t = a->t;
  int64_t b, e;
  ps_pool_range((int64_t)t->s->n_params, tid, nt, &b, &e);
  float *restrict p = t->s->params, *restrict m = t->m, *restrict v = t->v;
  const float *restrict g = t->grad;
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

static void ph_gnorm(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  int64_t b, e;
  ps_pool_range((int64_t)t->s->n_params, tid, nt, &b, &e);
  double acc = 0;
  const float *g = t->grad;
  for (int64_t i = b; i < e; i++) acc += (double)g[i] * g[i];
  t->gnorm2_part[tid] = acc;
}

int sae_trainer_step(sae_trainer_t *t, const float *x, const float *y, int64_t B, sae_losses_t *L, ps_err_t *err) {
  int rc = sae_trainer_grad(t, x, y, B, L, err);
  if (rc) return rc;
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t n = c->d_sae, d = c->d_in, o = c->d_out;
  if (!isfinite(L->loss))
    return ps_err_set(err, PS_ENAN, "trainer: loss is %g at step %lld (diverged); parameters left unchanged",
                      L->loss, (long long)t->step + 1);
  float *gWd = t->grad + n * d + n;
  // unit-norm decoder: remove the gradient component parallel to each row
  if (t->o.unit_norm_decoder)
    for (int64_t j = 0; j < n; j++) {
      const float *w = s->W_dec + j * o;
      float *g = gWd + j * o;
      float nn = t->dec_norm[j] * t->dec_norm[j];
      if (nn > 0) axpyf(-dotf(g, w, o) / nn, w, g, o);
    }
  ps_pool_run(t->pool, ph_gnorm, t);
  double g2 = 0;
  for (int i = 0; i < t->nt; i++) g2 += t->gnorm2_part[i];
  if (t->glt) {
    double a2 = 0;
    for (int64_t j = 0; j < n; j++) a2 += (double)t->glt[j] * t->glt[j];
    g2 += a2;
  }
  L->grad_norm = sqrt(g2);
  if (!isfinite(L->grad_norm))
    return ps_err_set(err, PS_ENAN, "trainer: gradient norm is %g at step %lld (diverged); parameters left unchanged",
                      L->grad_norm, (long long)t->step + 1);
  float scale = 1.0f;
  if (t->o.clip_norm > 0) {
    double cc = t->o.clip_norm / (L->grad_norm + 1e-6);
    if (cc < 1.0) scale = (float)cc;
  }
  t->step++;
  double lr = t->o.lr;
  if (t->o.warmup_steps > 0 && t->step < t->o.warmup_steps) lr *= (double)t->step / (double)t->o.warmup_steps;
  if (t->o.decay_steps > 0 && t->o.total_steps > 0) {
    int64_t start = t->o.total_steps - t->o.decay_steps;
    if (t->step > start) lr *= fmax(0.0, (double)(t->o.total_steps - t->step) / (double)t->o.decay_steps);
  }
  L->lr = lr;
  double bc1 = 1.0 - pow(t->o.beta1, (double)t->step), bc2 = 1.0 - pow(t->o.beta2, (double)t->step);
  adam_job_t a = {t, scale, (float)t->o.beta1, (float)t->o.beta2, (float)(1.0 - t->o.beta1), (float)(1.0 - t->o.beta2),
                  (float)(lr / bc1), (float)sqrt(bc2), (float)t->o.eps};
  ps_pool_run(t->pool, ph_adam, &a);
  if (t->lt) {  // log_threshold: the same Adam, then threshold = exp(log_threshold)
    for (int64_t j = 0; j < n; j++) {
      float gi = t->glt[j] * a.scale;
      float mi = t->mlt[j] * a.b1 + gi * a.omb1;
      float vi = t->vlt[j] * a.b2 + gi * gi * a.omb2;
      t->mlt[j] = mi;
      t->vlt[j] = vi;
      float den = sqrtf(vi) / a.bc2s + a.eps;
      t->lt[j] -= a.step_size * (mi / den);
    }
    sae_trainer_sync_threshold(t);
  }
  if (t->o.unit_norm_decoder)
    for (int64_t j = 0; j < n; j++) {
      float *w = s->W_dec + j * o;
      float nrm = sqrtf(dotf(w, w, o));
      if (nrm > 0)
        for (int64_t i = 0; i < o; i++) w[i] /= nrm;
    }
  for (int64_t j = 0; j < n; j++) {
    t->since_fired[j] = t->fired[j] ? 0 : t->since_fired[j] + 1;
    t->fire_steps[j] += t->fired[j] != 0;
  }
  if (c->arch == SAE_BATCHTOPK && isfinite(t->btk_thr)) {
    float old = s->threshold[0];
    float nv = t->step == 1 ? t->btk_thr : (float)(t->o.threshold_ema * old + (1.0 - t->o.threshold_ema) * t->btk_thr);
    for (int64_t j = 0; j < n; j++) s->threshold[j] = nv;
  }
  return 0;
}

// ---- init ---------------------------------------------------------------------------------------------
static float gauss(uint64_t *st) {
  double u1 = ((double)(sae_rng_next(st) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  double u2 = (double)(sae_rng_next(st) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void sae_init_weights(sae_t *s, uint64_t seed, float dec_norm) {
  const sae_cfg_t *c = &s->cfg;
  int64_t n = c->d_sae, d = c->d_in, o = c->d_out;
  uint64_t st = seed ^ 0x5AE5AE5AE5AE5AEULL;
  for (int64_t j = 0; j < n; j++) {
    float *w = s->W_dec + j * o;
    double nn = 0;
    for (int64_t i = 0; i < o; i++) {
      w[i] = gauss(&st);
      nn += (double)w[i] * w[i];
    }
    float f = (float)(dec_norm / sqrt(nn > 0 ? nn : 1));
    for (int64_t i = 0; i < o; i++) w[i] *= f;
    float *we = s->W_encT + j * d;
    if (d == o) {
      memcpy(we, w, (size_t)d * sizeof(float));
    } else {
      nn = 0;
      for (int64_t i = 0; i < d; i++) {
        we[i] = gauss(&st);
        nn += (double)we[i] * we[i];
      }
      f = (float)(dec_norm / sqrt(nn > 0 ? nn : 1));
      for (int64_t i = 0; i < d; i++) we[i] *= f;
    }
  }
  memset(s->b_enc, 0, (size_t)n * sizeof(float));
  memset(s->b_dec, 0, (size_t)o * sizeof(float));
}

void sae_init_b_dec(sae_t *s, const float *y, int64_t n, int max_iter) {
  int64_t o = s->cfg.d_out;
  if (n <= 0) return;
  double *mu = ps_xcalloc((size_t)o, sizeof(double)), *acc = ps_xcalloc((size_t)o, sizeof(double));
  for (int64_t r = 0; r < n; r++)
    for (int64_t i = 0; i < o; i++) mu[i] += y[r * o + i];
  for (int64_t i = 0; i < o; i++) mu[i] /= (double)n;
  for (int it = 0; it < max_iter; it++) {  // Weiszfeld
    double wsum = 0;
    memset(acc, 0, (size_t)o * sizeof(double));
    for (int64_t r = 0; r < n; r++) {
      double dd = 0;
      for (int64_t i = 0; i < o; i++) {
        double df = y[r * o + i] - mu[i];
        dd += df * df;
      }
      double w = 1.0 / fmax(sqrt(dd), 1e-8);
      wsum += w;
      for (int64_t i = 0; i < o; i++) acc[i] += w * y[r * o + i];
    }
    double shift = 0;
    for (int64_t i = 0; i < o; i++) {
      double nv = acc[i] / wsum;
      shift += (nv - mu[i]) * (nv - mu[i]);
      mu[i] = nv;
    }
    if (shift < 1e-12) break;
  }
  for (int64_t i = 0; i < o; i++) s->b_dec[i] = (float)mu[i];
  free(mu);
  free(acc);
}

int sae_train_parse_matryoshka(sae_train_opts_t *o, const char *list, int64_t d_sae, ps_err_t *err) {
  int64_t v[17];
  int n = 0;
  const char *p = list;
  while (*p) {
    char *end;
    long long x = strtoll(p, &end, 10);
    if (end == p || x <= 0 || (*end && *end != ','))
      return ps_err_set(err, PS_ECONFIG, "--matryoshka %s: expected positive sizes separated by commas", list);
    if (n == 16) return ps_err_set(err, PS_ECONFIG, "--matryoshka %s: at most 16 prefixes", list);
    v[n++] = x < d_sae ? x : d_sae;
    p = *end ? end + 1 : end;
  }
  for (int i = 1; i < n; i++)  // sort (few entries)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      int64_t tmp = v[j]; v[j] = v[j - 1]; v[j - 1] = tmp;
    }
  int m = 0;
  for (int i = 0; i < n; i++)
    if (m == 0 || v[i] != v[m - 1]) v[m++] = v[i];
  if (m == 0 || v[m - 1] != d_sae) {
    if (m == 16) return ps_err_set(err, PS_ECONFIG, "--matryoshka %s: at most 16 prefixes with d_sae", list);
    v[m++] = d_sae;
  }
  o->n_matryoshka = m;
  memcpy(o->matryoshka, v, (size_t)m * sizeof(int64_t));
  return 0;
}
