// sae_train_adam.c — the optimiser: global gradient norm (and clipping), the learning-rate
// schedule (linear warm-up from 0, linear decay to 0 over the last decay_steps of total_steps),
// and Adam over every parameter every step (exact semantics, as torch.optim.Adam), JumpReLU's
// log_threshold included. The flat loops run on the pool; each thread owns a range of parameters.
#include <math.h>

#include "sae_train_impl.h"

static void ph_gnorm(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  int64_t b, e;
  ps_pool_range((int64_t)t->s->n_params, tid, nt, &b, &e);
  double acc[8] = {0}, s = 0;  // 8 running sums: vectorises, in a fixed order
  const float *g = t->grad;
  int64_t i = b;
  for (; i + 8 <= e; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += (double)g[i + l] * g[i + l];
  for (; i < e; i++) s += (double)g[i] * g[i];
  for (int l = 0; l < 8; l++) s += acc[l];
  t->gnorm2_part[tid] = s;
}

// ||gradient|| over the parameters and (jumprelu) log_threshold.
double tr_grad_norm(sae_trainer_t *t) {
  ps_pool_run(t->pool, ph_gnorm, t);
  double g2 = 0;
  for (int i = 0; i < t->nt; i++) g2 += t->gnorm2_part[i];
  if (t->glt) {
    double a2 = 0;
    for (int64_t j = 0; j < t->s->cfg.d_sae; j++) a2 += (double)t->glt[j] * t->glt[j];
    g2 += a2;
  }
  return sqrt(g2);
}

// The factor that clips the gradient to clip_norm (1 when under it or clipping is off).
float tr_clip_scale(const sae_trainer_t *t, double grad_norm) {
  float scale = 1.0f;
  if (t->o.clip_norm > 0) {
    double cc = t->o.clip_norm / (grad_norm + 1e-6);
    if (cc < 1.0) scale = (float)cc;
  }
  return scale;
}

// The learning rate of step (1-based).
double tr_lr(const sae_train_opts_t *o, int64_t step) {
  double lr = o->lr;
  if (o->warmup_steps > 0 && step < o->warmup_steps) lr *= (double)step / (double)o->warmup_steps;
  if (o->decay_steps > 0 && o->total_steps > 0) {
    int64_t start = o->total_steps - o->decay_steps;
    if (step > start) lr *= fmax(0.0, (double)(o->total_steps - step) / (double)o->decay_steps);
  }
  return lr;
}

static void ph_adam(void *ctx, int tid, int nt) {
  const adam_job_t *a = ctx;
  sae_trainer_t *t = a->t;
  int64_t b, e;
  ps_pool_range((int64_t)t->s->n_params, tid, nt, &b, &e);
  adam_update(t->s->params, t->m, t->v, t->grad, b, e, a);
}

// One Adam step at t->step (already advanced) with the clip factor scale and learning rate lr;
// log_threshold takes the same update, then the model's threshold = exp(log_threshold).
void tr_adam(sae_trainer_t *t, float scale, double lr) {
  const sae_train_opts_t *o = &t->o;
  double bc1 = 1.0 - pow(o->beta1, (double)t->step), bc2 = 1.0 - pow(o->beta2, (double)t->step);
  adam_job_t a = {t, scale, (float)o->beta1, (float)o->beta2, (float)(1.0 - o->beta1), (float)(1.0 - o->beta2),
                  (float)(lr / bc1), (float)sqrt(bc2), (float)o->eps};
  ps_pool_run(t->pool, ph_adam, &a);
  if (t->lt) {
    adam_update(t->lt, t->mlt, t->vlt, t->glt, 0, t->s->cfg.d_sae, &a);
    sae_trainer_sync_threshold(t);
  }
}
