// CAFA protein-centric Fmax (cli/annot.c) on hand-computed cases.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "annot.h"

// Protein A: true {t1, t2}; predicted t1 0.9 (true), t3 0.5 (false).
// Protein B: true {t4};     predicted t4 0.3 (true).
// tau <= 0.30: A P 1/2 R 1/2, B P 1 R 1 -> pr 0.75, rc 0.75, F 0.75
// 0.30 < tau <= 0.50: A P 1/2 R 1/2, B nothing -> pr 0.5 (A only), rc 0.25, F 1/3
// 0.50 < tau <= 0.90: A P 1 R 1/2 -> pr 1, rc 0.25, F 0.4
// tau > 0.90: nothing predicted -> undefined, skipped.
// Fmax = 0.75; ties resolve to the highest tau: 0.30.
static void test_hand_case(void **state) {
  (void)state;
  annot_fmax_t f;
  annot_fmax_init(&f);
  const float sa[] = {0.9f, 0.5f};
  const uint8_t ca[] = {1, 0};
  const float sb[] = {0.3f};
  const uint8_t cb[] = {1};
  annot_fmax_add(&f, sa, ca, 2, 2);
  annot_fmax_add(&f, sb, cb, 1, 1);
  annot_fmax_result_t r;
  annot_fmax_result(&f, &r);
  assert_int_equal(r.n_proteins, 2);
  assert_float_equal(r.fmax, 0.75, 1e-12);
  assert_float_equal(r.tau, 0.30, 1e-12);
  assert_float_equal(r.precision, 0.75, 1e-12);
  assert_float_equal(r.recall, 0.75, 1e-12);
  // the per-threshold sums behind it
  assert_int_equal(f.n_prec[40], 1);                 // only A predicts at 0.40
  assert_float_equal(f.rec_sum[40], 0.5, 1e-12);
  assert_int_equal(f.n_prec[91], 0);                 // nobody at 0.91
}

// A protein without true terms is not evaluated; one with truth but no prediction lowers recall
// only. C: true {t5}, nothing predicted. With A alone: F(tau<=0.5) = 0.5, F(0.5<tau<=0.9) =
// 2 * 1 * 0.5 / 1.5 = 2/3 -> Fmax 2/3 at 0.90. Adding C halves recall: 2 * 1 * 0.25 / 1.25 = 0.4.
static void test_unannotated_and_empty(void **state) {
  (void)state;
  annot_fmax_t f;
  annot_fmax_init(&f);
  const float sa[] = {0.9f, 0.5f};
  const uint8_t ca[] = {1, 0};
  annot_fmax_add(&f, sa, ca, 2, 2);
  const float sx[] = {0.8f};
  const uint8_t cx[] = {0};
  annot_fmax_add(&f, sx, cx, 1, 0);  // no truth: ignored
  annot_fmax_result_t r;
  annot_fmax_result(&f, &r);
  assert_int_equal(r.n_proteins, 1);
  assert_float_equal(r.fmax, 2.0 / 3.0, 1e-12);
  assert_float_equal(r.tau, 0.90, 1e-12);
  annot_fmax_add(&f, NULL, NULL, 0, 1);  // C
  annot_fmax_result(&f, &r);
  assert_int_equal(r.n_proteins, 2);
  assert_float_equal(r.fmax, 0.4, 1e-12);
  assert_float_equal(r.recall, 0.25, 1e-12);
}

// Scores at a threshold count (score >= tau, also for 0.29 = 0.29f rounding); below 0.01 never.
static void test_threshold_edges(void **state) {
  (void)state;
  annot_fmax_t f;
  annot_fmax_init(&f);
  const float s[] = {0.29f, 0.005f};
  const uint8_t c[] = {1, 1};
  annot_fmax_add(&f, s, c, 2, 2);
  assert_float_equal(f.rec_sum[29], 0.5, 1e-12);
  assert_float_equal(f.rec_sum[30], 0.0, 1e-12);
  assert_float_equal(f.rec_sum[1], 0.5, 1e-12);   // 0.005 is below every threshold
  annot_fmax_result_t r;
  annot_fmax_result(&f, &r);
  assert_float_equal(r.fmax, 2 * 1 * 0.5 / 1.5, 1e-12);
  assert_float_equal(r.tau, 0.29, 1e-12);
  annot_fmax_t e;
  annot_fmax_init(&e);
  annot_fmax_result(&e, &r);
  assert_float_equal(r.fmax, 0, 0);
  assert_int_equal(r.n_proteins, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_case),
      cmocka_unit_test(test_unannotated_and_empty),
      cmocka_unit_test(test_threshold_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
