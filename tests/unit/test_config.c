// config (defaults < flags < PROTSAE_* env), strmap, reader split assignment and state file.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "fixture.h"
#include "reader.h"
#include "strmap.h"

static const ps_config_entry_t table[] = {
    {"batch-rows", "1024", "rows"},
    {"lr", "1e-4", "learning rate"},
    {"verbose", "0", "flag"},
    {"name", NULL, "unset by default"},
    {NULL, NULL, NULL},
};

static void test_precedence(void **state) {
  (void)state;
  unsetenv("PROTSAE_BATCH_ROWS");
  unsetenv("PROTSAE_LR");
  char *argv[] = {"prog", "--batch-rows", "64", "pos1", "--verbose", "--lr=0.5", "pos2", NULL};
  ps_config_t *c = NULL;
  ps_err_t err = {0};
  assert_int_equal(ps_config_parse(&c, table, 7, argv, &err), 0);
  int64_t br;
  double lr;
  int v;
  assert_int_equal(ps_config_i64(c, "batch-rows", &br, &err), 0);
  assert_int_equal(br, 64);
  assert_int_equal(ps_config_f64(c, "lr", &lr, &err), 0);
  assert_true(lr == 0.5);
  assert_int_equal(ps_config_bool(c, "verbose", &v, &err), 0);
  assert_int_equal(v, 1);
  assert_null(ps_config_str(c, "name"));
  assert_int_equal(ps_config_n_positional(c), 2);
  assert_string_equal(ps_config_positional(c, 1), "pos2");
  ps_config_destroy(&c);
  assert_null(c);
  // environment wins over flags
  setenv("PROTSAE_BATCH_ROWS", "7", 1);
  assert_int_equal(ps_config_parse(&c, table, 7, argv, &err), 0);
  assert_int_equal(ps_config_i64(c, "batch-rows", &br, &err), 0);
  assert_int_equal(br, 7);
  ps_config_destroy(&c);
  unsetenv("PROTSAE_BATCH_ROWS");
  // defaults
  char *argv2[] = {"prog", "--no-verbose", NULL};
  assert_int_equal(ps_config_parse(&c, table, 2, argv2, &err), 0);
  assert_int_equal(ps_config_i64(c, "batch-rows", &br, &err), 0);
  assert_int_equal(br, 1024);
  assert_int_equal(ps_config_bool(c, "verbose", &v, &err), 0);
  assert_int_equal(v, 0);
  ps_config_destroy(&c);
}

static void test_errors(void **state) {
  (void)state;
  ps_config_t *c = NULL;
  ps_err_t err = {0};
  char *argv[] = {"prog", "--bogus", "1", NULL};
  assert_int_equal(ps_config_parse(&c, table, 3, argv, &err), PS_ECONFIG);
  assert_non_null(strstr(err.msg, "--bogus"));
  assert_null(c);
  char *argv2[] = {"prog", "--batch-rows", "12x", NULL};
  assert_int_equal(ps_config_parse(&c, table, 3, argv2, &err), 0);
  int64_t br;
  assert_int_equal(ps_config_i64(c, "batch-rows", &br, &err), PS_ECONFIG);
  assert_non_null(strstr(err.msg, "12x"));
  assert_non_null(strstr(err.msg, "batch-rows"));
  ps_config_destroy(&c);
}

