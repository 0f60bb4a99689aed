// go_obo.c — Gene Ontology, the ontology half: OBO 1.2 parser, lookups and ancestry. The
// annotation loaders are in go_annot.c; what both use is in go_priv.h. See go.h.
//
// The OBO file is read line by line (io.h's line reader: plain, gzip or memory) into a growing
// term array plus a list of pending references (alt_ids, edges, replaced_by, consider) kept as
// strings; they are resolved once the whole file is read, so forward references work. An
// iterative DFS over the followed edges then checks for cycles and computes depth (longest path
// to a root), depth_is_a (the same along is_a edges only) and level (shortest) when a term is
// finished (all its parents are done by then).
// Ancestors are found by a DFS with a visited bitmap (go_up_closure, also used by propagation).
#include <stdlib.h>
#include <string.h>

#include "go_priv.h"

#define GO_MAX_LINE ((size_t)1 << 28)  // 256 MiB: longer is not a text file we read

// ---- small helpers ---------------------------------------------------------------------------
char *go_trim(char *s) {
  s += strspn(s, GO_BLANKS);
  size_t n = strlen(s);
  while (n && strchr(GO_BLANKS, s[n - 1])) s[--n] = 0;
  return s;
}

// The first token of an OBO value: up to a blank, a '!' comment or a '{' modifier block.
// Returns its length; *start points at it.
static size_t obo_token(const char *v, const char **start) {
  v += strspn(v, GO_BLANKS);
  *start = v;
  size_t n = strcspn(v, GO_BLANKS "!{");
  return n;
}
int go_next_line(ps_lines_t *s, char **ln, size_t *len, ps_err_t *err) {
  int rc = ps_lines_next(s, ln, len, err);
  if (rc <= 0) return rc;
  const char *z = memchr(*ln, 0, *len);
  if (z)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu, column %zu: NUL byte (binary data, not a text file)",
                      ps_lines_name(s), (unsigned long long)ps_lines_lineno(s), (size_t)(z - *ln) + 1);
  return 1;
}

int go_cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

void go_ivec_push(go_ivec_t *a, int32_t x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = ps_xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = x;
}

// ---- ontology --------------------------------------------------------------------------------
enum { REF_ALT = 1, REF_EDGE, REF_REPLACED, REF_CONSIDER };

typedef struct ref {
  int32_t term;
  uint8_t kind;
  uint8_t rel;    // go_rel_t for REF_EDGE
  uint32_t line;
  size_t off;     // target id in the string pool
} ref_t;

typedef struct parser {
  const char *name;
  unsigned rels;
  go_ontology_t *o;
  ref_t *refs;
  size_t n_refs, cap_refs;
  char *pool;
  size_t pool_len, pool_cap;
  int in_term;      // 1 in a [Term] stanza, 0 in the header or another stanza
  int have_id;
  go_namespace_t default_ns;
  size_t n_edges_ignored;
} parser_t;

static size_t pool_add(parser_t *p, const char *s, size_t n) {
  if (p->pool_len + n + 1 > p->pool_cap) {
    size_t c = p->pool_cap ? p->pool_cap : 4096;
    while (c < p->pool_len + n + 1) c *= 2;
    p->pool = ps_xrealloc(p->pool, c);
    p->pool_cap = c;
  }
  size_t off = p->pool_len;
  memcpy(p->pool + off, s, n);
  p->pool[off + n] = 0;
  p->pool_len += n + 1;
  return off;
}

static void ref_add(parser_t *p, int kind, unsigned rel, uint64_t line, const char *id, size_t n) {
  if (p->n_refs == p->cap_refs) {
    p->cap_refs = p->cap_refs ? p->cap_refs * 2 : 1024;
    p->refs = ps_xrealloc(p->refs, p->cap_refs * sizeof *p->refs);
  }
  ref_t *r = &p->refs[p->n_refs++];
  r->term = (int32_t)(p->o->n - 1);
  r->kind = (uint8_t)kind;
  r->rel = (uint8_t)rel;
  r->line = (uint32_t)line;
  r->off = pool_add(p, id, n);
}

static go_namespace_t ns_parse(const char *s, size_t n) {
  if (n == 18 && !strncmp(s, "biological_process", n)) return GO_NS_BP;
  if (n == 18 && !strncmp(s, "molecular_function", n)) return GO_NS_MF;
  if (n == 18 && !strncmp(s, "cellular_component", n)) return GO_NS_CC;
  return GO_NS_UNKNOWN;
}

