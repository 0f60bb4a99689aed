// parity_torch ARCH OUTDIR — the C side of the PyTorch parity test (parity_torch.py): builds a
// small SAE (topk with AuxK active, relu-L1 with warm-up, batchtopk, or a topk transcoder),
// writes its initial weights (OUTDIR/init, SAELens directory) and the batches (OUTDIR/x.npy,
// OUTDIR/y.npy), runs STEPS Adam steps and writes the per-step losses (OUTDIR/losses.txt: mse
// aux l1 dense_path) and the final weights (OUTDIR/final).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "npy.h"
#include "sae.h"
#include "sae_train.h"

enum { D = 24, N = 256, B = 32, STEPS = 20 };
#ifndef RELU_SHIFT
#define RELU_SHIFT 0.05f
#endif

static void die(const ps_err_t *e) {
  fprintf(stderr, "parity_torch: %s\n", e->msg);
  exit(1);
}

static float urand(uint64_t *st) { return (float)((double)(sae_rng_next(st) >> 11) / 9007199254740992.0); }

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: parity_torch topk|relu|batchtopk|transcoder OUTDIR\n");
    return 2;
  }
  const char *arch = argv[1], *out = argv[2];
  ps_err_t err = {0};
  sae_cfg_t c;
  sae_cfg_default(&c);
  int tc = !strcmp(arch, "transcoder");
  c.arch = tc ? SAE_TOPK : !strcmp(arch, "relu") ? SAE_RELU : !strcmp(arch, "batchtopk") ? SAE_BATCHTOPK : SAE_TOPK;
  c.d_in = D;
  c.d_sae = N;
  c.d_out = tc ? 20 : D;
  c.k = 8;
  c.apply_b_dec_to_input = !tc;
  c.transcoder = tc;
  sae_t *s = NULL;
  if (sae_new(&s, &c, &err)) die(&err);
  sae_init_weights(s, 5, c.arch == SAE_RELU ? 0.1f : 1.0f);
  uint64_t st = 77;
  for (int j = 0; j < N; j++) s->b_enc[j] = 0.05f * (urand(&st) - 0.5f) - (c.arch == SAE_RELU ? RELU_SHIFT : 0.0f);
  for (int i = 0; i < c.d_out; i++) s->b_dec[i] = 0.1f * (urand(&st) - 0.5f);
  sae_train_opts_t o;
  sae_train_opts_default(&o, &c);
  o.lr = 1e-3;
  o.clip_norm = 1.0;
  o.chunk_rows = 24;  // several chunks per batch
  if (c.arch == SAE_RELU) {
    o.l1_coeff = 0.5;
    o.l1_warmup_steps = 5;
    o.unit_norm_decoder = 0;
    o.dense_threshold = 0.3;  // dense while many latents fire, sparse once L1 has thinned them
  } else {
    o.k_aux = 6;
    o.aux_coeff = 1.0 / 32.0;
    o.dead_steps = 2;
    o.unit_norm_decoder = 1;
  }
  char path[4096];
  mkdir(out, 0755);
  snprintf(path, sizeof path, "%s/init", out);
  mkdir(path, 0755);
  if (sae_save(s, path, 1.0f, 1.0f, &err)) die(&err);
  float *x = malloc(sizeof(float) * STEPS * B * D), *y = malloc(sizeof(float) * STEPS * B * c.d_out);
  for (int i = 0; i < STEPS * B * D; i++) x[i] = 2.0f * urand(&st) - 1.0f + (i % D == 3 ? 1.0f : 0.0f);
  for (int i = 0; i < STEPS * B * c.d_out; i++) y[i] = 2.0f * urand(&st) - 1.0f;
  npy_writer_t *w = NULL;
  snprintf(path, sizeof path, "%s/x.npy", out);
  if (npy_writer_open(&w, path, NPY_F32, D, &err) || npy_writer_append_f32(w, x, STEPS * B, &err) ||
      npy_writer_close(&w, &err))
    die(&err);
  snprintf(path, sizeof path, "%s/y.npy", out);
  if (npy_writer_open(&w, path, NPY_F32, (uint64_t)c.d_out, &err) || npy_writer_append_f32(w, y, STEPS * B, &err) ||
      npy_writer_close(&w, &err))
    die(&err);
  sae_trainer_t *t = NULL;
  if (sae_trainer_new(&t, s, &o, NULL, &err)) die(&err);
  snprintf(path, sizeof path, "%s/losses.txt", out);
  FILE *lf = fopen(path, "w");
  for (int k = 0; k < STEPS; k++) {
    sae_losses_t L;
    if (sae_trainer_step(t, x + k * B * D, tc ? y + k * B * c.d_out : NULL, B, &L, &err)) die(&err);
    fprintf(lf, "%.9g %.9g %.9g %d %lld\n", L.mse, L.aux, L.l1, L.dense_path, (long long)L.n_dead);
  }
  fclose(lf);
  snprintf(path, sizeof path, "%s/final", out);
  mkdir(path, 0755);
  if (sae_save(s, path, 1.0f, 1.0f, &err)) die(&err);
  printf("arch=%s k_aux=%d dead_steps=%lld lr=%g clip=%g l1=%g unit_norm=%d\n", arch, o.k_aux,
         (long long)o.dead_steps, o.lr, o.clip_norm, o.l1_coeff, o.unit_norm_decoder);
  sae_trainer_free(&t);
  sae_free(&s);
  free(x);
  free(y);
  return 0;
}
