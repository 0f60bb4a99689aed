// go.c — Gene Ontology: OBO 1.2 parser, ancestry, annotation loaders (TSV, GAF, UniProt flat).
//
// The OBO file is read line by line into a growing term array plus a list of pending
// references (alt_ids, edges, replaced_by, consider) kept as strings; they are resolved once the
// whole file is read, so forward references work. An iterative DFS over the followed edges then
// checks for cycles and computes depth (longest path to a root) and level (shortest) when a term
// is finished (all its parents are done by then). Ancestors are found by a DFS with a visited
// bitmap; propagation reuses one stamp array for all proteins.
#include "go.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "strmap.h"

#define GO_MAX_LINE (1u << 28)          // 256 MiB: longer is not a text file we read
#define GO_ALT_BIT (1ull << 32)         // strmap value flag: key is an alt_id
#define BLANKS " \t\r\v\f"

// ---- line source: gzip / plain file or memory ------------------------------------------------
typedef struct linesrc {
  const char *name;
  gzFile gz;
  const char *mem;
  size_t mem_len, mem_pos;
  unsigned char buf[1 << 16];
  size_t pos, len;
  int eof;
  char *ln;
  size_t ln_len, ln_cap;
  uint64_t line;
} linesrc_t;

static int src_open_file(linesrc_t *s, const char *path, ps_err_t *err) {
  memset(s, 0, sizeof *s);
  s->name = path;
  errno = 0;
  s->gz = gzopen(path, "rb");
  if (!s->gz) {
    int e = errno ? errno : ENOMEM;
    return ps_err_set(err, -e, "%s: cannot open: %s", path, strerror(e));
  }
  gzbuffer(s->gz, 1 << 17);
  return 0;
}

static void src_open_mem(linesrc_t *s, const char *buf, size_t len, const char *name) {
  memset(s, 0, sizeof *s);
  s->name = name;
  s->mem = buf;
  s->mem_len = buf ? len : 0;
}

static void src_close(linesrc_t *s) {
  if (s->gz) gzclose(s->gz);
  s->gz = NULL;
  free(s->ln);
  s->ln = NULL;
}

static int src_gz_fail(linesrc_t *s, ps_err_t *err) {
  int zerr = Z_OK;
  const char *m = gzerror(s->gz, &zerr);
  if (zerr == Z_ERRNO) {
    int e = errno ? errno : EIO;
    return ps_err_set(err, -e, "%s: line %llu: read error: %s", s->name, (unsigned long long)s->line + 1,
                      strerror(e));
  }
  int code = zerr == Z_BUF_ERROR ? PS_ETRUNC : zerr == Z_MEM_ERROR ? PS_ENOMEM : PS_EFORMAT;
  if (!m || !*m) m = "gzip error";
  size_t pl = strlen(s->name);  // zlib prefixes its message with the path: drop it
  if (!strncmp(m, s->name, pl) && m[pl] == ':' && m[pl + 1] == ' ') m += pl + 2;
  return ps_err_set(err, code, "%s: line %llu: %s%s", s->name, (unsigned long long)s->line + 1, m,
                    code == PS_ETRUNC ? " (truncated gzip file)" : " (corrupt gzip data)");
}

