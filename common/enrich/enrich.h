// enrich.h — GO enrichment of sparse features: every feature against every GO term, exactly.
//
// The enrichment engine (common/enrich). Users: the scorer stage (stages/scorer/analysis.c
// enriches the features of its store), the protsae CLI (`protsae enrich`, the annotation and
// report commands through the store), the unit tests (test_enrich, enrich_pvals against scipy)
// and bench_enrich. Files: enrich_opts.c (options, their names and
// configuration keys), enrich_engine.c (engine, per-feature pass), enrich_stats.c
// (exact hypergeometric / Fisher p, Benjamini-Hochberg), enrich_csc.c (activations),
// enrich_summary.c (DAG distances, summaries), enrich_tsv.c (export).
//
// Model (as goatools / the reference studies): population = the analysed proteins that have GO
// annotations (opts.population ANNOTATED, the default), or every analysed protein (ANALYSED);
// annotations propagated to ancestors over the ontology's loaded edges (go_annotations_propagate:
// is_a + part_of, or is_a only when loaded so); study set of a feature = the
// population proteins where it is active (value > act_frac * max of the feature; act_frac 0 =
// value > 0). Tested terms = non-obsolete terms with >= min_size population proteins (m terms,
// the same for every feature). For each feature and tested term, with N = population, K = the
// term's population proteins, n = study size, k = study proteins annotated to the term:
//   p     one-sided Fisher exact test for enrichment = hypergeometric P(X >= k) (scipy
//         fisher_exact(alternative='greater') / hypergeom.sf(k-1, N, K, n)), or two-sided as
//         scipy's fisher_exact (what goatools reports): the sum of P(x) <= P(k);
//   fold  (k / n) / (K / N);
//   p_bonf = min(1, p m) per feature; q_bh = Benjamini-Hochberg over the feature's m terms; with
//         opts.scope NAMESPACE the family is the tested terms of the term's namespace instead
//         (m_ns: p_bonf = min(1, p m_ns), BH within the namespace over m_ns terms);
//   f1    the best F1 over the activation thresholds f1_thresholds (fractions of the feature's
//         max, InterPLM-style) of "active above threshold" as a predictor of the term, over the
//         population; f1_threshold is the fraction that gives it.
// Only enriched terms (fold > 1) significant under opts.correction at opts.alpha are kept
// (q_bh < alpha, or p_bonf < alpha). p-values are exact: log-factorials in long double, tail
// sums in log space with the terms' ratio recurrence, ties of the two-sided test decided in
// exact integer arithmetic (prime factorisations). ln_p holds p far below the double range
// (p itself underflows to 0 below ~1e-308).
//
// How: the engine precomputes, for each analysed protein, its list of tested terms (compact
// indices). Per feature it walks the study proteins' lists into a per-thread counts array, so
// only terms with study hits are visited (a term with k = 0 has p = 1 in the one-sided test).
// A term whose point probability P(k) alone is >= alpha can be neither significant nor change
// a significant term's q (BH q of p < alpha only depends on the other p < alpha), so its exact
// tail is not summed; every other p-value is exact. Features run in parallel over a ps_pool.
//
// Memory: the engine holds 4 bytes per (analysed protein, tested term) pair (~7 MB for the
// 17,459 human proteins) + 33 bytes per analysed protein (log-factorial tables, primes,
// offsets) + 12 bytes per ontology term; each thread a workspace of (4 (#levels + 2) + 24) bytes
// per tested term (#levels <= 10; ~0.6 MB for 12,137 terms); results 64 bytes per kept
// (feature, term) + 56 bytes per feature (+ 4 while running). Nothing depends on the activation count
// beyond the caller's CSC.
//
// Ownership: the engine borrows the ontology (kept until enrich_engine_free); annotations and
// annot_of are copied in the form it needs. Results are plain structs the caller owns
// (enrich_results_free). Thread-safety: an engine is read-only after enrich_engine_new and can
// serve several enrich_run calls at once.
#ifndef PS_ENRICH_H
#define PS_ENRICH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "go.h"
#include "pool.h"

