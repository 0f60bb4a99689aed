// common/blascore.h: the OPENBLAS_CORETYPE verdict as a pure function of (variable, running core,
// CPU flags): Haswell forced on an AVX-512 CPU warns and names the variable, its value, the core
// the CPU could use and the cost; no warning when the variable is unset, when the forced core is
// the CPU's best (or better), for core names the table does not know; the level of each OpenBLAS
// core name in any case; the CPU's best core (SkylakeX, Cooperlake, Haswell, Zen, Sandybridge).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <cmocka.h>

#include "blascore.h"

static const ps_cpu_flags_t cpu_avx512 = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1, .avx512bw = 1, .avx512vl = 1,
                                          .avx512dq = 1, .avx512bf16 = 1};
static const ps_cpu_flags_t cpu_skx = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1, .avx512bw = 1, .avx512vl = 1,
                                       .avx512dq = 1};
static const ps_cpu_flags_t cpu_avx2 = {.avx = 1, .avx2 = 1, .fma = 1};
static const ps_cpu_flags_t cpu_zen2 = {.avx = 1, .avx2 = 1, .fma = 1, .amd = 1};
static const ps_cpu_flags_t cpu_avx = {.avx = 1};
static const ps_cpu_flags_t cpu_knl = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1};  // F without BW/VL/DQ

#define assert_has(s, sub)                                                              \
  do {                                                                                  \
    if (!strstr((s), (sub))) fail_msg("message '%s' does not contain '%s'", (s), (sub)); \
  } while (0)

static void haswell_forced_on_avx512_warns(void **st) {
  (void)st;
  char msg[512];
  assert_int_equal(ps_blas_core_verdict("Haswell", "Haswell", &cpu_avx512, msg, sizeof msg), 1);
  assert_has(msg, "OPENBLAS_CORETYPE=Haswell");
  assert_has(msg, "Cooperlake");
  assert_has(msg, "AVX-512");
  assert_has(msg, "about half speed");
  assert_has(msg, "unset OPENBLAS_CORETYPE");
  // the value is shown as the user wrote it; the running core decides
  assert_int_equal(ps_blas_core_verdict("haswell", "Haswell", &cpu_skx, msg, sizeof msg), 1);
  assert_has(msg, "OPENBLAS_CORETYPE=haswell");
  assert_has(msg, "SkylakeX");
  // two levels down: a quarter; three: an eighth
  assert_int_equal(ps_blas_core_verdict("Sandybridge", "Sandybridge", &cpu_avx512, msg, sizeof msg), 1);
  assert_has(msg, "quarter");
  assert_int_equal(ps_blas_core_verdict("Nehalem", "Nehalem", &cpu_avx512, msg, sizeof msg), 1);
  assert_has(msg, "eighth");
  assert_int_equal(ps_blas_core_verdict("Core2", "Core2", &cpu_avx2, msg, sizeof msg), 1);
  assert_has(msg, "Haswell");
  assert_has(msg, "quarter");
  assert_int_equal(ps_blas_core_verdict("Nehalem", "Nehalem", &cpu_zen2, msg, sizeof msg), 1);
  assert_has(msg, "would pick Zen");
  // a message cut at the buffer's size stays a string
  char small[16];
  assert_int_equal(ps_blas_core_verdict("Haswell", "Haswell", &cpu_avx512, small, sizeof small), 1);
  assert_int_equal(strlen(small), sizeof small - 1);
}

