// scorer.c — see scorer.h.
#include "scorer.h"

#include <math.h>
#include <string.h>

#include "strmap.h"
#include "wire.h"

typedef struct span {
  uint64_t lo, hi;      // applied seqs [lo, hi)
} span_t;

typedef struct stream {
  char *producer;
  span_t *spans;        // applied seqs: sorted, disjoint, not adjacent
  size_t n_spans, cap_spans;
  uint64_t announced;   // the stream's batch count from its batches (0 = not announced)
  int eos_known, eos_dirty;
  uint64_t next_seq, rows, proteins;
} stream_t;

struct scorer {
  scorer_opts_t o;
  fs_t *fs;
  fs_wb_t *wb;
  fs_meta_t meta;
  int have_meta;
  fs_feat_t *feats;
  uint8_t *dirty;
  stream_t *streams;
  size_t n_streams, cap_streams;
  strmap_t *by_name;
  scorer_counts_t c;
  // residue-level scratch
  float *pmax;
  uint32_t *ppos, *touched;
  uint8_t *seen;
  // residue codes: per feature active in the protein a slot (rslot[f] = slot + 1) holding its best
  // entries so far; scratch bounded by the protein's residue entries (grown to the largest seen)
  uint32_t *rslot, *rtouched;
  struct rslot { uint32_t cnt, off, fill, last; } *rs;
  struct rkeep { float v; uint32_t pos; } *rk;
  size_t rcap;
  uint32_t *rfeat, *rpos;
  float *rval;
};

static const char *const reject_names[SCORER_REJ_N] = {
    "malformed", "seq_out_of_range", "stream_batches_mismatch", "n_features", "bad_values", "eos_inconsistent",
};
const char *scorer_reject_name(scorer_reject_t r) { return (unsigned)r < SCORER_REJ_N ? reject_names[r] : "unknown"; }

static stream_t *stream_get(scorer_t *s, const char *producer) {
  uint64_t i;
  if (strmap_get(s->by_name, producer, &i)) return &s->streams[i];
  if (s->n_streams == s->cap_streams) {
    s->cap_streams = s->cap_streams ? 2 * s->cap_streams : 4;
    s->streams = ps_xrealloc(s->streams, s->cap_streams * sizeof *s->streams);
  }
  stream_t *st = &s->streams[s->n_streams];
  memset(st, 0, sizeof *st);
  st->producer = ps_xstrdup(producer);
  strmap_put(s->by_name, producer, s->n_streams++);
  return st;
}

