// concept.h — residue-level biological concepts (UniProt features: domains, binding and active
// sites, modified residues, transmembrane spans, ...) and InterPLM's concept F1 of SAE features
// against them, computed from a feature store's residue codes (featstore.h fs_rcode_t).
//
// Annotations (concept_set_t) come from two file kinds, told apart by content (gzip or plain):
//  - UniProtKB flat files (.dat/.txt; the first non-blank line starts with "ID   "), both layouts:
//      current  `FT   DOMAIN          24..130` + `FT                   /note="Protein kinase"`
//      pre-2019 `FT   DOMAIN       24    130       Protein kinase.` (+ continuation lines)
//    The protein is the entry's first AC accession; its ID name is an alias of it. Kept feature
//    types: concept_type_kept (DOMAIN, BINDING, ACT_SITE, MOD_RES, TRANSMEM, ...; not CHAIN,
//    VARIANT, CONFLICT, MUTAGEN, VAR_SEQ, ...). Concept name: the TYPE, or TYPE:family for DOMAIN,
//    MOTIF, ZN_FING, REPEAT and REGION, the family being the note cut at its first ';' or '(' with
//    a final '.' and an instance number ("WD 3" -> "WD", "SH3 2" -> "SH3") removed, so e.g.
//    `DOMAIN:Protein kinase` (as InterPLM names its domain and motif concepts by their notes).
//    Positions: `24..130` (a span), `57` (one residue), `<1..>120` and `?31` (uncertain bounds:
//    the number is taken), `?` or `?..120` (unknown: the feature is skipped and counted in
//    skipped_unknown), `P12345:24..130` (on another sequence: skipped, skipped_other_seq).
//    DISULFID and CROSSLNK `34..89` are two residues (34 and 89), not a span.
//  - TSV: `accession<TAB>start<TAB>end<TAB>concept`, 1-based inclusive, an optional header line
//    starting with "accession"; '#' lines are comments.
// Malformed input (a bad number, end < start, a truncated entry, a missing field) is an error
// naming the file and line. Memory: the annotations kept (16 bytes each) + names.
//
// Concept F1 (as InterPLM's concept evaluation, github ElanaPearl/InterPLM analysis/concepts):
// a residue's activation of feature f is normalised by f's max over the whole store (fs_feat_t
// res_max); at threshold t (default 0, 0.15, 0.5, 0.6, 0.8) the residue is "on" when the
// normalised value is > t. Over the evaluated proteins (those in the store with annotations):
//   precision(f, c, t) = on residues inside c / on residues
//   recall(f, c, t)    = instances of c with at least one on residue / instances of c
//                        ("domain-level"); for the residue-level concepts (InterPLM's
//                        per-amino-acid ones: ACT_SITE, MOD_RES, CARBOHYD, DISULFID) on residues
//                        inside c / residues in c
//   F1 = 2 P R / (P + R); pairs with no on residue inside c are not scored.
// A concept is tested when it has at least min_instances instances in the evaluated proteins.
// A feature's best is its highest F1 over tested concepts and thresholds (ties: concept name,
// then the lower threshold). Bounded codes: the store keeps each feature's top R residues per
// protein (meta residue_top); residues beyond them count as off, so the figures are exact when
// R covers every residue a feature turns on (always at t where fewer than R residues of a
// protein pass), and otherwise a lower bound of the recall and an estimate of the precision.
// Unlike InterPLM's shard code, an instance is (protein, annotation) (its label values are
// counted per shard, which merges same-numbered domains of different proteins).
// Memory: per (feature, concept, threshold) met at least once 24 bytes, + n_features x thresholds
// counters.
#ifndef PS_CONCEPT_H
#define PS_CONCEPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "featstore.h"
#include "io.h"

// ---- annotations ------------------------------------------------------------------------------------
typedef struct concept_ann {
  uint32_t prot, concept;
  uint32_t a, b;      // 0-based residues: the span a..b (inclusive), or with pair the two residues a, b
  uint32_t pair;
} concept_ann_t;

typedef struct concept_load_stats {
  uint64_t lines, entries, kept;       // lines read, entries (flat) or data lines (TSV), annotations kept
  uint64_t skipped_unknown;            // '?' positions
  uint64_t skipped_other_seq;          // positions on another sequence (P12345:24..130)
  uint64_t skipped_type;               // feature types not kept (CHAIN, VARIANT, ...)
} concept_load_stats_t;

