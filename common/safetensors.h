// safetensors.h — the safetensors format (Hugging Face): a generic reader (for embeddings files
// and model weights), an embedding source (emb.h) and a streaming writer.
//
// File: u64 little-endian N, then N bytes of JSON: {"NAME": {"dtype": "F32", "shape": [2, 3],
// "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value", ...}}, then the data
// buffer; offsets are relative to the buffer (byte 8 + N), little-endian, C order.
//
// Reader (st_open): checks at open, each error naming the file and the tensor (and the byte
// offset where that helps): 8 <= file size, N <= ST_MAX_HEADER (100 MB) and within the file,
// the header is a JSON object without duplicate keys, every tensor has a known dtype, a shape of
// non-negative integers, data_offsets [begin, end] with begin <= end <= data size and
// end - begin = elements x element size (no overflow), and no two tensors overlap. Gaps in the
// buffer are allowed. __metadata__ must map strings to strings.
// Memory: the tensor index (names, shapes, offsets; about 100 bytes a tensor plus the names)
// and, during st_open only, the header text and its JSON tree. Data is never loaded whole:
// st_read_* use pread at the tensor's offset, converting through a 64 KiB buffer.
// An st_file_t may be read from several threads at once (pread, no shared position) as long as
// none closes it.
//
// Embedding source (safetensors_source_open, declared in emb.h). Layouts, checked in order:
//  (b) layered: any tensor named "ID.layerK", "ID.layerK.mean" or "ID.layerK.per_residue".
//      K = opts.layer, or the highest K present when opts.layer is -1. Residue level reads
//      "ID.layerK.per_residue" (or a 2-D "ID.layerK"); protein level reads "ID.layerK.mean"
//      (or a 1-D "ID.layerK") when present, else pools the per-residue tensor. An ID that has
//      layer tensors but none usable for K is an error. This is protsae's own layout and that
//      of the ESM2 test vectors (expected.safetensors).
//  (c) matrix: at protein level, exactly one float tensor, 2-D (N x d), whose name is not one
//      of opts.fallback_ids: each row is a record, ids as for npy (npy_ids_open: ids_path,
//      else fallback_ids, else "row<i>"). Rows are read one at a time.
//  (a) per protein: every other float tensor (F32/F16/BF16/F64) is one protein named by its
//      key, [d] (protein level only) or [L, d].
//  Skipped (counted, see safetensors_source_n_skipped): the other layers of (b), tensors of
//  integer / bool dtypes, 0-D tensors, and keys ending in .tokens, .logits, .contacts,
//  .attentions. Errors at open: a rank > 2 tensor, a dimension of 0 or one unlike the first
//  record's, a 1-D tensor at residue level, a record larger than ST_MAX_RECORD_FLOATS.
//  Records come in the order of their data offsets, so reading is sequential. Memory: the
//  index above + one record.
//
// Writer (st_writer_*): tensors are streamed into a temporary data file beside the output;
// close writes the header (keys in the order added, padded with spaces to a multiple of 8) and
// copies the data into path.tmp, fsyncs it and renames it to path. Memory: the index (names and
// shapes) + a 64 KiB buffer; never the data.
#ifndef PS_SAFETENSORS_H
#define PS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "emb.h"
#include "err.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define ST_MAX_DIMS 8
// Largest record safetensors_source_open returns, in floats (1 GiB of float32).
#define ST_MAX_RECORD_FLOATS ((uint64_t)1 << 28)

typedef enum {
  ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_I32, ST_U32, ST_I64, ST_U64,
  ST_F16, ST_BF16, ST_F32, ST_F64, ST_F8_E4M3, ST_F8_E5M2,
} st_dtype_t;

// "F32", "BF16", ... and back (-1 when unknown).
const char *st_dtype_name(st_dtype_t t);
int st_dtype_from_name(const char *s);
size_t st_dtype_size(st_dtype_t t);
// 1 for F32, F16, BF16 and F64 (the dtypes read as float), else 0.
int st_dtype_is_float(st_dtype_t t);