// Next line into s->ln (no newline, no trailing '\r', NUL-terminated). 1 = line, 0 = end, <0 error.
static int src_next(linesrc_t *s, ps_err_t *err) {
  s->ln_len = 0;
  int got = 0;
  for (;;) {
    if (s->pos == s->len) {
      if (s->eof) break;
      if (!s->gz) {
        size_t n = s->mem_len - s->mem_pos;
        if (n > sizeof s->buf) n = sizeof s->buf;
        if (n == 0) {
          s->eof = 1;
          break;
        }
        memcpy(s->buf, s->mem + s->mem_pos, n);
        s->mem_pos += n;
        s->pos = 0;
        s->len = n;
        continue;
      }
      errno = 0;
      int n = gzread(s->gz, s->buf, sizeof s->buf);
      if (n < 0) return src_gz_fail(s, err);
      if (n == 0) {
        int zerr = Z_OK;
        gzerror(s->gz, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END) return src_gz_fail(s, err);
        s->eof = 1;
        break;
      }
      s->pos = 0;
      s->len = (size_t)n;
    }
    unsigned char *p = s->buf + s->pos, *nl = memchr(p, '\n', s->len - s->pos);
    size_t take = nl ? (size_t)(nl - p) : s->len - s->pos;
    if (s->ln_len + take + 1 > s->ln_cap) {
      if (s->ln_len + take + 1 > GO_MAX_LINE)
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu: longer than 256 MiB (not a text file?)", s->name,
                          (unsigned long long)s->line + 1);
      size_t c = s->ln_cap ? s->ln_cap : 256;
      while (c < s->ln_len + take + 1) c *= 2;
      s->ln = ps_xrealloc(s->ln, c);
      s->ln_cap = c;
    }
    memcpy(s->ln + s->ln_len, p, take);
    s->ln_len += take;
    s->pos += take;
    got = 1;
    if (nl) {
      s->pos++;
      break;
    }
  }
  if (!got) return 0;
  if (s->ln_len && s->ln[s->ln_len - 1] == '\r') s->ln_len--;
  s->ln[s->ln_len] = 0;
  s->line++;
  const char *z = memchr(s->ln, 0, s->ln_len);
  if (z)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu, column %zu: NUL byte (binary data, not a text file)", s->name,
                      (unsigned long long)s->line, (size_t)(z - s->ln) + 1);
  return 1;
}

// ---- small helpers ---------------------------------------------------------------------------
static char *trim(char *s) {
  s += strspn(s, BLANKS);
  size_t n = strlen(s);
  while (n && strchr(BLANKS, s[n - 1])) s[--n] = 0;
  return s;
}

// The first token of an OBO value: up to a blank, a '!' comment or a '{' modifier block.
// Returns its length; *start points at it.
static size_t obo_token(const char *v, const char **start) {
  v += strspn(v, BLANKS);
  *start = v;
  size_t n = strcspn(v, BLANKS "!{");
  return n;
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

struct go_ontology {
  size_t n, cap;
  go_term_t *terms;
  strmap_t *index;  // id -> term | GO_ALT_BIT for alt_ids
  int32_t *edge_slab;
  uint8_t *rel_slab;
  int32_t *consider_slab;
  go_ontology_info_t info;
};

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
  t->depth = t->level = -1;
  t->line = (uint32_t)line;
  p->in_term = 1;
  p->have_id = 0;
  return 0;
}

static int parse_line(parser_t *p, char *ln, uint64_t line, ps_err_t *err) {
  if (line > UINT32_MAX)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: file too long", p->name, (unsigned long long)line);
  char *s = trim(ln);
  if (!*s || *s == '!') return 0;
  if (*s == '[') {
    size_t n = strlen(s);
    if (s[n - 1] != ']' || n < 3)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: malformed stanza header (expected \"[Name]\")", p->name,
                        (unsigned long long)line);
    int rc = term_finish(p, err);
    if (rc < 0) return rc;
    s[n - 1] = 0;
    if (!strcmp(trim(s + 1), "Term")) return term_begin(p, line, err);
    return 0;  // [Typedef], [Instance], anything else: skipped
  }
  char *colon = strchr(s, ':');
  if (!colon || colon == s)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: expected \"tag: value\", got \"%.40s%s\"", p->name,
                      (unsigned long long)line, s, strlen(s) > 40 ? "..." : "");
  *colon = 0;
  const char *tag = trim(s);
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
    if (!t->name) t->name = ps_xstrdup(trim(val));
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