// Index of the first span with hi > seq (n_spans when none).
static size_t span_find(const stream_t *st, uint64_t seq) {
  size_t lo = 0, hi = st->n_spans;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (st->spans[mid].hi <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
static int seq_applied(const stream_t *st, uint64_t seq) {
  size_t i = span_find(st, seq);
  return i < st->n_spans && st->spans[i].lo <= seq;
}
// Add seq (not present, < SCORER_MAX_SEQ): extends or merges neighbours, else inserts a span.
static void seq_add(stream_t *st, uint64_t seq) {
  size_t i = span_find(st, seq);  // spans[i-1].hi <= seq < spans[i].hi
  int join_left = i > 0 && st->spans[i - 1].hi == seq;
  int join_right = i < st->n_spans && st->spans[i].lo == seq + 1;
  if (join_left && join_right) {
    st->spans[i - 1].hi = st->spans[i].hi;
    memmove(st->spans + i, st->spans + i + 1, (st->n_spans - i - 1) * sizeof *st->spans);
    st->n_spans--;
  } else if (join_left) {
    st->spans[i - 1].hi = seq + 1;
  } else if (join_right) {
    st->spans[i].lo = seq;
  } else {
    if (st->n_spans == st->cap_spans) {
      st->cap_spans = st->cap_spans ? 2 * st->cap_spans : 4;
      st->spans = ps_xrealloc(st->spans, st->cap_spans * sizeof *st->spans);
    }
    memmove(st->spans + i + 1, st->spans + i, (st->n_spans - i) * sizeof *st->spans);
    st->spans[i] = (span_t){seq, seq + 1};
    st->n_spans++;
  }
}
// Highest applied seq + 1 (0 when none).
static uint64_t seq_end(const stream_t *st) { return st->n_spans ? st->spans[st->n_spans - 1].hi : 0; }

static void alloc_features(scorer_t *s) {
  uint32_t n = s->meta.n_features;
  s->feats = ps_xcalloc(n ? n : 1, sizeof *s->feats);
  for (uint32_t f = 0; f < n; f++) fs_feat_init(&s->feats[f], s->meta.top_n);
  s->dirty = ps_xcalloc(n ? n : 1, 1);
}

static int load_feat(uint32_t id, const fs_feat_t *f, void *ctx) {
  scorer_t *s = ctx;
  if (id >= s->meta.n_features) return ps_err_set(NULL, PS_EFORMAT, "feature %u", id);
  fs_feat_t *d = &s->feats[id];
  fs_top_t *top = d->top;
  *d = *f;
  d->top = top;
  for (uint32_t i = 0; i < f->n_top; i++) {
    top[i] = f->top[i];
    top[i].id = ps_xstrdup(f->top[i].id);
  }
  return 0;
}
static int load_applied(const char *producer, uint64_t seq, void *ctx) {
  scorer_t *s = ctx;
  stream_t *st = stream_get(s, producer);
  if (seq >= SCORER_MAX_SEQ || seq_applied(st, seq)) {
    s->c.ignored_at_open++;
    return 0;
  }
  seq_add(st, seq);
  return 0;
}
static int load_eos(const char *producer, const fs_eos_t *e, void *ctx) {
  scorer_t *s = ctx;
  stream_t *st = stream_get(s, producer);
  if (e->batches > SCORER_MAX_SEQ || e->batches < seq_end(st)) {  // an older version trusted a forged one
    s->c.ignored_at_open++;
    return 0;
  }
  st->eos_known = 1;
  st->next_seq = e->batches;
  st->rows = e->rows;
  st->proteins = e->proteins;
  return 0;
}

int scorer_open(scorer_t **out, const scorer_opts_t *o, ps_err_t *err) {
  *out = NULL;
  scorer_t *s = ps_xcalloc(1, sizeof *s);
  s->o = *o;
  if (!s->o.top_n) s->o.top_n = 20;
  s->by_name = strmap_new(8);
  s->wb = fs_wb_new();
  int rc;
  if ((rc = fs_open(&s->fs, o->db_path, FS_OPEN_CREATE, err)) < 0) goto fail;
  if (!s->o.max_features) s->o.max_features = SCORER_MAX_FEATURES_DEFAULT;
  if ((rc = fs_meta_get(s->fs, &s->meta, err)) < 0) goto fail;
  s->have_meta = rc;
  if (s->have_meta) {
    if (!s->meta.n_features || s->meta.n_features > s->o.max_features) {
      rc = ps_err_set(err, PS_ESTATE, "%s holds %u features, over the bound of %u (--max-features; a store "
                      "written by a version that took n_features from the wire unchecked?)", o->db_path,
                      s->meta.n_features, s->o.max_features);
      goto fail;
    }
    alloc_features(s);
    if ((rc = fs_feat_each(s->fs, s->meta.top_n, load_feat, s, err)) < 0) goto fail;
    if ((rc = fs_applied_each(s->fs, load_applied, s, err)) < 0) goto fail;
  }
  if ((rc = fs_eos_each(s->fs, load_eos, s, err)) < 0) goto fail;
  *out = s;
  return 0;
fail:
  ps_err_prefix(err, "scorer: ");
  scorer_close(&s);
  return rc;
}

void scorer_close(scorer_t **sp) {
  scorer_t *s = *sp;
  if (!s) return;
  if (s->feats)
    for (uint32_t f = 0; f < s->meta.n_features; f++) fs_feat_clear(&s->feats[f]);
  free(s->feats);
  free(s->dirty);
  for (size_t i = 0; i < s->n_streams; i++) {
    free(s->streams[i].producer);
    free(s->streams[i].spans);
  }
  free(s->streams);
  strmap_destroy(&s->by_name);
  fs_wb_free(&s->wb);
  fs_close(&s->fs);
  free(s->pmax);
  free(s->ppos);
  free(s->touched);
  free(s->seen);
  free(s->rslot);
  free(s->rtouched);
  free(s->rs);
  free(s->rk);
  free(s->rfeat);
  free(s->rpos);
  free(s->rval);
  free(s);
  *sp = NULL;
}

fs_t *scorer_store(scorer_t *s) { return s->fs; }
const scorer_counts_t *scorer_counts(const scorer_t *s) { return &s->c; }
const fs_meta_t *scorer_meta(const scorer_t *s) { return &s->meta; }

static int check_values(const float *v, size_t n, const char *what, const char *prod, uint64_t seq, ps_err_t *err) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]) || v[i] < 0)
      return ps_err_set(err, PS_ENAN, "%s batch seq=%llu: %s value %g at entry %zu (codes must be finite and >= 0)",
                        prod, (unsigned long long)seq, what, (double)v[i], i);
  return 0;
}

