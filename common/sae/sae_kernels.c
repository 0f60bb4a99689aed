// sae_kernels.c — see sae.h: the kernels the encoder and the trainer share: per-sample
// normalisation and the TopK selections (heap scan, sampled threshold, AVX where available).
#include "sae.h"

#ifdef __AVX__
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sae_normalize_row(float *row, int64_t d, float *mean, float *stdev) {
  double m = 0, v = 0;
  for (int64_t i = 0; i < d; i++) m += row[i];
  m /= (double)d;
  for (int64_t i = 0; i < d; i++) v += (row[i] - m) * (row[i] - m);
  double sd = sqrt(v / (double)d);
  if (sd < 1e-6) sd = 1e-6;
  float fm = (float)m, inv = (float)(1.0 / sd);
  for (int64_t i = 0; i < d; i++) row[i] = (row[i] - fm) * inv;
  if (mean) *mean = fm;
  if (stdev) *stdev = (float)sd;
}

// Min-heap on (value, -index): the root is the worst kept entry.
static inline int heap_less(float va, int32_t ia, float vb, int32_t ib) { return va < vb || (va == vb && ia > ib); }

static void heap_sift(float *hv, int32_t *hi, int m, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, s = i;
    if (l < m && heap_less(hv[l], hi[l], hv[s], hi[s])) s = l;
    if (r < m && heap_less(hv[r], hi[r], hv[s], hi[s])) s = r;
    if (s == i) return;
    float tv = hv[i]; hv[i] = hv[s]; hv[s] = tv;
    int32_t ti = hi[i]; hi[i] = hi[s]; hi[s] = ti;
    i = s;
  }
}

static inline void heap_push(float *hv, int32_t *hi, int *m, float v, int32_t ix) {
  int i = (*m)++;
  hv[i] = v;
  hi[i] = ix;
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!heap_less(hv[i], hi[i], hv[p], hi[p])) break;
    float tv = hv[i]; hv[i] = hv[p]; hv[p] = tv;
    int32_t ti = hi[i]; hi[i] = hi[p]; hi[p] = ti;
    i = p;
  }
}

static int cmp_i32_pair(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

// Sort (idx, val) pairs by index; k is small.
static void sort_by_index(int32_t *idx, float *val, int m) {
  if (m <= 32) {
    for (int i = 1; i < m; i++) {
      int32_t ki = idx[i];
      float kv = val[i];
      int j = i - 1;
      while (j >= 0 && idx[j] > ki) {
        idx[j + 1] = idx[j];
        val[j + 1] = val[j];
        j--;
      }
      idx[j + 1] = ki;
      val[j + 1] = kv;
    }
    return;
  }
  struct { int32_t i; float v; } *tmp = malloc((size_t)m * sizeof *tmp);
  PS_ASSERT(tmp);
  for (int i = 0; i < m; i++) { tmp[i].i = idx[i]; tmp[i].v = val[i]; }
  qsort(tmp, (size_t)m, sizeof *tmp, cmp_i32_pair);
  for (int i = 0; i < m; i++) { idx[i] = tmp[i].i; val[i] = tmp[i].v; }
  free(tmp);
}

// Bit j set when v[j] (+ b[j] when b is not NULL) > thr, j < 16: the filter that skips most of a
// row once a top-k threshold is known. AVX when the build targets it, else plain C.
static inline __attribute__((always_inline)) unsigned above_mask16(const float *v, const float *b, float thr) {
#ifdef __AVX__
  __m256 t = _mm256_set1_ps(thr);
  __m256 a = _mm256_loadu_ps(v), c = _mm256_loadu_ps(v + 8);
  if (b) {
    a = _mm256_add_ps(a, _mm256_loadu_ps(b));
    c = _mm256_add_ps(c, _mm256_loadu_ps(b + 8));
  }
  return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, t, _CMP_GT_OQ)) |
         (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(c, t, _CMP_GT_OQ)) << 8;
#else
  unsigned m = 0;
  for (int j = 0; j < 16; j++) m |= (unsigned)((b ? v[j] + b[j] : v[j]) > thr) << j;
  return m;
#endif
}

