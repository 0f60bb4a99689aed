// featstore_rec.c — the feature store's records, without RocksDB: per-feature statistics
// (histogram, top activations) and their binary codec, the meta record, the enrichment records
// (binary and JSON) and the explanation records (JSON). featstore.c keeps them in the store.
// See featstore.h.
#include <jansson.h>
#include <math.h>

#include "featstore_priv.h"

#include "hash.h"

// ---- statistics ---------------------------------------------------------------------------------
void fs_feat_init(fs_feat_t *f, uint32_t top_n) {
  memset(f, 0, sizeof *f);
  f->top = ps_xcalloc(top_n ? top_n : 1, sizeof *f->top);
  f->top_floor = -1.0f;
}

void fs_feat_clear(fs_feat_t *f) {
  if (!f->top) return;
  for (uint32_t i = 0; i < f->n_top; i++) free(f->top[i].id);
  free(f->top);
  memset(f, 0, sizeof *f);
}

int fs_hist_bin(float v) {
  int e;
  float m = frexpf(v, &e);  // v = m 2^e, m in [0.5, 1): log2 v = e - 1 + log2(2m)
  int b = 2 * (e - 1) + (2.0f * m >= 1.41421356f ? 1 : 0) + 32;
  return b < 0 ? 0 : b >= FS_HIST_BINS ? FS_HIST_BINS - 1 : b;
}

double fs_hist_lower(int b) { return b <= 0 ? 0.0 : pow(2.0, (b - 32) / 2.0); }

void fs_feat_add(fs_feat_t *f, float v) {
  f->n_active++;
  double d = (double)v;
  f->sum_fx = fs_fx_add(f->sum_fx, fs_fx(d));
  f->sumsq_fx = fs_fx_add(f->sumsq_fx, fs_fx(d * d));  // exact: a float squared fits a double
  if (v > f->max) f->max = v;
  f->hist[fs_hist_bin(v)]++;
}

// a better than b?
static int top_better(float va, const char *ia, uint32_t pa, float vb, const char *ib, uint32_t pb) {
  if (va != vb) return va > vb;
  int c = strcmp(ia, ib);
  if (c) return c < 0;
  return pa < pb;
}

int fs_feat_offer_top(fs_feat_t *f, uint32_t top_n, float value, const char *id, uint32_t pos) {
  if (!top_n || value < f->top_floor) return 0;  // most offers end here, without touching the list
  if (f->n_top == top_n) {
    const fs_top_t *w = &f->top[top_n - 1];
    if (!top_better(value, id, pos, w->value, w->id, w->pos)) return 0;
  }
  // The same (id, pos) offered twice (a replayed protein) keeps one entry.
  uint64_t h = ps_fnv1a64(id);
  for (uint32_t i = 0; i < f->n_top; i++)
    if (f->top[i].pos == pos && f->top[i].hash == h && !strcmp(f->top[i].id, id)) {
      if (!top_better(value, id, pos, f->top[i].value, id, pos)) return 0;
      free(f->top[i].id);
      memmove(&f->top[i], &f->top[i + 1], (f->n_top - i - 1) * sizeof *f->top);
      f->n_top--;
      break;
    }
  uint32_t i = f->n_top < top_n ? f->n_top : top_n - 1;
  if (f->n_top == top_n) free(f->top[top_n - 1].id);
  else f->n_top++;
  while (i > 0 && top_better(value, id, pos, f->top[i - 1].value, f->top[i - 1].id, f->top[i - 1].pos)) {
    f->top[i] = f->top[i - 1];
    i--;
  }
  f->top[i].value = value;
  f->top[i].pos = pos;
  f->top[i].id = ps_xstrdup(id);
  f->top[i].hash = h;
  f->top_floor = f->n_top == top_n ? f->top[top_n - 1].value : -1.0f;
  return 1;
}

double fs_feat_mean(const fs_feat_t *f) { return f->n_active ? fs_fx_double(f->sum_fx) / (double)f->n_active : 0.0; }

