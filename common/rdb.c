// rdb.c — see rdb.h.
#include "rdb.h"

#include <string.h>

int rdb_err(ps_err_t *err, char *e, const char *what, const char *path) {
  int rc = ps_err_set(err, PS_ESTORE, "%s: %s: %s", path, what, e ? e : "unknown RocksDB error");
  rocksdb_free(e);
  return rc;
}

int rdb_iterate(rocksdb_t *db, const rocksdb_readoptions_t *ro, rocksdb_column_family_handle_t *cf, const void *prefix,
                size_t plen, rdb_iter_fn fn, void *ctx, const char *path, ps_err_t *err) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, cf);
  if (plen) rocksdb_iter_seek(it, prefix, plen);
  else rocksdb_iter_seek_to_first(it);
  int rc = 0;
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
    if (plen && (kl < plen || memcmp(k, prefix, plen))) break;
    if ((rc = fn(k, kl, v, vl, ctx, err)) != 0) break;
  }
  if (rc == 0) {
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    if (e) rc = rdb_err(err, e, "iterate", path);
  }
  rocksdb_iter_destroy(it);
  return rc < 0 ? rc : 0;
}
