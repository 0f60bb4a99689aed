// pfam.h — Pfam family names for the interpreter's prompts ("PF00001 (7tm_1)" rather than the bare
// id): from a names table (TSV: PF id <TAB> name [<TAB> description]; '#' lines and a header
// without a PF id skipped) and from UniProt flat files' cross-references
// (`DR   Pfam; PF00001; 7tm_1; 1.`), read line by line (plain or gzip; files of any size: only the
// id -> name map is kept, and only for the families the db holds). The table wins over the flat
// files; among flat files, the first name seen wins.
// Memory: one name per family of the db.
#ifndef PS_INTERP_PFAM_H
#define PS_INTERP_PFAM_H

#include <stddef.h>

#include "db.h"
#include "err.h"

// Where the flat files are: flat is a .dat / .txt file (optionally .gz) or a directory of them;
// "auto" = the data directory's own, DATA/uniprot-flat/ and DATA/../uniprot-flat/ (files ending
// .dat or .dat.gz), "" = none. Writes a ';'-separated list of the files found into out (cap bytes;
// "" when none). 0, or <0 when flat names a path that does not exist.
int interp_pfam_find_flat(const char *flat, const char *data_dir, char *out, size_t cap, ps_err_t *err);

// Name db's families: names_tsv (NULL / "" = none) then the files of flat_list (';'-separated, as
// interp_pfam_find_flat writes). *n_named: families of the db that have a name now. Errors name
// the file and line.
int interp_pfam_load(interp_db_t *db, const char *names_tsv, const char *flat_list, size_t *n_named, ps_err_t *err);

// The name of family f ("7tm_1") or NULL.
const char *interp_pfam_label(const interp_db_t *db, int32_t f);

#endif
