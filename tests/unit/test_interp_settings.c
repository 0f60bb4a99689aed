// test_interp_settings — the interpreter's protocol settings (issue 18): the share of the sample
// shown for the explanation (interp-explain-frac: split sizes in the two prompts), GO terms per
// namespace, Pfam family names from a UniProt flat file and a names table, neuron activations
// min-max scaled without ReLU, the offline explainer seeing only the prompt's proteins (changing a
// protein it is not shown changes nothing) with graded predictions, and the protsae-interpreter
// process sending its --model to a local Anthropic API and logging each setting in its effective
// configuration.
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "db.h"
#include "fixture.h"
#include "llm_test_server.h"
#include "npy.h"
#include "offline.h"
#include "pfam.h"
#include "protocol.h"

static size_t count_lines(const char *prompt) {  // "\n1. ", "\n2. ", ...
  size_t n = 0;
  char tag[32];
  for (;;) {
    snprintf(tag, sizeof tag, "\n%zu. ", n + 1);
    if (!strstr(prompt, tag)) return n;
    n++;
  }
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

// ---- interp-explain-frac ------------------------------------------------------------------------
static void test_explain_frac(void **state) {
  (void)state;
  enum { N = 1000 };
  float act[N], copy[N];
  for (int i = 0; i < N; i++) act[i] = i < 200 ? (float)(i + 1) / 200.0f : 0.0f;
  char *ids[N];
  for (int i = 0; i < N; i++) {
    char b[16];
    snprintf(b, sizeof b, "P%05d", i);
    ids[i] = strdup(b);
  }
  static const struct { double f; size_t shown, held; } cases[] = {{0.5, 16, 16}, {0.75, 24, 8}, {0.25, 8, 24}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    interp_opts_t o;
    interp_opts_default(&o);
    o.sample.explain_frac = cases[c].f;
    for (size_t unit = 0; unit < 20; unit++) {  // every seeded start
      ps_sample_t s;
      char why[128];
      memcpy(copy, act, sizeof act);
      assert_int_equal(ps_sample_unit(&o.sample, copy, N, unit, &s, why, sizeof why), 1);
      if (s.n_shown != cases[c].shown || s.n_held != cases[c].held)
        fail_msg("frac %.2f unit %zu: shown %zu held %zu, want %zu / %zu", cases[c].f, unit, s.n_shown, s.n_held,
                 cases[c].shown, cases[c].held);
      // the top bin (6 picks) is split in the same proportion, within one
      size_t top = 0;
      for (size_t i = 0; i < s.n_shown; i++) top += s.shown_bin[i] == 0;
      assert_true(fabs((double)top - 6 * cases[c].f) <= 1.0);
      char *p1 = interp_prompt_explain(&o, NULL, (const char *const *)ids, NULL, &s);
      char *p2 = interp_prompt_predict(&o, NULL, (const char *const *)ids, NULL, &s, "an explanation");
      assert_int_equal(count_lines(p1), cases[c].shown);
      assert_int_equal(count_lines(p2), cases[c].held);
      free(p1);
      free(p2);
      ps_sample_free(&s);
    }
  }
  for (int i = 0; i < N; i++) free(ids[i]);
}

// ---- a data directory: proteins, a small ontology, annotations, a flat file --------------------
static const char k_obo[] =
    "format-version: 1.2\n\n"
    "[Term]\nid: GO:0008150\nname: biological_process\nnamespace: biological_process\n\n"
    "[Term]\nid: GO:0003674\nname: molecular_function\nnamespace: molecular_function\n\n"
    "[Term]\nid: GO:0005575\nname: cellular_component\nnamespace: cellular_component\n\n"
    "[Term]\nid: GO:0000010\nname: signalling\nnamespace: biological_process\nis_a: GO:0008150\n\n"
    "[Term]\nid: GO:0000011\nname: receptor signalling\nnamespace: biological_process\nis_a: GO:0000010\n\n"
    "[Term]\nid: GO:0000012\nname: transport\nnamespace: biological_process\nis_a: GO:0008150\n\n"
    "[Term]\nid: GO:0000020\nname: dna binding\nnamespace: molecular_function\nis_a: GO:0003674\n\n"
    "[Term]\nid: GO:0000030\nname: nucleus\nnamespace: cellular_component\nis_a: GO:0005575\n";

static void make_data(char *dir, size_t cap) {
  fx_path(dir, cap, "data");
  mkdir(dir, 0755);
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/proteins.tsv", dir);
  write_file(p, "accession\tgene\tname\tpfam\tlength\n"
                "Q00001\tZNF1\tzinc finger protein 1\tPF00096;PF00001\t100\n"
                "Q00002\tOR2\tolfactory receptor 2\tPF00001\t300\n"
                "Q00003\tABC3\tsome transporter\tPF00005\t500\n");
  snprintf(p, sizeof p, "%s/go-test.obo", dir);
  write_file(p, k_obo);
  snprintf(p, sizeof p, "%s/go_annotations.tsv", dir);
  write_file(p, "accession\tgo_id\tevidence\taspect\n"
                "Q00001\tGO:0000020\tIDA\tF\nQ00001\tGO:0000030\tIDA\tC\nQ00001\tGO:0000011\tIDA\tP\n"
                "Q00001\tGO:0000012\tIEA\tP\nQ00002\tGO:0000011\tIDA\tP\n");
  snprintf(p, sizeof p, "%s/uniprot-flat", dir);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/uniprot-flat/entries.dat", dir);
  write_file(p, "ID   ZN1_HUMAN               Reviewed;         100 AA.\nAC   Q00001;\n"
                "DR   Pfam; PF00096; zf-C2H2; 3.\nDR   Pfam; PF00001; 7tm_1; 1.\n//\n"
                "ID   AB3_HUMAN               Reviewed;         500 AA.\nAC   Q00003;\n"
                "DR   Pfam; PF00005; ABC_tran; 2.\nDR   Pfam; PF99999; Not_in_db; 1.\n//\n");
}

// A sample showing db proteins 0..n-1 (activations 1, 0.5, 0, ...) and holding out the same ones.
static void sample_of(ps_sample_t *s, size_t n) {
  memset(s, 0, sizeof *s);
  s->n_shown = s->n_held = n;
  s->shown = calloc(n, sizeof *s->shown), s->held = calloc(n, sizeof *s->held);
  s->shown_act = calloc(n, sizeof *s->shown_act), s->held_act = calloc(n, sizeof *s->held_act);
  s->shown_bin = calloc(n, sizeof *s->shown_bin), s->held_bin = calloc(n, sizeof *s->held_bin);
  for (size_t i = 0; i < n; i++) s->shown[i] = s->held[i] = (int64_t)i, s->shown_act[i] = 1.0f - 0.5f * (float)i;
}

static void test_go_by_namespace(void **state) {
  (void)state;
  char dir[PATH_MAX];
  make_data(dir, sizeof dir);
  interp_db_t *db = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(interp_db_load(&db, dir, 0, &err), 0);
  const char *ids[] = {"Q00001", "Q00002", "Q00003"};
  int64_t row_db[3];
  for (int i = 0; i < 3; i++) row_db[i] = interp_db_find(db, ids[i]);
  ps_sample_t s;
  sample_of(&s, 3);
  interp_opts_t o;
  interp_opts_default(&o);
  assert_int_equal(o.go_by_namespace, 1);  // the default: the study's sections
  char *p = interp_prompt_explain(&o, db, ids, row_db, &s);
  printf("%s\n", p);
  assert_non_null(strstr(p, "GO biological process | GO molecular function | GO cellular component"));
  // BP most specific first, then MF, then CC; an empty section says "-"
  assert_non_null(strstr(p, "Q00001 | gene: ZNF1 | name: zinc finger protein 1 | Pfam: PF00096, PF00001 | GO biological "
                            "process: receptor signalling; transport | GO molecular function: dna binding | GO "
                            "cellular component: nucleus | activation"));
  assert_non_null(strstr(p, "Q00002 | gene: OR2 | name: olfactory receptor 2 | Pfam: PF00001 | GO biological process: "
                            "receptor signalling | GO molecular function: - | GO cellular component: - |"));
  free(p);
  // the cap is per namespace: one term each
  o.max_go_terms = 1;
  p = interp_prompt_predict(&o, db, ids, row_db, &s, "x");
  assert_non_null(strstr(p, "GO biological process: receptor signalling | GO molecular function: dna binding | GO "
                            "cellular component: nucleus"));
  free(p);
  int32_t t[16];
  assert_int_equal(interp_prompt_go_terms(&o, db, row_db[0], t, 16), 3);
  // one list (0): the first go-terms terms, most specific first, whatever their namespace
  o.go_by_namespace = 0;
  o.max_go_terms = 12;
  p = interp_prompt_explain(&o, db, ids, row_db, &s);
  assert_null(strstr(p, "GO biological process"));
  assert_non_null(strstr(p, "Pfam families | Gene Ontology terms | activation"));
  assert_non_null(strstr(p, "| GO: receptor signalling; "));
  assert_int_equal(interp_prompt_go_terms(&o, db, row_db[0], t, 16), 4);
  free(p);
  ps_sample_free(&s);
  interp_db_destroy(&db);
}

// ---- Pfam names -----------------------------------------------------------------------------------
static void test_pfam_names(void **state) {
  (void)state;
  char dir[PATH_MAX], flat[8192], p[PATH_MAX + 64];
  make_data(dir, sizeof dir);
  interp_db_t *db = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(interp_db_load(&db, dir, 0, &err), 0);
  // auto: the data directory's uniprot-flat/
  assert_int_equal(interp_pfam_find_flat("auto", dir, flat, sizeof flat, &err), 0);
  assert_non_null(strstr(flat, "uniprot-flat/entries.dat"));
  size_t named = 0;
  assert_int_equal(interp_pfam_load(db, NULL, flat, &named, &err), 0);
  assert_int_equal(named, 3);  // PF99999 is no family of the db: not kept
  assert_string_equal(interp_pfam_label(db, interp_db_pfam_index(db, "PF00096")), "zf-C2H2");
  assert_string_equal(interp_pfam_label(db, interp_db_pfam_index(db, "PF00005")), "ABC_tran");
  const char *ids[] = {"Q00001", "Q00002"};
  int64_t row_db[2] = {interp_db_find(db, ids[0]), interp_db_find(db, ids[1])};
  ps_sample_t s;
  sample_of(&s, 2);
  interp_opts_t o;
  interp_opts_default(&o);
  char *pr = interp_prompt_explain(&o, db, ids, row_db, &s);
  assert_non_null(strstr(pr, "| Pfam: PF00096 (zf-C2H2), PF00001 (7tm_1) |"));
  free(pr);
  interp_db_destroy(&db);
  // a names table wins over the flat files; a header line is skipped
  assert_int_equal(interp_db_load(&db, dir, 0, &err), 0);
  snprintf(p, sizeof p, "%s/pfam-names.tsv", dir);
  write_file(p, "pfam\tname\tdescription\nPF00001\t7tm_1_from_table\t7 transmembrane receptor\n# comment\n");
  assert_int_equal(interp_pfam_load(db, p, flat, &named, &err), 0);
  assert_string_equal(interp_pfam_label(db, interp_db_pfam_index(db, "PF00001")), "7tm_1_from_table");
  assert_string_equal(interp_pfam_label(db, interp_db_pfam_index(db, "PF00096")), "zf-C2H2");
  // errors name the file and line; a missing flat path is refused; "" reads none
  write_file(p, "PF00001\t7tm_1\nnot a pfam line\n");
  assert_true(interp_pfam_load(db, p, NULL, &named, &err) < 0);
  assert_non_null(strstr(err.msg, "pfam-names.tsv: line 2"));
  assert_true(interp_pfam_find_flat("/nonexistent/flat.dat", dir, flat, sizeof flat, &err) < 0);
  assert_non_null(strstr(err.msg, "/nonexistent/flat.dat"));
  assert_int_equal(interp_pfam_find_flat("", dir, flat, sizeof flat, &err), 0);
  assert_string_equal(flat, "");
  ps_sample_free(&s);
  interp_db_destroy(&db);
  // the real flat files (../shared/data/uniprot-flat): every family they name is read
  if (fx_find_shared("data/uniprot-flat/swiss100.dat")) {
    snprintf(p, sizeof p, "%s/data/uniprot-flat", fx_shared_dir);
    assert_int_equal(interp_pfam_find_flat(p, NULL, flat, sizeof flat, &err), 0);
    db = interp_db_new();
    interp_db_add(db, "X1", "G1", "n", "PF00244;PF00001;PF12345678");
    assert_int_equal(interp_pfam_load(db, NULL, flat, &named, &err), 0);
    assert_int_equal(named, 2);
    assert_string_equal(interp_pfam_label(db, interp_db_pfam_index(db, "PF00244")), "14-3-3");
    interp_db_destroy(&db);
  }
}

// ---- neuron scaling -------------------------------------------------------------------------------
static void test_neuron_minmax(void **state) {
  (void)state;
  enum { N = 400 };
  float act[N], copy[N];
  for (int i = 0; i < N; i++) act[i] = i < 100 ? (float)(i + 1) / 10.0f : -0.01f * (float)(i - 99);  // -3 .. 10
  ps_sample_opts_t o;
  ps_sample_opts_default(&o);
  ps_sample_t s;
  char why[128];
  // ReLU, then min-max (today's neurons): the inactive proteins are 0
  o.relu = 1;
  memcpy(copy, act, sizeof act);
  assert_int_equal(ps_sample_unit(&o, copy, N, 3, &s, why, sizeof why), 1);
  for (size_t i = 0; i < s.n_held; i++)
    if (s.held_bin[i] == 5) assert_true(s.held_act[i] == 0.0f);
  ps_sample_free(&s);
  // min-max of the raw values (the study's): negatives keep their order above 0
  o.relu = 0;
  memcpy(copy, act, sizeof act);
  assert_int_equal(ps_sample_unit(&o, copy, N, 3, &s, why, sizeof why), 1);
  assert_int_equal(s.n_active, 100);
  float lo = act[N - 1], hi = act[99];
  size_t inactive = 0;
  for (size_t i = 0; i < s.n_shown + s.n_held; i++) {
    int held = i >= s.n_shown;
    size_t k = held ? i - s.n_shown : i;
    int64_t row = held ? s.held[k] : s.shown[k];
    float v = held ? s.held_act[k] : s.shown_act[k];
    int bin = held ? s.held_bin[k] : s.shown_bin[k];
    float want = (act[row] - lo) / (hi - lo);
    if (fabsf(v - want) > 1e-6f) fail_msg("row %lld: scaled %g, want %g", (long long)row, v, want);
    if (bin == 5) {
      inactive++;
      assert_true(act[row] < 0 && v < (0 - lo) / (hi - lo) + 1e-6f);
      if (row != N - 1) assert_true(v > 0);
    }
  }
  assert_int_equal(inactive, 15);
  ps_sample_free(&s);
}

// ---- the offline explainer ---------------------------------------------------------------------
// 600 proteins: A = PF00096 on every third, B = PF00001 on every second; the unit is 0.5 A + 0.5 B
// (+ a little noise on the active ones): both -> high, one -> middle, none -> 0.
enum { NP = 600 };

static interp_db_t *graded_db(char **ids, int change_row, const char *changed_pfam) {
  interp_db_t *db = interp_db_new();
  for (int i = 0; i < NP; i++) {
    char gene[16], pf[32] = "";
    snprintf(gene, sizeof gene, "G%c%c%d", 'A' + i % 26, 'A' + (i / 26) % 26, i);
    if (i % 3 == 0) strcat(pf, "PF00096;");
    if (i % 2 == 0) strcat(pf, "PF00001;");
    if (i % 7 == 0) strcat(pf, "PF00005;");
    interp_db_add(db, ids[i], gene, "some protein", i == change_row ? changed_pfam : pf);
  }
  return db;
}

static void graded_act(float *act) {
  uint64_t r = 99;
  for (int i = 0; i < NP; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    double v = 0.5 * (i % 3 == 0) + 0.5 * (i % 2 == 0);
    act[i] = v > 0 ? (float)(v + 0.1 * (double)(r >> 40) / (double)(1 << 24)) : 0.0f;
  }
}

static void test_offline_shown_only(void **state) {
  (void)state;
  char *ids[NP];
  int64_t row_db[NP];
  for (int i = 0; i < NP; i++) {
    char b[16];
    snprintf(b, sizeof b, "P%05d", i);
    ids[i] = strdup(b);
    row_db[i] = i;
  }
  float act[NP], copy[NP];
  graded_act(act);
  interp_opts_t o;
  interp_opts_default(&o);
  o.unit_kind = "neuron";
  ps_sample_t s;
  char why[128];
  memcpy(copy, act, sizeof act);
  assert_int_equal(ps_sample_unit(&o.sample, copy, NP, 5, &s, why, sizeof why), 1);
  interp_db_t *db = graded_db(ids, -1, NULL);
  offline_expl_t ex, ex2;
  offline_explain(&o, db, row_db, s.shown, s.shown_act, s.n_shown, &ex);
  printf("%s\n", ex.text);
  assert_int_equal(ex.n_shown, s.n_shown);
  assert_non_null(strstr(ex.text, "PF00096"));
  assert_non_null(strstr(ex.text, "PF00001"));
  // graded predictions on the held-out proteins, and real signal scores r > 0
  double pred[64], truth[64];
  size_t distinct = 0;
  for (size_t i = 0; i < s.n_held; i++) {
    pred[i] = offline_predict(&ex, &o, db, row_db[s.held[i]]);
    truth[i] = s.held_act[i];
    assert_true(pred[i] >= 0 && pred[i] <= 1);
    int seen = 0;
    for (size_t j = 0; j < i; j++) seen |= pred[j] == pred[i];
    distinct += !seen;
  }
  double r, p;
  assert_int_equal(interp_pearson(pred, truth, s.n_held, &r, &p), 0);
  printf("held-out: %zu distinct predictions, r %.3f\n", distinct, r);
  assert_true(distinct >= 3);
  assert_true(r > 0.5);
  // deterministic
  offline_explain(&o, db, row_db, s.shown, s.shown_act, s.n_shown, &ex2);
  assert_string_equal(ex.text, ex2.text);
  offline_expl_free(&ex2);
  // a held-out protein and a protein outside the sample change their annotations: same explanation
  int changed[2] = {(int)s.held[0], -1};
  for (int i = 0; i < NP && changed[1] < 0; i++) {
    int in = 0;
    for (size_t k = 0; k < s.n_shown; k++) in |= s.shown[k] == i;
    for (size_t k = 0; k < s.n_held; k++) in |= s.held[k] == i;
    if (!in) changed[1] = i;
  }
  for (int c = 0; c < 2; c++) {
    interp_db_t *db2 = graded_db(ids, changed[c], "PF00096;PF00001;PF00005;PF11111");
    offline_explain(&o, db2, row_db, s.shown, s.shown_act, s.n_shown, &ex2);
    assert_string_equal(ex.text, ex2.text);
    assert_int_equal(ex.n, ex2.n);
    for (size_t k = 0; k < ex.n; k++) assert_true(ex.e[k].key == ex2.e[k].key && ex.e[k].m == ex2.e[k].m);
    offline_expl_free(&ex2);
    interp_db_destroy(&db2);
  }
  // ... while a shown protein's annotations do count
  size_t top = 0;
  for (size_t k = 1; k < s.n_shown; k++) top = s.shown_act[k] > s.shown_act[top] ? k : top;
  interp_db_t *db3 = graded_db(ids, (int)s.shown[top], "PF11111");
  offline_explain(&o, db3, row_db, s.shown, s.shown_act, s.n_shown, &ex2);
  assert_string_not_equal(ex.text, ex2.text);
  offline_expl_free(&ex2);
  interp_db_destroy(&db3);
  // nothing to say (activations unrelated to the annotations shown): the shown mean for everyone
  float flat_act[4] = {1, 0.8f, 0.2f, 0};
  int64_t rows[4] = {1, 5, 7, 11};  // no family shared by two of them above the mean
  offline_explain(&o, db, row_db, rows, flat_act, 4, &ex2);
  assert_int_equal(ex2.n, 0);
  assert_true(fabs(offline_predict(&ex2, &o, db, 0) - 0.5) < 1e-6);  // float activations
  offline_expl_free(&ex2);
  offline_expl_free(&ex);
  interp_db_destroy(&db);
  ps_sample_free(&s);
  for (int i = 0; i < NP; i++) free(ids[i]);
}

// ---- the process: --model in the request body, settings in the effective configuration ----------
static char *answer(const char *prompt, void *ud) {
  (void)ud;
  if (strstr(prompt, "In one sentence")) return strdup("Explanation: proteins with PF00096.");
  char *out = calloc(1, 1 << 16);
  size_t n = count_lines(prompt);
  for (size_t i = 0; i < n; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "\n%zu. ", i + 1);
    const char *line = strstr(prompt, tag);
    const char *e = line ? strchr(line + 1, '\n') : NULL;
    int zf = line && strstr(line, "PF00096") && (!e || strstr(line, "PF00096") < e);
    sprintf(out + strlen(out), "%zu: %s\n", i + 1, zf ? "0.9" : "0.1");
  }
  return out;
}

