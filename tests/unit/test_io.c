// common/io.c: the line reader over plain, gzip and memory input (CRLF, no trailing newline,
// empty lines, NUL bytes kept, lines across the 64 KiB buffer, a line over max_line, a truncated
// gzip stream and a missing file, each error naming the input and the line), the atomic file
// write (replaces, leaves no .tmp, fails cleanly in a missing directory), the directory fsyncs
// and the clocks (monotonic, wall clock near time()).
#include <errno.h>
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
#include <cmocka.h>

#include "fixture.h"
#include "io.h"

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

// Every line of r joined with '|' into out; returns the count, or the error code.
static int read_all(ps_lines_t *r, char *out, size_t cap, ps_err_t *err) {
  char *ln;
  size_t len, o = 0;
  int n = 0, rc;
  out[0] = 0;
  while ((rc = ps_lines_next(r, &ln, &len, err)) > 0) {
    assert_int_equal(strlen(ln), len);  // NUL-terminated, no NUL inside in these inputs
    assert_int_equal(ps_lines_lineno(r), (uint64_t)n + 1);
    o += (size_t)snprintf(out + o, cap - o, "%s%s", n ? "|" : "", ln);
    assert_true(o < cap);
    n++;
  }
  return rc < 0 ? rc : n;
}

static const char k_text[] = "first\r\n\nthird line\r\n\r\n  fifth  \nlast, no newline";
static const char k_want[] = "first||third line||  fifth  |last, no newline";

static void test_plain_gzip_memory(void **state) {
  (void)state;
  char p[PATH_MAX], g[PATH_MAX], out[256];
  fx_write_file(fx_path(p, sizeof p, "a.txt"), k_text, sizeof k_text - 1);
  fx_write_gz(fx_path(g, sizeof g, "a.txt.gz"), k_text, sizeof k_text - 1);
  ps_err_t err = {0};
  const char *paths[] = {p, g};
  for (int k = 0; k < 2; k++) {
    ps_lines_t *r = NULL;
    assert_int_equal(ps_lines_open(&r, paths[k], 0, &err), 0);
    assert_string_equal(ps_lines_name(r), paths[k]);
    assert_int_equal(read_all(r, out, sizeof out, &err), 6);
    assert_string_equal(out, k_want);
    char *ln;
    size_t len;
    assert_int_equal(ps_lines_next(r, &ln, &len, &err), 0);  // end stays end
    ps_lines_close(&r);
    assert_null(r);
  }
  ps_lines_t *m = ps_lines_open_mem(k_text, sizeof k_text - 1, "mem", 0);
  assert_string_equal(ps_lines_name(m), "mem");
  assert_int_equal(read_all(m, out, sizeof out, &err), 6);
  assert_string_equal(out, k_want);
  ps_lines_close(&m);
  ps_lines_close(&m);  // NULL is fine
  ps_lines_close(NULL);
  // empty input: no line at all; a lone newline: one empty line
  m = ps_lines_open_mem("", 0, NULL, 0);
  assert_string_equal(ps_lines_name(m), "buffer");
  assert_int_equal(read_all(m, out, sizeof out, &err), 0);
  ps_lines_close(&m);
  m = ps_lines_open_mem("\n", 1, "nl", 0);
  assert_int_equal(read_all(m, out, sizeof out, &err), 1);
  assert_string_equal(out, "");
  ps_lines_close(&m);
}

// NUL bytes are kept (the caller checks *len); a line longer than the 64 KiB input buffer.
static void test_nul_and_long_lines(void **state) {
  (void)state;
  ps_err_t err = {0};
  char *ln;
  size_t len;
  ps_lines_t *m = ps_lines_open_mem("a\0b\nc", 5, "nul", 0);
  assert_int_equal(ps_lines_next(m, &ln, &len, &err), 1);
  assert_int_equal(len, 3);
  assert_memory_equal(ln, "a\0b", 4);
  assert_int_equal(ps_lines_next(m, &ln, &len, &err), 1);
  assert_string_equal(ln, "c");
  ps_lines_close(&m);
  size_t L = 200000;
  char *big = malloc(L + 3);
  assert_non_null(big);
  for (size_t i = 0; i < L; i++) big[i] = (char)('a' + i % 26);
  memcpy(big + L, "\nz", 2);
  char p[PATH_MAX];
  fx_write_gz(fx_path(p, sizeof p, "big.gz"), big, L + 2);
  ps_lines_t *r = NULL;
  assert_int_equal(ps_lines_open(&r, p, 0, &err), 0);
  assert_int_equal(ps_lines_next(r, &ln, &len, &err), 1);
  assert_int_equal(len, L);
  assert_memory_equal(ln, big, L);
  assert_int_equal(ps_lines_next(r, &ln, &len, &err), 1);
  assert_string_equal(ln, "z");
  assert_int_equal(ps_lines_next(r, &ln, &len, &err), 0);
  ps_lines_close(&r);
  free(big);
}

