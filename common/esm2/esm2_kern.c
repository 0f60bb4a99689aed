// esm2_kern.c — the element-wise inner loops of the ESM2 forward that dominate after the sgemms
// (softmax over attention scores, GELU, LayerNorm). Built with -O3 -ffast-math (see meson.build) so GCC
// vectorizes them: the exponential is a branch-free polynomial (Cephes expf, Cody-Waite
// reduction with fused multiply-adds: relative error < 3e-7 for -87 <= x <= 0, tested), sums are reassociated,
// erff becomes glibc's vector erff (libmvec, <= 4 ulp) where available. Inputs are finite; the results stay within float rounding of the scalar versions.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "esm2_kern.h"

static inline float exp_poly(float x) {
  x = x < -87.3f ? -87.3f : x;   // the row maximum is subtracted first, so x <= 0
  float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  // Cody-Waite reduction r = x - n ln2 in two fused steps (fast-math would merge plain ones)
  float r = __builtin_fmaf(n, -0.693359375f, x);
  r = __builtin_fmaf(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t e = ((int32_t)n + 127) << 23;
  float s;
  memcpy(&s, &e, sizeof s);
  return y * s;
}

float esm2_kern_exp(float x) { return exp_poly(x); }

void esm2_kern_softmax_unnorm(float *S, int rows, int cols, float *inv_sum) {
  for (int i = 0; i < rows; i++) {
    float *row = S + (size_t)i * cols;
    float mx = row[0];
    for (int j = 1; j < cols; j++) mx = row[j] > mx ? row[j] : mx;
    float sum = 0;
    for (int j = 0; j < cols; j++) {
      float e = exp_poly(row[j] - mx);
      row[j] = e;
      sum += e;
    }
    inv_sum[i] = 1.0f / sum;
  }
}

void esm2_kern_scale_rows(float *X, int rows, int cols, int ld, const float *scale) {
  for (int i = 0; i < rows; i++) {
    float *x = X + (size_t)i * ld, s = scale[i];
    for (int j = 0; j < cols; j++) x[j] *= s;
  }
}

void esm2_kern_gelu_bias(float *u, const float *bias, int n) {
  for (int i = 0; i < n; i++) {
    float x = u[i] + bias[i];
    u[i] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  }
}

void esm2_kern_layernorm(float *x, const float *bias, float *y, const float *w, const float *b, int n, float eps) {
  float s = 0;
  if (bias)
    for (int i = 0; i < n; i++) {
      x[i] += bias[i];
      s += x[i];
    }
  else
    for (int i = 0; i < n; i++) s += x[i];
  float mean = s / (float)n, v = 0;
  for (int i = 0; i < n; i++) v += (x[i] - mean) * (x[i] - mean);
  float rstd = 1.0f / sqrtf(v / (float)n + eps);
  for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}
