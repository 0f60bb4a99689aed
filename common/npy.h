// npy.h — NumPy .npy files: header parsing, a streaming embedding source (see emb.h), a
// streaming writer, and the id list used by formats that store no ids (npy, single-matrix
// safetensors).
//
// Format: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/v3), then a Python
// dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, d), } padded with spaces
// and '\n', then the data. Versions 1-3 are read; dtypes f4, f2, f8, i8, i4, little-endian
// ('<', '|' or '='); C order only (Fortran order -> PS_EUNSUPP); 1-D or 2-D.
//
// Memory bounds:
//  - reader (npy_source_open): one record's rows as float32 (one row at protein level; one
//    protein's residues at residue level, capped at NPY_MAX_RECORD_FLOATS) + a 64 KiB conversion
//    buffer + the offsets array (N+1 int64, 8 bytes a protein) at residue level. Data is read
//    sequentially with stdio (fseeko only on skip or when offsets jump).
//  - writer: nothing beyond the caller's rows (a float16 conversion buffer of one append).
//  - ids: one line at a time (the ids file is scanned once at open to count its lines and
//    refuse a repeated id: a map of all ids, freed before the first record).
#ifndef PS_NPY_H
#define PS_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "emb.h"
#include "err.h"

typedef enum { NPY_F32, NPY_F16, NPY_F64, NPY_I64, NPY_I32 } npy_dtype_t;

// Largest record (rows x dim) npy_source_open accepts, in floats (1 GiB of float32).
#define NPY_MAX_RECORD_FLOATS ((uint64_t)1 << 28)
// Largest header accepted (numpy writes < 64 KiB).
#define NPY_MAX_HEADER ((uint64_t)1 << 20)

typedef struct npy_header {
  npy_dtype_t dtype;
  size_t esize;         // bytes per element
  int ndim;             // 1 or 2
  uint64_t shape[2];    // shape[1] = 1 when ndim == 1
  uint64_t data_offset; // bytes before the data
  int version;          // 1, 2 or 3
} npy_header_t;

// "<f4", "<f2", ... for a dtype.
const char *npy_dtype_descr(npy_dtype_t t);

// Parse the header at the start of f (positions f at the data). `name` is used in messages
// (which name the byte offset of the fault). Does not check the file size: see npy_check_size.
int npy_read_header(FILE *f, const char *name, npy_header_t *h, ps_err_t *err);
// Same from memory (fuzzing, tests): buf holds at least the header.
int npy_parse_header(const uint8_t *buf, size_t len, const char *name, npy_header_t *h, ps_err_t *err);
// PS_ETRUNC unless the file behind f holds all the data the header promises.
int npy_check_size(FILE *f, const char *name, const npy_header_t *h, ps_err_t *err);

// Read a whole 1-D int64/int32 array (offsets files: small). *out is malloc'ed (caller frees),
// *n its length.
int npy_read_i64_vector(const char *path, int64_t **out, uint64_t *n, ps_err_t *err);

// ---- ids for id-less formats ---------------------------------------------------------------
// From o->ids_path (one id a line: the first whitespace-separated token; blank lines are
// ignored; the count must equal n_records; a repeated id is PS_EFORMAT naming both lines), else o->fallback_ids (count must equal), else
// "row<i>". `data_name` names the data file in the mismatch message.
typedef struct npy_ids npy_ids_t;
int npy_ids_open(npy_ids_t **out, const emb_source_opts_t *o, const char *data_name, uint64_t n_records,
                 ps_err_t *err);
// Next id: *id borrowed until the next call. Errors name the ids file and its line.
int npy_ids_next(npy_ids_t *ids, const char **id, ps_err_t *err);
int npy_ids_skip(npy_ids_t *ids, uint64_t n, ps_err_t *err);
void npy_ids_destroy(npy_ids_t **ids);

// The embedding source itself is npy_source_open (emb.h).

// ---- writer ------------------------------------------------------------------------------
// Rows are appended; close rewrites the header with the final row count (the header has fixed
// room, 128 bytes, so the data never moves). The file is written as path.tmp and renamed into
// place by npy_writer_close (after fsync of the file and its directory): a crash never leaves a
// half-written file under the final name. Output is NPY v1, little-endian, C order.
typedef struct npy_writer npy_writer_t;
// ncols = 0 writes a 1-D array. dtype: NPY_F32, NPY_F16 (converted from float), NPY_I64.
// Caller closes or aborts.
int npy_writer_open(npy_writer_t **out, const char *path, npy_dtype_t dtype, uint64_t ncols, ps_err_t *err);
// Append n rows of ncols floats (F32/F16 writers); rows borrowed for the call.
int npy_writer_append_f32(npy_writer_t *w, const float *rows, uint64_t n, ps_err_t *err);
// Append n int64 values (I64 writer, 1-D) or n rows of ncols values.
int npy_writer_append_i64(npy_writer_t *w, const int64_t *vals, uint64_t n, ps_err_t *err);
// Rows appended so far.
uint64_t npy_writer_count(const npy_writer_t *w);
// Finish: header, fsync, rename. Frees w and sets *w to NULL (also on error, when the temp file
// is removed). Accepts NULL. 0 or <0.
int npy_writer_close(npy_writer_t **w, ps_err_t *err);
// Abandon: remove the temp file, free w, set *w to NULL. Accepts NULL.
void npy_writer_abort(npy_writer_t **w);

#endif
