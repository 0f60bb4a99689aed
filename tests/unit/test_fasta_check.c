// fasta_check: every problem kind under both policies (FAIL names file, record, id and
// position; SKIP lists and counts), plain and gzip: letters outside the ESM2 alphabet (located
// on their file line), empty records, a 50,000-residue record (truncate / error), duplicate ids
// (all occurrences skipped, the first named), and the always-fatal ones (gzip cut mid-stream or
// corrupt, data before the first header, an empty id, a non-residue byte, a missing file). Then
// the skip set honoured downstream: the ESM2 runner over ../shared/testvectors/esm2-tiny never
// tokenizes a skipped record and gives the others their real FASTA record number and the same
// embeddings as a clean file; the embedding dataset drops skipped ids (rows stay aligned).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"

#include "esm2.h"
#include "fasta_check.h"
#include "npy.h"
#include "reader.h"

static int8_t alphabet[256];

static int setup(void **state) {
  esm2_default_alphabet(alphabet);
  return fx_setup(state);
}

// Write text to NAME (gz: gzip) in the scratch dir; path into buf (char[512]).
static const char *put(char *buf, const char *name, const char *text, int gz) {
  fx_path(buf, 512, name);
  if (gz) fx_write_gz(buf, text, strlen(text));
  else fx_write_text(buf, text);
  return buf;
}

static fasta_check_opts_t opts(fasta_check_policy_t policy) {
  fasta_check_opts_t o = {0};
  o.policy = policy;
  o.letter_id = alphabet;
  return o;
}

// Check text written as NAME (plain and gzip when gz); returns rc, res filled.
static int check(const char *name, const char *text, int gz, const fasta_check_opts_t *o, fasta_check_result_t *res,
                 ps_err_t *err) {
  char p[512];
  put(p, name, text, gz);
  return fasta_check(p, o, res, err);
}

static void want_msg(const ps_err_t *err, const char *part) {
  if (!strstr(err->msg, part)) fail_msg("message lacks \"%s\": %s", part, err->msg);
}

// ---- the alphabet ------------------------------------------------------------------------

static void test_alphabet_is_esm2s(void **state) {
  (void)state;
  for (const char *p = "LAGVSERTIDPKQNFYMHWCXBUZO.-"; *p; p++) assert_true(alphabet[(unsigned char)*p] >= 0);
  for (const char *p = "Jjakl*0 "; *p; p++) assert_true(alphabet[(unsigned char)*p] < 0);
}

static void test_clean(void **state) {
  (void)state;
  const char *text = ">a first\nMKV\nLL\n>b\nGG-.\n";
  for (int gz = 0; gz < 2; gz++) {
    fasta_check_opts_t o = opts(FASTA_CHECK_FAIL);
    fasta_check_result_t res;
    ps_err_t err = {0};
    assert_int_equal(check(gz ? "clean.fa.gz" : "clean.fa", text, gz, &o, &res, &err), 0);
    assert_int_equal(res.records, 2);
    assert_int_equal(res.residues, 9);
    assert_int_equal(res.n_skipped, 0);
    assert_int_equal(res.fail_kind, -1);
    fasta_check_result_free(&res);
  }
}

// ---- letters outside the alphabet ------------------------------------------------------------

static void test_letter(void **state) {
  (void)state;
  // record 2 (b): J is its residue 5, on file line 5, column 3 (blanks are no residues); record 3 (c): a final '*';
  // record 4 (d): lowercase k
  const char *text = ">a\nMKV\n>b desc\nM KV\nL\tJV\n>c\nMKV*\n>d\nMkV\n>e\nMM\n";
  for (int gz = 0; gz < 2; gz++) {
    const char *name = gz ? "letter.fa.gz" : "letter.fa";
    fasta_check_opts_t o = opts(FASTA_CHECK_FAIL);
    fasta_check_result_t res;
    ps_err_t err = {0};
    assert_int_equal(check(name, text, gz, &o, &res, &err), PS_EFORMAT);
    want_msg(&err, name);
    want_msg(&err, "record 2 (id 'b'), line 5, column 3: letter 'J' at residue 5 is not in the ESM2 alphabet");
    assert_int_equal(res.fail_kind, FASTA_PROBLEM_LETTER);
    assert_int_equal(res.fail_index, 1);
    fasta_check_result_free(&res);

    o.policy = FASTA_CHECK_SKIP;
    assert_int_equal(check(name, text, gz, &o, &res, &err), 0);
    assert_int_equal(res.records, 5);
    assert_int_equal(res.n_skipped, 3);
    assert_int_equal(res.skipped[FASTA_PROBLEM_LETTER], 3);
    uint64_t want_idx[3] = {1, 2, 3};
    const char *want_id[3] = {"b", "c", "d"};
    for (int i = 0; i < 3; i++) {
      assert_int_equal(res.skip_index[i], want_idx[i]);
      assert_string_equal(res.skip_id[i], want_id[i]);
      assert_int_equal(res.skip_kind[i], FASTA_PROBLEM_LETTER);
    }
    if (!strstr(res.skip_msg[1], "record 3 (id 'c'), line 7, column 4: letter '*' at residue 4")) fail_msg("%s", res.skip_msg[1]);
    if (!strstr(res.skip_msg[2], "record 4 (id 'd'), line 9, column 2: letter 'k' at residue 2")) fail_msg("%s", res.skip_msg[2]);
    fasta_check_result_free(&res);

    o.unknown = FASTA_UNKNOWN_UNK;  // mapped to <unk>: counted, nothing skipped
    assert_int_equal(check(name, text, gz, &o, &res, &err), 0);
    assert_int_equal(res.n_skipped, 0);
    assert_int_equal(res.unknown, 3);
    fasta_check_result_free(&res);
  }
}