const char *go_namespace_name(go_namespace_t ns) {
  switch (ns) {
  case GO_NS_BP: return "biological_process";
  case GO_NS_MF: return "molecular_function";
  case GO_NS_CC: return "cellular_component";
  default: return "unknown";
  }
}

static int term_finish(parser_t *p, ps_err_t *err) {
  if (!p->in_term) return 0;
  p->in_term = 0;
  go_term_t *t = &p->o->terms[p->o->n - 1];
  if (!t->name) t->name = ps_xstrdup("");
  if (!p->have_id)
    return ps_err_set(err, PS_EFORMAT, "%s: line %u: [Term] stanza without an id", p->name, t->line);
  return 0;
}

static int term_begin(parser_t *p, uint64_t line, ps_err_t *err) {
  go_ontology_t *o = p->o;
  if (o->n >= INT32_MAX - 1)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: too many terms", p->name, (unsigned long long)line);
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 1024;
    o->terms = ps_xrealloc(o->terms, o->cap * sizeof *o->terms);
  }
  go_term_t *t = &o->terms[o->n++];
  memset(t, 0, sizeof *t);
  t->ns = p->default_ns;
  t->replaced_by = -1;
  t->depth = t->level = t->depth_is_a = -1;
  t->line = (uint32_t)line;
  p->in_term = 1;
  p->have_id = 0;
  return 0;
}

static int parse_line(parser_t *p, char *ln, uint64_t line, ps_err_t *err) {
  if (line > UINT32_MAX)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: file too long", p->name, (unsigned long long)line);
  char *s = go_trim(ln);
  if (!*s || *s == '!') return 0;
  if (*s == '[') {
    size_t n = strlen(s);
    if (s[n - 1] != ']' || n < 3)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: malformed stanza header (expected \"[Name]\")", p->name,
                        (unsigned long long)line);
    int rc = term_finish(p, err);
    if (rc < 0) return rc;
    s[n - 1] = 0;
    if (!strcmp(go_trim(s + 1), "Term")) return term_begin(p, line, err);
    return 0;  // [Typedef], [Instance], anything else: skipped
  }
  char *colon = strchr(s, ':');
  if (!colon || colon == s)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: expected \"tag: value\", got \"%.40s%s\"", p->name,
                      (unsigned long long)line, s, strlen(s) > 40 ? "..." : "");
  *colon = 0;
  const char *tag = go_trim(s);
  char *val = colon + 1;
  const char *tok;
  size_t tl = obo_token(val, &tok);
  if (!p->in_term) {
    if (!strcmp(tag, "default-namespace") && p->o->n == 0) p->default_ns = ns_parse(tok, tl);
    return 0;
  }
  go_ontology_t *o = p->o;
  go_term_t *t = &o->terms[o->n - 1];
  unsigned long long L = (unsigned long long)line;
  if (!strcmp(tag, "id")) {
    if (p->have_id) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: second id in one [Term] stanza", p->name, L);
    if (!tl) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: empty id", p->name, L);
    if (tl >= sizeof t->id)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: id \"%.*s\" longer than %zu bytes", p->name, L,
                        tl > 40 ? 40 : (int)tl, tok, sizeof t->id - 1);
    memcpy(t->id, tok, tl);
    t->id[tl] = 0;
    p->have_id = 1;
  } else if (!strcmp(tag, "name")) {
    if (!t->name) t->name = ps_xstrdup(go_trim(val));
  } else if (!strcmp(tag, "namespace")) {
    t->ns = ns_parse(tok, tl);
  } else if (!strcmp(tag, "is_obsolete")) {
    t->obsolete = tl == 4 && !strncmp(tok, "true", 4);
  } else if (!strcmp(tag, "alt_id") || !strcmp(tag, "is_a") || !strcmp(tag, "replaced_by") ||
             !strcmp(tag, "consider")) {
    if (!tl) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: %s without an id", p->name, L, tag);
    if (tag[0] == 'a') ref_add(p, REF_ALT, 0, line, tok, tl);
    else if (tag[0] == 'r') ref_add(p, REF_REPLACED, 0, line, tok, tl);
    else if (tag[0] == 'c') ref_add(p, REF_CONSIDER, 0, line, tok, tl);
    else if (p->rels & GO_REL_IS_A) ref_add(p, REF_EDGE, GO_REL_IS_A, line, tok, tl);
  } else if (!strcmp(tag, "relationship")) {
    const char *tgt;
    size_t gl = obo_token(tok + tl, &tgt);
    if (!tl || !gl)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: relationship needs \"type target\"", p->name, L);
    unsigned rel = 0;
    if (tl == 7 && !strncmp(tok, "part_of", 7)) rel = GO_REL_PART_OF;
    else if ((tl == 9 && !strncmp(tok, "regulates", 9)) || (tl == 20 && !strncmp(tok, "positively_regulates", 20)) ||
             (tl == 20 && !strncmp(tok, "negatively_regulates", 20)))
      rel = GO_REL_REGULATES;
    if (rel & p->rels) ref_add(p, REF_EDGE, rel, line, tgt, gl);
    else p->n_edges_ignored++;
  }
  return 0;
}

