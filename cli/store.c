// store.c — opening a feature store for reading, as the read commands (features, feature, export,
// encode-check) do: read-only, so they work while the scorer runs (as of its last commit).
#include "cli.h"

int cli_store_open(const char *path, fs_t **fs, fs_meta_t *m, ps_err_t *err) {
  int rc = fs_open(fs, path, FS_OPEN_READONLY, err);
  if (rc < 0) return rc;
  rc = fs_meta_get(*fs, m, err);
  if (rc == 0) rc = ps_err_set(err, PS_ENOTFOUND, "%s: the feature store is empty (nothing committed yet)", path);
  return rc < 0 ? rc : 0;
}