typedef struct concept_set concept_set_t;
concept_set_t *concept_set_new(void);
void concept_set_destroy(concept_set_t **s);
// Load a file (flat or TSV by its first non-blank line; gzip or plain). st (may be NULL) is added to.
int concept_set_load(concept_set_t *s, const char *path, concept_load_stats_t *st, ps_err_t *err);
// The parsers over an open reader (errors name ps_lines_name and the line).
int concept_flat_read(concept_set_t *s, ps_lines_t *r, concept_load_stats_t *st, ps_err_t *err);
int concept_tsv_read(concept_set_t *s, ps_lines_t *r, concept_load_stats_t *st, ps_err_t *err);
// Add one annotation (1-based inclusive a..b, or the residues a and b with pair). alias (may be
// NULL) names the same protein. The concept is interned.
void concept_set_add(concept_set_t *s, const char *acc, const char *alias, const char *concept, uint32_t a,
                     uint32_t b, int pair);

size_t concept_set_n_concepts(const concept_set_t *s);
size_t concept_set_n_proteins(const concept_set_t *s);
size_t concept_set_n_annotations(const concept_set_t *s);
const char *concept_set_name(const concept_set_t *s, uint32_t concept);
const char *concept_set_protein_id(const concept_set_t *s, uint32_t prot);
// 1 and *prot when id (an accession or an alias) has annotations, 0 otherwise.
int concept_set_find(const concept_set_t *s, const char *id, uint32_t *prot);
// The annotations of prot (borrowed; valid until the next add).
const concept_ann_t *concept_set_anns(concept_set_t *s, uint32_t prot, size_t *n);
// Annotations of a concept over every protein of the set.
uint32_t concept_set_count(concept_set_t *s, uint32_t concept);

// Feature types kept, and the ones named by their family (TYPE:family).
int concept_type_kept(const char *type);
int concept_type_family(const char *type);
// Pair types (DISULFID, CROSSLNK): from..to are two residues.
int concept_type_pair(const char *type);
// InterPLM's per-amino-acid concepts (recall over residues, not instances).
int concept_is_residue_level(const char *name);
// The concept name of a feature of type with its note (note may be NULL) into out.
void concept_name(const char *type, const char *note, char *out, size_t cap);

// ---- F1 -------------------------------------------------------------------------------------------------
#define CONCEPT_MAX_THRESHOLDS 8
typedef struct concept_f1_opts {
  size_t n_thresholds;
  double thresholds[CONCEPT_MAX_THRESHOLDS];  // ascending, in [0, 1)
  uint32_t min_instances;                      // concepts with fewer instances are not tested
} concept_f1_opts_t;
void concept_f1_opts_default(concept_f1_opts_t *o);  // 0, 0.15, 0.5, 0.6, 0.8; 10

typedef struct concept_f1_best {
  uint32_t feature, concept;
  uint32_t t;                  // threshold index
  double threshold, precision, recall, f1;
  uint64_t tp, n_pred;         // on residues inside the concept / all on residues
  uint32_t found, instances;   // instances with an on residue / instances (residue-level concepts:
                               // residues in the concept for instances, tp for found)
} concept_f1_best_t;

typedef struct concept_f1_summary {
  uint64_t n_proteins;         // evaluated (in the store, with annotations)
  uint64_t n_residues;         // of the evaluated proteins
  uint64_t ann_out_of_range;   // annotations past the protein's length in the store (dropped)
  uint32_t n_concepts;         // tested (>= min_instances)
  uint32_t n_concepts_seen;    // with at least one instance in the evaluated proteins
  uint32_t n_features_scored;  // features with a best pair
  uint32_t features_f1_over_05;
  uint32_t concepts_covered;   // tested concepts with a feature at F1 > 0.5
} concept_f1_summary_t;

typedef struct concept_f1 concept_f1_t;
// feat_max[n_features]: each feature's max residue activation (fs_feat_t res_max; 0 = never on).
// s must outlive the accumulator.
concept_f1_t *concept_f1_new(concept_set_t *s, uint32_t n_features, const float *feat_max, const concept_f1_opts_t *o);
void concept_f1_destroy(concept_f1_t **a);
// One protein's residue code: 1 evaluated, 0 skipped (no annotations), <0 (a feature >= n_features).
int concept_f1_add(concept_f1_t *a, const char *id, const fs_rcode_t *rc, ps_err_t *err);
// The best pair of every feature that has one (ascending feature; caller frees *best) and the summary.
int concept_f1_finish(concept_f1_t *a, concept_f1_best_t **best, size_t *n_best, concept_f1_summary_t *sum);
// Instances and residues of a concept in the evaluated proteins (after adds).
void concept_f1_concept_counts(const concept_f1_t *a, uint32_t concept, uint64_t *instances, uint64_t *residues);

#endif