static int rkeep_pos_cmp(const void *a, const void *b) {
  uint32_t x = ((const struct rkeep *)a)->pos, y = ((const struct rkeep *)b)->pos;
  return x < y ? -1 : x > y;
}
static int u32_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

// Offer (v, pos) to a slot's list l (value descending, then position; capacity cap, n used):
// positions arrive ascending, so an equal value never displaces an earlier position.
static void rkeep_offer(struct rkeep *l, uint32_t *n, uint32_t cap, float v, uint32_t pos) {
  if (*n == cap && !(v > l[cap - 1].v)) return;
  uint32_t at = *n < cap ? (*n)++ : cap - 1;
  while (at > 0 && l[at - 1].v < v) {
    l[at] = l[at - 1];
    at--;
  }
  l[at] = (struct rkeep){v, pos};
}

// The residue code of the protein on rows [r0, r1) of fb into the write batch: per feature active
// at one of its residues, its meta.residue_top largest values (ties to the lower position), as
// entries sorted by (feature, pos). Two passes over the protein's e entries: count per feature,
// then keep each feature's best in a list of min(R, its count) (scratch <= e entries); O(e R) at
// worst, ~O(e) as most offers fall below the list's last.
static void put_rcode(scorer_t *s, const Protsae__FeatureBatch *fb, const char *id, uint32_t r0, uint32_t r1) {
  uint32_t R = s->meta.residue_top, nt = 0;
  size_t total = 0;
  if (R && !s->rslot) {
    s->rslot = ps_xcalloc(s->meta.n_features, sizeof *s->rslot);
    s->rtouched = ps_xmalloc(s->meta.n_features * sizeof *s->rtouched);
    s->rs = ps_xmalloc(s->meta.n_features * sizeof *s->rs);
  }
  for (uint32_t j = R ? fb->indptr[r0] : 0; R && j < fb->indptr[r1]; j++) {  // 1: slots and counts
    if (!(fb->values[j] > 0)) continue;
    uint32_t f = fb->indices[j];
    if (!s->rslot[f]) {
      s->rtouched[nt] = f;
      s->rs[nt] = (struct rslot){0, 0, 0, UINT32_MAX};
      s->rslot[f] = ++nt;
    }
    s->rs[s->rslot[f] - 1].cnt++;
  }
  if (nt) qsort(s->rtouched, nt, sizeof *s->rtouched, u32_cmp);  // slots in feature order
  for (uint32_t i = 0; i < nt; i++) {
    struct rslot *sl = &s->rs[s->rslot[s->rtouched[i]] - 1];
    sl->off = (uint32_t)total;
    total += sl->cnt < R ? sl->cnt : R;
  }
  if (total > s->rcap) {
    s->rcap = total + total / 2;
    s->rk = ps_xrealloc(s->rk, s->rcap * sizeof *s->rk);
    s->rfeat = ps_xrealloc(s->rfeat, s->rcap * sizeof *s->rfeat);
    s->rpos = ps_xrealloc(s->rpos, s->rcap * sizeof *s->rpos);
    s->rval = ps_xrealloc(s->rval, s->rcap * sizeof *s->rval);
  }
  for (uint32_t r = r0; nt && r < r1; r++)  // 2: each feature's best
    for (uint32_t j = fb->indptr[r]; j < fb->indptr[r + 1]; j++) {
      float v = fb->values[j];
      if (!(v > 0)) continue;
      struct rslot *sl = &s->rs[s->rslot[fb->indices[j]] - 1];
      struct rkeep *l = s->rk + sl->off;
      uint32_t cap = sl->cnt < R ? sl->cnt : R, pos = r - r0;
      if (sl->last == pos) {  // a row naming the feature twice (not refused on the wire): the larger value
        uint32_t q = 0;
        while (q < sl->fill && l[q].pos != pos) q++;
        if (q < sl->fill) {
          if (!(v > l[q].v)) continue;
          memmove(l + q, l + q + 1, (sl->fill - q - 1) * sizeof *l);
          sl->fill--;
        }
      }
      sl->last = pos;
      rkeep_offer(l, &sl->fill, cap, v, pos);
    }
  uint32_t n = 0;
  for (uint32_t i = 0; i < nt; i++) {
    uint32_t f = s->rtouched[i];
    struct rslot *sl = &s->rs[s->rslot[f] - 1];
    struct rkeep *l = s->rk + sl->off;
    qsort(l, sl->fill, sizeof *l, rkeep_pos_cmp);
    for (uint32_t q = 0; q < sl->fill; q++, n++) s->rfeat[n] = f, s->rpos[n] = l[q].pos, s->rval[n] = l[q].v;
    s->rslot[f] = 0;
  }
  fs_rcode_t rc = {r1 - r0, n, s->rfeat, s->rpos, s->rval};
  fs_wb_put_rcode(s->fs, s->wb, id, &rc);
}

