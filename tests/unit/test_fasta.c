// FASTA reader: the real human Swiss-Prot file (gzip) parsed in full and checked against counts
// made independently by zcat/grep/tr; the ESM2 test-vector sequences; plain == gzip; and broken
// inputs (truncated or corrupt gzip, header-less text, binary junk, empty ids) giving errors
// that name the file and the line.
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

#include "fixture.h"

#include "fasta.h"

// ---- helpers -----------------------------------------------------------------------------

// Parse a whole file; returns the record count or the error code.
static long long parse_all(const char *path, ps_err_t *err, size_t *residues) {
  fasta_reader_t *r = NULL;
  int rc = fasta_open(&r, path, err);
  if (rc < 0) return rc;
  fasta_record_t rec;
  long long n = 0;
  size_t tot = 0;
  while ((rc = fasta_next(r, &rec, err)) > 0) {
    n++;
    tot += rec.len;
  }
  fasta_close(&r);
  assert_null(r);
  if (residues) *residues = tot;
  return rc < 0 ? rc : n;
}

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

// ---- real data ---------------------------------------------------------------------------
static void test_swissprot(void **state) {
  (void)state;
  char path[PATH_MAX + 64], cmd[2 * PATH_MAX];
  snprintf(path, sizeof path, "%s/data/human-swissprot/proteins.fasta.gz", fx_shared_dir);
  // independent counts
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '^>'", path);
  long long want_n = fx_sh_count(cmd);
  snprintf(cmd, sizeof cmd, "zcat '%s' | grep -v '^>' | tr -d ' \\t\\r\\n' | wc -c", path);
  long long want_res = fx_sh_count(cmd);
  assert_int_equal(want_n, 17459);

  ps_err_t err = {0};
  fasta_reader_t *r = NULL;
  assert_int_equal(fasta_open(&r, path, &err), 0);
  fasta_record_t rec;
  long long n = 0, res = 0, max_len = 0;
  uint64_t last_line = 0;
  int rc;
  while ((rc = fasta_next(r, &rec, &err)) > 0) {
    if (n == 0) {
      assert_string_equal(rec.id, "A0A183");
      assert_string_equal(rec.desc, "LCE6A late cornified envelope 6A");
      assert_int_equal(rec.len, 80);
      assert_int_equal(rec.line, 1);
      assert_string_equal(rec.seq, "MSQQKQQSWKPPNVPKCSPPQRSNPCLAPYSTPCGAPHSEGCHSSSQRPEVQKPRRARQK"
                                   "LRCLSRGTTYHCKEEECEGD");
    }
    if (n == 1) {
      assert_string_equal(rec.id, "A0AUZ9");
      assert_string_equal(rec.desc, "KANSL1L KAT8 regulatory NSL complex subunit 1 like");
    }
    assert_int_equal(rec.index, (uint64_t)n);
    assert_true(rec.line > last_line);
    last_line = rec.line;
    assert_true(rec.len > 0);
    assert_int_equal(strlen(rec.seq), rec.len);
    assert_true(strchr(rec.id, ' ') == NULL);
    res += (long long)rec.len;
    if ((long long)rec.len > max_len) max_len = (long long)rec.len;
    n++;
  }
  if (rc < 0) fail_msg("%s", err.msg);
  assert_int_equal(rc, 0);
  assert_int_equal(fasta_next(r, &rec, &err), 0);  // stays at the end
  fasta_close(&r);
  fasta_close(&r);  // NULL is fine
  assert_int_equal(n, want_n);
  if (res != want_res) fail_msg("residues: parsed %lld, zcat|grep|tr counts %lld", res, want_res);
  snprintf(cmd, sizeof cmd, "zcat '%s' | awk '/^>/{if(l>m)m=l;l=0;next}{l+=length($0)}END{if(l>m)m=l;print m}'", path);
  assert_int_equal(max_len, fx_sh_count(cmd));
}

