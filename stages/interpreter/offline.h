// offline.h — the offline interpreter: no network, a stand-in for the LLM that sees exactly what
// the LLM is shown, and nothing else.
//
// Elements of a protein are what its prompt line shows: the GO terms listed (interp_prompt_go_terms:
// the same cap and namespace sections) with their ancestors in the ontology (knowledge a model
// has; roots left out), its Pfam families, its gene-name stem (ZNF268 -> ZNF) and the words of
// its protein name (4 letters or more, a few generic words left out).
// Explanation: among the shown proteins only (their scaled activations as the prompt gives them),
// "high" = activation above the shown mean; an element is kept when at least 2 shown proteins
// carry it and it is over-represented among the high ones (hypergeometric upper tail within the
// shown set, p < 0.1); ranked by p, then the more specific GO term; at most 3 GO terms (none an
// ancestor of another), 2 Pfam families, 1 stem, 2 name words, 6 in all. Each kept element
// remembers the mean activation of its shown carriers (m) and weighs -log10 p (w); b is the mean
// activation of the shown proteins that carry none of them.
// Prediction for a held-out protein (from its prediction-prompt line, the same elements): b plus
// the weighted share of the matched elements' lift, b + sum_matched w (m - b) / sum_kept w, in
// [0, 1]: graded (several elements, their own means), as a model's 0-10 score would be. No element
// kept: every protein gets the shown mean (constant: r = 0). Deterministic.
#ifndef PS_INTERP_OFFLINE_H
#define PS_INTERP_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "protocol.h"

typedef enum { OFF_GO = 0, OFF_PFAM = 1, OFF_STEM = 2, OFF_WORD = 3 } offline_kind_t;

#define OFFLINE_MAX_ELEMS 6

typedef struct offline_elem {
  offline_kind_t kind;
  uint64_t key;      // kind << 60 | id (term, family, stem index; a name word's hash)
  int32_t id;        // term / family / stem index (-1 for a word)
  char word[32];     // the name word (OFF_WORD)
  double p, w, m;    // over-representation p, weight, mean activation of the shown carriers
  uint32_t k, c;     // high shown proteins carrying it, shown proteins carrying it
} offline_elem_t;

typedef struct offline_expl {
  size_t n;
  offline_elem_t e[OFFLINE_MAX_ELEMS];
  double base;       // b: mean activation of the shown proteins matching none (shown mean when n 0)
  uint32_t n_shown, n_high;
  char *text;        // "[offline] ..." (malloc'ed)
} offline_expl_t;

// The explanation from the shown proteins: rows shown[0..n) (row_db maps rows to db proteins, -1 =
// accession only) with their scaled activations act[0..n). o: what the prompt shows (go-terms,
// namespace sections) and the unit kind.
void offline_explain(const interp_opts_t *o, const interp_db_t *db, const int64_t *row_db, const int64_t *shown,
                     const float *act, size_t n, offline_expl_t *out);
// The prediction for db protein d (-1 = unknown: b), in [0, 1].
double offline_predict(const offline_expl_t *x, const interp_opts_t *o, const interp_db_t *db, int64_t d);
void offline_expl_free(offline_expl_t *x);

// Upper tail of the hypergeometric distribution: P(X >= k), X ~ draws n from N with K successes.
double offline_hypergeom_sf(uint64_t k, uint64_t N, uint64_t K, uint64_t n);

#endif