typedef enum { ENRICH_GREATER = 0, ENRICH_TWO_SIDED = 1, ENRICH_LESS = 2 } enrich_alt_t;
typedef enum { ENRICH_BONFERRONI = 0, ENRICH_FDR_BH = 1 } enrich_corr_t;
// The population: the analysed proteins with >= 1 annotation (ANNOTATED), or every analysed
// protein (ANALYSED, as goatools run with the analysed proteins as population: an unannotated
// protein counts in N and, when active, in n, and carries no term).
typedef enum { ENRICH_POP_ANNOTATED = 0, ENRICH_POP_ANALYSED = 1 } enrich_pop_t;
// The family of the multiple-testing correction: the m tested terms (ALL), or the tested terms of
// the hit's own namespace (NAMESPACE: BP, MF and CC corrected separately, m_ns terms each).
typedef enum { ENRICH_SCOPE_ALL = 0, ENRICH_SCOPE_NAMESPACE = 1 } enrich_scope_t;
// The depth reported for a term (TSV, store records, summaries' depth bins and LCA depth):
// go_term_t.depth, the longest path over the loaded edges (RELATIONS: is_a + part_of unless the
// ontology was loaded with is_a only), or go_term_t.depth_is_a, along is_a only (IS_A, goatools').
typedef enum { ENRICH_DEPTH_RELATIONS = 0, ENRICH_DEPTH_IS_A = 1 } enrich_depth_t;

#define ENRICH_MAX_F1 8

typedef struct enrich_opts {
  uint32_t min_size;          // 5: population proteins a term needs to be tested
  double act_frac;            // 0: active = value > act_frac * (feature max); 0 = value > 0
  enrich_alt_t alternative;   // ENRICH_GREATER (ENRICH_TWO_SIDED = goatools' p-values)
  enrich_corr_t correction;   // ENRICH_BONFERRONI: keep p_bonf < alpha; ENRICH_FDR_BH: q_bh < alpha
  double alpha;               // 0.05
  uint32_t max_hits;          // 0 = keep every significant term; else the max_hits smallest p
  uint32_t n_f1;              // 5
  double f1_thresholds[ENRICH_MAX_F1];  // 0, 0.15, 0.5, 0.6, 0.8 (fractions of the max, ascending)
  // -- added for issue 18 (append only) --
  enrich_pop_t population;    // ENRICH_POP_ANNOTATED
  enrich_scope_t scope;       // ENRICH_SCOPE_ALL: the family of both p_bonf and q_bh
  enrich_depth_t depth;       // ENRICH_DEPTH_RELATIONS
} enrich_opts_t;

void enrich_opts_default(enrich_opts_t *o);
// Parse an option's name: 0 or PS_ECONFIG. "greater" / "two-sided" / "less"; "fdr" (also "bh") /
// "bonferroni"; "annotated" / "analysed" (also "analyzed"); "all" / "namespace"; "relations" /
// "is_a"; the propagation's go_rel_t mask "is_a+part_of" / "is_a".
int enrich_alt_parse(const char *s, enrich_alt_t *out);
int enrich_corr_parse(const char *s, enrich_corr_t *out);
int enrich_pop_parse(const char *s, enrich_pop_t *out);
int enrich_scope_parse(const char *s, enrich_scope_t *out);
int enrich_depth_parse(const char *s, enrich_depth_t *out);
int enrich_rels_parse(const char *s, unsigned *rels);
// The names parsed above (static strings; "?" for a value without one).
const char *enrich_alt_name(enrich_alt_t v);
const char *enrich_corr_name(enrich_corr_t v);
const char *enrich_pop_name(enrich_pop_t v);
const char *enrich_scope_name(enrich_scope_t v);
const char *enrich_depth_name(enrich_depth_t v);
const char *enrich_rels_name(unsigned rels);
// Parse "0,0.15,0.5" into o->f1_thresholds (sorted, <= ENRICH_MAX_F1 values in [0, 1)).
int enrich_f1_parse(const char *s, enrich_opts_t *o, ps_err_t *err);
// 0 or PS_ECONFIG naming the bad option (enrich_engine_new runs it).
int enrich_opts_check(const enrich_opts_t *o, ps_err_t *err);

