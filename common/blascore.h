// blascore.h — does OpenBLAS run a weaker core than this CPU supports? OPENBLAS_CORETYPE (read by
// OpenBLAS once, when it loads) can force, e.g., its Haswell (AVX2) kernels on an AVX-512 CPU:
// matrix products then run at about half speed and nothing says so. ps_blas_core_check() logs
// one warning naming the variable, its value, the core the CPU could run and the rough cost; it
// says nothing when all is fine. The decision itself is a pure function (ps_blas_core_verdict).
#ifndef PS_BLASCORE_H
#define PS_BLASCORE_H

#include <stddef.h>

// The x86 instruction-set levels OpenBLAS's kernels are written for, weakest first; each level
// roughly doubles the sgemm rate of the one before (vector width or FMA).
typedef enum { PS_ISA_UNKNOWN = 0, PS_ISA_SSE, PS_ISA_AVX, PS_ISA_AVX2, PS_ISA_AVX512 } ps_isa_t;

// What the CPU supports, as __builtin_cpu_supports / __builtin_cpu_is report it (1 = yes).
typedef struct {
  int avx, avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16, amd;
} ps_cpu_flags_t;

// The level an OpenBLAS core name (openblas_get_corename(), or an OPENBLAS_CORETYPE value; any
// case) is written for; PS_ISA_UNKNOWN for a name not in the table (non-x86, or newer names).
ps_isa_t ps_blas_core_isa(const char *core);

// The best level the CPU runs OpenBLAS kernels at and, in *core (static, never NULL), the core
// name OpenBLAS would pick for it on its own.
ps_isa_t ps_cpu_isa(const ps_cpu_flags_t *f, const char **core);

// This process's CPU (all zero off x86).
void ps_cpu_flags_probe(ps_cpu_flags_t *f);

// The decision. coretype: the OPENBLAS_CORETYPE value (NULL or "" = unset); running: the core
// OpenBLAS runs. Returns 1 and writes the warning (the variable, its value, the core the CPU could
// use, the cost, the fix) into msg when the variable is set and the running core is written for a
// weaker level than the CPU's; returns 0 with msg "" otherwise (an unknown name never warns).
int ps_blas_core_verdict(const char *coretype, const char *running, const ps_cpu_flags_t *f, char *msg, size_t cap);

// OpenBLAS's worker threads spin (sched_yield) for 2^28 cycles after each product, and the spin
// competes with the work a stage does between products (top-k selection, sparse decode, Adam): ~5%
// of encoder throughput and ~10 ms of a 140 ms training step on 2 cores. OpenBLAS reads
// OPENBLAS_THREAD_TIMEOUT (spin 2^N cycles, N in 4..30) once, when it loads; so a stage calls this
// first thing in main: it sets the variable to 4 and re-executes itself, once. A value the user set
// is kept; if the exec fails the stage runs on.
void ps_blas_short_spin(char **argv);

// This process: OPENBLAS_CORETYPE, openblas_get_corename() and the CPU's flags. Logs the warning
// (PS_WARN) the first time it is called in a process and returns 1 when it warned (then or before).
int ps_blas_core_check(void);

#endif
