// go_annot.c — Gene Ontology, the annotation half: protein -> terms lists loaded from the TSV of
// ../shared/data, GAF 2.x or UniProt flat files (plain or gzip, through io.h's line reader), and
// their propagation to ancestors. The ontology is go_obo.c; what both use is go_priv.h. See go.h.
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "go_priv.h"

typedef struct annot_priv {
  strmap_t *map;
  uint32_t *cap;       // per protein: capacity of terms[i]
  size_t cap_proteins;
} annot_priv_t;

go_annotations_t *go_annotations_new(void) {
  go_annotations_t *a = ps_xcalloc(1, sizeof *a);
  annot_priv_t *pv = ps_xcalloc(1, sizeof *pv);
  pv->map = strmap_new(1024);
  a->index = pv;
  return a;
}

void go_annotations_destroy(go_annotations_t **ap) {
  if (!ap || !*ap) return;
  go_annotations_t *a = *ap;
  for (size_t i = 0; i < a->n_proteins; i++) {
    free(a->protein_ids[i]);
    free(a->terms[i]);
  }
  free(a->protein_ids);
  free(a->n_terms);
  free(a->terms);
  annot_priv_t *pv = a->index;
  if (pv) {
    strmap_destroy(&pv->map);
    free(pv->cap);
    free(pv);
  }
  free(a);
  *ap = NULL;
}

int64_t go_annotations_find(const go_annotations_t *a, const char *accession) {
  if (!a || !accession) return -1;
  const annot_priv_t *pv = a->index;
  uint64_t v;
  return strmap_get(pv->map, accession, &v) ? (int64_t)v : -1;
}

static void annot_push(go_annotations_t *a, const char *acc, int32_t term) {
  annot_priv_t *pv = a->index;
  uint64_t v;
  size_t i;
  if (strmap_get(pv->map, acc, &v)) {
    i = (size_t)v;
  } else {
    if (a->n_proteins == pv->cap_proteins) {
      size_t c = pv->cap_proteins ? pv->cap_proteins * 2 : 1024;
      a->protein_ids = ps_xrealloc(a->protein_ids, c * sizeof *a->protein_ids);
      a->n_terms = ps_xrealloc(a->n_terms, c * sizeof *a->n_terms);
      a->terms = ps_xrealloc(a->terms, c * sizeof *a->terms);
      pv->cap = ps_xrealloc(pv->cap, c * sizeof *pv->cap);
      pv->cap_proteins = c;
    }
    i = a->n_proteins++;
    a->protein_ids[i] = ps_xstrdup(acc);
    a->n_terms[i] = 0;
    a->terms[i] = NULL;
    pv->cap[i] = 0;
    strmap_put(pv->map, acc, i);
  }
  if (a->n_terms[i] == pv->cap[i]) {
    pv->cap[i] = pv->cap[i] ? pv->cap[i] * 2 : 8;
    a->terms[i] = ps_xrealloc(a->terms[i], pv->cap[i] * sizeof **a->terms);
  }
  a->terms[i][a->n_terms[i]++] = term;
}

// Sort and de-duplicate every protein's list.
static void annot_tidy(go_annotations_t *a) {
  for (size_t i = 0; i < a->n_proteins; i++) {
    int32_t *v = a->terms[i];
    uint32_t n = a->n_terms[i], m = 0;
    if (n < 2) continue;
    qsort(v, n, sizeof *v, go_cmp_i32);
    for (uint32_t k = 0; k < n; k++)
      if (!m || v[k] != v[m - 1]) v[m++] = v[k];
    a->n_terms[i] = m;
  }
}

typedef struct annot_ctx {
  const char *name;  // the file, for messages
  uint64_t line;     // the line being read
  go_annotations_t *a;
  const go_ontology_t *o;
  const go_annot_opts_t *opts;
  go_annot_report_t rep;
} annot_ctx_t;

static int in_list(const char *const *list, const char *s) {
  for (; *list; list++)
    if (!strcmp(*list, s)) return 1;
  return 0;
}

