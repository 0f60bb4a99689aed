// sae_fixture.h — the SAE unit tests' shared helpers: seeded random rows and a small SAE with
// non-trivial biases (and, for JumpReLU, per-latent thresholds). Include after cmocka.h.
#ifndef PS_TEST_SAE_FIXTURE_H
#define PS_TEST_SAE_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>

#include "hash.h"
#include "sae.h"
#include "sae_train.h"

static inline float *rand_rows(uint64_t seed, int64_t n, int64_t d, float scale) {
  float *x = malloc((size_t)(n * d) * sizeof(float));
  uint64_t st = seed;
  for (int64_t i = 0; i < n * d; i++)
    x[i] = scale * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  return x;
}

static inline sae_t *make_sae(sae_arch_t arch, int d, int n, int o, int k, int norm) {
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = arch;
  c.d_in = d;
  c.d_sae = n;
  c.d_out = o;
  c.k = k;
  c.apply_b_dec_to_input = d == o;
  c.transcoder = d != o;
  c.normalize_per_sample = norm;
  sae_t *s = NULL;
  ps_err_t err = {0};
  assert_int_equal(sae_new(&s, &c, &err), 0);
  sae_init_weights(s, 7, 1.0f);
  // non-trivial biases
  uint64_t st = 99;
  for (int64_t j = 0; j < n; j++) s->b_enc[j] = 0.1f * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0 - 0.3);
  for (int64_t i = 0; i < o; i++) s->b_dec[i] = 0.05f * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0 - 0.5);
  if (arch == SAE_JUMPRELU)  // per-latent thresholds (the trainer takes their logs)
    for (int64_t j = 0; j < n; j++) s->threshold[j] = 0.02f + 0.2f * (float)((double)(ps_splitmix64(&st) >> 11) / 9007199254740992.0);
  return s;
}

#endif
