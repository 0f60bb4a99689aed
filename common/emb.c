// emb.c — format-independent part of embedding sources: pooling, NaN checks, half floats.
#include "emb.h"

#include <math.h>
#include <string.h>

float emb_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) {
        man <<= 1;
        exp--;
      }
      man &= 0x3ff;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

float emb_bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t emb_float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
  if (exp >= 31) return (uint16_t)(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    man |= 0x800000;
    uint32_t shift = (uint32_t)(14 - exp);
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13);
  uint32_t rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
  return (uint16_t)half;
}

int emb_check_finite(const char *what, const emb_record_t *rec, ps_err_t *err) {
  size_t n = (size_t)rec->n_rows * rec->dim;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(rec->rows[i])) {
      return ps_err_set(err, PS_ENAN, "%s: record %llu (id %s): %s at row %zu, column %zu", what,
                        (unsigned long long)rec->index, rec->id ? rec->id : "?",
                        isnan(rec->rows[i]) ? "NaN" : "Inf", i / rec->dim, i % rec->dim);
    }
  }
  return 0;
}

int emb_source_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err) {
  memset(rec, 0, sizeof *rec);
  int rc = s->vt->next(s, rec, err);
  if (rc <= 0) return rc;
  rec->index = s->next_index++;
  if (!rec->reordered) rec->src_index = rec->index;
  if (rec->dim == 0) return ps_err_set(err, PS_EDIM, "%s: record %llu (id %s): dimension 0", s->opts.path,
                                       (unsigned long long)rec->index, rec->id ? rec->id : "?");
  if (rec->dim > EMB_MAX_DIM)
    return ps_err_set(err, PS_EDIM, "%s: record %llu (id %s): embedding dimension %u exceeds the limit %u", s->opts.path,
                      (unsigned long long)rec->index, rec->id ? rec->id : "?", rec->dim, EMB_MAX_DIM);
  if (!s->opts.allow_nonfinite && (rc = emb_check_finite(s->opts.path, rec, err)) < 0) return rc;
  if (s->opts.level == EMB_LEVEL_PROTEIN && rec->n_rows != 1) {
    if (rec->n_rows == 0)
      return ps_err_set(err, PS_EDIM, "%s: record %llu (id %s): no rows to pool", s->opts.path,
                        (unsigned long long)rec->index, rec->id ? rec->id : "?");
    if (s->pool_cap < rec->dim) {
      s->pool = ps_xrealloc(s->pool, rec->dim * sizeof(float));
      s->pool_cap = rec->dim;
    }
    // mean in double for stability, then round once
    for (uint32_t j = 0; j < rec->dim; j++) {
      double acc = 0;
      for (uint32_t r = 0; r < rec->n_rows; r++) acc += rec->rows[(size_t)r * rec->dim + j];
      s->pool[j] = (float)(acc / rec->n_rows);
    }
    rec->rows = s->pool;
    rec->n_rows = 1;
  }
  return 1;
}

int emb_source_skip(emb_source_t *s, uint64_t n, ps_err_t *err) {
  if (s->vt->skip) {
    int rc = s->vt->skip(s, n, err);
    if (rc < 0) return rc;
    s->next_index += n;
    return 0;
  }
  emb_record_t rec;
  for (uint64_t i = 0; i < n; i++) {
    int rc = s->vt->next(s, &rec, err);
    if (rc < 0) return rc;
    if (rc == 0) return ps_err_set(err, PS_ETRUNC, "%s: cannot skip to record %llu: only %llu records",
                                   s->opts.path, (unsigned long long)(s->next_index + n),
                                   (unsigned long long)s->next_index);
    s->next_index++;
  }
  return 0;
}

int64_t emb_source_count(emb_source_t *s) { return s->vt->count ? s->vt->count(s) : -1; }

void emb_source_destroy(emb_source_t **sp) {
  if (!sp || !*sp) return;
  emb_source_t *s = *sp;
  free(s->pool);
  s->vt->destroy(s);  // frees the struct
  *sp = NULL;
}
