// sae_train_init.c — initial weights: random unit directions for the decoder rows (scaled to
// dec_norm), the encoder tied to the decoder's transpose (SAE), zero biases; b_dec from the first
// batch (geometric median or mean); optionally decoder rows (and encoder columns) from data rows
// minus b_dec. Deterministic in the seed (splitmix64, common/hash.h).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sae_train.h"

static float gauss(uint64_t *st) {
  double u1 = ((double)(ps_splitmix64(st) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  double u2 = (double)(ps_splitmix64(st) >> 11) * (1.0 / 9007199254740992.0);
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

static void put_dir(float *w, const float *v, const float *sub, int64_t m, float norm) {
  double nn = 0;
  for (int64_t i = 0; i < m; i++) {
    double t = (double)v[i] - (sub ? sub[i] : 0.0f);
    nn += t * t;
  }
  if (!(nn > 1e-12)) return;  // at b_dec (or not finite): keep the random direction
  double f = norm / sqrt(nn);
  for (int64_t i = 0; i < m; i++) w[i] = (float)(f * ((double)v[i] - (sub ? sub[i] : 0.0f)));
}

void sae_init_rows_from_data(sae_t *s, const float *x, const float *y, int64_t n, uint64_t seed, float dec_norm) {
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, o = c->d_out;
  if (n <= 0) return;
  uint64_t st = seed ^ 0xDA7A1D17DA7A1D17ULL;
  int64_t *perm = ps_xmalloc((size_t)n * sizeof(int64_t)), left = 0;
  for (int64_t j = 0; j < c->d_sae; j++) {
    if (left == 0) {  // a fresh permutation of the rows
      for (int64_t i = 0; i < n; i++) perm[i] = i;
      left = n;
    }
    int64_t q = (int64_t)(ps_splitmix64(&st) % (uint64_t)left), r = perm[q];
    perm[q] = perm[--left];
    put_dir(s->W_dec + j * o, y + r * o, s->b_dec, o, dec_norm);
    if (!c->transcoder && d == o)
      memcpy(s->W_encT + j * d, s->W_dec + j * o, (size_t)d * sizeof(float));
    else
      put_dir(s->W_encT + j * d, x + r * d, c->apply_b_dec_to_input && d == o ? s->b_dec : NULL, d, dec_norm);
  }
  free(perm);
}
