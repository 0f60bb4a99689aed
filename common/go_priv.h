// go_priv.h — what the two halves of the Gene Ontology code share (go_obo.c: the ontology,
// go_annot.c: the annotations): the ontology's layout and a few helpers. Not an API: callers use
// go.h.
#ifndef PS_GO_PRIV_H
#define PS_GO_PRIV_H

#include "go.h"
#include "io.h"
#include "strmap.h"

#define GO_ALT_BIT (1ull << 32)  // strmap value flag: key is an alt_id
#define GO_BLANKS " \t\r\v\f"

struct go_ontology {
  size_t n, cap;
  go_term_t *terms;
  strmap_t *index;  // id -> term | GO_ALT_BIT for alt_ids
  int32_t *edge_slab;
  uint8_t *rel_slab;
  int32_t *consider_slab;
  go_ontology_info_t info;
};

// A growing array of term indices.
typedef struct go_ivec {
  int32_t *v;
  size_t n, cap;
} go_ivec_t;
void go_ivec_push(go_ivec_t *a, int32_t x);
int go_cmp_i32(const void *a, const void *b);  // qsort order of int32_t

// Blanks trimmed off both ends, in place; returns the start.
char *go_trim(char *s);
// The next line of a text input: ps_lines_next, and a NUL byte in it is PS_EFORMAT naming the
// input, line and column (binary data).
int go_next_line(ps_lines_t *s, char **ln, size_t *len, ps_err_t *err);
// Term index of a primary id or alt_id (*is_alt says which; may be NULL), or -1.
int32_t go_lookup_raw(const go_ontology_t *o, const char *id, int *is_alt);
// The terms reachable from s0 over the followed parent edges, s0 included, that seen (a bitmap of
// n_terms bits) does not hold yet: marked in seen and appended to found. st is scratch.
void go_up_closure(const go_ontology_t *o, int32_t s0, uint64_t *seen, go_ivec_t *st, go_ivec_t *found);

#endif