static void silent_when_fine(void **st) {
  (void)st;
  char msg[512] = "x";
  // unset or empty: OpenBLAS chose by itself
  assert_int_equal(ps_blas_core_verdict(NULL, "Haswell", &cpu_avx512, msg, sizeof msg), 0);
  assert_string_equal(msg, "");
  assert_int_equal(ps_blas_core_verdict("", "Haswell", &cpu_avx512, msg, sizeof msg), 0);
  // forced, but to the CPU's best level (or a sibling at that level)
  assert_int_equal(ps_blas_core_verdict("Cooperlake", "Cooperlake", &cpu_avx512, msg, sizeof msg), 0);
  assert_int_equal(ps_blas_core_verdict("SkylakeX", "SkylakeX", &cpu_avx512, msg, sizeof msg), 0);
  assert_int_equal(ps_blas_core_verdict("Haswell", "Haswell", &cpu_avx2, msg, sizeof msg), 0);
  assert_int_equal(ps_blas_core_verdict("Zen", "Zen", &cpu_avx2, msg, sizeof msg), 0);
  assert_int_equal(ps_blas_core_verdict("Haswell", "Haswell", &cpu_zen2, msg, sizeof msg), 0);
  assert_int_equal(ps_blas_core_verdict("Sandybridge", "Sandybridge", &cpu_avx, msg, sizeof msg), 0);
  // AVX-512F alone (no BW/VL/DQ) gets no AVX-512 kernels from OpenBLAS
  assert_int_equal(ps_blas_core_verdict("Haswell", "Haswell", &cpu_knl, msg, sizeof msg), 0);
  // the variable names a weak core, but OpenBLAS runs a strong one (the running core decides)
  assert_int_equal(ps_blas_core_verdict("Haswell", "Cooperlake", &cpu_avx512, msg, sizeof msg), 0);
  // names the table does not know never warn
  assert_int_equal(ps_blas_core_verdict("Haswell", "NEOVERSEN1", &cpu_avx512, msg, sizeof msg), 0);
  assert_int_equal(ps_blas_core_verdict("Haswell", NULL, &cpu_avx512, msg, sizeof msg), 0);
  assert_string_equal(msg, "");
}

static void core_levels(void **st) {
  (void)st;
  assert_int_equal(ps_blas_core_isa("Prescott"), PS_ISA_SSE);
  assert_int_equal(ps_blas_core_isa("nehalem"), PS_ISA_SSE);
  assert_int_equal(ps_blas_core_isa("Sandybridge"), PS_ISA_AVX);
  assert_int_equal(ps_blas_core_isa("Piledriver"), PS_ISA_AVX);
  assert_int_equal(ps_blas_core_isa("HASWELL"), PS_ISA_AVX2);
  assert_int_equal(ps_blas_core_isa("Zen"), PS_ISA_AVX2);
  assert_int_equal(ps_blas_core_isa("SkylakeX"), PS_ISA_AVX512);
  assert_int_equal(ps_blas_core_isa("Cooperlake"), PS_ISA_AVX512);
  assert_int_equal(ps_blas_core_isa("SapphireRapids"), PS_ISA_AVX512);
  assert_int_equal(ps_blas_core_isa("Unknown"), PS_ISA_UNKNOWN);
  assert_int_equal(ps_blas_core_isa(""), PS_ISA_UNKNOWN);
  const char *c = NULL;
  assert_int_equal(ps_cpu_isa(&cpu_avx512, &c), PS_ISA_AVX512);
  assert_string_equal(c, "Cooperlake");
  assert_int_equal(ps_cpu_isa(&cpu_skx, &c), PS_ISA_AVX512);
  assert_string_equal(c, "SkylakeX");
  assert_int_equal(ps_cpu_isa(&cpu_knl, &c), PS_ISA_AVX2);
  assert_string_equal(c, "Haswell");
  assert_int_equal(ps_cpu_isa(&cpu_zen2, &c), PS_ISA_AVX2);
  assert_string_equal(c, "Zen");
  assert_int_equal(ps_cpu_isa(&cpu_avx, &c), PS_ISA_AVX);
  assert_string_equal(c, "Sandybridge");
  ps_cpu_flags_t none = {0};
  assert_int_equal(ps_cpu_isa(&none, &c), PS_ISA_SSE);
}

// This process: the check agrees with the verdict on its own inputs, and says it once.
static void this_process(void **st) {
  (void)st;
  ps_cpu_flags_t f;
  ps_cpu_flags_probe(&f);
  char msg[512];
  int want = ps_blas_core_verdict(getenv("OPENBLAS_CORETYPE"), openblas_get_corename(), &f, msg, sizeof msg);
  assert_int_equal(ps_blas_core_check(), want);
  assert_int_equal(ps_blas_core_check(), want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(haswell_forced_on_avx512_warns),
      cmocka_unit_test(silent_when_fine),
      cmocka_unit_test(core_levels),
      cmocka_unit_test(this_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