// max over j < 16 of v[j] (+ b[j]).
static inline __attribute__((always_inline)) float max16(const float *v, const float *b) {
#ifdef __AVX__
  __m256 a = _mm256_loadu_ps(v), c = _mm256_loadu_ps(v + 8);
  if (b) {
    a = _mm256_add_ps(a, _mm256_loadu_ps(b));
    c = _mm256_add_ps(c, _mm256_loadu_ps(b + 8));
  }
  __m256 m = _mm256_max_ps(a, c);
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
#else
  float m = b ? v[0] + b[0] : v[0];
  for (int j = 1; j < 16; j++) {
    float x = b ? v[j] + b[j] : v[j];
    m = x > m ? x : m;
  }
  return m;
#endif
}

// How many of key[0..n) are >= x; keys and x < 2^31 (the bits of non-negative floats).
static inline int count_ge(const uint32_t *key, int n, uint32_t x) {
  int c = 0, cnt = 0;
#ifdef __AVX2__
  __m256i t = _mm256_set1_epi32((int32_t)x - 1), acc = _mm256_setzero_si256();
  for (; c + 8 <= n; c += 8)  // key >= x <=> key > x - 1; a true lane is -1
    acc = _mm256_sub_epi32(acc, _mm256_cmpgt_epi32(_mm256_loadu_si256((const __m256i *)(key + c)), t));
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
  cnt = _mm_cvtsi128_si32(h);
#endif
  for (; c < n; c++) cnt += key[c] >= x;
  return cnt;
}

