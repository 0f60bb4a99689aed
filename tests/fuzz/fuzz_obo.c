// fuzz_obo — arbitrary bytes as an OBO file through go_ontology_parse, with the first byte
// choosing the edges followed. It must return an ontology or an error message naming the input
// and a line, never crash or hang; a returned ontology must be consistent: ids found by lookup,
// parents valid and non-obsolete, depth >= level >= 0 and depth = 1 + max over parents, ancestor
// sets sorted, holding the term, closed under parents; go_resolve lands on a live term or -1.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "go.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const go_ontology_t *o) {
  size_t n = go_n_terms(o);
  int32_t *anc = malloc((n ? n : 1) * sizeof *anc);
  uint8_t *in = calloc(n ? n : 1, 1);
  for (size_t i = 0; i < n; i++) {
    const go_term_t *t = go_term(o, (int32_t)i);
    if (!t || !t->name || !t->id[0]) abort();
    if (go_lookup(o, t->id) != (int32_t)i) abort();
    int32_t r = go_resolve(o, (int32_t)i);
    if (r >= 0 && go_term(o, r)->obsolete) abort();
    if (!t->obsolete && r != (int32_t)i) abort();
    for (uint32_t k = 0; k < t->n_consider; k++)
      if (t->consider[k] < 0 || (size_t)t->consider[k] >= n) abort();
    if (t->obsolete) {
      if (t->n_parents || t->depth != -1 || t->level != -1) abort();
      continue;
    }
    if (t->level < 0 || t->depth < t->level) abort();
    int32_t dmax = -1;
    for (uint32_t k = 0; k < t->n_parents; k++) {
      int32_t p = t->parents[k];
      if (p < 0 || (size_t)p >= n || go_term(o, p)->obsolete) abort();
      if (go_term(o, p)->depth > dmax) dmax = go_term(o, p)->depth;
      unsigned rel = t->parent_rel[k];
      if (rel != GO_REL_IS_A && rel != GO_REL_PART_OF && rel != GO_REL_REGULATES) abort();
    }
    if (t->depth != dmax + 1) abort();
    size_t m = go_ancestors(o, (int32_t)i, anc, n);
    if (m == 0 || m > n) abort();
    int self = 0;
    for (size_t k = 0; k < m; k++) {
      if (k && anc[k - 1] >= anc[k]) abort();
      self |= anc[k] == (int32_t)i;
      in[anc[k]] = 1;
    }
    if (!self) abort();
    for (size_t k = 0; k < m; k++) {  // closed under parents
      const go_term_t *a = go_term(o, anc[k]);
      for (uint32_t j = 0; j < a->n_parents; j++)
        if (!in[a->parents[j]]) abort();
    }
    for (size_t k = 0; k < m; k++) in[anc[k]] = 0;
  }
  free(anc);
  free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  go_load_opts_t op = {0};
  if (size) {
    op.rels = data[0] & 7u;  // 0 = default
    data++;
    size--;
  }
  ps_err_t err = {0, {0}};
  go_ontology_t *o = NULL;
  int rc = go_ontology_parse(&o, (const char *)data, size, "fuzz.obo", &op, &err);
  if (rc < 0) {
    if (o || err.code != rc || strncmp(err.msg, "fuzz.obo: line ", 15)) abort();
    return 0;
  }
  if (rc != 0 || !o) abort();
  check(o);
  go_ontology_destroy(&o);
  return 0;
}
