// bench_encoder — the encoder stage's core (encoder_encode: SAE encode + CSR FeatureBatch) against
// the machine's limit, cblas_sgemm on the same shape (batch x d_in times d_in x d_sae), measured in
// the same process; then the scorer's ingest rate (scorer_apply + commits into a RocksDB store) on
// the codes the encoder produced, against what two encoders produce.
// Shapes: 480 x 20000 (ESM2-35M, the reference study's dictionary) and 320 x 10240 (ESM2-8M); TopK.
// Prints key: value lines: encoder_rows_per_s, sgemm_bound_rows_per_s, encoder_fraction_of_sgemm
// (480 x 20000), the same with a _320x10240 suffix, scorer_ingest_rows_per_s, scorer_vs_two_encoders.
// Then the sharded store (protsae-scorer --shards N): the same batches cut per shard (split.h) and
// applied by N scorers at once, one thread and one RocksDB store each (scorer_shards: the counts
// measured; store_ingest_rows_per_s_N: rows / wall time of all N), the front's cut + pack of every
// batch alone (store_front_rows_per_s), and the encoder on one core (one top-k thread, OpenBLAS
// on one thread: encoder_rows_per_s_one_core), as each of four encoders on a four-core machine
// runs. store_vs_four_encoders = min(front, best N) / (4 x encoder_rows_per_s_one_core): >= 1 =
// the store keeps up with four encoders. The best N is taken among counts up to this machine's
// cores (more shards than cores share them: measured, printed, not taken);
// store_vs_four_two_core_encoders divides by four of the two-thread encoders instead.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include "config.h"
#include "encoder.h"
#include "scorer.h"
#include "split.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    {"batch", "1024", "rows per batch (the reader's default)"},
    {"k", "64", "TopK k (the reference study's protein-level k)"},
    {"threads", "2", "encoder top-k threads"},
    {"repeat", "7", "timed repetitions (median)"},
    {"scorer-batches", "64", "batches ingested by the scorer"},
    {"tmpdir", "/tmp", "where the scorer's store goes"},
    {"shards", "1,2,4", "shard counts of the sharded store measured"},
    {NULL, NULL, NULL},
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmpd);
  return v[n / 2];
}
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float randn(void) {
  double u = 0;
  for (int i = 0; i < 12; i++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    u += (double)(rng >> 11) * 0x1.0p-53;
  }
  return (float)(u - 6.0);
}

// Save a random TopK SAE to dir (the encoder loads checkpoints).
static int make_sae(const char *dir, int64_t d_in, int64_t d_sae, int k, ps_err_t *err) {
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = SAE_TOPK;
  c.d_in = c.d_out = d_in;
  c.d_sae = d_sae;
  c.k = k;
  sae_t *s = NULL;
  int rc = sae_new(&s, &c, err);
  if (rc < 0) return rc;
  float sc = 1.0f / sqrtf((float)d_in);
  for (int64_t i = 0; i < d_in * d_sae; i++) s->W_encT[i] = randn() * sc;
  for (int64_t i = 0; i < d_sae; i++) s->b_enc[i] = -0.01f * (float)(i % 7);
  memcpy(s->W_dec, s->W_encT, (size_t)(d_in * d_sae) * sizeof(float));
  mkdir(dir, 0755);
  rc = sae_save(s, dir, 1.0f, 1.0f, err);
  sae_free(&s);
  return rc;
}

typedef struct shape_result {
  double enc_rows_s, sgemm_rows_s;
} shape_result_t;