#define REJECT(why_, ...)                  \
  do {                                      \
    s->c.rejected++;                        \
    s->c.rejected_by[why_]++;               \
    if (why) *why = (why_);                 \
    return __VA_ARGS__;                     \
  } while (0)

int scorer_apply(scorer_t *s, const Protsae__FeatureBatch *fb, ps_err_t *err) {
  return scorer_apply_why(s, fb, NULL, err);
}

int scorer_apply_why(scorer_t *s, const Protsae__FeatureBatch *fb, scorer_reject_t *why, ps_err_t *err) {
  const char *prod = fb->source_producer && fb->source_producer[0] ? fb->source_producer : NULL;
  uint64_t seq = fb->source_seq;
  unsigned long long useq = (unsigned long long)seq;
  int rc;
  if (!prod)
    REJECT(SCORER_REJ_MALFORMED, ps_err_set(err, PS_EPROTO, "FeatureBatch without source_producer (seq %llu)", useq));
  // bounds first: nothing below allocates or looks up anything sized by an unchecked value
  if (seq >= SCORER_MAX_SEQ || fb->stream_batches > SCORER_MAX_SEQ)
    REJECT(SCORER_REJ_SEQ_RANGE, ps_err_set(err, PS_EPROTO, "%s batch seq=%llu (stream of %llu): over the bound of "
                                            "2^32 batches", prod, useq, (unsigned long long)fb->stream_batches));
  if (fb->stream_batches && seq >= fb->stream_batches)
    REJECT(SCORER_REJ_SEQ_RANGE, ps_err_set(err, PS_EPROTO, "%s batch seq=%llu: the stream announces %llu batches",
                                            prod, useq, (unsigned long long)fb->stream_batches));
  if (!fb->n_features || fb->n_features > s->o.max_features)
    REJECT(SCORER_REJ_N_FEATURES, ps_err_set(err, PS_EPROTO, "%s batch seq=%llu: n_features %u outside 1..%u "
                                             "(--max-features)", prod, useq, fb->n_features, s->o.max_features));
  if ((rc = wire_check_feature_batch(fb, err)) < 0)
    REJECT(SCORER_REJ_MALFORMED, (ps_err_prefix(err, "%s batch seq=%llu: ", prod, useq), rc));
  uint64_t i_st;
  stream_t *st = strmap_get(s->by_name, prod, &i_st) ? &s->streams[i_st] : NULL;
  if (st && st->announced && fb->stream_batches && fb->stream_batches != st->announced)
    REJECT(SCORER_REJ_STREAM_BATCHES, ps_err_set(err, PS_EPROTO, "%s batch seq=%llu: announces %llu batches, the "
                                                 "stream's earlier batches %llu", prod, useq,
                                                 (unsigned long long)fb->stream_batches,
                                                 (unsigned long long)st->announced));
  if (st && seq_applied(st, seq)) {
    s->c.duplicates++;
    return 0;
  }
  int residue = fb->level == PROTSAE__LEVEL__LEVEL_RESIDUE;
  if (residue && fb->n_pooled_indptr != fb->n_protein_ids + 1)
    REJECT(SCORER_REJ_MALFORMED, ps_err_set(err, PS_EPROTO, "%s batch seq=%llu: residue-level batch without pooled "
                                            "codes", prod, useq));
  if (s->have_meta) {
    if (fb->n_features != s->meta.n_features || (uint32_t)residue != s->meta.level ||
        (uint32_t)(fb->neurons != 0) != s->meta.neurons)
      REJECT(SCORER_REJ_N_FEATURES,
             ps_err_set(err, PS_EMISMATCH, "%s batch seq=%llu: %u %s at %s level, but the store %s holds %u %s at %s level",
                        prod, useq, fb->n_features, fb->neurons ? "neurons" : "features",
                        residue ? "residue" : "protein", fs_path(s->fs), s->meta.n_features,
                        s->meta.neurons ? "neurons" : "features", s->meta.level ? "residue" : "protein"));
  }
  if (s->o.shards > 1) {
    uint32_t lo, hi;
    fs_shard_range(s->o.shard, s->o.shards, fb->n_features, &lo, &hi);
    const uint32_t *ix[2] = {fb->indices, fb->pooled_indices};
    size_t nx[2] = {fb->n_indices, fb->n_pooled_indices};
    for (int w = 0; w < 2; w++)
      for (size_t j = 0; j < nx[w]; j++)
        if (ix[w][j] < lo || ix[w][j] >= hi)
          REJECT(SCORER_REJ_MALFORMED, ps_err_set(err, PS_EPROTO, "%s batch seq=%llu: %sfeature %u at entry %zu is not "
                                                  "in shard %u's range [%u, %u) of %u shards", prod, useq,
                                                  w ? "pooled " : "", ix[w][j], j, s->o.shard, lo, hi, s->o.shards));
  }
  if ((rc = check_values(fb->values, fb->n_values, "code", prod, seq, err)) < 0 ||
      (rc = check_values(fb->pooled_values, fb->n_pooled_values, "pooled code", prod, seq, err)) < 0)
    REJECT(SCORER_REJ_VALUES, rc);
  // accepted: from here on state changes
  if (!st) st = stream_get(s, prod);
  if (fb->stream_batches && !st->announced) st->announced = fb->stream_batches;
  if (st->eos_known && seq >= st->next_seq) {  // the recorded end was wrong (forged or stale): open again
    st->eos_known = 0;
    s->c.eos_reopened++;
  }
  if (!s->have_meta) {
    memset(&s->meta, 0, sizeof s->meta);
    s->meta.format = FS_FORMAT;
    s->meta.n_features = fb->n_features;
    s->meta.top_n = s->o.top_n;
    s->meta.level = (uint32_t)residue;
    s->meta.neurons = fb->neurons != 0;
    s->meta.pooling = fb->pooling == PROTSAE__POOLING__POOLING_MAX;
    s->meta.residue_top = residue ? s->o.residue_top : 0;
    s->have_meta = 1;
    alloc_features(s);
  }
  uint32_t top_n = s->meta.top_n;
  const uint32_t *pi = residue ? fb->pooled_indptr : fb->indptr;
  const uint32_t *px = residue ? fb->pooled_indices : fb->indices;
  const float *pv = residue ? fb->pooled_values : fb->values;
  size_t n_prot = fb->n_protein_ids;
  if (residue && !s->pmax) {
    s->pmax = ps_xcalloc(s->meta.n_features, sizeof *s->pmax);
    s->ppos = ps_xcalloc(s->meta.n_features, sizeof *s->ppos);
    s->touched = ps_xmalloc(s->meta.n_features * sizeof *s->touched);
    s->seen = ps_xcalloc(s->meta.n_features, 1);
  }
  for (size_t p = 0; p < n_prot; p++) {
    const char *id = fb->protein_ids[p];
    for (uint32_t j = pi[p]; j < pi[p + 1]; j++) {
      float v = pv[j];
      if (!(v > 0)) continue;
      fs_feat_t *f = &s->feats[px[j]];
      fs_feat_add(f, v);
      if (!residue) fs_feat_offer_top(f, top_n, v, id, FS_POS_NONE);
      s->dirty[px[j]] = 1;
    }
    fs_wb_put_code(s->fs, s->wb, id, pi[p + 1] - pi[p], px + pi[p], pv + pi[p]);
    s->meta.nnz += pi[p + 1] - pi[p];
    if (residue) {
      uint32_t r0 = fb->residue_offsets[p], r1 = fb->residue_offsets[p + 1], nt = 0;
      for (uint32_t r = r0; r < r1; r++)
        for (uint32_t j = fb->indptr[r]; j < fb->indptr[r + 1]; j++) {
          uint32_t f = fb->indices[j];
          float v = fb->values[j];
          if (!(v > 0)) continue;
          fs_feat_t *ft = &s->feats[f];
          ft->res_active++;
          if (v > ft->res_max) ft->res_max = v;
          s->dirty[f] = 1;
          if (!s->seen[f]) {
            s->seen[f] = 1;
            s->touched[nt++] = f;
            s->pmax[f] = v;
            s->ppos[f] = r - r0;
          } else if (v > s->pmax[f]) {  // first position of the maximum
            s->pmax[f] = v;
            s->ppos[f] = r - r0;
          }
        }
      for (uint32_t i = 0; i < nt; i++) {
        uint32_t f = s->touched[i];
        fs_feat_offer_top(&s->feats[f], top_n, s->pmax[f], id, s->ppos[f]);
        s->seen[f] = 0;
      }
      put_rcode(s, fb, id, r0, r1);
      s->meta.residues += r1 - r0;
    }
  }
  s->meta.proteins += n_prot;
  s->meta.batches++;
  seq_add(st, seq);
  fs_wb_put_applied(s->fs, s->wb, prod, seq);
  s->c.applied++;
  s->c.pending++;
  s->c.proteins += n_prot;
  s->c.rows += fb->n_rows;
  return 1;
}

