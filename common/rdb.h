// rdb.h — the RocksDB glue the stores share (featstore.c, annstore.c): the one place a RocksDB
// error string becomes a code, and the iteration of a column family by key prefix.
#ifndef PS_RDB_H
#define PS_RDB_H

#include <rocksdb/c.h>
#include <stddef.h>

#include "err.h"

// PS_ESTORE with "path: what: e" (e freed; NULL = unknown).
int rdb_err(ps_err_t *err, char *e, const char *what, const char *path);

// fn for every entry of cf whose key starts with prefix (plen 0: all), in key order; k and v are
// valid during the call. fn returns 0 to go on, > 0 to stop (0 returned), < 0 to stop (returned).
typedef int (*rdb_iter_fn)(const char *k, size_t kl, const char *v, size_t vl, void *ctx, ps_err_t *err);
int rdb_iterate(rocksdb_t *db, const rocksdb_readoptions_t *ro, rocksdb_column_family_handle_t *cf, const void *prefix,
                size_t plen, rdb_iter_fn fn, void *ctx, const char *path, ps_err_t *err);

#endif