double fs_feat_std(const fs_feat_t *f) {
  if (f->n_active < 2) return 0.0;
  double n = (double)f->n_active, m = fs_feat_mean(f);
  double var = fs_fx_double(f->sumsq_fx) / n - m * m;
  return var > 0 ? sqrt(var * n / (n - 1)) : 0.0;
}


// ---- encoding -----------------------------------------------------------------------------------
static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void put_u128(uint8_t *p, fs_u128 v) { put_u64(p, (uint64_t)v); put_u64(p + 8, (uint64_t)(v >> 64)); }
static fs_u128 get_u128(const uint8_t *p) { return (fs_u128)get_u64(p) | (fs_u128)get_u64(p + 8) << 64; }

#define FEAT_MAGIC 0x31465350u  // "PSF1"
#define FEAT_FIXED (4 + 8 + 16 + 16 + 4 + 8 + 4 + 8 * FS_HIST_BINS + 4)

size_t fs_feat_encode(const fs_feat_t *f, uint8_t **buf, size_t *cap) {
  size_t need = FEAT_FIXED;
  for (uint32_t i = 0; i < f->n_top; i++) need += 10 + strlen(f->top[i].id);
  fs_grow(buf, cap, need);
  uint8_t *p = *buf;
  put_u32(p, FEAT_MAGIC); p += 4;
  put_u64(p, f->n_active); p += 8;
  put_u128(p, f->sum_fx); p += 16;
  put_u128(p, f->sumsq_fx); p += 16;
  put_f32(p, f->max); p += 4;
  put_u64(p, f->res_active); p += 8;
  put_f32(p, f->res_max); p += 4;
  for (int b = 0; b < FS_HIST_BINS; b++, p += 8) put_u64(p, f->hist[b]);
  put_u32(p, f->n_top); p += 4;
  for (uint32_t i = 0; i < f->n_top; i++) {
    size_t l = strlen(f->top[i].id);
    put_f32(p, f->top[i].value);
    put_u32(p + 4, f->top[i].pos);
    put_u16(p + 8, (uint16_t)l);
    memcpy(p + 10, f->top[i].id, l);
    p += 10 + l;
  }
  return (size_t)(p - *buf);
}

int fs_feat_decode(fs_feat_t *f, uint32_t top_n, const uint8_t *buf, size_t len, const char *what, ps_err_t *err) {
  for (uint32_t i = 0; i < f->n_top; i++) free(f->top[i].id);
  f->n_top = 0;
  f->top_floor = -1.0f;
  if (len < FEAT_FIXED) return ps_err_set(err, PS_ETRUNC, "%s: feature record of %zu bytes (< %d)", what, len, FEAT_FIXED);
  const uint8_t *p = buf;
  if (get_u32(p) != FEAT_MAGIC) return ps_err_set(err, PS_EFORMAT, "%s: feature record: bad magic at offset 0", what);
  p += 4;
  f->n_active = get_u64(p); p += 8;
  f->sum_fx = get_u128(p); p += 16;
  f->sumsq_fx = get_u128(p); p += 16;
  f->max = get_f32(p); p += 4;
  f->res_active = get_u64(p); p += 8;
  f->res_max = get_f32(p); p += 4;
  for (int b = 0; b < FS_HIST_BINS; b++, p += 8) f->hist[b] = get_u64(p);
  uint32_t n = get_u32(p); p += 4;
  if (n > top_n)
    return ps_err_set(err, PS_EFORMAT, "%s: %u top entries but the store keeps %u (offset %zu)", what, n, top_n,
                      (size_t)(p - buf - 4));
  const uint8_t *end = buf + len;
  for (uint32_t i = 0; i < n; i++) {
    if (end - p < 10) return ps_err_set(err, PS_ETRUNC, "%s: top entry %u truncated at offset %zu", what, i, (size_t)(p - buf));
    uint16_t l = get_u16(p + 8);
    if (end - p - 10 < l) return ps_err_set(err, PS_ETRUNC, "%s: top entry %u id truncated at offset %zu", what, i, (size_t)(p - buf));
    if (memchr(p + 10, 0, l)) return ps_err_set(err, PS_EFORMAT, "%s: top entry %u: id with a NUL byte at offset %zu", what, i, (size_t)(p - buf));
    fs_top_t *t = &f->top[i];
    t->value = get_f32(p);
    t->pos = get_u32(p + 4);
    t->id = ps_xmalloc((size_t)l + 1);
    memcpy(t->id, p + 10, l);
    t->id[l] = 0;
    t->hash = ps_fnv1a64(t->id);
    f->n_top = i + 1;
    p += 10 + l;
  }
  if (p != end) return ps_err_set(err, PS_EFORMAT, "%s: %zu trailing bytes at offset %zu", what, (size_t)(end - p), (size_t)(p - buf));
  f->top_floor = top_n && f->n_top == top_n ? f->top[top_n - 1].value : -1.0f;
  return 0;
}