int scorer_note_eos(scorer_t *s, const char *producer, uint64_t next_seq, uint64_t rows, uint64_t proteins,
                    ps_err_t *err) {
  uint64_t i_st;
  stream_t *st = strmap_get(s->by_name, producer, &i_st) ? &s->streams[i_st] : NULL;
  uint64_t end = st ? seq_end(st) : 0, ann = st ? st->announced : 0;
  const char *bad = NULL;
  if (next_seq > SCORER_MAX_SEQ) bad = "over the bound of 2^32 batches";
  else if (next_seq < end) bad = "below the highest batch applied";
  else if (ann && next_seq > ann) bad = "over the count its batches announce";
  if (bad) {
    s->c.rejected_by[SCORER_REJ_EOS]++;
    return ps_err_set(err, PS_EPROTO, "%s: EndOfStream at seq %llu %s (applied up to %llu, announced %llu): ignored",
                      producer, (unsigned long long)next_seq, bad, (unsigned long long)end, (unsigned long long)ann);
  }
  if (!st) st = stream_get(s, producer);
  if (st->eos_known && st->next_seq == next_seq) return 0;
  st->eos_known = 1;
  st->eos_dirty = 1;
  st->next_seq = next_seq;
  st->rows = rows;
  st->proteins = proteins;
  return 0;
}