static int run_shape(int64_t d_in, int64_t d_sae, int k, int batch, int threads, int repeat, const char *tmp,
                     shape_result_t *res, encoder_t **keep, float **keep_x, ps_err_t *err) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/bench-encoder-%d-%lld-%lld", tmp, (int)getpid(), (long long)d_in, (long long)d_sae);
  int rc = make_sae(dir, d_in, d_sae, k, err);
  if (rc < 0) return rc;
  encoder_opts_t eo = {0};
  eo.sae_dir = dir;
  eo.threads = threads;
  eo.chunk_rows = batch;
  encoder_t *enc = NULL;
  if ((rc = encoder_new(&enc, &eo, err)) < 0) return rc;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "bench_encoder: could not remove %s\n", dir);
  float *x = ps_xmalloc((size_t)batch * d_in * sizeof(float));
  for (int64_t i = 0; i < (int64_t)batch * d_in; i++) x[i] = randn();
  char **ids = ps_xmalloc((size_t)batch * sizeof(char *));
  for (int i = 0; i < batch; i++) {
    ids[i] = ps_xmalloc(16);
    snprintf(ids[i], 16, "P%06d", i);
  }
  Protsae__EmbeddingBatch eb = PROTSAE__EMBEDDING_BATCH__INIT;
  eb.n_protein_ids = (size_t)batch;
  eb.protein_ids = ids;
  eb.dim = (uint32_t)d_in;
  eb.n_rows = (uint32_t)batch;
  eb.rows.data = (uint8_t *)x;
  eb.rows.len = (size_t)batch * d_in * sizeof(float);
  Protsae__FeatureBatch fb;
  double *t = ps_xmalloc((size_t)(repeat + 1) * sizeof *t);
  if ((rc = encoder_encode(enc, &eb, &fb, err)) < 0) return rc;  // warm-up
  const sae_t *s = encoder_sae(enc);
  float *y = ps_xmalloc((size_t)batch * d_sae * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, (int)d_sae, (int)d_in, 1.0f, x, (int)d_in, s->W_encT,
              (int)d_in, 0.0f, y, (int)d_sae);
  // encoder and reference alternate, so drifts of a shared machine (frequency, neighbours) hit both
  double *ts = ps_xmalloc((size_t)(repeat + 1) * sizeof *ts);
  for (int r = 0; r < repeat; r++) {
    double t0 = now();
    if ((rc = encoder_encode(enc, &eb, &fb, err)) < 0) return rc;
    t[r] = now() - t0;
    t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, (int)d_sae, (int)d_in, 1.0f, x, (int)d_in, s->W_encT,
                (int)d_in, 0.0f, y, (int)d_sae);
    ts[r] = now() - t0;
  }
  res->enc_rows_s = batch / median(t, repeat);
  res->sgemm_rows_s = batch / median(ts, repeat);
  free(ts);
  free(y);
  free(t);
  for (int i = 0; i < batch; i++) free(ids[i]);
  free(ids);
  if (keep) {
    *keep = enc;
    *keep_x = x;
  } else {
    encoder_destroy(&enc);
    free(x);
  }
  return 0;
}

// ---- the store's ingest ------------------------------------------------------------------------------
typedef struct shard_job {
  const char *db;
  uint32_t k, n;
  Protsae__FeatureBatch **parts;  // parts[q * n + k]: batch q's part for this shard
  int64_t n_batches;
  int rc;
  char msg[256];
} shard_job_t;

static void *shard_run(void *arg) {
  shard_job_t *j = arg;
  ps_err_t err = {0};
  scorer_t *sc = NULL;
  scorer_opts_t so = {j->db, 20, 0, 0, j->n > 1 ? j->k : 0, j->n > 1 ? j->n : 0, 8};
  j->rc = scorer_open(&sc, &so, &err);
  for (int64_t q = 0; q < j->n_batches && j->rc == 0; q++)
    if (scorer_apply(sc, j->parts[q * j->n + j->k], &err) != 1 ||
        (scorer_counts(sc)->pending >= 16 && scorer_commit(sc, &err) < 0))
      j->rc = -1;
  if (j->rc == 0 && scorer_commit(sc, &err) < 0) j->rc = -1;
  if (j->rc) snprintf(j->msg, sizeof j->msg, "shard %u of %u: %.200s", j->k, j->n, err.msg);
  scorer_close(&sc);
  return NULL;
}

