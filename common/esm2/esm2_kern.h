// esm2_kern.h — vectorized inner loops of the ESM2 forward (esm2_kern.c, built with -O3 -ffast-math).
#ifndef PS_ESM2_KERN_H
#define PS_ESM2_KERN_H

// exp(x) for x <= 0 (Cephes polynomial; relative error < 3e-7 on [-87, 0], tested).
float esm2_kern_exp(float x);
// Each of `rows` rows of S (rows x cols): S = exp(S - max(row)) in place; inv_sum[i] = 1 / sum.
void esm2_kern_softmax_unnorm(float *S, int rows, int cols, float *inv_sum);
// X[i, 0:cols] *= scale[i] for rows of stride ld.
void esm2_kern_scale_rows(float *X, int rows, int cols, int ld, const float *scale);

// Exact (erf) GELU of u + bias, in place: u[i] = g(u[i] + bias[i]), n elements.
void esm2_kern_gelu_bias(float *u, const float *bias, int n);

// LayerNorm of one row: x += bias first when bias is not NULL (in place), then
// y = (x - mean) / sqrt(var + eps) * w + b (y may be x). Float sums (vectorized).
void esm2_kern_layernorm(float *x, const float *bias, float *y, const float *w, const float *b, int n, float eps);

#endif
