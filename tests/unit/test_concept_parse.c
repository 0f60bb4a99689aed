// Residue concept annotations (common/concept/concept.h): the UniProt flat-file parser on the real
// entries of ../shared/data/uniprot-flat (per-type counts of known accessions and the totals of
// both files against awk over the same files, names, aliases, DISULFID pairs, '?' positions
// skipped and counted), the current FT layout (/note over lines, <1..>120, ?, isoform locations)
// plain and gzip, broken flat files (truncated, bad positions, end before start, a feature before
// AC, an unclosed note: errors naming the file and line) and the TSV (header, errors).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "concept.h"
#include "fixture.h"

#define KEPT "DOMAIN|BINDING|ACT_SITE|MOD_RES|TRANSMEM|MOTIF|ZN_FING|DISULFID|SIGNAL|REGION|REPEAT|COMPBIAS|SITE|" \
             "TOPO_DOM|HELIX|STRAND|TURN|LIPID|CARBOHYD|CROSSLNK|INTRAMEM|TRANSIT|PROPEP|COILED|DNA_BIND|NP_BIND|" \
             "METAL|CA_BIND"

static char flat_dir[4200];

static int setup(void **state) {
  if (fx_setup(state) < 0) return -1;
  if (!fx_find_shared("data/uniprot-flat/swiss100.dat")) return 0;
  snprintf(flat_dir, sizeof flat_dir, "%s/data/uniprot-flat", fx_shared_dir);
  return 0;
}

static long run_count(const char *cmd) {
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  long v = -1;
  assert_int_equal(fscanf(p, "%ld", &v), 1);
  assert_int_equal(pclose(p), 0);
  return v;
}

// awk's count of FT key lines of type (a regex) in the entry named id (all entries when id is "")
// with known (want_unknown 0) or '?' (1) positions
static long awk_count(const char *file, const char *id, const char *type, int want_unknown) {
  char cmd[9000];
  snprintf(cmd, sizeof cmd,
           "awk -v id='%s' '$1==\"ID\"{on=(id==\"\"||$2==id)} on&&/^FT   (%s) /{u=($3~/^\\?$/||$4~/^\\?$/||$3~/^\\?\\.\\./)"
           ";if(u==%d)n++} END{print n+0}' '%s'",
           id, type, want_unknown, file);
  return run_count(cmd);
}

static size_t count_type(concept_set_t *s, const char *id, const char *type, int *pairs) {
  uint32_t p;
  assert_int_equal(concept_set_find(s, id, &p), 1);
  size_t n, k = 0;
  const concept_ann_t *a = concept_set_anns(s, p, &n);
  size_t tl = strlen(type);
  for (size_t i = 0; i < n; i++) {
    const char *nm = concept_set_name(s, a[i].concept);
    if (!strncmp(nm, type, tl) && (nm[tl] == 0 || nm[tl] == ':')) {
      k++;
      if (pairs) *pairs += (int)a[i].pair;
    }
  }
  return k;
}