int scorer_commit(scorer_t *s, ps_err_t *err) {
  int any = s->c.pending > 0;
  if (s->have_meta && s->c.pending) {
    for (uint32_t f = 0; f < s->meta.n_features; f++)
      if (s->dirty[f]) fs_wb_put_feat(s->fs, s->wb, f, &s->feats[f]);
    fs_wb_put_meta(s->fs, s->wb, &s->meta);
  }
  for (size_t i = 0; i < s->n_streams; i++)
    if (s->streams[i].eos_dirty) {
      stream_t *st = &s->streams[i];
      fs_eos_t e = {st->next_seq, st->rows, st->proteins};
      fs_wb_put_eos(s->fs, s->wb, st->producer, &e);
      any = 1;
    }
  if (!any) return 0;
  int rc = fs_commit(s->fs, s->wb, s->o.sync, err);
  if (rc < 0) return rc;
  if (s->dirty) memset(s->dirty, 0, s->meta.n_features);
  for (size_t i = 0; i < s->n_streams; i++) s->streams[i].eos_dirty = 0;
  s->c.pending = 0;
  return 0;
}

size_t scorer_streams_known(const scorer_t *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_streams; i++) n += s->streams[i].eos_known;
  return n;
}

uint64_t scorer_stream_batches(const scorer_t *s) {
  uint64_t n = 0;
  for (size_t i = 0; i < s->n_streams; i++)
    if (s->streams[i].eos_known) n += s->streams[i].next_seq;
  return n;
}