// ---- the options as configuration keys ----------------------------------------------------------
// The keys every program that enriches takes (scorer, demo/run, protsae enrich / enrich-store), in
// its ps_config table through ENRICH_CONFIG_ENTRIES(default correction), NULL-terminated here (demo
// passes each to the scorer as the flag of the same name).
extern const char *const enrich_config_keys[];
#define ENRICH_CONFIG_ENTRIES(corr_default)                                                                           \
  {"enrich-population", "annotated",                                                                                 \
   "GO enrichment population: annotated (proteins with >= 1 GO annotation) | analysed (every analysed protein, "     \
   "goatools' population; unannotated ones count in N and n and carry no term)"},                                    \
      {"enrich-relations", "is_a+part_of",                                                                           \
       "edges annotations propagate up (and DAG distances walk): is_a+part_of | is_a (goatools' default)"},          \
      {"enrich-correction", (corr_default),                                                                          \
       "multiple testing per unit: fdr (Benjamini-Hochberg q < alpha) | bonferroni (p x family < alpha)"},           \
      {"enrich-correction-scope", "all",                                                                             \
       "the correction's family: all (every tested term) | namespace (the tested terms of the term's namespace: "    \
       "BP, MF, CC separately)"},                                                                                    \
      {"enrich-depth", "relations",                                                                                  \
       "GO depth reported and binned: relations (longest path over the propagation's edges) | is_a (along is_a "     \
       "only, goatools' depth)"}
typedef struct ps_config ps_config_t;
// Read the keys of enrich_config_keys set in cfg (every one must be in its table) into o and *rels
// (the go_rel_t mask to load the ontology with); an unset key keeps the value. 0 or PS_ECONFIG
// naming the key, the value and the choices ("--enrich-population 'x': annotated | analysed").
int enrich_opts_config(const ps_config_t *cfg, enrich_opts_t *o, unsigned *rels, ps_err_t *err);

// ---- exact hypergeometric / Fisher p-values ------------------------------------------------
// X ~ Hypergeometric(N population, K successes in it, n draws): P(X = k) =
// C(K,k) C(N-K,n-k) / C(N,n). Tables of ln(i!) for i <= n_max and the primes <= n_max.
// Memory: 24 bytes per i. Read-only after creation (thread-safe).
typedef struct enrich_hyper enrich_hyper_t;
int enrich_hyper_new(enrich_hyper_t **out, int64_t n_max, ps_err_t *err);
void enrich_hyper_free(enrich_hyper_t **h);
// Natural logs; -INFINITY for probability 0. Arguments must satisfy 0 <= K, n <= N <= n_max
// (PS_ASSERT). k outside the support is allowed.
double enrich_ln_pmf(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n);
double enrich_ln_sf(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n);   // P(X >= k)
double enrich_ln_cdf(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n);  // P(X <= k)
// scipy.stats.fisher_exact's two-sided p: sum of P(x) over x with P(x) <= P(k) (P(k) == P(mode):
// 1), min 1.
double enrich_ln_two_sided(const enrich_hyper_t *h, int64_t k, int64_t N, int64_t K, int64_t n);
// scipy.stats.fisher_exact([[a, b], [c, d]], alternative).pvalue, as ln p. A zero row or column
// sum gives 0 (p = 1), as scipy.
double enrich_fisher_ln_p(const enrich_hyper_t *h, int64_t a, int64_t b, int64_t c, int64_t d,
                          enrich_alt_t alt);

// ---- activations -----------------------------------------------------------------------------
// Feature-major sparse activations (CSC): feature f is active on proteins rows[indptr[f] ..
// indptr[f+1]) (analysed-protein indices in [0, n_proteins), any order, no duplicates within
// a feature) with values[...] (finite; <= 0 counts as inactive). Borrowed.
typedef struct enrich_csc {
  int64_t n_features, n_proteins;
  const int64_t *indptr;     // n_features + 1
  const int32_t *rows;
  const float *values;
} enrich_csc_t;

// Check shape and values; errors (PS_EFORMAT / PS_ENAN / PS_EDIM) name `what`, the feature and
// the position ("acts: feature 12: entry 3: protein 99999 >= n_proteins 17459").
int enrich_csc_check(const enrich_csc_t *c, const char *what, ps_err_t *err);

