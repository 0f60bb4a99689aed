// parity_torch ARCH K OUTDIR [options] — the C side of the trainer-vs-PyTorch parity test
// (parity_torch.py, run by parity_torch.sh as the meson test unit_torch_parity).
//
// ARCH: topk | relu | batchtopk | jumprelu | transcoder (a topk transcoder, d_out != d_in). K: k
// of topk / batchtopk (ignored by relu and jumprelu). Builds a small model, initialises it deterministically
// (sae_init_weights, then nonzero b_enc / b_dec), and writes into OUTDIR (created):
//   init/            SAELens directory of the initial weights (sae_save, scale 1)
//   batches.safetensors  x [steps*B, d_in] (and y [steps*B, d_out] for the transcoder)
//   params.json      every setting the run used (torch_parity.py reads its settings from here)
//   losses.txt       one line a step: step mse aux l1 loss l0 n_dead dense_path grad_norm lr
//   state.safetensors params [steps, n_params]: the parameters before each step; grad [steps,
//                    n_params]: the gradient each step fed to Adam (after the unit-norm projection,
//                    before clipping); both flat [W_encT | b_enc | W_dec | b_dec]; threshold
//                    [steps] (batchtopk, before each step); adam_m, adam_v [n_params] and
//                    since_fired [d_sae] after the last step; jumprelu also log_threshold and
//                    log_threshold_grad [steps, d_sae] (before / at each step) and
//                    log_threshold_adam_m, log_threshold_adam_v [d_sae] after the last step
//   final/           SAELens directory of the trained weights
// Options (defaults in brackets): --steps 20 --batch 64 --d-in 24 --d-sae 96 --d-out [20 for
// the transcoder, else d_in] --seed 1 --threads 3 --chunk 24 --lr 1e-3 --clip 1 --k-aux [6, relu
// 0] --aux-coeff 0.03125 --dead-steps 3 --l1 [0.5 relu, else 0] --l1-warmup 5 --dense-threshold
// 0.05 --threshold-ema 0.99 --unit-norm 0|1 [1, relu 0] --norm 0|1 (per-sample normalisation) [0]
// --l0 [1, jumprelu] --bandwidth [0.001] --init-threshold [0.001] (jumprelu).
// The data are built so that each run exercises what it is meant to: latents with very negative
// b_enc die (AuxK becomes active after dead_steps steps); rows of large amplitude give them
// positive pre-activations, in places more than k_aux of them; for relu the input amplitude
// falls over the batches so that many latents fire in the first steps (dense path) and few in
// the last (sparse path), with a step whose chunks mix the two; jumprelu uses the relu data and
// bias shift, so that both paths run and pre-activations fall in the threshold's STE window.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hash.h"
#include "pool.h"
#include "sae.h"
#include "sae_train.h"
#include "safetensors.h"

static void die(const char *what, const ps_err_t *e) {
  fprintf(stderr, "parity_torch: %s: %s\n", what, e->msg);
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: parity_torch topk|relu|batchtopk|jumprelu|transcoder K OUTDIR [--steps N] [--batch B]\n"
                  "  [--d-in D] [--d-sae N] [--d-out O] [--seed S] [--threads T] [--chunk R] [--lr X] [--clip X]\n"
                  "  [--k-aux N] [--aux-coeff X] [--dead-steps N] [--l1 X] [--l1-warmup N] [--dense-threshold X]\n"
                  "  [--threshold-ema X] [--unit-norm 0|1] [--norm 0|1] [--l0 X] [--bandwidth X] [--init-threshold X]\n"
                  "  [--matryoshka M1,M2,... (topk / batchtopk nested prefixes)]\n");
  exit(2);
}

static double urand(uint64_t *st) { return (double)(ps_splitmix64(st) >> 11) / 9007199254740992.0; }

static double grand(uint64_t *st) {
  double u1 = urand(st) + 0.5 / 9007199254740992.0, u2 = urand(st);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void mkdir_p(const char *p) {
  if (mkdir(p, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "parity_torch: mkdir %s: %s\n", p, strerror(errno));
    exit(1);
  }
}

static double num(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end) usage();
  return v;
}

