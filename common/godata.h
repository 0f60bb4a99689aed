// godata.h — the one rule for finding the annotation data of a run in a directory, used by every
// program (scorer enrichment, interpreter, annotate, report, synth, demo/run):
//   ontology     go*.obo or go*.obo.gz: the greatest file name (go-2022-07-01 before go-2013-07-13;
//                go.obo and go-basic.obo sort after any dated name), required
//   annotations  go_annotations.tsv(.gz) (accession<TAB>GO id[<TAB>evidence]), else *.gaf(.gz)
//   proteins     proteins.tsv(.gz) (accession, gene, name, Pfam, length), optional
//   fasta        proteins.fasta(.gz), optional
// and for the default directory: $PROTSAE_DATA, else ../shared/data/human-swissprot relative to
// the executable's build or install tree, then to the current directory.
#ifndef PS_GODATA_H
#define PS_GODATA_H

#include <limits.h>
#include <stddef.h>

#include "err.h"

typedef struct ps_godata {
  char dir[PATH_MAX];
  char obo[PATH_MAX];
  char annotations[PATH_MAX];  // "" when absent
  int annotations_gaf;         // 1: annotations is a GAF file
  char proteins[PATH_MAX];     // "" when absent
  char fasta[PATH_MAX];        // "" when absent
} ps_godata_t;

enum { PS_GODATA_NEED_ONTOLOGY = 1, PS_GODATA_NEED_ANNOTATIONS = 2, PS_GODATA_NEED_PROTEINS = 4,
       PS_GODATA_NEED_FASTA = 8 };
// Look in dir. need: PS_GODATA_NEED_* bits; a missing required file is PS_ENOTFOUND naming dir and
// what was looked for ("DIR: no GO ontology (go*.obo or go*.obo.gz)"); a missing dir -errno.
int ps_godata_find(const char *dir, int need, ps_godata_t *out, ps_err_t *err);
// The default data directory (see above) into buf: buf, or NULL when none holds an ontology.
const char *ps_godata_default_dir(char *buf, size_t cap);

#endif