#define META_MAGIC_V1 0x314d5350u  // "PSM1"
#define META_MAGIC 0x324d5350u     // "PSM2"
void fs_meta_encode(const fs_meta_t *m, uint8_t *p) {
  put_u32(p, META_MAGIC);
  put_u32(p + 4, m->format);
  put_u32(p + 8, m->n_features);
  put_u32(p + 12, m->top_n);
  put_u32(p + 16, m->level);
  put_u32(p + 20, m->neurons);
  put_u32(p + 24, m->pooling);
  put_u64(p + 28, m->proteins);
  put_u64(p + 36, m->residues);
  put_u64(p + 44, m->batches);
  put_u64(p + 52, m->nnz);
  put_u32(p + 60, m->residue_top);
}
int fs_meta_decode(fs_meta_t *m, const uint8_t *p, size_t n) {
  int v1 = n == FS_META_LEN_V1 && get_u32(p) == META_MAGIC_V1;
  if (!v1 && (n != FS_META_LEN || get_u32(p) != META_MAGIC)) return -1;
  m->format = get_u32(p + 4);
  m->n_features = get_u32(p + 8);
  m->top_n = get_u32(p + 12);
  m->level = get_u32(p + 16);
  m->neurons = get_u32(p + 20);
  m->pooling = get_u32(p + 24);
  m->proteins = get_u64(p + 28);
  m->residues = get_u64(p + 36);
  m->batches = get_u64(p + 44);
  m->nnz = get_u64(p + 52);
  m->residue_top = v1 ? 0 : get_u32(p + 60);
  return 0;
}

// ---- enrichment records ----------------------------------------------------------------------------
// JSON with fixed key order and %.17g numbers: equal records give equal bytes.
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static double num_get(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}
static int64_t int_get(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : -1;
}

void fs_enrich_feat_free(fs_enrich_feat_t *e) {
  for (uint32_t i = 0; i < e->n_hits; i++) free(e->hits[i].name);
  free(e->hits);
  memset(e, 0, sizeof *e);
}

char *fs_enrich_feat_to_json(const fs_enrich_feat_t *e) {
  json_t *o = json_object(), *hits = json_array();
  json_object_set_new(o, "n_active", json_integer((json_int_t)e->n_active));
  json_object_set_new(o, "n_study", json_integer((json_int_t)e->n_study));
  json_object_set_new(o, "max_act", num(e->max_act));
  json_object_set_new(o, "n_touched", json_integer(e->n_touched));
  json_object_set_new(o, "best_f1_go", json_string(e->best_f1_go));
  json_object_set_new(o, "best_f1", num(e->best_f1));
  json_object_set_new(o, "best_f1_threshold", num(e->best_f1_threshold));
  for (uint32_t i = 0; i < e->n_hits; i++) {
    const fs_term_hit_t *h = &e->hits[i];
    json_t *a = json_array();
    json_array_append_new(a, json_string(h->go_id));
    json_array_append_new(a, json_integer(h->ns));
    json_array_append_new(a, json_integer(h->depth));
    json_array_append_new(a, json_string(h->name ? h->name : ""));
    json_array_append_new(a, json_integer(h->k));
    json_array_append_new(a, json_integer(h->n));
    json_array_append_new(a, json_integer(h->K));
    json_array_append_new(a, json_integer(h->N));
    json_array_append_new(a, num(h->fold));
    json_array_append_new(a, num(h->p));
    json_array_append_new(a, num(h->ln_p));
    json_array_append_new(a, num(h->p_bonf));
    json_array_append_new(a, num(h->q_bh));
    json_array_append_new(a, num(h->f1));
    json_array_append_new(a, num(h->f1_threshold));
    json_array_append_new(hits, a);
  }
  json_object_set_new(o, "hits", hits);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  json_decref(o);
  return s;
}