static void test_flat_real(void **state) {
  (void)state;
  if (!flat_dir[0]) skip();
  char swiss[4300], emboss[4300];
  snprintf(swiss, sizeof swiss, "%s/swiss100.dat", flat_dir);
  snprintf(emboss, sizeof emboss, "%s/emboss-seq.dat", flat_dir);
  concept_set_t *s = concept_set_new();
  concept_load_stats_t st = {0};
  ps_err_t err = {0};
  assert_int_equal(concept_set_load(s, swiss, &st, &err), 0);
  assert_int_equal(st.entries, 100);
  // known entries, every kept type, against awk over the file
  const char *types[] = {"DOMAIN", "MOD_RES", "TRANSMEM", "HELIX", "STRAND", "TURN", "DISULFID", "REPEAT",
                         "REGION", "BINDING", "NP_BIND", "SITE", "CARBOHYD", "TOPO_DOM", "SIGNAL", NULL};
  const char *entries[][2] = {{"O14639", "ABLM1_HUMAN"}, {"Q9NP58", "ABCB6_HUMAN"}, {"P31946", "1433B_HUMAN"}};
  for (int e = 0; e < 3; e++)
    for (int t = 0; types[t]; t++) {
      long want = awk_count(swiss, entries[e][1], types[t], 0);
      size_t got = count_type(s, entries[e][0], types[t], NULL);
      if ((long)got != want) fail_msg("%s %s: parsed %zu, awk %ld", entries[e][0], types[t], got, want);
    }
  assert_int_equal(count_type(s, "O14639", "DOMAIN", NULL), 5);  // grep: 4 x LIM zinc-binding N, HP
  uint32_t p1, p2;
  assert_int_equal(concept_set_find(s, "ABLM1_HUMAN", &p1), 1);  // the ID name is an alias
  assert_int_equal(concept_set_find(s, "O14639", &p2), 1);
  assert_int_equal(p1, p2);
  size_t n;
  const concept_ann_t *a = concept_set_anns(s, p2, &n);
  int lim = 0, hp = 0;
  for (size_t i = 0; i < n; i++) {
    lim += !strcmp(concept_set_name(s, a[i].concept), "DOMAIN:LIM zinc-binding");
    if (!strcmp(concept_set_name(s, a[i].concept), "DOMAIN:HP")) {
      hp++;
      assert_int_equal(a[i].a, 709);  // FT   DOMAIN      710    778       HP.
      assert_int_equal(a[i].b, 777);
      assert_int_equal(a[i].pair, 0);
    }
  }
  assert_int_equal(lim, 4);
  assert_int_equal(hp, 1);
  // totals over both files: every kept type, known positions kept, '?' ones skipped and counted
  assert_int_equal(concept_set_load(s, emboss, &st, &err), 0);
  long kept = awk_count(swiss, "", KEPT, 0) + awk_count(emboss, "", KEPT, 0);
  long unknown = awk_count(swiss, "", KEPT, 1) + awk_count(emboss, "", KEPT, 1);
  assert_int_equal(st.kept, kept);
  assert_int_equal(st.skipped_unknown, unknown);
  assert_true(unknown >= 1);  // swiss100: TRANSIT 1 ?
  assert_int_equal(concept_set_n_annotations(s), kept);
  assert_int_equal(st.entries, 200);
  // DISULFID: two residues
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "grep -c '^FT   DISULFID' '%s'", swiss);
  long ndis = run_count(cmd);
  size_t ndis_p = 0;
  for (uint32_t p = 0; p < concept_set_n_proteins(s); p++) {
    a = concept_set_anns(s, p, &n);
    for (size_t i = 0; i < n; i++)
      if (!strcmp(concept_set_name(s, a[i].concept), "DISULFID")) {
        ndis_p++;
        assert_true(a[i].pair || a[i].a == a[i].b);
      }
  }
  assert_true((long)ndis_p >= ndis);  // + emboss's
  // pre-2019 repeats numbered "1.", "2.": one concept REPEAT
  int rep = 0;
  for (uint32_t c = 0; c < concept_set_n_concepts(s); c++) {
    rep += !strcmp(concept_set_name(s, c), "REPEAT");
    assert_null(strstr(concept_set_name(s, c), "REPEAT:1"));
    assert_null(strstr(concept_set_name(s, c), "CHAIN"));
    assert_null(strstr(concept_set_name(s, c), "VARIANT"));
  }
  assert_int_equal(rep, 1);
  concept_set_destroy(&s);
}

static const char current[] =
    "ID   TEST1_HUMAN             Reviewed;         200 AA.\n"
    "AC   Q00001; Q00009;\n"
    "AC   Q00010;\n"
    "DE   RecName: Full=Test.\n"
    "FT   CHAIN           1..200\n"
    "FT                   /note=\"Test protein\"\n"
    "FT   DOMAIN          24..130\n"
    "FT                   /note=\"Protein kinase\"\n"
    "FT                   /evidence=\"ECO:0000255|PROSITE-ProRule:PRU00159,\n"
    "FT                   ECO:0000269|PubMed:12345\"\n"
    "FT   REPEAT          140..150\n"
    "FT                   /note=\"WD 3\"\n"
    "FT   REGION          <1..>20\n"
    "FT                   /note=\"Disordered; by\n"
    "FT                   similarity\"\n"
    "FT   BINDING         57\n"
    "FT                   /ligand=\"ATP\"\n"
    "FT                   /ligand_id=\"ChEBI:CHEBI:30616\"\n"
    "FT   ACT_SITE        ?\n"
    "FT   MOD_RES         ?..12\n"
    "FT   DISULFID        34..89\n"
    "FT   DOMAIN          P12345:1..10\n"
    "FT                   /note=\"Elsewhere\"\n"
    "FT   ZN_FING         160..180\n"
    "FT                   /note=\"C2H2-type 2; degenerate\"\n"
    "SQ   SEQUENCE   200 AA;  1 MW;  1 CRC64;\n"
    "     MMMMMMMMMM\n"
    "//\n";

