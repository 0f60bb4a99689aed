// Gene Ontology: the two real OBO files (term / obsolete / alt_id counts made independently,
// root namespaces, alt_id and replaced_by resolution), ancestor sets, depth and level checked
// against an independent Python implementation (/usr/bin/python3, stdlib only; skipped without
// it), the real human annotation TSV (line accounting, IEA filter, propagation of every protein
// checked against Python by a CRC over all (protein, term) pairs), the two UniProt flat files
// (DR GO lines against grep), and hand-made ontologies / GAF / TSV / flat files for each rule:
// is_a + part_of propagation, regulates on and off, alt_id, obsolete with replaced_by chains,
// cycles (error, no hang), malformed lines and missing ids (errors naming file and line).
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "go.h"

static char g_dir[64];
static char g_shared[PATH_MAX];
static char g_obo22[PATH_MAX + 64], g_obo13[PATH_MAX + 64], g_tsv[PATH_MAX + 64];

// ---- helpers -----------------------------------------------------------------------------
static int find_shared(void) {
  const char *sh = getenv("PROTSAE_SHARED");
  const char *src = getenv("PROTSAE_SRC");
  for (int k = 0; k < 2; k++) {
    if (k == 0 && !sh) continue;
    if (k == 0) snprintf(g_shared, sizeof g_shared, "%s", sh);
    else snprintf(g_shared, sizeof g_shared, "%s/../shared", src ? src : ".");
    snprintf(g_obo22, sizeof g_obo22, "%s/data/human-swissprot/go-2022-07-01.obo.gz", g_shared);
    snprintf(g_obo13, sizeof g_obo13, "%s/data/ontology/go-2013-07-13.obo.gz", g_shared);
    snprintf(g_tsv, sizeof g_tsv, "%s/data/human-swissprot/go_annotations.tsv.gz", g_shared);
    if (access(g_obo22, R_OK) == 0 && access(g_obo13, R_OK) == 0 && access(g_tsv, R_OK) == 0) return 1;
  }
  return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/test_go.XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static void tmp_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_dir, name); }

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  size_t n = strlen(text);
  assert_int_equal(fwrite(text, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const char *text) {
  gzFile g = gzopen(path, "wb");
  assert_non_null(g);
  int n = (int)strlen(text);
  assert_int_equal(gzwrite(g, text, (unsigned)n), n);
  assert_int_equal(gzclose(g), Z_OK);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long long sh_count(const char *cmd) {
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  long long v = -1;
  if (fscanf(p, "%lld", &v) != 1) v = -1;
  int st = pclose(p);
  if (st != 0) fprintf(stderr, "command failed (%d): %s\n", st, cmd);
  assert_int_equal(st, 0);
  return v;
}

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

static int32_t idx_of(const go_ontology_t *o, const char *id) {
  int32_t i = go_lookup(o, id);
  if (i < 0) fail_msg("%s not found", id);
  return i;
}

// Ancestors of a term as a malloc'd array (*n entries).
static int32_t *ancestors(const go_ontology_t *o, int32_t t, size_t *n) {
  size_t c = go_ancestors(o, t, NULL, 0);
  int32_t *v = malloc((c ? c : 1) * sizeof *v);
  assert_int_equal(go_ancestors(o, t, v, c), c);
  *n = c;
  return v;
}

// Ancestor ids of a term, space-separated in index order ("" when none).
static void anc_ids(const go_ontology_t *o, int32_t t, char *buf, size_t cap) {
  size_t n;
  int32_t *v = ancestors(o, t, &n);
  buf[0] = 0;
  size_t l = 0;
  for (size_t i = 0; i < n && l < cap; i++) l += (size_t)snprintf(buf + l, cap - l, "%s%s", i ? " " : "", go_term(o, v[i])->id);
  free(v);
}

static int have_python(void) {
  return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import gzip, zlib' >/dev/null 2>&1") == 0;
}

static const go_annot_opts_t k_all = {NULL, NULL, -1};

// ---- hand-made ontology ------------------------------------------------------------------
// file order (index): T:4=0 T:0=1 T:1=2 T:2=3 T:3=4 T:5=5 T:6=6 T:7=7 MF:root=8
static const char k_small[] =
    "format-version: 1.2\n"
    "default-namespace: biological_process\n"
    "! a comment line\n"
    "\n"
    "[Term]\n"
    "id: T:0000004 ! D, defined before its parents\n"
    "name: dee\n"
    "is_a: T:0000002 ! B\n"
    "relationship: part_of T:0000001 ! A\n"
    "is_a: T:0000002 {source=\"dup\"} ! the same edge twice\n"
    "intersection_of: T:0000000\n"
    "intersection_of: part_of T:0000001\n"
    "\n"
    "[Term]\n"
    "id: T:0000000\n"
    "name: root\n"
    "namespace: biological_process\n"
    "synonym: \"wurzel\" EXACT []\n"
    "\n"
    "[Term]\n"
    "id: T:0000001\n"
    "name: A\n"
    "is_a: T:0000000\n"
    "\n"
    "[Term]\n"
    "id: T:0000002\n"
    "name: B\n"
    "alt_id: T:0000012\n"
    "relationship: part_of T:0000001 {source=\"x\"} ! A\n"
    "relationship: has_part T:0000099 ! kinds not followed may name anything\n"
    "\n"
    "[Term]\n"
    "id: T:0000003\n"
    "name: C\n"
    "relationship: negatively_regulates T:0000002\n"
    "\n"
    "[Term]\n"
    "id: T:0000005\n"
    "name: obsolete E\n"
    "is_a: T:0000000\n"
    "is_obsolete: true\n"
    "replaced_by: T:0000006\n"
    "consider: T:0000003\n"
    "\n"
    "[Term]\n"
    "id: T:0000006\n"
    "name: obsolete F\n"
    "is_obsolete: true\n"
    "replaced_by: T:0000012\n"
    "\n"
    "[Term]\n"
    "id: T:0000007\n"
    "name: obsolete G\n"
    "is_obsolete: true\n"
    "consider: T:0000098\n"
    "\n"
    "[Term]\n"
    "id: MF:root\n"
    "namespace: molecular_function\n"
    "\n"
    "[Typedef]\n"
    "id: part_of\n"
    "is_a: T:9999999\n"
    "is_transitive: true\n";

static go_ontology_t *parse_small(unsigned rels) {
  go_load_opts_t op = {rels};
  go_ontology_t *o = NULL;
  ps_err_t err = {0};
  int rc = go_ontology_parse(&o, k_small, strlen(k_small), "small.obo", &op, &err);
  if (rc) fail_msg("small.obo: %s", err.msg);
  assert_non_null(o);
  return o;
}

static void test_small_default(void **state) {
  (void)state;
  go_ontology_t *o = parse_small(0);
  assert_int_equal(go_n_terms(o), 9);
  const go_term_t *d = go_term(o, 0);
  assert_string_equal(d->id, "T:0000004");
  assert_string_equal(d->name, "dee");
  assert_int_equal(d->ns, GO_NS_BP);  // from default-namespace
  assert_int_equal(d->n_parents, 2);  // the repeated is_a counted once
  assert_int_equal(d->parents[0], 3);
  assert_int_equal(d->parent_rel[0], GO_REL_IS_A);
  assert_int_equal(d->parents[1], 2);
  assert_int_equal(d->parent_rel[1], GO_REL_PART_OF);
  assert_int_equal(d->depth, 3);  // D -is_a-> B -part_of-> A -is_a-> root
  assert_int_equal(d->level, 2);  // D -part_of-> A -is_a-> root
  assert_int_equal(d->line, 5);
  assert_string_equal(go_term(o, 8)->name, "");
  assert_int_equal(go_term(o, 8)->ns, GO_NS_MF);
  assert_null(go_term(o, 9));
  assert_null(go_term(o, -1));
  char buf[256];
  anc_ids(o, 0, buf, sizeof buf);
  assert_string_equal(buf, "T:0000004 T:0000000 T:0000001 T:0000002");
  anc_ids(o, 4, buf, sizeof buf);  // C: regulates not followed by default -> a root
  assert_string_equal(buf, "T:0000003");
  assert_int_equal(go_term(o, 4)->depth, 0);
  // alt_id, obsolete, replaced_by chains, consider
  assert_int_equal(go_lookup(o, "T:0000012"), 3);
  assert_int_equal(go_lookup(o, "T:0000002"), 3);
  assert_int_equal(go_lookup(o, "T:0000099"), -1);
  assert_int_equal(go_lookup(o, "part_of"), -1);  // Typedef ids are not terms
  const go_term_t *e = go_term(o, 5);
  assert_true(e->obsolete);
  assert_int_equal(e->n_parents, 0);  // obsolete terms keep no edges
  assert_int_equal(e->depth, -1);
  assert_int_equal(e->level, -1);
  assert_int_equal(e->replaced_by, 6);
  assert_int_equal(e->n_consider, 1);
  assert_int_equal(e->consider[0], 4);
  assert_int_equal(go_term(o, 6)->replaced_by, 3);  // through the alt_id
  assert_int_equal(go_resolve(o, 5), 3);            // E -> F -> B
  assert_int_equal(go_resolve(o, 7), -1);           // G: no replacement
  assert_int_equal(go_resolve(o, 3), 3);
  assert_int_equal(go_resolve(o, 42), -1);
  assert_int_equal(go_term(o, 7)->n_consider, 0);  // T:0000098 is not in the file
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  assert_int_equal(in.n_terms, 9);
  assert_int_equal(in.n_obsolete, 3);
  assert_int_equal(in.n_roots, 3);  // root, C, MF:root
  assert_int_equal(in.n_alt_ids, 1);
  assert_int_equal(in.n_is_a, 2);
  assert_int_equal(in.n_part_of, 2);
  assert_int_equal(in.n_regulates, 0);
  assert_int_equal(in.n_edges_ignored, 2);  // negatively_regulates, has_part
  assert_int_equal(in.n_refs_unresolved, 1);
  assert_int_equal(in.max_depth, 3);
  assert_int_equal(in.rels, GO_REL_IS_A | GO_REL_PART_OF);
  // go_ancestors: sizing call, short buffer, bad index
  int32_t v[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
  assert_int_equal(go_ancestors(o, 0, NULL, 0), 4);
  assert_int_equal(go_ancestors(o, 0, v, 2), 4);
  assert_int_equal(v[0], 0);
  assert_int_equal(v[1], 1);
  assert_int_equal(v[2], -7);
  assert_int_equal(go_ancestors(o, 99, v, 8), 0);
  assert_int_equal(go_ancestors(o, 5, v, 8), 1);  // an obsolete term is its own only ancestor
  assert_string_equal(go_namespace_name(GO_NS_CC), "cellular_component");
  assert_string_equal(go_namespace_name(GO_NS_UNKNOWN), "unknown");
  go_ontology_destroy(&o);
  assert_null(o);
  go_ontology_destroy(&o);
  go_ontology_destroy(NULL);
}

static void test_small_rels(void **state) {
  (void)state;
  char buf[256];
  go_ontology_t *o = parse_small(GO_REL_IS_A | GO_REL_PART_OF | GO_REL_REGULATES);
  anc_ids(o, 4, buf, sizeof buf);
  assert_string_equal(buf, "T:0000000 T:0000001 T:0000002 T:0000003");
  assert_int_equal(go_term(o, 4)->depth, 3);
  assert_int_equal(go_term(o, 4)->level, 3);
  assert_int_equal(go_term(o, 4)->parent_rel[0], GO_REL_REGULATES);
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  assert_int_equal(in.n_roots, 2);
  assert_int_equal(in.n_regulates, 1);
  assert_int_equal(in.n_edges_ignored, 1);
  go_ontology_destroy(&o);

  o = parse_small(GO_REL_IS_A);  // part_of off: B becomes a root, D sees only B
  anc_ids(o, 0, buf, sizeof buf);
  assert_string_equal(buf, "T:0000004 T:0000002");
  assert_int_equal(go_term(o, 0)->depth, 1);
  assert_int_equal(go_term(o, 3)->depth, 0);
  go_ontology_info(o, &in);
  assert_int_equal(in.n_roots, 4);
  go_ontology_destroy(&o);

  o = parse_small(GO_REL_PART_OF);  // part_of alone
  anc_ids(o, 0, buf, sizeof buf);
  assert_string_equal(buf, "T:0000004 T:0000001");
  go_ontology_destroy(&o);
}

// Plain and gzip files give the same ontology; CRLF line ends are accepted.
static void test_small_files(void **state) {
  (void)state;
  char plain[PATH_MAX], gz[PATH_MAX], crlf[PATH_MAX], trunc[PATH_MAX];
  tmp_path(plain, sizeof plain, "small.obo");
  tmp_path(gz, sizeof gz, "small.obo.gz");
  tmp_path(crlf, sizeof crlf, "crlf.obo");
  tmp_path(trunc, sizeof trunc, "trunc.obo.gz");
  write_file(plain, k_small);
  write_gz(gz, k_small);
  size_t n = strlen(k_small);
  char *c = malloc(2 * n + 1), *q = c;
  for (size_t i = 0; i < n; i++) {
    if (k_small[i] == '\n') *q++ = '\r';
    *q++ = k_small[i];
  }
  *q = 0;
  write_file(crlf, c);
  free(c);
  const char *paths[] = {plain, gz, crlf};
  char buf[256];
  for (int k = 0; k < 3; k++) {
    go_ontology_t *o = NULL;
    ps_err_t err = {0};
    int rc = go_ontology_load(&o, paths[k], NULL, &err);
    if (rc) fail_msg("%s: %s", paths[k], err.msg);
    assert_int_equal(go_n_terms(o), 9);
    anc_ids(o, 0, buf, sizeof buf);
    assert_string_equal(buf, "T:0000004 T:0000000 T:0000001 T:0000002");
    assert_string_equal(go_term(o, 0)->name, "dee");
    assert_string_equal(go_term(o, 2)->name, "A");
    go_ontology_destroy(&o);
  }
  // a gzip file cut in the middle
  FILE *f = fopen(gz, "rb");
  assert_non_null(f);
  char raw[4096];
  size_t got = fread(raw, 1, sizeof raw, f);
  fclose(f);
  f = fopen(trunc, "wb");
  assert_non_null(f);
  fwrite(raw, 1, got / 2, f);
  fclose(f);
  go_ontology_t *o = NULL;
  ps_err_t err = {0};
  int rc = go_ontology_load(&o, trunc, NULL, &err);
  assert_true(rc == PS_ETRUNC || rc == PS_EFORMAT);
  assert_null(o);
  assert_msg_has(&err, trunc);
  assert_msg_has(&err, "line ");
  printf("  truncated gzip: %s\n", err.msg);
  // missing file
  rc = go_ontology_load(&o, "/nonexistent/go.obo", NULL, &err);
  assert_int_equal(rc, -ENOENT);
  assert_msg_has(&err, "/nonexistent/go.obo");
}

typedef struct bad_case {
  const char *text;
  unsigned rels;
  const char *want[4];  // substrings the message must contain
} bad_case_t;

static void test_broken_ontologies(void **state) {
  (void)state;
  static const bad_case_t cases[] = {
      // cycles: must stop with an error naming the terms, not hang
      {"[Term]\nid: X:1\nis_a: X:2\n\n[Term]\nid: X:2\nis_a: X:3\n\n[Term]\nid: X:3\nis_a: X:1\n",
       0,
       {"bad.obo: line ", "cycle", "X:1 -> X:2 -> X:3 -> X:1", NULL}},
      {"[Term]\nid: X:1\nis_a: X:1\n", 0, {"bad.obo: line 1:", "X:1 -> X:1", NULL}},
      {"[Term]\nid: X:0\n\n[Term]\nid: X:1\nis_a: X:0\nrelationship: part_of X:2\n\n[Term]\nid: X:2\n"
       "relationship: positively_regulates X:1\n",
       GO_REL_IS_A | GO_REL_PART_OF | GO_REL_REGULATES,
       {"cycle", "X:1", "X:2", NULL}},
      // malformed lines, missing / bad ids
      {"[Term]\nid: X:1\nthis line has no colon\n", 0, {"bad.obo: line 3:", "tag: value", NULL}},
      {"[Term]\nname: no id\n\n[Term]\nid: X:2\n", 0, {"bad.obo: line 1:", "without an id", NULL}},
      {"[Term]\nid: X:1\n[Term]\nname: last one\n", 0, {"bad.obo: line 3:", "without an id", NULL}},
      {"[Term]\nid: X:1\nid: X:2\n", 0, {"bad.obo: line 3:", "second id", NULL}},
      {"[Term]\nid:\n", 0, {"bad.obo: line 2:", "empty id", NULL}},
      {"[Term]\nid: X:0123456789ABCDEF\n", 0, {"bad.obo: line 2:", "longer than 15", NULL}},
      {"[Term]\nid: X:1\n\n[Term]\nid: X:1\n", 0, {"bad.obo: line 4:", "duplicate id X:1", "line 1", NULL}},
      {"[Term\nid: X:1\n", 0, {"bad.obo: line 1:", "stanza header", NULL}},
      {"[Term]\nid: X:1\nis_a: X:9 ! nowhere\n", 0, {"bad.obo: line 3:", "is_a X:9 of X:1", "no such term", NULL}},
      {"[Term]\nid: X:1\nis_a:\n", 0, {"bad.obo: line 3:", "is_a without an id", NULL}},
      {"[Term]\nid: X:1\nrelationship: part_of\n", 0, {"bad.obo: line 3:", "type target", NULL}},
      {"[Term]\nid: X:1\nrelationship: part_of X:2\n\n[Term]\nid: X:2\nis_obsolete: true\n", 0,
       {"bad.obo: line 3:", "part_of X:2 of X:1", "obsolete", NULL}},
      {"[Term]\nid: X:1\nalt_id: X:2\n\n[Term]\nid: X:2\n", 0, {"bad.obo: line 3:", "alt_id X:2", NULL}},
      {"[Term]\nid: X:1\nalt_id: X:3\n\n[Term]\nid: X:2\nalt_id: X:3\n", 0, {"bad.obo: line 7:", "alt_id X:3 of X:2", "alt_id of X:1", NULL}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    go_ontology_t *o = (go_ontology_t *)&o;  // must be reset to NULL
    ps_err_t err = {0};
    go_load_opts_t op = {cases[k].rels};
    int rc = go_ontology_parse(&o, cases[k].text, strlen(cases[k].text), "bad.obo", &op, &err);
    if (rc != PS_EFORMAT) fail_msg("case %zu: rc %d (%s), want PS_EFORMAT", k, rc, err.msg);
    assert_int_equal(err.code, PS_EFORMAT);
    assert_null(o);
    for (int j = 0; j < 4 && cases[k].want[j]; j++)
      if (!strstr(err.msg, cases[k].want[j])) fail_msg("case %zu: '%s' lacks '%s'", k, err.msg, cases[k].want[j]);
  }
  // the regulates cycle loads when regulates is not followed
  go_ontology_t *o = NULL;
  ps_err_t err = {0};
  assert_int_equal(go_ontology_parse(&o, cases[2].text, strlen(cases[2].text), "ok.obo", NULL, &err), 0);
  go_ontology_destroy(&o);
  // a long cycle is named in a bounded message
  size_t cap = 200000, len = 0;
  char *big = malloc(cap);
  for (int i = 0; i < 5000; i++)
    len += (size_t)snprintf(big + len, cap - len, "[Term]\nid: C:%d\nis_a: C:%d\n\n", i, (i + 1) % 5000);
  assert_int_equal(go_ontology_parse(&o, big, len, "ring.obo", NULL, &err), PS_EFORMAT);
  assert_msg_has(&err, "cycle");
  assert_msg_has(&err, "(5000 terms)");
  // a deep chain (no recursion in the parser): depth 4999
  len = 0;
  for (int i = 0; i < 5000; i++)
    len += i ? (size_t)snprintf(big + len, cap - len, "[Term]\nid: C:%d\nis_a: C:%d\n\n", i, i - 1)
             : (size_t)snprintf(big + len, cap - len, "[Term]\nid: C:0\n\n");
  assert_int_equal(go_ontology_parse(&o, big, len, "chain.obo", NULL, &err), 0);
  assert_int_equal(go_term(o, 4999)->depth, 4999);
  assert_int_equal(go_term(o, 4999)->level, 4999);
  assert_int_equal(go_ancestors(o, 4999, NULL, 0), 5000);
  go_ontology_destroy(&o);
  free(big);
  // NUL byte, empty input, header only
  static const char nul[] = "[Term]\nid: X:1\0\n";
  assert_int_equal(go_ontology_parse(&o, nul, sizeof nul - 1, "nul.obo", NULL, &err), PS_EFORMAT);
  assert_msg_has(&err, "nul.obo: line 2");
  assert_int_equal(go_ontology_parse(&o, "", 0, NULL, NULL, &err), 0);
  assert_int_equal(go_n_terms(o), 0);
  assert_int_equal(go_ancestors(o, 0, NULL, 0), 0);
  assert_int_equal(go_lookup(o, "GO:0008150"), -1);
  go_ontology_destroy(&o);
  assert_int_equal(go_ontology_parse(&o, "format-version: 1.2\n", 20, NULL, NULL, &err), 0);
  assert_int_equal(go_n_terms(o), 0);
  go_ontology_destroy(&o);
}

// ---- hand-made annotations -----------------------------------------------------------------
#define GAF17(acc, qual, go, ev, asp) \
  "UniProtKB\t" acc "\tG" acc "\t" qual "\t" go "\tPMID:1\t" ev "\t\t" asp "\tname\t\tprotein\ttaxon:9606\t20220101\tUniProt\t\t\n"

static const char k_gaf[] = "!gaf-version: 2.2\n"
                            "!generated-by: hand\n"
                            GAF17("P1", "enables", "T:0000004", "IDA", "P")
                            GAF17("P1", "NOT|enables", "T:0000001", "IDA", "P")
                            GAF17("P2", "", "T:0000012", "IEA", "P")
                            GAF17("P2", "involved_in", "T:0000005", "IDA", "P")
                            GAF17("P3", "", "T:0000007", "IDA", "P")
                            GAF17("P3", "", "T:9999999", "IDA", "P")
                            "UniProtKB\tP4\tGP4\t\tMF:root\tPMID:1\tTAS\t\tF\tname\t\tprotein\ttaxon:9606\t20220101\tUniProt\n";

static void check_report(const go_annot_report_t *r, uint64_t lines, uint64_t used, uint64_t unknown, uint64_t obs_mapped,
                         uint64_t obs_skipped, uint64_t alt, uint64_t notq, uint64_t ev, uint64_t ns) {
  if (r->lines != lines || r->used != used || r->unknown_ids != unknown || r->obsolete_mapped != obs_mapped ||
      r->obsolete_skipped != obs_skipped || r->alt_ids_mapped != alt || r->not_qualified != notq ||
      r->evidence_filtered != ev || r->namespace_filtered != ns)
    fail_msg("report lines %llu used %llu unknown %llu obs_mapped %llu obs_skipped %llu alt %llu not %llu ev %llu ns %llu; "
             "want %llu %llu %llu %llu %llu %llu %llu %llu %llu",
             (unsigned long long)r->lines, (unsigned long long)r->used, (unsigned long long)r->unknown_ids,
             (unsigned long long)r->obsolete_mapped, (unsigned long long)r->obsolete_skipped,
             (unsigned long long)r->alt_ids_mapped, (unsigned long long)r->not_qualified,
             (unsigned long long)r->evidence_filtered, (unsigned long long)r->namespace_filtered,
             (unsigned long long)lines, (unsigned long long)used, (unsigned long long)unknown,
             (unsigned long long)obs_mapped, (unsigned long long)obs_skipped, (unsigned long long)alt,
             (unsigned long long)notq, (unsigned long long)ev, (unsigned long long)ns);
  assert_int_equal(r->lines, r->used + r->unknown_ids + r->obsolete_skipped + r->not_qualified + r->evidence_filtered +
                                 r->namespace_filtered);
}

static void assert_terms(const go_annotations_t *a, const go_ontology_t *o, const char *acc, const char *want) {
  int64_t p = go_annotations_find(a, acc);
  if (p < 0) fail_msg("%s not among the proteins", acc);
  char buf[512];
  size_t l = 0;
  buf[0] = 0;
  for (uint32_t k = 0; k < a->n_terms[p]; k++) {
    if (k) assert_true(a->terms[p][k - 1] < a->terms[p][k]);
    l += (size_t)snprintf(buf + l, sizeof buf - l, "%s%s", k ? " " : "", go_term(o, a->terms[p][k])->id);
  }
  if (strcmp(buf, want)) fail_msg("%s: terms '%s', want '%s'", acc, buf, want);
}

static void test_gaf(void **state) {
  (void)state;
  go_ontology_t *o = parse_small(0);
  char path[PATH_MAX];
  tmp_path(path, sizeof path, "small.gaf.gz");
  write_gz(path, k_gaf);
  ps_err_t err = {0};
  go_annot_report_t r;
  go_annotations_t *a = go_annotations_new();
  assert_int_equal(go_annotations_load_gaf(a, o, path, NULL, &r, &err), 0);
  check_report(&r, 7, 4, 1, 1, 1, 1, 1, 0, 0);
  assert_int_equal(a->n_proteins, 3);  // P3 has no kept line
  assert_string_equal(a->protein_ids[0], "P1");
  assert_string_equal(a->protein_ids[2], "P4");
  assert_int_equal(go_annotations_find(a, "P3"), -1);
  assert_int_equal(go_annotations_find(a, "P2"), 1);
  assert_terms(a, o, "P1", "T:0000004");
  assert_terms(a, o, "P2", "T:0000002");  // alt_id and E -> F -> B merge into one
  assert_terms(a, o, "P4", "MF:root");
  go_annotations_propagate(a, o);
  assert_terms(a, o, "P1", "T:0000004 T:0000000 T:0000001 T:0000002");
  assert_terms(a, o, "P2", "T:0000000 T:0000001 T:0000002");
  assert_terms(a, o, "P4", "MF:root");
  go_annotations_propagate(a, o);  // idempotent
  assert_terms(a, o, "P1", "T:0000004 T:0000000 T:0000001 T:0000002");
  go_annotations_destroy(&a);
  assert_null(a);

  // evidence exclude / include, namespace
  static const char *const no_iea[] = {"IEA", NULL};
  static const char *const only_ida[] = {"IDA", NULL};
  go_annot_opts_t op = {NULL, no_iea, -1};
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_gaf(a, o, path, &op, &r, &err), 0);
  check_report(&r, 7, 3, 1, 1, 1, 1, 1, 1, 0);
  assert_terms(a, o, "P2", "T:0000002");
  go_annotations_destroy(&a);
  op = (go_annot_opts_t){only_ida, NULL, -1};
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_gaf(a, o, path, &op, &r, &err), 0);
  check_report(&r, 7, 2, 1, 1, 1, 1, 1, 2, 0);
  assert_int_equal(go_annotations_find(a, "P4"), -1);
  go_annotations_destroy(&a);
  op = (go_annot_opts_t){NULL, NULL, GO_NS_MF};
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_gaf(a, o, path, &op, NULL, &err), 0);
  assert_int_equal(a->n_proteins, 1);
  assert_terms(a, o, "P4", "MF:root");
  // a second file appends to the same set
  char tsv[PATH_MAX];
  tmp_path(tsv, sizeof tsv, "more.tsv");
  write_file(tsv, "accession\tgo_id\tevidence\taspect\nP4\tT:0000003\tIDA\tP\nP9\tT:0000001\tIDA\tP\n");
  assert_int_equal(go_annotations_load_tsv(a, o, tsv, &k_all, &r, &err), 0);
  check_report(&r, 2, 2, 0, 0, 0, 0, 0, 0, 0);
  assert_int_equal(a->n_proteins, 2);
  assert_terms(a, o, "P4", "T:0000003 MF:root");
  assert_terms(a, o, "P9", "T:0000001");
  go_annotations_destroy(&a);

  // malformed GAF: 10 columns on line 4
  char bad[PATH_MAX];
  tmp_path(bad, sizeof bad, "bad.gaf");
  write_file(bad, "!gaf-version: 2.2\n" GAF17("P1", "", "T:0000004", "IDA", "P") "\n"
                  "UniProtKB\tP1\tG\t\tT:0000004\tPMID:1\tIDA\t\tP\tname\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_gaf(a, o, bad, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "bad.gaf: line 4:");
  assert_msg_has(&err, "10 columns");
  assert_int_equal(r.lines, 1);  // what was read before the error
  go_annotations_destroy(&a);
  go_annotations_destroy(&a);
  go_annotations_destroy(NULL);
  go_ontology_destroy(&o);
}

static void test_tsv_and_flat_small(void **state) {
  (void)state;
  go_ontology_t *o = parse_small(0);
  ps_err_t err = {0};
  go_annot_report_t r;
  char path[PATH_MAX];
  // TSV with a header, a comment, a blank line, an unknown and an obsolete id
  tmp_path(path, sizeof path, "a.tsv");
  write_file(path, "accession\tgo_id\tevidence\taspect\n# comment\nQ1\tT:0000002\tIDA\tP\n\n"
                   "Q1\tT:0000099\tIDA\tP\nQ2\tT:0000007\tIEA\tP\nQ2\tT:0000006\tIEA\tP\n");
  go_annotations_t *a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, path, NULL, &r, &err), 0);
  check_report(&r, 4, 2, 1, 1, 1, 0, 0, 0, 0);
  assert_terms(a, o, "Q1", "T:0000002");
  assert_terms(a, o, "Q2", "T:0000002");
  go_annotations_destroy(&a);
  // two columns on line 3
  write_file(path, "accession\tgo_id\tevidence\taspect\nQ1\tT:0000002\tIDA\tP\nQ1\tT:0000002\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.tsv: line 3:");
  assert_msg_has(&err, "2 columns");
  go_annotations_destroy(&a);
  write_file(path, "accession\tgo_id\tevidence\nQ1\t\tIDA\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.tsv: line 2: empty GO id");
  go_annotations_destroy(&a);

  // UniProt flat file
  tmp_path(path, sizeof path, "a.dat");
  write_file(path, "ID   X_HUMAN                 Reviewed;          10 AA.\n"
                   "AC   Q1; Q2;\n"
                   "AC   Q3;\n"
                   "DE   RecName: Full=X;\n"
                   "DR   GO; T:0000004; P:dee; IDA:UniProtKB.\n"
                   "DR   GO; T:0000003; P:c; IEA:InterPro.\n"
                   "DR   Pfam; PF00001; x; 1.\n"
                   "SQ   SEQUENCE   10 AA;  1 MW;  0 CRC64;\n"
                   "     MKVLAAGIVG\n"
                   "//\n"
                   "ID   Y_HUMAN\n"
                   "AC   Q9;\n"
                   "DR   GO; T:0000012; C:b; TAS:Reactome.\n"
                   "DR   GO; T:0000099; C:b; TAS:Reactome.\n"
                   "//\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_uniprot(a, o, path, NULL, &r, &err), 0);
  check_report(&r, 4, 3, 1, 0, 0, 1, 0, 0, 0);
  assert_int_equal(a->n_proteins, 2);
  assert_terms(a, o, "Q1", "T:0000004 T:0000003");
  assert_terms(a, o, "Q9", "T:0000002");
  assert_int_equal(go_annotations_find(a, "Q2"), -1);
  go_annotations_destroy(&a);
  static const char *const no_iea[] = {"IEA", NULL};
  go_annot_opts_t op = {NULL, no_iea, -1};
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_uniprot(a, o, path, &op, &r, &err), 0);
  assert_int_equal(r.evidence_filtered, 1);
  assert_terms(a, o, "Q1", "T:0000004");
  go_annotations_destroy(&a);
  // DR GO before any AC; a line that is not flat-file text
  write_file(path, "ID   Z\nDR   GO; T:0000004; P:x; IDA:U.\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_uniprot(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.dat: line 2:");
  assert_msg_has(&err, "before any AC");
  go_annotations_destroy(&a);
  write_file(path, "accession\tgo_id\tevidence\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_uniprot(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.dat: line 1:");
  assert_msg_has(&err, "not a UniProt flat-file line");
  go_annotations_destroy(&a);
  write_file(path, "ID   Z\nAC   Q1;\nDR   GO; T:0000004.\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_uniprot(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.dat: line 3:");
  go_annotations_destroy(&a);
  // missing file
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, "/nonexistent/a.tsv", NULL, &r, &err), -ENOENT);
  assert_msg_has(&err, "/nonexistent/a.tsv");
  go_annotations_destroy(&a);
  go_ontology_destroy(&o);
}