int fs_enrich_feat_from_json(fs_enrich_feat_t *e, const char *txt, size_t len, const char *what, ps_err_t *err) {
  memset(e, 0, sizeof *e);
  json_error_t je;
  json_t *o = json_loadb(txt, len, 0, &je);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: %s at offset %d", what, o ? "not an object" : je.text,
                      o ? 0 : je.position);
  }
  e->n_active = int_get(o, "n_active");
  e->n_study = int_get(o, "n_study");
  e->max_act = (float)num_get(o, "max_act");
  e->n_touched = (uint32_t)int_get(o, "n_touched");
  const char *b = json_string_value(json_object_get(o, "best_f1_go"));
  snprintf(e->best_f1_go, sizeof e->best_f1_go, "%s", b ? b : "");
  e->best_f1 = (float)num_get(o, "best_f1");
  e->best_f1_threshold = (float)num_get(o, "best_f1_threshold");
  json_t *hits = json_object_get(o, "hits");
  int rc = 0;
  if (!json_is_array(hits)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: enrichment record without a hits array", what);
    goto out;
  }
  size_t n = json_array_size(hits);
  e->hits = ps_xcalloc(n ? n : 1, sizeof *e->hits);
  for (size_t i = 0; i < n; i++) {
    json_t *a = json_array_get(hits, i);
    if (!json_is_array(a) || json_array_size(a) != 15 || !json_is_string(json_array_get(a, 0)) ||
        !json_is_string(json_array_get(a, 3))) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: enrichment hit %zu malformed", what, i);
      goto out;
    }
    fs_term_hit_t *h = &e->hits[i];
    snprintf(h->go_id, sizeof h->go_id, "%s", json_string_value(json_array_get(a, 0)));
    h->ns = (int)json_integer_value(json_array_get(a, 1));
    h->depth = (int)json_integer_value(json_array_get(a, 2));
    h->name = ps_xstrdup(json_string_value(json_array_get(a, 3)));
    h->k = (uint32_t)json_integer_value(json_array_get(a, 4));
    h->n = (uint32_t)json_integer_value(json_array_get(a, 5));
    h->K = (uint32_t)json_integer_value(json_array_get(a, 6));
    h->N = (uint32_t)json_integer_value(json_array_get(a, 7));
    double *d[] = {&h->fold, &h->p, &h->ln_p, &h->p_bonf, &h->q_bh};
    for (int j = 0; j < 5; j++) {
      json_t *v = json_array_get(a, (size_t)(8 + j));
      *d[j] = json_is_number(v) ? json_number_value(v) : (j == 2 ? -INFINITY : NAN);
    }
    json_t *f1 = json_array_get(a, 13), *ft = json_array_get(a, 14);
    h->f1 = json_is_number(f1) ? (float)json_number_value(f1) : NAN;
    h->f1_threshold = json_is_number(ft) ? (float)json_number_value(ft) : NAN;
    e->n_hits = (uint32_t)(i + 1);
  }
out:
  json_decref(o);
  if (rc < 0) fs_enrich_feat_free(e);
  return rc;
}

