// synth.h — the planted-feature generator behind `protsae synth`, and the measure of how much of
// its planted truth a trained SAE recovers (recovery_measure).
//
// Embeddings with known features, built on real protein annotations: each chosen GO term
// (terms with min..max proteins after propagation over is_a + part_of) gets a random unit
// direction u_t in R^d, and a protein's vector is
//
//   x_p = mu + sum_{t in terms(p)} a_pt u_t + noise * z_p + sum_k (o_k + jitter * z_pk) e_{dim_k}
//
// with mu a random mean (per-dim N(0, mean_scale^2)), a_pt = feature_scale * lognormal(0,
// spread) normalised to mean feature_scale, z_p ~ N(0, I), and n_outliers fixed coordinates
// dim_k carrying a large offset o_k (+-outlier_scale * U[0.75, 1.25]) with a per-protein jitter,
// like ESM2's massive activations. Residue level: row r of protein p is
//
//   h_pr = x_p + aa_scale * v_{aa(r)} + motif_scale * sum_{m : r inside a hit of m} w_m
//          + residue_noise * z_pr
//
// with 20 amino-acid identity directions v (ACDEFGHIKLMNPQRSTVWY; other letters get none) and
// one direction w_m per sequence motif (synth_motif_*). All directions are random unit vectors.
//
// Signal at the defaults (d=480, 1,000 terms of 10-300 proteins, on ../shared/data/human-swissprot;
// measured): 3.1 planted terms per protein on average, 12,217 of the 17,459 proteins carry at
// least one. Magnitudes: mean 1, lognormal sigma 0.5 (5% of them below 0.39). Noise 0.03 per dim:
// projection SNR feature_scale / noise = 33, energy ratio |planted|^2 / |noise|^2 = 9.3. Along a
// term's direction the non-members' spread comes mostly from the other terms' cross-talk
// (sd ~ 0.09), not from the noise. An oracle least-squares fit that knows every protein's terms
// and magnitudes recovers 96% of the directions at cosine >= 0.9; knowing the member sets only
// (binary), 60%: magnitude spread and nesting (parent and child terms both planted; a few terms
// have identical member sets) make the rest hard. That is the regime of the planted-recovery
// reference in shared/bench/README.md; the figures are in truth/meta.json (snr).
//
// Determinism: every random quantity comes from its own xoshiro256** stream keyed by (seed,
// stream kind, index): the protein p's vector from (seed, PROTEIN, p), its residues from
// (seed, RESIDUE, p), term t's direction from (seed, DIRECTION, t), ... So the same seed gives
// byte-identical outputs, whatever the order of generation.
//
// Ownership: synth_data_t and synth_plan_t are plain structs the caller owns (x_free releases
// what x_load / x_build allocated); their fields are read-only to callers. A plan borrows its
// data, which must outlive it.
#ifndef PS_SYNTH_H
#define PS_SYNTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "go.h"

// ---- deterministic random numbers --------------------------------------------------------
typedef struct synth_rng {
  uint64_t s[4];
  int has_spare;
  double spare;
} synth_rng_t;

enum {
  SYNTH_STREAM_MU = 1,
  SYNTH_STREAM_OUTLIERS = 2,
  SYNTH_STREAM_TERMS = 3,      // choice of the planted terms
  SYNTH_STREAM_DIRECTION = 4,  // index: feature
  SYNTH_STREAM_PROTEIN = 5,    // index: protein
  SYNTH_STREAM_RESIDUE = 6,    // index: protein
  SYNTH_STREAM_AA = 7,         // index: amino acid 0..19
  SYNTH_STREAM_MOTIF = 8,      // index: motif
  SYNTH_STREAM_RESIDUE_SET = 9,
  SYNTH_STREAM_SEQUENCE = 10,  // random sequences when the data have none; index: accession hash
  SYNTH_STREAM_EXTRA = 11,     // source of an extra protein (synth_data_extend); index: protein
};

// Seed a stream: splitmix64 over (seed, stream, index) fills the xoshiro256** state.
void synth_rng_init(synth_rng_t *r, uint64_t seed, uint64_t stream, uint64_t index);
uint64_t synth_rng_u64(synth_rng_t *r);
double synth_rng_uniform(synth_rng_t *r);          // [0, 1)
uint64_t synth_rng_below(synth_rng_t *r, uint64_t n);  // [0, n), unbiased; n > 0
double synth_rng_normal(synth_rng_t *r);           // N(0, 1), Box-Muller