static void test_testvectors(void **state) {
  (void)state;
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/testvectors/esm2-tiny/sequences.fasta", fx_shared_dir);
  static const char *ids[] = {"P62328", "P30047", "Q8NFA2", "Q9H9T3", "edge_single", "edge_rare"};
  ps_err_t err = {0};
  fasta_reader_t *r = NULL;
  assert_int_equal(fasta_open(&r, path, &err), 0);
  fasta_record_t rec;
  int n = 0, rc;
  while ((rc = fasta_next(r, &rec, &err)) > 0) {
    assert_true(n < 6);
    assert_string_equal(rec.id, ids[n]);
    assert_string_equal(rec.desc, "");
    if (n == 0) {
      assert_int_equal(rec.len, 44);
      assert_string_equal(rec.seq, "MSDKPDMAEIEKFDKSKLKKTETQEKNPLPSKETIEQEKQAGES");
    }
    if (n == 4) {
      assert_int_equal(rec.len, 1);
      assert_string_equal(rec.seq, "M");
    }
    if (n == 5) assert_string_equal(rec.seq, "MXBZUOACDEFGHIKLMNPQRSTVWY");
    n++;
  }
  if (rc < 0) fail_msg("%s", err.msg);
  assert_int_equal(n, 6);
  fasta_close(&r);
}

// ---- syntax ------------------------------------------------------------------------------
static const char k_tricky[] =
    "\n"
    "; an old-style comment\n"
    "   \n"
    ">sp|P1|X  first   protein \t \r\n"
    "MKV\r\n"
    "  acd ef\tG\r\n"
    "\r\n"
    "*-.\r\n"
    ">P2\n"
    ">P3 empty one above\n"
    "WW\n"
    "YY";  // no final newline

static void check_tricky(const char *path) {
  ps_err_t err = {0};
  fasta_reader_t *r = NULL;
  assert_int_equal(fasta_open(&r, path, &err), 0);
  fasta_record_t rec;
  assert_int_equal(fasta_next(r, &rec, &err), 1);
  assert_string_equal(rec.id, "sp|P1|X");
  assert_string_equal(rec.desc, "first   protein");
  assert_string_equal(rec.seq, "MKVacdefG*-.");
  assert_int_equal(rec.len, 12);
  assert_int_equal(rec.line, 4);
  assert_int_equal(fasta_next(r, &rec, &err), 1);
  assert_string_equal(rec.id, "P2");
  assert_string_equal(rec.desc, "");
  assert_int_equal(rec.len, 0);
  assert_string_equal(rec.seq, "");
  assert_int_equal(rec.line, 9);
  assert_int_equal(fasta_next(r, &rec, &err), 1);
  assert_string_equal(rec.id, "P3");
  assert_string_equal(rec.desc, "empty one above");
  assert_string_equal(rec.seq, "WWYY");
  assert_int_equal(rec.index, 2);
  assert_int_equal(rec.line, 10);
  assert_int_equal(fasta_next(r, &rec, &err), 0);
  fasta_close(&r);
}

static void test_plain_and_gzip_agree(void **state) {
  (void)state;
  char p[PATH_MAX], g[PATH_MAX];
  fx_path(p, sizeof p, "tricky.fa");
  fx_path(g, sizeof g, "tricky.fa.gz");
  fx_write_file(p, k_tricky, sizeof k_tricky - 1);
  fx_write_gz(g, k_tricky, sizeof k_tricky - 1);
  check_tricky(p);
  check_tricky(g);
  // a gzip file made of two members (as `cat a.gz b.gz` makes) reads as one text
  char two[PATH_MAX];
  fx_path(two, sizeof two, "two.fa.gz");
  fx_write_gz(two, ">A\nMK\n", 6);
  gzFile z = gzopen(two, "ab");
  assert_non_null(z);
  gzputs(z, ">B\nLL\n");
  gzclose(z);
  ps_err_t err = {0};
  size_t res = 0;
  assert_int_equal(parse_all(two, &err, &res), 2);
  assert_int_equal(res, 4);
  // empty file: no records, no error
  fx_path(p, sizeof p, "empty.fa");
  fx_write_file(p, "", 0);
  assert_int_equal(parse_all(p, &err, NULL), 0);
  fx_path(p, sizeof p, "blank.fa");
  fx_write_file(p, "\n\n  \n", 5);
  assert_int_equal(parse_all(p, &err, NULL), 0);
}

