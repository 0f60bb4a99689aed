// featstore_priv.h — what the feature store's two files share (featstore_rec.c: the record
// codecs, featstore.c: the RocksDB store): little-endian helpers, the meta record and the
// explanation decoder. Not an API: callers use featstore.h.
#ifndef PS_FEATSTORE_PRIV_H
#define PS_FEATSTORE_PRIV_H

#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "featstore.h"
#include "rdb.h"

// ---- the store's handle (featstore.c; featstore_shard.c for the sharded view) -------------------
enum { CF_DEFAULT = 0, CF_FEAT, CF_CODES, CF_APPLIED, CF_ENRICH, CF_INTERP, CF_RCODES, CF_CONCEPT, CF_N };

struct fs {
  // a sharded store (featstore_shard.c): db is DIR/analysis (NULL when absent, read-only: reads
  // of it find nothing), the statistics and codes come from shard[0..n_shards)
  uint32_t n_shards;
  fs_t **shard;
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_readoptions_t *ro;
  rocksdb_writeoptions_t *wo, *wo_sync;
  rocksdb_column_family_handle_t *cf[CF_N];
  char *path;
  int readonly;
  int broken;                 // a write failed: RocksDB is not touched again (not even to close it)
  unsigned long long min_free;  // bytes that must be free before a commit (0 = no check)
  uint8_t *buf;  // encode scratch
  size_t cap;
};

struct fs_wb {
  rocksdb_writebatch_t *wb;
  uint8_t *buf;
  size_t cap;
};

// Raw access (featstore.c): a value of family cf (1 found, rocksdb_free it; 0 absent or family
// missing), an iteration over a family (optionally a key prefix); u32 keys are big-endian.
int fs_raw_get(fs_t *fs, int cf, const char *key, size_t klen, char **val, size_t *vlen, ps_err_t *err);
int fs_raw_iterate(fs_t *fs, int cf, const char *prefix, size_t plen, rdb_iter_fn fn, void *ctx, ps_err_t *err);
int fs_raw_get_u32(fs_t *fs, int cf, uint32_t id, char **val, size_t *vlen, ps_err_t *err);
void fs_feat_key(uint32_t id, char k[4]);
uint32_t fs_key_u32(const char *k);
// Delete every u32-keyed record of family cf (a new analysis run).
void fs_wb_clear_u32_family(fs_t *fs, fs_wb_t *w, int cf);
// A key as a NUL-terminated string in *buf (grown as needed); returns *buf.
const char *fs_key_cstr(char **buf, size_t *cap, const char *k, size_t kl);
// The residue-code and concept lines of fs_dump (featstore_rcode.c).
int fs_rcode_dump(fs_t *fs, FILE *o, ps_err_t *err);
int fs_concept_dump(fs_t *fs, FILE *o, ps_err_t *err);

// Sharded view (featstore_shard.c): each returns what the public function of the same name
// returns, over every shard.
int fs_sh_meta_get(fs_t *fs, fs_meta_t *m, ps_err_t *err);
int fs_sh_feat_get(fs_t *fs, uint32_t feature, uint32_t top_n, fs_feat_t *f, ps_err_t *err);
int fs_sh_feat_each(fs_t *fs, uint32_t top_n, int (*cb)(uint32_t, const fs_feat_t *, void *), void *ctx, ps_err_t *err);
int fs_sh_code_each(fs_t *fs, int (*cb)(const char *, uint32_t, const uint32_t *, const float *, void *), void *ctx,
                    ps_err_t *err);
int fs_sh_code_get(fs_t *fs, const char *id, uint32_t *nnz, uint32_t **idx, float **val, ps_err_t *err);
int fs_sh_rcode_get(fs_t *fs, const char *id, fs_rcode_t *rc, void **owned, ps_err_t *err);
int fs_sh_rcode_each(fs_t *fs, int (*cb)(const char *, const fs_rcode_t *, void *), void *ctx, ps_err_t *err);

// *buf grown (doubling, at least 256 bytes) to hold need bytes.
static inline void fs_grow(uint8_t **buf, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  *buf = ps_xrealloc(*buf, c);
  *cap = c;
}
static inline void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put_f32(uint8_t *p, float v) { uint32_t u; memcpy(&u, &v, 4); put_u32(p, u); }
static inline uint32_t get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static inline uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static inline float get_f32(const uint8_t *p) { uint32_t u = get_u32(p); float v; memcpy(&v, &u, 4); return v; }

// The meta record ("meta" in the default column family): FS_META_LEN bytes, magic "PSM2" (with
// residue_top); the older FS_META_LEN_V1 bytes, magic "PSM1", still decode (residue_top 0).
#define FS_META_LEN_V1 (4 * 7 + 8 * 4)
#define FS_META_LEN (FS_META_LEN_V1 + 4)
void fs_meta_encode(const fs_meta_t *m, uint8_t *p);
// 0, or -1 when p is not a meta record (length or magic).
int fs_meta_decode(fs_meta_t *m, const uint8_t *p, size_t n);
// An explanation record (JSON) into *x; errors name path and unit.
int fs_interp_decode(fs_interp_t *x, uint32_t unit, const char *v, size_t vl, const char *path, ps_err_t *err);

#endif