// ---- empty records ---------------------------------------------------------------------------

static void test_empty(void **state) {
  (void)state;
  const char *text = ">a\nMKV\n>b nothing here\n\n>c\nMK\n>d\n";
  for (int gz = 0; gz < 2; gz++) {
    const char *name = gz ? "empty.fa.gz" : "empty.fa";
    fasta_check_opts_t o = opts(FASTA_CHECK_FAIL);
    fasta_check_result_t res;
    ps_err_t err = {0};
    assert_int_equal(check(name, text, gz, &o, &res, &err), PS_EFORMAT);
    want_msg(&err, "record 2 (id 'b'), line 3: empty sequence (no residues)");
    assert_int_equal(res.fail_kind, FASTA_PROBLEM_EMPTY);
    fasta_check_result_free(&res);

    o.policy = FASTA_CHECK_SKIP;
    assert_int_equal(check(name, text, gz, &o, &res, &err), 0);
    assert_int_equal(res.n_skipped, 2);
    assert_int_equal(res.skipped[FASTA_PROBLEM_EMPTY], 2);
    assert_int_equal(res.skip_index[0], 1);
    assert_int_equal(res.skip_index[1], 3);
    assert_string_equal(res.skip_id[1], "d");
    fasta_check_result_free(&res);
  }
}

// ---- a 50,000-residue record ---------------------------------------------------------------------

// ">short\nMKV\n>giant\n" + 50,000 residues in lines of 60 (a 'J' at residue 30,000, beyond what
// ESM2 reads of it) + ">tail\nMM\n". Caller frees.
static char *giant_fasta(void) {
  size_t cap = 50000 + 50000 / 60 + 256, n = 0;
  char *t = malloc(cap);
  n += (size_t)sprintf(t, ">short\nMKV\n>giant\n");
  for (int i = 0; i < 50000; i++) {
    t[n++] = i + 1 == 30000 ? 'J' : "ACDEFGHIKLMNPQRSTVWY"[i % 20];
    if ((i + 1) % 60 == 0) t[n++] = '\n';
  }
  n += (size_t)sprintf(t + n, "\n>tail\nMM\n");
  assert_true(n < cap);
  return t;
}