static int lookup_raw(const go_ontology_t *o, const char *id, int *is_alt) {
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
    int32_t prev = lookup_raw(o, o->terms[i].id, NULL);
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
    int32_t prev = lookup_raw(o, id, &alt);
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
    int32_t tg = lookup_raw(o, id, NULL);
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
        t->depth = t->level = 0;
        o->info.n_roots++;
      } else {
        int32_t dmax = -1, lmin = INT32_MAX;
        for (uint32_t j = 0; j < t->n_parents; j++) {
          const go_term_t *q = &o->terms[t->parents[j]];
          if (q->depth > dmax) dmax = q->depth;
          if (q->level < lmin) lmin = q->level;
        }
        t->depth = dmax + 1;
        t->level = lmin + 1;
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

static int parse_src(go_ontology_t **out, linesrc_t *src, const go_load_opts_t *opts, ps_err_t *err) {
  parser_t p;
  memset(&p, 0, sizeof p);
  p.name = src->name;
  p.rels = opts && opts->rels ? opts->rels : (GO_REL_IS_A | GO_REL_PART_OF);
  p.default_ns = GO_NS_UNKNOWN;
  p.o = ps_xcalloc(1, sizeof *p.o);
  int rc;
  while ((rc = src_next(src, err)) > 0)
    if ((rc = parse_line(&p, src->ln, src->line, err)) < 0) break;
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
  linesrc_t *src = ps_xmalloc(sizeof *src);
  int rc = src_open_file(src, path, err);
  if (rc == 0) rc = parse_src(out, src, opts, err);
  src_close(src);
  free(src);
  return rc;
}

int go_ontology_parse(go_ontology_t **out, const char *buf, size_t len, const char *name, const go_load_opts_t *opts,
                      ps_err_t *err) {
  PS_ASSERT(out);
  *out = NULL;
  linesrc_t *src = ps_xmalloc(sizeof *src);
  src_open_mem(src, buf, len, name ? name : "buffer");
  int rc = parse_src(out, src, opts, err);
  src_close(src);
  free(src);
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
  return lookup_raw(o, goid, NULL);
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

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

typedef struct ivec {
  int32_t *v;
  size_t n, cap;
} ivec_t;

static void ivec_push(ivec_t *a, int32_t x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = ps_xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = x;
}

size_t go_ancestors(const go_ontology_t *o, int32_t idx, int32_t *out, size_t cap) {
  if (!o || idx < 0 || (size_t)idx >= o->n) return 0;
  uint64_t *seen = ps_xcalloc((o->n + 63) / 64, sizeof *seen);
  ivec_t st = {0, 0, 0}, found = {0, 0, 0};
  ivec_push(&st, idx);
  seen[idx >> 6] |= 1ull << (idx & 63);
  while (st.n) {
    int32_t v = st.v[--st.n];
    ivec_push(&found, v);
    const go_term_t *t = &o->terms[v];
    for (uint32_t j = 0; j < t->n_parents; j++) {
      int32_t q = t->parents[j];
      if (seen[q >> 6] & (1ull << (q & 63))) continue;
      seen[q >> 6] |= 1ull << (q & 63);
      ivec_push(&st, q);
    }
  }
  qsort(found.v, found.n, sizeof *found.v, cmp_i32);
  size_t n = found.n;
  if (out) memcpy(out, found.v, (n < cap ? n : cap) * sizeof *out);
  free(seen);
  free(st.v);
  free(found.v);
  return n;
}

// ---- annotations -----------------------------------------------------------------------------
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
    qsort(v, n, sizeof *v, cmp_i32);
    for (uint32_t k = 0; k < n; k++)
      if (!m || v[k] != v[m - 1]) v[m++] = v[k];
    a->n_terms[i] = m;
  }
}

typedef struct annot_ctx {
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
  int32_t t = lookup_raw(c->o, goid, &alt);
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

static int tsv_line(annot_ctx_t *c, linesrc_t *s, int *first, ps_err_t *err) {
  char *ln = s->ln;
  if (!ln[strspn(ln, BLANKS)] || ln[0] == '#' || ln[0] == '!') return 0;
  char *f[8];
  size_t nf = split_tabs(ln, f, 8);
  if (*first) {
    *first = 0;
    if (nf >= 2 && !strchr(f[1], ':')) return 0;  // header
  }
  if (nf < 3)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: %zu column%s, expected accession, go_id, evidence (tab-separated)",
                      s->name, (unsigned long long)s->line, nf, nf == 1 ? "" : "s");
  char *acc = trim(f[0]), *go = trim(f[1]), *ev = trim(f[2]);
  if (!*acc || !*go)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: empty %s", s->name, (unsigned long long)s->line,
                      !*acc ? "accession" : "GO id");
  annot_one(c, acc, go, ev, 0);
  return 0;
}

static int gaf_line(annot_ctx_t *c, linesrc_t *s, ps_err_t *err) {
  char *ln = s->ln;
  if (ln[0] == '!' || !ln[strspn(ln, BLANKS)]) return 0;
  char *f[17];
  size_t nf = split_tabs(ln, f, 17);
  if (nf < 15 || nf > 17)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: %zu column%s, a GAF line has 15 to 17 (tab-separated)",
                      s->name, (unsigned long long)s->line, nf, nf == 1 ? "" : "s");
  char *acc = trim(f[1]), *go = trim(f[4]), *ev = trim(f[6]);
  if (!*acc || !*go)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: empty %s (column %d)", s->name, (unsigned long long)s->line,
                      !*acc ? "DB object id" : "GO id", !*acc ? 2 : 5);
  int not_q = 0;
  for (char *q = f[3], *sv = NULL, *tok; (tok = strtok_r(q, "|", &sv)); q = NULL)
    if (!strcasecmp(trim(tok), "NOT")) not_q = 1;
  annot_one(c, acc, go, ev, not_q);
  return 0;
}

