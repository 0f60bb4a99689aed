// offline.h — the offline interpreter: no network, a baseline in its own right.
//
// Explanation: from the unit's active proteins that are not held out (the shown ones and every
// other active protein) against the analysed proteins that are not held out, rank GO terms
// (propagated annotations), Pfam families and gene-name stems (ZNF, OR, KRT, ...) by the
// hypergeometric upper tail P(X >= k) with a fold enrichment >= 2 and k >= 3 and >= 5% (GO) /
// 10% (Pfam, stems) of the study proteins; keep the best GO
// terms (at most 3, none an ancestor of another), at most 2 Pfam families and 2 stems with
// p < 1e-3. Prediction for a held-out protein: the weighted share of those elements its
// annotations match (weight = min(1, -log10 p / 20)), in [0, 1].
#ifndef PS_INTERP_OFFLINE_H
#define PS_INTERP_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

typedef enum { OFF_GO = 0, OFF_PFAM = 1, OFF_STEM = 2 } offline_kind_t;

typedef struct offline_elem {
  offline_kind_t kind;
  int32_t id;        // term / family / stem index
  double p, fold, weight;
  uint32_t k, n;     // study proteins carrying it / study proteins
} offline_elem_t;

typedef struct offline_expl {
  size_t n;
  offline_elem_t e[8];
  char *text;        // "[offline] ..." (malloc'ed)
} offline_expl_t;

// Background counts over the analysed proteins (rows mapped to db proteins, -1 = unknown).
typedef struct offline_bg offline_bg_t;
offline_bg_t *offline_bg_new(const interp_db_t *db, const int64_t *row_db, size_t n_rows);
void offline_bg_destroy(offline_bg_t **bg);

// study: rows of active proteins (not held out); excl: held-out rows (removed from the background).
void offline_explain(const offline_bg_t *bg, const interp_db_t *db, const int64_t *row_db, const int64_t *study,
                     size_t n_study, const int64_t *excl, size_t n_excl, const char *unit_kind, offline_expl_t *out);
// From the feature store's enrichment instead (the pipeline's way: one implementation of the
// statistics): terms[0..n) ascending p (GO ids resolved in db->go; unknown ids skipped); keeps the
// best 3 that are neither roots nor ancestors / descendants of one kept, with p < 1e-3.
void offline_explain_terms(const interp_db_t *db, const char *const *go_ids, const double *p, const double *fold,
                           const uint32_t *k, const uint32_t *n, size_t n_terms, const char *unit_kind,
                           offline_expl_t *out);
double offline_predict(const offline_expl_t *x, const interp_db_t *db, int64_t db_idx);
void offline_expl_free(offline_expl_t *x);

// Upper tail of the hypergeometric distribution: P(X >= k), X ~ draws n from N with K successes.
double offline_hypergeom_sf(uint64_t k, uint64_t N, uint64_t K, uint64_t n);

#endif