static void test_long(void **state) {
  (void)state;
  char *text = giant_fasta();
  for (int gz = 0; gz < 2; gz++) {
    const char *name = gz ? "giant.fa.gz" : "giant.fa";
    fasta_check_opts_t o = opts(FASTA_CHECK_FAIL);
    fasta_check_result_t res;
    ps_err_t err = {0};
    // truncate (the default): kept and counted; the J past residue 1022 is never tokenized
    if (check(name, text, gz, &o, &res, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(res.records, 3);
    assert_int_equal(res.residues, 50005);
    assert_int_equal(res.truncated, 1);
    assert_int_equal(res.n_skipped, 0);
    fasta_check_result_free(&res);
    // a larger limit reads the J: letter problem on its line (line 3 + 30000/60 = 503, column 60)
    o.max_residues = 60000;
    assert_int_equal(check(name, text, gz, &o, &res, &err), PS_EFORMAT);
    want_msg(&err, "record 2 (id 'giant'), line 503, column 60: letter 'J' at residue 30000");
    fasta_check_result_free(&res);
    o.max_residues = 0;

    o.long_policy = FASTA_LONG_ERROR;
    assert_int_equal(check(name, text, gz, &o, &res, &err), PS_EDIM);
    want_msg(&err, "record 2 (id 'giant'), line 3: 50000 residues, more than max-residues 1022");
    assert_int_equal(res.fail_kind, FASTA_PROBLEM_LONG);
    assert_int_equal(res.fail_index, 1);
    fasta_check_result_free(&res);

    o.policy = FASTA_CHECK_SKIP;
    assert_int_equal(check(name, text, gz, &o, &res, &err), 0);
    assert_int_equal(res.n_skipped, 1);
    assert_int_equal(res.skipped[FASTA_PROBLEM_LONG], 1);
    assert_string_equal(res.skip_id[0], "giant");
    assert_int_equal(res.truncated, 0);
    fasta_check_result_free(&res);
  }
  free(text);
}

// ---- duplicate ids -----------------------------------------------------------------------------

static void test_duplicate(void **state) {
  (void)state;
  // a (1, 6), b (2, 4, 7: also empty); c, d unique
  const char *text = ">a\nMK\n>b\nMK\n>c\nMK\n>b x\nMK\n>d\nMK\n>a\nMK\n>b\n";
  for (int gz = 0; gz < 2; gz++) {
    const char *name = gz ? "dup.fa.gz" : "dup.fa";
    fasta_check_opts_t o = opts(FASTA_CHECK_FAIL);
    fasta_check_result_t res;
    ps_err_t err = {0};
    assert_int_equal(check(name, text, gz, &o, &res, &err), PS_EFORMAT);
    want_msg(&err, "record 4 (id 'b'), line 7: duplicate id, first in record 2 (line 3)");
    assert_int_equal(res.fail_kind, FASTA_PROBLEM_DUPLICATE);
    assert_int_equal(res.fail_index, 3);
    fasta_check_result_free(&res);

    o.policy = FASTA_CHECK_SKIP;
    assert_int_equal(check(name, text, gz, &o, &res, &err), 0);
    assert_int_equal(res.records, 7);
    assert_int_equal(res.n_skipped, 5);
    uint64_t want[5] = {0, 1, 3, 5, 6};
    for (int i = 0; i < 5; i++) assert_int_equal(res.skip_index[i], want[i]);
    assert_int_equal(res.skipped[FASTA_PROBLEM_DUPLICATE], 4);
    assert_int_equal(res.skipped[FASTA_PROBLEM_EMPTY], 1);  // record 7: its own problem first
    assert_int_equal(res.skip_kind[4], FASTA_PROBLEM_EMPTY);
    if (!strstr(res.skip_msg[0], "record 1 (id 'a'), line 1: duplicate id, again in record 6 (line 11)"))
      fail_msg("%s", res.skip_msg[0]);
    if (!strstr(res.skip_msg[3], "record 6 (id 'a'), line 11: duplicate id, first in record 1 (line 1)"))
      fail_msg("%s", res.skip_msg[3]);
    fasta_check_result_free(&res);
  }
}

// FAIL reports the problem met first in the file, whichever kind.
static void test_first_problem_wins(void **state) {
  (void)state;
  fasta_check_opts_t o = opts(FASTA_CHECK_FAIL);
  fasta_check_result_t res;
  ps_err_t err = {0};
  assert_int_equal(check("order1.fa", ">a\nMK\n>b\nMK\n>a\nMK\n>c\nMJ\n", 0, &o, &res, &err), PS_EFORMAT);
  assert_int_equal(res.fail_kind, FASTA_PROBLEM_DUPLICATE);
  assert_int_equal(res.fail_index, 2);
  fasta_check_result_free(&res);
  assert_int_equal(check("order2.fa", ">a\nMK\n>b\nMJ\n>a\nMK\n", 0, &o, &res, &err), PS_EFORMAT);
  assert_int_equal(res.fail_kind, FASTA_PROBLEM_LETTER);
  assert_int_equal(res.fail_index, 1);
  fasta_check_result_free(&res);
}

// ---- always fatal ------------------------------------------------------------------------------

static void want_fatal(const char *name, const char *text, int gz, int kind, const char *part) {
  for (int pol = 0; pol < 2; pol++) {
    fasta_check_opts_t o = opts(pol ? FASTA_CHECK_SKIP : FASTA_CHECK_FAIL);
    fasta_check_result_t res;
    ps_err_t err = {0};
    int rc = check(name, text, gz, &o, &res, &err);
    if (rc >= 0) fail_msg("%s: no error", name);
    assert_int_equal(err.code, rc);
    assert_int_equal(res.fail_kind, kind);
    want_msg(&err, name);
    want_msg(&err, part);
    fasta_check_result_free(&res);
  }
}

static void test_structural(void **state) {
  (void)state;
  for (int gz = 0; gz < 2; gz++) {
    want_fatal(gz ? "nohdr.fa.gz" : "nohdr.fa", "MKV\n>a\nMK\n", gz, FASTA_PROBLEM_NO_HEADER,
               "line 1: sequence data before the first '>' header");
    want_fatal(gz ? "noid.fa.gz" : "noid.fa", ">a\nMK\n>\nMK\n", gz, FASTA_PROBLEM_NO_ID,
               "line 3: header '>' without an id (record 2)");
    want_fatal(gz ? "digit.fa.gz" : "digit.fa", ">a\nMK\n>b\nMK1V\n", gz, FASTA_PROBLEM_FORMAT,
               "line 4, column 3: unexpected character '1' in sequence b");
  }
  fasta_check_opts_t o = opts(FASTA_CHECK_SKIP);
  fasta_check_result_t res;
  ps_err_t err = {0};
  char p[512];
  fx_path(p, sizeof p, "missing.fa");
  assert_true(fasta_check(p, &o, &res, &err) < 0);
  assert_int_equal(res.fail_kind, FASTA_PROBLEM_IO);
  assert_int_equal(res.fail_index, UINT64_MAX);
  want_msg(&err, "missing.fa");
  fasta_check_result_free(&res);
  assert_int_equal(fasta_check("-", &o, &res, &err), PS_ECONFIG);
  fasta_check_result_free(&res);
}

// A gzip FASTA of 20,000 records cut in the middle of its stream, and one with a wrong CRC.
static void test_gzip_broken(void **state) {
  (void)state;
  size_t cap = 20000 * 80, n = 0;
  char *text = malloc(cap);
  for (int i = 0; i < 20000; i++)
    n += (size_t)snprintf(text + n, cap - n, ">P%05d\nMKVLAAGIVGLLLAWQPSTRE%c%c\n", i, "ACDEFGHIK"[i % 9], "LMNPQ"[i % 5]);
  char p[512], cut[512];
  fx_path(p, sizeof p, "whole.fa.gz");
  fx_write_gz(p, text, n);
  size_t gzlen;
  char *gz = fx_read_file(p, &gzlen);
  assert_true(gzlen > 4096);
  fx_path(cut, sizeof cut, "cut.fa.gz");
  fx_write_file(cut, gz, gzlen / 2);
  for (int pol = 0; pol < 2; pol++) {
    fasta_check_opts_t o = opts(pol ? FASTA_CHECK_SKIP : FASTA_CHECK_FAIL);
    fasta_check_result_t res;
    ps_err_t err = {0};
    assert_int_equal(fasta_check(cut, &o, &res, &err), PS_ETRUNC);
    assert_int_equal(res.fail_kind, FASTA_PROBLEM_GZIP);
    want_msg(&err, cut);
    want_msg(&err, "(truncated gzip file); the last line read is ");
    want_msg(&err, ", after record ");
    assert_true(res.records > 1000 && res.records < 20000);
    assert_int_equal(res.fail_index, res.records);
    fasta_check_result_free(&res);
    assert_int_equal(fasta_check(p, &o, &res, &err), 0);  // the whole file is fine
    assert_int_equal(res.records, 20000);
    fasta_check_result_free(&res);
  }
  gz[gzlen - 8] ^= 0x5a;  // the CRC-32 of the trailer: zlib says so at the end
  fx_path(cut, sizeof cut, "corrupt.fa.gz");
  fx_write_file(cut, gz, gzlen);
  fasta_check_opts_t o = opts(FASTA_CHECK_SKIP);
  fasta_check_result_t res;
  ps_err_t err = {0};
  assert_true(fasta_check(cut, &o, &res, &err) < 0);
  assert_int_equal(res.fail_kind, FASTA_PROBLEM_GZIP);
  want_msg(&err, "(corrupt gzip data)");
  fasta_check_result_free(&res);
  free(gz);
  free(text);
}

// ---- the skip set downstream: the ESM2 runner ----------------------------------------------------

#define NSEQ 6

// Mean layer-2 embeddings (64) of every item of a runner over fasta, by id; returns items run.
static int run_means(const esm2_model_t *m, const char *fasta, const uint64_t *skip, size_t n_skip, char ids[][32],
                     uint64_t *fasta_index, float means[][64], uint64_t *tokens, uint64_t *skipped, ps_err_t *err) {
  static int layer2[1] = {2};
  esm2_run_opts_t o = {0};
  o.fasta_path = fasta;
  o.req = (esm2_request_t){layer2, 1, 0, 1, 0};
  o.tokens_per_batch = 150;
  o.sort_window = 3;
  o.skip_index = skip;
  o.n_skip_index = n_skip;
  esm2_runner_t *r = NULL;
  int rc = esm2_runner_new(&r, m, &o, err);
  if (rc < 0) return rc;
  esm2_item_t it;
  int n = 0;
  while ((rc = esm2_runner_next(r, &it, err)) > 0) {
    assert_true(n < NSEQ);
    snprintf(ids[n], 32, "%s", it.id);
    fasta_index[n] = it.fasta_index;
    memcpy(means[n], it.mean[0], 64 * sizeof(float));
    n++;
  }
  *tokens = esm2_runner_tokens(r);
  *skipped = esm2_runner_skipped(r);
  esm2_runner_destroy(&r);
  return rc < 0 ? rc : n;
}

static void test_runner_skips(void **state) {
  (void)state;
  if (!fx_find_shared("testvectors/esm2-tiny/sequences.fasta")) skip();
  char dir[PATH_MAX + 64], clean[PATH_MAX + 96], bad[512];
  snprintf(dir, sizeof dir, "%s/testvectors/esm2-tiny", fx_shared_dir);
  snprintf(clean, sizeof clean, "%s/sequences.fasta", dir);
  esm2_model_t *m = NULL;
  ps_err_t err = {0};
  if (esm2_load(&m, dir, &err) < 0) fail_msg("%s", err.msg);
  // the six sequences (one line each; clean record j is record 2j here), each followed by:
  // empty, lowercase, 'J', empty, empty, a good 'z'; last, a copy of the first id (so the first
  // sequence is skipped too, as a duplicate)
  size_t len;
  char *src = fx_read_file(clean, &len);
  char *out = malloc(len * 3 + 1024);
  size_t n = 0;
  int k = 0;
  char first_id[64] = "";
  size_t first_len = 0;
  for (char *line = strtok(src, "\n"); line; line = strtok(NULL, "\n")) {
    n += (size_t)sprintf(out + n, "%s\n", line);
    if (line[0] == '>' && !first_id[0]) snprintf(first_id, sizeof first_id, "%s", line + 1);
    if (line[0] != '>') {
      assert_true(k < NSEQ);
      if (!first_len) first_len = strlen(line);
      const char *bads[NSEQ] = {">e1\n", ">low\nMkV\n", ">jj\nMJV\n", ">x1\n", ">e2\n\n", ">z\nMM\n"};
      n += (size_t)sprintf(out + n, "%s", bads[k++]);
    }
  }
  n += (size_t)sprintf(out + n, ">%s\nMKV\n", first_id);  // duplicate of record 0
  fx_path(bad, sizeof bad, "esm2-bad.fasta");
  fx_write_file(bad, out, n);
  free(out);
  free(src);

  fasta_check_opts_t o = {.policy = FASTA_CHECK_SKIP, .letter_id = esm2_config(m)->letter_id};
  fasta_check_result_t res;
  if (fasta_check(bad, &o, &res, &err) < 0) fail_msg("%s", err.msg);
  assert_int_equal(res.records, 13);
  // skipped: record 0 and 12 (duplicate), 1, 7, 9 (empty), 3, 5 (letters); kept: 2, 4, 6, 8, 10, 11
  uint64_t want_skip[7] = {0, 1, 3, 5, 7, 9, 12};
  assert_int_equal(res.n_skipped, 7);
  for (int i = 0; i < 7; i++) assert_int_equal(res.skip_index[i], want_skip[i]);

  // without the skip set the runner stops at the first empty record
  char ids[NSEQ][32], cids[NSEQ][32];
  uint64_t fidx[NSEQ], cfidx[NSEQ], tok, ctok, skipped;
  float means[NSEQ][64], cmeans[NSEQ][64];
  assert_int_equal(run_means(m, bad, NULL, 0, ids, fidx, means, &tok, &skipped, &err), PS_EFORMAT);
  want_msg(&err, "is empty");
  int nc = run_means(m, clean, NULL, 0, cids, cfidx, cmeans, &ctok, &skipped, &err);
  assert_int_equal(nc, NSEQ);
  int nb = run_means(m, bad, res.skip_index, res.n_skipped, ids, fidx, means, &tok, &skipped, &err);
  if (nb < 0) fail_msg("%s", err.msg);
  assert_int_equal(nb, NSEQ);  // five of the clean six (the first is a duplicate now) and z
  assert_int_equal(skipped, 7);
  for (int i = 0; i < nb; i++) {
    int j = 0;
    while (j < nc && strcmp(cids[j], ids[i])) j++;
    if (!strcmp(ids[i], "z")) {
      assert_int_equal(fidx[i], 11);
      continue;
    }
    assert_true(j < nc);
    assert_int_equal(fidx[i], 2 * cfidx[j]);  // its real record number in the bad file
    for (int d = 0; d < 64; d++)
      if (fabsf(means[i][d] - cmeans[j][d]) > 1e-5f) fail_msg("%s dim %d: %g vs %g", ids[i], d, means[i][d], cmeans[j][d]);
  }
  assert_int_equal(tok, ctok - (first_len + 2) + 4);  // skipped records cost no tokens (z: 4)
  fasta_check_result_free(&res);
  esm2_destroy(&m);
}

// ---- the skip set downstream: the embedding dataset ----------------------------------------------

static void test_dataset_skips(void **state) {
  (void)state;
  // 8 records, rows in FASTA order (no ids file): row i = i; records 2 and 5 share an id, 6 is empty
  const char *text = ">p0\nMK\n>p1\nMK\n>dup\nMK\n>p3\nMK\n>p4\nMK\n>dup\nMK\n>p6\n>p7\nMK\n";
  char fa[512], npy[512];
  put(fa, "ds.fasta", text, 0);
  fx_path(npy, sizeof npy, "ds.npy");
  npy_writer_t *w = NULL;
  ps_err_t err = {0};
  assert_int_equal(npy_writer_open(&w, npy, NPY_F32, 4, &err), 0);
  for (int i = 0; i < 8; i++) {
    float row[4] = {(float)i, (float)i, (float)i, (float)i};
    assert_int_equal(npy_writer_append_f32(w, row, 1, &err), 0);
  }
  assert_int_equal(npy_writer_close(&w, &err), 0);
  reader_opts_t ro = {0};
  ro.src.path = npy;
  ro.src.level = EMB_LEVEL_PROTEIN;
  ro.src.layer = -1;
  ro.fasta_path = fa;
  ro.batch_rows = 3;
  ro.epochs = 1;
  reader_t *r = NULL;
  assert_true(reader_new(&r, &ro, &err) < 0);  // the duplicate id stops it
  want_msg(&err, "duplicate id 'dup'");

  fasta_check_opts_t o = {.policy = FASTA_CHECK_SKIP};
  fasta_check_result_t res;
  assert_int_equal(fasta_check(fa, &o, &res, &err), 0);
  assert_int_equal(res.n_skipped, 3);
  ro.skip_ids = (const char *const *)res.skip_id;
  ro.n_skip_ids = res.n_skipped;
  if (reader_new(&r, &ro, &err) < 0) fail_msg("%s", err.msg);
  fasta_check_result_free(&res);  // copied by reader_new
  reader_batch_t b;
  int rc, got = 0;
  const int want[5] = {0, 1, 3, 4, 7};
  while ((rc = reader_next_batch(r, &b, &err)) > 0)
    for (uint32_t i = 0; i < b.n_proteins; i++) {
      assert_true(got < 5);
      char id[8];
      snprintf(id, sizeof id, "p%d", want[got]);
      assert_string_equal(b.ids[i], id);
      assert_float_equal(b.rows[i * b.dim], (float)want[got], 0);  // rows stay aligned
      got++;
    }
  if (rc < 0) fail_msg("%s", err.msg);
  assert_int_equal(got, 5);
  assert_int_equal(reader_counts(r)->skipped_ids, 3);
  assert_int_equal(reader_counts(r)->records, 5);
  reader_destroy(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alphabet_is_esm2s), cmocka_unit_test(test_clean),
      cmocka_unit_test(test_letter),            cmocka_unit_test(test_empty),
      cmocka_unit_test(test_long),              cmocka_unit_test(test_duplicate),
      cmocka_unit_test(test_first_problem_wins), cmocka_unit_test(test_structural),
      cmocka_unit_test(test_gzip_broken),       cmocka_unit_test(test_runner_skips),
      cmocka_unit_test(test_dataset_skips),
  };
  return cmocka_run_group_tests(tests, setup, fx_teardown);
}
