// Gene Ontology, the annotation half: the real human annotation TSV (line accounting, IEA filter,
// propagation of every protein checked against an independent Python implementation by a CRC
// over all (protein, term) pairs; skipped without /usr/bin/python3), the two UniProt flat files
// (DR GO lines against grep), and hand-made GAF / TSV / flat files for each rule (NOT qualifiers,
// unknown / alt / obsolete ids, evidence and namespace filters, malformed lines: errors naming
// file and line). The ontology is test_go_ontology.c.
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
  fx_path(path, sizeof path, "small.gaf.gz");
  fx_write_gz(path, k_gaf, strlen(k_gaf));
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
  fx_path(tsv, sizeof tsv, "more.tsv");
  fx_write_text(tsv, "accession\tgo_id\tevidence\taspect\nP4\tT:0000003\tIDA\tP\nP9\tT:0000001\tIDA\tP\n");
  assert_int_equal(go_annotations_load_tsv(a, o, tsv, &k_all, &r, &err), 0);
  check_report(&r, 2, 2, 0, 0, 0, 0, 0, 0, 0);
  assert_int_equal(a->n_proteins, 2);
  assert_terms(a, o, "P4", "T:0000003 MF:root");
  assert_terms(a, o, "P9", "T:0000001");
  go_annotations_destroy(&a);

  // malformed GAF: 10 columns on line 4
  char bad[PATH_MAX];
  fx_path(bad, sizeof bad, "bad.gaf");
  fx_write_text(bad, "!gaf-version: 2.2\n" GAF17("P1", "", "T:0000004", "IDA", "P") "\n"
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
  fx_path(path, sizeof path, "a.tsv");
  fx_write_text(path, "accession\tgo_id\tevidence\taspect\n# comment\nQ1\tT:0000002\tIDA\tP\n\n"
                   "Q1\tT:0000099\tIDA\tP\nQ2\tT:0000007\tIEA\tP\nQ2\tT:0000006\tIEA\tP\n");
  go_annotations_t *a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, path, NULL, &r, &err), 0);
  check_report(&r, 4, 2, 1, 1, 1, 0, 0, 0, 0);
  assert_terms(a, o, "Q1", "T:0000002");
  assert_terms(a, o, "Q2", "T:0000002");
  go_annotations_destroy(&a);
  // two columns on line 3
  fx_write_text(path, "accession\tgo_id\tevidence\taspect\nQ1\tT:0000002\tIDA\tP\nQ1\tT:0000002\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.tsv: line 3:");
  assert_msg_has(&err, "2 columns");
  go_annotations_destroy(&a);
  fx_write_text(path, "accession\tgo_id\tevidence\nQ1\t\tIDA\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_tsv(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.tsv: line 2: empty GO id");
  go_annotations_destroy(&a);

  // UniProt flat file
  fx_path(path, sizeof path, "a.dat");
  fx_write_text(path, "ID   X_HUMAN                 Reviewed;          10 AA.\n"
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
  fx_write_text(path, "ID   Z\nDR   GO; T:0000004; P:x; IDA:U.\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_uniprot(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.dat: line 2:");
  assert_msg_has(&err, "before any AC");
  go_annotations_destroy(&a);
  fx_write_text(path, "accession\tgo_id\tevidence\n");
  a = go_annotations_new();
  assert_int_equal(go_annotations_load_uniprot(a, o, path, NULL, &r, &err), PS_EFORMAT);
  assert_msg_has(&err, "a.dat: line 1:");
  assert_msg_has(&err, "not a UniProt flat-file line");
  go_annotations_destroy(&a);
  fx_write_text(path, "ID   Z\nAC   Q1;\nDR   GO; T:0000004.\n");
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
static go_annotations_t *load_tsv_timed(const go_ontology_t *o, const go_annot_opts_t *op, go_annot_report_t *r,
                                        const char *what) {
  ps_err_t err = {0};
  go_annotations_t *a = go_annotations_new();
  double t0 = ps_mono_s();
  int rc = go_annotations_load_tsv(a, o, g_tsv, op, r, &err);
  double t1 = ps_mono_s();
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
  long long want_lines = fx_sh_count(cmd);
  assert_int_equal(want_lines, 330207);
  snprintf(cmd, sizeof cmd, "zcat '%s' | tail -n +2 | awk -F'\\t' '$3==\"IEA\"' | wc -l", g_tsv);
  long long n_iea = fx_sh_count(cmd);
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
  double t0 = ps_mono_s();
  go_annotations_propagate(a, o);
  double t1 = ps_mono_s();
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
    snprintf(path, sizeof path, "%s/data/uniprot-flat/%s", fx_shared_dir, files[f]);
    snprintf(cmd, sizeof cmd, "grep -c '^DR   GO;' '%s'", path);
    long long want = fx_sh_count(cmd);
    snprintf(cmd, sizeof cmd, "grep -c '^//' '%s'", path);
    assert_int_equal(fx_sh_count(cmd), 100);
    // entries with at least one DR GO line
    snprintf(cmd, sizeof cmd, "awk '/^ID /{g=0} /^DR   GO;/{g=1} /^\\/\\//{n+=g} END{print n}' '%s'", path);
    long long with_go = fx_sh_count(cmd);
    ps_err_t err = {0};
    go_annot_report_t r;
    go_annotations_t *a = go_annotations_new();
    double t0 = ps_mono_s();
    int rc = go_annotations_load_uniprot(a, o, path, &k_all, &r, &err);
    double t1 = ps_mono_s();
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
  double t0 = ps_mono_s();
  go_annotations_propagate(a[0], o);
  go_annotations_propagate(a[1], o);
  printf("  propagated both sets in %.3f s\n", ps_mono_s() - t0);
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


int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gaf),
      cmocka_unit_test(test_tsv_and_flat_small),
  };
  const struct CMUnitTest data_tests[] = {
      cmocka_unit_test(test_real_annotations),
      cmocka_unit_test(test_real_uniprot),
      cmocka_unit_test(test_python_annotations),
  };
  int rc = cmocka_run_group_tests_name("go_annot", tests, fx_setup, fx_teardown);
  if (!go_find_shared()) {
    printf("no shared data (set PROTSAE_SHARED): skipping the real-data tests\n");
    return rc;
  }
  return rc + cmocka_run_group_tests_name("go_annot_data", data_tests, fx_setup, fx_teardown);
}
