// bench_esm2 — native ESM2 forward: accuracy on the esm2-tiny test vectors and throughput at the
// esm2_t12_35M shape (12 layers, d 480, 20 heads, ffn 1920; random weights) against the plain
// PyTorch reference (tests/bench/esm2_torch.py) on the same weights and sequences, same command.
//
// 1. esm2-tiny: every tensor of expected.safetensors (tokens, layers 0..2 per residue and mean,
//    logits), all six sequences in one batch and one at a time -> esm2_max_abs_err (the larger).
//    The C outputs go to a safetensors file that the PyTorch reference compares with its own
//    forward -> torch_vs_c_max_abs_err, torch_vs_expected_max_abs_err.
// 2. Throughput: --n-seqs proteins (the first of ../shared/data/human-swissprot/proteins.fasta.gz,
//    else random sequences), truncated at 1022 residues, sorted by length and batched by
//    --tokens-per-batch (as the FASTA runner does), both sides --threads threads. tokens =
//    residues + BOS/EOS (no padding). --repeat rounds; in each, every batch in turn through the
//    sgemm reference (the batch's projections alone as cblas_sgemm calls, OpenBLAS on --threads
//    threads as the environment sets it up), the float32 forward and the bfloat16 forward (when
//    the CPU has AVX512_BF16), so the three share the machine's load; ratios per round, reported
//    as the median over rounds (and their range); tokens/s from the fastest round; model load
//    excluded -> sgemm_gflops, esm2_tokens_per_s, esm2_fraction_of_sgemm_limit (the forward's
//    FLOPs: projections + attention's two products, at the sgemm rate; _proj_flop: projections
//    only), the share of each phase, esm2_bf16_tokens_per_s, esm2_bf16_speedup,
//    esm2_bf16_min_cos / esm2_bf16_max_abs_err (last layer's mean embeddings vs float32); then
//    the sgemm reference again in a child without OPENBLAS_CORETYPE (openblas_core_fast_blas,
//    sgemm_gflops_fast_blas: the core OpenBLAS picks for this CPU by itself and its rate; the keys
//    scripts/bench's second run prints for the whole forward; --no-child skips it). torch_tokens_per_s, esm2_speedup_vs_torch; the
//    checksum (sum of squares) of the last layer's float32 means on both sides ->
//    esm2_vs_torch_checksum_rel_diff.
//
// Usage: bench_esm2 [--n-seqs 12] [--threads 2] [--tokens-per-batch 4096] [--repeat 3]
//                   [--layers 12 --d 480 --heads 20 --ffn 1920] [--python /usr/bin/python3]
//                   [--torch-ref PATH] [--no-torch] [--no-bf16] [--no-child] [--shared DIR]
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "esm2.h"
#include "fasta.h"
#include "fsutil.h"
#include "hash.h"
#include "io.h"
#include "safetensors.h"

#ifndef ESM2_TORCH_REF
#define ESM2_TORCH_REF "tests/bench/esm2_torch.py"
#endif

typedef struct {
  int n_seqs, threads, tpb, repeat, layers, d, heads, ffn, no_torch, no_bf16, no_child, gemm_ref_only;
  const char *python, *torch_ref, *shared;
} args_t;

