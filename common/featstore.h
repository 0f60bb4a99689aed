// featstore.h — the per-feature statistics and per-protein sparse codes of one encoded stream,
// in RocksDB. Written by the scorer (the only writer), read by the CLI (protsae feature(s)),
// the enrichment and the interpreter.
//
// Column families:
//   default  meta (format, n_features, top_n, level, neurons, pooling, totals), upstream
//            EndOfStream counts ("eos/<producer>")
//   feat     u32 big-endian feature id -> fs_feat_t record
//   codes    protein id -> sparse code (u32 nnz, then nnz x (u32 feature, f32 value), LE);
//            at residue level the pooled code
//   applied  producer '\0' u64 big-endian seq -> "" : the upstream batches already applied
//   enrich   u32 big-endian feature id -> its GO enrichment (fs_enrich_feat_t, binary record:
//            fs_enrich_feat_encode), written by the scorer's enrichment when the stream is complete
//   interp   u32 big-endian unit id -> its explanation and score (JSON: fs_interp_t), applied by
//            the scorer from the interpreters' InterpretResults
//   rcodes   residue level: protein id -> its residue code (fs_rcode_t: u32 len, u32 n, then n x
//            (u32 feature, u32 pos, f32 value), LE), written in the same write batch as its code
//   concept  u32 big-endian feature id -> its best residue concept (fs_concept_t, JSON), written
//            by the scorer's concept analysis (stages/scorer/concepts.c) with "concept/summary"
//   default also holds string keys (fs_kv_get / fs_wb_put_kv): "enrich/settings" (the GO settings
//            of the stored enrichment, JSON), "enrich/state" ("done" or the next feature group),
//            "enrich/summary" (JSON), "interp/plan" (JSON: units asked for), "interp/summary" (JSON),
//            "concept/settings" and "concept/summary" (JSON: the residue concept analysis)
//
// This header is the project's one API over a store's results: the CLI (feature(s), report,
// annotate, export), the scorer and the interpreter read statistics, enrichment and
// explanations through it, never through files another command wrote.
// A commit (fs_commit) writes the effects of a group of batches and their applied keys in one
// WriteBatch, so a batch's effects are either all in the store with its applied key or absent.
//
// Order independence: every statistic is a function of the set of values seen, never of their
// order, so any interleaving of the same batches (1..n encoders, restarts, replays) gives the
// same bytes. Sums are kept in 128-bit fixed point (2^-32 resolution: each value, and each
// square, is truncated to a multiple of 2^-32 before adding; exact integer addition), maxima
// are order-free, the histogram has fixed bins, the top list breaks ties on (id, position).
// Values must be finite and >= 0 (SAE codes, ReLU'd neurons). Range: sums exact while the
// total stays below 2^95 (e.g. 2^20 activations of up to 2^37 each).
//
// Memory: a loaded fs_feat_t is ~600 bytes + top_n x (16 + id) bytes; the store keeps nothing
// per protein in memory.
#ifndef PS_FEATSTORE_H
#define PS_FEATSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define FS_FORMAT 1
#define FS_HIST_BINS 64          // bin b holds v in [2^((b-32)/2), 2^((b-31)/2)); 0 and 63 open-ended
#define FS_POS_NONE UINT32_MAX   // top entry at protein level: no residue position

typedef unsigned __int128 fs_u128;

typedef struct fs_top {
  float value;      // protein level: the activation; residue level: the max residue activation
  uint32_t pos;     // residue level: 0-based position of that maximum; else FS_POS_NONE
  char *id;         // protein id (owned)
  uint64_t hash;    // ps_fnv1a64(id), in memory only: the duplicate check compares it before the ids
} fs_top_t;

typedef struct fs_feat {
  // the fields every applied value touches first, together (one or two cache lines)
  fs_u128 sum_fx, sumsq_fx;  // over the active values, fixed point (x 2^32)
  uint64_t n_active;         // proteins (pooled rows) with value > 0
  fs_top_t *top;             // sorted best first: value desc, then id asc, then pos asc
  float max;
  float top_floor;           // in memory only: the last top value once the list is full (an offer
                             // below it cannot enter), -1 before
  uint32_t n_top;
  float res_max;
  uint64_t res_active;       // residue level: residues with value > 0
  uint64_t hist[FS_HIST_BINS];
} fs_feat_t;