// A deep copy of a cut part's entries (the cutter reuses its buffers); other fields borrowed.
static Protsae__FeatureBatch *part_copy(const Protsae__FeatureBatch *p) {
  Protsae__FeatureBatch *c = ps_xmalloc(sizeof *c);
  *c = *p;
  c->indptr = ps_xmalloc(p->n_indptr * sizeof *c->indptr);
  memcpy(c->indptr, p->indptr, p->n_indptr * sizeof *c->indptr);
  c->indices = ps_xmalloc((p->n_indices ? p->n_indices : 1) * sizeof *c->indices);
  memcpy(c->indices, p->indices, p->n_indices * sizeof *c->indices);
  c->values = ps_xmalloc((p->n_values ? p->n_values : 1) * sizeof *c->values);
  memcpy(c->values, p->values, p->n_values * sizeof *c->values);
  return c;
}
static void part_free(Protsae__FeatureBatch *c) {
  free(c->indptr), free(c->indices), free(c->values), free(c);
}

// Rows per second of n scorers (n = 1: one unsharded scorer) applying their parts of n_batches
// batches at once, one thread and one store each (wall time, the cut made beforehand), or < 0.
static double ingest_shards(Protsae__FeatureBatch *const *fbq, int64_t n_batches, uint32_t n, const char *tmp) {
  fb_split_t *sp = fb_split_new(n);
  Protsae__FeatureBatch **cut = ps_xcalloc(n, sizeof *cut);
  Protsae__FeatureBatch **parts = ps_xcalloc((size_t)n_batches * n, sizeof *parts);
  shard_job_t *jobs = ps_xcalloc(n, sizeof *jobs);
  pthread_t *th = ps_xcalloc(n, sizeof *th);
  char (*dbs)[512] = ps_xcalloc(n, sizeof *dbs);
  ps_err_t err = {0};
  double rate = -1;
  uint64_t rows = 0;
  for (int64_t q = 0; q < n_batches; q++) {
    if (fb_split_run(sp, fbq[q], cut, &err) < 0) {
      fprintf(stderr, "bench_encoder: split: %s\n", err.msg);
      goto out;
    }
    for (uint32_t k = 0; k < n; k++) parts[q * n + k] = part_copy(cut[k]);
    rows += fbq[q]->n_rows;
  }
  double t0 = now();
  for (uint32_t k = 0; k < n; k++) {
    snprintf(dbs[k], sizeof dbs[k], "%s/bench-store-%d-%u-%u", tmp, (int)getpid(), n, k);
    jobs[k] = (shard_job_t){dbs[k], k, n, parts, n_batches, 0, ""};
    pthread_create(&th[k], NULL, shard_run, &jobs[k]);
  }
  int bad = 0;
  for (uint32_t k = 0; k < n; k++) {
    pthread_join(th[k], NULL);
    if (jobs[k].rc) fprintf(stderr, "bench_encoder: %s\n", jobs[k].msg), bad = 1;
  }
  if (!bad) rate = (double)rows / (now() - t0);
  for (uint32_t k = 0; k < n; k++) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dbs[k]);
    if (system(cmd) != 0) fprintf(stderr, "bench_encoder: could not remove %s\n", dbs[k]);
  }
out:
  for (size_t i = 0; i < (size_t)n_batches * n; i++)
    if (parts[i]) part_free(parts[i]);
  fb_split_destroy(&sp);
  free(cut), free(parts), free(jobs), free(th), free(dbs);
  return rate;
}

// Rows per second of the front's work on each batch: cut into n parts, each packed for its socket.
static double front_rate(Protsae__FeatureBatch *const *fbq, int64_t n_batches, uint32_t n) {
  fb_split_t *sp = fb_split_new(n);
  Protsae__FeatureBatch **parts = ps_xcalloc(n, sizeof *parts);
  ps_err_t err = {0};
  uint8_t *buf = NULL;
  size_t cap = 0, bytes = 0;
  uint64_t rows = 0;
  double t0 = now();
  for (int64_t q = 0; q < n_batches; q++) {
    if (fb_split_run(sp, fbq[q], parts, &err) < 0) return -1;
    for (uint32_t k = 0; k < n; k++) {
      Protsae__Envelope env;
      wire_envelope_init(&env, "bench", "front", (uint64_t)q);
      env.body_case = PROTSAE__ENVELOPE__BODY_FEATURE_BATCH;
      env.feature_batch = parts[k];
      size_t need = protsae__envelope__get_packed_size(&env);
      if (need > cap) buf = ps_xrealloc(buf, cap = need);
      bytes += protsae__envelope__pack(&env, buf);
    }
    rows += fbq[q]->n_rows;
  }
  double rate = (double)rows / (now() - t0);
  free(buf);
  free(parts);
  fb_split_destroy(&sp);
  return bytes ? rate : -1;
}

