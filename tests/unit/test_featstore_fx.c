// Feature statistics in fixed point (featstore.h fs_fx / fs_feat_add): ordinary values sum
// exactly; values near and above the 128-bit range saturate (the mean stays huge, the std
// finite) instead of wrapping to a small number or 0.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "featstore.h"

static void test_ordinary_exact(void **st) {
  (void)st;
  fs_feat_t f;
  fs_feat_init(&f, 0);
  fs_feat_add(&f, 1.5f);
  fs_feat_add(&f, 2.5f);
  assert_true(f.sum_fx == (fs_u128)4 << 32);
  if (fs_feat_mean(&f) != 2.0) fail_msg("mean %.17g, want 2", fs_feat_mean(&f));
  fs_feat_clear(&f);
}

// Two codes of 1e30 (each past the range): the sum wrapped to 0 before, so the mean read 0.
static void test_saturates_not_wraps(void **st) {
  (void)st;
  const double cap = (double)FS_FX_MAX / 4294967296.0;  // about 7.9e28
  fs_feat_t f;
  fs_feat_init(&f, 0);
  fs_feat_add(&f, 1e30f);
  fs_feat_add(&f, 1e30f);
  assert_true(f.sum_fx == FS_FX_MAX && f.sumsq_fx == FS_FX_MAX);
  double m = fs_feat_mean(&f);
  if (!(m >= cap / 2 * 0.999)) fail_msg("mean %g after two 1e30 values, want >= %g (saturated)", m, cap / 2);
  assert_true(isfinite(fs_feat_std(&f)));
  fs_feat_clear(&f);
  // 2^95 is inside the range (2^127 in fixed point); the second one reaches 2^128: from there
  // the sum stays at the cap, never back down
  fs_feat_init(&f, 0);
  double prev = 0;
  for (int i = 0; i < 8; i++) {
    fs_feat_add(&f, 0x1p95f);
    double s = (double)f.sum_fx;
    if (s < prev) fail_msg("sum went down at value %d: %g after %g", i, s, prev);
    prev = s;
  }
  assert_true(f.sum_fx == FS_FX_MAX);
  m = fs_feat_mean(&f);
  if (!(m >= cap / 8 * 0.999 && m <= cap / 8 * 1.001)) fail_msg("mean %g, want %g (cap / 8)", m, cap / 8);
  // a small value after the cap keeps the cap; a value past the range saturates alone
  fs_feat_add(&f, 1.0f);
  assert_true(f.sum_fx == FS_FX_MAX);
  assert_true(fs_fx(1e300) == FS_FX_MAX && fs_fx(NAN) == FS_FX_MAX);
  assert_true(fs_fx_add(FS_FX_MAX - 1, 1) == FS_FX_MAX && fs_fx_add(FS_FX_MAX, FS_FX_MAX) == FS_FX_MAX);
  fs_feat_clear(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ordinary_exact),
      cmocka_unit_test(test_saturates_not_wraps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