typedef struct fs_meta {
  uint32_t format;
  uint32_t n_features;
  uint32_t top_n;
  uint32_t level;            // 0 protein, 1 residue
  uint32_t neurons;          // 1: raw dimensions (baseline), not SAE features
  uint32_t pooling;          // 0 mean, 1 max (residue level)
  uint64_t proteins;         // proteins applied
  uint64_t residues;         // residues applied (residue level)
  uint64_t batches;          // batches applied
  uint64_t nnz;              // non-zero protein-level entries applied
  uint32_t residue_top;      // residue level: top residues kept per (protein, active feature) in
                             // the residue codes (0 = none; a store written before them reads 0)
} fs_meta_t;

typedef struct fs_eos {
  uint64_t batches, rows, proteins;
} fs_eos_t;

// ---- statistics in memory --------------------------------------------------------------------
void fs_feat_init(fs_feat_t *f, uint32_t top_n);   // zeroed, top array of top_n entries
void fs_feat_clear(fs_feat_t *f);                  // frees ids and the top array
// Histogram bin of a value > 0.
int fs_hist_bin(float v);
// Lower edge of bin b (0 for bin 0).
double fs_hist_lower(int b);
// Fixed point (x 2^32) saturates at FS_FX_MAX (about 7.9e28 as a value): a larger value, and a
// sum that would pass it, stay there instead of wrapping, so a huge activation reads as a huge
// (saturated) mean, never as 0.
#define FS_FX_MAX (~(fs_u128)0)
// v >= 0; values >= 2^96 (and NaN) saturate
static inline fs_u128 fs_fx(double v) { return v < 0x1p96 ? (fs_u128)(v * 4294967296.0) : FS_FX_MAX; }
// a + b, saturating at FS_FX_MAX
static inline fs_u128 fs_fx_add(fs_u128 a, fs_u128 b) { return a > FS_FX_MAX - b ? FS_FX_MAX : a + b; }
static inline double fs_fx_double(fs_u128 x) { return (double)x / 4294967296.0; }
// Add one protein-level value v > 0 (count, sums, max, histogram; not the top list).
void fs_feat_add(fs_feat_t *f, float v);
// Offer (value, id, pos) to the top list of capacity top_n. Returns 1 when it entered.
int fs_feat_offer_top(fs_feat_t *f, uint32_t top_n, float value, const char *id, uint32_t pos);
double fs_feat_mean(const fs_feat_t *f);  // over active proteins
double fs_feat_std(const fs_feat_t *f);

// Record bytes (little-endian, versioned). enc: *buf grown with realloc as needed.
size_t fs_feat_encode(const fs_feat_t *f, uint8_t **buf, size_t *cap);
// Decode into f (fs_feat_init'ed with the store's top_n); errors name `what` and the offset.
int fs_feat_decode(fs_feat_t *f, uint32_t top_n, const uint8_t *buf, size_t len, const char *what, ps_err_t *err);

// ---- the store ---------------------------------------------------------------------------------
typedef struct fs fs_t;
typedef struct fs_wb fs_wb_t;

enum { FS_OPEN_READONLY = 0, FS_OPEN_WRITE = 1, FS_OPEN_CREATE = 2 };
// Open path. FS_OPEN_CREATE creates the store if missing (meta written at the first commit);
// FS_OPEN_READONLY works while a writer has it open (sees its last commit when opened).
int fs_open(fs_t **out, const char *path, int mode, ps_err_t *err);
void fs_close(fs_t **fs);
const char *fs_path(const fs_t *fs);
// 1 and *m when the store has meta, 0 when new (empty).
int fs_meta_get(fs_t *fs, fs_meta_t *m, ps_err_t *err);
// Feature record: 1 found, 0 absent (never active), <0 error.
int fs_feat_get(fs_t *fs, uint32_t feature, uint32_t top_n, fs_feat_t *f, ps_err_t *err);
// Every upstream EndOfStream recorded: cb(producer, eos, ctx) per entry, producer order.
int fs_eos_each(fs_t *fs, int (*cb)(const char *producer, const fs_eos_t *e, void *ctx), void *ctx, ps_err_t *err);
// Every applied (producer, seq), in key order.
int fs_applied_each(fs_t *fs, int (*cb)(const char *producer, uint64_t seq, void *ctx), void *ctx, ps_err_t *err);
// Every feature record in id order: cb(feature, f, ctx); f is reused between calls.
int fs_feat_each(fs_t *fs, uint32_t top_n, int (*cb)(uint32_t feature, const fs_feat_t *f, void *ctx), void *ctx,
                 ps_err_t *err);
