// rbatch_fixture.h — a residue-level FeatureBatch over arrays a test fills (the residue CSR, the
// pooled CSR, the protein ids and residue offsets): every field of the message set in one place.
// Header-only; the arrays are borrowed by the batch.
#ifndef PS_TEST_RBATCH_FIXTURE_H
#define PS_TEST_RBATCH_FIXTURE_H

#include <stdint.h>

#include "protsae.pb-c.h"

typedef struct rb_arrays {
  uint32_t n_prot, n_features;
  char **ids;
  uint32_t *offsets;                    // n_prot + 1: residue rows of each protein
  uint32_t *indptr, *indices;           // offsets[n_prot] rows
  float *values;
  uint32_t *pindptr, *pindices;         // n_prot rows (pooled: max)
  float *pvalues;
} rb_arrays_t;

// Batch seq of a stream of stream_batches, from reader-0.
static inline void rb_batch(Protsae__FeatureBatch *f, const rb_arrays_t *a, uint64_t seq, uint64_t stream_batches) {
  Protsae__FeatureBatch init = PROTSAE__FEATURE_BATCH__INIT;
  *f = init;
  uint32_t rows = a->offsets[a->n_prot], nnz = a->indptr[rows], pn = a->pindptr[a->n_prot];
  f->level = PROTSAE__LEVEL__LEVEL_RESIDUE, f->pooling = PROTSAE__POOLING__POOLING_MAX;
  f->n_residue_offsets = a->n_prot + 1, f->residue_offsets = a->offsets;
  f->n_pooled_indptr = a->n_prot + 1, f->pooled_indptr = a->pindptr;
  f->n_pooled_indices = f->n_pooled_values = pn, f->pooled_indices = a->pindices, f->pooled_values = a->pvalues;
  f->n_protein_ids = a->n_prot, f->protein_ids = a->ids, f->n_rows = rows, f->n_features = a->n_features;
  f->n_indptr = rows + 1, f->indptr = a->indptr, f->n_indices = f->n_values = nnz;
  f->indices = a->indices, f->values = a->values;
  f->source_producer = "reader-0", f->source_seq = seq, f->stream_batches = stream_batches;
}

#endif