// ---- real data -----------------------------------------------------------------------------
static go_ontology_t *load_timed(const char *path, unsigned rels, const char *what) {
  go_load_opts_t op = {rels};
  go_ontology_t *o = NULL;
  ps_err_t err = {0};
  double t0 = now_s();
  int rc = go_ontology_load(&o, path, &op, &err);
  double t1 = now_s();
  if (rc) fail_msg("%s: %s", path, err.msg);
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  printf("  %s: %zu terms (%zu obsolete, %zu alt_ids), edges is_a %zu part_of %zu regulates %zu, roots %zu, "
         "max depth %d, loaded in %.3f s\n",
         what, in.n_terms, in.n_obsolete, in.n_alt_ids, in.n_is_a, in.n_part_of, in.n_regulates, in.n_roots,
         in.max_depth, t1 - t0);
  return o;
}

static void check_roots(const go_ontology_t *o) {
  static const char *const ids[] = {"GO:0008150", "GO:0003674", "GO:0005575"};
  static const go_namespace_t ns[] = {GO_NS_BP, GO_NS_MF, GO_NS_CC};
  static const char *const names[] = {"biological_process", "molecular_function", "cellular_component"};
  for (int k = 0; k < 3; k++) {
    const go_term_t *t = go_term(o, idx_of(o, ids[k]));
    assert_int_equal(t->ns, ns[k]);
    assert_string_equal(t->name, names[k]);
    assert_string_equal(go_namespace_name(t->ns), names[k]);
    assert_int_equal(t->n_parents, 0);
    assert_int_equal(t->depth, 0);
    assert_int_equal(t->level, 0);
  }
}

