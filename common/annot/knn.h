// knn.h — the nearest-neighbour GO transfer baseline: each held-out protein takes the GO terms
// of its most similar training proteins, by cosine of their embeddings (what embedding-based
// annotation tools do), evaluated with the same CAFA Fmax as the SAE's prediction (annot.h).
//
// Rule. Training proteins: the records of the training embeddings whose id is annotated in the
// truth (>= 1 propagated term, as annot_naive_fmax counts them) and is not among the held-out
// embeddings' ids (so the held-out proteins may sit in the training file, as in the demo). For a
// held-out protein x, its k nearest training proteins by cosine (ties: the earlier training
// record; a zero vector has cosine 0 to everything), w_i = max(cos(x, n_i), 0) and
//     score(t) = sum_i w_i [t in n_i's propagated terms] / sum_i w_i
// (no prediction when every w_i is 0), rounded to 4 decimals as the naive baseline's scores; the
// three namespace roots are never predicted. Fmax: annot_fmax_add_terms into all, BP, MF, CC.
//
// Memory: the training rows, unit-normalised (n_train x d floats + 8 bytes each for the truth
// index), the held-out ids (the exclusion), one block of held-out rows and their similarities
// (block_rows x (d + n_train) floats: 256 rows x 15.8k training proteins = 16 MB), 20 bytes per
// GO term of scores; the ontology and truth are the caller's. The held-out embeddings are read twice
// (ids, then rows), one record at a time; the training file once.
#ifndef PS_ANNOT_KNN_H
#define PS_ANNOT_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "annot.h"
#include "emb.h"
#include "err.h"
#include "go.h"

#define ANNOT_KNN_K 10
#define ANNOT_KNN_BLOCK_ROWS 256

typedef struct annot_knn_opts {
  int64_t k;           // neighbours (ANNOT_KNN_K); fewer when the training set is smaller
  int64_t block_rows;  // held-out rows a similarity block (ANNOT_KNN_BLOCK_ROWS)
} annot_knn_opts_t;

typedef struct annot_knn_stats {
  int64_t n_train;            // training proteins used (annotated, not held out)
  int64_t n_train_held;       // records of the training file left out as held out
  int64_t n_train_unannotated;  // records of the training file without annotation
  int64_t n_held;             // held-out records
  int64_t n_evaluated;        // held-out proteins with >= 1 true non-root term (fm[0].n_proteins)
} annot_knn_stats_t;

// One held-out protein's prediction (every pointer borrowed until the callback returns).
typedef struct annot_knn_pred {
  const char *id;
  uint64_t index;          // its record in the held-out embeddings
  int64_t truth_index;     // in truth, -1 when not annotated
  size_t n_nb;             // neighbours, most similar first
  const int64_t *nb;       // their truth indices (truth->protein_ids[nb[i]])
  const float *nb_sim;     // their cosines
  size_t n_terms;          // predicted terms, ascending term index, scores > 0 after rounding
  const int32_t *terms;
  const float *scores;
} annot_knn_pred_t;
// Returns 0 to go on, < 0 to stop with that code (err filled by the callback).
typedef int (*annot_knn_cb)(const annot_knn_pred_t *p, void *ctx, ps_err_t *err);

// o NULL: the defaults. Runs the rule over every held-out record, calling cb for each, and fills
// r[ANNOT_N_FM] (all, BP, MF, CC; r and cb may each be NULL) and st (may be NULL). Both sources
// are opened at protein level from the options given. Errors name the file and the record: a
// dimension other than the training embeddings', NaN/Inf (the source's check), no annotated
// training protein.
int annot_knn_run(const go_ontology_t *onto, const go_annotations_t *truth, const emb_source_opts_t *train,
                  const emb_source_opts_t *held, const annot_knn_opts_t *o, annot_knn_cb cb, void *ctx,
                  annot_fmax_result_t r[ANNOT_N_FM], annot_knn_stats_t *st, ps_err_t *err);

// The one-call form: the data directory's ontology and annotations (data_dir NULL:
// ps_godata_default_dir), training embeddings train_emb (ids from train_ids, NULL = the file's
// own), held-out held_emb (held_ids likewise). 0 or < 0 (err).
int annot_knn_eval(const char *data_dir, const char *train_emb, const char *train_ids, const char *held_emb,
                   const char *held_ids, const annot_knn_opts_t *o, annot_fmax_result_t r[ANNOT_N_FM],
                   annot_knn_stats_t *st, ps_err_t *err);

#endif
