// npy.h — NumPy .npy files: header parsing, a streaming embedding source (see emb.h) and a
// streaming writer. Memory: one row (reader) / nothing beyond the caller's rows (writer); never
// the whole file.
#ifndef PS_NPY_H
#define PS_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef enum { NPY_F32, NPY_F16, NPY_F64, NPY_I64, NPY_I32 } npy_dtype_t;

typedef struct npy_header {
  npy_dtype_t dtype;
  size_t esize;         // bytes per element
  int ndim;             // 1 or 2
  uint64_t shape[2];    // shape[1] = 1 when ndim == 1
  uint64_t data_offset; // bytes before the data
} npy_header_t;

// Parse the header at the start of f (positions f after it). `name` is used in messages.
// Accepts versions 1-3, little-endian (or '|') f4/f2/f8/i8/i4, C order, 1-D or 2-D.
int npy_read_header(FILE *f, const char *name, npy_header_t *h, ps_err_t *err);
// Same from memory (fuzzing): buf holds at least the header.
int npy_parse_header(const uint8_t *buf, size_t len, const char *name, npy_header_t *h, ps_err_t *err);

// Read a whole 1-D integer array (offsets files: small). *out is malloc'ed; caller frees.
int npy_read_i64_vector(const char *path, int64_t **out, uint64_t *n, ps_err_t *err);

// ---- writer ------------------------------------------------------------------------------
// Rows are appended; close rewrites the header with the final row count. The file is written
// as path.tmp and renamed into place by npy_writer_close (after fsync): a crash never leaves a
// half-written file under the final name.
typedef struct npy_writer npy_writer_t;
// ncols = 0 writes a 1-D array. dtype: NPY_F32, NPY_F16 (converted from float), NPY_I64.
int npy_writer_open(npy_writer_t **out, const char *path, npy_dtype_t dtype, uint64_t ncols, ps_err_t *err);
// Append n rows of ncols floats (F32/F16 writers).
int npy_writer_append_f32(npy_writer_t *w, const float *rows, uint64_t n, ps_err_t *err);
// Append n int64 values (I64 writer, 1-D or n rows of ncols).
int npy_writer_append_i64(npy_writer_t *w, const int64_t *vals, uint64_t n, ps_err_t *err);
// Finish: header, fsync, rename. Frees w (also on error). 0 or <0.
int npy_writer_close(npy_writer_t **w, ps_err_t *err);
// Abandon: remove the temp file, free w.
void npy_writer_abort(npy_writer_t **w);

#endif
