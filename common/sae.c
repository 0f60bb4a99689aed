// sae.c — see sae.h.
#include "sae.h"

#include <cblas.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

static const char *arch_names[] = {"relu", "topk", "batchtopk", "jumprelu"};

const char *sae_arch_name(sae_arch_t a) { return (unsigned)a < 4 ? arch_names[a] : "?"; }

int sae_arch_parse(const char *s, sae_arch_t *out) {
  if (!s) return PS_ECONFIG;
  if (!strcmp(s, "standard") || !strcmp(s, "relu")) {
    *out = SAE_RELU;
    return 0;
  }
  for (int i = 1; i < 4; i++)
    if (!strcmp(s, arch_names[i])) {
      *out = (sae_arch_t)i;
      return 0;
    }
  return PS_ECONFIG;
}

void sae_cfg_default(sae_cfg_t *c) {
  memset(c, 0, sizeof *c);
  c->arch = SAE_TOPK;
  c->k = 32;
  c->apply_b_dec_to_input = 1;
  c->layer = -1;
  c->target_layer = -1;
  snprintf(c->level, sizeof c->level, "protein");
}

static int cfg_check(const sae_cfg_t *c, ps_err_t *err) {
  if (c->d_in <= 0 || c->d_sae <= 0 || c->d_out <= 0 || c->d_in > (1 << 20) || c->d_out > (1 << 20) ||
      c->d_sae > (1 << 28))
    return ps_err_set(err, PS_EDIM, "sae: bad dimensions d_in=%lld d_sae=%lld d_out=%lld", (long long)c->d_in,
                      (long long)c->d_sae, (long long)c->d_out);
  if ((unsigned)c->arch > SAE_JUMPRELU) return ps_err_set(err, PS_ECONFIG, "sae: unknown architecture %d", c->arch);
  if ((c->arch == SAE_TOPK || c->arch == SAE_BATCHTOPK) && (c->k < 1 || c->k > c->d_sae))
    return ps_err_set(err, PS_ECONFIG, "sae: k=%d must be in [1, d_sae=%lld]", c->k, (long long)c->d_sae);
  if (c->apply_b_dec_to_input && c->d_in != c->d_out)
    return ps_err_set(err, PS_EDIM, "sae: apply_b_dec_to_input needs d_in == d_out (%lld != %lld)",
                      (long long)c->d_in, (long long)c->d_out);
  return 0;
}

static void sae_views(sae_t *s) {
  int64_t d = s->cfg.d_in, n = s->cfg.d_sae, o = s->cfg.d_out;
  s->W_encT = s->params;
  s->b_enc = s->W_encT + n * d;
  s->W_dec = s->b_enc + n;
  s->b_dec = s->W_dec + n * o;
}

int sae_new(sae_t **out, const sae_cfg_t *cfg, ps_err_t *err) {
  *out = NULL;
  int rc = cfg_check(cfg, err);
  if (rc) return rc;
  sae_t *s = ps_xcalloc(1, sizeof *s);
  s->cfg = *cfg;
  int64_t d = cfg->d_in, n = cfg->d_sae, o = cfg->d_out;
  s->n_params = (size_t)(n * d + n + n * o + o);
  size_t bytes = (s->n_params * sizeof(float) + 63) & ~(size_t)63;
  s->params = aligned_alloc(64, bytes);
  if (!s->params) {
    free(s);
    return ps_err_set(err, PS_ENOMEM, "sae: cannot allocate %zu bytes of parameters", bytes);
  }
  memset(s->params, 0, bytes);
  sae_views(s);
  if (cfg->arch == SAE_JUMPRELU || cfg->arch == SAE_BATCHTOPK) s->threshold = ps_xcalloc((size_t)n, sizeof(float));
  *out = s;
  return 0;
}

void sae_free(sae_t **sp) {
  if (!sp || !*sp) return;
  free((*sp)->params);
  free((*sp)->threshold);
  free(*sp);
  *sp = NULL;
}

