// npysrc.h — an interp_source_t over a dense .npy (proteins x units; f4, f2 or f8; memory-mapped,
// so a column read touches each row once and nothing is loaded up front) and an ids file (one
// accession a line, first token; plain or gzip; the count must equal the rows).
#ifndef PS_INTERP_NPYSRC_H
#define PS_INTERP_NPYSRC_H

#include "err.h"
#include "protocol.h"

typedef struct interp_npysrc interp_npysrc_t;

// Fills *src (valid until destroy). Errors name the file (and the ids line).
int interp_npysrc_open(interp_npysrc_t **out, const char *npy_path, const char *ids_path, interp_source_t *src,
                       ps_err_t *err);
void interp_npysrc_destroy(interp_npysrc_t **s);

#endif
