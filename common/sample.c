// sample.c — see sample.h.
#include "sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"

typedef struct rng {
  uint64_t s;
} rng_t;

static uint64_t rng_u64(rng_t *r) { return ps_splitmix64(&r->s); }
static size_t rng_below(rng_t *r, size_t n) { return n ? (size_t)(rng_u64(r) % n) : 0; }
static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream) {
  r->s = seed * 0x9e3779b97f4a7c15ull ^ (stream + 0x632be59bd9b4e019ull);
  rng_u64(r);
}

void ps_sample_opts_default(ps_sample_opts_t *o) {
  memset(o, 0, sizeof *o);
  int def[PS_SAMPLE_BINS] = {6, 3, 3, 3, 2};
  memcpy(o->bins, def, sizeof def);
  o->n_inactive = 15;
  o->min_active = 34;
  o->active_threshold = 0;
  o->seed = 1;
  o->explain_frac = 0.5;
}

int ps_sample_parse_bins(const char *s, int bins[PS_SAMPLE_BINS]) {
  int k = 0;
  const char *p = s;
  while (*p && k < PS_SAMPLE_BINS) {
    char *e;
    long v = strtol(p, &e, 10);
    if (e == p || v < 0 || v > 1000) return PS_ECONFIG;
    bins[k++] = (int)v;
    p = e;
    if (*p == ',') p++;
    else if (*p) return PS_ECONFIG;
  }
  return k == PS_SAMPLE_BINS && !*p ? 0 : PS_ECONFIG;
}

void ps_sample_free(ps_sample_t *s) {
  free(s->shown);
  free(s->shown_act);
  free(s->held);
  free(s->held_act);
  free(s->shown_bin);
  free(s->held_bin);
  memset(s, 0, sizeof *s);
}

