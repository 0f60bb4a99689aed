// esm2_gemm_bf16.c — the AVX-512 BF16 kernel of esm2_gemm_bf16 (esm2_gemm.h). Built with
// -mavx512f -mavx512bw -mavx512vl -mavx512bf16 (meson.build); only called after the run-time
// check esm2_gemm_bf16_cpu(), so the rest of the build runs on any x86-64.
//
// Blocking: a thread's rows go MC (96) at a time: converted to bf16 pairs (vcvtne2ps2bf16) into
// the scratch; then for each block of KC pairs (128 = 256 k), each 32-column panel of W, each
// tile of up to 12 rows: 24 zmm accumulators, per pair of k two panel loads and 12 broadcast
// vdpbf16ps pairs. The panel block (16 KB) stays in L1 across the tiles; C is read back and
// accumulated between k blocks. Columns beyond n are masked at load and store.
#include <immintrin.h>
#include <string.h>

#include "esm2_gemm.h"

#define MR 12
#define KC 128

// Row i of A (k floats) -> kp bf16 pairs (the odd k's partner 0).
static void to_bf16_row(const float *a, int k, uint32_t *out) {
  int j = 0;
  for (; j + 32 <= k; j += 32) {
    __m512 lo = _mm512_loadu_ps(a + j), hi = _mm512_loadu_ps(a + j + 16);
    _mm512_storeu_si512((void *)(out + j / 2), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
  if (j < k) {
    int r = k - j;
    __mmask16 mlo = (__mmask16)(r >= 16 ? 0xffff : (1u << r) - 1);
    __mmask16 mhi = (__mmask16)(r <= 16 ? 0 : (1u << (r - 16)) - 1);
    __m512 lo = _mm512_maskz_loadu_ps(mlo, a + j), hi = _mm512_maskz_loadu_ps(mhi, a + j + 16);
    __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    int pairs = (r + 1) / 2;
    _mm512_mask_storeu_epi32(out + j / 2, (__mmask16)((1u << pairs) - 1), v);
  }
}

static inline __attribute__((always_inline)) void tile(const int mr, int kc, const uint32_t *A, int lda,
                                                       const uint16_t *B, float *C, int ldc, __mmask16 m0,
                                                       __mmask16 m1, int load_c) {
  __m512 acc0[MR], acc1[MR];
  for (int r = 0; r < mr; r++) {
    if (load_c) {
      acc0[r] = _mm512_maskz_loadu_ps(m0, C + (size_t)r * ldc);
      acc1[r] = _mm512_maskz_loadu_ps(m1, C + (size_t)r * ldc + 16);
    } else {
      acc0[r] = _mm512_setzero_ps();
      acc1[r] = _mm512_setzero_ps();
    }
  }
  for (int p = 0; p < kc; p++) {
    __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(B + (size_t)p * 64));
    __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(B + (size_t)p * 64 + 32));
    for (int r = 0; r < mr; r++) {
      __m512bh a = (__m512bh)_mm512_set1_epi32((int)A[(size_t)r * lda + p]);
      acc0[r] = _mm512_dpbf16_ps(acc0[r], b0, a);
      acc1[r] = _mm512_dpbf16_ps(acc1[r], b1, a);
    }
  }
  for (int r = 0; r < mr; r++) {
    _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, acc1[r]);
  }
}

#define TILE_CASE(n) \
  case n: tile(n, kc, A, lda, B, C, ldc, m0, m1, load_c); break;

static void tile_any(int mr, int kc, const uint32_t *A, int lda, const uint16_t *B, float *C, int ldc, __mmask16 m0,
                     __mmask16 m1, int load_c) {
  switch (mr) {
    TILE_CASE(12) TILE_CASE(11) TILE_CASE(10) TILE_CASE(9) TILE_CASE(8) TILE_CASE(7)
    TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2) TILE_CASE(1)
    default: break;
  }
}

void esm2_gemm_bf16_avx512(int M, const float *A, int lda, const esm2_packed_t *W, float beta, float *C, int ldc,
                           void *scratch);

void esm2_gemm_bf16_avx512(int M, const float *A, int lda, const esm2_packed_t *W, float beta, float *C, int ldc,
                           void *scratch) {
  const int n = W->n, kp = W->kp, nb = (n + ESM2_GEMM_NR - 1) / ESM2_GEMM_NR;
  uint32_t *a16 = scratch;
  for (int i0 = 0; i0 < M; i0 += ESM2_GEMM_MC) {
    int mc = M - i0 < ESM2_GEMM_MC ? M - i0 : ESM2_GEMM_MC;
    for (int i = 0; i < mc; i++) to_bf16_row(A + (size_t)(i0 + i) * lda, W->k, a16 + (size_t)i * kp);
    for (int k0 = 0; k0 < kp; k0 += KC) {
      int kc = kp - k0 < KC ? kp - k0 : KC;
      int load_c = k0 > 0 || beta != 0.0f;
      for (int j = 0; j < nb; j++) {
        int cols = n - j * ESM2_GEMM_NR;
        cols = cols > ESM2_GEMM_NR ? ESM2_GEMM_NR : cols;
        __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1);
        __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : cols >= 32 ? 0xffff : (1u << (cols - 16)) - 1);
        const uint16_t *B = W->w + ((size_t)j * kp + k0) * 64;
        for (int r = 0; r < mc; r += MR) {
          int mr = mc - r < MR ? mc - r : MR;
          tile_any(mr, kc, a16 + (size_t)r * kp + k0, kp, B, C + (size_t)(i0 + r) * ldc + j * ESM2_GEMM_NR, ldc, m0,
                   m1, load_c);
        }
      }
    }
  }
}