int sae_copy(sae_t **out, const sae_t *src, ps_err_t *err) {
  int rc = sae_new(out, &src->cfg, err);
  if (rc) return rc;
  memcpy((*out)->params, src->params, src->n_params * sizeof(float));
  if (src->threshold) memcpy((*out)->threshold, src->threshold, (size_t)src->cfg.d_sae * sizeof(float));
  return 0;
}

// ---- files -----------------------------------------------------------------------------------

static int write_file_atomic(const char *path, const char *data, size_t len, ps_err_t *err) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return ps_err_set(err, PS_ECONFIG, "path too long: %s", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ps_err_set(err, -errno, "%s: %s", tmp, strerror(errno));
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      return ps_err_set(err, -e, "%s: write: %s", tmp, strerror(e));
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return ps_err_set(err, -e, "%s: fsync/close: %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return ps_err_set(err, -e, "rename %s -> %s: %s", tmp, path, strerror(e));
  }
  return 0;
}

int sae_save(const sae_t *s, const char *dir, float in_scale, float out_scale, ps_err_t *err) {
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, n = c->d_sae, o = c->d_out;
  char path[4096];
  // cfg.json: SAELens field names, plus protsae's own.
  json_t *j = json_object();
  const char *arch = c->arch == SAE_RELU ? "standard" : c->arch == SAE_BATCHTOPK ? "jumprelu" : sae_arch_name(c->arch);
  json_object_set_new(j, "architecture", json_string(arch));
  json_object_set_new(j, "d_in", json_integer(d));
  json_object_set_new(j, "d_sae", json_integer(n));
  json_object_set_new(j, "d_out", json_integer(o));
  json_object_set_new(j, "dtype", json_string("float32"));
  json_object_set_new(j, "device", json_string("cpu"));
  json_object_set_new(j, "apply_b_dec_to_input", json_boolean(c->apply_b_dec_to_input));
  json_object_set_new(j, "normalize_activations", json_string(c->normalize_per_sample ? "layer_norm" : "none"));
  json_object_set_new(j, "activation_fn", json_string(c->arch == SAE_TOPK ? "topk" : "relu"));
  json_t *kw = json_object();
  if (c->arch == SAE_TOPK || c->arch == SAE_BATCHTOPK) {
    json_object_set_new(kw, "k", json_integer(c->k));
    json_object_set_new(j, "k", json_integer(c->k));
  }
  json_object_set_new(j, "activation_fn_kwargs", kw);
  json_object_set_new(j, "model_name", json_string(c->model_name[0] ? c->model_name : "esm2"));
  char hook[64];
  snprintf(hook, sizeof hook, "layers.%d", c->layer);
  json_object_set_new(j, "hook_name", json_string(hook));
  json_object_set_new(j, "hook_layer", json_integer(c->layer));
  json_object_set_new(j, "is_transcoder", json_boolean(c->transcoder));
  json_object_set_new(j, "protsae_arch", json_string(sae_arch_name(c->arch)));
  json_object_set_new(j, "protsae_level", json_string(c->level));
  json_object_set_new(j, "protsae_target_layer", json_integer(c->target_layer));
  json_object_set_new(j, "protsae_in_scale_folded", json_real(in_scale));
  json_object_set_new(j, "protsae_out_scale_folded", json_real(out_scale));
  char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  snprintf(path, sizeof path, "%s/cfg.json", dir);
  int rc = write_file_atomic(path, txt, strlen(txt), err);
  free(txt);
  if (rc) return rc;

  st_writer_t *w = NULL;
  snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
  if ((rc = st_writer_open(&w, path, err))) return rc;
  st_writer_set_metadata(w, "format", "pt", err);
  st_writer_set_metadata(w, "producer", "protsae", err);
  uint64_t sh[2];
  float *buf = ps_xmalloc((size_t)(d > o ? d : o) * sizeof(float));
  // W_enc [d_in, d_sae]: row i = column i of W_encT.
  float *row = ps_xmalloc((size_t)n * sizeof(float));
  sh[0] = (uint64_t)d;
  sh[1] = (uint64_t)n;
  rc = st_writer_begin(w, "W_enc", ST_F32, sh, 2, err);
  for (int64_t i = 0; !rc && i < d; i++) {
    for (int64_t jj = 0; jj < n; jj++) row[jj] = s->W_encT[jj * d + i] * in_scale;
    rc = st_writer_append_f32(w, row, (uint64_t)n, err);
  }
  if (!rc) rc = st_writer_end(w, err);
  sh[0] = (uint64_t)n;
  if (!rc) rc = st_writer_add_f32(w, "b_enc", ST_F32, sh, 1, s->b_enc, err);
  sh[0] = (uint64_t)n;
  sh[1] = (uint64_t)o;
  if (!rc) rc = st_writer_begin(w, "W_dec", ST_F32, sh, 2, err);
  for (int64_t jj = 0; !rc && jj < n; jj++) {
    for (int64_t i = 0; i < o; i++) buf[i] = s->W_dec[jj * o + i] / out_scale;
    rc = st_writer_append_f32(w, buf, (uint64_t)o, err);
  }
  if (!rc) rc = st_writer_end(w, err);
  sh[0] = (uint64_t)o;
  for (int64_t i = 0; i < o; i++) buf[i] = s->b_dec[i] / out_scale;
  if (!rc) rc = st_writer_add_f32(w, "b_dec", ST_F32, sh, 1, buf, err);
  if (!rc && s->threshold) {
    sh[0] = (uint64_t)n;
    rc = st_writer_add_f32(w, "threshold", ST_F32, sh, 1, s->threshold, err);
  }
  free(buf);
  free(row);
  if (rc) {
    st_writer_abort(&w);
    return rc;
  }
  return st_writer_close(&w, err);
}

