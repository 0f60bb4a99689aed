// storesrc.h — an interp_source_t over the scorer's feature store (common/featstore.h): the
// per-protein codes, turned feature-major once (fs_load_csc), so a column is a scatter of one
// feature's non-zeros. Proteins in id order. Memory: O(proteins + non-zeros).
#ifndef PS_INTERP_STORESRC_H
#define PS_INTERP_STORESRC_H

#include "err.h"
#include "protocol.h"

typedef struct interp_storesrc interp_storesrc_t;

// Fills *src (valid until destroy). Errors name the store.
int interp_storesrc_open(interp_storesrc_t **out, const char *db_path, interp_source_t *src, ps_err_t *err);
void interp_storesrc_destroy(interp_storesrc_t **s);

#endif