static double max_abs(const float *a, const float *b, uint64_t n) {
  double m = 0;
  for (uint64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

static double cmp_expected(st_file_t *e, const char *name, const float *v, uint64_t n) {
  const st_tensor_info_t *t = st_tensor_find(e, name);
  if (!t || t->n_elems != n) {
    fprintf(stderr, "bench_esm2: expected tensor %s missing or of another size\n", name);
    return INFINITY;
  }
  float *x = malloc(n * sizeof(float));
  ps_err_t err = {0};
  if (st_read_f32(e, name, x, n, &err) < 0) {
    free(x);
    return INFINITY;
  }
  double d = max_abs(v, x, n);
  free(x);
  return d;
}

// Run the runner over fasta with the given budget; compare every item with expected. Optionally
// write the outputs (protsae layout) to out_path.
static double tiny_check(const esm2_model_t *m, const char *fasta, st_file_t *exp, uint32_t tpb, const char *out_path) {
  int lay[3] = {0, 1, 2};
  esm2_run_opts_t o = {0};
  o.fasta_path = fasta;
  o.req = (esm2_request_t){lay, 3, 1, 1, 1};
  o.tokens_per_batch = tpb;
  esm2_runner_t *r = NULL;
  ps_err_t err = {0};
  st_writer_t *w = NULL;
  if (esm2_runner_new(&r, m, &o, &err) < 0 || (out_path && st_writer_open(&w, out_path, &err) < 0)) {
    fprintf(stderr, "bench_esm2: %s\n", err.msg);
    esm2_runner_destroy(&r);
    return INFINITY;
  }
  const int D = esm2_config(m)->d_model, V = esm2_config(m)->vocab;
  esm2_item_t it;
  double worst = 0;
  int rc;
  char name[512];
  while ((rc = esm2_runner_next(r, &it, &err)) > 0) {
    for (int l = 0; l < 3; l++) {
      snprintf(name, sizeof name, "%s.layer%d.per_residue", it.id, l);
      worst = fmax(worst, cmp_expected(exp, name, it.residue[l], (uint64_t)it.n_residues * D));
      uint64_t sh[2] = {it.n_residues, (uint64_t)D};
      if (w) st_writer_add_f32(w, name, ST_F32, sh, 2, it.residue[l], &err);
      snprintf(name, sizeof name, "%s.layer%d.mean", it.id, l);
      worst = fmax(worst, cmp_expected(exp, name, it.mean[l], (uint64_t)D));
    }
    snprintf(name, sizeof name, "%s.logits", it.id);
    worst = fmax(worst, cmp_expected(exp, name, it.logits, (uint64_t)(it.n_residues + 2) * V));
    uint64_t sh[2] = {it.n_residues + 2, (uint64_t)V};
    if (w) st_writer_add_f32(w, name, ST_F32, sh, 2, it.logits, &err);
  }
  if (rc < 0) {
    fprintf(stderr, "bench_esm2: %s\n", err.msg);
    worst = INFINITY;
  }
  if (w && st_writer_close(&w, &err) < 0) fprintf(stderr, "bench_esm2: %s\n", err.msg);
  esm2_runner_destroy(&r);
  return worst;
}

// Write n sequences to path: the first of the shared human proteins, else random ones.
static int write_seqs(const args_t *a, const char *path) {
  char src[4096];
  snprintf(src, sizeof src, "%s/data/human-swissprot/proteins.fasta.gz", a->shared);
  FILE *out = fopen(path, "w");
  if (!out) return -1;
  fasta_reader_t *f = NULL;
  ps_err_t err = {0};
  int n = 0;
  if (access(src, R_OK) == 0 && fasta_open(&f, src, &err) == 0) {
    fasta_record_t rec;
    while (n < a->n_seqs && fasta_next(f, &rec, &err) > 0) {
      int ok = rec.len > 0;
      for (size_t i = 0; i < rec.len && ok; i++) ok = rec.seq[i] >= 'A' && rec.seq[i] <= 'Z' && rec.seq[i] != 'J';
      if (!ok) continue;
      fprintf(out, ">%s\n%.*s\n", rec.id, (int)(rec.len > 1022 ? 1022 : rec.len), rec.seq);
      n++;
    }
    fasta_close(&f);
    fprintf(stderr, "bench_esm2: %d proteins from %s\n", n, src);
  } else {
    uint64_t s = 42;
    const char *aa = "ACDEFGHIKLMNPQRSTVWY";
    for (; n < a->n_seqs; n++) {
      int len = 50 + (int)(ps_splitmix64(&s) % 700);
      fprintf(out, ">rand%d\n", n);
      for (int i = 0; i < len; i++) fputc(aa[ps_splitmix64(&s) % 20], out);
      fputc('\n', out);
    }
    fprintf(stderr, "bench_esm2: %d random sequences (no %s)\n", n, src);
  }
  fclose(out);
  return n;
}

// The throughput set: the FASTA tokenized, sorted by length (as the runner does with one window)
// and cut into batches of at most tpb tokens.
typedef struct {
  int32_t *tokens;
  int *lens, *batch_off;   // lens per sequence; batch b = sequences batch_off[b] .. batch_off[b+1]-1
  int n_seqs, n_batches;
  uint64_t n_tokens;
  double flop, proj_flop;  // of one pass: projections 2 N (4 D^2 + 2 D F) a layer + attention 4 T^2 D
} batches_t;

typedef struct {
  int32_t *tok;
  int len;
} seq_t;

static int cmp_len(const void *x, const void *y) {
  const seq_t *a = x, *b = y;
  return a->len < b->len ? -1 : a->len > b->len;   // qsort is not stable, but equal lengths give equal work
}

static int load_batches(const esm2_model_t *m, const char *path, int tpb, batches_t *bt) {
  const esm2_config_t *c = esm2_config(m);
  fasta_reader_t *f = NULL;
  ps_err_t err = {0};
  seq_t *seqs = NULL;
  int n = 0, rc;
  fasta_record_t rec;
  if (fasta_open(&f, path, &err) < 0) goto fail;
  while ((rc = fasta_next(f, &rec, &err)) > 0) {
    seqs = realloc(seqs, (n + 1) * sizeof *seqs);
    seqs[n].tok = malloc((rec.len + 2) * sizeof(int32_t));
    seqs[n].len = esm2_tokenize(c, rec.id, rec.seq, rec.len, 1022, ESM2_UNKNOWN_UNK, seqs[n].tok, &err);
    if (seqs[n++].len < 0) goto fail;
  }
  fasta_close(&f);
  if (rc < 0) goto fail;
  qsort(seqs, n, sizeof *seqs, cmp_len);
  *bt = (batches_t){0};
  bt->n_seqs = n;
  bt->lens = malloc(n * sizeof(int));
  bt->batch_off = malloc((n + 1) * sizeof(int));
  for (int i = 0; i < n; i++) bt->n_tokens += (uint64_t)seqs[i].len;
  bt->tokens = malloc(bt->n_tokens * sizeof(int32_t));
  uint64_t at = 0, in_batch = 0;
  double D = c->d_model, F = c->d_ff, L = c->n_layers;
  for (int i = 0; i < n; i++) {
    if (i == 0 || in_batch + (uint64_t)seqs[i].len > (uint64_t)tpb) {
      bt->batch_off[bt->n_batches++] = i;
      in_batch = 0;
    }
    in_batch += (uint64_t)seqs[i].len;
    bt->lens[i] = seqs[i].len;
    memcpy(bt->tokens + at, seqs[i].tok, seqs[i].len * sizeof(int32_t));
    at += (uint64_t)seqs[i].len;
    double T = seqs[i].len;
    bt->proj_flop += 2 * T * L * (4 * D * D + 2 * D * F);
    bt->flop += 4 * T * T * D * L;
    free(seqs[i].tok);
  }
  bt->flop += bt->proj_flop;
  bt->batch_off[bt->n_batches] = n;
  free(seqs);
  return 0;
fail:
  fprintf(stderr, "bench_esm2: %s\n", err.msg);
  fasta_close(&f);
  return -1;
}

// Batch b through the forward; its last-layer means into means (n_seqs x D). Seconds or <0.
static double run_batch(const esm2_model_t *m, esm2_ws_t *ws, const batches_t *bt, int b, int last, int D,
                        float *means) {
  esm2_request_t req = {&last, 1, 1, 1, 0};
  ps_err_t err = {0};
  int s0 = bt->batch_off[b], ns = bt->batch_off[b + 1] - s0;
  const int32_t *tok = bt->tokens;
  for (int i = 0; i < s0; i++) tok += bt->lens[i];
  double t0 = ps_mono_s();
  if (esm2_forward(m, ws, tok, bt->lens + s0, ns, &req, &err) < 0) {
    fprintf(stderr, "bench_esm2: %s\n", err.msg);
    return -1;
  }
  double dt = ps_mono_s() - t0;
  for (int i = 0; i < ns; i++) memcpy(means + (size_t)(s0 + i) * D, esm2_out_mean(ws, 0, i), D * sizeof(float));
  return dt;
}

static int batch_tokens(const batches_t *bt, int b) {
  int n = 0;
  for (int i = bt->batch_off[b]; i < bt->batch_off[b + 1]; i++) n += bt->lens[i];
  return n;
}

// The sgemm reference: the forward's projections alone as cblas_sgemm calls (OpenBLAS on `threads`
// threads, as the environment sets it up): for a batch of M tokens and each of L layers, C = A W^T
// with A (M, D) x (3D,D), (D,D), (F,D) and A (M, F) x (D,F): the same matrices as the forward.
typedef struct {
  float *A, *W, *C;
  int D, F, L, threads;
} gemm_ref_t;

static void gemm_ref_init(gemm_ref_t *g, int max_m, int D, int F, int L, int threads) {
  int wide = F > 3 * D ? F : 3 * D, in = F > D ? F : D;
  *g = (gemm_ref_t){malloc(sizeof(float) * max_m * in), malloc(sizeof(float) * (size_t)wide * in),
                    malloc(sizeof(float) * max_m * wide), D, F, L, threads};
  uint64_t s = 7;
  for (size_t i = 0; i < (size_t)max_m * in; i++) g->A[i] = (float)ps_unit53(ps_splitmix64(&s)) - 0.5f;
  for (size_t i = 0; i < (size_t)wide * in; i++) g->W[i] = (float)ps_unit53(ps_splitmix64(&s)) - 0.5f;
}

static void gemm_ref_free(gemm_ref_t *g) {
  free(g->A);
  free(g->W);
  free(g->C);
}

// Seconds for the projections of one batch of M tokens; *flop += their FLOPs.
static double gemm_ref_batch(gemm_ref_t *g, int M, double *flop) {
  const int shapes[4][2] = {{3 * g->D, g->D}, {g->D, g->D}, {g->F, g->D}, {g->D, g->F}};
  openblas_set_num_threads(g->threads);
  double t0 = ps_mono_s();
  for (int l = 0; l < g->L; l++)
    for (int k = 0; k < 4; k++) {
      int n = shapes[k][0], kk = shapes[k][1];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n, kk, 1.0f, g->A, kk, g->W, kk, 0.0f, g->C, n);
      *flop += 2.0 * M * n * kk;
    }
  double dt = ps_mono_s() - t0;
  openblas_set_num_threads(1);   // the ESM2 workspaces run OpenBLAS single-threaded in their pool
  return dt;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Run a command, collect `key: value` lines into vals (by key list). Returns exit status.
static int run_collect(const char *cmd, const char *const *keys, double *vals, int nk) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    for (int i = 0; i < nk; i++) {
      size_t kl = strlen(keys[i]);
      if (!strncmp(line, keys[i], kl) && line[kl] == ':') vals[i] = atof(line + kl + 1);
    }
  }
  return pclose(p);
}

