// esm2_gemm.h — the bfloat16 projections of the ESM2 forward: weights packed once into bf16
// column panels, C = A W^T with the activations A rounded to bf16 and float32 accumulation.
// The AVX-512 BF16 kernel is in esm2_gemm_bf16.c (built with -mavx512bf16 and called only when
// the CPU has the feature, checked at run time); esm2_gemm.c holds the packing, the dispatch and
// a plain C reference with the same rounding of the inputs (tests).
#ifndef PS_ESM2_GEMM_H
#define PS_ESM2_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define ESM2_GEMM_NR 32   // output columns of a packed panel
#define ESM2_GEMM_MC 96   // rows of A converted to bf16 at a time (the scratch of one thread)

// W (n, k) float32 row-major (a torch Linear weight) as bf16 pairs: panel j (columns 32j ..
// 32j+31) holds for each pair p of k the 32 columns' (W[c][2p], W[c][2p+1]); columns beyond n
// and the odd k's partner are zero. kp = (k + 1) / 2.
typedef struct esm2_packed {
  int n, k, kp;
  uint16_t *w;   // ceil(n / 32) * kp * 64; owned (esm2_packed_free)
} esm2_packed_t;

// 1 when the CPU runs AVX512_BF16 (and AVX512F/BW/VL) and the tests have not turned it off.
int esm2_gemm_bf16_cpu(void);
// Tests: pretend the CPU lacks AVX512_BF16 (off = 1) or use what it has (off = 0).
void esm2_gemm_bf16_force_off(int off);

// Round float32 to bfloat16 (nearest even), as the kernel's vcvtne2ps2bf16 (finite inputs).
uint16_t esm2_bf16_round(float x);
static inline float esm2_bf16_to_f32(uint16_t h) {
  union {
    uint32_t u;
    float f;
  } v = {(uint32_t)h << 16};
  return v.f;
}

// Pack W (n, k). 0 or PS_ENOMEM.
int esm2_pack_bf16(esm2_packed_t *p, const float *W, int n, int k);
void esm2_packed_free(esm2_packed_t *p);   // accepts a zeroed struct

// Scratch floats one thread needs for esm2_gemm_bf16 with this k.
size_t esm2_gemm_bf16_scratch(int k);
// C (M, n) = bf16(A) (M, k) W^T + beta C, beta 0 or 1; lda, ldc in elements. Needs
// esm2_gemm_bf16_cpu(). scratch: esm2_gemm_bf16_scratch(k) floats, 64-byte aligned.
void esm2_gemm_bf16(int M, const float *A, int lda, const esm2_packed_t *W, float beta, float *C, int ldc, void *scratch);
// The same product in plain C (inputs rounded to bf16, products summed in double): the reference.
void esm2_gemm_bf16_ref(int M, const float *A, int lda, const esm2_packed_t *W, float beta, float *C, int ldc);

#endif
