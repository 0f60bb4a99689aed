// h5emb.h — HDF5 embedding files in the bio_embeddings / UniProt layout: one dataset per protein
// at the root group, named by its accession: [d] per protein, [L, d] per residue, float32 (or
// float16 / float64, converted to float by libhdf5). A dataset may carry a string attribute
// "original_id" (bio_embeddings names datasets by a hash or a counter and keeps the FASTA id
// there): when present it is the record's id, else the dataset name is.
//
// Reader: h5_source_open (declared in emb.h, an emb_source_t like every format).
//  - Order: link creation order when the root group tracks it (files written by
//    h5emb_writer_* and h5py with track_order=True), else byte order of the names (h5py's
//    default, UniProt's files).
//  - At open the root is listed once with H5Literate and each link is classified (its object
//    header is read, not its data): O(n_proteins) names are kept in memory, ~ (name length +
//    16) bytes a protein; the data of one record at a time. Hence count() is exact and skip()
//    needs no reads.
//  - Skipped (counted, see h5_source_n_skipped): soft and external links (never followed),
//    groups and other non-dataset objects, datasets whose type is not floating point, scalar
//    (0-D) datasets.
//  - Errors (at open, naming the file and the dataset): a dataset of rank > 2, a 1-D dataset at
//    residue level, a last dimension of 0 or one that differs from the first dataset's, a record
//    larger than H5EMB_MAX_RECORD_FLOATS, an unreadable original_id. Errors at next() name the
//    file, the dataset and the record. NaN/Inf are caught by emb.c.
//  - libhdf5's own error printing is switched off process-wide (H5Eset_auto2(H5E_DEFAULT, NULL,
//    NULL)) on first use; its messages are folded into ps_err_t instead.
//  - libhdf5 (the serial build) is not thread-safe: use h5 sources and writers from one thread.
//
// Writer: h5emb_writer_*, the same layout, float32 little-endian, link creation order tracked
// (so records read back in the order written), HDF5 1.8 file format (readable by any
// libhdf5 >= 1.8 and h5py). Written to "path.tmp", fsynced and renamed by close.
#ifndef PS_H5EMB_H
#define PS_H5EMB_H

#include <stddef.h>
#include <stdint.h>

#include "emb.h"
#include "err.h"

// Largest record accepted by the reader, in floats (1 GiB of float32).
#define H5EMB_MAX_RECORD_FLOATS ((uint64_t)1 << 28)

// Same as h5_source_open, over an HDF5 file image held in memory (tests, fuzzing). The image is
// copied by libhdf5; buf may be freed once this returns. opts->path only names it in messages.
int h5_source_open_image(emb_source_t **out, const emb_source_opts_t *opts, const void *buf, size_t len,
                         ps_err_t *err);
// Root objects skipped at open (links, groups, non-float or scalar datasets); 0 when s is not an
// HDF5 source.
uint64_t h5_source_n_skipped(const emb_source_t *s);

// Silence libhdf5's error printing (idempotent; done by every function here).
void h5emb_quiet(void);
// The most specific message on libhdf5's current error stack ("" when empty) into buf; returns buf.
const char *h5emb_last_error(char *buf, size_t cap);

// ---- writer ------------------------------------------------------------------------------
typedef struct h5emb_writer h5emb_writer_t;

// Create path.tmp. EMB_LEVEL_PROTEIN writes [dim] datasets (add needs n_rows == 1),
// EMB_LEVEL_RESIDUE writes [n_rows, dim]. 0 or <0 with err; caller closes or aborts.
int h5emb_writer_open(h5emb_writer_t **out, const char *path, emb_level_t level, ps_err_t *err);
// One dataset named id. An id that cannot be an HDF5 link name ("." or containing '/') is
// stored as dataset "record_N" (N = 0-based record number) with attribute original_id = id.
// Empty ids, duplicate ids and a dim unlike the first record's are errors. Values are
// written as given (NaN included).
// rows: n_rows * dim floats, borrowed for the call. n_rows may be 0 at residue level.
int h5emb_writer_add(h5emb_writer_t *w, const char *id, const float *rows, uint32_t n_rows, uint32_t dim,
                     ps_err_t *err);
// Finish: close the HDF5 file, fsync, rename path.tmp to path, fsync the directory. Frees w and
// sets *w to NULL (also on error, when the temp file is removed). Accepts NULL.
int h5emb_writer_close(h5emb_writer_t **w, ps_err_t *err);
// Abandon: close, remove path.tmp, free w, set *w to NULL. Accepts NULL and *w == NULL.
void h5emb_writer_abort(h5emb_writer_t **w);
// Records added so far.
uint64_t h5emb_writer_count(const h5emb_writer_t *w);

#endif