int32_t go_lookup_raw(const go_ontology_t *o, const char *id, int *is_alt) {
  uint64_t v;
  if (!o->index || !strmap_get(o->index, id, &v)) return -1;
  if (is_alt) *is_alt = (v & GO_ALT_BIT) != 0;
  return (int32_t)(v & 0xffffffffu);
}

// Message naming the terms on the cycle: stack[from..top], then the first one again.
static int cycle_error(const parser_t *p, const int32_t *stack, size_t from, size_t top, ps_err_t *err) {
  const go_ontology_t *o = p->o;
  char path[640];
  size_t pl = 0, len = top - from + 1;
  for (size_t i = 0; i < len && pl < 500; i++) {
    if (i == 8 && len > 9) {
      pl += (size_t)snprintf(path + pl, sizeof path - pl, " -> ... (%zu terms)", len);
      break;
    }
    pl += (size_t)snprintf(path + pl, sizeof path - pl, "%s%s", i ? " -> " : "", o->terms[stack[from + i]].id);
  }
  if (pl < sizeof path) snprintf(path + pl, sizeof path - pl, " -> %s", o->terms[stack[from]].id);
  const go_term_t *t0 = &o->terms[stack[from]];
  return ps_err_set(err, PS_EFORMAT, "%s: line %u: term %s is on a cycle of is_a/relationship edges: %s", p->name,
                    t0->line, t0->id, path);
}

