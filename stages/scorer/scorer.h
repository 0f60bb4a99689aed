// scorer.h — the scorer stage's logic: FeatureBatches in, per-feature statistics and per-protein
// codes in the feature store (common/featstore.h), exactly once.
//
// The statistics of every feature live in memory (n_features x ~(600 + 16 top_n) bytes, the
// store's copy loaded at open) and are written back, with the codes of the proteins applied and
// the (producer, seq) keys of the batches applied, in one RocksDB write batch per commit. A
// batch whose key is already applied (a replay: resent after a restart, or duplicated by an
// upstream re-send) changes nothing. A process killed between commits loses only uncommitted
// work, which it has not acknowledged anywhere: the upstream re-sends it (scorer_missing).
// Memory does not grow with the number of proteins: per protein only its code passes through
// the write batch (bounded by the commit interval); the applied set is one bit per batch.
#ifndef PS_SCORER_H
#define PS_SCORER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "featstore.h"
#include "protsae.pb-c.h"

typedef struct scorer_opts {
  const char *db_path;
  uint32_t top_n;          // top proteins kept per feature (default 20); fixed when the store is created
  int sync;                // fsync the WAL at each commit
} scorer_opts_t;

typedef struct scorer scorer_t;

typedef struct scorer_counts {
  uint64_t applied, duplicates, rejected, pending;   // batches
  uint64_t proteins, rows;                           // applied since open
} scorer_counts_t;

int scorer_open(scorer_t **out, const scorer_opts_t *o, ps_err_t *err);
// Commits nothing: call scorer_commit first to keep pending work.
void scorer_close(scorer_t **s);
fs_t *scorer_store(scorer_t *s);
const scorer_counts_t *scorer_counts(const scorer_t *s);
const fs_meta_t *scorer_meta(const scorer_t *s);

// Apply one FeatureBatch of `producer`'s stream (source_producer / source_seq of the batch).
// 1 = applied (pending until the next commit), 0 = already applied (ignored), <0 = rejected:
// malformed, inconsistent with the store (n_features, level, neuron mode), negative or non-finite
// values (err names the producer, seq and entry; nothing changes).
int scorer_apply(scorer_t *s, const Protsae__FeatureBatch *fb, ps_err_t *err);
// Record the end of an upstream stream: producer's batches are the seqs [0, next_seq).
void scorer_note_eos(scorer_t *s, const char *producer, uint64_t next_seq, uint64_t rows, uint64_t proteins);
// Write the pending effects atomically.
int scorer_commit(scorer_t *s, ps_err_t *err);

// Completion: number of upstream streams whose end is known and whose every batch is applied.
size_t scorer_streams_complete(const scorer_t *s);
size_t scorer_streams_known(const scorer_t *s);
// Batches in the streams whose end is known (the sum of their seq counts).
uint64_t scorer_stream_batches(const scorer_t *s);
// Missing seqs of the i-th known stream (i < scorer_streams_known): writes up to cap of them;
// returns the total missing. *producer is borrowed.
size_t scorer_missing(const scorer_t *s, size_t i, const char **producer, uint64_t *seqs, size_t cap);

#endif