static int uniprot_line(annot_ctx_t *c, linesrc_t *s, char **acc, size_t *acc_cap, ps_err_t *err) {
  char *ln = s->ln;
  size_t n = s->ln_len;
  unsigned long long L = (unsigned long long)s->line;
  if (n == 0) return 0;
  if (!strncmp(ln, "//", 2) && !ln[2 + strspn(ln + 2, BLANKS)]) {
    (*acc)[0] = 0;
    return 0;
  }
  if (n < 2 || (n > 2 && strncmp(ln + 2, "   ", n > 5 ? 3 : n - 2)))
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: not a UniProt flat-file line (\"XX   ...\" or \"//\")", s->name, L);
  if (!strncmp(ln, "ID", 2)) {
    (*acc)[0] = 0;
  } else if (!strncmp(ln, "AC", 2)) {
    if ((*acc)[0]) return 0;  // only the first AC line names the entry
    char *a = ln + 2;
    a += strspn(a, BLANKS);
    size_t al = strcspn(a, BLANKS ";");
    if (!al) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: AC line without an accession", s->name, L);
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
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: DR GO line without \"GO:id; X:name; CODE:source\"", s->name, L);
    *semi = 0;
    go = trim(go);
    char *ev = trim(last + 1);
    ev[strcspn(ev, ":.")] = 0;
    if (!*go || !*ev)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: DR GO line with an empty %s", s->name, L,
                        !*go ? "GO id" : "evidence code");
    if (!(*acc)[0]) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: DR GO line before any AC line", s->name, L);
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
  linesrc_t *s = ps_xmalloc(sizeof *s);
  char *acc = ps_xcalloc(1, 32);
  size_t acc_cap = 32;
  int first = 1;
  int rc = src_open_file(s, path, err);
  if (rc < 0) goto fail;
  while ((rc = src_next(s, err)) > 0) {
    if (fmt == FMT_TSV) rc = tsv_line(&c, s, &first, err);
    else if (fmt == FMT_GAF) rc = gaf_line(&c, s, err);
    else rc = uniprot_line(&c, s, &acc, &acc_cap, err);
    if (rc < 0) break;
  }
fail:
  annot_tidy(a);
  if (rep) *rep = c.rep;
  src_close(s);
  free(s);
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
  uint32_t *stamp = ps_xcalloc(o->n, sizeof *stamp);
  ivec_t st = {0, 0, 0}, found = {0, 0, 0};
  uint32_t cur = 0;
  for (size_t i = 0; i < a->n_proteins; i++) {
    if (++cur == 0) {  // wrapped: start the stamps again
      memset(stamp, 0, o->n * sizeof *stamp);
      cur = 1;
    }
    found.n = 0;
    for (uint32_t k = 0; k < a->n_terms[i]; k++) {
      int32_t s0 = a->terms[i][k];
      if (s0 < 0 || (size_t)s0 >= o->n || stamp[s0] == cur) continue;
      stamp[s0] = cur;
      st.n = 0;
      ivec_push(&st, s0);
      while (st.n) {
        int32_t v = st.v[--st.n];
        ivec_push(&found, v);
        const go_term_t *t = &o->terms[v];
        for (uint32_t j = 0; j < t->n_parents; j++) {
          int32_t q = t->parents[j];
          if (stamp[q] == cur) continue;
          stamp[q] = cur;
          ivec_push(&st, q);
        }
      }
    }
    qsort(found.v, found.n, sizeof *found.v, cmp_i32);
    if (found.n > pv->cap[i]) {
      pv->cap[i] = (uint32_t)found.n;
      a->terms[i] = ps_xrealloc(a->terms[i], found.n * sizeof **a->terms);
    }
    if (found.n) memcpy(a->terms[i], found.v, found.n * sizeof *found.v);
    a->n_terms[i] = (uint32_t)found.n;
  }
  free(stamp);
  free(st.v);
  free(found.v);
}