static void check_current(concept_set_t *s, const concept_load_stats_t *st) {
  assert_int_equal(st->entries, 1);
  assert_int_equal(st->kept, 6);
  assert_int_equal(st->skipped_unknown, 2);
  assert_int_equal(st->skipped_other_seq, 1);
  assert_int_equal(st->skipped_type, 1);
  uint32_t p;
  assert_int_equal(concept_set_find(s, "Q00001", &p), 1);
  assert_int_equal(concept_set_find(s, "Q00009", &p), 0);  // secondary accessions are not the protein
  assert_int_equal(concept_set_find(s, "TEST1_HUMAN", &p), 1);
  size_t n;
  const concept_ann_t *a = concept_set_anns(s, p, &n);
  assert_int_equal(n, 6);
  const struct { const char *name; uint32_t a, b, pair; } want[] = {
      {"DOMAIN:Protein kinase", 23, 129, 0}, {"REPEAT:WD", 139, 149, 0}, {"REGION:Disordered", 0, 19, 0},
      {"BINDING", 56, 56, 0},                {"DISULFID", 33, 88, 1},   {"ZN_FING:C2H2-type", 159, 179, 0},
  };
  for (size_t i = 0; i < 6; i++) {
    if (strcmp(concept_set_name(s, a[i].concept), want[i].name)) fail_msg("annotation %zu: '%s', want '%s'", i,
                                                                          concept_set_name(s, a[i].concept), want[i].name);
    assert_int_equal(a[i].a, want[i].a);
    assert_int_equal(a[i].b, want[i].b);
    assert_int_equal(a[i].pair, want[i].pair);
  }
}

static void test_flat_current_layout(void **state) {
  (void)state;
  char plain[4096], gz[4096];
  fx_path(plain, sizeof plain, "current.dat");
  fx_path(gz, sizeof gz, "current.dat.gz");
  fx_write_text(plain, current);
  fx_write_gz(gz, current, strlen(current));
  for (int k = 0; k < 2; k++) {
    concept_set_t *s = concept_set_new();
    concept_load_stats_t st = {0};
    ps_err_t err = {0};
    if (concept_set_load(s, k ? gz : plain, &st, &err) < 0) fail_msg("%s", err.msg);
    check_current(s, &st);
    concept_set_destroy(&s);
  }
}

// The file's text with line `at` (1-based) replaced by repl (NULL: the file cut before it).
// The load must fail with an error naming the file, what, and "line want_line" (when > 0).
static void expect_error(const char *name, const char *text, int at, const char *repl, const char *what, int want_line) {
  char path[4096], buf[8192];
  size_t o = 0;
  int ln = 1;
  for (const char *p = text; *p; ln++) {
    const char *nl = strchr(p, '\n');
    size_t len = (size_t)(nl - p) + 1;
    if (ln == at) {
      if (!repl) break;
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n", repl);
    } else {
      memcpy(buf + o, p, len);
      o += len;
    }
    p += len;
  }
  buf[o] = 0;
  fx_path(path, sizeof path, name);
  fx_write_text(path, buf);
  concept_set_t *s = concept_set_new();
  ps_err_t err = {0};
  int rc = concept_set_load(s, path, NULL, &err);
  if (rc >= 0) fail_msg("%s: accepted", name);
  char line[32];
  snprintf(line, sizeof line, "line %d:", want_line);
  if (!strstr(err.msg, path) || !strstr(err.msg, what) || (want_line > 0 && !strstr(err.msg, line)))
    fail_msg("%s: error '%s' should name the file, '%s' and '%s'", name, err.msg, what, line);
  concept_set_destroy(&s);
}