// ---- sequence motifs ---------------------------------------------------------------------
// Matchers written as code (PROSITE notation in the pattern strings):
//   0 N_GLYCOSYLATION  PS00001  N-{P}-[ST]-{P}                 every start position
//   1 PKC_PHOSPHO      PS00005  [ST]-x-[RK]                    every start position
//   2 CK2_PHOSPHO      PS00006  [ST]-x(2)-[DE]                 every start position
//   3 ZINC_FINGER_C2H2 PS00028  C-x(2,4)-C-x(3)-[LIVMFYWC]-x(8)-H-x(3,5)-H
//                               every start; the shortest spacings that match
//   4 TM_HYDROPHOBIC   transmembrane-like stretch: the union (overlapping windows merged) of
//                      the 24-residue windows holding >= 18 of [AILMFVW]. Strict runs of 18
//                      hydrophobic residues occur in only 26 of the 17,459 human proteins; this
//                      rule hits 2,976, 88% of them annotated to a membrane (base rate 34%)
// Letters are compared case-insensitively. A hit covers residues [start, end).
#define SYNTH_N_MOTIFS 5
typedef struct synth_motif {
  const char *name;
  const char *pattern;
  const char *description;
} synth_motif_t;

typedef struct synth_hit {
  uint32_t start, end;
} synth_hit_t;

const synth_motif_t *synth_motif(int m);  // 0 <= m < SYNTH_N_MOTIFS
// All hits of motif m in seq[0..len). Writes at most cap hits; returns the count.
size_t synth_motif_scan(int m, const char *seq, size_t len, synth_hit_t *hits, size_t cap);

#define SYNTH_N_AA 20
extern const char synth_aa_letters[SYNTH_N_AA + 1];  // "ACDEFGHIKLMNPQRSTVWY"

// ---- inputs ------------------------------------------------------------------------------
typedef struct synth_data {
  size_t n_proteins;
  size_t n_input;          // proteins read from the input; [n_input, n_proteins) are extra
                           // proteins made by synth_data_extend (sequence and description shared
                           // with their source, an input protein)
  char **ids;              // accessions, input order
  char **descs;            // FASTA description ("GENE name"), "" when none
  char **seqs;             // upper-case sequences
  uint32_t *lens;
  int random_sequences;    // 1: no FASTA in the data dir; sequences are random (see synth.c)
  uint64_t dropped_duplicates, dropped_empty;
  go_ontology_t *onto;
  go_annotations_t *annot;      // propagated (is_a + part_of)
  int64_t *annot_of;            // per protein: index in annot, or -1 (no annotation)
  size_t n_annotated;
  go_annot_report_t report;
  char *dir, *obo_path, *annot_path, *proteins_path;  // what was read
} synth_data_t;

// Load a data directory: proteins.fasta.gz (or, without it, proteins.tsv.gz with random
// sequences), go_annotations.tsv.gz, and the ontology (go.obo[.gz] or go-*.obo[.gz]).
// 0 or <0 with err naming the file. Caller frees with synth_data_free (also after a failure).
int synth_data_load(synth_data_t *d, const char *dir, ps_err_t *err);
void synth_data_free(synth_data_t *d);
// Grow the data to n_total proteins (> n_input) for planted sets larger than the input: extra
// protein i draws a source among the input proteins (seeded: stream EXTRA, index i) and takes its
// sequence, description and GO annotations; its id is "<source id>_x<i>". Each extra protein gets
// its own magnitudes and noise (the protein stream is keyed by its index), so the term sets follow
// the input's distribution and every planted term's size scales by about n_total / n_input. Terms
// qualify for planting by their size among the input proteins (--min-size / --max-size mean the
// same terms at every scale). Memory: ~40 B a protein plus its id. 0 or PS_ECONFIG.
int synth_data_extend(synth_data_t *d, size_t n_total, uint64_t seed, ps_err_t *err);

// ---- parameters --------------------------------------------------------------------------
enum { SYNTH_LEVEL_PROTEIN = 1, SYNTH_LEVEL_RESIDUE = 2 };
enum { SYNTH_FMT_NPY = 1, SYNTH_FMT_SAFETENSORS = 2, SYNTH_FMT_H5 = 4, SYNTH_FMT_PT = 8 };

typedef struct synth_opts {
  const char *out_dir;       // borrowed
  uint64_t seed;             // 1
  uint32_t dim;              // 480 (ESM2-35M)
  uint32_t n_terms;          // 1000 (all when fewer qualify)
  uint32_t min_size, max_size;  // 10, 300 proteins after propagation
  double feature_scale;      // 1.0: mean magnitude a of a planted feature
  double magnitude_spread;   // 0.5: sigma of the lognormal magnitudes
  double noise;              // 0.03: per-dim Gaussian noise (sd) at protein level (see below)
  double mean_scale;         // 0.5: per-dim sd of the mean vector mu (|mu| ~ 0.5 sqrt(d))
  uint32_t n_outliers;       // 3
  double outlier_scale;      // 20
  double outlier_jitter;     // 0.5 (sd, per protein)
  unsigned levels;           // SYNTH_LEVEL_* mask; PROTEIN
  uint32_t residue_proteins; // 500
  double aa_scale;           // 1.0
  double motif_scale;        // 1.0
  double residue_noise;      // 0.2
  unsigned formats;          // protein level: NPY | SAFETENSORS | H5
  unsigned residue_formats;  // residue level: NPY | PT
  int f16;                   // also emb.f16.npy
  int layer;                 // layer number written in .pt files / meta: 12 (ESM2-35M's last)
  uint32_t n_proteins;       // 0 = the input's; more: extra proteins (synth_data_extend; the caller
                             // extends the data before the plan)
  uint32_t max_proteins;     // 0 = every protein; else only the first N of the input (quick
                             // tries, tests): term sizes are then counted over those N
  int quiet;                 // no summary on stdout
} synth_opts_t;

