// stage.h — the annotation sink's staging of the proteomes in flight: its records in the
// annotation store's private "stage" family (common/annstore.h), so a staged batch, a recorded
// end and the removal of a finished proteome's staging commit in the store's write batches.
//
// Layout (K = the proteome key "NAME.HASH"; numbers big-endian in keys, so keys sort by number;
// little-endian in values):
//   'k' K              -> head: f64 first-seen wall time, then the producer (the reader)
//   's' K 0x00 u64 seq -> ""  : batch seq of K is staged (the dedup key)
//   'r' K 0x00 u64 idx -> one protein at FASTA record idx: u32 id length, id, u32 nnz,
//                         nnz x (u32 feature, f32 activation)
//   'e' K              -> its EndOfStream: u64 batches, proteins, skipped, residues, then the reason
// Iterating 'r' K 0x00 gives K's proteins in FASTA order with nothing of them in memory.
#ifndef PS_ANNOTATOR_STAGE_H
#define PS_ANNOTATOR_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "annstore.h"
#include "err.h"

typedef struct stage_eos {
  uint64_t batches, proteins, skipped, residues;
  char reason[512];
} stage_eos_t;

// Writes (into wb; the caller commits).
void stage_put_head(as_t *as, as_wb_t *wb, const char *key, double t_first, const char *producer);
void stage_put_seq(as_t *as, as_wb_t *wb, const char *key, uint64_t seq);
void stage_put_protein(as_t *as, as_wb_t *wb, const char *key, uint64_t index, const char *id, uint32_t nnz,
                       const uint32_t *idx, const float *val);
void stage_put_eos(as_t *as, as_wb_t *wb, const char *key, const stage_eos_t *e);
// Every staging record of K.
void stage_drop(as_t *as, as_wb_t *wb, const char *key);

// Reads. 1 = staged, 0 = not, <0.
int stage_has_seq(as_t *as, const char *key, uint64_t seq, ps_err_t *err);
// Every head: cb(key, t_first, producer, ctx) in key order.
int stage_heads_each(as_t *as, int (*cb)(const char *key, double t_first, const char *producer, void *ctx), void *ctx,
                     ps_err_t *err);
// 1 and *e when K's end is recorded, 0 when not.
int stage_get_eos(as_t *as, const char *key, stage_eos_t *e, ps_err_t *err);
// K's staged seqs, ascending.
int stage_seqs_each(as_t *as, const char *key, int (*cb)(uint64_t seq, void *ctx), void *ctx, ps_err_t *err);
// K's proteins in FASTA order (index ascending); arrays valid during the call. cb returns 0 to go
// on, < 0 to stop (returned). A malformed record is an error naming the store, K and the index.
int stage_proteins_each(as_t *as, const char *key,
                        int (*cb)(uint64_t index, const char *id, uint32_t nnz, const uint32_t *idx, const float *val,
                                  void *ctx),
                        void *ctx, ps_err_t *err);

#endif
