// esm2_attn_avx512.c — the two products of an attention task (esm2_attn.h) with AVX-512F: scores
// S = Q K^T against keys stored transposed (keys in the vector lanes) and ctx = (P V) / sum with
// the head dimension in the lanes. Tiles of 12 query rows x 32 lanes in 24 zmm accumulators, the
// other operand broadcast. Built with -mavx512f -mfma (meson.build); called only after the
// run-time check esm2_attn_avx512_cpu() (esm2_attn.c).
#include <immintrin.h>
#include <stddef.h>

#include "esm2_attn.h"

#define MR 12

static inline __mmask16 lane_mask(int n) { return (__mmask16)(n >= 16 ? 0xffff : n <= 0 ? 0 : (1u << n) - 1); }

// C (mr, 32 lanes masked by m0/m1; stride ldc) = A (mr, K; stride lda) B (K, 32 lanes; stride ldb),
// each row times scale[r] when scale is not NULL: both products of the task are this tile.
static inline __attribute__((always_inline)) void tile(const int mr, int K, const float *A, int lda, const float *B,
                                                       int ldb, float *C, int ldc, __mmask16 m0, __mmask16 m1,
                                                       const float *scale) {
  __m512 acc0[MR], acc1[MR];
  for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int p = 0; p < K; p++) {
    __m512 b0 = _mm512_maskz_loadu_ps(m0, B + (size_t)p * ldb), b1 = _mm512_maskz_loadu_ps(m1, B + (size_t)p * ldb + 16);
    for (int r = 0; r < mr; r++) {
      __m512 a = _mm512_set1_ps(A[(size_t)r * lda + p]);
      acc0[r] = _mm512_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(a, b1, acc1[r]);
    }
  }
  for (int r = 0; r < mr; r++) {
    if (scale) {
      __m512 s = _mm512_set1_ps(scale[r]);
      acc0[r] = _mm512_mul_ps(acc0[r], s);
      acc1[r] = _mm512_mul_ps(acc1[r], s);
    }
    _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, acc1[r]);
  }
}

#define CASES(F, ...)                                                                                      \
  switch (mr) {                                                                                            \
    case 12: F(12, __VA_ARGS__); break;                                                                    \
    case 11: F(11, __VA_ARGS__); break;                                                                    \
    case 10: F(10, __VA_ARGS__); break;                                                                    \
    case 9: F(9, __VA_ARGS__); break;                                                                      \
    case 8: F(8, __VA_ARGS__); break;                                                                      \
    case 7: F(7, __VA_ARGS__); break;                                                                      \
    case 6: F(6, __VA_ARGS__); break;                                                                      \
    case 5: F(5, __VA_ARGS__); break;                                                                      \
    case 4: F(4, __VA_ARGS__); break;                                                                      \
    case 3: F(3, __VA_ARGS__); break;                                                                      \
    case 2: F(2, __VA_ARGS__); break;                                                                      \
    default: F(1, __VA_ARGS__); break;                                                                     \
  }

void esm2_attn_scores_avx512(int nq, int T, int hd, const float *Q, int ldq, const float *Kt, int ldkt, float *S,
                             int lds) {
  for (int i0 = 0; i0 < nq; i0 += MR) {
    int mr = nq - i0 < MR ? nq - i0 : MR;
    for (int j0 = 0; j0 < T; j0 += 32) {
      __mmask16 m0 = lane_mask(T - j0), m1 = lane_mask(T - j0 - 16);
      CASES(tile, hd, Q + (size_t)i0 * ldq, ldq, Kt + j0, ldkt, S + (size_t)i0 * lds + j0, lds, m0, m1, NULL)
    }
  }
}

void esm2_attn_pv_avx512(int nq, int T, int hd, const float *P, int lds, const float *V, int ldv, const float *inv,
                         float *O, int ldo) {
  for (int i0 = 0; i0 < nq; i0 += MR) {
    int mr = nq - i0 < MR ? nq - i0 : MR;
    for (int d0 = 0; d0 < hd; d0 += 32) {
      __mmask16 m0 = lane_mask(hd - d0), m1 = lane_mask(hd - d0 - 16);
      CASES(tile, T, P + (size_t)i0 * lds, lds, V + d0, ldv, O + (size_t)i0 * ldo + d0, ldo, m0, m1, inv + i0)
    }
  }
}