static void test_max_line(void **state) {
  (void)state;
  ps_err_t err = {0};
  char *ln;
  size_t len;
  // exactly max_line bytes is accepted, one more is an error naming the input and the line
  ps_lines_t *m = ps_lines_open_mem("1234\n12345\nok\n", 14, "cap", 4);
  assert_int_equal(ps_lines_next(m, &ln, &len, &err), 1);
  assert_string_equal(ln, "1234");
  assert_int_equal(ps_lines_next(m, &ln, &len, &err), PS_EFORMAT);
  assert_msg_has(&err, "cap: line 2: longer than 4 bytes");
  // the reader stays failed
  assert_true(ps_lines_next(m, &ln, &len, &err) < 0);
  ps_lines_close(&m);
  // sizes that are whole KiB / MiB are named so
  char *big = malloc(2049);
  assert_non_null(big);
  memset(big, 'x', 2049);
  m = ps_lines_open_mem(big, 2049, "kib", 2048);
  assert_int_equal(ps_lines_next(m, &ln, &len, &err), PS_EFORMAT);
  assert_msg_has(&err, "kib: line 1: longer than 2 KiB");
  ps_lines_close(&m);
  free(big);
}

static void test_truncated_gzip_and_missing(void **state) {
  (void)state;
  // ~40 KiB of numbered lines, gzip, cut in the middle
  size_t cap = 1 << 16, n = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  for (int i = 0; n + 40 < cap - 64; i++) n += (size_t)snprintf(text + n, cap - n, "line %d %u\n", i, (unsigned)(i * 2654435761u));
  char p[PATH_MAX];
  fx_write_gz(fx_path(p, sizeof p, "cut.gz"), text, n);
  size_t gl;
  char *gz = fx_read_file(p, &gl);
  fx_write_file(p, gz, gl / 2);
  free(gz);
  free(text);
  ps_err_t err = {0};
  ps_lines_t *r = NULL;
  assert_int_equal(ps_lines_open(&r, p, 0, &err), 0);
  char out[1 << 17];
  int rc = read_all(r, out, sizeof out, &err);
  if (rc != PS_ETRUNC) fail_msg("truncated gzip: got %d: %s", rc, err.msg);
  char want[PATH_MAX + 64];
  snprintf(want, sizeof want, "%s: line %llu:", p, (unsigned long long)ps_lines_lineno(r) + 1);
  assert_msg_has(&err, want);
  assert_msg_has(&err, "truncated gzip file");
  ps_lines_close(&r);
  // a missing file names the path and the errno
  assert_int_equal(ps_lines_open(&r, "/nonexistent/x.txt", 0, &err), -ENOENT);
  assert_null(r);
  assert_msg_has(&err, "/nonexistent/x.txt: cannot open");
}

static void test_write_file_atomic(void **state) {
  (void)state;
  char p[PATH_MAX], tmp[PATH_MAX + 8];
  fx_path(p, sizeof p, "atomic.txt");
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  ps_err_t err = {0};
  assert_int_equal(ps_write_file_atomic(p, "old contents\n", 13, &err), 0);
  assert_int_equal(ps_write_file_atomic(p, "new\n", 4, &err), 0);  // replaces
  size_t len;
  char *b = fx_read_file(p, &len);
  assert_int_equal(len, 4);
  assert_string_equal(b, "new\n");
  free(b);
  assert_int_equal(access(tmp, F_OK), -1);  // no .tmp left behind
  assert_int_equal(ps_write_file_atomic(p, "", 0, &err), 0);  // empty is a file too
  b = fx_read_file(p, &len);
  assert_int_equal(len, 0);
  free(b);
  // in a missing directory: an error naming the temporary file, nothing written
  assert_true(ps_write_file_atomic("/nonexistent/dir/f.txt", "x", 1, &err) < 0);
  assert_msg_has(&err, "/nonexistent/dir/f.txt.tmp");
  // directory fsyncs
  assert_int_equal(ps_fsync_dir(fx_dir), 0);
  assert_int_equal(ps_fsync_parent(p), 0);
  assert_int_equal(ps_fsync_dir("/nonexistent/dir"), -ENOENT);
}

static void test_clocks(void **state) {
  (void)state;
  double m0 = ps_mono_s();
  int64_t ms0 = ps_mono_ms();
  struct timespec d = {0, 20 * 1000 * 1000};
  nanosleep(&d, NULL);
  double m1 = ps_mono_s();
  int64_t ms1 = ps_mono_ms();
  assert_true(m1 >= m0 + 0.019);
  assert_true(ms1 >= ms0 + 19);
  assert_true(ms1 - ms0 < 10000);
  double w = ps_wall_s();
  double t = (double)time(NULL);
  if (w < t - 2 || w > t + 2) fail_msg("wall clock %.3f vs time() %.0f", w, t);
  for (int i = 0; i < 1000; i++) {  // never goes back
    double a = ps_mono_s(), b = ps_mono_s();
    assert_true(b >= a);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_gzip_memory),
      cmocka_unit_test(test_nul_and_long_lines),
      cmocka_unit_test(test_max_line),
      cmocka_unit_test(test_truncated_gzip_and_missing),
      cmocka_unit_test(test_write_file_atomic),
      cmocka_unit_test(test_clocks),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