static void test_flat_broken(void **state) {
  (void)state;
  expect_error("trunc.dat", current, 28, NULL, "truncated", 27);  // cut before '//'
  expect_error("badpos.dat", current, 7, "FT   DOMAIN          24..1x0", "bad position", 7);
  expect_error("badpos2.dat", current, 16, "FT   BINDING         -5", "bad position", 16);
  expect_error("backwards.dat", current, 7, "FT   DOMAIN          130..24", "before it starts", 7);
  expect_error("oldpos.dat", current, 7, "FT   DOMAIN       24    x30       Kinase.", "followed by", 7);
  expect_error("noac.dat", "ID   A_HUMAN\nFT   DOMAIN   1..5\n//\n", 2, "FT   DOMAIN   1..5", "before the entry's AC", 2);
  expect_error("note.dat", current, 25, "FT                   /note=\"never closed", "not closed", 26);
  expect_error("outside.dat", "ID   X_HUMAN  Reviewed;\nAC   P1;\n//\n//\n", 4, "//", "outside an entry", 4);
  expect_error("noid.dat", "ID   A_HUMAN\nAC   P1;\n//\nXX   stray\n", 4, "XX   stray", "outside an entry", 4);
}

static void test_tsv(void **state) {
  (void)state;
  char path[4096];
  fx_path(path, sizeof path, "ann.tsv");
  fx_write_text(path, "accession\tstart\tend\tconcept\n# a comment\nP1\t3\t9\tDOMAIN:Kinase\nP1\t5\t5\tMOD_RES\n"
                      "P2\t1\t4\tDOMAIN:Kinase\n");
  concept_set_t *s = concept_set_new();
  concept_load_stats_t st = {0};
  ps_err_t err = {0};
  assert_int_equal(concept_set_load(s, path, &st, &err), 0);
  assert_int_equal(st.kept, 3);
  assert_int_equal(concept_set_n_concepts(s), 2);
  assert_int_equal(concept_set_n_proteins(s), 2);
  uint32_t p;
  assert_int_equal(concept_set_find(s, "P1", &p), 1);
  size_t n;
  const concept_ann_t *a = concept_set_anns(s, p, &n);
  assert_int_equal(n, 2);
  assert_int_equal(a[0].a, 2);
  assert_int_equal(a[0].b, 8);
  assert_string_equal(concept_set_name(s, a[1].concept), "MOD_RES");
  assert_int_equal(concept_set_count(s, a[0].concept), 2);
  concept_set_destroy(&s);
  const char *good = "P1\t3\t9\tDOMAIN:Kinase\nP1\t5\t5\tMOD_RES\n";
  expect_error("t1.tsv", good, 2, "P1\t5\tMOD_RES", "4 tab-separated", 2);
  expect_error("t2.tsv", good, 2, "P1\t0\t5\tMOD_RES", "positions", 2);
  expect_error("t3.tsv", good, 2, "P1\t9\t5\tMOD_RES", "before start", 2);
  expect_error("t4.tsv", good, 2, "P1\t5\t5\tMOD_RES\textra", "more", 2);
  expect_error("t5.tsv", good, 2, "P1\t5\t5\t", "empty", 2);
  expect_error("t6.tsv", "\n\n", 1, NULL, "empty file", 0);
}

static void test_names(void **state) {
  (void)state;
  char b[128];
  concept_name("DOMAIN", "SH3 2.", b, sizeof b);
  assert_string_equal(b, "DOMAIN:SH3");
  concept_name("DOMAIN", "Ig-like C1-type (By similarity).", b, sizeof b);
  assert_string_equal(b, "DOMAIN:Ig-like C1-type");
  concept_name("MOD_RES", "Phosphoserine", b, sizeof b);
  assert_string_equal(b, "MOD_RES");
  concept_name("REPEAT", "3", b, sizeof b);
  assert_string_equal(b, "REPEAT");
  concept_name("MOTIF", NULL, b, sizeof b);
  assert_string_equal(b, "MOTIF");
  assert_true(concept_is_residue_level("MOD_RES"));
  assert_true(concept_is_residue_level("DISULFID"));
  assert_false(concept_is_residue_level("DOMAIN:Protein kinase"));
  assert_false(concept_is_residue_level("BINDING"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flat_real), cmocka_unit_test(test_flat_current_layout), cmocka_unit_test(test_flat_broken),
      cmocka_unit_test(test_tsv),       cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, setup, fx_teardown);
}