// An owned CSC built from protein-major CSR codes (sae_codes_t's layout: row r has
// values[indptr[r]..indptr[r+1]) at latents cols[...]). enrich_csc_buf_free releases it.
typedef struct enrich_csc_buf {
  enrich_csc_t csc;
  int64_t *indptr;
  int32_t *rows;
  float *values;
} enrich_csc_buf_t;
int enrich_csc_from_csr(enrich_csc_buf_t *out, int64_t n_rows, int64_t n_features, const int64_t *indptr,
                        const int32_t *cols, const float *values, ps_err_t *err);
void enrich_csc_buf_free(enrich_csc_buf_t *b);

// ---- the engine --------------------------------------------------------------------------------
typedef struct enrich_engine enrich_engine_t;

// annot: propagated annotations (borrowed for the call). annot_of[p] = annotation index of
// analysed protein p; -1: none (in the population only under ENRICH_POP_ANALYSED); -2: left out
// (never in the population). onto is borrowed until enrich_engine_free.
// opts may be NULL (defaults). Errors: bad options (PS_ECONFIG), annot_of out of range (PS_EDIM),
// an empty population or no tested term (PS_EMISMATCH, naming the counts).
int enrich_engine_new(enrich_engine_t **out, const go_ontology_t *onto, const go_annotations_t *annot,
                      const int64_t *annot_of, int64_t n_proteins, const enrich_opts_t *opts, ps_err_t *err);
void enrich_engine_free(enrich_engine_t **e);
const go_ontology_t *enrich_ontology(const enrich_engine_t *e);
const enrich_opts_t *enrich_engine_opts(const enrich_engine_t *e);
int64_t enrich_n_proteins(const enrich_engine_t *e);   // analysed proteins
int64_t enrich_pop_size(const enrich_engine_t *e);     // N
uint32_t enrich_n_tested(const enrich_engine_t *e);    // m
// Tested term i (0 <= i < m) as an ontology index; K of an ontology term (0 when untested).
int32_t enrich_tested_term(const enrich_engine_t *e, uint32_t i);
uint32_t enrich_term_pop(const enrich_engine_t *e, int32_t term);
// Correction family of an ontology term (m, or its namespace's tested terms under
// ENRICH_SCOPE_NAMESPACE; 0 when untested), and its depth under opts.depth (-1 for obsolete).
uint32_t enrich_term_family(const enrich_engine_t *e, int32_t term);
int32_t enrich_term_depth(const enrich_engine_t *e, int32_t term);
const enrich_hyper_t *enrich_engine_hyper(const enrich_engine_t *e);

typedef struct enrich_hit {
  int32_t term;          // ontology index (go_term(onto, term) for id, name, namespace, depth)
  uint32_t k, K;         // study hits, population hits
  float f1, f1_threshold;
  double ln_p, p;        // p = exp(ln_p) (0 when below the double range)
  double p_bonf, q_bh;
  double fold;
} enrich_hit_t;

typedef struct enrich_feature {
  int64_t n_active;      // analysed proteins where active (value > threshold)
  int64_t n_study;       // n: of them, in the population
  float max_act;         // the feature's max value (0 for a dead feature)
  uint32_t n_touched;    // tested terms with >= 1 study protein
  uint32_t n_hits;       // kept terms
  int64_t hit0;          // its hits are results.hits[hit0 .. hit0 + n_hits), ascending p
  int32_t best_f1_term;  // significant term with the best F1 (-1 when none; max_hits does not limit it)
  float best_f1, best_f1_threshold;
} enrich_feature_t;

typedef struct enrich_results {
  int64_t n_features;
  int64_t pop_n;         // N
  uint32_t n_tested;     // m
  enrich_opts_t opts;
  enrich_feature_t *features;
  enrich_hit_t *hits;
  int64_t n_hits;
  uint64_t n_touched;    // sum over features of terms with study hits
  uint64_t n_exact;      // p-values summed exactly (the others had P(k) >= alpha)
  double seconds;
} enrich_results_t;

