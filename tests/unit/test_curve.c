// CURVE key files (common/curve.h): a key file is 40 Z85 characters with optional white space;
// a missing file, a wrong length and a character outside Z85 are errors that name the file (and
// the line, in an allowed-keys list); a public key that is not the secret's is refused; an
// allowed-keys directory takes its *.pub files.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

#include "fixture.h"

#include "curve.h"

// text written to name in the scratch directory; its path (one of 8 rotating buffers).
static const char *put(const char *name, const char *text) {
  static char path[8][512];
  static int k;
  char *p = path[k++ % 8];
  fx_write_text(fx_path(p, sizeof path[0], name), text);
  return p;
}

static void expect_error(int rc, const ps_err_t *err, const char *must_contain, const char *path) {
  if (rc >= 0 || !strstr(err->msg, must_contain) || (path && !strstr(err->msg, path)))
    fail_msg("rc=%d msg='%s': expected an error containing '%s' and '%s'", rc, err->msg, must_contain,
             path ? path : "");
}

static void test_key_read(void **state) {
  (void)state;
  char pub[41], sec[41], z[41];
  uint8_t bin[32], want[32];
  assert_int_equal(zmq_curve_keypair(pub, sec), 0);
  char text[128];
  snprintf(text, sizeof text, "  %s\n\n", pub);
  const char *ok = put("ok.pub", text);
  ps_err_t err = {0};
  assert_int_equal(curve_key_read(ok, z, bin, &err), 0);
  assert_string_equal(z, pub);
  zmq_z85_decode(want, pub);
  assert_memory_equal(bin, want, 32);

  char missing[512];
  fx_path(missing, sizeof missing, "none.key");
  expect_error(curve_key_read(missing, z, NULL, &err), &err, "No such file", missing);
  const char *shortk = put("short.key", "abc\n");
  expect_error(curve_key_read(shortk, z, NULL, &err), &err, "found 3 characters", shortk);
  const char *empty = put("empty.key", "");
  expect_error(curve_key_read(empty, z, NULL, &err), &err, "found 0 characters", empty);
  snprintf(text, sizeof text, "%s", pub);
  text[7] = '"';  // not in the Z85 alphabet
  const char *bad = put("bad.key", text);
  expect_error(curve_key_read(bad, z, NULL, &err), &err, "not a Z85 key", bad);
  expect_error(curve_key_read(bad, z, NULL, &err), &err, "character 8", bad);
  snprintf(text, sizeof text, "%s%s", pub, pub);
  const char *twice = put("twice.key", text);
  expect_error(curve_key_read(twice, z, NULL, &err), &err, "found 80 characters", twice);
}

static void test_allowed(void **state) {
  (void)state;
  char p1[41], s1[41], p2[41], s2[41];
  zmq_curve_keypair(p1, s1);
  zmq_curve_keypair(p2, s2);
  char text[256];
  snprintf(text, sizeof text, "# cluster\n%s\n\n  %s  \n", p1, p2);
  const char *list = put("allowed.txt", text);
  ps_err_t err = {0};
  uint8_t(*keys)[32] = NULL;
  size_t n = 0;
  assert_int_equal(curve_allowed_read(list, &keys, &n, &err), 0);
  assert_int_equal(n, 2);
  uint8_t b[32];
  zmq_z85_decode(b, p2);
  assert_memory_equal(keys[1], b, 32);
  free(keys);
  snprintf(text, sizeof text, "%s\nnot-a-key\n", p1);
  const char *badlist = put("badlist.txt", text);
  char where[600];
  snprintf(where, sizeof where, "%s:2", badlist);
  expect_error(curve_allowed_read(badlist, &keys, &n, &err), &err, "found 9 characters", where);
  assert_null(keys);
  const char *none = put("none.txt", "# nothing\n");
  expect_error(curve_allowed_read(none, &keys, &n, &err), &err, "no public key", none);
  // a directory: its *.pub files only
  char sub[512];
  fx_path(sub, sizeof sub, "allowed.d");
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(text, sizeof text, "%s\n", p1);
  put("allowed.d/a.pub", text);
  snprintf(text, sizeof text, "%s\n", p2);
  put("allowed.d/b.pub", text);
  put("allowed.d/README", "not a key\n");
  assert_int_equal(curve_allowed_read(sub, &keys, &n, &err), 0);
  assert_int_equal(n, 2);
  free(keys);
}

static void test_configure(void **state) {
  (void)state;
  char p1[41], s1[41], p2[41], s2[41];
  zmq_curve_keypair(p1, s1);
  zmq_curve_keypair(p2, s2);
  char text[64];
  snprintf(text, sizeof text, "%s\n", s1);
  const char *sec = put("c1.key", text);
  snprintf(text, sizeof text, "%s\n", p2);
  const char *other = put("c2.pub", text);
  ps_err_t err = {0};
  expect_error(curve_configure(NULL, other, NULL, NULL, &err), &err, "need curve-secret", NULL);
  expect_error(curve_configure(sec, other, NULL, NULL, &err), &err, "is not the public key", other);
  assert_int_equal(curve_enabled(), 0);
  assert_int_equal(curve_configure(NULL, NULL, NULL, NULL, &err), 0);
  assert_int_equal(curve_enabled(), 0);
  snprintf(text, sizeof text, "%s\n", p1);
  const char *own = put("c1.pub", text);
  assert_int_equal(curve_configure(sec, own, other, NULL, &err), 0);
  assert_int_equal(curve_enabled(), 1);
}

int main(void) {
  if (!zmq_has("curve")) {
    printf("libzmq without CURVE: skip\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_read),
      cmocka_unit_test(test_allowed),
      cmocka_unit_test(test_configure),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
