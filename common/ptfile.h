// ptfile.h — PyTorch .pt files as ESM's scripts/extract.py writes them (torch.save, zip format),
// read without Python: the zip through libzip, a small strict pickle interpreter and tensor
// decoding; and a float32 writer of the same dict (protsae synth's pt/ output). The code is in
// pt/ (pt/internal.h says which file does what).
//
// The file: a zip archive (torch >= 1.6) whose entries all sit in one folder ARCHIVE/ (torch
// names it after the file's stem, or "archive"):
//   ARCHIVE/data.pkl   the pickled object (protocol 2), here
//                      {"label": str, "representations": {layer: tensor [L, d]},
//                       "mean_representations": {layer: tensor [d]}, maybe "contacts", "logits",
//                       "bos_representations" (read past, never decoded)}
//   ARCHIVE/data/KEY   raw little-endian storages, referenced from the pickle by persistent ids
//                      ('storage', torch.FloatStorage, KEY, 'cpu', numel)
//   ARCHIVE/version    "3\n"; maybe ARCHIVE/byteorder ("little"; "big" is refused) and
//                      ARCHIVE/.data/*.
// libzip opens the archive with its consistency checks (end records and central directory inside
// the file, every local header agreeing with its directory record and ending before the
// directory, zip64 when present); entries may be stored (torch's way) or deflated; the CRC-32 is
// verified whenever a whole entry is read; a deflated entry cannot claim more than deflate can
// produce from its compressed size (pt/zip.c).
//
// The pickle interpreter executes nothing: it knows the opcodes torch.save emits (PROTO, FRAME,
// EMPTY_DICT/LIST/TUPLE, MARK, (LONG_)BINPUT/BINGET, MEMOIZE, BINUNICODE and friends,
// BININT/1/2, LONG1, BINFLOAT, NONE, NEWTRUE/FALSE, GLOBAL, STACK_GLOBAL, BINPERSID,
// TUPLE/1/2/3, LIST, APPEND(S), DICT, SETITEM(S), REDUCE, BUILD, NEWOBJ, POP, POP_MARK, DUP,
// STOP) and the callables torch._utils._rebuild_tensor_v2 / _rebuild_tensor /
// _rebuild_parameter and collections.OrderedDict; any other global called yields an opaque
// value (an error only if the value is then needed). An unknown opcode, a stack underflow or an
// undefined memo key is an error naming the byte offset in data.pkl.
//
// Tensors: dtype float32, float16, bfloat16 or float64 (converted to float32); any
// storage_offset; row-major contiguous strides (strides of size-1 axes are ignored, as torch
// does); anything else (non-contiguous views, integer dtypes) is an error naming the tensor.
//
// Memory bounds: pt_file_open has libzip read the central directory (which lies inside the file;
// at most PT_MAX_ENTRIES entries are accepted) and reads data.pkl (<= PT_MAX_PICKLE_BYTES) and keeps the interpreter's values (<=
// PT_MAX_PICKLE_NODES of ~140 bytes, + 128 bytes a tensor) and containers (<= 8 bytes a pickle
// byte): some KB for real files, under ~100 MB for the worst archive accepted. Tensor data is
// streamed through a 64 KiB buffer into the caller's array, after the zip entry was checked to
// hold it (so a pickle cannot make the reader allocate more than the file backs). The source
// (pt_source_open) holds one file and one record's floats at a time plus the list of file names
// (O(files)).
//
// Errors name the file and the position: the zip entry (or, for the archive's own structure, what
// libzip found wrong), the entry and byte offset in data.pkl (pickle), or the tensor
// ("representations[6]") and its storage.
#ifndef PS_PTFILE_H
#define PS_PTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "emb.h"
#include "err.h"

#define PT_MAX_ENTRIES ((uint64_t)1 << 18)              // zip entries
#define PT_MAX_PICKLE_BYTES ((uint64_t)4 << 20)         // data.pkl (real ones: ~250 bytes a tensor)
#define PT_MAX_PICKLE_NODES ((size_t)1 << 17)           // values built by the interpreter
#define PT_MAX_TENSOR_FLOATS ((uint64_t)1 << 28)        // one tensor (1 GiB of float32)
#define PT_MAX_DIMS 8

typedef enum {
  PT_DTYPE_F32 = 0,
  PT_DTYPE_F16,
  PT_DTYPE_BF16,
  PT_DTYPE_F64,
  PT_DTYPE_OTHER,  // integer / bool / complex storages: listed, never decoded
} pt_dtype_t;

// Which dict of an extract.py file.
typedef enum { PT_REPR_PER_RESIDUE = 0, PT_REPR_MEAN = 1 } pt_repr_t;

typedef struct pt_tensor_info {
  pt_dtype_t dtype;
  const char *dtype_name;          // "float32", ..., or the storage type ("LongStorage"); static
  int ndim;
  uint64_t shape[PT_MAX_DIMS];
  uint64_t numel;
} pt_tensor_info_t;

// ---- reader ------------------------------------------------------------------------------
typedef struct pt_file pt_file_t;

