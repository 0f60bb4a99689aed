// sae_train_resample.c — dead-latent resampling toward badly reconstructed rows (Anthropic 2023,
// "Towards monosemanticity", adapted): the rows at hand are encoded and decoded with the current
// model; each dead latent (no firing for dead_after steps, default dead_steps) takes a row drawn with probability
// proportional to the square of its loss ||y - y^||^2 (without replacement, so no two latents get
// the same row); its decoder row becomes that row's residual y - y^ at the latent's current norm
// (unit with the unit-norm decoder), its encoder column the same direction at enc_scale x the mean
// encoder norm of the live latents (enc_scale 0: a copy of the decoder row, the tie of
// --init-from-data), its encoder bias 0, the Adam moments of all three 0, and its dead count 0.
// TopK and BatchTopK SAEs only. Deterministic in seed.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sae_train_impl.h"

// Squared-error residuals of the n rows (model space) into res (n x o), squared losses into loss.
static int residuals(sae_trainer_t *t, const float *x, const float *y, int64_t n, float *res, double *loss,
                     ps_err_t *err) {
  const sae_t *s = t->s;
  int64_t o = s->cfg.d_out;
  sae_enc_t *e = NULL;
  sae_codes_t codes = {0};
  int rc = sae_enc_new(&e, s, t->pool, 1024, err);
  if (!rc) rc = sae_enc_run(e, x, n, &codes, err);
  if (!rc) sae_decode(s, &codes, res);
  sae_enc_free(&e);
  sae_codes_free(&codes);
  if (rc) return rc;
  const float *tgt = y ? y : x;
  float *row = ps_xmalloc((size_t)o * sizeof(float));
  for (int64_t r = 0; r < n; r++) {
    memcpy(row, tgt + r * o, (size_t)o * sizeof(float));
    if (s->cfg.normalize_per_sample) sae_normalize_row(row, o, NULL, NULL);
    double ss = 0;
    for (int64_t i = 0; i < o; i++) {
      float dv = row[i] - res[r * o + i];
      res[r * o + i] = dv;
      ss += (double)dv * dv;
    }
    loss[r] = isfinite(ss) ? ss : 0.0;
  }
  free(row);
  return 0;
}

int sae_trainer_resample(sae_trainer_t *t, const float *x, const float *y, int64_t n, uint64_t seed,
                         int64_t dead_after, double enc_scale, int64_t *n_resampled, ps_err_t *err) {
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, o = c->d_out, ns = c->d_sae;
  *n_resampled = 0;
  if (c->arch != SAE_TOPK && c->arch != SAE_BATCHTOPK)
    return ps_err_set(err, PS_ECONFIG, "resample: dead-latent resampling needs --arch topk or batchtopk (not %s)",
                      sae_arch_name(c->arch));
  if (c->transcoder || d != o)
    return ps_err_set(err, PS_ECONFIG, "resample: dead-latent resampling is for SAEs (d_in = d_out), not transcoders");
  if (dead_after <= 0) dead_after = t->o.dead_steps;
  if (dead_after <= 0 || n <= 0) return 0;
  int64_t nd = 0;
  double enc_sum = 0;
  for (int64_t j = 0; j < ns; j++) {
    if (t->since_fired[j] >= dead_after) {
      nd++;
    } else {
      double nn = 0;
      for (int64_t i = 0; i < d; i++) nn += (double)s->W_encT[j * d + i] * s->W_encT[j * d + i];
      enc_sum += sqrt(nn);
    }
  }
  if (nd == 0) return 0;
  double enc_norm = nd < ns ? enc_scale * enc_sum / (double)(ns - nd) : enc_scale;
  float *res = ps_xmalloc((size_t)(n * o) * sizeof(float));
  double *w = ps_xmalloc((size_t)n * sizeof(double));
  int rc = residuals(t, x, y, n, res, w, err);
  if (rc) {
    free(res);
    free(w);
    return ps_err_prefix(err, "resample: ");
  }
  double wsum = 0;
  for (int64_t r = 0; r < n; r++) {
    w[r] *= w[r];
    wsum += w[r];
  }
  uint64_t st = seed ^ 0x4E5A3B1E5A3B1E5ULL;
  int64_t done = 0;
  for (int64_t j = 0; j < ns && wsum > 0; j++) {
    if (t->since_fired[j] < dead_after) continue;
    double u = ps_unit53(ps_splitmix64(&st)) * wsum, acc = 0;
    int64_t r = 0, last = -1;
    for (; r < n; r++) {
      if (w[r] <= 0) continue;
      last = r;
      acc += w[r];
      if (acc > u) break;
    }
    if (r == n) r = last;  // rounding at the end of the sum
    if (r < 0) break;
    wsum -= w[r];
    w[r] = 0;
    const float *v = res + r * o;
    double nn = 0, dn = 0;
    for (int64_t i = 0; i < o; i++) {
      nn += (double)v[i] * v[i];
      dn += (double)s->W_dec[j * o + i] * s->W_dec[j * o + i];
    }
    if (!(nn > 1e-24)) continue;
    double dec_norm = t->o.unit_norm_decoder ? 1.0 : sqrt(dn);
    float fd = (float)(dec_norm / sqrt(nn)), fe = (float)((enc_scale > 0 ? enc_norm : dec_norm) / sqrt(nn));
    for (int64_t i = 0; i < o; i++) {
      s->W_dec[j * o + i] = fd * v[i];
      s->W_encT[j * d + i] = fe * v[i];
    }
    s->b_enc[j] = 0.0f;
    size_t pe = (size_t)(j * d), pb = (size_t)(ns * d + j), pd = (size_t)(ns * d + ns + j * o);
    memset(t->m + pe, 0, (size_t)d * sizeof(float));
    memset(t->v + pe, 0, (size_t)d * sizeof(float));
    t->m[pb] = t->v[pb] = 0.0f;
    memset(t->m + pd, 0, (size_t)o * sizeof(float));
    memset(t->v + pd, 0, (size_t)o * sizeof(float));
    t->since_fired[j] = 0;
    done++;
  }
  free(res);
  free(w);
  *n_resampled = done;
  return 0;
}
