// test_report_residue.c — residue-level feature cards (cli/report_residue.h): a store holding a
// known protein's residue code, a FASTA with its sequence; the card's HTML highlights exactly that
// feature's residues at their positions (other features' residues stay plain), escapes ids, and
// says when a protein has no residue code, shows the feature's stored best concept; the text card
// marks the same residues.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "featstore.h"
#include "fixture.h"
#include "report_residue.h"

// P1: MKVNGTSAAW. Feature 3 is active at N4 (2.0) and T6 (1.0); feature 2 at K2 and feature 5 at
// M1, which feature 3's card must not show.
static void make_store(const char *path) {
  ps_err_t err = {0};
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, path, FS_OPEN_CREATE, &err), 0);
  fs_wb_t *wb = fs_wb_new();
  fs_meta_t m = {.format = FS_FORMAT, .n_features = 8, .top_n = 4, .level = 1, .proteins = 2, .residues = 14,
                 .residue_top = 4};
  fs_wb_put_meta(fs, wb, &m);
  static const uint32_t feat[] = {2, 3, 3, 5}, pos[] = {1, 3, 5, 0};
  static const float val[] = {0.5f, 2.0f, 1.0f, 9.0f};
  fs_rcode_t rc = {.len = 10, .n = 4, .feat = feat, .pos = pos, .val = val};
  fs_wb_put_rcode(fs, wb, "P1", &rc);
  fs_concept_t c = {.feature = 3, .concept = "MOTIF:<N-T>", .threshold = 0.15, .precision = 0.75, .recall = 0.5,
                    .f1 = 0.6, .tp = 3, .n_pred = 4, .found = 1, .instances = 2};
  fs_wb_put_concept(fs, wb, &c);
  assert_int_equal(fs_commit(fs, wb, 1, &err), 0);
  fs_wb_free(&wb);
  fs_close(&fs);
}

static char *render(int html) {
  char store[PATH_MAX], fasta[PATH_MAX];
  fx_path(store, sizeof store, html ? "html.db" : "text.db");
  fx_path(fasta, sizeof fasta, "p.fasta");
  fx_write_text(fasta, ">P0 other\nAAAA\n>P1 known protein\nMKVNG\nTSAAW\n>P<2> no code\nACDE\n");
  make_store(store);
  ps_err_t err = {0};
  fs_t *fs = NULL;
  assert_int_equal(fs_open(&fs, store, FS_OPEN_READONLY, &err), 0);
  fs_feat_t f;
  fs_feat_init(&f, 4);
  assert_int_equal(fs_feat_offer_top(&f, 4, 2.0f, "P1", 3), 1);
  assert_true(fs_feat_offer_top(&f, 4, 1.5f, "P<2>", 0) >= 0);
  f.res_max = 2.0f;
  rr_seqs_t s;
  const char *ids[] = {f.top[0].id, f.top[1].id};
  assert_int_equal(rr_seqs_load(&s, fasta, ids, 2, &err), 0);
  assert_string_equal(rr_seq(&s, "P1"), "MKVNGTSAAW");
  assert_null(rr_seq(&s, "P0"));  // not asked for
  char *buf = NULL;
  size_t len = 0;
  FILE *o = open_memstream(&buf, &len);
  int rc = rr_card(o, html, fs, 3, &f, &s, 5, &err);
  assert_int_equal(rc, 0);
  fclose(o);
  rr_seqs_free(&s);
  fs_feat_clear(&f);
  fs_close(&fs);
  return buf;
}

static void test_html_highlights_known_residues(void **state) {
  (void)state;
  char *h = render(1);
  const char *p1 = strstr(h, "<b>P1</b>");
  assert_non_null(p1);
  const char *seq = strstr(p1, "<br>");
  assert_non_null(seq);
  // M K V plain, N4 highlighted at full intensity, G plain, T6 highlighted, the rest plain
  const char *want = "<br>MKV<span class=hl style='background:rgba(208,88,42,1.00)' title='N4: 2'>N</span>G"
                     "<span class=hl style='background:rgba(208,88,42,0.57)' title='T6: 1'>T</span>SAAW</div>";
  if (strncmp(seq, want, strlen(want))) fail_msg("card sequence:\n%s\nwanted:\n%s", seq, want);
  assert_null(strstr(h, "title='K2"));  // feature 2's residue
  assert_null(strstr(h, "title='M1"));  // feature 5's
  assert_non_null(strstr(h, "<b>P&lt;2&gt;</b>"));  // ids escaped
  assert_null(strstr(h, "P<2>"));
  assert_non_null(strstr(h, "(no residue code in the store)"));
  // the stored best concept, escaped
  if (!strstr(h, "<p>best residue concept: <b>MOTIF:&lt;N-T&gt;</b> F1 0.600 (precision 0.750, recall 0.500, at 0.15"))
    fail_msg("card without its concept:\n%s", h);
  free(h);
}

static void test_text_marks_known_residues(void **state) {
  (void)state;
  char *t = render(0);
  if (!strstr(t, "P1           N4 2 T6 1\n") || !strstr(t, "1 MKV[N]G[T]SAAW 10\n"))
    fail_msg("text card:\n%s", t);
  assert_non_null(strstr(t, "P<2>         (no residue code in the store)"));
  assert_non_null(strstr(t, "best residue concept: MOTIF:<N-T> F1 0.600"));
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_html_highlights_known_residues),
      cmocka_unit_test(test_text_marks_known_residues),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
