// esm2_gemm.c — bf16 weight packing, the run-time CPU check and the plain C reference of the
// bf16 projections (esm2_gemm.h); the AVX-512 BF16 kernel itself is esm2_gemm_bf16.c.
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "esm2_gemm.h"

void esm2_gemm_bf16_avx512(int M, const float *A, int lda, const esm2_packed_t *W, float beta, float *C, int ldc,
                           void *scratch);

static int force_off;

void esm2_gemm_bf16_force_off(int off) { force_off = off; }

int esm2_gemm_bf16_cpu(void) {
#if defined(__x86_64__) && defined(PS_ESM2_HAVE_AVX512_KERNELS)
  if (force_off) return 0;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
  return 0;
#endif
}

uint16_t esm2_bf16_round(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

int esm2_pack_bf16(esm2_packed_t *p, const float *W, int n, int k) {
  int kp = (k + 1) / 2, nb = (n + ESM2_GEMM_NR - 1) / ESM2_GEMM_NR;
  size_t sz = (size_t)nb * kp * 2 * ESM2_GEMM_NR * sizeof(uint16_t);
  uint16_t *w = aligned_alloc(64, (sz + 63) / 64 * 64);
  if (!w) return PS_ENOMEM;
  memset(w, 0, sz);
  for (int j = 0; j < nb; j++)
    for (int q = 0; q < kp; q++) {
      uint16_t *dst = w + ((size_t)j * kp + q) * 2 * ESM2_GEMM_NR;
      for (int c = 0; c < ESM2_GEMM_NR; c++) {
        int col = j * ESM2_GEMM_NR + c;
        if (col >= n) break;
        const float *row = W + (size_t)col * k;
        dst[2 * c] = esm2_bf16_round(row[2 * q]);
        if (2 * q + 1 < k) dst[2 * c + 1] = esm2_bf16_round(row[2 * q + 1]);
      }
    }
  *p = (esm2_packed_t){n, k, kp, w};
  return 0;
}

void esm2_packed_free(esm2_packed_t *p) {
  free(p->w);
  memset(p, 0, sizeof *p);
}

size_t esm2_gemm_bf16_scratch(int k) { return (size_t)ESM2_GEMM_MC * (size_t)((k + 1) / 2) + 16; }

void esm2_gemm_bf16(int M, const float *A, int lda, const esm2_packed_t *W, float beta, float *C, int ldc,
                    void *scratch) {
#ifdef PS_ESM2_HAVE_AVX512_KERNELS
  esm2_gemm_bf16_avx512(M, A, lda, W, beta, C, ldc, scratch);
#else
  (void)scratch;
  esm2_gemm_bf16_ref(M, A, lda, W, beta, C, ldc);
#endif
}

// W[col][kk] as packed (bf16).
static float packed_at(const esm2_packed_t *W, int col, int kk) {
  int j = col / ESM2_GEMM_NR, c = col % ESM2_GEMM_NR, q = kk / 2;
  return esm2_bf16_to_f32(W->w[((size_t)j * W->kp + q) * 2 * ESM2_GEMM_NR + 2 * c + (kk & 1)]);
}

void esm2_gemm_bf16_ref(int M, const float *A, int lda, const esm2_packed_t *W, float beta, float *C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int col = 0; col < W->n; col++) {
      double s = beta != 0.0f ? (double)beta * C[(size_t)i * ldc + col] : 0.0;
      for (int kk = 0; kk < W->k; kk++)
        s += (double)esm2_bf16_to_f32(esm2_bf16_round(A[(size_t)i * lda + kk])) * packed_at(W, col, kk);
      C[(size_t)i * ldc + col] = (float)s;
    }
}
