// TopK-then-ReLU selection (common/sae/sae_kernels.c: sae_topk_relu, sae_topk_relu_bias) against a plain sort,
// entry for entry and bit for bit: the k largest of v (+ b) that are > 0, ties to the lower index,
// indices ascending. Rows long next to k take the sampled-threshold path, short ones the heap scan;
// the data below drive both, and the sampled path's fallbacks (few positives, heavy ties, a dense
// prefix of latents, spikes, rows of one value).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sae.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double unif(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}
static float gauss(void) { return (float)(unif() + unif() + unif() + unif() - 2.0) * 1.7f; }

typedef struct {
  float v;
  int32_t i;
} ent_t;
static int by_value_desc(const void *a, const void *b) {
  const ent_t *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}
static int by_index(const void *a, const void *b) {
  const ent_t *x = a, *y = b;
  return (x->i > y->i) - (x->i < y->i);
}

// The reference: sort every positive entry by (value desc, index asc), keep k, order by index.
static int naive_topk(const float *v, const float *b, int64_t n, int k, int32_t *idx, float *val) {
  ent_t *e = malloc((size_t)n * sizeof *e);
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) {
    float x = b ? v[i] + b[i] : v[i];
    if (x > 0.0f) e[m++] = (ent_t){x, (int32_t)i};
  }
  qsort(e, (size_t)m, sizeof *e, by_value_desc);
  if (m > k) m = k;
  qsort(e, (size_t)m, sizeof *e, by_index);
  for (int64_t j = 0; j < m; j++) {
    idx[j] = e[j].i;
    val[j] = e[j].v;
  }
  free(e);
  return (int)m;
}

enum { D_GAUSS, D_TIES, D_FEW_POS, D_ALL_NEG, D_PREFIX, D_SPIKES, D_CONST, D_N };

static void fill(float *v, int64_t n, int dist, int k) {
  for (int64_t i = 0; i < n; i++) {
    float g = gauss();
    switch (dist) {
      case D_GAUSS: v[i] = g; break;
      case D_TIES: v[i] = (float)(int)(g * 2.0f) * 0.5f; break;          // a handful of distinct values
      case D_FEW_POS: v[i] = unif() < (double)k / (3.0 * (double)n) ? 1.0f + g * g : -1.0f - g * g; break;
      case D_ALL_NEG: v[i] = -0.01f - g * g; break;
      case D_PREFIX: v[i] = i < 4 * k ? 5.0f + g : g - 4.0f; break;        // dense prefix (Matryoshka-like)
      case D_SPIKES: v[i] = unif() < 0.002 ? 1e30f * (float)unif() : g; break;
      case D_CONST: v[i] = 0.75f; break;
    }
  }
}

static void check_case(int64_t n, int k, int dist, int with_bias) {
  float *v = malloc((size_t)n * sizeof *v), *b = NULL;
  fill(v, n, dist, k);
  if (with_bias) {
    b = malloc((size_t)n * sizeof *b);
    for (int64_t i = 0; i < n; i++) b[i] = dist == D_CONST ? 0.25f : (float)(unif() - 0.5) * 0.3f;
  }
  int32_t *ri = malloc((size_t)k * sizeof *ri), *gi = malloc((size_t)k * sizeof *gi);
  float *rv = malloc((size_t)k * sizeof *rv), *gv = malloc((size_t)k * sizeof *gv);
  int want = naive_topk(v, b, n, k, ri, rv);
  int got = b ? sae_topk_relu_bias(v, b, n, k, gi, gv) : sae_topk_relu(v, n, k, gi, gv);
  if (got != want) fail_msg("n %lld k %d dist %d bias %d: %d entries, want %d", (long long)n, k, dist, with_bias, got, want);
  for (int j = 0; j < want; j++)
    if (gi[j] != ri[j] || memcmp(&gv[j], &rv[j], sizeof(float)) != 0)
      fail_msg("n %lld k %d dist %d bias %d: entry %d is (%d, %g), want (%d, %g)", (long long)n, k, dist, with_bias, j,
               gi[j], (double)gv[j], ri[j], (double)rv[j]);
  free(v);
  free(b);
  free(ri);
  free(gi);
  free(rv);
  free(gv);
}

// Every distribution, with and without bias, over lengths that do and do not fill whole 16-entry
// lines, and k from 1 to long-row sizes.
static void test_topk_vs_sort(void **st) {
  (void)st;
  const int64_t ns[] = {1, 17, 2047, 2048, 4096 + 7, 10240, 20000, 20011, 65536, 200003};
  const int ks[] = {1, 2, 6, 32, 64, 100, 512, 1500};
  for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
    for (size_t c = 0; c < sizeof ks / sizeof *ks; c++)
      for (int dist = 0; dist < D_N; dist++)
        for (int wb = 0; wb < 2; wb++) {
          if (ns[a] > 65536 && (dist != D_GAUSS || ks[c] > 64)) continue;  // keep the long rows few
          check_case(ns[a], ks[c], dist, wb);
        }
}

// Many rows of the encoder's shape, as it sees them: fresh data per row.
static void test_topk_many_rows(void **st) {
  (void)st;
  for (int r = 0; r < 300; r++) check_case(20000, r % 3 ? 64 : 32, r % 5 == 0 ? D_TIES : D_GAUSS, r % 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topk_vs_sort),
      cmocka_unit_test(test_topk_many_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