static void test_process_settings(void **state) {
  (void)state;
  char bin[512];
  if (!fx_stage_bin("interpreter", bin, sizeof bin)) skip();
  char dir[PATH_MAX], path[PATH_MAX + 64], ids_p[PATH_MAX + 16], npy[PATH_MAX + 16], out[PATH_MAX + 16],
      log[PATH_MAX + 16], tsv[PATH_MAX + 16];
  make_data(dir, sizeof dir);
  // 300 proteins of the data dir's three kinds; a neuron that is negative on two thirds of them
  snprintf(path, sizeof path, "%s/proteins.tsv", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "accession\tgene\tname\tpfam\tlength\n");
  for (int i = 0; i < 300; i++)
    fprintf(f, "Q%05d\tG%d\tprotein %d\t%s\t100\n", i, i, i, i % 3 == 0 ? "PF00096" : i % 3 == 1 ? "PF00001" : "PF00005");
  fclose(f);
  fx_path(ids_p, sizeof ids_p, "ids.txt");
  f = fopen(ids_p, "w");
  for (int i = 0; i < 300; i++) fprintf(f, "Q%05d\n", i);
  fclose(f);
  fx_path(npy, sizeof npy, "neurons.npy");
  float col[300];
  for (int i = 0; i < 300; i++) col[i] = i % 3 == 0 ? 1.0f + (float)(i % 17) : -1.0f - (float)(i % 13);
  npy_writer_t *w = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(npy_writer_open(&w, npy, NPY_F32, 1, &err), 0);
  assert_int_equal(npy_writer_append_f32(w, col, 300, &err), 0);
  assert_int_equal(npy_writer_close(&w, &err), 0);
  fx_path(tsv, sizeof tsv, "pfam.tsv");
  write_file(tsv, "PF00005\tABC_tran_table\n");
  fx_path(out, sizeof out, "out");
  fx_path(log, sizeof log, "interp.log");
  llm_test_server_t *srv = llm_test_server_start("k-settings");
  assert_non_null(srv);
  llm_test_server_set_reply(srv, answer, NULL);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
    setenv("ANTHROPIC_API_KEY", "k-settings", 1);
    execl(bin, bin, "--mode", "anthropic", "--base-url", llm_test_server_url(srv), "--model",
          "claude-3-5-sonnet-20240620", "--neurons", npy, "--ids", ids_p, "--data", dir, "--out", out, "--n-neurons",
          "1", "--interp-explain-frac", "0.75", "--interp-neuron-scaling", "minmax", "--interp-go-by-namespace", "1",
          "--pfam-names", tsv, "--parallel", "1", "--rpm", "0", "--timeout-ms", "5000", (char *)NULL);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  char line[1 << 16];
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    f = fopen(log, "r");
    while (f && fgets(line, sizeof line, f)) fputs(line, stdout);
    if (f) fclose(f);
    fail_msg("protsae-interpreter exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  }
  // both calls carried the model id; the prompts the split, the sections and the names
  assert_int_equal(llm_test_server_n_requests(srv), 2);
  for (size_t i = 0; i < 2; i++) {
    llm_test_request_t r;
    assert_int_equal(llm_test_server_get(srv, i, &r), 0);
    assert_non_null(r.model);
    assert_string_equal(r.model, "claude-3-5-sonnet-20240620");
    assert_non_null(strstr(r.body, "claude-3-5-sonnet-20240620"));
    size_t n = count_lines(r.prompt);
    if (strstr(r.prompt, "In one sentence")) {
      assert_int_equal(n, 24);  // 32 sampled (17 active + 15 inactive), 3/4 shown
      assert_non_null(strstr(r.prompt, "GO biological process"));
      assert_non_null(strstr(r.prompt, "PF00096 (zf-C2H2)"));  // DATA/uniprot-flat, found by auto
      assert_non_null(strstr(r.prompt, "PF00005 (ABC_tran_table)"));  // the table wins
    } else {
      assert_int_equal(n, 8);
    }
  }
  // min-max without ReLU: the held-out inactive proteins are above 0 (one of the 300 is the minimum)
  snprintf(path, sizeof path, "%s/neurons.jsonl", out);
  f = fopen(path, "r");
  assert_non_null(f);
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  size_t zeros = 0, held = 0;
  for (const char *q = strstr(line, "\"true\":"); q; q = strstr(q + 1, "\"true\":")) {
    held++;
    zeros += atof(q + 7) == 0.0;
  }
  assert_int_equal(held, 8);
  assert_true(zeros <= 1);
  // each setting in the effective configuration
  static const char *const want[] = {"config interp-explain-frac=0.75 ", "config interp-neuron-scaling=minmax ",
                                     "config interp-go-by-namespace=1 ", "config model=claude-3-5-sonnet-20240620 ",
                                     "config pfam-names=", "config uniprot-flat=auto "};
  int found[6] = {0};
  f = fopen(log, "r");
  while (fgets(line, sizeof line, f))
    for (int k = 0; k < 6; k++) found[k] |= strstr(line, want[k]) != NULL;
  fclose(f);
  for (int k = 0; k < 6; k++)
    if (!found[k]) fail_msg("no '%s' in the effective configuration (%s)", want[k], log);
  llm_test_server_stop(&srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_explain_frac),       cmocka_unit_test(test_go_by_namespace),
      cmocka_unit_test(test_pfam_names),         cmocka_unit_test(test_neuron_minmax),
      cmocka_unit_test(test_offline_shown_only), cmocka_unit_test(test_process_settings),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