// One annotation line: count it in exactly one final bucket (see go.h).
static void annot_one(annot_ctx_t *c, const char *acc, const char *goid, const char *evidence, int not_q) {
  c->rep.lines++;
  if (not_q) {
    c->rep.not_qualified++;
    return;
  }
  int alt = 0;
  int32_t t = go_lookup_raw(c->o, goid, &alt);
  if (t < 0) {
    c->rep.unknown_ids++;
    return;
  }
  if (alt) c->rep.alt_ids_mapped++;
  if (c->o->terms[t].obsolete) {
    t = go_resolve(c->o, t);
    if (t < 0) {
      c->rep.obsolete_skipped++;
      return;
    }
    c->rep.obsolete_mapped++;
  }
  const go_annot_opts_t *op = c->opts;
  if (op && ((op->evidence_include && !in_list(op->evidence_include, evidence)) ||
             (op->evidence_exclude && in_list(op->evidence_exclude, evidence)))) {
    c->rep.evidence_filtered++;
    return;
  }
  if (op && op->namespace_only >= 0 && (int)c->o->terms[t].ns != op->namespace_only) {
    c->rep.namespace_filtered++;
    return;
  }
  c->rep.used++;
  annot_push(c->a, acc, t);
}

// Split s in place at tabs into at most max fields; returns the number of fields.
static size_t split_tabs(char *s, char **f, size_t max) {
  size_t n = 0;
  for (;;) {
    if (n < max) f[n] = s;
    n++;
    char *t = strchr(s, '\t');
    if (!t) break;
    *t = 0;
    s = t + 1;
  }
  return n;
}

enum { FMT_TSV, FMT_GAF, FMT_UNIPROT };

static int tsv_line(annot_ctx_t *c, char *ln, int *first, ps_err_t *err) {
  if (!ln[strspn(ln, GO_BLANKS)] || ln[0] == '#' || ln[0] == '!') return 0;
  char *f[8];
  size_t nf = split_tabs(ln, f, 8);
  if (*first) {
    *first = 0;
    if (nf >= 2 && !strchr(f[1], ':')) return 0;  // header
  }
  if (nf < 3)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: %zu column%s, expected accession, go_id, evidence (tab-separated)",
                      c->name, (unsigned long long)c->line, nf, nf == 1 ? "" : "s");
  char *acc = go_trim(f[0]), *go = go_trim(f[1]), *ev = go_trim(f[2]);
  if (!*acc || !*go)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: empty %s", c->name, (unsigned long long)c->line,
                      !*acc ? "accession" : "GO id");
  annot_one(c, acc, go, ev, 0);
  return 0;
}

static int gaf_line(annot_ctx_t *c, char *ln, ps_err_t *err) {
  if (ln[0] == '!' || !ln[strspn(ln, GO_BLANKS)]) return 0;
  char *f[17];
  size_t nf = split_tabs(ln, f, 17);
  if (nf < 15 || nf > 17)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: %zu column%s, a GAF line has 15 to 17 (tab-separated)",
                      c->name, (unsigned long long)c->line, nf, nf == 1 ? "" : "s");
  char *acc = go_trim(f[1]), *go = go_trim(f[4]), *ev = go_trim(f[6]);
  if (!*acc || !*go)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: empty %s (column %d)", c->name, (unsigned long long)c->line,
                      !*acc ? "DB object id" : "GO id", !*acc ? 2 : 5);
  int not_q = 0;
  for (char *q = f[3], *sv = NULL, *tok; (tok = strtok_r(q, "|", &sv)); q = NULL)
    if (!strcasecmp(go_trim(tok), "NOT")) not_q = 1;
  annot_one(c, acc, go, ev, not_q);
  return 0;
}

static int uniprot_line(annot_ctx_t *c, char *ln, size_t n, char **acc, size_t *acc_cap, ps_err_t *err) {
  unsigned long long L = (unsigned long long)c->line;
  if (n == 0) return 0;
  if (!strncmp(ln, "//", 2) && !ln[2 + strspn(ln + 2, GO_BLANKS)]) {
    (*acc)[0] = 0;
    return 0;
  }
  if (n < 2 || (n > 2 && strncmp(ln + 2, "   ", n > 5 ? 3 : n - 2)))
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: not a UniProt flat-file line (\"XX   ...\" or \"//\")", c->name, L);
  if (!strncmp(ln, "ID", 2)) {
    (*acc)[0] = 0;
  } else if (!strncmp(ln, "AC", 2)) {
    if ((*acc)[0]) return 0;  // only the first AC line names the entry
    char *a = ln + 2;
    a += strspn(a, GO_BLANKS);
    size_t al = strcspn(a, GO_BLANKS ";");
    if (!al) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: AC line without an accession", c->name, L);
    if (al + 1 > *acc_cap) {
      *acc_cap = al + 1;
      *acc = ps_xrealloc(*acc, *acc_cap);
    }
    memcpy(*acc, a, al);
    (*acc)[al] = 0;
  } else if (!strncmp(ln, "DR   GO;", 8)) {
    // DR   GO; GO:0005737; C:cytoplasm; IDA:UniProtKB.
    char *go = ln + 8, *semi = memchr(go, ';', n - 8), *last = strrchr(ln, ';');
    if (!semi || semi == last)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: DR GO line without \"GO:id; X:name; CODE:source\"", c->name, L);
    *semi = 0;
    go = go_trim(go);
    char *ev = go_trim(last + 1);
    ev[strcspn(ev, ":.")] = 0;
    if (!*go || !*ev)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: DR GO line with an empty %s", c->name, L,
                        !*go ? "GO id" : "evidence code");
    if (!(*acc)[0]) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: DR GO line before any AC line", c->name, L);
    annot_one(c, *acc, go, ev, 0);
  }
  return 0;
}

