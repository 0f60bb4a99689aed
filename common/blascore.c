// blascore.c — the OPENBLAS_CORETYPE check (blascore.h): OpenBLAS's core names by instruction-set
// level, the CPU's best level, the verdict and its one log line; and the short OpenBLAS spin.
#include "blascore.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

// OpenBLAS's x86 DYNAMIC_ARCH core names (driver/others/dynamic.c) by the level their kernels use.
// The AMD cores from Bulldozer to Excavator run FMA4/AVX kernels: AVX here.
static const struct {
  const char *name;
  ps_isa_t isa;
} cores[] = {
    {"Katmai", PS_ISA_SSE},         {"Coppermine", PS_ISA_SSE},  {"Northwood", PS_ISA_SSE},
    {"Prescott", PS_ISA_SSE},       {"Banias", PS_ISA_SSE},      {"Atom", PS_ISA_SSE},
    {"Core2", PS_ISA_SSE},          {"Penryn", PS_ISA_SSE},      {"Dunnington", PS_ISA_SSE},
    {"Nehalem", PS_ISA_SSE},        {"Athlon", PS_ISA_SSE},      {"Opteron", PS_ISA_SSE},
    {"Opteron_SSE3", PS_ISA_SSE},   {"Barcelona", PS_ISA_SSE},   {"Nano", PS_ISA_SSE},
    {"Bobcat", PS_ISA_SSE},         {"Sandybridge", PS_ISA_AVX}, {"Bulldozer", PS_ISA_AVX},
    {"Piledriver", PS_ISA_AVX},     {"Steamroller", PS_ISA_AVX}, {"Excavator", PS_ISA_AVX},
    {"Haswell", PS_ISA_AVX2},       {"Zen", PS_ISA_AVX2},        {"SkylakeX", PS_ISA_AVX512},
    {"Cooperlake", PS_ISA_AVX512},  {"SapphireRapids", PS_ISA_AVX512},
};

static const char *isa_names[] = {"unknown", "SSE", "AVX", "AVX2", "AVX-512"};

ps_isa_t ps_blas_core_isa(const char *core) {
  if (!core) return PS_ISA_UNKNOWN;
  for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
    if (!strcasecmp(core, cores[i].name)) return cores[i].isa;
  return PS_ISA_UNKNOWN;
}

ps_isa_t ps_cpu_isa(const ps_cpu_flags_t *f, const char **core) {
  // OpenBLAS's SkylakeX kernels need AVX-512 F, BW, VL and DQ; Cooperlake's add BF16.
  if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq) {
    *core = f->avx512bf16 ? "Cooperlake" : "SkylakeX";
    return PS_ISA_AVX512;
  }
  if (f->avx2 && f->fma) {
    *core = f->amd ? "Zen" : "Haswell";
    return PS_ISA_AVX2;
  }
  if (f->avx) {
    *core = f->amd ? "Bulldozer" : "Sandybridge";
    return PS_ISA_AVX;
  }
  *core = "Nehalem";
  return PS_ISA_SSE;
}

void ps_cpu_flags_probe(ps_cpu_flags_t *f) {
  *f = (ps_cpu_flags_t){0};
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f->avx = __builtin_cpu_supports("avx") != 0;
  f->avx2 = __builtin_cpu_supports("avx2") != 0;
  f->fma = __builtin_cpu_supports("fma") != 0;
  f->avx512f = __builtin_cpu_supports("avx512f") != 0;
  f->avx512bw = __builtin_cpu_supports("avx512bw") != 0;
  f->avx512vl = __builtin_cpu_supports("avx512vl") != 0;
  f->avx512dq = __builtin_cpu_supports("avx512dq") != 0;
  f->avx512bf16 = __builtin_cpu_supports("avx512bf16") != 0;
  f->amd = __builtin_cpu_is("amd") != 0;
#endif
}

int ps_blas_core_verdict(const char *coretype, const char *running, const ps_cpu_flags_t *f, char *msg, size_t cap) {
  if (cap) msg[0] = 0;
  if (!coretype || !*coretype) return 0;  // OpenBLAS chose by itself: nothing the user can do
  ps_isa_t run = ps_blas_core_isa(running);
  const char *best = NULL;
  ps_isa_t cpu = ps_cpu_isa(f, &best);
  if (run == PS_ISA_UNKNOWN || run >= cpu) return 0;
  int gap = (int)cpu - (int)run;
  const char *cost = gap == 1 ? "about half speed" : gap == 2 ? "about a quarter of the speed" : "about an eighth of the speed";
  snprintf(msg, cap,
           "OPENBLAS_CORETYPE=%s forces OpenBLAS onto its %s kernels (%s) but this CPU supports %s (OpenBLAS "
           "would pick %s): matrix products run at %s; unset OPENBLAS_CORETYPE",
           coretype, running, isa_names[run], isa_names[cpu], best, cost);
  return 1;
}

int ps_blas_core_check(void) {
  static int done = 0, warned = 0;
  if (done) return warned;
  done = 1;
  ps_cpu_flags_t f;
  ps_cpu_flags_probe(&f);
  char msg[512];
  warned = ps_blas_core_verdict(getenv("OPENBLAS_CORETYPE"), openblas_get_corename(), &f, msg, sizeof msg);
  if (warned) PS_WARN("%s", msg);
  return warned;
}

void ps_blas_short_spin(char **argv) {
  if (getenv("OPENBLAS_THREAD_TIMEOUT") || setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) != 0) return;
  execv("/proc/self/exe", argv);
}