// Run every feature of acts (checked with enrich_csc_check first). pool may be NULL. res is
// overwritten (free it with enrich_results_free, also after an error). Deterministic: the same
// results whatever the thread count.
int enrich_run(const enrich_engine_t *e, const enrich_csc_t *acts, ps_pool_t *pool, enrich_results_t *res,
               ps_err_t *err);
void enrich_results_free(enrich_results_t *r);
// A feature's kept terms, ascending p (borrowed from r); *n their count. NULL / 0 out of range.
const enrich_hit_t *enrich_feature_hits(const enrich_results_t *r, int64_t feature, uint32_t *n);

// The top terms of a feature with names, for the interpreter / `protsae feature N`: writes up to
// cap lines "GO:id<TAB>name<TAB>namespace<TAB>p<TAB>fold<TAB>k/n" into buf (NUL-terminated);
// returns the number of terms written.
size_t enrich_feature_describe(const enrich_engine_t *e, const enrich_results_t *r, int64_t feature, size_t cap,
                               char *buf, size_t buf_size);

// ---- summaries ---------------------------------------------------------------------------------
#define ENRICH_MAX_DEPTH 32
typedef struct enrich_summary {
  int64_t n_features, n_alive;             // alive: active on >= 1 population protein
  int64_t with_any;                        // features with >= 1 significant term
  int64_t with_ns[3];                      // ... in BP, MF, CC
  int64_t n_sig_pairs;                     // significant (feature, term) pairs
  int64_t n_sig_terms;                     // distinct terms significant for some feature
  int64_t by_depth[ENRICH_MAX_DEPTH + 1];  // significant pairs by GO depth (last bin: >= 32)
  double mean_depth;
  double median_best_f1;                   // over alive features (0 for one without a significant term)
  int64_t f1_over_05;                      // alive features with a significant term of F1 >= 0.5
  // monosemanticity: features with >= 2 significant terms in one namespace; their top
  // mono_top terms (by p) per namespace vs as many random tested terms of that namespace
  int64_t mono_features;
  double mono_dist, mono_rand_dist;        // mean pairwise DAG distance (via common ancestors)
  double mono_lca_depth, mono_rand_lca_depth;  // mean depth of the deepest common ancestor
  double mono_same_branch;                 // share of pairs where one term is the other's ancestor
  double mono_rand_same_branch;
} enrich_summary_t;

// seed drives the random terms of the baseline. mono_top 0 = 10.
void enrich_summarize(const enrich_engine_t *e, const enrich_results_t *r, uint64_t seed, uint32_t mono_top,
                      enrich_summary_t *s);
// `key: value` lines, each key prefixed with prefix ("" allowed).
void enrich_summary_print(const enrich_summary_t *s, const char *prefix, FILE *f);
// A side-by-side table of two summaries (e.g. "features" and "neurons").
void enrich_summary_print_pair(const enrich_summary_t *a, const char *name_a, const enrich_summary_t *b,
                               const char *name_b, FILE *f);

// Shortest path between two terms through a common ancestor (upward edges of the loaded
// ontology), and the largest depth among common ancestors. -1 (and *lca_depth -1) when they
// share none (different namespaces). lca_depth may be NULL.
int32_t enrich_term_distance(const go_ontology_t *o, int32_t a, int32_t b, int32_t *lca_depth);

// ---- export ----------------------------------------------------------------------------------
// One line per kept (feature, term), features ascending, then p ascending, with a header:
// feature go_id namespace depth name k n K N fold p ln_p p_bonf q_bh f1 f1_threshold (depth under
// opts.depth; p, p_bonf, q_bh with 11 significant digits, ln_p with 17).
// Written to path.tmp, fsynced, renamed. Errors name the file.
int enrich_write_tsv(const enrich_engine_t *e, const enrich_results_t *r, const char *path, ps_err_t *err);
// One line per feature: feature n_active n_study max_act n_touched n_hits top_go_id top_name
// top_p best_f1_go_id best_f1 best_f1_threshold.
int enrich_write_features_tsv(const enrich_engine_t *e, const enrich_results_t *r, const char *path,
                              ps_err_t *err);

#endif