// Every non-obsolete term reaches exactly the root of its own namespace (o loaded with is_a only;
// part_of crosses namespaces in the 2013 file).
static void check_single_root_per_namespace(const go_ontology_t *o) {
  int32_t roots[3] = {idx_of(o, "GO:0008150"), idx_of(o, "GO:0003674"), idx_of(o, "GO:0005575")};
  size_t cap = go_n_terms(o);
  int32_t *v = malloc(cap * sizeof *v);
  for (size_t i = 0; i < go_n_terms(o); i++) {
    const go_term_t *t = go_term(o, (int32_t)i);
    if (t->obsolete) continue;
    size_t n = go_ancestors(o, (int32_t)i, v, cap);
    int hits = 0;
    for (size_t k = 0; k < n; k++)
      for (int r = 0; r < 3; r++) hits += v[k] == roots[r] ? 1 << r : 0;
    if (hits != 1 << t->ns) fail_msg("%s (%s) reaches roots mask %d", t->id, go_namespace_name(t->ns), hits);
  }
  free(v);
}

static void test_real_2022(void **state) {
  (void)state;
  char cmd[2 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^\\[Term\\]'", g_obo22);
  long long want_terms = sh_count(cmd);
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^is_obsolete: true'", g_obo22);
  long long want_obs = sh_count(cmd);
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^alt_id:'", g_obo22);
  long long want_alt = sh_count(cmd);
  // README: "43,559 terms"; the file holds 47,468 [Term] stanzas, 3,910 of them obsolete,
  // so 43,558 live terms (see the report: the README's figure is one more than that).
  assert_int_equal(want_terms, 47468);
  assert_int_equal(want_obs, 3910);
  go_ontology_t *o = load_timed(g_obo22, 0, "go-2022-07-01 is_a+part_of");
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  assert_int_equal(go_n_terms(o), want_terms);
  assert_int_equal(in.n_obsolete, want_obs);
  assert_int_equal(in.n_terms - in.n_obsolete, 43558);
  assert_int_equal(in.n_alt_ids, want_alt);
  // grep -c '^is_a:' gives 70,060: two of them are in [Typedef] stanzas (positively_ and
  // negatively_regulates is_a regulates); no obsolete term has edges and none is repeated
  assert_int_equal(in.n_is_a, 70058);
  assert_int_equal(in.n_roots, 3);
  assert_int_equal(in.n_refs_unresolved, 0);
  check_roots(o);
  // alt_id -> primary: "GO:0000003 reproduction" has alt_ids GO:0019952 and GO:0050876
  int32_t repro = idx_of(o, "GO:0000003");
  assert_string_equal(go_term(o, repro)->name, "reproduction");
  assert_int_equal(go_lookup(o, "GO:0019952"), repro);
  assert_int_equal(go_lookup(o, "GO:0050876"), repro);
  assert_int_equal(go_lookup(o, "GO:9999999"), -1);
  // an obsolete term (no replaced_by in this file)
  int32_t ob = idx_of(o, "GO:0000005");
  assert_true(go_term(o, ob)->obsolete);
  assert_int_equal(go_resolve(o, ob), -1);
  // mitochondrion inheritance: is_a organelle inheritance, mitochondrion distribution
  const go_term_t *t = go_term(o, idx_of(o, "GO:0000001"));
  assert_string_equal(t->name, "mitochondrion inheritance");
  assert_int_equal(t->ns, GO_NS_BP);
  int saw = 0;
  for (uint32_t k = 0; k < t->n_parents; k++) {
    const char *pid = go_term(o, t->parents[k])->id;
    saw += !strcmp(pid, "GO:0048308") + !strcmp(pid, "GO:0048311");
  }
  assert_int_equal(saw, 2);
  go_ontology_destroy(&o);

  o = load_timed(g_obo22, GO_REL_IS_A, "go-2022-07-01 is_a");
  check_single_root_per_namespace(o);
  go_ontology_destroy(&o);
  o = load_timed(g_obo22, GO_REL_IS_A | GO_REL_PART_OF | GO_REL_REGULATES, "go-2022-07-01 +regulates");
  go_ontology_info(o, &in);
  assert_int_equal(in.n_regulates, 3184 + 2742 + 2732);  // grep counts of the three kinds
  check_roots(o);
  go_ontology_destroy(&o);
}

static void test_real_2013(void **state) {
  (void)state;
  char cmd[2 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^\\[Term\\]'", g_obo13);
  long long want_terms = sh_count(cmd);
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^is_obsolete: true'", g_obo13);
  long long want_obs = sh_count(cmd);
  assert_int_equal(want_terms, 39616);
  assert_int_equal(want_obs, 1775);
  go_ontology_t *o = load_timed(g_obo13, 0, "go-2013-07-13 is_a+part_of");
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  assert_int_equal(go_n_terms(o), 39616);
  assert_int_equal(in.n_obsolete, 1775);
  assert_int_equal(in.n_alt_ids, 1700);
  assert_int_equal(in.n_roots, 3);
  check_roots(o);
  // alt_id: GO:0000013 is an alt_id of GO:0000008 here (a term of its own, obsolete, in 2022)
  assert_int_equal(go_lookup(o, "GO:0000013"), idx_of(o, "GO:0000008"));
  // replaced_by: direct, through an obsolete term, and to an obsolete term without replacement
  int32_t rep = idx_of(o, "GO:0000108");
  assert_true(go_term(o, rep)->obsolete);
  assert_int_equal(go_term(o, rep)->replaced_by, idx_of(o, "GO:0000109"));
  assert_int_equal(go_resolve(o, rep), idx_of(o, "GO:0000109"));
  assert_int_equal(go_resolve(o, idx_of(o, "GO:0030356")), idx_of(o, "GO:0030529"));
  assert_int_equal(go_resolve(o, idx_of(o, "GO:0008436")), -1);
  // consider: GO:0000005 -> GO:0042254, GO:0044183, GO:0051082
  const go_term_t *c = go_term(o, idx_of(o, "GO:0000005"));
  assert_int_equal(c->n_consider, 3);
  assert_int_equal(c->consider[0], idx_of(o, "GO:0042254"));
  assert_int_equal(c->consider[1], idx_of(o, "GO:0044183"));
  assert_int_equal(c->consider[2], idx_of(o, "GO:0051082"));
  // GO:0000006 (molecular function) reaches the BP root through part_of
  size_t n;
  int32_t *v = ancestors(o, idx_of(o, "GO:0000006"), &n);
  int bp = 0;
  for (size_t k = 0; k < n; k++) bp |= v[k] == idx_of(o, "GO:0008150");
  assert_true(bp);
  free(v);
  go_ontology_destroy(&o);
  o = load_timed(g_obo13, GO_REL_IS_A, "go-2013-07-13 is_a");
  check_single_root_per_namespace(o);
  go_ontology_destroy(&o);
}

static go_annotations_t *load_tsv_timed(const go_ontology_t *o, const go_annot_opts_t *op, go_annot_report_t *r,
                                        const char *what) {
  ps_err_t err = {0};
  go_annotations_t *a = go_annotations_new();
  double t0 = now_s();
  int rc = go_annotations_load_tsv(a, o, g_tsv, op, r, &err);
  double t1 = now_s();
  if (rc) fail_msg("%s", err.msg);
  printf("  annotations %s: %llu lines, %llu used, %llu unknown, %llu obsolete skipped, %llu obsolete mapped, "
         "%llu alt_ids mapped, %llu evidence-filtered; %zu proteins; loaded in %.3f s\n",
         what, (unsigned long long)r->lines, (unsigned long long)r->used, (unsigned long long)r->unknown_ids,
         (unsigned long long)r->obsolete_skipped, (unsigned long long)r->obsolete_mapped,
         (unsigned long long)r->alt_ids_mapped, (unsigned long long)r->evidence_filtered, a->n_proteins, t1 - t0);
  return a;
}

static void test_real_annotations(void **state) {
  (void)state;
  char cmd[2 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "zcat '%s' | tail -n +2 | wc -l", g_tsv);
  long long want_lines = sh_count(cmd);
  assert_int_equal(want_lines, 330207);
  snprintf(cmd, sizeof cmd, "zcat '%s' | tail -n +2 | awk -F'\\t' '$3==\"IEA\"' | wc -l", g_tsv);
  long long n_iea = sh_count(cmd);
  go_ontology_t *o = load_timed(g_obo22, 0, "go-2022-07-01");
  go_annot_report_t r;
  go_annotations_t *a = load_tsv_timed(o, NULL, &r, "all evidence");
  assert_int_equal(r.lines, 330207);
  check_report(&r, r.lines, r.used, r.unknown_ids, r.obsolete_mapped, r.obsolete_skipped, r.alt_ids_mapped, 0, 0, 0);
  assert_int_equal(r.obsolete_mapped, 0);  // the 2022 file has no replaced_by
  assert_true(r.used > 300000);
  assert_true(a->n_proteins > 17000 && a->n_proteins <= 17459);
  size_t direct = 0;
  for (size_t i = 0; i < a->n_proteins; i++) direct += a->n_terms[i];
  double t0 = now_s();
  go_annotations_propagate(a, o);
  double t1 = now_s();
  size_t prop = 0;
  for (size_t i = 0; i < a->n_proteins; i++) prop += a->n_terms[i];
  printf("  propagated %zu unique direct (protein, term) pairs of %zu proteins to %zu pairs in %.3f s\n", direct,
         a->n_proteins, prop, t1 - t0);
  assert_true(prop > direct);
  // TP53: among its ancestors the three roots it is annotated under and "apoptotic process"
  int64_t p = go_annotations_find(a, "P04637");
  assert_true(p >= 0);
  int found = 0;
  const char *want[] = {"GO:0008150", "GO:0003674", "GO:0005575", "GO:0006915", "GO:0005634"};
  for (uint32_t k = 0; k < a->n_terms[p]; k++)
    for (int j = 0; j < 5; j++) found += !strcmp(go_term(o, a->terms[p][k])->id, want[j]);
  assert_int_equal(found, 5);

  // IEA excluded: fewer lines used, the filter counts exactly the IEA lines that got that far
  static const char *const no_iea[] = {"IEA", NULL};
  go_annot_opts_t op = {NULL, no_iea, -1};
  go_annot_report_t r2;
  go_annotations_t *b = load_tsv_timed(o, &op, &r2, "without IEA");
  assert_int_equal(r2.lines, r.lines);
  assert_true(r2.evidence_filtered > 0 && r2.evidence_filtered <= (uint64_t)n_iea);
  assert_int_equal(r2.used, r.used - r2.evidence_filtered);
  assert_true(b->n_proteins < a->n_proteins);
  go_annotations_destroy(&b);
  // namespace filter: the three namespaces partition the used lines
  uint64_t sum = 0;
  for (int ns = 0; ns < 3; ns++) {
    go_annot_opts_t on = {NULL, NULL, ns};
    go_annotations_t *c = go_annotations_new();
    ps_err_t err = {0};
    assert_int_equal(go_annotations_load_tsv(c, o, g_tsv, &on, &r2, &err), 0);
    sum += r2.used;
    for (size_t i = 0; i < c->n_proteins; i++)
      for (uint32_t k = 0; k < c->n_terms[i]; k++) assert_int_equal(go_term(o, c->terms[i][k])->ns, ns);
    go_annotations_destroy(&c);
  }
  assert_int_equal(sum, r.used);
  go_annotations_destroy(&a);
  go_ontology_destroy(&o);
}

static void test_real_uniprot(void **state) {
  (void)state;
  go_ontology_t *o = load_timed(g_obo22, 0, "go-2022-07-01");
  const char *files[] = {"swiss100.dat", "emboss-seq.dat"};
  for (int f = 0; f < 2; f++) {
    char path[PATH_MAX + 64], cmd[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/data/uniprot-flat/%s", g_shared, files[f]);
    snprintf(cmd, sizeof cmd, "grep -c '^DR   GO;' '%s'", path);
    long long want = sh_count(cmd);
    snprintf(cmd, sizeof cmd, "grep -c '^//' '%s'", path);
    assert_int_equal(sh_count(cmd), 100);
    // entries with at least one DR GO line
    snprintf(cmd, sizeof cmd, "awk '/^ID /{g=0} /^DR   GO;/{g=1} /^\\/\\//{n+=g} END{print n}' '%s'", path);
    long long with_go = sh_count(cmd);
    ps_err_t err = {0};
    go_annot_report_t r;
    go_annotations_t *a = go_annotations_new();
    double t0 = now_s();
    int rc = go_annotations_load_uniprot(a, o, path, &k_all, &r, &err);
    double t1 = now_s();
    if (rc) fail_msg("%s", err.msg);
    printf("  %s: %llu DR GO lines (grep: %lld), %llu used, %llu unknown, %llu obsolete, %llu alt_ids; "
           "%zu proteins (%lld entries with GO lines); %.3f s\n",
           files[f], (unsigned long long)r.lines, want, (unsigned long long)r.used, (unsigned long long)r.unknown_ids,
           (unsigned long long)r.obsolete_skipped, (unsigned long long)r.alt_ids_mapped, a->n_proteins, with_go, t1 - t0);
    assert_int_equal(r.lines, want);
    check_report(&r, r.lines, r.used, r.unknown_ids, r.obsolete_mapped, r.obsolete_skipped, r.alt_ids_mapped, 0, 0, 0);
    assert_true(a->n_proteins <= (size_t)with_go);
    assert_true(a->n_proteins + 5 >= (size_t)with_go);  // all but entries whose ids all left GO
    if (f == 0) {
      // P31946 (1433B_HUMAN): first DR GO line is GO:0005737 cytoplasm
      int64_t p = go_annotations_find(a, "P31946");
      assert_true(p >= 0);
      int32_t cyto = idx_of(o, "GO:0005737");
      int hit = 0;
      for (uint32_t k = 0; k < a->n_terms[p]; k++) hit |= a->terms[p][k] == cyto;
      assert_true(hit);
      assert_int_equal(go_annotations_find(a, "A8K9K2"), -1);  // secondary accession
    }
    go_annotations_destroy(&a);
  }
  go_ontology_destroy(&o);
}

// ---- cross-check against Python ------------------------------------------------------------
// argv: obo rels(comma list) stride tsv|- [accessions...]
// prints  T id depth level anc...   for every stride-th term (file order)
//         C key value               counts
//         P acc anc...              propagated terms of the named proteins
static const char k_py[] =
    "import gzip, sys, zlib\n"
    "obo, rels, stride, tsv = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3]), sys.argv[4]\n"
    "accs = sys.argv[5:]\n"
    "terms, order, alt, cur = {}, [], {}, None\n"
    "for line in gzip.open(obo, 'rt'):\n"
    "    line = line.strip()\n"
    "    if line.startswith('['):\n"
    "        cur = {'par': [], 'obs': False, 'rb': None, 'alt': []} if line == '[Term]' else None\n"
    "        continue\n"
    "    if cur is None or ':' not in line:\n"
    "        continue\n"
    "    tag, val = line.split(':', 1)\n"
    "    val = val.split('!')[0].strip()\n"
    "    if tag == 'id':\n"
    "        terms[val] = cur; order.append(val)\n"
    "    elif tag == 'alt_id': cur['alt'].append(val)\n"
    "    elif tag == 'is_obsolete': cur['obs'] = val == 'true'\n"
    "    elif tag == 'replaced_by' and cur['rb'] is None: cur['rb'] = val\n"
    "    elif tag == 'is_a' and 'is_a' in rels: cur['par'].append(val.split()[0])\n"
    "    elif tag == 'relationship':\n"
    "        r, t = val.split()[:2]\n"
    "        if r in rels: cur['par'].append(t)\n"
    "for k, c in terms.items():\n"
    "    for a in c['alt']: alt[a] = k\n"
    "def prim(t): return alt.get(t, t)\n"
    "memo, dmemo = {}, {}\n"
    "def anc(t):\n"
    "    if t not in memo:\n"
    "        s = {t}\n"
    "        if not terms[t]['obs']:\n"
    "            for p in terms[t]['par']: s |= anc(prim(p))\n"
    "        memo[t] = frozenset(s)\n"
    "    return memo[t]\n"
    "def dl(t):\n"
    "    if terms[t]['obs']: return (-1, -1)\n"
    "    if t not in dmemo:\n"
    "        ps = [dl(prim(p)) for p in terms[t]['par']]\n"
    "        dmemo[t] = (1 + max(p[0] for p in ps), 1 + min(p[1] for p in ps)) if ps else (0, 0)\n"
    "    return dmemo[t]\n"
    "sys.setrecursionlimit(100000)\n"
    "print('C terms', len(terms)); print('C obsolete', sum(c['obs'] for c in terms.values()))\n"
    "print('C alt_ids', len(alt))\n"
    "for t in order[::stride]:\n"
    "    d, l = dl(t)\n"
    "    print('T', t, d, l, ' '.join(sorted(anc(t))))\n"
    "if tsv == '-': sys.exit(0)\n"
    "def resolve(t):\n"
    "    for _ in range(len(terms) + 1):\n"
    "        if not terms[t]['obs']: return t\n"
    "        r = terms[t]['rb']\n"
    "        if r is None or prim(r) not in terms: return None\n"
    "        t = prim(r)\n"
    "    return None\n"
    "for noiea in (0, 1):\n"
    "    n = {'lines': 0, 'unknown': 0, 'alt': 0, 'obs_map': 0, 'obs_skip': 0, 'ev': 0, 'used': 0}\n"
    "    prot = {}\n"
    "    f = gzip.open(tsv, 'rt'); next(f)\n"
    "    for line in f:\n"
    "        a, g, ev = line.rstrip('\\n').split('\\t')[:3]\n"
    "        n['lines'] += 1\n"
    "        if g in terms: t = g\n"
    "        elif g in alt: t = alt[g]; n['alt'] += 1\n"
    "        else: n['unknown'] += 1; continue\n"
    "        if terms[t]['obs']:\n"
    "            t = resolve(t)\n"
    "            if t is None: n['obs_skip'] += 1; continue\n"
    "            n['obs_map'] += 1\n"
    "        if noiea and ev == 'IEA': n['ev'] += 1; continue\n"
    "        n['used'] += 1\n"
    "        prot.setdefault(a, set()).add(t)\n"
    "    sfx = '_noiea' if noiea else ''\n"
    "    for k, v in n.items(): print('C ' + k + sfx, v)\n"
    "    print('C proteins' + sfx, len(prot))\n"
    "    pairs, crc = 0, 0\n"
    "    for a, ts in prot.items():\n"
    "        full = set()\n"
    "        for t in ts: full |= anc(t)\n"
    "        pairs += len(full)\n"
    "        for t in full: crc = (crc + zlib.crc32((a + ' ' + t).encode())) % (1 << 64)\n"
    "        if not noiea and a in accs: print('P', a, ' '.join(sorted(full)))\n"
    "    print('C pairs' + sfx, pairs); print('C crc' + sfx, crc)\n";

typedef struct pycheck {
  long long terms, obsolete, alt;
  size_t n_t, n_p;
  // annotation counts (all, no IEA)
  long long lines[2], unknown[2], altm[2], obs_map[2], obs_skip[2], ev[2], used[2], proteins[2], pairs[2];
  unsigned long long crc[2];
} pycheck_t;

// Sorted ids of a term list, space separated (ids sort like python's sorted()).
static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void ids_sorted(const go_ontology_t *o, const int32_t *v, size_t n, char *buf, size_t cap) {
  const char **s = malloc((n ? n : 1) * sizeof *s);
  for (size_t i = 0; i < n; i++) s[i] = go_term(o, v[i])->id;
  qsort(s, n, sizeof *s, cmp_str);
  size_t l = 0;
  buf[0] = 0;
  for (size_t i = 0; i < n && l < cap; i++) l += (size_t)snprintf(buf + l, cap - l, "%s%s", i ? " " : "", s[i]);
  free(s);
}

static void set_count(pycheck_t *c, char *key, long long v) {
  if (!strcmp(key, "terms")) c->terms = v;
  else if (!strcmp(key, "obsolete")) c->obsolete = v;
  else if (!strcmp(key, "alt_ids")) c->alt = v;
  else {
    size_t kl = strlen(key);
    int w = 0;
    if (kl > 6 && !strcmp(key + kl - 6, "_noiea")) {
      w = 1;
      key[kl - 6] = 0;
    }
    static const char *const names[] = {"lines", "unknown", "alt", "obs_map", "obs_skip", "ev", "used", "proteins", "pairs"};
    long long *dst[] = {c->lines, c->unknown, c->altm, c->obs_map, c->obs_skip, c->ev, c->used, c->proteins, c->pairs};
    if (!strcmp(key, "crc")) c->crc[w] = (unsigned long long)v;
    for (int k = 0; k < 9; k++)
      if (!strcmp(key, names[k])) dst[k][w] = v;
  }
}

// Runs the script and checks every T and P line against the ontology / annotations.
static void run_python(const go_ontology_t *o, const char *obo, const char *rels, int stride, const char *tsv,
                       const go_annotations_t *prop, const char *accs, pycheck_t *c) {
  char script[PATH_MAX], cmd[4 * PATH_MAX];
  tmp_path(script, sizeof script, "go_ref.py");
  write_file(script, k_py);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %s %d '%s' %s", script, obo, rels, stride, tsv ? tsv : "-",
           accs ? accs : "");
  memset(c, 0, sizeof *c);
  double t0 = now_s();
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t cap = 1 << 20;
  char *line = malloc(cap), *mine = malloc(cap);
  size_t n_terms = go_n_terms(o);
  int32_t *v = malloc(n_terms * sizeof *v);
  while (fgets(line, (int)cap, p)) {
    line[strcspn(line, "\n")] = 0;
    if (line[0] == 'C') {
      char key[64];
      unsigned long long val;
      assert_int_equal(sscanf(line, "C %63s %llu", key, &val), 2);
      set_count(c, key, (long long)val);
    } else if (line[0] == 'T') {
      char id[64];
      int d, l, off = 0;
      assert_int_equal(sscanf(line, "T %63s %d %d %n", id, &d, &l, &off), 3);
      int32_t t = idx_of(o, id);
      const go_term_t *gt = go_term(o, t);
      if (gt->depth != d || gt->level != l)
        fail_msg("%s: depth/level %d/%d, python %d/%d", id, gt->depth, gt->level, d, l);
      size_t n = go_ancestors(o, t, v, n_terms);
      ids_sorted(o, v, n, mine, cap);
      if (strcmp(mine, line + off)) fail_msg("%s ancestors differ:\n  ours   %s\n  python %s", id, mine, line + off);
      c->n_t++;
    } else if (line[0] == 'P') {
      char acc[64];
      int off = 0;
      assert_int_equal(sscanf(line, "P %63s %n", acc, &off), 1);
      int64_t i = go_annotations_find(prop, acc);
      if (i < 0) fail_msg("%s: not among our proteins", acc);
      ids_sorted(o, prop->terms[i], prop->n_terms[i], mine, cap);
      if (strcmp(mine, line + off)) fail_msg("%s propagated terms differ:\n  ours   %s\n  python %s", acc, mine, line + off);
      c->n_p++;
    }
  }
  int st = pclose(p);
  free(line);
  free(mine);
  free(v);
  if (st != 0) fail_msg("python failed (%d): %s", st, cmd);
  printf("  python reference (%s, %s): %zu term ancestor sets and %zu proteins compared, %.1f s\n", obo, rels, c->n_t,
         c->n_p, now_s() - t0);
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  assert_int_equal(c->terms, (long long)in.n_terms);
  assert_int_equal(c->obsolete, (long long)in.n_obsolete);
  assert_int_equal(c->alt, (long long)in.n_alt_ids);
  assert_true(c->n_t > 0);
}

static void pair_stats(const go_annotations_t *a, const go_ontology_t *o, long long *pairs, unsigned long long *crc) {
  *pairs = 0;
  *crc = 0;
  char buf[128];
  for (size_t i = 0; i < a->n_proteins; i++) {
    *pairs += a->n_terms[i];
    for (uint32_t k = 0; k < a->n_terms[i]; k++) {
      int n = snprintf(buf, sizeof buf, "%s %s", a->protein_ids[i], go_term(o, a->terms[i][k])->id);
      *crc += crc32(0, (const Bytef *)buf, (uInt)n);
    }
  }
}

static void test_python_annotations(void **state) {
  (void)state;
  if (!have_python()) {
    printf("  /usr/bin/python3 not found: skipped\n");
    skip();
  }
  go_ontology_t *o = load_timed(g_obo22, 0, "go-2022-07-01");
  go_annot_report_t r[2];
  static const char *const no_iea[] = {"IEA", NULL};
  go_annot_opts_t op = {NULL, no_iea, -1};
  go_annotations_t *a[2] = {load_tsv_timed(o, NULL, &r[0], "all"), load_tsv_timed(o, &op, &r[1], "no IEA")};
  double t0 = now_s();
  go_annotations_propagate(a[0], o);
  go_annotations_propagate(a[1], o);
  printf("  propagated both sets in %.3f s\n", now_s() - t0);
  // proteins to compare one by one: every 997th, and TP53
  char accs[8192];
  size_t l = snprintf(accs, sizeof accs, "P04637");
  for (size_t i = 0; i < a[0]->n_proteins && l < sizeof accs - 64; i += 997)
    l += (size_t)snprintf(accs + l, sizeof accs - l, " %s", a[0]->protein_ids[i]);
  pycheck_t c;
  run_python(o, g_obo22, "is_a,part_of", 37, g_tsv, a[0], accs, &c);
  assert_true(c.n_p >= 17);
  for (int w = 0; w < 2; w++) {
    long long pairs;
    unsigned long long crc;
    pair_stats(a[w], o, &pairs, &crc);
    printf("  %s: python lines %lld used %lld unknown %lld obsolete %lld alt %lld proteins %lld pairs %lld\n",
           w ? "no IEA" : "all", c.lines[w], c.used[w], c.unknown[w], c.obs_skip[w], c.altm[w], c.proteins[w], c.pairs[w]);
    assert_int_equal(r[w].lines, c.lines[w]);
    assert_int_equal(r[w].used, c.used[w]);
    assert_int_equal(r[w].unknown_ids, c.unknown[w]);
    assert_int_equal(r[w].alt_ids_mapped, c.altm[w]);
    assert_int_equal(r[w].obsolete_mapped, c.obs_map[w]);
    assert_int_equal(r[w].obsolete_skipped, c.obs_skip[w]);
    assert_int_equal(r[w].evidence_filtered, c.ev[w]);
    assert_int_equal(a[w]->n_proteins, c.proteins[w]);
    assert_int_equal(pairs, c.pairs[w]);
    assert_true(crc == c.crc[w]);
  }
  go_annotations_destroy(&a[0]);
  go_annotations_destroy(&a[1]);
  go_ontology_destroy(&o);
}

static void test_python_ontologies(void **state) {
  (void)state;
  if (!have_python()) {
    printf("  /usr/bin/python3 not found: skipped\n");
    skip();
  }
  pycheck_t c;
  go_ontology_t *o = load_timed(g_obo22, GO_REL_IS_A | GO_REL_PART_OF | GO_REL_REGULATES, "go-2022 +regulates");
  run_python(o, g_obo22, "is_a,part_of,regulates,positively_regulates,negatively_regulates", 41, NULL, NULL, NULL, &c);
  go_ontology_destroy(&o);
  o = load_timed(g_obo22, GO_REL_IS_A, "go-2022 is_a only");
  run_python(o, g_obo22, "is_a", 43, NULL, NULL, NULL, &c);
  go_ontology_destroy(&o);
  o = load_timed(g_obo13, 0, "go-2013");
  run_python(o, g_obo13, "is_a,part_of", 31, NULL, NULL, NULL, &c);
  go_ontology_destroy(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_default),     cmocka_unit_test(test_small_rels),
      cmocka_unit_test(test_small_files),       cmocka_unit_test(test_broken_ontologies),
      cmocka_unit_test(test_gaf),               cmocka_unit_test(test_tsv_and_flat_small),
  };
  const struct CMUnitTest data_tests[] = {
      cmocka_unit_test(test_real_2022),          cmocka_unit_test(test_real_2013),
      cmocka_unit_test(test_real_annotations),   cmocka_unit_test(test_real_uniprot),
      cmocka_unit_test(test_python_annotations), cmocka_unit_test(test_python_ontologies),
  };
  int rc = cmocka_run_group_tests_name("go", tests, setup, teardown);
  if (!find_shared()) {
    printf("no shared data (set PROTSAE_SHARED): skipping the real-data tests\n");
    return rc;
  }
  return rc + cmocka_run_group_tests_name("go_data", data_tests, setup, teardown);
}