int main(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  if (ps_config_parse(&cfg, table, argc, argv, &err) < 0) {
    fprintf(stderr, "bench_encoder: %s\n", err.msg);
    return 2;
  }
  if (ps_config_help_requested(cfg)) {
    ps_config_usage(table, "bench_encoder", stdout);
    return 0;
  }
  int64_t batch, k, threads, repeat, sbatches;
  if (ps_config_i64(cfg, "batch", &batch, &err) < 0 || ps_config_i64(cfg, "k", &k, &err) < 0 ||
      ps_config_i64(cfg, "threads", &threads, &err) < 0 || ps_config_i64(cfg, "repeat", &repeat, &err) < 0 ||
      ps_config_i64(cfg, "scorer-batches", &sbatches, &err) < 0) {
    fprintf(stderr, "bench_encoder: %s\n", err.msg);
    return 2;
  }
  const char *tmp = ps_config_str(cfg, "tmpdir");
  printf("batch: %lld\nk: %lld\nthreads: %lld\nopenblas: %s\n", (long long)batch, (long long)k, (long long)threads,
         openblas_get_config());
  shape_result_t a, b;
  encoder_t *enc = NULL;
  float *x = NULL;
  if (run_shape(480, 20000, (int)k, (int)batch, (int)threads, (int)repeat, tmp, &a, &enc, &x, &err) < 0 ||
      run_shape(320, 10240, (int)(k / 2 > 0 ? k / 2 : 1), (int)batch, (int)threads, (int)repeat, tmp, &b, NULL, NULL, &err) < 0) {
    fprintf(stderr, "bench_encoder: %s\n", err.msg);
    return 1;
  }
  printf("encoder_rows_per_s: %.0f\nsgemm_bound_rows_per_s: %.0f\nencoder_fraction_of_sgemm: %.3f\n", a.enc_rows_s,
         a.sgemm_rows_s, a.enc_rows_s / a.sgemm_rows_s);
  // the encoder as one of four on a four-core machine runs: one core
  shape_result_t one;
  int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  int one_rc = run_shape(480, 20000, (int)k, (int)batch, 1, (int)repeat, tmp, &one, NULL, NULL, &err);
  openblas_set_num_threads(blas_threads);
  if (one_rc < 0) {
    fprintf(stderr, "bench_encoder: %s\n", err.msg);
    return 1;
  }
  printf("encoder_rows_per_s_one_core: %.0f\nsgemm_bound_rows_per_s_one_core: %.0f\n", one.enc_rows_s, one.sgemm_rows_s);
  printf("encoder_rows_per_s_320x10240: %.0f\nsgemm_bound_rows_per_s_320x10240: %.0f\n"
         "encoder_fraction_of_sgemm_320x10240: %.3f\n",
         b.enc_rows_s, b.sgemm_rows_s, b.enc_rows_s / b.sgemm_rows_s);

  // the store's ingest: the 480 x 20000 codes as sbatches batches of fresh protein ids, each value
  // scaled by a per-entry factor in [0.5, 1.5) drawn for its batch (identical batches would tie with
  // the top lists at every batch: not a stream), default commit interval (16)
  char **ids = ps_xmalloc((size_t)batch * sizeof(char *));
  for (int i = 0; i < batch; i++) ids[i] = ps_xmalloc(32), snprintf(ids[i], 32, "P%06d", i);
  Protsae__EmbeddingBatch eb = PROTSAE__EMBEDDING_BATCH__INIT;
  eb.n_protein_ids = (size_t)batch;
  eb.protein_ids = ids;
  eb.dim = 480;
  eb.n_rows = (uint32_t)batch;
  eb.rows.data = (uint8_t *)x;
  eb.rows.len = (size_t)batch * 480 * sizeof(float);
  Protsae__FeatureBatch fb;
  if (encoder_encode(enc, &eb, &fb, &err) < 0) {
    fprintf(stderr, "bench_encoder: %s\n", err.msg);
    return 1;
  }
  char ***bids = ps_xmalloc((size_t)sbatches * sizeof *bids);
  Protsae__FeatureBatch **fbq = ps_xmalloc((size_t)sbatches * sizeof *fbq);
  uint64_t jit = 0x9e3779b97f4a7c15ull;
  for (int64_t q = 0; q < sbatches; q++) {
    bids[q] = ps_xmalloc((size_t)batch * sizeof **bids);
    for (int i = 0; i < batch; i++) {
      bids[q][i] = ps_xmalloc(32);
      snprintf(bids[q][i], 32, "P%05lld_%06d", (long long)q, i);
    }
    fbq[q] = ps_xmalloc(sizeof **fbq);
    *fbq[q] = fb;
    fbq[q]->protein_ids = bids[q];
    fbq[q]->source_producer = "bench";
    fbq[q]->source_seq = (uint64_t)q;
    fbq[q]->values = ps_xmalloc((fb.n_values ? fb.n_values : 1) * sizeof(float));
    for (size_t j = 0; j < fb.n_values; j++) {
      jit ^= jit << 13, jit ^= jit >> 7, jit ^= jit << 17;
      fbq[q]->values[j] = fb.values[j] * (0.5f + (float)(jit >> 40) / (float)(1 << 24));
    }
  }
  double ingest = ingest_shards(fbq, sbatches, 1, tmp);
  if (ingest < 0) return 1;
  printf("scorer_ingest_rows_per_s: %.0f\nscorer_nnz_per_row: %.1f\nscorer_vs_two_encoders: %.2f\n", ingest,
         (double)fb.n_values / (double)fb.n_rows, ingest / (2 * a.enc_rows_s));

  // the sharded store
  const char *shard_list = ps_config_str(cfg, "shards");
  printf("scorer_shards: %s\n", shard_list);
  double best = 0;
  uint32_t best_n = 1;
  for (const char *c = shard_list; *c;) {
    char *end = NULL;
    long n = strtol(c, &end, 10);
    if (end == c || n < 1 || n > 64) {
      fprintf(stderr, "bench_encoder: --shards: want counts 1..64, comma-separated: %s\n", shard_list);
      return 2;
    }
    double r = ingest_shards(fbq, sbatches, (uint32_t)n, tmp);
    if (r < 0) return 1;
    printf("store_ingest_rows_per_s_%ld: %.0f\n", n, r);
    if (r > best && n <= sysconf(_SC_NPROCESSORS_ONLN)) best = r, best_n = (uint32_t)n;
    c = *end == ',' ? end + 1 : end;
  }
  double fr = front_rate(fbq, sbatches, best_n);
  double store = fr < best ? fr : best;
  printf("store_front_rows_per_s: %.0f\nstore_best_shards: %u\nstore_ingest_rows_per_s: %.0f\n"
         "store_vs_four_encoders: %.2f\nstore_vs_four_two_core_encoders: %.2f\n", fr, best_n, store,
         store / (4 * one.enc_rows_s), store / (4 * a.enc_rows_s));
  for (int64_t q = 0; q < sbatches; q++) {
    for (int i = 0; i < batch; i++) free(bids[q][i]);
    free(bids[q]);
    free(fbq[q]->values);
    free(fbq[q]);
  }
  free(bids);
  free(fbq);
  for (int i = 0; i < batch; i++) free(ids[i]);
  free(ids);
  free(x);
  encoder_destroy(&enc);
  ps_config_destroy(&cfg);
  return 0;
}