static int64_t jint(json_t *j, const char *key, int64_t def) {
  json_t *v = json_object_get(j, key);
  return json_is_integer(v) ? json_integer_value(v) : def;
}

int sae_load(sae_t **out, const char *dir, ps_err_t *err) {
  *out = NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s/cfg.json", dir);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) return ps_err_set(err, PS_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
  if (!json_is_object(j)) {
    json_decref(j);
    return ps_err_set(err, PS_EFORMAT, "%s: not a JSON object", path);
  }
  sae_cfg_t c;
  sae_cfg_default(&c);
  const char *arch = json_string_value(json_object_get(j, "protsae_arch"));
  if (!arch) arch = json_string_value(json_object_get(j, "architecture"));
  const char *act = json_string_value(json_object_get(j, "activation_fn"));
  if (!act) act = json_string_value(json_object_get(j, "activation_fn_str"));
  if (!arch) arch = (act && !strcmp(act, "topk")) ? "topk" : "standard";
  int rc = 0;
  if (sae_arch_parse(arch, &c.arch)) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: architecture \"%s\" is not supported (standard, relu, topk, batchtopk, "
                                     "jumprelu)", path, arch);
    goto out;
  }
  if (c.arch == SAE_RELU && act && !strcmp(act, "topk")) c.arch = SAE_TOPK;
  c.d_in = jint(j, "d_in", -1);
  c.d_sae = jint(j, "d_sae", -1);
  c.d_out = jint(j, "d_out", c.d_in);
  json_t *kw = json_object_get(j, "activation_fn_kwargs");
  c.k = (int32_t)jint(j, "k", json_is_object(kw) ? jint(kw, "k", 0) : 0);
  json_t *ab = json_object_get(j, "apply_b_dec_to_input");
  c.apply_b_dec_to_input = ab ? json_is_true(ab) : (c.d_in == c.d_out);
  const char *na = json_string_value(json_object_get(j, "normalize_activations"));
  if (na && strcmp(na, "none") && strcmp(na, "layer_norm")) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: normalize_activations \"%s\" is not supported (none, layer_norm)", path, na);
    goto out;
  }
  c.normalize_per_sample = na && !strcmp(na, "layer_norm");
  c.transcoder = json_is_true(json_object_get(j, "is_transcoder")) || c.d_out != c.d_in;
  c.layer = (int32_t)jint(j, "hook_layer", -1);
  c.target_layer = (int32_t)jint(j, "protsae_target_layer", -1);
  const char *lv = json_string_value(json_object_get(j, "protsae_level"));
  if (lv) snprintf(c.level, sizeof c.level, "%s", lv);
  const char *mn = json_string_value(json_object_get(j, "model_name"));
  if (mn) snprintf(c.model_name, sizeof c.model_name, "%s", mn);
  if ((rc = sae_new(out, &c, err))) {
    ps_err_prefix(err, "%s: ", path);
    goto out;
  }
  sae_t *s = *out;
  int64_t d = c.d_in, n = c.d_sae, o = c.d_out;
  snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
  st_file_t *f = NULL;
  if ((rc = st_open(&f, path, err))) goto fail;
  struct { const char *name; int64_t r, c; float *dst; } t[] = {
      {"W_enc", d, n, NULL}, {"b_enc", n, 0, s->b_enc}, {"W_dec", n, o, s->W_dec}, {"b_dec", o, 0, s->b_dec},
      {"threshold", n, 0, s->threshold}};
  float *tmp = ps_xmalloc((size_t)(d * n) * sizeof(float));
  t[0].dst = tmp;
  for (int i = 0; i < 5 && !rc; i++) {
    if (i == 4 && !s->threshold) break;
    const st_tensor_info_t *ti = st_tensor_find(f, t[i].name);
    if (!ti) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: tensor %s missing", path, t[i].name);
      break;
    }
    int want_nd = t[i].c ? 2 : 1;
    if (ti->ndim != want_nd || ti->shape[0] != (uint64_t)t[i].r || (want_nd == 2 && ti->shape[1] != (uint64_t)t[i].c)) {
      rc = ps_err_set(err, PS_EDIM, "%s: tensor %s has shape [%llu%s%llu], cfg.json says [%lld%s%lld]", path,
                      t[i].name, (unsigned long long)ti->shape[0], ti->ndim > 1 ? ", " : "",
                      ti->ndim > 1 ? (unsigned long long)ti->shape[1] : 0ULL, (long long)t[i].r, want_nd > 1 ? ", " : "",
                      (long long)(want_nd > 1 ? t[i].c : 0));
      break;
    }
    rc = st_read_f32(f, t[i].name, t[i].dst, ti->n_elems, err);
  }
  if (!rc)
    for (int64_t i = 0; i < d; i++)
      for (int64_t jj = 0; jj < n; jj++) s->W_encT[jj * d + i] = tmp[i * n + jj];
  free(tmp);
  st_close(&f);
  if (!rc)
    for (size_t i = 0; i < s->n_params; i++)
      if (!isfinite(s->params[i])) {
        rc = ps_err_set(err, PS_ENAN, "%s: non-finite parameter at flat index %zu", path, i);
        break;
      }
