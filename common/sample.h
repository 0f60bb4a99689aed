// sample.h — which proteins an interpretation shows and holds out (after the reference study),
// shared by the scorer (which builds InterpretRequests from its store) and the interpreter's
// file mode (.npy activations).
//
// Per unit: activations (ReLU first when relu) are min-max scaled to [0, 1]; active = raw value >
// active_threshold; a unit with fewer than min_active active proteins, or constant, is skipped;
// active proteins are sampled across five equal-width bins of the scaled activation, top bin first
// (quotas bins[], a short bin passes its shortfall down, then back up), plus n_inactive inactive
// ones; the sample is split into a shown part (explain_frac of it, 0.5 = halves) and a held-out
// part, spread evenly along the picks of each bin from a seeded start (at 0.5: alternating): the
// shown part sorted by activation, the held-out part shuffled. The generator is seeded by (seed, unit):
// a unit's sample does not depend on which other units are analysed.
// Memory: O(n) per call (bins of row indices).
#ifndef PS_SAMPLE_H
#define PS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define PS_SAMPLE_BINS 5

typedef struct ps_sample_opts {
  int bins[PS_SAMPLE_BINS];  // active proteins per bin, top first (6,3,3,3,2)
  int n_inactive;            // 15
  int min_active;            // 34
  double active_threshold;   // 0
  int relu;                  // apply ReLU first (neurons)
  uint64_t seed;             // 1
  double explain_frac;       // share of the sample shown for the explanation, in (0, 1) (0.5)
} ps_sample_opts_t;

void ps_sample_opts_default(ps_sample_opts_t *o);
// "6,3,3,3,2" -> bins. 0 or PS_ECONFIG.
int ps_sample_parse_bins(const char *s, int bins[PS_SAMPLE_BINS]);

typedef struct ps_sample {
  size_t n_active;           // active proteins of the unit
  size_t n_shown, n_held;
  int64_t *shown;            // rows, by scaled activation descending
  float *shown_act;          // scaled
  int64_t *held;             // rows in the order presented to the model (shuffled)
  float *held_act;           // true scaled activations
  int *shown_bin, *held_bin; // 0..4 = bin of an active protein, 5 = inactive
} ps_sample_t;

void ps_sample_free(ps_sample_t *s);
// One unit's raw activations act[0..n) (modified in place: non-finite -> 0, ReLU when relu).
// 1 and s filled (caller frees with ps_sample_free), or 0 when the unit is skipped (why says so).
int ps_sample_unit(const ps_sample_opts_t *o, float *act, size_t n, size_t unit, ps_sample_t *s, char *why, size_t cap);
// The order in which units are considered: a seeded permutation of [0, n_units) (identity when
// every unit is wanted: want == 0 or want >= n_units). perm has n_units entries.
void ps_sample_unit_order(uint64_t seed, size_t n_units, size_t want, size_t *perm);

#endif
