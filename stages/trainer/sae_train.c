// sae_train.c — see sae_train.h. The trainer object, and the outline of a step: sae_trainer_grad
// runs the batch in chunks of rows, each through the encoder product and then either the sparse
// path (sae_train_rows.c, with the architecture's selection and penalty: sae_train_topk.c,
// sae_train_relu.c, sae_train_jumprelu.c) or, for ReLU / JumpReLU when many latents fire, the
// dense path (sae_train_dense.c); then the regularisers (sae_train_reg.c). sae_trainer_step adds
// the decoder constraint, clipping, the schedule and Adam (sae_train_adam.c) and the bookkeeping
// of dead latents and thresholds. The map of the files is in sae_train_impl.h.
#include "sae_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sae_train_impl.h"

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
  t->gbenc = ps_xmalloc((size_t)(t->nt * c->d_in) * sizeof(double));
  for (int i = 0; i < t->nt; i++) {
    t->parts[i].gbdec = ps_xmalloc((size_t)c->d_out * sizeof(double));
    t->parts[i].ysum = ps_xmalloc((size_t)c->d_out * sizeof(double));
  }
  t->np = o->n_matryoshka > 1 ? o->n_matryoshka : 1;
  t->mgroup = ps_xcalloc((size_t)n, 1);
  for (int g = 0, j = 0; t->np > 1 && g < t->np; g++)
    for (; j < o->matryoshka[g]; j++) t->mgroup[j] = (uint8_t)g;
  if (c->arch == SAE_JUMPRELU) jumprelu_state_init(t);
  *out = t;
  return 0;
}

static void free_chunk(sae_trainer_t *t) {
  free(t->pre);
  free(t->dpre_dense);
  t->pre = t->dpre_dense = NULL;
  for (int i = 0; i < t->nt; i++) {
    free(t->parts[i].cnt);
    free(t->parts[i].acnt);
    t->parts[i].cnt = t->parts[i].acnt = NULL;
  }
  t->chunk = 0;
}

static void free_batch(sae_trainer_t *t) {
  free(t->xin_b);
  free(t->yn_b);
  free(t->ebuf_b);
  free(t->gabuf_b);
  t->xin_b = t->yn_b = t->ebuf_b = t->gabuf_b = NULL;
  t->brows = 0;
}

