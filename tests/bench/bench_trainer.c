// bench_trainer — training and encoding throughput of the trainer core against the PyTorch CPU
// reference (../shared/bench/torch_sae_reference.py, SAELens-style), same shapes, same command,
// and the machine's limit (cblas_sgemm on the encoder shape).
//
// Settings mirror the reference: float32, Adam(lr 1e-4, betas 0.9/0.999), gradient clipping at
// 1.0, W_enc = W_dec^T init, no AuxK and no decoder constraint (the reference omits both), a
// pool of 4 random-normal batches cycled. TopK: k latents per row. ReLU-L1 (l1 = 5, decoder-norm
// weighted): measured at steady-state L0 -- the model first trains on the pool (lr 1e-3, not
// timed) until L0 changes by < 5% over 10 steps (or --relu-warm-steps); the reference's cost
// does not depend on L0 (dense autograd). Encode: TopK model, pre-activations + top-k selection,
// sparse codes out, against the reference's --mode encode on the same arch.
//
// Usage: bench_trainer [--d-in 320] [--d-sae 10240] [--batch 4096] [--k 32] [--threads 2]
//                      [--steps 10] [--warmup 3] [--torch-ref PATH] [--python /usr/bin/python3]
//                      [--no-torch] [--relu-warm-steps 300]
// Output (`key: value`): topk_train_rows_per_s, relu_train_rows_per_s, relu_l0, encode_rows_per_s,
// torch_* rows/s, topk_train_speedup_vs_torch, relu_train_speedup_vs_torch,
// encode_speedup_vs_torch, encoder_gflops (2 B d_in d_sae / encode time), sgemm_gflops,
// encoder_vs_sgemm, train_gflops_dense_equiv (12 B d_in d_sae / step time, the reference's
// FLOP model), topk_train_fraction_of_sgemm (TopK training rows/s x 2 d_in d_sae flop a row,
// over the sgemm rate on the encoder product: the share of the machine's rate a whole TopK step
// keeps; the encoder product is the step's only dense product, so 1 is the limit; the sgemm is
// timed once before each timed step, so the pair shares the machine's load: median sgemm time /
// median step time). Medians over --steps timed steps after --warmup.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "io.h"
#include "sae.h"
#include "sae_train.h"

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static float randn(uint64_t *st) {
  double u1 = ((double)(ps_splitmix64(st) >> 11) + 0.5) / 9007199254740992.0;
  double u2 = (double)(ps_splitmix64(st) >> 11) / 9007199254740992.0;
  return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct {
  int d_in, d_sae, batch, k, threads, steps, warmup, relu_warm, no_torch;
  const char *torch_ref, *python;
} args_t;

// Run the reference; returns rows_per_s_median or -1.
static double torch_rows(const args_t *a, const char *arch, const char *mode) {
  if (a->no_torch) return -1;
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "%s %s --arch %s --k %d --d_in %d --d_sae %d --batch %d --threads %d --mode %s --steps %d --warmup %d "
           "2>/dev/null",
           a->python, a->torch_ref, arch, a->k, a->d_in, a->d_sae, a->batch, a->threads, mode, a->steps, a->warmup);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  char line[8192];
  double v = -1;
  while (fgets(line, sizeof line, p)) {
    char *q = strstr(line, "\"rows_per_s_median\": ");
    if (q) v = atof(q + strlen("\"rows_per_s_median\": "));
    char *ob = strstr(line, "\"openblas\": \"");
    if (ob) {
      char *e = strchr(ob + 13, '"');
      if (e) fprintf(stderr, "torch reference (%s %s): openblas %.*s\n", arch, mode, (int)(e - ob - 13), ob + 13);
    }
  }
  int rc = pclose(p);
  if (rc != 0) {
    fprintf(stderr, "torch reference failed (%s); is python3-torch installed?\n", cmd);
    return -1;
  }
  return v;
}

static sae_t *new_sae(const args_t *a, sae_arch_t arch) {
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = arch;
  c.d_in = c.d_out = a->d_in;
  c.d_sae = a->d_sae;
  c.k = a->k;
  sae_t *s = NULL;
  ps_err_t err = {0};
  if (sae_new(&s, &c, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    exit(1);
  }
  sae_init_weights(s, 1, 0.1f);
  return s;
}

// The reference product: pre (batch x d_sae) = x W_enc via cblas_sgemm; returns its time.
static double sgemm_once(const args_t *a, const float *x, const sae_t *s, float *pre) {
  double t0 = ps_mono_s();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->batch, a->d_sae, a->d_in, 1.0f, x, a->d_in, s->W_encT,
              a->d_in, 0.0f, pre, a->d_sae);
  return ps_mono_s() - t0;
}

