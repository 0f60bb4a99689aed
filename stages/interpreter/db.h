// db.h — what the interpreter knows about a protein: accession, gene, protein name, Pfam
// families, GO terms (direct, for prompts; propagated to ancestors, for the offline mode) and,
// optionally, the sequence. Loaded from a data directory holding proteins.tsv(.gz) (accession,
// gene, name, pfam ';'-separated, length; header line), go_annotations.tsv(.gz) and the GO OBO
// (go-*.obo(.gz) or go.obo(.gz)); proteins.fasta(.gz) when sequences are asked for.
#ifndef PS_INTERP_DB_H
#define PS_INTERP_DB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "go.h"

typedef struct interp_protein {
  char *accession, *gene, *name;  // "" when unknown
  uint32_t n_pfam;
  int32_t *pfam;                  // family indices into db->pfam_names
  int32_t stem;                   // gene-name stem index into db->stem_names, -1 = none
  uint32_t n_direct;
  int32_t *direct;                // directly annotated GO terms, most specific (deepest) first
  uint32_t n_prop;
  int32_t *prop;                  // propagated terms (sorted ascending), borrowed from annotations
  char *seq;                      // NULL unless loaded
} interp_protein_t;

typedef struct interp_db {
  size_t n;
  interp_protein_t *p;
  go_ontology_t *go;              // NULL when the data dir has no ontology
  go_annotations_t *annot;        // propagated annotations (owner of prop arrays)
  size_t n_pfam_names, n_stem_names;
  char **pfam_names, **stem_names;
  void *index;                    // accession -> protein (private)
  size_t n_pfam_labels;           // pfam_labels[0..n): family names ("7tm_1") or NULL (pfam.h)
  char **pfam_labels;
} interp_db_t;

// Load a data directory. Errors name the file and line. with_seq: also read proteins.fasta(.gz).
int interp_db_load(interp_db_t **out, const char *dir, int with_seq, ps_err_t *err);
// An empty db to fill by hand (tests): add proteins with interp_db_add, then interp_db_finish.
interp_db_t *interp_db_new(void);
// gene/name/pfam (';'-separated PF ids) may be NULL; returns the protein index.
size_t interp_db_add(interp_db_t *db, const char *acc, const char *gene, const char *name, const char *pfam);
void interp_db_destroy(interp_db_t **db);
// Index of an accession or -1.
int64_t interp_db_find(const interp_db_t *db, const char *acc);
// Index of a Pfam family id ("PF00001") in db->pfam_names or -1.
int32_t interp_db_pfam_index(const interp_db_t *db, const char *pf);
// Gene-name stem: the leading letters of a gene symbol before its first digit (ZNF268 -> ZNF,
// OR5A1 -> OR), at least 2 letters; "" when none. out has cap bytes.
void interp_gene_stem(const char *gene, char *out, size_t cap);

#endif