int main(int argc, char **argv) {
  if (argc < 4) usage();
  const char *arch = argv[1], *out = argv[3];
  int tc = !strcmp(arch, "transcoder");
  sae_cfg_t c;
  sae_cfg_default(&c);
  if (!strcmp(arch, "topk") || tc) c.arch = SAE_TOPK;
  else if (!strcmp(arch, "relu")) c.arch = SAE_RELU;
  else if (!strcmp(arch, "batchtopk")) c.arch = SAE_BATCHTOPK;
  else if (!strcmp(arch, "jumprelu")) c.arch = SAE_JUMPRELU;
  else usage();
  int jr = c.arch == SAE_JUMPRELU;
  int relu = c.arch == SAE_RELU || jr;  // jumprelu: relu's data, bias shift, no AuxK
  c.k = (int32_t)num(argv[2]);
  int64_t steps = 20, B = 64, d_out = -1;
  uint64_t seed = 1;
  int threads = 3;
  c.d_in = 24;
  c.d_sae = 96;
  sae_train_opts_t o;
  memset(&o, 0, sizeof o);
  o.lr = 1e-3;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.eps = 1e-8;
  o.clip_norm = 1.0;
  o.k_aux = relu ? 0 : 6;
  o.aux_coeff = 1.0 / 32.0;
  o.dead_steps = 3;
  o.l1_coeff = relu && !jr ? 0.5 : 0.0;
  o.l1_warmup_steps = 5;
  o.unit_norm_decoder = !relu || jr;
  o.l0_coeff = jr ? 1.0 : 0.0;
  o.jumprelu_bandwidth = 0.001;
  o.jumprelu_init_threshold = 0.001;
  o.dense_threshold = 0.05;
  o.threshold_ema = 0.99;
  o.chunk_rows = 24;
  const char *mat = NULL;
  for (int i = 4; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    if (!strcmp(a, "--matryoshka")) {
      mat = argv[++i];
      continue;
    }
    double v = num(argv[++i]);
    if (!strcmp(a, "--steps")) steps = (int64_t)v;
    else if (!strcmp(a, "--batch")) B = (int64_t)v;
    else if (!strcmp(a, "--d-in")) c.d_in = (int64_t)v;
    else if (!strcmp(a, "--d-sae")) c.d_sae = (int64_t)v;
    else if (!strcmp(a, "--d-out")) d_out = (int64_t)v;
    else if (!strcmp(a, "--seed")) seed = (uint64_t)v;
    else if (!strcmp(a, "--threads")) threads = (int)v;
    else if (!strcmp(a, "--chunk")) o.chunk_rows = (int64_t)v;
    else if (!strcmp(a, "--lr")) o.lr = v;
    else if (!strcmp(a, "--clip")) o.clip_norm = v;
    else if (!strcmp(a, "--k-aux")) o.k_aux = (int32_t)v;
    else if (!strcmp(a, "--aux-coeff")) o.aux_coeff = v;
    else if (!strcmp(a, "--dead-steps")) o.dead_steps = (int64_t)v;
    else if (!strcmp(a, "--l1")) o.l1_coeff = v;
    else if (!strcmp(a, "--l1-warmup")) o.l1_warmup_steps = (int64_t)v;
    else if (!strcmp(a, "--dense-threshold")) o.dense_threshold = v;
    else if (!strcmp(a, "--threshold-ema")) o.threshold_ema = v;
    else if (!strcmp(a, "--unit-norm")) o.unit_norm_decoder = v != 0;
    else if (!strcmp(a, "--norm")) c.normalize_per_sample = v != 0;
    else if (!strcmp(a, "--l0")) o.l0_coeff = v;
    else if (!strcmp(a, "--bandwidth")) o.jumprelu_bandwidth = v;
    else if (!strcmp(a, "--init-threshold")) o.jumprelu_init_threshold = v;
    else usage();
  }
  if (steps < 1 || B < 1 || threads < 1) usage();
  c.d_out = d_out > 0 ? d_out : tc ? 20 : c.d_in;
  c.transcoder = tc;
  c.apply_b_dec_to_input = !tc;
  const int64_t d = c.d_in, n = c.d_sae, od = c.d_out;
  ps_err_t err = {0};
  if (mat && sae_train_parse_matryoshka(&o, mat, n, &err)) die("--matryoshka", &err);

  // ---- model ----
  sae_t *s = NULL;
  if (sae_new(&s, &c, &err)) die("sae_new", &err);
  sae_init_weights(s, seed, 1.0f);
  uint64_t st = seed * 7919 + 17;
  for (int64_t j = 0; j < n; j++) {
    double u = urand(&st);
    double b = 0.1 * (u - 0.5);
    // topk family: every third latent starts with a very negative bias and so (almost) never
    // makes the top k: it dies after dead_steps steps, while its pre-activation is positive in
    // rows of large amplitude (AuxK selects and trains it). relu: a negative bias keeps the
    // code sparse for small inputs.
    if (!relu && j % 3 == 0) b -= 1.4 + 0.4 * urand(&st);
    if (relu) b -= 0.45;
    s->b_enc[j] = (float)b;
  }
  for (int64_t i = 0; i < od; i++) s->b_dec[i] = (float)(0.2 * (urand(&st) - 0.5));

  // ---- data ----
  float *x = malloc(sizeof(float) * (size_t)(steps * B * d));
  float *y = tc ? malloc(sizeof(float) * (size_t)(steps * B * od)) : NULL;
  float *mix = tc ? malloc(sizeof(float) * (size_t)(d * od)) : NULL;
  if (!x || (tc && (!y || !mix))) {
    fprintf(stderr, "parity_torch: out of memory\n");
    return 1;
  }
  for (int64_t i = 0; tc && i < d * od; i++) mix[i] = (float)(grand(&st) / sqrt((double)d));
  for (int64_t r = 0; r < steps * B; r++) {
    // relu: amplitude 1.0 at the first row falling to 0.25 at the last (dense early, sparse late).
    // topk family: one row in 16 is 2.5x larger, so that many dead latents have positive
    // pre-activations there (more than k_aux: AuxK's top-k_aux cut matters) and some of them
    // fire now and then (n_dead varies).
    double amp = relu ? 1.0 - 0.75 * (double)r / (double)(steps * B - 1) : r % 16 == 5 ? 2.5 : 1.0;
    float *xr = x + r * d;
    for (int64_t i = 0; i < d; i++) xr[i] = (float)(amp * (0.8 * grand(&st) + (i == 3 ? 0.5 : 0.0)));
    if (tc) {
      float *yr = y + r * od;
      for (int64_t q = 0; q < od; q++) {
        double acc = 0.1 * grand(&st) + 0.3;
        for (int64_t i = 0; i < d; i++) acc += (double)mix[i * od + q] * xr[i];
        yr[q] = (float)tanh(acc);
      }
    }
  }
  free(mix);

  char path[4096];
  mkdir_p(out);
  snprintf(path, sizeof path, "%s/init", out);
  mkdir_p(path);
  if (sae_save(s, path, 1.0f, 1.0f, &err)) die("sae_save init", &err);
  st_writer_t *w = NULL;
  snprintf(path, sizeof path, "%s/batches.safetensors", out);
  uint64_t shx[2] = {(uint64_t)(steps * B), (uint64_t)d}, shy[2] = {(uint64_t)(steps * B), (uint64_t)od};
  if (st_writer_open(&w, path, &err) || st_writer_add_f32(w, "x", ST_F32, shx, 2, x, &err) ||
      (tc && st_writer_add_f32(w, "y", ST_F32, shy, 2, y, &err)) || st_writer_close(&w, &err))
    die("batches", &err);

  snprintf(path, sizeof path, "%s/params.json", out);
  FILE *pf = fopen(path, "w");
  if (!pf) {
    perror(path);
    return 1;
  }
  fprintf(pf,
          "{\"arch\": \"%s\", \"transcoder\": %s, \"k\": %d, \"d_in\": %lld, \"d_sae\": %lld, \"d_out\": %lld,\n"
          " \"steps\": %lld, \"batch\": %lld, \"seed\": %llu, \"threads\": %d, \"chunk_rows\": %lld,\n"
          " \"lr\": %.17g, \"beta1\": %.17g, \"beta2\": %.17g, \"eps\": %.17g, \"clip_norm\": %.17g,\n"
          " \"k_aux\": %d, \"aux_coeff\": %.17g, \"dead_steps\": %lld, \"l1_coeff\": %.17g, \"l1_warmup_steps\": %lld,\n"
          " \"unit_norm_decoder\": %s, \"dense_threshold\": %.17g, \"threshold_ema\": %.17g,\n"
          " \"normalize_per_sample\": %s, \"apply_b_dec_to_input\": %s,\n"
          " \"l0_coeff\": %.17g, \"jumprelu_bandwidth\": %.17g, \"jumprelu_init_threshold\": %.17g,\n"
          " \"matryoshka\": [",
          sae_arch_name(c.arch), tc ? "true" : "false", c.k, (long long)d, (long long)n, (long long)od,
          (long long)steps, (long long)B, (unsigned long long)seed, threads, (long long)o.chunk_rows, o.lr, o.beta1,
          o.beta2, o.eps, o.clip_norm, o.k_aux, o.aux_coeff, (long long)o.dead_steps, o.l1_coeff,
          (long long)o.l1_warmup_steps, o.unit_norm_decoder ? "true" : "false", o.dense_threshold, o.threshold_ema,
          c.normalize_per_sample ? "true" : "false", c.apply_b_dec_to_input ? "true" : "false", o.l0_coeff,
          o.jumprelu_bandwidth, o.jumprelu_init_threshold);
  for (int i = 0; i < o.n_matryoshka; i++) fprintf(pf, "%s%lld", i ? ", " : "", (long long)o.matryoshka[i]);
  fprintf(pf, "]}\n");
  fclose(pf);

  // ---- training ----
  ps_pool_t *pool = threads > 1 ? ps_pool_new(threads) : NULL;
  sae_trainer_t *t = NULL;
  if (sae_trainer_new(&t, s, &o, pool, &err)) die("sae_trainer_new", &err);
  float *grads = malloc(sizeof(float) * (size_t)steps * s->n_params);
  float *before = malloc(sizeof(float) * (size_t)steps * s->n_params);
  float *thr = calloc((size_t)steps, sizeof(float));
  float *lt_before = jr ? malloc(sizeof(float) * (size_t)(steps * n)) : NULL;
  float *lt_grads = jr ? malloc(sizeof(float) * (size_t)(steps * n)) : NULL;
  if (!grads || !before || !thr || (jr && (!lt_before || !lt_grads))) {
    fprintf(stderr, "parity_torch: out of memory\n");
    return 1;
  }
  snprintf(path, sizeof path, "%s/losses.txt", out);
  FILE *lf = fopen(path, "w");
  if (!lf) {
    perror(path);
    return 1;
  }
  fprintf(lf, "# step mse aux l1 loss l0 n_dead dense_path grad_norm lr\n");
  int aux_steps = 0, dense_steps = 0;
  for (int64_t k = 0; k < steps; k++) {
    sae_losses_t L;
    memcpy(before + (size_t)k * s->n_params, s->params, s->n_params * sizeof(float));
    if (s->threshold) thr[k] = s->threshold[0];
    if (jr) memcpy(lt_before + k * n, sae_trainer_log_threshold(t), (size_t)n * sizeof(float));
    if (sae_trainer_step(t, x + k * B * d, tc ? y + k * B * od : NULL, B, &L, &err)) die("sae_trainer_step", &err);
    memcpy(grads + (size_t)k * s->n_params, sae_trainer_grad_buf(t), s->n_params * sizeof(float));
    if (jr) memcpy(lt_grads + k * n, sae_trainer_log_threshold_grad(t), (size_t)n * sizeof(float));
    fprintf(lf, "%lld %.9g %.9g %.9g %.9g %.9g %lld %d %.9g %.9g\n", (long long)(k + 1), L.mse, L.aux, L.l1, L.loss,
            L.l0, (long long)L.n_dead, L.dense_path, L.grad_norm, L.lr);
    aux_steps += L.aux > 0;
    dense_steps += L.dense_path;
  }
  fclose(lf);

  snprintf(path, sizeof path, "%s/state.safetensors", out);
  uint64_t shg[2] = {(uint64_t)steps, (uint64_t)s->n_params}, shp[1] = {(uint64_t)s->n_params}, shn[1] = {(uint64_t)n},
           shs[1] = {(uint64_t)steps};
  if (st_writer_open(&w, path, &err) || st_writer_add_f32(w, "params", ST_F32, shg, 2, before, &err) ||
      st_writer_add_f32(w, "grad", ST_F32, shg, 2, grads, &err) ||
      st_writer_add_f32(w, "threshold", ST_F32, shs, 1, thr, &err) ||
      st_writer_add_f32(w, "adam_m", ST_F32, shp, 1, sae_trainer_adam_m(t), &err) ||
      st_writer_add_f32(w, "adam_v", ST_F32, shp, 1, sae_trainer_adam_v(t), &err) ||
      st_writer_add_i64(w, "since_fired", shn, 1, sae_trainer_steps_since_fired(t), &err))
    die("state", &err);
  uint64_t shl[2] = {(uint64_t)steps, (uint64_t)n};
  if (jr && (st_writer_add_f32(w, "log_threshold", ST_F32, shl, 2, lt_before, &err) ||
             st_writer_add_f32(w, "log_threshold_grad", ST_F32, shl, 2, lt_grads, &err) ||
             st_writer_add_f32(w, "log_threshold_adam_m", ST_F32, shn, 1, sae_trainer_log_threshold_adam_m(t), &err) ||
             st_writer_add_f32(w, "log_threshold_adam_v", ST_F32, shn, 1, sae_trainer_log_threshold_adam_v(t), &err)))
    die("state", &err);
  if (st_writer_close(&w, &err))
    die("state", &err);
  snprintf(path, sizeof path, "%s/final", out);
  mkdir_p(path);
  if (sae_save(s, path, 1.0f, 1.0f, &err)) die("sae_save final", &err);
  printf("parity_torch %s: d_in=%lld d_sae=%lld d_out=%lld k=%d B=%lld steps=%lld threads=%d chunk=%lld; "
         "aux>0 in %d steps, relu dense path in %d steps, %lld dead at the end\n",
         arch, (long long)d, (long long)n, (long long)od, c.k, (long long)B, (long long)steps, threads,
         (long long)o.chunk_rows, aux_steps, dense_steps, (long long)sae_trainer_n_dead(t));
  sae_trainer_free(&t);
  ps_pool_destroy(&pool);
  sae_free(&s);
  free(grads);
  free(before);
  free(thr);
  free(lt_before);
  free(lt_grads);
  free(x);
  free(y);
  return 0;
}