// Every protein code in id (byte) order. Arrays valid during the call only.
int fs_code_each(fs_t *fs, int (*cb)(const char *id, uint32_t nnz, const uint32_t *idx, const float *val, void *ctx),
                 void *ctx, ps_err_t *err);
// One protein's code: 1 found (arrays malloc'ed, caller frees), 0 absent.
int fs_code_get(fs_t *fs, const char *id, uint32_t *nnz, uint32_t **idx, float **val, ps_err_t *err);

// Write batches: collect, then commit atomically (sync: fsync the WAL; without it a commit
// survives a killed process but not a machine crash).
fs_wb_t *fs_wb_new(void);
void fs_wb_free(fs_wb_t **wb);
void fs_wb_clear(fs_wb_t *wb);
size_t fs_wb_bytes(const fs_wb_t *wb);
void fs_wb_put_meta(fs_t *fs, fs_wb_t *wb, const fs_meta_t *m);
void fs_wb_put_feat(fs_t *fs, fs_wb_t *wb, uint32_t feature, const fs_feat_t *f);
void fs_wb_put_code(fs_t *fs, fs_wb_t *wb, const char *id, uint32_t nnz, const uint32_t *idx, const float *val);
void fs_wb_put_applied(fs_t *fs, fs_wb_t *wb, const char *producer, uint64_t seq);
void fs_wb_put_eos(fs_t *fs, fs_wb_t *wb, const char *producer, const fs_eos_t *e);
// A commit first checks that min_free bytes (+ twice the batch) are free on the store's file
// system (fs_set_min_free; 0 = no check): a full disk is an error naming the store and the sizes,
// before RocksDB meets ENOSPC. After a failed write the store refuses further commits and
// fs_close leaves RocksDB alone (what was committed is intact, as after a kill).
int fs_commit(fs_t *fs, fs_wb_t *wb, int sync, ps_err_t *err);
void fs_set_min_free(fs_t *fs, unsigned long long bytes);

// Feature-major view of every protein's code (CSC), for enrichment and interpretation:
// feature f is active on proteins rows[colptr[f] .. colptr[f+1]) (ascending) with vals.
// Proteins are numbered in id (byte) order. Memory: O(proteins + non-zeros), two passes.
typedef struct fs_csc {
  size_t n_proteins;
  char **ids;              // n_proteins, owned
  uint32_t n_features;
  uint64_t *colptr;        // n_features + 1
  uint32_t *rows;
  float *vals;
} fs_csc_t;
int fs_load_csc(fs_t *fs, fs_csc_t *out, ps_err_t *err);
void fs_csc_free(fs_csc_t *c);

// ---- residue codes (family "rcodes") ---------------------------------------------------------------
// Residue codes (residue level only): per protein, for each feature active in it, its top R residues
// (R = the store's meta residue_top, default 8, scorer flag --residue-top; 0 = none kept) as
// entries sorted by (feature, pos); len = the protein's residue count.
// Bounded: a protein keeps at most (features active at one of its residues) x R entries, the R
// largest values of each feature, ties to the lower position; residues beyond a feature's top R
// in a protein are not kept (a reader counts them as inactive).
typedef struct fs_rcode { uint32_t len, n; const uint32_t *feat, *pos; const float *val; } fs_rcode_t;
int fs_rcode_get(fs_t *fs, const char *id, fs_rcode_t *rc, void **owned, ps_err_t *err); // 1 found, 0 absent; free(*owned)
// Every protein's residue code in id (byte) order; rc valid during the call only.
int fs_rcode_each(fs_t *fs, int (*cb)(const char *id, const fs_rcode_t *rc, void *ctx), void *ctx, ps_err_t *err);
// Put a protein's residue code (entries sorted by (feature, pos), the caller's order is kept).
void fs_wb_put_rcode(fs_t *fs, fs_wb_t *wb, const char *id, const fs_rcode_t *rc);
// The stored bytes and back (fuzzed); errors name what and the offset. dec: arrays into *owned.
size_t fs_rcode_encode(const fs_rcode_t *rc, uint8_t **buf, size_t *cap);
int fs_rcode_decode(const uint8_t *b, size_t n, fs_rcode_t *rc, void **owned, const char *what, ps_err_t *err);