static int count_cb(const fasta_record_t *rec, void *ud) {
  int *n = ud;
  (*n)++;
  return rec->index == 1;  // stop after the second record
}

static void test_parse_buffer(void **state) {
  (void)state;
  ps_err_t err = {0};
  assert_int_equal(fasta_parse_buffer(k_tricky, sizeof k_tricky - 1, NULL, NULL, &err), 3);
  int n = 0;
  assert_int_equal(fasta_parse_buffer(k_tricky, sizeof k_tricky - 1, count_cb, &n, &err), 2);
  assert_int_equal(n, 2);
  assert_int_equal(fasta_parse_buffer("", 0, NULL, NULL, &err), 0);
  assert_int_equal(fasta_parse_buffer(">x", 2, NULL, NULL, &err), 1);
  int rc = fasta_parse_buffer("MKV\n>a\nMK\n", 10, NULL, NULL, &err);
  assert_int_equal(rc, PS_EFORMAT);
  assert_msg_has(&err, "buffer: line 1");
  // a record longer than the internal 64 KiB buffer, one line
  size_t L = 200000;
  char *big = malloc(L + 16);
  assert_non_null(big);
  memcpy(big, ">big\n", 5);
  for (size_t i = 0; i < L; i++) big[5 + i] = "ACDEFGHIKLMNPQRSTVWY"[i % 20];
  big[5 + L] = '\n';
  assert_int_equal(fasta_parse_buffer(big, L + 6, NULL, NULL, &err), 1);
  free(big);
}

// ---- broken inputs -----------------------------------------------------------------------
static void expect_error(const char *content, size_t n, int code, const char *where) {
  char p[PATH_MAX];
  fx_path(p, sizeof p, "bad.fa");
  fx_write_file(p, content, n);
  ps_err_t err = {0};
  long long rc = parse_all(p, &err, NULL);
  if (rc != code) fail_msg("expected %d (%s), got %lld: %s", code, ps_strerror(code), rc, err.msg);
  assert_msg_has(&err, p);
  assert_msg_has(&err, where);
}

static int check_odd(const fasta_record_t *rec, void *ud) {
  (void)ud;
  assert_string_equal(rec->id, "P");
  assert_string_equal(rec->desc, "1 desc\001more");
  assert_string_equal(rec->seq, "MK");
  return 0;
}

#define EXPECT_ERROR(lit, code, where) expect_error(lit, sizeof(lit) - 1, code, where)

static void test_broken_text(void **state) {
  (void)state;
  EXPECT_ERROR("MKVLA\n>P1\nMK\n", PS_EFORMAT, "line 1: sequence data before the first '>' header");
  EXPECT_ERROR("\n\nhello world\n", PS_EFORMAT, "line 3");
  EXPECT_ERROR(">P1\nMK\n>\nMK\n", PS_EFORMAT, "line 3: header '>' without an id");
  EXPECT_ERROR(">P1\nMK\n>  \t \nMK\n", PS_EFORMAT, "line 3");
  EXPECT_ERROR(">P1\nMK\nMK1V\n", PS_EFORMAT, "line 3, column 3: unexpected character '1' in sequence P1");
  EXPECT_ERROR(">P1\nMK\n\x80\xff\n", PS_EFORMAT, "line 3, column 1: unexpected byte 0x80");
  EXPECT_ERROR(">P1\nM\0K\n", PS_EFORMAT, "line 2, column 2: NUL byte");
  EXPECT_ERROR(">P\0\nMK\n", PS_EFORMAT, "line 1, column 3: NUL byte");
  EXPECT_ERROR(">P1\nMK\n> P\001X desc\nMK\n", PS_EFORMAT, "line 3, column 4: control byte 0x01 in the id");
  // a stray CR ends the id like any blank; control bytes in the description are kept
  const char odd[] = ">P\r1 desc\001more \r\nM\rK\n";
  ps_err_t err = {0};
  assert_int_equal(fasta_parse_buffer(odd, sizeof odd - 1, check_odd, NULL, &err), 1);
}