static int stream_complete(const stream_t *st) {
  if (!st->eos_known) return 0;
  if (!st->next_seq) return 1;
  return st->n_spans && st->spans[0].lo == 0 && st->spans[0].hi >= st->next_seq;
}

size_t scorer_streams_complete(const scorer_t *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_streams; i++) n += stream_complete(&s->streams[i]);
  return n;
}

size_t scorer_missing(const scorer_t *s, size_t i, const char **producer, uint64_t *seqs, size_t cap) {
  size_t k = 0;
  for (size_t j = 0; j < s->n_streams; j++) {
    const stream_t *st = &s->streams[j];
    if (!st->eos_known) continue;
    if (k++ != i) continue;
    *producer = st->producer;
    // the gaps between the applied spans below next_seq: O(spans + cap), whatever next_seq is
    size_t n = 0, w = 0;
    uint64_t q = 0;
    for (size_t sp = 0; sp <= st->n_spans && q < st->next_seq; sp++) {
      uint64_t gap_end = sp < st->n_spans && st->spans[sp].lo < st->next_seq ? st->spans[sp].lo : st->next_seq;
      for (uint64_t m = q; m < gap_end && w < cap; m++) seqs[w++] = m;
      if (gap_end > q) n += (size_t)(gap_end - q);
      q = sp < st->n_spans ? st->spans[sp].hi : st->next_seq;
    }
    return n;
  }
  *producer = NULL;
  return 0;
}