#define ENRICH_MAGIC 0x31455350u  // "PSE1"
#define ENRICH_FIXED (4 + 8 + 8 + 4 + 4 + 1 + 4 + 4 + 4)
#define HIT_FIXED (1 + 1 + 2 + 2 + 16 + 40 + 8)
static void put_f64(uint8_t *p, double v) { uint64_t u; memcpy(&u, &v, 8); put_u64(p, u); }
static double get_f64(const uint8_t *p) { uint64_t u = get_u64(p); double v; memcpy(&v, &u, 8); return v; }

size_t fs_enrich_feat_encode(const fs_enrich_feat_t *e, uint8_t **buf, size_t *cap) {
  size_t bl = strnlen(e->best_f1_go, sizeof e->best_f1_go - 1), need = ENRICH_FIXED + bl;
  for (uint32_t i = 0; i < e->n_hits; i++)
    need += HIT_FIXED + strnlen(e->hits[i].go_id, sizeof e->hits[i].go_id - 1) +
            (e->hits[i].name ? strnlen(e->hits[i].name, 65535) : 0);
  fs_grow(buf, cap, need);
  uint8_t *p = *buf;
  put_u32(p, ENRICH_MAGIC); p += 4;
  put_u64(p, (uint64_t)e->n_active); p += 8;
  put_u64(p, (uint64_t)e->n_study); p += 8;
  put_f32(p, e->max_act); p += 4;
  put_u32(p, e->n_touched); p += 4;
  *p++ = (uint8_t)bl;
  memcpy(p, e->best_f1_go, bl); p += bl;
  put_f32(p, e->best_f1); p += 4;
  put_f32(p, e->best_f1_threshold); p += 4;
  put_u32(p, e->n_hits); p += 4;
  for (uint32_t i = 0; i < e->n_hits; i++) {
    const fs_term_hit_t *h = &e->hits[i];
    size_t gl = strnlen(h->go_id, sizeof h->go_id - 1), nl = h->name ? strnlen(h->name, 65535) : 0;
    *p++ = (uint8_t)gl;
    memcpy(p, h->go_id, gl); p += gl;
    *p++ = (uint8_t)h->ns;
    put_u16(p, (uint16_t)(int16_t)h->depth); p += 2;
    put_u16(p, (uint16_t)nl); p += 2;
    memcpy(p, h->name, nl); p += nl;
    put_u32(p, h->k); put_u32(p + 4, h->n); put_u32(p + 8, h->K); put_u32(p + 12, h->N); p += 16;
    put_f64(p, h->fold); put_f64(p + 8, h->p); put_f64(p + 16, h->ln_p); put_f64(p + 24, h->p_bonf);
    put_f64(p + 32, h->q_bh); p += 40;
    put_f32(p, h->f1); put_f32(p + 4, h->f1_threshold); p += 8;
  }
  return (size_t)(p - *buf);
}