static int resolve(parser_t *p, ps_err_t *err) {
  go_ontology_t *o = p->o;
  size_t n = o->n;
  int rc = 0;
  int32_t *seen_child = NULL, *stack = NULL;
  uint8_t *seen_rel = NULL, *color = NULL;
  uint32_t *pos = NULL;
  o->index = strmap_new(n + n / 4 + 16);
  for (size_t i = 0; i < n; i++) {
    int32_t prev = go_lookup_raw(o, o->terms[i].id, NULL);
    if (prev >= 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %u: duplicate id %s (first defined at line %u)", p->name,
                      o->terms[i].line, o->terms[i].id, o->terms[prev].line);
      goto fail;
    }
    strmap_put(o->index, o->terms[i].id, (uint64_t)i);
  }
  size_t n_edges = 0, n_consider = 0;
  for (size_t k = 0; k < p->n_refs; k++) {
    const ref_t *r = &p->refs[k];
    if (r->kind == REF_EDGE) n_edges++;
    if (r->kind == REF_CONSIDER) n_consider++;
    if (r->kind != REF_ALT) continue;
    const char *id = p->pool + r->off;
    int alt = 0;
    int32_t prev = go_lookup_raw(o, id, &alt);
    if (prev == r->term) continue;  // repeated alt_id, or the term's own id
    if (prev >= 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %u: alt_id %s of %s is already %s %s", p->name, r->line, id,
                      o->terms[r->term].id, alt ? "an alt_id of" : "the id of", alt ? o->terms[prev].id : "a term");
      goto fail;
    }
    strmap_put(o->index, id, (uint64_t)r->term | GO_ALT_BIT);
    o->info.n_alt_ids++;
  }
  // edges (refs are in term order), replaced_by, consider
  o->edge_slab = ps_xmalloc((n_edges ? n_edges : 1) * sizeof *o->edge_slab);
  o->rel_slab = ps_xmalloc(n_edges ? n_edges : 1);
  o->consider_slab = ps_xmalloc((n_consider ? n_consider : 1) * sizeof *o->consider_slab);
  seen_child = ps_xmalloc((n ? n : 1) * sizeof *seen_child);
  seen_rel = ps_xcalloc(n ? n : 1, 1);
  for (size_t i = 0; i < n; i++) seen_child[i] = -1;
  size_t ne = 0, nc = 0;
  for (size_t k = 0; k < p->n_refs; k++) {
    const ref_t *r = &p->refs[k];
    go_term_t *t = &o->terms[r->term];
    const char *id = p->pool + r->off;
    if (r->kind == REF_ALT) continue;
    int32_t tg = go_lookup_raw(o, id, NULL);
    if (r->kind == REF_REPLACED || r->kind == REF_CONSIDER) {
      if (tg < 0) {
        o->info.n_refs_unresolved++;
      } else if (r->kind == REF_REPLACED) {
        if (t->replaced_by < 0 && tg != r->term) t->replaced_by = tg;
      } else {
        if (!t->consider) t->consider = o->consider_slab + nc;  // contiguous, as for the edges
        o->consider_slab[nc++] = tg;
        t->n_consider++;
      }
      continue;
    }
    if (t->obsolete) continue;  // obsolete terms have no edges
    const char *rn = r->rel == GO_REL_IS_A ? "is_a" : r->rel == GO_REL_PART_OF ? "part_of" : "regulates";
    if (tg < 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %u: %s %s of %s: no such term in the file", p->name, r->line, rn, id,
                      t->id);
      goto fail;
    }
    if (o->terms[tg].obsolete) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %u: %s %s of %s: that term is obsolete", p->name, r->line, rn, id,
                      t->id);
      goto fail;
    }
    if (seen_child[tg] == r->term && (seen_rel[tg] & r->rel)) continue;  // same edge twice
    if (seen_child[tg] != r->term) seen_rel[tg] = 0;
    seen_child[tg] = r->term;
    seen_rel[tg] |= r->rel;
    if (!t->parents) {  // refs come in term order: this term's edges are contiguous
      t->parents = o->edge_slab + ne;
      t->parent_rel = o->rel_slab + ne;
    }
    o->edge_slab[ne] = tg;
    o->rel_slab[ne] = r->rel;
    ne++;
    t->n_parents++;
    if (r->rel == GO_REL_IS_A) o->info.n_is_a++;
    else if (r->rel == GO_REL_PART_OF) o->info.n_part_of++;
    else o->info.n_regulates++;
  }
  free(seen_child);
  free(seen_rel);
  seen_child = NULL;
  seen_rel = NULL;

  // cycle check + depth/level: iterative DFS towards the parents; a term is finished after all
  // its parents, so its depth/level follow from theirs.
  color = ps_xcalloc(n ? n : 1, 1);
  stack = ps_xmalloc((n ? n : 1) * sizeof *stack);
  pos = ps_xmalloc((n ? n : 1) * sizeof *pos);
  for (size_t s = 0; s < n; s++) {
    if (color[s] || o->terms[s].obsolete) continue;
    size_t top = 0;
    stack[0] = (int32_t)s;
    pos[0] = 0;
    color[s] = 1;
    for (;;) {
      int32_t v = stack[top];
      go_term_t *t = &o->terms[v];
      if (pos[top] < t->n_parents) {
        int32_t q = t->parents[pos[top]++];
        if (color[q] == 1) {
          size_t from = top;
          while (stack[from] != q) from--;
          rc = cycle_error(p, stack, from, top, err);
          goto fail;
        }
        if (color[q] == 0) {
          color[q] = 1;
          top++;
          stack[top] = q;
          pos[top] = 0;
        }
        continue;
      }
      color[v] = 2;
      if (!t->n_parents) {
        t->depth = t->level = t->depth_is_a = 0;
        o->info.n_roots++;
      } else {
        int32_t dmax = -1, lmin = INT32_MAX, amax = -1;
        for (uint32_t j = 0; j < t->n_parents; j++) {
          const go_term_t *q = &o->terms[t->parents[j]];
          if (q->depth > dmax) dmax = q->depth;
          if (q->level < lmin) lmin = q->level;
          if (t->parent_rel[j] == GO_REL_IS_A && q->depth_is_a > amax) amax = q->depth_is_a;
        }
        t->depth = dmax + 1;
        t->level = lmin + 1;
        t->depth_is_a = amax + 1;  // 0 when no is_a parent
      }
      if (t->depth > o->info.max_depth) o->info.max_depth = t->depth;
      if (top == 0) break;
      top--;
    }
  }
  for (size_t i = 0; i < n; i++) o->info.n_obsolete += o->terms[i].obsolete;
  o->info.n_terms = n;
  o->info.n_edges_ignored = p->n_edges_ignored;
  o->info.rels = p->rels;
fail:
  free(seen_child);
  free(seen_rel);
  free(color);
  free(stack);
  free(pos);
  return rc;
}