fail:
  if (rc) sae_free(out);
out:
  json_decref(j);
  return rc;
}

// ---- kernels ---------------------------------------------------------------------------------

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

// ---- encoder ---------------------------------------------------------------------------------

typedef struct {
  int64_t n_rows;
  int64_t *counts;     // per row
  int32_t *idx;
  float *val;
  int64_t nnz, cap;
} enc_part_t;

struct sae_enc {
  const sae_t *s;
  ps_pool_t *pool;
  int64_t chunk;
  float *xin, *pre;
  enc_part_t *parts;   // one per thread
  // per-run job
  int64_t rows;
  const float *x;
  int bad_row;         // first non-finite row in the chunk (-1)
};

int sae_enc_new(sae_enc_t **out, const sae_t *s, ps_pool_t *pool, int64_t chunk_rows, ps_err_t *err) {
  if (chunk_rows <= 0) chunk_rows = 1024;
  sae_enc_t *e = ps_xcalloc(1, sizeof *e);
  e->s = s;
  e->pool = pool;
  e->chunk = chunk_rows;
  e->xin = malloc((size_t)(chunk_rows * s->cfg.d_in) * sizeof(float));
  e->pre = malloc((size_t)(chunk_rows * s->cfg.d_sae) * sizeof(float));
  if (!e->xin || !e->pre) {
    sae_enc_free(&e);
    return ps_err_set(err, PS_ENOMEM, "sae: cannot allocate an encoding workspace of %lld rows",
                      (long long)chunk_rows);
  }
  int nt = ps_pool_size(pool);
  e->parts = ps_xcalloc((size_t)nt, sizeof *e->parts);
  for (int t = 0; t < nt; t++) e->parts[t].counts = ps_xmalloc((size_t)chunk_rows * sizeof(int64_t));
  *out = e;
  return 0;
}