int fs_enrich_feat_decode(fs_enrich_feat_t *e, const uint8_t *buf, size_t len, const char *what, ps_err_t *err) {
  memset(e, 0, sizeof *e);
  const uint8_t *p = buf, *end = buf + len;
#define NEED(n, part)                                                                                         \
  do {                                                                                                        \
    if ((size_t)(end - p) < (size_t)(n)) {                                                                    \
      fs_enrich_feat_free(e);                                                                                 \
      return ps_err_set(err, PS_ETRUNC, "%s: enrichment record truncated in %s at offset %zu", what, part,     \
                        (size_t)(p - buf));                                                                   \
    }                                                                                                         \
  } while (0)
  NEED(4, "the header");
  if (get_u32(p) != ENRICH_MAGIC)
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: bad magic at offset 0 (not a protsae record)", what);
  p += 4;
  NEED(8 + 8 + 4 + 4 + 1, "the header");
  e->n_active = (int64_t)get_u64(p); p += 8;
  e->n_study = (int64_t)get_u64(p); p += 8;
  e->max_act = get_f32(p); p += 4;
  e->n_touched = get_u32(p); p += 4;
  size_t bl = *p++;
  NEED(bl + 12, "the header");
  if (bl >= sizeof e->best_f1_go) return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: GO id of %zu bytes", what, bl);
  memcpy(e->best_f1_go, p, bl);
  e->best_f1_go[bl] = 0;
  p += bl;
  e->best_f1 = get_f32(p); p += 4;
  e->best_f1_threshold = get_f32(p); p += 4;
  uint32_t n = get_u32(p); p += 4;
  if (n > (size_t)(end - p) / HIT_FIXED)
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: %u terms cannot fit in %zu bytes", what, n, (size_t)(end - p));
  e->hits = ps_xcalloc(n ? n : 1, sizeof *e->hits);
  for (uint32_t i = 0; i < n; i++) {
    fs_term_hit_t *h = &e->hits[i];
    NEED(1, "a term");
    size_t gl = *p++;
    if (gl >= sizeof h->go_id) {
      fs_enrich_feat_free(e);
      return ps_err_set(err, PS_EFORMAT, "%s: enrichment term %u: GO id of %zu bytes at offset %zu", what, i, gl,
                        (size_t)(p - buf));
    }
    NEED(gl + 5, "a term");
    memcpy(h->go_id, p, gl);
    h->go_id[gl] = 0;
    p += gl;
    h->ns = *p++;
    h->depth = (int16_t)get_u16(p); p += 2;
    size_t nl = get_u16(p); p += 2;
    NEED(nl + 64, "a term");
    h->name = ps_xmalloc(nl + 1);
    memcpy(h->name, p, nl);
    h->name[nl] = 0;
    p += nl;
    e->n_hits = i + 1;
    h->k = get_u32(p); h->n = get_u32(p + 4); h->K = get_u32(p + 8); h->N = get_u32(p + 12); p += 16;
    h->fold = get_f64(p); h->p = get_f64(p + 8); h->ln_p = get_f64(p + 16); h->p_bonf = get_f64(p + 24);
    h->q_bh = get_f64(p + 32); p += 40;
    h->f1 = get_f32(p); h->f1_threshold = get_f32(p + 4); p += 8;
  }
#undef NEED
  if (p != end) {
    fs_enrich_feat_free(e);
    return ps_err_set(err, PS_EFORMAT, "%s: enrichment record: %zu trailing bytes at offset %zu", what,
                      (size_t)(end - p), (size_t)(p - buf));
  }
  return 0;
}


// ---- explanations ------------------------------------------------------------------------------------
void fs_interp_free(fs_interp_t *x) {
  free(x->explanation);
  free(x->failure);
  free(x->mode);
  memset(x, 0, sizeof *x);
}

int fs_interp_decode(fs_interp_t *x, uint32_t unit, const char *v, size_t vl, const char *path, ps_err_t *err) {
  memset(x, 0, sizeof *x);
  json_error_t je;
  json_t *o = json_loadb(v, vl, 0, &je);
  if (!json_is_object(o)) {
    int rc = ps_err_set(err, PS_EFORMAT, "%s: explanation of unit %u: %s", path, unit, o ? "not a JSON object" : je.text);
    json_decref(o);
    return rc;
  }
  x->unit = unit;
  const char *s = json_string_value(json_object_get(o, "explanation"));
  x->explanation = s ? ps_xstrdup(s) : NULL;
  x->r = num_get(o, "r");
  x->p = num_get(o, "p");
  // older interpreter lines: no "scored" (scored when r is a number), "constant_predictions", "offline"
  json_t *sc = json_object_get(o, "scored");
  x->scored = sc ? json_is_true(sc) : json_is_number(json_object_get(o, "r"));
  x->constant_pred = json_is_true(json_object_get(o, "constant_prediction")) ||
                     json_is_true(json_object_get(o, "constant_predictions"));
  s = json_string_value(json_object_get(o, "failure"));
  x->failure = ps_xstrdup(s ? s : "");
  s = json_string_value(json_object_get(o, "mode"));
  x->mode = ps_xstrdup(s ? s : json_is_true(json_object_get(o, "offline")) ? "offline" : "");
  int64_t a = int_get(o, "attempts");
  x->attempts = a > 0 ? (uint32_t)a : 0;
  json_decref(o);
  return 0;
}

