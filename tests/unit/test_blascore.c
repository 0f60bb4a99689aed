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

typedef struct {
  const char *var, *running;  // OPENBLAS_CORETYPE, openblas_get_corename()
  const ps_cpu_flags_t *cpu;
  const char *must[4];  // what the warning says (NULL-ended); none: no warning
} verdict_case_t;

static const verdict_case_t cases[] = {
    // warns: the variable, its value as written, the level, the core OpenBLAS would pick, the cost
    {"Haswell", "Haswell", &cpu_avx512, {"OPENBLAS_CORETYPE=Haswell", "AVX-512", "would pick Cooperlake", NULL}},
    {"Haswell", "Haswell", &cpu_avx512, {"about half speed", "unset OPENBLAS_CORETYPE", NULL}},
    {"haswell", "Haswell", &cpu_skx, {"OPENBLAS_CORETYPE=haswell", "would pick SkylakeX", NULL}},
    {"Sandybridge", "Sandybridge", &cpu_avx512, {"a quarter of the speed", NULL}},  // two levels down
    {"Nehalem", "Nehalem", &cpu_avx512, {"an eighth of the speed", NULL}},         // three
    {"Core2", "Core2", &cpu_avx2, {"would pick Haswell", "a quarter", NULL}},
    {"Nehalem", "Nehalem", &cpu_zen2, {"would pick Zen", NULL}},
    // silent: unset or empty (OpenBLAS chose by itself)
    {NULL, "Haswell", &cpu_avx512, {NULL}},
    {"", "Haswell", &cpu_avx512, {NULL}},
    // silent: forced, but to the CPU's best level (or a sibling at that level)
    {"Cooperlake", "Cooperlake", &cpu_avx512, {NULL}},
    {"SkylakeX", "SkylakeX", &cpu_avx512, {NULL}},
    {"Haswell", "Haswell", &cpu_avx2, {NULL}},
    {"Zen", "Zen", &cpu_avx2, {NULL}},
    {"Haswell", "Haswell", &cpu_zen2, {NULL}},
    {"Sandybridge", "Sandybridge", &cpu_avx, {NULL}},
    {"Haswell", "Haswell", &cpu_knl, {NULL}},  // AVX-512F alone gets no AVX-512 kernels from OpenBLAS
    // silent: the variable names a weak core but OpenBLAS runs a strong one (the running core decides)
    {"Haswell", "Cooperlake", &cpu_avx512, {NULL}},
    // silent: names the table does not know
    {"Haswell", "NEOVERSEN1", &cpu_avx512, {NULL}},
    {"Haswell", NULL, &cpu_avx512, {NULL}},
};

static void verdicts(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const verdict_case_t *c = &cases[i];
    char msg[512] = "x";
    int want = c->must[0] != NULL, got = ps_blas_core_verdict(c->var, c->running, c->cpu, msg, sizeof msg);
    if (got != want)
      fail_msg("case %zu (%s, running %s): verdict %d, want %d: '%s'", i, c->var ? c->var : "(unset)",
               c->running ? c->running : "(null)", got, want, msg);
    if (!want) assert_string_equal(msg, "");
    for (int k = 0; c->must[k]; k++) assert_has(msg, c->must[k]);
  }
  // a message cut at the buffer's size stays a string
  char small[16];
  assert_int_equal(ps_blas_core_verdict("Haswell", "Haswell", &cpu_avx512, small, sizeof small), 1);
  assert_int_equal(strlen(small), sizeof small - 1);
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
      cmocka_unit_test(verdicts),
      cmocka_unit_test(core_levels),
      cmocka_unit_test(this_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
