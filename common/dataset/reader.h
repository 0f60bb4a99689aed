// reader.h — the embedding dataset: embeddings (+ FASTA) in, batches out.
//
// The dataset engine (common/dataset): turns embedding files (any emb.h format) or a FASTA run
// through the native ESM2 engine (common/esm2) into deterministic, resumable batches of rows with
// a train / validation split by id (ps_id_in_fraction, hash.h: the same split as the demo's).
// Users: the reader stage (stages/reader streams the batches), the trainer's file mode
// (stages/trainer reads them in-process), the unit tests and bench_reader. The API keeps the
// reader_ prefix it had when it lived in the reader stage.
//
// Streams records from an emb_source (any format), matches ids against the FASTA (ids must be
// present; at residue level the number of rows must equal the sequence length), assigns each
// protein to the train or validation split by a seeded hash of its id (independent of order),
// and cuts batches that close once they hold >= batch_rows rows (exactly batch_rows at protein
// level; a protein is never split across batches, so a residue-level batch may exceed
// batch_rows by less than one protein's rows). Several epochs re-read the source. Transcoders: a
// second source gives the paired target rows (same ids, same row counts).
//
// Memory: one batch (batch_rows x (dim + target_dim) floats) + one record per source + the
// FASTA index (ids and lengths: O(number of proteins), ~60 bytes each).
// Determinism: batch boundaries depend only on the data and options, so a reader resumed at a
// recorded reader_pos_t emits exactly the batches (and seq numbers) an uninterrupted one would.
#ifndef PS_READER_H
#define PS_READER_H

#include <stdint.h>

#include "emb.h"
#include "err.h"
#include "esm2.h"

typedef enum { READER_SPLIT_ALL = 0, READER_SPLIT_TRAIN, READER_SPLIT_VAL } reader_split_t;

typedef struct reader_opts {
  emb_source_opts_t src;       // embeddings (path, format, level, layer, ids, offsets)
  const char *fasta_path;      // optional; when set, ids are checked against it
  const char *target_path;     // optional paired target (transcoders)
  const char *target_ids_path; // its ids (npy / single-matrix safetensors): NULL = the input's (src.ids_path)
  const char *target_format;
  int target_layer;
  uint32_t batch_rows;         // rows per batch (default 1024)
  double val_fraction;         // share of proteins in the validation split
  uint64_t seed;               // split seed
  reader_split_t split;        // which proteins to emit
  uint32_t epochs;             // passes over the data (>= 1)
  int skip_nonfinite;          // 1: skip and count records with NaN/Inf instead of failing
  uint64_t max_records;        // 0 = all; per epoch
  // Records left out by id (fasta_check.h's skip_id): n_skip_ids ids, any order, copied at
  // reader_new; NULL = none. Their records are read and dropped (counted in skipped_ids; the
  // position still counts them, so resuming is unchanged); their FASTA records are neither
  // length-checked nor refused as duplicates, but keep their place in the FASTA order (rows of an
  // id-less file stay aligned). Native ESM2: give esm2.skip_index too (borrowed for the
  // reader's life: each epoch runs a new runner), so the model never computes them.
  const char *const *skip_ids;
  size_t n_skip_ids;
  // Native ESM2 (esm2_dir set): the embeddings are computed from fasta_path by the checkpoint in
  // esm2_dir instead of read from src.path; esm2.req.layers[0] is the layer sent, a second
  // layer (esm2.req.layers[1]) becomes the paired target (transcoders). src.level applies; the
  // FASTA is the source, so ids are not matched against it (records come length-sorted within
  // windows, see esm2.h; a truncated sequence has max_residues rows). Every epoch reruns the model.
  // esm2_layers: "L" or "L,L+1" (esm2_parse_layers syntax), parsed once the model is loaded;
  // esm2.req.layers may be given instead.
  const char *esm2_dir;
  const char *esm2_layers;
  esm2_run_opts_t esm2;
  // A model loaded once by the caller (a service annotating many proteomes), borrowed instead of
  // loading esm2_dir: it must outlive the reader.
  const esm2_model_t *esm2_model;
} reader_opts_t;

typedef struct reader_pos {
  uint32_t epoch;
  uint64_t record;             // next record index in the source
  uint64_t seq;                // seq number of the next batch
} reader_pos_t;

typedef struct reader_batch {
  uint32_t n_proteins;
  char **ids;                  // n_proteins, owned by the reader
  uint8_t *is_val;             // n_proteins
  uint64_t *src_index;         // n_proteins: each protein's record number in the source (the
                               // native ESM2 source: its FASTA record number; it sends by length)
  uint32_t n_rows, dim, target_dim;
  float *rows;                 // n_rows x dim
  float *target;               // n_rows x target_dim, or NULL
  uint32_t *offsets;           // n_proteins + 1 (residue level)
  uint32_t epoch;
  uint64_t first_record;
  uint64_t seq;
  reader_pos_t next;           // position after this batch (for the state file)
} reader_batch_t;

typedef struct reader_counts {
  uint64_t records, rows, batches, skipped_nonfinite, skipped_split;
  uint64_t skipped_ids;        // records left out by skip_ids
} reader_counts_t;

typedef struct reader reader_t;

int reader_new(reader_t **out, const reader_opts_t *opts, ps_err_t *err);
void reader_destroy(reader_t **r);
// Continue from a recorded position (before the first reader_next_batch).
int reader_seek(reader_t *r, const reader_pos_t *pos, ps_err_t *err);
// Fill *b (borrowed until the next call): 1 = batch, 0 = all epochs done, <0 = error.
int reader_next_batch(reader_t *r, reader_batch_t *b, ps_err_t *err);
const reader_counts_t *reader_counts(const reader_t *r);
// Total records per epoch when the source knows it, else -1.
int64_t reader_records_per_epoch(const reader_t *r);
// Native ESM2: the layer sent (first of esm2_layers), -1 otherwise.
int reader_esm2_layer(const reader_t *r);
// Native ESM2: tokens run through the model so far (BOS/EOS included); 0 otherwise.
uint64_t reader_esm2_tokens(const reader_t *r);
// Split assignment: 1 when `id` is in the validation split (ps_id_in_fraction of hash.h).
int reader_is_validation(const char *id, uint64_t seed, double val_fraction);

// State file: "epoch record seq\n", written to path.tmp then renamed (atomic under kill -9).
int reader_pos_save(const char *path, const reader_pos_t *pos, ps_err_t *err);
// 1 = loaded, 0 = no file, <0 = malformed (err names the file).
int reader_pos_load(const char *path, reader_pos_t *pos, ps_err_t *err);

#endif
