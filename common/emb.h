// emb.h — streaming sources of embeddings, whatever the file format.
//
// A source yields one record per protein: its id and its rows (1 row at protein level, one row
// per residue at residue level), float32, row-major. Memory is bounded by the largest record
// (plus a format's fixed index, e.g. a safetensors header): no format loads a whole file.
//
// Formats (chosen from opts.format or the path's extension):
//   npy          N x d matrix (float32 / float16, C order, little-endian). Ids from opts.ids_path
//                (one per line) or else opts.fallback_ids (the FASTA order). Residue level:
//                rows + offsets: opts.offsets_path, default "<stem>.offsets.npy" (int64/int32,
//                N+1 entries, first 0, last = rows). A file with offsets is per-residue at any
//                level (protein level pools it).
//   safetensors  one tensor per protein named by its id, [d] or [L, d] (F32/F16/BF16); or, when
//                the file holds a single 2-D tensor, N x d rows with ids as for npy.
//                Keys may carry a layer suffix "ID.layerK" / "ID.layerK.mean"/"ID.layerK.per_residue"
//                (protsae's own and the ESM2 test vectors' layout); opts.layer picks K.
//   h5 / hdf5    bio_embeddings / UniProt layout: one dataset per accession at the root
//                ([d] per protein, [L, d] per residue). Non-numeric or nested objects are skipped.
//   pt           ESM scripts/extract.py output: a directory of ID.pt files (or one .pt file),
//                each {"label", "representations": {layer: [L,d]}, "mean_representations":
//                {layer: [d]}}. opts.layer picks the layer (-1: the highest present).
//
// Protein level asked of a per-residue record: the rows are mean-pooled (BOS/EOS are never in
// stored representations). Records are checked for NaN/Inf (error names file, record, row, col).
#ifndef PS_EMB_H
#define PS_EMB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum { EMB_LEVEL_PROTEIN = 0, EMB_LEVEL_RESIDUE = 1 } emb_level_t;

// Largest embedding dimension accepted (far above any protein language model: ESM2 15B has
// 5120). A larger one is an input fault (a corrupt or hostile header), refused with PS_EDIM
// naming the file before anything is sized by it.
#define EMB_MAX_DIM ((uint32_t)1 << 20)

typedef struct emb_record {
  const char *id;      // borrowed until the next call
  uint64_t index;      // 0-based record index in the source
  uint64_t src_index;  // the record's number in the input file: index, except for sources that
                       // reorder (the native ESM2 source sends by length: its FASTA record number)
  int reordered;       // set by such a source when it fills src_index itself
  uint32_t n_rows;     // 1 at protein level
  uint32_t dim;
  const float *rows;   // n_rows * dim floats, borrowed until the next call
} emb_record_t;

typedef struct emb_source_opts {
  const char *path;          // file (or directory of .pt files)
  const char *format;        // NULL: from the extension ("npy", "safetensors", "h5", "pt")
  emb_level_t level;
  int layer;                 // -1: the only / highest layer present
  const char *ids_path;      // optional, for formats without ids
  const char *offsets_path;  // optional, npy residue level
  const char *const *fallback_ids;  // optional, borrowed: ids in FASTA order
  size_t n_fallback_ids;
  int allow_nonfinite;       // 0 (default): NaN/Inf is an error
} emb_source_opts_t;

typedef struct emb_source emb_source_t;

// Per-format implementation (a vtable; see npy.c etc.). `next` returns 1 with a record, 0 at the
// end, <0 on error (err filled, naming file and position). `skip` (optional) moves past n
// records without decoding them; emb_source_skip falls back to next() when it is NULL.
typedef struct emb_source_vt {
  const char *name;
  int (*next)(emb_source_t *s, emb_record_t *rec, ps_err_t *err);
  int (*skip)(emb_source_t *s, uint64_t n, ps_err_t *err);
  void (*destroy)(emb_source_t *s);
  int64_t (*count)(emb_source_t *s);   // number of records, or -1 when unknown
} emb_source_vt;

struct emb_source {
  const emb_source_vt *vt;
  emb_source_opts_t opts;   // copy; strings borrowed from the caller for the source's life
  uint64_t next_index;
  float *pool;              // scratch for mean pooling
  size_t pool_cap;
};

// Open a source. Returns 0 and *out, or <0 with err filled. Caller destroys.
int emb_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err);
// Options for the common case, a protein-level matrix (one record per protein, the file's
// default layer): path, ids (NULL = the file's own or the FASTA order), everything else default.
emb_source_opts_t emb_source_opts_protein(const char *path, const char *ids_path);
// Next record: 1 = record in *rec, 0 = end of stream, <0 = error.
int emb_source_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err);
// Skip n records (resume from a recorded offset). 0 or <0.
int emb_source_skip(emb_source_t *s, uint64_t n, ps_err_t *err);
int64_t emb_source_count(emb_source_t *s);
void emb_source_destroy(emb_source_t **s);

// Check rows for NaN/Inf; on failure fills err naming `what`, the record, row and column.
int emb_check_finite(const char *what, const emb_record_t *rec, ps_err_t *err);

// Format constructors (each in its own file). They fill *out with a struct that begins with
// `emb_source_t base`.
int npy_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err);
int safetensors_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err);
int h5_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err);
int pt_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err);

// IEEE half / bfloat16 -> float (shared by npy, safetensors, pt).
float emb_half_to_float(uint16_t h);
float emb_bf16_to_float(uint16_t h);
uint16_t emb_float_to_half(float f);

#endif
