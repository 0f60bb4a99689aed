// proteins.tsv reader (common/proteins_tsv): columns, header / comment / blank lines, CRLF, missing
// columns, gzip, errors naming the file and line (empty accession, corrupt gzip, a callback's own
// error), and the real ../shared table.
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

#include "proteins_tsv.h"

typedef struct {
  int n;
  char acc[8][32], gene[8][32], name[8][64], pfam[8][32], len[8][16];
  uint64_t line[8];
  int stop_at;  // return an error at this row (0 = never)
} rows_t;

static int collect(void *ctx, const ps_protein_row_t *r, ps_err_t *err) {
  rows_t *t = ctx;
  if (t->stop_at && t->n + 1 == t->stop_at) return ps_err_set(err, PS_EFORMAT, "stop at %s", r->accession);
  if (t->n < 8) {
    snprintf(t->acc[t->n], 32, "%s", r->accession);
    snprintf(t->gene[t->n], 32, "%s", r->gene);
    snprintf(t->name[t->n], 64, "%s", r->name);
    snprintf(t->pfam[t->n], 32, "%s", r->pfam);
    snprintf(t->len[t->n], 16, "%s", r->length);
    t->line[t->n] = r->line;
  }
  t->n++;
  return 0;
}

// data written to a new file in the scratch directory (.gz compressed when gz); its path.
static char tmpl[PATH_MAX];
static const char *write_tmp(const char *data, size_t n, int gz) {
  static int k;
  char name[32];
  snprintf(name, sizeof name, "t%d.tsv%s", k++, gz ? ".gz" : "");
  fx_path(tmpl, sizeof tmpl, name);
  if (gz) fx_write_gz(tmpl, data, n);
  else fx_write_file(tmpl, data, n);
  return tmpl;
}

static const char table[] =
    "accession\tgene\tname\tpfam\tlength\n"
    "P12345\tABC1\tATP-binding cassette 1\tPF00005;PF00664\t1200\r\n"
    "# a comment\n"
    "\n"
    "Q99999\tXYZ\tUncharacterized protein\n"
    "O00001\t\t\t\t";

static void check_table(const rows_t *t) {
  assert_int_equal(t->n, 3);
  assert_string_equal(t->acc[0], "P12345");
  assert_string_equal(t->gene[0], "ABC1");
  assert_string_equal(t->name[0], "ATP-binding cassette 1");
  assert_string_equal(t->pfam[0], "PF00005;PF00664");
  assert_string_equal(t->len[0], "1200");  // no "\r"
  assert_int_equal(t->line[0], 2);
  assert_string_equal(t->acc[1], "Q99999");
  assert_string_equal(t->pfam[1], "");  // missing columns read as ""
  assert_string_equal(t->len[1], "");
  assert_int_equal(t->line[1], 5);
  assert_string_equal(t->acc[2], "O00001");  // last line without newline
  assert_int_equal(t->line[2], 6);
}

static void test_plain_and_gzip(void **st) {
  (void)st;
  for (int gz = 0; gz < 2; gz++) {
    const char *p = write_tmp(table, sizeof table - 1, gz);
    rows_t t = {0};
    ps_err_t err = {0};
    assert_int_equal(ps_proteins_tsv_each(p, collect, &t, &err), 0);
    check_table(&t);
    unlink(p);
  }
}

static void test_errors(void **st) {
  (void)st;
  ps_err_t err = {0};
  rows_t t = {0};
  // empty accession: the file and the line
  const char bad[] = "P1\tA\tB\tC\n\tgene\tname\tpf\n";
  const char *p = write_tmp(bad, sizeof bad - 1, 0);
  assert_int_equal(ps_proteins_tsv_each(p, collect, &t, &err), PS_EFORMAT);
  assert_non_null(strstr(err.msg, p));
  assert_non_null(strstr(err.msg, "line 2"));
  assert_int_equal(t.n, 1);
  unlink(p);
  // a callback's error stops the reading and comes back as it is
  rows_t s = {0};
  s.stop_at = 2;
  ps_err_clear(&err);
  p = write_tmp(table, sizeof table - 1, 0);
  assert_int_equal(ps_proteins_tsv_each(p, collect, &s, &err), PS_EFORMAT);
  assert_string_equal(err.msg, "stop at Q99999");
  assert_int_equal(s.n, 1);
  unlink(p);
  // a truncated gzip stream: an error, not a silent short table
  char big[8192];
  size_t n = 0;
  for (int i = 0; n + 64 < sizeof big; i++) n += (size_t)snprintf(big + n, sizeof big - n, "P%05d\tG%d\tprotein %d\tPF%05d\n", i, i, i, i);
  p = write_tmp(big, n, 1);
  FILE *f = fopen(p, "rb");
  char gzb[16384];
  size_t gn = fread(gzb, 1, sizeof gzb, f);
  fclose(f);
  f = fopen(p, "wb");
  fwrite(gzb, 1, gn / 2, f);
  fclose(f);
  rows_t u = {0};
  ps_err_clear(&err);
  assert_true(ps_proteins_tsv_each(p, collect, &u, &err) < 0);
  assert_non_null(strstr(err.msg, p));
  unlink(p);
  // a missing file
  ps_err_clear(&err);
  assert_true(ps_proteins_tsv_each("/nonexistent/proteins.tsv", collect, &u, &err) < 0);
  assert_non_null(strstr(err.msg, "/nonexistent/proteins.tsv"));
}

// The real table: every row has an accession; the count matches the data README's 17,459 proteins.
static void test_shared_table(void **st) {
  (void)st;
  const char *shared = getenv("PROTSAE_SHARED");
  char path[4096];
  snprintf(path, sizeof path, "%s/data/human-swissprot/proteins.tsv.gz", shared ? shared : "../shared");
  if (access(path, R_OK) != 0) skip();
  rows_t t = {0};
  ps_err_t err = {0};
  assert_int_equal(ps_proteins_tsv_each(path, collect, &t, &err), 0);
  assert_int_equal(t.n, 17459);
  assert_true(t.acc[0][0] != 0 && t.gene[0][0] != 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_and_gzip),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_shared_table),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