int main(int argc, char **argv) {
  args_t a = {12, 2, 4096, 3, 12, 480, 20, 1920, 0, 0, 0, 0, "/usr/bin/python3", ESM2_TORCH_REF, NULL};
  const char *sh = getenv("PROTSAE_SHARED");
  a.shared = sh ? sh : "../shared";
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT_I(name, field) \
  if (!strcmp(k, name) && v) { a.field = atoi(v); i++; continue; }
#define OPT_S(name, field) \
  if (!strcmp(k, name) && v) { a.field = v; i++; continue; }
    OPT_I("--n-seqs", n_seqs) OPT_I("--threads", threads) OPT_I("--tokens-per-batch", tpb) OPT_I("--repeat", repeat)
    OPT_I("--layers", layers) OPT_I("--d", d) OPT_I("--heads", heads) OPT_I("--ffn", ffn)
    OPT_S("--python", python) OPT_S("--torch-ref", torch_ref) OPT_S("--shared", shared)
    if (!strcmp(k, "--no-torch") || !strcmp(k, "--no-bf16") || !strcmp(k, "--no-child") || !strcmp(k, "--gemm-ref-only")) {
      *(k[2] == 'g' ? &a.gemm_ref_only : k[5] == 't' ? &a.no_torch : k[5] == 'b' ? &a.no_bf16 : &a.no_child) = 1;
      continue;
    }
    fprintf(stderr, "usage: bench_esm2 [--n-seqs N] [--threads N] [--tokens-per-batch N] [--repeat N] [--layers L --d D "
                    "--heads H --ffn F] [--python P] [--torch-ref PATH] [--no-torch] [--no-bf16] [--no-child] [--shared DIR]\n");
    return 2;
  }
  if (a.repeat < 1) a.repeat = 1;
  if (a.gemm_ref_only) {   // the child run under another OPENBLAS_CORETYPE
    gemm_ref_t g;
    gemm_ref_init(&g, 4096, a.d, a.ffn, 2, a.threads);
    double best = INFINITY, flop = 0;
    for (int r = 0; r < 3; r++) {
      flop = 0;
      best = fmin(best, gemm_ref_batch(&g, 4096, &flop));
    }
    gemm_ref_free(&g);
    printf("openblas_core: %s\nsgemm_gflops: %.1f\n", openblas_get_corename(), flop / best / 1e9);
    return 0;
  }
  char self[1024];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) {
    a.no_child = 1;
    sl = 0;
  }
  self[sl] = 0;
  char tmp[] = "/tmp/protsae-bench-esm2.XXXXXX";
  if (!mkdtemp(tmp)) return 1;
  char p[2400], q[2600], cmd[32768];
  ps_err_t err = {0};
  int status = 0;

  // 1. accuracy on the test vectors
  char tiny[2048], fasta[2200], expp[2200];
  snprintf(tiny, sizeof tiny, "%s/testvectors/esm2-tiny", a.shared);
  snprintf(fasta, sizeof fasta, "%s/sequences.fasta", tiny);
  snprintf(expp, sizeof expp, "%s/expected.safetensors", tiny);
  esm2_model_t *m = NULL;
  st_file_t *exp = NULL;
  if (esm2_load(&m, tiny, &err) < 0 || st_open(&exp, expp, &err) < 0) {
    fprintf(stderr, "bench_esm2: %s\n", err.msg);
    return 1;
  }
  snprintf(p, sizeof p, "%s/c_tiny.safetensors", tmp);
  double e_batched = tiny_check(m, fasta, exp, 1 << 20, p);
  double e_single = tiny_check(m, fasta, exp, 3, NULL);  // a budget of 3 tokens: one at a time
  esm2_destroy(&m);
  st_close(&exp);
  printf("esm2_max_abs_err: %.3g\n", fmax(e_batched, e_single));
  printf("esm2_max_abs_err_batched: %.3g\n", e_batched);
  printf("esm2_max_abs_err_single: %.3g\n", e_single);
  fflush(stdout);
  if (!a.no_torch) {
    snprintf(cmd, sizeof cmd, "%s %s --model %s --fasta %s --compare %s --expected %s --threads %d", a.python,
             a.torch_ref, tiny, fasta, p, expp, a.threads);
    const char *keys[2] = {"torch_vs_c_max_abs_err", "torch_vs_expected_max_abs_err"};
    double vals[2] = {NAN, NAN};
    if (run_collect(cmd, keys, vals, 2) != 0) fprintf(stderr, "bench_esm2: torch compare failed: %s\n", cmd);
    printf("%s: %.3g\n%s: %.3g\n", keys[0], vals[0], keys[1], vals[1]);
    fflush(stdout);
  }

  // 2. throughput at the esm2_t12_35M shape
  m = esm2_new_random(a.layers, a.d, a.heads, a.ffn, 1234);
  snprintf(p, sizeof p, "%s/model", tmp);
  mkdir(p, 0755);
  snprintf(q, sizeof q, "%s/config.json", p);
  FILE *f = fopen(q, "w");
  fprintf(f,
          "{\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"intermediate_size\": %d, "
          "\"vocab_size\": 33, \"token_dropout\": true, \"mask_token_id\": 32, \"pad_token_id\": 1, "
          "\"layer_norm_eps\": 1e-05, \"position_embedding_type\": \"rotary\", \"emb_layer_norm_before\": false, "
          "\"hidden_act\": \"gelu\"}\n",
          a.d, a.layers, a.heads, a.ffn);
  fclose(f);
  snprintf(q, sizeof q, "%s/model/model.safetensors", tmp);
  if (esm2_save(m, q, &err) < 0) {
    fprintf(stderr, "bench_esm2: %s\n", err.msg);
    return 1;
  }
  esm2_destroy(&m);
  if (esm2_load(&m, p, &err) < 0) {
    fprintf(stderr, "bench_esm2: %s\n", err.msg);
    return 1;
  }
  snprintf(q, sizeof q, "%s/seqs.fasta", tmp);
  if (write_seqs(&a, q) <= 0) return 1;
  printf("esm2_bench_shape: layers=%d d=%d heads=%d ffn=%d params=%llu threads=%d tokens_per_batch=%d\n", a.layers,
         a.d, a.heads, a.ffn, (unsigned long long)esm2_n_params(m), a.threads, a.tpb);
  batches_t bt = {0};
  if (load_batches(m, q, a.tpb, &bt) < 0) return 1;
  int max_m = 0;
  for (int b = 0; b < bt.n_batches; b++) max_m = batch_tokens(&bt, b) > max_m ? batch_tokens(&bt, b) : max_m;
  gemm_ref_t gr;
  gemm_ref_init(&gr, max_m, a.d, a.ffn, a.layers, a.threads);
  esm2_ws_t *ws[2] = {esm2_ws_new(a.threads), esm2_ws_new(a.threads)};
  esm2_ws_set_precision(ws[1], ESM2_PREC_BF16);
  int bf16 = esm2_bf16_supported() && !a.no_bf16;
  float *means[2] = {malloc(sizeof(float) * bt.n_seqs * a.d), malloc(sizeof(float) * bt.n_seqs * a.d)};
  // Rounds: each batch in turn through the sgemm reference, the float32 forward and the bf16
  // forward, so the three see the same load (the machine may be shared); per round the ratios,
  // reported as the median over rounds; tokens/s from the fastest round.
  double *frac = calloc(a.repeat, sizeof(double)), *frac_proj = calloc(a.repeat, sizeof(double));
  double *speedup = calloc(a.repeat, sizeof(double)), best[2] = {INFINITY, INFINITY}, best_ref = INFINITY;
  double phase_sum[2][ESM2_PHASE_N] = {{0}}, total[2] = {0};
  for (int rep = 0; rep < a.repeat; rep++) {
    double t[3] = {0}, flop = 0;
    for (int b = 0; b < bt.n_batches; b++) {
      t[2] += gemm_ref_batch(&gr, batch_tokens(&bt, b), &flop);
      for (int pr = 0; pr < 1 + bf16; pr++) {
        double dt = run_batch(m, ws[pr], &bt, b, a.layers, a.d, means[pr]);
        if (dt < 0) return 1;
        t[pr] += dt;
      }
    }
    double rate = flop / t[2];
    frac[rep] = bt.flop / t[0] / rate;
    frac_proj[rep] = bt.proj_flop / t[0] / rate;
    speedup[rep] = bf16 ? t[0] / t[1] : NAN;
    best[0] = fmin(best[0], t[0]);
    best[1] = fmin(best[1], t[1]);
    best_ref = fmin(best_ref, t[2]);
    total[0] += t[0];
    total[1] += t[1];
  }
  for (int pr = 0; pr < 2; pr++)
    for (int i = 0; i < ESM2_PHASE_N; i++) phase_sum[pr][i] = esm2_ws_phase_seconds(ws[pr])[i];
  gemm_ref_free(&gr);
  double checksum = 0;
  for (uint64_t i = 0; i < (uint64_t)bt.n_seqs * a.d; i++) checksum += (double)means[0][i] * means[0][i];
  uint64_t ntok = bt.n_tokens;
  double c_tps = (double)ntok / best[0], sg = bt.proj_flop / best_ref, lo = frac[0], hi = frac[0];
  for (int r = 1; r < a.repeat; r++) {
    lo = fmin(lo, frac[r]);
    hi = fmax(hi, frac[r]);
  }
  printf("openblas_core: %s\n", openblas_get_corename());
  printf("sgemm_gflops: %.1f\n", sg / 1e9);
  printf("esm2_flop_per_token: %.4g\nesm2_proj_flop_per_token: %.4g\n", bt.flop / ntok, bt.proj_flop / ntok);
  printf("esm2_tokens: %llu\nesm2_seconds: %.3f\nesm2_tokens_per_s: %.1f\n", (unsigned long long)ntok, best[0], c_tps);
  printf("esm2_gflops: %.1f\n", bt.flop / best[0] / 1e9);
  printf("esm2_fraction_of_sgemm_limit: %.3f\n", median(frac, a.repeat));
  printf("esm2_fraction_of_sgemm_limit_rounds: %.3f-%.3f\n", lo, hi);
  printf("esm2_fraction_of_sgemm_limit_proj_flop: %.3f\n", median(frac_proj, a.repeat));
  for (int i = 0; i < ESM2_PHASE_N; i++)
    printf("esm2_phase_%s_frac: %.3f\n", esm2_phase_name(i), phase_sum[0][i] / total[0]);
  if (bf16) {
    double min_cos = 1, max_err = 0;
    for (int b = 0; b < bt.n_seqs; b++) {
      const float *x = means[0] + (size_t)b * a.d, *y = means[1] + (size_t)b * a.d;
      double xy = 0, xx = 0, yy = 0;
      for (int j = 0; j < a.d; j++) {
        xy += (double)x[j] * y[j];
        xx += (double)x[j] * x[j];
        yy += (double)y[j] * y[j];
        max_err = fmax(max_err, fabs((double)x[j] - y[j]));
      }
      min_cos = fmin(min_cos, xy / sqrt(xx * yy));
    }
    printf("esm2_bf16_seconds: %.3f\nesm2_bf16_tokens_per_s: %.1f\n", best[1], ntok / best[1]);
    double slo = speedup[0], shi = speedup[0];
    for (int r = 1; r < a.repeat; r++) {
      slo = fmin(slo, speedup[r]);
      shi = fmax(shi, speedup[r]);
    }
    printf("esm2_bf16_speedup: %.2f\nesm2_bf16_speedup_rounds: %.2f-%.2f\n", median(speedup, a.repeat), slo, shi);
    printf("esm2_bf16_min_cos: %.6f\nesm2_bf16_max_abs_err: %.3g\n", min_cos, max_err);
    for (int i = 0; i < ESM2_PHASE_N; i++)
      printf("esm2_bf16_phase_%s_frac: %.3f\n", esm2_phase_name(i), phase_sum[1][i] / total[1]);
  } else printf("esm2_bf16_tokens_per_s: n/a (%s)\n", a.no_bf16 ? "--no-bf16" : "no AVX512_BF16 on this CPU");
  fflush(stdout);
  if (!a.no_child) {   // what OpenBLAS picks on this CPU without OPENBLAS_CORETYPE
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE %s --gemm-ref-only --threads %d --d %d --ffn %d", self,
             a.threads, a.d, a.ffn);
    FILE *pp = popen(cmd, "r");
    char line[512];
    while (pp && fgets(line, sizeof line, pp)) {
      char *c = strchr(line, ':');
      if (c) printf("%.*s_fast_blas%s", (int)(c - line), line, c);
    }
    if (pp) pclose(pp);
    fflush(stdout);
  }
  for (int pr = 0; pr < 2; pr++) {
    esm2_ws_destroy(&ws[pr]);
    free(means[pr]);
  }
  free(frac);
  free(frac_proj);
  free(speedup);
  free(bt.tokens);
  free(bt.lens);
  free(bt.batch_off);
  esm2_destroy(&m);
  if (!a.no_torch) {
    snprintf(cmd, sizeof cmd, "%s %s --model %s --fasta %s --bench --threads %d --tokens-per-batch %d --repeat %d",
             a.python, a.torch_ref, p, q, a.threads, a.tpb, a.repeat);
    const char *keys[3] = {"torch_tokens_per_s", "torch_last_mean_checksum", "torch_tokens"};
    double vals[3] = {NAN, NAN, NAN};
    if (run_collect(cmd, keys, vals, 3) != 0) {
      fprintf(stderr, "bench_esm2: torch reference failed: %s\n", cmd);
      status = 1;
    }
    if (vals[2] != (double)ntok) fprintf(stderr, "bench_esm2: token counts differ: torch %.0f, C %llu\n", vals[2],
                                         (unsigned long long)ntok);
    printf("torch_tokens_per_s: %.1f\n", vals[0]);
    printf("esm2_speedup_vs_torch: %.2f\n", c_tps / vals[0]);
    printf("esm2_vs_torch_checksum_rel_diff: %.3g\n", fabs(checksum - vals[1]) / fmax(1e-30, fabs(vals[1])));
  }
  if (ps_rm_rf(tmp) != 0) fprintf(stderr, "bench_esm2: could not remove %s\n", tmp);
  return status;
}