void sae_enc_free(sae_enc_t **ep) {
  if (!ep || !*ep) return;
  sae_enc_t *e = *ep;
  free(e->xin);
  free(e->pre);
  if (e->parts)
    for (int t = 0; t < ps_pool_size(e->pool); t++) {
      free(e->parts[t].counts);
      free(e->parts[t].idx);
      free(e->parts[t].val);
    }
  free(e->parts);
  free(e);
  *ep = NULL;
}

void sae_codes_free(sae_codes_t *c) {
  free(c->indptr);
  free(c->indices);
  free(c->values);
  memset(c, 0, sizeof *c);
}

static void part_reserve(enc_part_t *p, int64_t extra) {
  if (p->nnz + extra <= p->cap) return;
  int64_t cap = p->cap ? p->cap : 4096;
  while (cap < p->nnz + extra) cap *= 2;
  p->idx = ps_xrealloc(p->idx, (size_t)cap * sizeof(int32_t));
  p->val = ps_xrealloc(p->val, (size_t)cap * sizeof(float));
  p->cap = cap;
}

static void enc_prepare(void *ctx, int tid, int nt) {
  sae_enc_t *e = ctx;
  const sae_cfg_t *c = &e->s->cfg;
  int64_t b, en, d = c->d_in;
  ps_pool_range(e->rows, tid, nt, &b, &en);
  for (int64_t r = b; r < en; r++) {
    float *row = e->xin + r * d;
    memcpy(row, e->x + r * d, (size_t)d * sizeof(float));
    for (int64_t i = 0; i < d; i++)
      if (!isfinite(row[i])) {
        __atomic_store_n(&e->bad_row, (int)r, __ATOMIC_RELAXED);  // any bad row; reported by row index
        break;
      }
    if (c->normalize_per_sample) sae_normalize_row(row, d, NULL, NULL);
    if (c->apply_b_dec_to_input)
      for (int64_t i = 0; i < d; i++) row[i] -= e->s->b_dec[i];
  }
}

static void enc_select(void *ctx, int tid, int nt) {
  sae_enc_t *e = ctx;
  const sae_t *s = e->s;
  int64_t b, en, m = s->cfg.d_sae;
  ps_pool_range(e->rows, tid, nt, &b, &en);
  enc_part_t *p = &e->parts[tid];
  p->n_rows = en - b;
  p->nnz = 0;
  for (int64_t r = b; r < en; r++) {
    const float *pre = e->pre + r * m;
    int64_t cnt = 0;
    if (s->cfg.arch == SAE_TOPK) {
      part_reserve(p, s->cfg.k);
      cnt = sae_topk_relu_bias(pre, s->b_enc, m, s->cfg.k, p->idx + p->nnz, p->val + p->nnz);
    } else {
      const float *th = s->threshold, *be = s->b_enc;
      for (int64_t j = 0; j < m; j++) {
        float v = pre[j] + be[j];
        if (v > 0.0f && (!th || v > th[j])) {
          part_reserve(p, cnt + 1);  // room past the entries of this row already written
          p->idx[p->nnz + cnt] = (int32_t)j;
          p->val[p->nnz + cnt] = v;
          cnt++;
        }
      }
    }
    p->counts[r - b] = cnt;
    p->nnz += cnt;
  }
}