void synth_opts_default(synth_opts_t *o);
// "npy,safetensors,h5,pt" (or "all", or "none") -> mask. 0 or PS_ECONFIG.
int synth_parse_formats(const char *s, unsigned *out, ps_err_t *err);

// ---- the plan: everything random but the per-protein draws ------------------------------
typedef struct synth_plan {
  const synth_data_t *data;   // borrowed
  synth_opts_t opts;          // copy (strings borrowed)
  uint32_t dim;
  size_t n_proteins;          // proteins generated: the data's first n_proteins (max_proteins)
  uint32_t n_qualifying;      // terms meeting the size criteria
  uint32_t n_features;        // planted terms
  int32_t *feature_term;      // ontology index of each feature (ascending)
  uint32_t *feature_size;     // proteins carrying it
  float *directions;          // n_features x dim, unit rows
  float *mu;                  // dim
  uint32_t *outlier_dims;     // n_outliers, ascending
  float *outlier_values;      // n_outliers
  float *aa_dirs;             // SYNTH_N_AA x dim
  float *motif_dirs;          // SYNTH_N_MOTIFS x dim
  uint64_t *prot_off;         // n_proteins + 1: CSR of each protein's features
  uint32_t *prot_feat;        // ascending feature indices
  uint32_t n_residue;         // proteins of the residue subset
  uint32_t *residue_set;      // their protein indices, ascending
} synth_plan_t;

// Choose the terms and draw directions, mean, outliers. 0 or <0 (PS_ECONFIG for bad options).
// Caller frees with synth_plan_free (also after a failure).
int synth_plan_build(synth_plan_t *p, const synth_data_t *d, const synth_opts_t *o, ps_err_t *err);
void synth_plan_free(synth_plan_t *p);

// Protein p's vector into x (dim floats). mags (optional) receives the magnitude of each of its
// features, in the order of prot_feat. planted_sq / noise_sq (optional) receive the squared
// norms of the planted part and of the noise (for the SNR).
void synth_protein_vector(const synth_plan_t *p, size_t protein, float *x, float *mags,
                          double *planted_sq, double *noise_sq);
// Residue rows of protein p (lens[p] x dim) into rows; x is its protein vector. mask
// (optional, lens[p] bytes) receives, per residue, the bit set of the motifs covering it.
void synth_residue_rows(const synth_plan_t *p, size_t protein, const float *x, float *rows,
                        uint8_t *mask);

// ---- the whole run -----------------------------------------------------------------------
typedef struct synth_summary {
  uint32_t n_features, n_qualifying;
  size_t n_proteins, n_with_features;
  double mean_terms_per_protein;
  uint64_t residue_rows;
  uint32_t n_files;
  uint64_t bytes;
  double seconds;           // plan + generate + write
  double load_seconds;      // reading the inputs (set by the caller; 0 = not shown)
  double snr_projection;   // feature_scale / noise
  double energy_ratio;     // sum |planted|^2 / sum |noise|^2 (measured)
} synth_summary_t;

// Build the plan and write every output into o->out_dir (created; each file written to a temp
// name, fsynced and renamed). sum may be NULL. 0 or <0 with err.
int synth_generate(const synth_data_t *d, const synth_opts_t *o, synth_summary_t *sum, ps_err_t *err);
// Print the readable summary.
void synth_summary_print(const synth_summary_t *s, const synth_opts_t *o, FILE *f);

// ---- recovery of the planted directions (recovery.c) ---------------------------------------
// How many planted directions (truth: .npy, one row each) some decoder row of the SAE in sae_dir
// recovers: per direction the best cosine over the decoder rows. What `protsae recovery` prints,
// as data. 0 or a negative code (err says why).
typedef struct recovery {
  int64_t n_directions, d_sae;
  double planted_recovery_cos09;  // share of directions with best cosine >= 0.9
  double planted_recovery_cos08;  // ... >= 0.8
  double mean_best_cos;
} recovery_t;
int recovery_measure(const char *sae_dir, const char *truth, recovery_t *r, ps_err_t *err);
// Per decoder row (feature) of the SAE in sae_dir, the direction of truth it recovers: the row of
// truth with the best cosine when that is >= min_cos, else -1. *dir_of (*d_sae entries) is the
// caller's to free. 0 or a negative code (err says why).
int recovery_match(const char *sae_dir, const char *truth, float min_cos, int32_t **dir_of, int64_t *d_sae,
                   ps_err_t *err);

#endif
