// esm2_attn.c — the run-time CPU check of the AVX-512F attention kernels (esm2_attn_avx512.c) and
// their plain C references (esm2_attn.h). Without the kernel in the build the check says 0.
#include <stddef.h>

#include "esm2_attn.h"

static int force_off;

void esm2_attn_force_off(int off) { force_off = off; }

int esm2_attn_avx512_cpu(void) {
#if defined(__x86_64__) && defined(PS_ESM2_HAVE_AVX512_KERNELS)
  if (force_off) return 0;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return 0;
#endif
}

void esm2_attn_scores_ref(int nq, int T, int hd, const float *Q, int ldq, const float *Kt, int ldkt, float *S,
                          int lds) {
  for (int i = 0; i < nq; i++)
    for (int j = 0; j < T; j++) {
      double s = 0;
      for (int d = 0; d < hd; d++) s += (double)Q[(size_t)i * ldq + d] * Kt[(size_t)d * ldkt + j];
      S[(size_t)i * lds + j] = (float)s;
    }
}

void esm2_attn_pv_ref(int nq, int T, int hd, const float *P, int lds, const float *V, int ldv, const float *inv,
                      float *O, int ldo) {
  for (int i = 0; i < nq; i++)
    for (int d = 0; d < hd; d++) {
      double s = 0;
      for (int j = 0; j < T; j++) s += (double)P[(size_t)i * lds + j] * V[(size_t)j * ldv + d];
      O[(size_t)i * ldo + d] = (float)(s * inv[i]);
    }
}