int sae_enc_run(sae_enc_t *e, const float *x, int64_t n, sae_codes_t *codes, ps_err_t *err) {
  const sae_t *s = e->s;
  int nt = ps_pool_size(e->pool);
  if (codes->cap_rows < n + 1) {
    codes->indptr = ps_xrealloc(codes->indptr, (size_t)(n + 1) * sizeof(int64_t));
    codes->cap_rows = n + 1;
  }
  codes->n_rows = 0;
  codes->indptr[0] = 0;
  int64_t nnz = 0;
  for (int64_t r0 = 0; r0 < n; r0 += e->chunk) {
    e->rows = n - r0 < e->chunk ? n - r0 : e->chunk;
    e->x = x + r0 * s->cfg.d_in;
    e->bad_row = -1;
    ps_pool_run(e->pool, enc_prepare, e);
    if (e->bad_row >= 0) {
      int64_t row = r0 + e->bad_row;
      for (int64_t i = 0; i < s->cfg.d_in; i++)
        if (!isfinite(x[row * s->cfg.d_in + i]))
          return ps_err_set(err, PS_ENAN, "sae encode: non-finite input at row %lld, column %lld", (long long)row,
                            (long long)i);
    }
    // pre = xin W_enc only (beta 0: OpenBLAS clears C inside its own threads); b_enc is added
    // during the selection, which reads every pre-activation once anyway.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)e->rows, (blasint)s->cfg.d_sae,
                (blasint)s->cfg.d_in, 1.0f, e->xin, (blasint)s->cfg.d_in, s->W_encT, (blasint)s->cfg.d_in, 0.0f, e->pre,
                (blasint)s->cfg.d_sae);
    ps_pool_run(e->pool, enc_select, e);
    int64_t add = 0;
    for (int t = 0; t < nt; t++) add += e->parts[t].nnz;
    if (codes->cap_nnz < nnz + add) {
      int64_t cap = codes->cap_nnz ? codes->cap_nnz : 4096;
      while (cap < nnz + add) cap *= 2;
      codes->indices = ps_xrealloc(codes->indices, (size_t)cap * sizeof(int32_t));
      codes->values = ps_xrealloc(codes->values, (size_t)cap * sizeof(float));
      codes->cap_nnz = cap;
    }
    for (int t = 0; t < nt; t++) {
      enc_part_t *p = &e->parts[t];
      if (p->nnz) {  // a thread with no rows in this chunk has no buffers yet
        memcpy(codes->indices + nnz, p->idx, (size_t)p->nnz * sizeof(int32_t));
        memcpy(codes->values + nnz, p->val, (size_t)p->nnz * sizeof(float));
      }
      for (int64_t r = 0; r < p->n_rows; r++) {
        codes->indptr[codes->n_rows + 1] = codes->indptr[codes->n_rows] + p->counts[r];
        codes->n_rows++;
      }
      nnz += p->nnz;
    }
  }
  return 0;
}

void sae_decode(const sae_t *s, const sae_codes_t *codes, float *y) {
  int64_t o = s->cfg.d_out;
  for (int64_t r = 0; r < codes->n_rows; r++) {
    float *yr = y + r * o;
    memcpy(yr, s->b_dec, (size_t)o * sizeof(float));
    for (int64_t p = codes->indptr[r]; p < codes->indptr[r + 1]; p++) {
      const float *w = s->W_dec + (int64_t)codes->indices[p] * o;
      float a = codes->values[p];
      for (int64_t i = 0; i < o; i++) yr[i] += a * w[i];
    }
  }
}
