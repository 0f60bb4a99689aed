// go.h — Gene Ontology: OBO 1.2 ontology, protein annotations, propagation to ancestors.
//
// Ontology: terms indexed 0..n_terms-1 in file order; alt_ids resolve to their primary term;
// obsolete terms are kept (flagged, with replaced_by / consider when given) but have no edges.
// Edges followed for ancestry: is_a and relationship part_of by default; regulates /
// positively_regulates / negatively_regulates optionally (go_load_opts_t).
// Annotations: per protein, a sorted unique list of term indices. Sources: the simple TSV of
// ../shared/data (accession, go_id, evidence, aspect; header line), GAF 2.1/2.2 (NOT qualifiers
// dropped), UniProt flat files (`DR   GO; GO:...; X:...; CODE:source.`). Plain or .gz.
// Unknown ids and obsolete ids are counted in go_annot_report_t and never silently dropped:
// obsolete with replaced_by -> mapped to the replacement (counted), otherwise counted as skipped.
#ifndef PS_GO_H
#define PS_GO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum { GO_NS_BP = 0, GO_NS_MF = 1, GO_NS_CC = 2, GO_NS_UNKNOWN = 3 } go_namespace_t;

typedef enum {
  GO_REL_IS_A = 1 << 0,
  GO_REL_PART_OF = 1 << 1,
  GO_REL_REGULATES = 1 << 2,  // regulates, positively_regulates, negatively_regulates
} go_rel_t;

typedef struct go_term {
  char id[16];            // "GO:0008150"
  char *name;             // "" when the stanza has none; owned by the ontology
  go_namespace_t ns;
  uint8_t obsolete;
  int32_t replaced_by;    // term index or -1
  uint32_t n_parents;
  int32_t *parents;       // term indices of direct parents over the edges chosen at load
  uint8_t *parent_rel;    // go_rel_t of each parent edge
  int32_t depth;          // length of the longest is_a(+chosen) path to the namespace root (root = 0); -1 for obsolete
  int32_t level;          // shortest path to the root (goatools' "level"); -1 for obsolete
  // -- added after the first version (append only) --
  uint32_t n_consider;
  int32_t *consider;      // term indices of the "consider:" tags that name a term of the file
  uint32_t line;          // line of the term's [Term] header in the OBO file
  int32_t depth_is_a;     // longest path to the root along is_a edges only (goatools' "depth"); -1 for obsolete
} go_term_t;

typedef struct go_ontology go_ontology_t;

typedef struct go_load_opts {
  unsigned rels;          // go_rel_t mask of edges to follow; 0 = default (IS_A | PART_OF)
} go_load_opts_t;

// Load an OBO file (plain or gzip). opts may be NULL. Errors name the file and line.
// Parsing: [Term] stanzas only ([Typedef], [Instance] and any other stanza are skipped); tags
// id, name, namespace (else the header's default-namespace), alt_id, is_obsolete, replaced_by
// (the first one), consider, is_a, relationship (part_of, regulates, positively_regulates,
// negatively_regulates; others ignored); "! comments" and "{modifiers}" after ids are dropped;
// every other tag is ignored. Errors (PS_EFORMAT, message "FILE: line N: ..."): a non-blank line
// that is neither "[Stanza]", "! comment" nor "tag: value"; a [Term] without id, with two ids,
// an empty or over-long (> 15 bytes) id; a duplicate id; an alt_id that is another term's id or
// alt_id; an edge (followed per opts) to an id not in the file or to an obsolete term; a cycle
// over the followed edges (names the terms on it); NUL bytes. replaced_by / consider naming an
// id not in the file are dropped and counted (go_ontology_info). Edges of obsolete terms are
// dropped. *out is NULL on error; on success the caller destroys it.
int go_ontology_load(go_ontology_t **out, const char *path, const go_load_opts_t *opts, ps_err_t *err);
// Same from a buffer (tests, fuzzing); `name` is used in messages.
int go_ontology_parse(go_ontology_t **out, const char *buf, size_t len, const char *name,
                      const go_load_opts_t *opts, ps_err_t *err);
void go_ontology_destroy(go_ontology_t **o);

size_t go_n_terms(const go_ontology_t *o);
// Borrowed until go_ontology_destroy; NULL for an index out of range.
const go_term_t *go_term(const go_ontology_t *o, int32_t idx);
// Index of a GO id (primary or alt_id -> primary), or -1 if unknown.
int32_t go_lookup(const go_ontology_t *o, const char *goid);
// Follows replaced_by chains for obsolete terms; returns a non-obsolete index or -1.
int32_t go_resolve(const go_ontology_t *o, int32_t idx);
// All ancestors of idx over the chosen edges, including idx itself, sorted ascending.
// Returns the count; writes at most cap entries (call with cap 0 to size). A DFS with a
// visited bitmap (n_terms/8 bytes allocated per call); thread-safe; 0 for a bad idx.
size_t go_ancestors(const go_ontology_t *o, int32_t idx, int32_t *out, size_t cap);
const char *go_namespace_name(go_namespace_t ns);  // "biological_process", ...

