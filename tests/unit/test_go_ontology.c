// Gene Ontology, the ontology half: the two real OBO files (term / obsolete / alt_id counts made
// independently, root namespaces, alt_id and replaced_by resolution), ancestor sets, depth and
// level checked against an independent Python implementation (skipped without /usr/bin/python3),
// and hand-made ontologies for each rule: is_a + part_of propagation, regulates on and off,
// alt_id, obsolete with replaced_by chains, cycles (error, no hang), malformed lines and missing
// ids (errors naming file and line). The annotations are test_go_annot.c.
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "go_fixture.h"

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
  fx_path(plain, sizeof plain, "small.obo");
  fx_path(gz, sizeof gz, "small.obo.gz");
  fx_path(crlf, sizeof crlf, "crlf.obo");
  fx_path(trunc, sizeof trunc, "trunc.obo.gz");
  fx_write_text(plain, k_small);
  fx_write_gz(gz, k_small, strlen(k_small));
  size_t n = strlen(k_small);
  char *c = malloc(2 * n + 1), *q = c;
  for (size_t i = 0; i < n; i++) {
    if (k_small[i] == '\n') *q++ = '\r';
    *q++ = k_small[i];
  }
  *q = 0;
  fx_write_text(crlf, c);
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


// ---- real data -----------------------------------------------------------------------------
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
  long long want_terms = fx_sh_count(cmd);
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^is_obsolete: true'", g_obo22);
  long long want_obs = fx_sh_count(cmd);
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^alt_id:'", g_obo22);
  long long want_alt = fx_sh_count(cmd);
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
  long long want_terms = fx_sh_count(cmd);
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^is_obsolete: true'", g_obo13);
  long long want_obs = fx_sh_count(cmd);
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
  };
  const struct CMUnitTest data_tests[] = {
      cmocka_unit_test(test_real_2022),
      cmocka_unit_test(test_real_2013),
      cmocka_unit_test(test_python_ontologies),
  };
  int rc = cmocka_run_group_tests_name("go_ontology", tests, fx_setup, fx_teardown);
  if (!go_find_shared()) {
    printf("no shared data (set PROTSAE_SHARED): skipping the real-data tests\n");
    return rc;
  }
  return rc + cmocka_run_group_tests_name("go_ontology_data", data_tests, fx_setup, fx_teardown);
}