// Open a .pt file: reads the zip directory and data.pkl, runs the pickle, finds "label" (a
// string: required), "representations" and "mean_representations" (each optional, but every
// key must be an int layer and every value a tensor). Tensor data is not read. The file stays
// open (one descriptor) until pt_file_destroy. 0 or <0 with err.
int pt_file_open(pt_file_t **out, const char *path, ps_err_t *err);
// Close and free; accepts NULL and *f == NULL; sets *f to NULL.
void pt_file_destroy(pt_file_t **f);
// The "label" string (borrowed for f's life; NUL-free, may hold spaces).
const char *pt_file_label(const pt_file_t *f);
// The archive folder name inside the zip (borrowed).
const char *pt_file_archive_name(const pt_file_t *f);
// Layers of one dict, ascending (borrowed for f's life; *layers may be NULL when 0). Returns
// the count (0 when the dict is absent).
size_t pt_file_layers(const pt_file_t *f, pt_repr_t which, const int **layers);
// 1 if the dict exists (even empty), else 0.
int pt_file_has(const pt_file_t *f, pt_repr_t which);
// Shape and dtype of representations[layer] (or mean_representations[layer]). PS_ENOTFOUND
// (message lists the layers present) when absent.
int pt_file_tensor_info(const pt_file_t *f, pt_repr_t which, int layer, pt_tensor_info_t *info, ps_err_t *err);
// Decode that tensor as float32, row-major, into out (cap floats, >= numel). 0 or <0. The file's
// checks (dtype, contiguity, storage and zip entry sizes) come before the cap check, so cap = 0
// (out may be NULL) validates a tensor without reading it: PS_EDIM then means "valid, too big".
int pt_file_read_tensor(pt_file_t *f, pt_repr_t which, int layer, float *out, size_t cap, ps_err_t *err);
// "representations" / "mean_representations".
const char *pt_repr_name(pt_repr_t which);

// The record id of a label: its first whitespace-separated word, copied into buf (cap bytes,
// truncated). Returns buf.
const char *pt_label_id(const char *label, char *buf, size_t cap);

// pt_source_open is declared in emb.h. opts->path: a .pt file, or a directory searched
// recursively for *.pt (hidden names skipped, symlinked directories not followed; extract.py
// makes subfolders when a label holds '/'), read in byte order of the relative paths. A file's
// record id is its label's first word; the label (whole, or its first word) must equal the
// file's path below the directory without ".pt" (for a single file: its name), else
// PS_EMISMATCH naming the file. opts->layer selects the layer; -1 takes the highest present in
// the first file, then required in every file. Residue level: representations[layer] [L, d].
// Protein level: mean_representations[layer] [d] when present, else representations[layer]
// (mean-pooled by emb.c). All files must share d. NaN/Inf errors name the file, row and column.
// count() is the number of files; skip() opens nothing.

// ---- state dicts and checkpoints -----------------------------------------------------------
// A torch.save file holding model weights (pt/state.c): either a state_dict itself (a dict or
// OrderedDict of str -> tensor, as torch.save(module.state_dict(), path) writes it: InterPLM's
// ae.pt) or a dict with a "state_dict" entry of that kind (a PyTorch Lightning .ckpt; its other
// entries -- "epoch", "global_step", "optimizer_states", "loops", "callbacks", version strings --
// are parsed by the same strict interpreter and otherwise ignored). Entries of the state dict
// whose value is not a tensor (or whose key is not a str) are skipped. "hyper_parameters", when
// it is a dict, is readable by key (ints and strs). Nothing in the file is executed.
typedef struct pt_state pt_state_t;
int pt_state_open(pt_state_t **out, const char *path, ps_err_t *err);
void pt_state_destroy(pt_state_t **s);
// The tensors, in file order (a repeated key: the last one wins). Names are borrowed.
size_t pt_state_count(const pt_state_t *s);
const char *pt_state_name(const pt_state_t *s, size_t i);
// Index of the tensor called name, or -1.
int64_t pt_state_find(const pt_state_t *s, const char *name);
void pt_state_info(const pt_state_t *s, size_t i, pt_tensor_info_t *info);
// Decode tensor i as float32 (as pt_file_read_tensor: float dtypes only, contiguous, cap >= numel).
int pt_state_read(pt_state_t *s, size_t i, float *out, size_t cap, ps_err_t *err);
// A one-element tensor (float, int64 or int32; a buffer such as dictionary_learning's k) as a
// double (integers exact below 2^24). PS_EDIM when it has more elements.
int pt_state_scalar(pt_state_t *s, size_t i, double *out, ps_err_t *err);
// 1 if the file is a checkpoint (has "state_dict"), 0 for a bare state_dict.
int pt_state_is_checkpoint(const pt_state_t *s);
// hyper_parameters[key]: 1 and *out when it is an int (or bool), else 0.
int pt_state_hparam_int(const pt_state_t *s, const char *key, int64_t *out);
// hyper_parameters[key] as a NUL-terminated copy in buf when it is a str, else NULL.
const char *pt_state_hparam_str(const pt_state_t *s, const char *key, char *buf, size_t cap);

// ---- writer ------------------------------------------------------------------------------
// Write what `extract.py --include per_tok mean` writes for one sequence (protsae synth's pt/ and
// residues_pt/): path gets {"label": label, "representations": {layers[i]: per_residue[i] as
// [L, d]}, "mean_representations": {layers[i]: mean[i] as [d]}} with float32 storages, in
// torch.save's zip layout as libzip writes it (stored entries ARCHIVE/data.pkl, ARCHIVE/data/K,
// ARCHIVE/version; the pickle as torch 1.13 writes it; torch.load reads it: unit_synth checks).
// Equal input gives equal bytes. per_residue or mean may be NULL to leave that dict out (not
// both). layers: distinct. label: non-empty UTF-8. Arrays are borrowed for the call. The archive
// is built in memory and written with ps_write_file_atomic (path.tmp, fsync, rename). Files of
// 4 GiB or more are refused.
int pt_write_extract(const char *path, const char *label, const int *layers, size_t n_layers,
                     const float *const *per_residue, const float *const *mean, uint32_t L, uint32_t d,
                     ps_err_t *err);

#endif