void ps_sample_unit_order(uint64_t seed, size_t n_units, size_t want, size_t *perm) {
  for (size_t i = 0; i < n_units; i++) perm[i] = i;
  if (want == 0 || want >= n_units) return;
  rng_t r;
  rng_seed(&r, seed, 0xfeedull);
  for (size_t i = n_units; i > 1; i--) {
    size_t j = rng_below(&r, i);
    size_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

// ---- sampling --------------------------------------------------------------------------------
static int bin_of(float v) {  // top bin (0) = (0.8, 1], bottom (4) = [0, 0.2]
  for (int b = 0; b < PS_SAMPLE_BINS - 1; b++)
    if (v > 1.0f - (float)(b + 1) / PS_SAMPLE_BINS) return b;
  return PS_SAMPLE_BINS - 1;
}

// Choose k of the n values in a[] at random (partial Fisher-Yates); they end up in a[0..k).
static void choose(rng_t *r, int64_t *a, size_t n, size_t k) {
  for (size_t i = 0; i < k && i < n; i++) {
    size_t j = i + rng_below(r, n - i);
    int64_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

int ps_sample_unit(const ps_sample_opts_t *o, float *act, size_t n, size_t unit, ps_sample_t *s, char *why,
                       size_t cap) {
  memset(s, 0, sizeof *s);
  float lo = INFINITY, hi = -INFINITY;
  size_t n_active = 0;
  for (size_t i = 0; i < n; i++) {
    float v = act[i];
    if (!isfinite(v)) v = 0;
    if (o->relu && v < 0) v = 0;
    act[i] = v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if ((double)v > o->active_threshold) n_active++;
  }
  s->n_active = n_active;
  if (n == 0 || !(hi > lo)) {
    snprintf(why, cap, "constant activations");
    return 0;
  }
  if (n_active < (size_t)o->min_active) {
    snprintf(why, cap, "too few active proteins (%zu < %d)", n_active, o->min_active);
    return 0;
  }
  float range = hi - lo;
  // group rows: bins 0..4 for active, 5 for inactive
  size_t cnt[PS_SAMPLE_BINS + 1] = {0};
  int64_t *grp[PS_SAMPLE_BINS + 1];
  for (size_t i = 0; i < n; i++) {
    int g = (double)act[i] > o->active_threshold ? bin_of((act[i] - lo) / range) : PS_SAMPLE_BINS;
    cnt[g]++;
  }
  for (int g = 0; g <= PS_SAMPLE_BINS; g++) grp[g] = ps_xmalloc((cnt[g] ? cnt[g] : 1) * sizeof(int64_t));
  size_t fill[PS_SAMPLE_BINS + 1] = {0};
  for (size_t i = 0; i < n; i++) {
    int g = (double)act[i] > o->active_threshold ? bin_of((act[i] - lo) / range) : PS_SAMPLE_BINS;
    grp[g][fill[g]++] = (int64_t)i;
  }
  // quotas with spill-over: down first, then back up
  size_t take[PS_SAMPLE_BINS + 1] = {0};
  size_t carry = 0;
  for (int b = 0; b < PS_SAMPLE_BINS; b++) {
    size_t want = (size_t)o->bins[b] + carry;
    take[b] = want < cnt[b] ? want : cnt[b];
    carry = want - take[b];
  }
  for (int b = PS_SAMPLE_BINS - 1; b >= 0 && carry; b--) {
    size_t more = cnt[b] - take[b];
    if (more > carry) more = carry;
    take[b] += more;
    carry -= more;
  }
  take[PS_SAMPLE_BINS] = (size_t)o->n_inactive < cnt[PS_SAMPLE_BINS] ? (size_t)o->n_inactive : cnt[PS_SAMPLE_BINS];
  rng_t r;
  rng_seed(&r, o->seed, unit);
  size_t total = 0;
  for (int g = 0; g <= PS_SAMPLE_BINS; g++) total += take[g];
  s->shown = ps_xmalloc(total * sizeof *s->shown);
  s->held = ps_xmalloc(total * sizeof *s->held);
  s->shown_act = ps_xmalloc(total * sizeof *s->shown_act);
  s->held_act = ps_xmalloc(total * sizeof *s->held_act);
  s->shown_bin = ps_xmalloc(total * sizeof *s->shown_bin);
  s->held_bin = ps_xmalloc(total * sizeof *s->held_bin);
  // pick j is shown when floor((j + 1) f + off) > floor(j f + off): explain_frac f of the picks,
  // spread evenly; the seeded start off makes f 0.5 alternate from a random first half
  double f = o->explain_frac > 0 && o->explain_frac < 1 ? o->explain_frac : 0.5;
  double off = rng_below(&r, 2) == 0 ? 1.0 - f : 0.0;
  size_t pick = 0;
  for (int g = 0; g <= PS_SAMPLE_BINS; g++) {
    choose(&r, grp[g], cnt[g], take[g]);  // random picks in random order
    for (size_t k = 0; k < take[g]; k++, pick++) {
      int64_t row = grp[g][k];
      float v = (act[row] - lo) / range;
      if (floor((double)(pick + 1) * f + off) > floor((double)pick * f + off)) {
        s->shown[s->n_shown] = row;
        s->shown_act[s->n_shown] = v;
        s->shown_bin[s->n_shown++] = g;
      } else {
        s->held[s->n_held] = row;
        s->held_act[s->n_held] = v;
        s->held_bin[s->n_held++] = g;
      }
    }
  }
  for (int g = 0; g <= PS_SAMPLE_BINS; g++) free(grp[g]);
  // shown: by activation descending (insertion sort: ~16 items)
  for (size_t i = 1; i < s->n_shown; i++)
    for (size_t j = i; j > 0 && s->shown_act[j] > s->shown_act[j - 1]; j--) {
      float tv = s->shown_act[j];
      s->shown_act[j] = s->shown_act[j - 1];
      s->shown_act[j - 1] = tv;
      int64_t tr = s->shown[j];
      s->shown[j] = s->shown[j - 1];
      s->shown[j - 1] = tr;
      int tb = s->shown_bin[j];
      s->shown_bin[j] = s->shown_bin[j - 1];
      s->shown_bin[j - 1] = tb;
    }
  // held out: shuffled
  for (size_t i = s->n_held; i > 1; i--) {
    size_t j = rng_below(&r, i);
    float tv = s->held_act[i - 1];
    s->held_act[i - 1] = s->held_act[j];
    s->held_act[j] = tv;
    int64_t tr = s->held[i - 1];
    s->held[i - 1] = s->held[j];
    s->held[j] = tr;
    int tb = s->held_bin[i - 1];
    s->held_bin[i - 1] = s->held_bin[j];
    s->held_bin[j] = tb;
  }
  return 1;
}