typedef struct st_tensor_info {
  const char *name;        // owned by the st_file_t, valid until st_close
  st_dtype_t dtype;
  int ndim;                // 0 .. ST_MAX_DIMS
  uint64_t shape[ST_MAX_DIMS];
  uint64_t n_elems;        // product of shape (1 for 0-D)
  uint64_t offset;         // absolute byte offset in the file
  uint64_t nbytes;
} st_tensor_info_t;

typedef struct st_file st_file_t;

// Open and validate (see above). Caller closes.
int st_open(st_file_t **out, const char *path, ps_err_t *err);
void st_close(st_file_t **f);  // accepts NULL
const char *st_path(const st_file_t *f);

// Tensors in the order of their data offsets (ties: header order).
size_t st_n_tensors(const st_file_t *f);
const st_tensor_info_t *st_tensor_info(const st_file_t *f, size_t i);  // NULL when out of range
const st_tensor_info_t *st_tensor_find(const st_file_t *f, const char *name);  // NULL when absent

// __metadata__: value or NULL; borrowed until st_close.
const char *st_metadata(const st_file_t *f, const char *key);
size_t st_n_metadata(const st_file_t *f);
// i-th entry (keys in header order); 0 or PS_ENOTFOUND.
int st_metadata_at(const st_file_t *f, size_t i, const char **key, const char **value);

// Read the whole tensor `name` as float: count must equal its number of elements. F32, F16,
// BF16, F64 and the integer / bool dtypes are converted (large int64 values lose precision).
int st_read_f32(st_file_t *f, const char *name, float *out, uint64_t count, ps_err_t *err);
// Elements [first, first + count) of tensor t (flat, C order) as float.
int st_read_range_f32(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t count, float *out,
                      ps_err_t *err);
// Same, with ctx (e.g. "record 7") named in the error messages; ctx may be NULL.
int st_read_range_f32_ctx(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t count, float *out,
                          const char *ctx, ps_err_t *err);
// Raw little-endian bytes [first, first + len) of tensor t.
int st_read_raw(st_file_t *f, const st_tensor_info_t *t, uint64_t first, uint64_t len, void *out, ps_err_t *err);

// Tensors of a safetensors embedding source that are not records (0 for other sources).
uint64_t safetensors_source_n_skipped(const emb_source_t *s);
// The layer K the source reads in the layered layout, -1 otherwise.
int safetensors_source_layer(const emb_source_t *s);

// ---- writer ------------------------------------------------------------------------------
typedef struct st_writer st_writer_t;

// Create the temporary data file (path + ".data.tmp"). Caller closes or aborts.
int st_writer_open(st_writer_t **out, const char *path, ps_err_t *err);
// __metadata__ entry (key and value copied). A repeated key replaces the value.
int st_writer_set_metadata(st_writer_t *w, const char *key, const char *value, ps_err_t *err);
// A whole tensor of float data stored as dtype (ST_F32, ST_F16 or ST_BF16, converted with
// round-to-nearest-even). shape: ndim entries (ndim 0 = scalar). data: product(shape) floats,
// borrowed for the call. Empty names, "__metadata__", invalid UTF-8 and duplicates are errors.
int st_writer_add_f32(st_writer_t *w, const char *name, st_dtype_t dtype, const uint64_t *shape, int ndim,
                      const float *data, ps_err_t *err);
// The same in pieces, for tensors too large to hold: begin, then append exactly product(shape)
// floats over any number of calls, then end.
int st_writer_begin(st_writer_t *w, const char *name, st_dtype_t dtype, const uint64_t *shape, int ndim, ps_err_t *err);
int st_writer_append_f32(st_writer_t *w, const float *data, uint64_t count, ps_err_t *err);
int st_writer_end(st_writer_t *w, ps_err_t *err);
// int64 tensor (e.g. token ids, offsets).
int st_writer_add_i64(st_writer_t *w, const char *name, const uint64_t *shape, int ndim, const int64_t *data,
                      ps_err_t *err);
uint64_t st_writer_count(const st_writer_t *w);
// Finish (see above). Frees w and sets *w to NULL, also on error (temp files removed).
// Accepts NULL.
int st_writer_close(st_writer_t **w, ps_err_t *err);
// Abandon: remove the temp files, free w, set *w to NULL. Accepts NULL.
void st_writer_abort(st_writer_t **w);

#endif
