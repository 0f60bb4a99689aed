// internal.h — what the files of common/pt/ share; callers include ptfile.h instead.
//   zip.c     the archive, through libzip: open (with its consistency checks), entry lookup,
//             bounded streaming of an entry's bytes with CRC-32 and size checks
//   pickle.c  the strict pickle interpreter: data.pkl -> a tree of values (pv_t)
//   tensor.c  a torch.save archive opened and its pickle run (pt_pickled_*); pt_file_*: extract.py's
//             dict; tensors and their storages, float conversion
//   state.c   pt_state_*: a state_dict (an InterPLM ae.pt) or a Lightning checkpoint's
//   dir.c     the embedding source over one .pt file or a directory of them
//   write.c   pt_write_extract (protsae synth's pt/ output)
#ifndef PS_PT_INTERNAL_H
#define PS_PT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ptfile.h"

#define PT_CHUNK ((size_t)64 << 10)  // streaming buffer (a multiple of every element size)

static inline uint16_t pt_rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t pt_rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t pt_rd64(const uint8_t *p) { return (uint64_t)pt_rd32(p) | (uint64_t)pt_rd32(p + 4) << 32; }

// A byte string fit for a message (tensor.c): printable ASCII kept, the rest escaped, long ones
// shortened. Returns buf.
const char *pt_show(const char *s, size_t len, char *buf, size_t cap);

// ---- zip.c -------------------------------------------------------------------------------------
typedef struct pt_zip pt_zip_t;
// Receives an entry's bytes in chunks whose sizes are multiples of 8 (but the last). 0 or <0.
typedef int (*pt_sink_fn)(void *ctx, const uint8_t *p, size_t n);

// Open path as a torch.save archive: a regular file starting "PK\3\4" (a bare pickle, torch < 1.6,
// is refused by name) that libzip opens with ZIP_CHECKCONS, 1..PT_MAX_ENTRIES entries, no name
// twice, the first entry inside a folder (the archive name). 0 or <0 with err naming path.
int ptz_open(pt_zip_t **out, const char *path, ps_err_t *err);
void ptz_close(pt_zip_t **z);
// The folder every entry of a torch archive lives in (borrowed).
const char *ptz_archive(const pt_zip_t *z);
// The entry called name (exact bytes), or -1.
int64_t ptz_find(const pt_zip_t *z, const char *name);
// Its uncompressed size as the central directory says.
uint64_t ptz_size(const pt_zip_t *z, int64_t idx);
// Stream bytes [off, off + n) of entry idx to sink. Only stored and deflated entries; when the
// whole entry is read its CRC-32 and length are checked. Never inflates more than off + n + 1
// bytes. Errors name the file and the entry.
int ptz_stream(pt_zip_t *z, int64_t idx, uint64_t off, uint64_t n, pt_sink_fn sink, void *ctx, ps_err_t *err);
// Read entry idx whole into a malloc'ed NUL-terminated buffer (caller frees); entries over max
// bytes are refused.
int ptz_read_all(pt_zip_t *z, int64_t idx, uint64_t max, uint8_t **out, size_t *len, ps_err_t *err);

// ---- pickle.c ----------------------------------------------------------------------------------
typedef enum {
  PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES, PV_TUPLE, PV_LIST, PV_DICT,
  PV_GLOBAL, PV_STORAGE, PV_TENSOR, PV_OPAQUE,
} pv_kind_t;

typedef enum {
  G_OTHER, G_REBUILD_V2, G_REBUILD, G_REBUILD_PARAM, G_ORDERED_DICT, G_STORAGE_TYPE,
} g_kind_t;

typedef struct pv pv_t;
struct pv {
  pv_t *chain;          // every value of a file, for freeing
  pv_kind_t kind;
  size_t pos;           // byte offset in data.pkl of the opcode that made it
  int64_t i;            // INT, BOOL
  double f;             // FLOAT
  const char *s;        // STR/BYTES (into data.pkl), GLOBAL module, STORAGE key
  size_t len;
  const char *s2;       // GLOBAL name, STORAGE type name
  size_t len2;
  pv_t **items;         // TUPLE/LIST; DICT as key, value, key, value...
  size_t n, cap;        // items used / allocated
  g_kind_t g;           // GLOBAL
  pt_dtype_t dtype;     // GLOBAL storage type, STORAGE
  const char *dtype_name;
  size_t esize;         // bytes an element (0: unknown storage type)
  uint64_t numel;       // STORAGE
  pv_t *storage;        // TENSOR
  int64_t offset;
  int ndim;
  int64_t *size, *stride;  // TENSOR: ndim each, one allocation (size)
};

// Every value one run made (at most PT_MAX_PICKLE_NODES).
typedef struct pt_values {
  pv_t *head;
  size_t n;
} pt_values_t;

// Run the pickle p[0, n) (borrowed: string values point into it) to STOP; *result is the value
// left. Errors: "PATH: NAME byte OFFSET: ..." (NAME = the data.pkl entry).
int pt_pickle_run(const uint8_t *p, size_t n, const char *path, const char *name, pt_values_t *vals, pv_t **result,
                  ps_err_t *err);
void pt_values_free(pt_values_t *vals);
const char *pt_kind_name(pv_kind_t k);
// A str value equal to s.
int pt_str_is(const pv_t *v, const char *s);
// d[key] for a str key (the last assignment wins, as in Python), or NULL.
pv_t *pt_dict_get(const pv_t *d, const char *key);

// ---- tensor.c ---------------------------------------------------------------------------------
// A torch.save archive opened (byteorder checked) and its data.pkl run.
typedef struct pt_pickled {
  char *path;
  pt_zip_t *zip;
  char *pkl_name;            // "ARCHIVE/data.pkl"
  uint8_t *pkl;
  size_t pkl_len;
  pt_values_t values;        // every value the pickle made
  pv_t *root;                // the saved object
} pt_pickled_t;
int pt_pickled_open(pt_pickled_t *p, const char *path, ps_err_t *err);
void pt_pickled_close(pt_pickled_t *p);
// Shape and dtype of a PV_TENSOR value.
void pt_pickled_info(const pv_t *t, pt_tensor_info_t *info);
// Decode tensor t as float32 into out (cap floats; cap = 0 validates, see pt_file_read_tensor);
// what names it in messages ("representations[6]", "state_dict['W_enc']").
int pt_pickled_read(pt_pickled_t *p, const pv_t *t, const char *what, float *out, size_t cap, ps_err_t *err);
// The same; allow_int also converts int64 / int32 tensors (exact below 2^24).
int pt_pickled_read_ex(pt_pickled_t *p, const pv_t *t, const char *what, int allow_int, float *out, size_t cap,
                       ps_err_t *err);

#endif