void sae_trainer_free(sae_trainer_t **tp) {
  if (!tp || !*tp) return;
  sae_trainer_t *t = *tp;
  if (t->parts) {
    free_chunk(t);
    free_batch(t);
    for (int i = 0; i < t->nt; i++) {
      tpart_t *p = &t->parts[i];
      free(p->idx); free(p->f); free(p->dpre); free(p->aidx); free(p->af); free(p->adpre);
      free(p->gbdec); free(p->ysum);
      free(p->widx); free(p->wrow); free(p->wg);
    }
  }
  free(t->parts);
  free(t->grad); free(t->m); free(t->v);
  free(t->since_fired); free(t->fire_steps); free(t->fired); free(t->dead); free(t->dec_norm);
  free(t->ccount); free(t->cent); free(t->mgroup);
  free(t->coo); free(t->coo_j); free(t->gbenc);
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
int64_t sae_trainer_n_dead(const sae_trainer_t *t) {
  int64_t nd = 0;
  for (int64_t j = 0; j < t->s->cfg.d_sae; j++) nd += t->o.dead_steps > 0 && t->since_fired[j] >= t->o.dead_steps;
  return nd;
}

// Workspace for chunks of rows (pre-activations) in a batch of B rows (inputs, errors).
static int ensure_chunk(sae_trainer_t *t, int64_t rows, int64_t B, ps_err_t *err) {
  const sae_cfg_t *c = &t->s->cfg;
  if (B > t->brows) {
    free_batch(t);
    t->xin_b = xalloc_f(B * c->d_in);
    t->yn_b = xalloc_f(B * c->d_out);
    t->ebuf_b = xalloc_f(B * c->d_out * t->np);
    t->gabuf_b = xalloc_f(B * c->d_out);
    if (!t->xin_b || !t->yn_b || !t->ebuf_b || !t->gabuf_b) {
      free_batch(t);
      return ps_err_set(err, PS_ENOMEM, "trainer: cannot allocate a %lld-row batch workspace", (long long)B);
    }
    t->brows = B;
  }
  if (rows <= t->chunk) return 0;
  free_chunk(t);
  t->pre = xalloc_f(rows * c->d_sae);
  if (!t->pre) {
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

// ---- gradient ------------------------------------------------------------------------------------
int sae_trainer_grad(sae_trainer_t *t, const float *x, const float *y, int64_t B, sae_losses_t *L, ps_err_t *err) {
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t n = c->d_sae, o = c->d_out, d = c->d_in;
  memset(L, 0, sizeof *L);
  if (B <= 0) return ps_err_set(err, PS_EDIM, "trainer: empty batch");
  if (c->transcoder && !y) return ps_err_set(err, PS_EDIM, "trainer: a transcoder needs target rows");
  int64_t chunk = c->arch == SAE_BATCHTOPK ? B : (t->o.chunk_rows < B ? t->o.chunk_rows : B);
  int rc = ensure_chunk(t, chunk, B, err);
  if (rc) return rc;
  t->grad_ready = 0;  // tr_flush zeroes the rows as it writes them (the dense path: all at once)
  memset(t->fired, 0, (size_t)n);
  t->B = B;
  // schedule-dependent coefficients (for the step about to run: step + 1)
  double st = (double)(t->step + 1);
  double ramp = t->o.l1_warmup_steps > 0 ? fmin(1.0, st / (double)t->o.l1_warmup_steps) : 1.0;
  t->l1c = c->arch == SAE_RELU ? t->o.l1_coeff * ramp : 0.0;
  t->l0c = c->arch == SAE_JUMPRELU ? t->o.l0_coeff * ramp : 0.0;
  if (t->glt_acc) memset(t->glt_acc, 0, (size_t)n * sizeof(double));
  auxk_prepare(t);
  tr_update_dec_norms(t);
  double mse = 0, l1 = 0, aux = 0, var = 0, l0 = 0, mse_nested = 0;
  double *ysum = ps_xcalloc((size_t)o, sizeof(double)), *gbdec = ps_xcalloc((size_t)o, sizeof(double));
  t->dense_hash = 0;
  uint64_t hash = 0;
  t->x = x;  // inputs of the whole batch (one pass on the pool)
  t->y = y;
  t->rows = B;
  t->xin = t->xin_b;
  ps_pool_run(t->pool, tr_prepare, t);
  const float *ybase = tr_target(t, x);
  for (int64_t r0 = 0; r0 < B; r0 += chunk) {
    t->r0 = r0;
    t->rows = B - r0 < chunk ? B - r0 : chunk;
    t->xin = t->xin_b + r0 * d;
    t->yn = ybase + r0 * o;
    t->ebuf = t->ebuf_b + r0 * o * t->np;
    t->gabuf = t->gabuf_b + r0 * o;
    tr_preact(s, t->xin, t->rows, t->pre);
    if (c->arch == SAE_BATCHTOPK) t->btk_thr = batchtopk_threshold(t);
    if (tr_dense_wanted(t)) {  // relu / jumprelu, many active: the whole chunk with sgemm
      if (c->arch == SAE_JUMPRELU) jumprelu_dense_window(t);
      if (!t->dpre_dense) t->dpre_dense = xalloc_f(t->chunk * n);
      tr_flush(t, gbdec);  // the sparse chunks before this one, in order
      if (!t->grad_ready) memset(t->grad, 0, s->n_params * sizeof(float));
      t->grad_ready = 1;
      if (c->arch == SAE_RELU) relu_dense_rectify(t);
      tr_dense_chunk(t, &mse, &l1, &var, &l0, ysum, gbdec);
      L->dense_path = 1;
      continue;
    }
    ps_pool_run(t->pool, tr_rows, t);
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
    tr_collect(t);
  }
  tr_flush(t, gbdec);
  float *gbd = t->grad + n * d + n + n * o;
  for (int64_t k = 0; k < o; k++) gbd[k] = (float)gbdec[k];
  double ss = 0;
  for (int64_t k = 0; k < o; k++) ss += ysum[k] * ysum[k];
  free(ysum);
  free(gbdec);
  L->n_rows = B;
  L->mse = mse / (double)B;
  L->l1 = (c->arch == SAE_JUMPRELU ? t->l0c : t->l1c) * l1 / (double)B;
  if (t->glt) jumprelu_finish_grad(t);
  L->aux = t->auxc * aux / (double)B;
  L->tie = t->o.tie_coeff > 0 && d == o ? tie_grad(t) : 0.0;
  L->loss = (t->np > 1 ? mse_nested / ((double)B * t->np) : L->mse) + L->l1 + L->aux + L->tie;
  L->l0 = l0 / (double)B;
  L->var = (var - ss / (double)B) / (double)B;
  L->n_dead = t->n_dead;
  L->selection_hash = hash + t->dense_hash;
  return 0;
}

// ---- step -------------------------------------------------------------------------------------------
int sae_trainer_step(sae_trainer_t *t, const float *x, const float *y, int64_t B, sae_losses_t *L, ps_err_t *err) {
  int rc = sae_trainer_grad(t, x, y, B, L, err);
  if (rc) return rc;
  const sae_cfg_t *c = &t->s->cfg;
  if (!isfinite(L->loss))
    return ps_err_set(err, PS_ENAN, "trainer: loss is %g at step %lld (diverged); parameters left unchanged",
                      L->loss, (long long)t->step + 1);
  if (t->o.unit_norm_decoder) decoder_project_grad(t);
  L->grad_norm = tr_grad_norm(t);
  if (!isfinite(L->grad_norm))
    return ps_err_set(err, PS_ENAN, "trainer: gradient norm is %g at step %lld (diverged); parameters left unchanged",
                      L->grad_norm, (long long)t->step + 1);
  float scale = tr_clip_scale(t, L->grad_norm);
  t->step++;
  L->lr = tr_lr(&t->o, t->step);
  tr_adam(t, scale, L->lr);
  if (t->o.unit_norm_decoder) decoder_renormalise(t);
  for (int64_t j = 0; j < c->d_sae; j++) {
    t->since_fired[j] = t->fired[j] ? 0 : t->since_fired[j] + 1;
    t->fire_steps[j] += t->fired[j] != 0;
  }
  if (c->arch == SAE_BATCHTOPK) batchtopk_update_threshold(t);
  return 0;
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