static int parse_lines(go_ontology_t **out, ps_lines_t *src, const go_load_opts_t *opts, ps_err_t *err) {
  parser_t p;
  memset(&p, 0, sizeof p);
  p.name = ps_lines_name(src);
  p.rels = opts && opts->rels ? opts->rels : (GO_REL_IS_A | GO_REL_PART_OF);
  p.default_ns = GO_NS_UNKNOWN;
  p.o = ps_xcalloc(1, sizeof *p.o);
  int rc;
  char *ln;
  size_t len;
  while ((rc = go_next_line(src, &ln, &len, err)) > 0)
    if ((rc = parse_line(&p, ln, ps_lines_lineno(src), err)) < 0) break;
  if (rc == 0) rc = term_finish(&p, err);
  if (rc == 0) rc = resolve(&p, err);
  free(p.refs);
  free(p.pool);
  if (rc < 0) {
    go_ontology_destroy(&p.o);
    return rc;
  }
  *out = p.o;
  return 0;
}

int go_ontology_load(go_ontology_t **out, const char *path, const go_load_opts_t *opts, ps_err_t *err) {
  PS_ASSERT(out && path);
  *out = NULL;
  ps_lines_t *src;
  int rc = ps_lines_open(&src, path, GO_MAX_LINE, err);
  if (rc == 0) rc = parse_lines(out, src, opts, err);
  ps_lines_close(&src);
  return rc;
}

int go_ontology_parse(go_ontology_t **out, const char *buf, size_t len, const char *name, const go_load_opts_t *opts,
                      ps_err_t *err) {
  PS_ASSERT(out);
  *out = NULL;
  ps_lines_t *src = ps_lines_open_mem(buf, len, name ? name : "buffer", GO_MAX_LINE);
  int rc = parse_lines(out, src, opts, err);
  ps_lines_close(&src);
  return rc;
}

void go_ontology_destroy(go_ontology_t **op) {
  if (!op || !*op) return;
  go_ontology_t *o = *op;
  for (size_t i = 0; i < o->n; i++) free(o->terms[i].name);
  free(o->terms);
  strmap_destroy(&o->index);
  free(o->edge_slab);
  free(o->rel_slab);
  free(o->consider_slab);
  free(o);
  *op = NULL;
}

size_t go_n_terms(const go_ontology_t *o) { return o ? o->n : 0; }

const go_term_t *go_term(const go_ontology_t *o, int32_t idx) {
  if (!o || idx < 0 || (size_t)idx >= o->n) return NULL;
  return &o->terms[idx];
}

int32_t go_lookup(const go_ontology_t *o, const char *goid) {
  if (!o || !goid) return -1;
  return go_lookup_raw(o, goid, NULL);
}

int32_t go_resolve(const go_ontology_t *o, int32_t idx) {
  if (!o) return -1;
  for (size_t steps = 0; steps <= o->n; steps++) {
    if (idx < 0 || (size_t)idx >= o->n) return -1;
    if (!o->terms[idx].obsolete) return idx;
    idx = o->terms[idx].replaced_by;
  }
  return -1;  // a replaced_by loop among obsolete terms
}

void go_ontology_info(const go_ontology_t *o, go_ontology_info_t *info) {
  PS_ASSERT(o && info);
  *info = o->info;
}

void go_up_closure(const go_ontology_t *o, int32_t s0, uint64_t *seen, go_ivec_t *st, go_ivec_t *found) {
  if (seen[s0 >> 6] & (1ull << (s0 & 63))) return;
  seen[s0 >> 6] |= 1ull << (s0 & 63);
  st->n = 0;
  go_ivec_push(st, s0);
  while (st->n) {
    int32_t v = st->v[--st->n];
    go_ivec_push(found, v);
    const go_term_t *t = &o->terms[v];
    for (uint32_t j = 0; j < t->n_parents; j++) {
      int32_t q = t->parents[j];
      if (seen[q >> 6] & (1ull << (q & 63))) continue;
      seen[q >> 6] |= 1ull << (q & 63);
      go_ivec_push(st, q);
    }
  }
}

size_t go_ancestors(const go_ontology_t *o, int32_t idx, int32_t *out, size_t cap) {
  if (!o || idx < 0 || (size_t)idx >= o->n) return 0;
  uint64_t *seen = ps_xcalloc((o->n + 63) / 64, sizeof *seen);
  go_ivec_t st = {0, 0, 0}, found = {0, 0, 0};
  go_up_closure(o, idx, seen, &st, &found);
  qsort(found.v, found.n, sizeof *found.v, go_cmp_i32);
  size_t n = found.n;
  if (out) memcpy(out, found.v, (n < cap ? n : cap) * sizeof *out);
  free(seen);
  free(st.v);
  free(found.v);
  return n;
}
