// scorer.h — the scorer stage's logic: FeatureBatches in, per-feature statistics and per-protein
// codes in the feature store (common/featstore.h), exactly once.
//
// The statistics of every feature live in memory (n_features x ~(600 + 16 top_n) bytes, the
// store's copy loaded at open) and are written back, with the codes of the proteins applied and
// the (producer, seq) keys of the batches applied, in one RocksDB write batch per commit. A
// batch whose key is already applied (a replay: resent after a restart, or duplicated by an
// upstream re-send) changes nothing. A process killed between commits loses only uncommitted
// work, which it has not acknowledged anywhere: the upstream re-sends it (scorer_missing).
// Memory does not grow with the number of proteins: per protein only its code (and at residue
// level its residue code: at most (active features) x residue_top entries, chosen from a scratch
// array of the protein's residue entries, bounded by the batch) passes through the write batch
// (bounded by the commit interval); the applied set of a stream is a sorted list
// of seq ranges (one range when batches arrive in order), so its size never depends on a seq's value.
//
// Nothing off the wire is trusted (DESIGN.md): a batch is checked against the stream's bounds
// before it touches any state. Seqs are < SCORER_MAX_SEQ and < the stream's announced batch count
// (FeatureBatch.stream_batches, the reader's, when known); n_features is <= max_features and, once
// the store has a count, equal to it. An EndOfStream must agree with what was seen: its next_seq is
// >= the highest applied seq + 1, <= the announced count and <= SCORER_MAX_SEQ; otherwise it is
// counted and ignored (the stream stays open). A batch at or past a recorded end reopens the
// stream (that end was wrong). At open, a stored end or applied seq outside these bounds (written
// by an older version that trusted the wire) is ignored and counted, so it cannot hang a restart.
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
  uint32_t max_features;   // largest n_features a batch may set (0 = SCORER_MAX_FEATURES_DEFAULT)
  uint32_t shard, shards;  // shards > 1: this store is shard `shard` of a sharded store (featstore.h) and
                           // takes only entries of its feature range (fs_shard_range); others are rejected
  uint32_t residue_top;    // residue level: top residues kept per (protein, active feature) in the residue
                           // codes (0 = none; the stage's --residue-top defaults to 8); fixed when the store
                           // is created (the store's meta residue_top wins afterwards)
} scorer_opts_t;

// Memory is ~(600 + 16 top_n) bytes per feature: 2^20 features = ~1 GB at top_n 20.
#define SCORER_MAX_FEATURES_DEFAULT (1u << 20)
// Hard bound on seqs (and stream lengths): 2^32 batches of one row are more than any stream.
#define SCORER_MAX_SEQ ((uint64_t)1 << 32)

// Why a message was rejected (scorer_counts().rejected_by; scorer_reject_name for metrics).
typedef enum {
  SCORER_REJ_MALFORMED = 0,  // inconsistent CSR, no source_producer, residue batch without pooled codes,
                             // a shard given an entry outside its feature range
  SCORER_REJ_SEQ_RANGE,      // seq >= the announced count or >= SCORER_MAX_SEQ; announced count > SCORER_MAX_SEQ
  SCORER_REJ_STREAM_BATCHES, // announced count differs from the stream's earlier batches
  SCORER_REJ_N_FEATURES,     // n_features 0, over max_features, or not the store's (or level / neuron mode differs)
  SCORER_REJ_VALUES,         // NaN, Inf or negative code
  SCORER_REJ_EOS,            // EndOfStream inconsistent with the stream (not a batch: not in `rejected`)
  SCORER_REJ_N
} scorer_reject_t;
const char *scorer_reject_name(scorer_reject_t r);  // "malformed", "seq_out_of_range", ...

typedef struct scorer scorer_t;

typedef struct scorer_counts {
  uint64_t applied, duplicates, rejected, pending;   // batches
  uint64_t proteins, rows;                           // applied since open
  uint64_t rejected_by[SCORER_REJ_N];                // batches (and EndOfStreams) rejected, per reason
  uint64_t eos_reopened;                             // recorded ends undone by a batch at or past them
  uint64_t ignored_at_open;                          // stored ends / applied seqs out of bounds, ignored
} scorer_counts_t;

int scorer_open(scorer_t **out, const scorer_opts_t *o, ps_err_t *err);
// Commits nothing: call scorer_commit first to keep pending work.
void scorer_close(scorer_t **s);
fs_t *scorer_store(scorer_t *s);
const scorer_counts_t *scorer_counts(const scorer_t *s);
const fs_meta_t *scorer_meta(const scorer_t *s);

// Apply one FeatureBatch of `producer`'s stream (source_producer / source_seq of the batch).
// 1 = applied (pending until the next commit), 0 = already applied (ignored), <0 = rejected:
// malformed, out of the stream's bounds (seq, announced count), inconsistent with the store
// (n_features, level, neuron mode), negative or non-finite values (err names the producer, seq
// and entry; nothing changes). *why (may be NULL) gets the reason of a rejection.
int scorer_apply(scorer_t *s, const Protsae__FeatureBatch *fb, ps_err_t *err);
int scorer_apply_why(scorer_t *s, const Protsae__FeatureBatch *fb, scorer_reject_t *why, ps_err_t *err);
// Record the end of an upstream stream: producer's batches are the seqs [0, next_seq).
// 0 = recorded (or already known), PS_EPROTO = inconsistent with the stream (see above: counted
// as SCORER_REJ_EOS, nothing changes, err says why).
int scorer_note_eos(scorer_t *s, const char *producer, uint64_t next_seq, uint64_t rows, uint64_t proteins,
                    ps_err_t *err);
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
