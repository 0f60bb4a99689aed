// concepts.h — the scorer's residue concept analysis: on a complete residue-level store, after
// the GO enrichment, InterPLM's concept F1 of every feature (common/concept/concept.h) against the
// annotations of --concepts (UniProt flat files and/or TSVs), written into the store: each
// feature's best concept in the "concept" family (fs_concept_get / fs_concept_each),
// "concept/settings" and "concept/summary" (JSON: n_proteins, n_concepts (tested), thresholds,
// features_f1_over_05, frac_f1_over_05 (of the features alive at residue level),
// concepts_covered, n_features (alive at residue level), ...) in the string keys, all in one
// write batch. The files are loaded at start (errors name the file and line). A run whose
// settings (file names, sizes, thresholds, min instances, residue_top) are stored with a summary
// is not repeated; other settings replace the records. A protein-level store, or one that keeps
// no residue codes (residue_top 0), is logged and left alone.
// Memory: the annotations + the F1 counters (concept.h) + n_features floats.
#ifndef PS_SCORER_CONCEPTS_H
#define PS_SCORER_CONCEPTS_H

#include "concept.h"
#include "err.h"
#include "featstore.h"

typedef struct scorer_concepts scorer_concepts_t;

typedef struct scorer_concepts_cfg {
  const char *files;           // comma-separated paths
  concept_f1_opts_t opts;
} scorer_concepts_cfg_t;

int scorer_concepts_new(scorer_concepts_t **out, const scorer_concepts_cfg_t *cfg, ps_err_t *err);
void scorer_concepts_destroy(scorer_concepts_t **c);
// Run on the store now (force: also when these settings' results are stored). *ran = 1 when it
// computed and wrote.
int scorer_concepts_run(scorer_concepts_t *c, fs_t *fs, int force, int *ran, ps_err_t *err);

#endif