static int annot_load(go_annotations_t *a, const go_ontology_t *o, const char *path, const go_annot_opts_t *opts,
                      go_annot_report_t *rep, int fmt, ps_err_t *err) {
  PS_ASSERT(a && o && path);
  annot_ctx_t c;
  memset(&c, 0, sizeof c);
  c.a = a;
  c.o = o;
  c.opts = opts;
  ps_lines_t *s = NULL;
  char *acc = ps_xcalloc(1, 32), *ln;
  size_t acc_cap = 32, len;
  int first = 1;
  int rc = ps_lines_open(&s, path, 0, err);
  if (rc < 0) goto fail;
  c.name = ps_lines_name(s);
  while ((rc = go_next_line(s, &ln, &len, err)) > 0) {
    c.line = ps_lines_lineno(s);
    if (fmt == FMT_TSV) rc = tsv_line(&c, ln, &first, err);
    else if (fmt == FMT_GAF) rc = gaf_line(&c, ln, err);
    else rc = uniprot_line(&c, ln, len, &acc, &acc_cap, err);
    if (rc < 0) break;
  }
fail:
  annot_tidy(a);
  if (rep) *rep = c.rep;
  ps_lines_close(&s);
  free(acc);
  return rc < 0 ? rc : 0;
}

int go_annotations_load_tsv(go_annotations_t *a, const go_ontology_t *o, const char *path, const go_annot_opts_t *opts,
                            go_annot_report_t *rep, ps_err_t *err) {
  return annot_load(a, o, path, opts, rep, FMT_TSV, err);
}

int go_annotations_load_gaf(go_annotations_t *a, const go_ontology_t *o, const char *path, const go_annot_opts_t *opts,
                            go_annot_report_t *rep, ps_err_t *err) {
  return annot_load(a, o, path, opts, rep, FMT_GAF, err);
}

int go_annotations_load_uniprot(go_annotations_t *a, const go_ontology_t *o, const char *path,
                                const go_annot_opts_t *opts, go_annot_report_t *rep, ps_err_t *err) {
  return annot_load(a, o, path, opts, rep, FMT_UNIPROT, err);
}

void go_annotations_propagate(go_annotations_t *a, const go_ontology_t *o) {
  PS_ASSERT(a && o);
  if (!a->n_proteins || !o->n) return;
  annot_priv_t *pv = a->index;
  uint64_t *seen = ps_xcalloc((o->n + 63) / 64, sizeof *seen);
  go_ivec_t st = {0, 0, 0}, found = {0, 0, 0};
  for (size_t i = 0; i < a->n_proteins; i++) {
    found.n = 0;
    for (uint32_t k = 0; k < a->n_terms[i]; k++) {
      int32_t s0 = a->terms[i][k];
      if (s0 >= 0 && (size_t)s0 < o->n) go_up_closure(o, s0, seen, &st, &found);
    }
    for (size_t k = 0; k < found.n; k++) seen[found.v[k] >> 6] &= ~(1ull << (found.v[k] & 63));  // clean for the next
    qsort(found.v, found.n, sizeof *found.v, go_cmp_i32);
    if (found.n > pv->cap[i]) {
      pv->cap[i] = (uint32_t)found.n;
      a->terms[i] = ps_xrealloc(a->terms[i], found.n * sizeof **a->terms);
    }
    if (found.n) memcpy(a->terms[i], found.v, found.n * sizeof *found.v);
    a->n_terms[i] = (uint32_t)found.n;
  }
  free(seen);
  free(st.v);
  free(found.v);
}