// Counts made at load (added after the first version).
typedef struct go_ontology_info {
  size_t n_terms, n_obsolete, n_roots;  // roots: non-obsolete terms without followed parents
  size_t n_alt_ids;
  size_t n_is_a, n_part_of, n_regulates; // followed edges kept, by kind (after de-duplication)
  size_t n_edges_ignored;                // relationship lines of kinds not followed
  size_t n_refs_unresolved;              // replaced_by / consider naming no term of the file
  int32_t max_depth;
  unsigned rels;                         // the go_rel_t mask followed
} go_ontology_info_t;
void go_ontology_info(const go_ontology_t *o, go_ontology_info_t *info);

// ---- annotations -----------------------------------------------------------------------
typedef struct go_annot_opts {
  const char *const *evidence_include;  // NULL-terminated list, or NULL = all
  const char *const *evidence_exclude;  // NULL-terminated list (e.g. {"IEA", NULL}), or NULL
  int namespace_only;                   // -1 = all, else a go_namespace_t
} go_annot_opts_t;

typedef struct go_annot_report {
  uint64_t lines;          // annotation lines read
  uint64_t used;           // kept
  uint64_t unknown_ids;    // GO ids not in the ontology (skipped)
  uint64_t obsolete_mapped;   // obsolete ids mapped through replaced_by
  uint64_t obsolete_skipped;  // obsolete ids without replacement (skipped)
  uint64_t alt_ids_mapped;    // alt_ids mapped to their primary
  uint64_t not_qualified;     // GAF NOT qualifier (skipped)
  uint64_t evidence_filtered;
  uint64_t namespace_filtered;
} go_annot_report_t;

typedef struct go_annotations {
  size_t n_proteins;
  char **protein_ids;      // accessions, in first-seen order
  uint32_t *n_terms;       // per protein
  int32_t **terms;         // per protein: sorted unique term indices
  void *index;             // accession -> protein (private)
} go_annotations_t;

// Each loader appends to *a (create with go_annotations_new; the caller destroys it, also after
// an error, when *a may hold the lines read before it). report may be NULL; when given it is
// overwritten with this file's counts. Checks run in this order: GAF NOT qualifier, id (unknown,
// alt_id -> primary, obsolete -> replaced_by chain or skipped), evidence, namespace of the term
// the id resolved to. So each line lands in exactly one of used, not_qualified, unknown_ids,
// obsolete_skipped, evidence_filtered, namespace_filtered (they sum to lines), while
// alt_ids_mapped / obsolete_mapped count lines that were mapped and went on. A protein enters *a
// with its first kept line. Note: opts->namespace_only 0 means biological_process only; pass -1
// for all namespaces (opts NULL = everything). Formats:
//  tsv: tab-separated accession, go_id, evidence[, aspect...]; a first line whose second column
//       has no ':' is a header; '#' / '!' lines are comments. Fewer than 3 columns = error.
//  gaf: '!' comments; 15-17 tab-separated columns (else error): 2 accession, 4 qualifier
//       (NOT among its '|' parts -> not_qualified), 5 GO id, 7 evidence.
//  uniprot: entries "ID ... //"; the accession is the first one of the first AC line; each
//       "DR   GO; GO:id; X:name; CODE:source." line is one annotation (error before any AC);
//       a line that is not "XX   ..." nor "//" is an error (not a flat file).
// Errors (PS_EFORMAT / PS_ETRUNC / -errno) name the file and the line.
go_annotations_t *go_annotations_new(void);
int go_annotations_load_tsv(go_annotations_t *a, const go_ontology_t *o, const char *path,
                            const go_annot_opts_t *opts, go_annot_report_t *rep, ps_err_t *err);
int go_annotations_load_gaf(go_annotations_t *a, const go_ontology_t *o, const char *path,
                            const go_annot_opts_t *opts, go_annot_report_t *rep, ps_err_t *err);
int go_annotations_load_uniprot(go_annotations_t *a, const go_ontology_t *o, const char *path,
                                const go_annot_opts_t *opts, go_annot_report_t *rep, ps_err_t *err);
// Replace each protein's terms by the union of their ancestors (including themselves), sorted.
// Idempotent. Human Swiss-Prot (17,424 proteins, 284k pairs -> 1.74M): ~0.13 s.
void go_annotations_propagate(go_annotations_t *a, const go_ontology_t *o);
// Protein index of an accession or -1.
int64_t go_annotations_find(const go_annotations_t *a, const char *accession);
void go_annotations_destroy(go_annotations_t **a);

#endif