// ---- residue concepts (family "concept") ---------------------------------------------------------
// A feature's best (concept, threshold) by InterPLM's F1 (common/concept/concept.h), written by the
// scorer's concept analysis; "concept/summary" (JSON) and "concept/settings" in the string keys.
typedef struct fs_concept {
  uint32_t feature;
  char *concept;             // owned
  double threshold, precision, recall, f1;
  uint64_t tp, n_pred;       // residues at or over the threshold that are in the concept / all
  uint32_t found, instances; // annotation instances with a residue at or over the threshold / all
} fs_concept_t;
void fs_concept_free(fs_concept_t *c);
char *fs_concept_to_json(const fs_concept_t *c);  // caller frees
int fs_concept_from_json(fs_concept_t *c, uint32_t feature, const char *json, size_t len, const char *what, ps_err_t *err);
void fs_wb_put_concept(fs_t *fs, fs_wb_t *wb, const fs_concept_t *c);
// Drop every concept record (a new run of the analysis).
void fs_wb_clear_concept(fs_t *fs, fs_wb_t *wb);
// 1 found (c filled, free with fs_concept_free), 0 absent, <0.
int fs_concept_get(fs_t *fs, uint32_t feature, fs_concept_t *c, ps_err_t *err);
// Every record in feature order; c valid during the call only.
int fs_concept_each(fs_t *fs, int (*cb)(const fs_concept_t *c, void *ctx), void *ctx, ps_err_t *err);

// ---- string keys of the default family ----------------------------------------------------------
// 1 and *val (NUL-terminated, caller frees) when present, 0 when absent.
int fs_kv_get(fs_t *fs, const char *key, char **val, size_t *len, ps_err_t *err);
void fs_wb_put_kv(fs_t *fs, fs_wb_t *wb, const char *key, const char *val, size_t len);
void fs_wb_del_kv(fs_t *fs, fs_wb_t *wb, const char *key);

// ---- GO enrichment results (family "enrich") ------------------------------------------------------
// One significant enriched term of a feature (enrich.h's enrich_hit_t with the term resolved, so a
// reader needs no ontology).
typedef struct fs_term_hit {
  char go_id[16];            // "GO:0005515"
  int ns;                    // 0 biological_process, 1 molecular_function, 2 cellular_component
  int depth;                 // in the ontology of the run (enrich/settings)
  char *name;                // owned
  uint32_t k, n, K, N;       // study hits, study size, population hits, population
  double fold, p, ln_p, p_bonf, q_bh;
  float f1, f1_threshold;
} fs_term_hit_t;

typedef struct fs_enrich_feat {
  int64_t n_active, n_study; // proteins where active (analysed), of them in the population
  float max_act;             // max activation over the analysed proteins
  uint32_t n_touched;        // tested terms with >= 1 study protein
  char best_f1_go[16];       // significant term with the best F1 ("" when none)
  float best_f1, best_f1_threshold;
  uint32_t n_hits;
  fs_term_hit_t *hits;       // ascending p (owned)
} fs_enrich_feat_t;

void fs_enrich_feat_free(fs_enrich_feat_t *e);
// The stored form (little-endian, versioned; ~70 bytes + the name a term): encode into *buf
// (grown with realloc) and back; errors name `what` and the offset. No text formatting: 10,240
// features x ~130 terms encode in ~0.2 s.
size_t fs_enrich_feat_encode(const fs_enrich_feat_t *e, uint8_t **buf, size_t *cap);
int fs_enrich_feat_decode(fs_enrich_feat_t *e, const uint8_t *buf, size_t len, const char *what, ps_err_t *err);
// The text form (dump, export): JSON (caller frees) and back; errors name `what`.
char *fs_enrich_feat_to_json(const fs_enrich_feat_t *e);
int fs_enrich_feat_from_json(fs_enrich_feat_t *e, const char *json, size_t len, const char *what, ps_err_t *err);
void fs_wb_put_enrich(fs_t *fs, fs_wb_t *wb, uint32_t feature, const fs_enrich_feat_t *e);
// Drop every enrichment record (a new run with other settings).
void fs_wb_clear_enrich(fs_t *fs, fs_wb_t *wb);
// 1 found (e filled, free with fs_enrich_feat_free), 0 absent (no significant data / not run), <0.
int fs_enrich_get(fs_t *fs, uint32_t feature, fs_enrich_feat_t *e, ps_err_t *err);
// Every record in feature order; e is valid during the call only.
int fs_enrich_each(fs_t *fs, int (*cb)(uint32_t feature, const fs_enrich_feat_t *e, void *ctx), void *ctx,
                   ps_err_t *err);