// ps_config_read: one table of typed destinations instead of a chain of getters.
static void test_read_binds(void **state) {
  (void)state;
  unsetenv("PROTSAE_BATCH_ROWS");
  unsetenv("PROTSAE_LR");
  ps_config_t *c = NULL;
  ps_err_t err = {0};
  char *argv[] = {"prog", "--batch-rows", "64", "--verbose", "--lr=0.5", NULL};
  assert_int_equal(ps_config_parse(&c, table, 5, argv, &err), 0);
  int64_t br = 0;
  int bri = 0, v = 0;
  double lr = 0;
  const char *name = "x";
  ps_config_bind_t b[] = {PS_CFG_I64("batch-rows", &br), PS_CFG_INT("batch-rows", &bri), PS_CFG_F64("lr", &lr),
                          PS_CFG_BOOL("verbose", &v), PS_CFG_STR("name", &name), {0}};
  assert_int_equal(ps_config_read(c, b, &err), 0);
  assert_int_equal(br, 64);
  assert_int_equal(bri, 64);
  assert_true(lr == 0.5);
  assert_int_equal(v, 1);
  assert_null(name);
  ps_config_destroy(&c);
  // a bad value stops the read with the option named; an int out of range too
  char *argv2[] = {"prog", "--lr", "fast", NULL};
  assert_int_equal(ps_config_parse(&c, table, 3, argv2, &err), 0);
  assert_int_equal(ps_config_read(c, b, &err), PS_ECONFIG);
  assert_non_null(strstr(err.msg, "--lr"));
  assert_non_null(strstr(err.msg, "fast"));
  ps_config_destroy(&c);
  char *argv3[] = {"prog", "--batch-rows", "99999999999", NULL};
  assert_int_equal(ps_config_parse(&c, table, 3, argv3, &err), 0);
  ps_config_bind_t b2[] = {PS_CFG_INT("batch-rows", &bri), {0}};
  assert_int_equal(ps_config_read(c, b2, &err), PS_ECONFIG);
  assert_non_null(strstr(err.msg, "out of range"));
  ps_config_destroy(&c);
}

static void test_strmap(void **state) {
  (void)state;
  strmap_t *m = strmap_new(4);
  char k[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(k, sizeof k, "P%05d", i);
    assert_int_equal(strmap_put(m, k, (uint64_t)i * 3), 1);
  }
  assert_int_equal(strmap_put(m, "P00042", 1), 0);
  assert_int_equal(strmap_size(m), 10000);
  uint64_t v;
  assert_int_equal(strmap_get(m, "P00042", &v), 1);
  assert_int_equal(v, 1);
  assert_int_equal(strmap_get(m, "P09999", &v), 1);
  assert_int_equal(v, 29997);
  assert_int_equal(strmap_get(m, "Q00001", &v), 0);
  strmap_destroy(&m);
  assert_null(m);
}

static void test_split(void **state) {
  (void)state;
  char id[32];
  int n = 20000, val = 0, same = 0;
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "Q%06d", i);
    int a = reader_is_validation(id, 1, 0.1);
    val += a;
    same += a == reader_is_validation(id, 1, 0.1);
  }
  assert_int_equal(same, n);  // deterministic
  assert_in_range(val, n / 10 - 400, n / 10 + 400);
  int diff = 0;
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "Q%06d", i);
    diff += reader_is_validation(id, 1, 0.1) != reader_is_validation(id, 2, 0.1);
  }
  assert_true(diff > n / 20);  // another seed, another split
  assert_int_equal(reader_is_validation("X", 1, 0.0), 0);
  assert_int_equal(reader_is_validation("X", 1, 1.0), 1);
}

static void test_state_file(void **state) {
  (void)state;
  char p[PATH_MAX];
  fx_path(p, sizeof p, "state");
  ps_err_t err = {0};
  reader_pos_t a = {2, 12345, 99}, b = {0, 0, 0};
  assert_int_equal(reader_pos_load(p, &b, &err), 0);  // no file yet
  assert_int_equal(reader_pos_save(p, &a, &err), 0);
  assert_int_equal(reader_pos_load(p, &b, &err), 1);
  assert_int_equal(b.epoch, 2);
  assert_int_equal(b.record, 12345);
  assert_int_equal(b.seq, 99);
  fx_write_text(p, "garbage\n");
  assert_true(reader_pos_load(p, &b, &err) < 0);
  assert_non_null(strstr(err.msg, p));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_precedence), cmocka_unit_test(test_errors), cmocka_unit_test(test_read_binds), cmocka_unit_test(test_strmap),
      cmocka_unit_test(test_split),      cmocka_unit_test(test_state_file),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