// The k-th largest of key[0..n) (1 <= k <= n): bisection on the value, counting with one
// (vectorisable) pass per step, <= 32 steps. Used on the bits of non-negative floats, which order as
// unsigned integers.
static uint32_t kth_largest_bits(const uint32_t *key, int n, int k) {
  uint32_t lo = UINT32_MAX, hi = 0;  // invariant: count(key >= lo) >= k, the answer is in [lo, hi]
  for (int c = 0; c < n; c++) {
    lo = key[c] < lo ? key[c] : lo;
    hi = key[c] > hi ? key[c] : hi;
  }
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    int cnt = count_ge(key, n, mid);
    if (cnt >= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The heap scan: the k largest of x[i] = v[i] (+ b[i]) with x > 0, as a min-heap in idx/val (root =
// the worst kept, ties broken towards the lower index); returns how many. b is a compile-time NULL
// or not at every call site, so each gets its own specialised loop.
static inline __attribute__((always_inline)) int topk_heap_scan(const float *v, const float *b, int64_t n, int k,
                                                                int32_t *idx, float *val) {
  int m = 0;
  float thr = 0.0f;  // a candidate must beat this: 0 (ReLU) until the heap is full, then its root
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    if (!above_mask16(v + i, b ? b + i : NULL, thr)) continue;
    for (int j = 0; j < 16; j++) {
      float x = b ? v[i + j] + b[i + j] : v[i + j];
      if (!(x > thr)) continue;
      if (m < k) {
        heap_push(val, idx, &m, x, (int32_t)(i + j));
        if (m == k) thr = val[0];
      } else {
        val[0] = x;
        idx[0] = (int32_t)(i + j);
        heap_sift(val, idx, m, 0);
        thr = val[0];
      }
    }
  }
  for (; i < n; i++) {
    float x = b ? v[i] + b[i] : v[i];
    if (!(x > thr)) continue;
    if (m < k) {
      heap_push(val, idx, &m, x, (int32_t)i);
      if (m == k) thr = val[0];
    } else {
      val[0] = x;
      idx[0] = (int32_t)i;
      heap_sift(val, idx, m, 0);
      thr = val[0];
    }
  }
  return m;
}

// Sampled-threshold top-k, the same result as the heap scan. Rows are long next to k (an SAE's
// pre-activations, d_sae >> k), and a heap scan spends most of its time on the ~k ln(n/k)
// replacements made while its threshold climbs. Here:
// (1) a threshold from a sample: the maxima of every s-th 16-entry line (<= TOPK_LINES lines); with
//     t = the j-th largest of them, at least j entries of the sample reach t, and about s j >= 3k
//     entries of the row exceed it;
// (2) one vectorised pass collects the entries > t (a bit mask per 16 entries), in index order;
// (3) if there are at least k, the row's top k are among them (each of those beats t): the k-th
//     largest value v_k comes from a bisection on the candidates' bits (all > t >= 0, so they order
//     as unsigned integers), and the kept entries are those > v_k, then the first ones equal to v_k
//     (ties go to the lower index, as in the heap scan). Emitted in index order, so no sort.
// If fewer than k and t = 0 (ReLU floor), the candidates are all the positive entries: the answer.
// Otherwise (an unlucky sample, or more than TOPK_CAND candidates) returns -1 and the caller runs the
// heap scan. Stack: ~17 KiB.
enum { TOPK_LINES = 256, TOPK_CAND = 2048 };
static inline __attribute__((always_inline)) int topk_sampled(const float *v, const float *b, int64_t n, int k,
                                                              int32_t *idx, float *val) {
  int64_t lines = n / 16;
  int64_t s = (lines + TOPK_LINES - 1) / TOPK_LINES;  // sample every s-th line
  if (s < 8) s = 8;
  int jth = (int)((3 * (int64_t)k + s - 1) / s);
  if (jth < 4) jth = 4;
  uint32_t lmax[TOPK_LINES];  // line maxima floored at 0: their bits order as unsigned integers
  int nl = 0;
  for (int64_t l = 0; l < lines && nl < TOPK_LINES; l += s) {
    if (l + 8 * s < lines) __builtin_prefetch(v + (l + 8 * s) * 16);  // strided: help the prefetcher
    float x = max16(v + l * 16, b ? b + l * 16 : NULL);
    x = x > 0.0f ? x : 0.0f;
    memcpy(&lmax[nl++], &x, sizeof x);
  }
  if (nl < jth) return -1;
  uint32_t tb = kth_largest_bits(lmax, nl, jth);
  float t;
  memcpy(&t, &tb, sizeof t);
  int32_t ci[TOPK_CAND];
  uint32_t key[TOPK_CAND];  // the candidates' values as bits (all > t >= 0: they order as unsigned)
  int nc = 0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    unsigned mask = above_mask16(v + i, b ? b + i : NULL, t);
    if (!mask) continue;
    if (nc + 16 > TOPK_CAND) return -1;
    while (mask) {
      int j = __builtin_ctz(mask);
      mask &= mask - 1;
      float x = b ? v[i + j] + b[i + j] : v[i + j];
      ci[nc] = (int32_t)(i + j);
      memcpy(&key[nc++], &x, sizeof x);
    }
  }
  for (; i < n; i++) {
    float x = b ? v[i] + b[i] : v[i];
    if (!(x > t)) continue;
    if (nc == TOPK_CAND) return -1;
    ci[nc] = (int32_t)i;
    memcpy(&key[nc++], &x, sizeof x);
  }
  if (nc < k) {
    if (t > 0.0f) return -1;
    memcpy(idx, ci, (size_t)nc * sizeof *ci);
    memcpy(val, key, (size_t)nc * sizeof *key);
    return nc;
  }
  uint32_t vk = kth_largest_bits(key, nc, k);  // the k-th largest value, as bits
  int above = 0;
  for (int c = 0; c < nc; c++) above += key[c] > vk;
  int ties = k - above;  // entries equal to v_k to keep: the lowest-indexed ones
  int m = 0;
  for (int c = 0; c < nc; c++)
    if (key[c] > vk || (key[c] == vk && ties-- > 0)) {
      idx[m] = ci[c];
      memcpy(&val[m++], &key[c], sizeof *key);
    }
  return m;
}

static inline __attribute__((always_inline)) int topk_relu_impl(const float *v, const float *b, int64_t n, int k,
                                                                int32_t *idx, float *val) {
  if (k <= 0) return 0;
  if (n >= 64 * (int64_t)k && n >= 2048 && k <= TOPK_CAND / 4) {
    int m = topk_sampled(v, b, n, k, idx, val);
    if (m >= 0) return m;
  }
  int m = topk_heap_scan(v, b, n, k, idx, val);
  sort_by_index(idx, val, m);
  return m;
}

int sae_topk_relu(const float *v, int64_t n, int k, int32_t *idx, float *val) {
  return topk_relu_impl(v, NULL, n, k, idx, val);
}

int sae_topk_relu_bias(const float *v, const float *b, int64_t n, int k, int32_t *idx, float *val) {
  return topk_relu_impl(v, b, n, k, idx, val);
}

int sae_topk_subset(const float *v, const int32_t *cand, int64_t mcand, int k, int32_t *idx, float *val) {
  int m = 0;
  float thr = 0.0f;
  for (int64_t c = 0; c < mcand; c++) {
    float x = v[cand[c]];
    if (!(x > thr)) continue;
    if (m < k) {
      heap_push(val, idx, &m, x, cand[c]);
      if (m == k) thr = val[0];
    } else {
      val[0] = x;
      idx[0] = cand[c];
      heap_sift(val, idx, m, 0);
      thr = val[0];
    }
  }
  return m;
}