// 1 when the stored enrichment is complete ("enrich/state" = "done"), 0 otherwise.
int fs_enrich_done(fs_t *fs, ps_err_t *err);

// ---- explanations (family "interp") ----------------------------------------------------------------
// The stored record is a JSON object (the line `protsae export` writes); the fields readers use:
typedef struct fs_interp {
  uint32_t unit;
  char *explanation;         // NULL when the unit failed for good
  double r, p;               // Pearson r of predicted vs true scaled activations (NaN when not scored)
  int scored, constant_pred;
  char *failure;             // "" or the last failure
  char *mode;                // "offline", "anthropic:MODEL", ...
  uint32_t attempts;
} fs_interp_t;
void fs_interp_free(fs_interp_t *x);
void fs_wb_put_interp(fs_t *fs, fs_wb_t *wb, uint32_t unit, const char *json, size_t len);
// 1 found (x filled; *json too when json != NULL, caller frees), 0 absent, <0.
int fs_interp_get(fs_t *fs, uint32_t unit, fs_interp_t *x, char **json, ps_err_t *err);
// Every record in unit order; x and json valid during the call only.
int fs_interp_each(fs_t *fs, int (*cb)(uint32_t unit, const fs_interp_t *x, const char *json, void *ctx), void *ctx,
                   ps_err_t *err);

// ---- sharded stores ------------------------------------------------------------------------------
// A store may be split by feature range over N scorer processes (stages/scorer, --shards): the
// directory DIR then holds
//   DIR/shards     the layout: "protsae-shards 1\nshards N\n" (written once; a store keeps its N)
//   DIR/shard-K    K < N, a feature store as above holding the features [lo_K, hi_K)
//                  (fs_shard_range) and every protein's code restricted to them; every shard
//                  applies every batch, so each holds every protein, applied key and stream end
//   DIR/analysis   the enrichment, explanations, concepts and string keys, written by the front scorer
// fs_open(DIR, ...) opens all of it as one store (fs_open_sharded): meta is shard 0's with nnz
// summed, features, codes and residue codes come from the shards (a code is its shards' parts
// concatenated: ranges ascend, so ids stay ascending), stream ends and applied keys from shard 0, everything
// else (string keys, enrich, interp; writes) from DIR/analysis. So the merged store reads, and
// dumps, byte for byte as one scorer's store of the same stream. Shards are opened read-only (at
// their last commit). A missing analysis part reads as empty (read-only opens).
#define FS_MAX_SHARDS 64
void fs_shard_range(uint32_t k, uint32_t n, uint32_t n_features, uint32_t *lo, uint32_t *hi);
void fs_shard_path(const char *dir, uint32_t k, char *out, size_t cap);
// 1 and *n when dir is a sharded store, 0 when not, <0 (unreadable, malformed layout file).
int fs_shards_count(const char *dir, uint32_t *n, ps_err_t *err);
// Create dir and its layout file for n shards, or check an existing one says n.
int fs_shards_init(const char *dir, uint32_t n, ps_err_t *err);
// Open a sharded store: DIR/analysis in mode (FS_OPEN_CREATE creates it), each shard read-only.
int fs_open_sharded(fs_t **out, const char *dir, int mode, ps_err_t *err);
// Streams of a store whose end is recorded (*known) and whose every batch is applied (*complete).
int fs_streams_complete(fs_t *fs, size_t *complete, size_t *known, ps_err_t *err);

// Text dump of the whole store (meta, eos, features, codes, residue codes, enrichment, explanations,
// concepts, string keys) — byte-identical for equal content.
// Used to compare runs; values printed exactly (%a for floats, hex for fixed-point sums).
int fs_dump(fs_t *fs, FILE *out, ps_err_t *err);

#endif