static void test_binary_junk(void **state) {
  (void)state;
  unsigned char junk[4096];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof junk; i++) {
    x = x * 1103515245u + 12345u;
    junk[i] = (unsigned char)(x >> 16);
  }
  junk[0] = '>';  // even starting like a header, the NUL bytes give it away
  char p[PATH_MAX];
  fx_path(p, sizeof p, "junk.bin");
  fx_write_file(p, junk, sizeof junk);
  ps_err_t err = {0};
  long long rc = parse_all(p, &err, NULL);
  if (rc != PS_EFORMAT) fail_msg("got %lld: %s", rc, err.msg);
  assert_msg_has(&err, p);
  assert_msg_has(&err, "line ");
  // the error is sticky
  fasta_reader_t *r = NULL;
  assert_int_equal(fasta_open(&r, p, &err), 0);
  fasta_record_t rec;
  int first = fasta_next(r, &rec, &err);
  assert_true(first < 0);
  assert_int_equal(fasta_next(r, &rec, &err), first);
  fasta_close(&r);
  // missing file
  rc = parse_all("/nonexistent/x.fasta", &err, NULL);
  assert_int_equal(rc, -ENOENT);
  assert_msg_has(&err, "/nonexistent/x.fasta");
}

static void test_truncated_and_corrupt_gzip(void **state) {
  (void)state;
  char src[PATH_MAX + 64];
  snprintf(src, sizeof src, "%s/data/human-swissprot/proteins.fasta.gz", fx_shared_dir);
  FILE *f = fopen(src, "rb");
  assert_non_null(f);
  size_t n = 300000;
  unsigned char *buf = malloc(n);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, n, f), n);
  fclose(f);
  char p[PATH_MAX];
  fx_path(p, sizeof p, "trunc.fa.gz");
  fx_write_file(p, buf, n);
  ps_err_t err = {0};
  long long rc = parse_all(p, &err, NULL);
  if (rc != PS_ETRUNC) fail_msg("truncated gzip: got %lld: %s", rc, err.msg);
  assert_msg_has(&err, p);
  assert_msg_has(&err, "line ");
  // corrupt the deflate stream in the middle
  for (size_t i = 100000; i < 100064; i++) buf[i] ^= 0x5a;
  fx_path(p, sizeof p, "corrupt.fa.gz");
  fx_write_file(p, buf, n);
  rc = parse_all(p, &err, NULL);
  if (rc != PS_EFORMAT && rc != PS_ETRUNC) fail_msg("corrupt gzip: got %lld: %s", rc, err.msg);
  assert_msg_has(&err, p);
  // a gzip header alone
  fx_path(p, sizeof p, "hdr.fa.gz");
  fx_write_file(p, buf, 12);
  rc = parse_all(p, &err, NULL);
  if (rc >= 0) fail_msg("gzip header only: got %lld records", rc);
  assert_msg_has(&err, p);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_and_gzip_agree), cmocka_unit_test(test_parse_buffer),
      cmocka_unit_test(test_broken_text),          cmocka_unit_test(test_binary_junk),
  };
  const struct CMUnitTest data_tests[] = {
      cmocka_unit_test(test_swissprot),
      cmocka_unit_test(test_testvectors),
      cmocka_unit_test(test_truncated_and_corrupt_gzip),
  };
  int rc = cmocka_run_group_tests_name("fasta", tests, fx_setup, fx_teardown);
  if (!fx_find_shared("data/human-swissprot/proteins.fasta.gz")) {
    printf("no shared data (set PROTSAE_SHARED): skipping the real-data tests\n");
    return rc;
  }
  return rc + cmocka_run_group_tests_name("fasta_data", data_tests, fx_setup, fx_teardown);
}
