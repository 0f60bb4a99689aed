// proteins_tsv.h — streaming reader of proteins.tsv(.gz), the per-protein table beside the GO
// annotations (../shared/data/human-swissprot/proteins.tsv.gz, protsae synth's output):
//   accession <TAB> gene <TAB> name <TAB> pfam [<TAB> length]
// plain or gzip (zlib reads both). A first line starting with "accession" is the header and is
// skipped, as are blank lines and '#' comments; missing trailing columns read as "". An empty
// accession, a line over 1 MiB or a corrupt gzip stream is an error naming the file and the line.
// Memory: one line. Every caller (interpreter, synth, `protsae feature`) reads it through here.
#ifndef PS_PROTEINS_TSV_H
#define PS_PROTEINS_TSV_H

#include <stdint.h>

#include "err.h"

typedef struct ps_protein_row {
  const char *accession, *gene, *name, *pfam, *length;  // borrowed until the callback returns
  uint64_t line;                                         // 1-based
} ps_protein_row_t;

// Called once per row; a negative return (with err set) stops the reading and is returned.
typedef int (*ps_protein_row_fn)(void *ctx, const ps_protein_row_t *row, ps_err_t *err);

// Reads path row by row. Returns 0, or a negative PS_E* code with err naming path and line.
int ps_proteins_tsv_each(const char *path, ps_protein_row_fn fn, void *ctx, ps_err_t *err);

#endif