// Rows/s of training steps (median). With sg_ratio: before each timed step one reference product
// on the encoder shape, and *sg_ratio = its median time / the step's median time (the pairs share
// the machine's load, so the ratio holds on a busy machine).
static double train_rows(const args_t *a, sae_arch_t arch, float **pool, ps_pool_t *tp, double *l0_out,
                         double *sg_ratio) {
  sae_t *s = new_sae(a, arch);
  sae_train_opts_t o;
  sae_train_opts_default(&o, &s->cfg);
  o.lr = 1e-4;
  o.k_aux = 0;
  o.unit_norm_decoder = 0;
  o.clip_norm = 1.0;
  o.l1_coeff = 5.0;
  o.chunk_rows = 1024;
  sae_trainer_t *t = NULL;
  ps_err_t err = {0};
  if (sae_trainer_new(&t, s, &o, tp, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    exit(1);
  }
  sae_losses_t L;
  if (arch == SAE_RELU) {  // reach steady-state L0 (not timed)
    sae_train_opts_t fast = o;
    fast.lr = 1e-3;
    sae_trainer_t *tw = NULL;
    sae_trainer_new(&tw, s, &fast, tp, &err);
    double hist[10] = {0};
    int i;
    for (i = 0; i < a->relu_warm; i++) {
      if (sae_trainer_step(tw, pool[i % 4], NULL, a->batch, &L, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
      }
      if (i >= 10 && fabs(L.l0 - hist[i % 10]) < 0.05 * hist[i % 10]) break;
      hist[i % 10] = L.l0;
    }
    fprintf(stderr, "relu warm-up: %d steps, L0 %.1f, mse %.4f, dense path %d\n", i + 1, L.l0, L.mse, L.dense_path);
    sae_trainer_free(&tw);
  }
  double *dt = malloc((size_t)a->steps * sizeof(double)), l0 = 0;
  double *sg = malloc((size_t)a->steps * sizeof(double));
  float *pre = sg_ratio ? malloc((size_t)a->batch * a->d_sae * sizeof(float)) : NULL;
  for (int i = 0; i < a->warmup + a->steps; i++) {
    if (pre) {
      double e = sgemm_once(a, pool[(i + 1) % 4], s, pre);
      if (i >= a->warmup) sg[i - a->warmup] = e;
    }
    double t0 = ps_mono_s();
    if (sae_trainer_step(t, pool[i % 4], NULL, a->batch, &L, &err)) {
      fprintf(stderr, "%s\n", err.msg);
      exit(1);
    }
    double e = ps_mono_s() - t0;
    if (i >= a->warmup) dt[i - a->warmup] = e;
    l0 = L.l0;
  }
  double med = median(dt, a->steps);
  if (sg_ratio) *sg_ratio = median(sg, a->steps) / med;
  free(dt);
  free(sg);
  free(pre);
  if (l0_out) *l0_out = l0;
  sae_trainer_free(&t);
  sae_free(&s);
  return a->batch / med;
}

int main(int argc, char **argv) {
  args_t a = {320, 10240, 4096, 32, 2, 10, 3, 300, 0, "../shared/bench/torch_sae_reference.py", "/usr/bin/python3"};
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define IOPT(name, field) if (!strcmp(f, name) && v) { a.field = atoi(v); i++; continue; }
    IOPT("--d-in", d_in) IOPT("--d-sae", d_sae) IOPT("--batch", batch) IOPT("--k", k) IOPT("--threads", threads)
    IOPT("--steps", steps) IOPT("--warmup", warmup) IOPT("--relu-warm-steps", relu_warm)
    if (!strcmp(f, "--torch-ref") && v) { a.torch_ref = v; i++; continue; }
    if (!strcmp(f, "--python") && v) { a.python = v; i++; continue; }
    if (!strcmp(f, "--no-torch")) { a.no_torch = 1; continue; }
    fprintf(stderr, "usage: bench_trainer [--d-in N] [--d-sae N] [--batch N] [--k N] [--threads N] [--steps N] "
                    "[--warmup N] [--relu-warm-steps N] [--torch-ref PATH] [--python PATH] [--no-torch]\n");
    return 2;
  }
  openblas_set_num_threads(a.threads);
  ps_pool_t *tp = ps_pool_new(a.threads);
  float *pool[4];
  uint64_t st = 12345;
  for (int b = 0; b < 4; b++) {
    pool[b] = malloc((size_t)a.batch * a.d_in * sizeof(float));
    for (int64_t i = 0; i < (int64_t)a.batch * a.d_in; i++) pool[b][i] = randn(&st);
  }
  printf("d_in: %d\nd_sae: %d\nbatch: %d\nk: %d\nthreads: %d\nopenblas_core: %s\n", a.d_in, a.d_sae, a.batch, a.k,
         a.threads, openblas_get_corename());
  fflush(stdout);

  // the limit: sgemm on the encoder shape
  float *pre = malloc((size_t)a.batch * a.d_sae * sizeof(float));
  sae_t *s = new_sae(&a, SAE_TOPK);
  double sg[16];
  int nsg = a.steps < 16 ? a.steps : 16;
  for (int i = 0; i < nsg + 2; i++) {
    double e = sgemm_once(&a, pool[i % 4], s, pre);
    if (i >= 2) sg[i - 2] = e;
  }
  double flop_enc = 2.0 * a.batch * a.d_in * a.d_sae;
  double sgemm_gflops = flop_enc / median(sg, nsg) * 1e-9;
  free(pre);

  // encode (TopK)
  sae_enc_t *enc = NULL;
  ps_err_t err = {0};
  sae_enc_new(&enc, s, tp, 1024, &err);
  sae_codes_t codes = {0};
  double *dt = malloc((size_t)a.steps * sizeof(double));
  for (int i = 0; i < a.warmup + a.steps; i++) {
    double t0 = ps_mono_s();
    if (sae_enc_run(enc, pool[i % 4], a.batch, &codes, &err)) {
      fprintf(stderr, "%s\n", err.msg);
      return 1;
    }
    if (i >= a.warmup) dt[i - a.warmup] = ps_mono_s() - t0;
  }
  double enc_s = median(dt, a.steps);
  double enc_rows = a.batch / enc_s;
  sae_codes_free(&codes);
  sae_enc_free(&enc);
  sae_free(&s);

  double topk_frac = 0;
  double topk_rows = train_rows(&a, SAE_TOPK, pool, tp, NULL, &topk_frac);
  double relu_l0 = 0;
  double relu_rows = train_rows(&a, SAE_RELU, pool, tp, &relu_l0, NULL);

  double t_topk = torch_rows(&a, "topk", "train");
  double t_relu = torch_rows(&a, "relu", "train");
  double t_enc = torch_rows(&a, "topk", "encode");

  printf("topk_train_rows_per_s: %.0f\n", topk_rows);
  printf("relu_train_rows_per_s: %.0f\n", relu_rows);
  printf("relu_l0: %.1f\n", relu_l0);
  printf("encode_rows_per_s: %.0f\n", enc_rows);
  printf("train_gflops_dense_equiv: %.1f\n", 6.0 * flop_enc / (a.batch / topk_rows) * 1e-9);
  printf("encoder_gflops: %.1f\n", flop_enc / enc_s * 1e-9);
  printf("sgemm_gflops: %.1f\n", sgemm_gflops);
  printf("encoder_vs_sgemm: %.3f\n", flop_enc / enc_s * 1e-9 / sgemm_gflops);
  printf("topk_train_fraction_of_sgemm: %.3f\n", topk_frac);
  if (t_topk > 0 && t_relu > 0 && t_enc > 0) {
    printf("torch_topk_train_rows_per_s: %.0f\n", t_topk);
    printf("torch_relu_train_rows_per_s: %.0f\n", t_relu);
    printf("torch_encode_rows_per_s: %.0f\n", t_enc);
    printf("topk_train_speedup_vs_torch: %.2f\n", topk_rows / t_topk);
    printf("relu_train_speedup_vs_torch: %.2f\n", relu_rows / t_relu);
    printf("encode_speedup_vs_torch: %.2f\n", enc_rows / t_enc);
  } else {
    printf("torch_reference: unavailable\n");
  }
  for (int b = 0; b < 4; b++) free(pool[b]);
  free(dt);
  ps_pool_destroy(&tp);
  return 0;
}
