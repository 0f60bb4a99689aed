// esm2_attn.h — the products of one attention task of the ESM2 forward (a block of nq queries of
// one head against the T keys of its sequence): the AVX-512F kernels (esm2_attn_avx512.c, used
// when the CPU has AVX-512F, checked at run time), their plain C references (tests) and the
// dispatch (esm2_attn.c). Without AVX-512F esm2_forward.c runs the task as two cblas_sgemms.
#ifndef PS_ESM2_ATTN_H
#define PS_ESM2_ATTN_H

// 1 when the CPU runs AVX-512F and the tests have not turned it off.
int esm2_attn_avx512_cpu(void);
// Tests: pretend the CPU lacks AVX-512F (off = 1) or use what it has (off = 0).
void esm2_attn_force_off(int off);

// S (nq, T; stride lds) = Q (nq, hd; stride ldq) K^T, with the keys given transposed:
// Kt (hd, T; stride ldkt).
void esm2_attn_scores_avx512(int nq, int T, int hd, const float *Q, int ldq, const float *Kt, int ldkt, float *S,
                             int lds);
void esm2_attn_scores_ref(int nq, int T, int hd, const float *Q, int ldq, const float *Kt, int ldkt, float *S, int lds);
// O (nq, hd; stride ldo) = inv[i] * (P (nq, T; stride lds) V (T, hd; stride ldv)).
void esm2_attn_pv_avx512(int nq, int T, int hd, const float *P, int lds, const float *V, int ldv, const float *inv,
                         float *O, int ldo);
void esm2_attn_pv_ref(int nq, int T, int hd, const float *P, int lds, const float *V, int ldv, const float *inv,
                      float *O, int ldo);

#endif
