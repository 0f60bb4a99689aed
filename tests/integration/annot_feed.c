// annot_feed — a fake reader for the annotation sink's integration test (annotator.sh): streams
// one proteome as EmbeddingBatches (proteome key, FASTA record numbers) to encoders, the way the
// reader's service mode will, and answers the sink's ResendRequests until it acknowledges.
//   annot_feed --out EP --control EP --emb NPY --ids IDS --key NAME.HASH [--batch-rows 128]
//              [--shuffle 0] [--skip-seq S] [--dups 1] [--pace-ms 0] [--timeout-s 120] [--fail MESSAGE]
// Proteins go out in the file's order, or with --shuffle 1 in a shuffled one (as the ESM2 source
// sends by length), batches in reverse order; --dups 1 sends the first and last batch twice; --skip-seq S leaves batch S out until the
// sink asks for it; --fail sends only a failed EndOfStream ("error: MESSAGE"). Prints "acked KEY"
// and exits 0 on the sink's finished ack; exit 1 on a timeout or an error.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "emb.h"
#include "io.h"
#include "wire.h"

typedef struct feed {
  void *out;
  const char *key;
  char **ids;
  float *rows;
  uint64_t *perm;
  size_t n, d, bn, nb;
  uint64_t seq_env;
} feed_t;

static int send_batch(feed_t *f, uint64_t b) {
  size_t lo = b * f->bn, hi = lo + f->bn < f->n ? lo + f->bn : f->n, m = hi - lo;
  Protsae__EmbeddingBatch eb = PROTSAE__EMBEDDING_BATCH__INIT;
  char **ids = malloc(m * sizeof *ids);
  uint64_t *src = malloc(m * sizeof *src);
  float *x = malloc(m * f->d * sizeof *x);
  for (size_t i = 0; i < m; i++) {
    uint64_t p = f->perm[lo + i];
    ids[i] = f->ids[p];
    src[i] = p;
    memcpy(x + i * f->d, f->rows + p * f->d, f->d * sizeof *x);
  }
  eb.n_protein_ids = m, eb.protein_ids = ids;
  eb.level = PROTSAE__LEVEL__LEVEL_PROTEIN;
  eb.dim = (uint32_t)f->d, eb.n_rows = (uint32_t)m;
  eb.rows.data = (uint8_t *)x, eb.rows.len = m * f->d * sizeof *x;
  eb.stream_batches = f->nb;
  eb.proteome = (char *)f->key;
  eb.n_source_index = m, eb.source_index = src;
  Protsae__Envelope env;
  wire_envelope_init(&env, "run", "reader-0", b);
  env.body_case = PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH;
  env.embedding_batch = &eb;
  ps_err_t err = {0};
  int rc = wire_send(f->out, &env, NULL, &err);
  if (rc < 0) fprintf(stderr, "annot_feed: send: %s\n", err.msg);
  free(ids), free(src), free(x);
  return rc;
}

static int send_eos(feed_t *f, const char *reason) {
  Protsae__EndOfStream e = PROTSAE__END_OF_STREAM__INIT;
  e.proteome = (char *)f->key;
  e.batches_sent = reason[0] == 'e' ? 0 : f->nb;
  e.proteins_sent = reason[0] == 'e' ? 0 : f->n;
  e.rows_sent = e.proteins_sent;
  e.residues_sent = 0;
  e.reason = (char *)reason;
  Protsae__Envelope env;
  wire_envelope_init(&env, "run", "reader-0", e.batches_sent);
  env.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
  env.end_of_stream = &e;
  ps_err_t err = {0};
  int rc = wire_send(f->out, &env, NULL, &err);
  if (rc < 0) fprintf(stderr, "annot_feed: send: %s\n", err.msg);
  return rc;
}

static const char *arg(int argc, char **argv, const char *name, const char *def) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name)) return argv[i + 1];
  return def;
}

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  const char *out_ep = arg(argc, argv, "--out", NULL), *ctl_ep = arg(argc, argv, "--control", NULL);
  const char *emb = arg(argc, argv, "--emb", NULL), *ids_path = arg(argc, argv, "--ids", NULL);
  const char *fail = arg(argc, argv, "--fail", NULL);
  feed_t f = {0};
  f.key = arg(argc, argv, "--key", NULL);
  f.bn = (size_t)atol(arg(argc, argv, "--batch-rows", "128"));
  long skip = atol(arg(argc, argv, "--skip-seq", "-1")), pace = atol(arg(argc, argv, "--pace-ms", "0"));
  int dups = atoi(arg(argc, argv, "--dups", "0")), shuffle = atoi(arg(argc, argv, "--shuffle", "0"));
  int64_t timeout_ms = atol(arg(argc, argv, "--timeout-s", "120")) * 1000;
  if (!out_ep || !ctl_ep || !emb || !f.key || f.bn < 1) {
    fprintf(stderr, "usage: annot_feed --out EP --control EP --emb NPY [--ids IDS] --key NAME.HASH [options]\n");
    return 2;
  }
  ps_err_t err = {0};
  emb_source_t *src = NULL;
  emb_source_opts_t eo = {.path = emb, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids_path};
  if (emb_source_open(&src, &eo, &err) < 0) {
    fprintf(stderr, "annot_feed: %s\n", err.msg);
    return 1;
  }
  emb_record_t rec;
  size_t cap = 0;
  int rc;
  while ((rc = emb_source_next(src, &rec, &err)) > 0) {
    if (f.n == cap) {
      cap = cap ? 2 * cap : 1024;
      f.ids = realloc(f.ids, cap * sizeof *f.ids);
      f.rows = realloc(f.rows, cap * rec.dim * sizeof *f.rows);
    }
    f.d = rec.dim;
    f.ids[f.n] = strdup(rec.id);
    memcpy(f.rows + f.n * f.d, rec.rows, f.d * sizeof *f.rows);
    f.n++;
  }
  emb_source_destroy(&src);
  if (rc < 0 || !f.n) {
    fprintf(stderr, "annot_feed: %s\n", rc < 0 ? err.msg : "no records");
    return 1;
  }
  f.nb = (f.n + f.bn - 1) / f.bn;
  f.perm = malloc(f.n * sizeof *f.perm);
  for (size_t i = 0; i < f.n; i++) f.perm[i] = i;
  uint64_t s = 12345;
  for (size_t i = f.n - 1; shuffle && i > 0; i--) {  // a fixed shuffle (the ESM2 source sends by length)
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    size_t j = (size_t)((s >> 33) % (i + 1));
    uint64_t t = f.perm[i];
    f.perm[i] = f.perm[j];
    f.perm[j] = t;
  }
  void *zctx = zmq_ctx_new();
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  void *ctl = NULL;
  if (!(f.out = wire_socket(zctx, ZMQ_PUSH, out_ep, &wo, &err)) ||
      !(ctl = wire_socket(zctx, ZMQ_PULL, ctl_ep, &wo, &err))) {
    fprintf(stderr, "annot_feed: %s\n", err.msg);
    return 1;
  }
  char reason[1024];
  snprintf(reason, sizeof reason, fail ? "error: %s" : "done", fail);
  if (fail) {
    if (send_eos(&f, reason) < 0) return 1;
  } else {
    for (uint64_t k = 0; k < f.nb; k++) {
      uint64_t b = f.nb - 1 - k;
      if ((long)b == skip) continue;
      if (send_batch(&f, b) < 0) return 1;
      if (dups && (b == 0 || b == f.nb - 1) && send_batch(&f, b) < 0) return 1;
      if (pace > 0) nap((int)pace);
    }
    if (send_eos(&f, "done") < 0) return 1;
  }
  int64_t t0 = ps_mono_ms();
  int status = 1;
  while (ps_mono_ms() - t0 < timeout_ms) {
    Protsae__Envelope *env = NULL;
    wire_stats_t st = {0};
    rc = wire_recv(ctl, &env, 200, NULL, &st, &err);
    if (rc < 0) break;
    if (rc == 0) continue;
    const Protsae__ResendRequest *rq = env->body_case == PROTSAE__ENVELOPE__BODY_RESEND_REQUEST ? env->resend_request : NULL;
    if (rq && rq->proteome && !strcmp(rq->proteome, f.key) && !strcmp(rq->producer, "reader-0")) {
      if (rq->finished) {
        printf("acked %s\n", f.key);
        status = 0;
        wire_free(&env);
        break;
      }
      printf("resend %s: %zu seqs%s\n", f.key, rq->n_seqs, rq->n_seqs ? "" : " (the end)");
      fflush(stdout);
      for (size_t i = 0; i < rq->n_seqs; i++)
        if (rq->seqs[i] < f.nb) send_batch(&f, rq->seqs[i]);
      send_eos(&f, reason);
    }
    wire_free(&env);
  }
  if (status) fprintf(stderr, "annot_feed: no ack for %s after %lld ms\n", f.key, (long long)(ps_mono_ms() - t0));
  wire_close(&f.out);
  wire_close(&ctl);
  zmq_ctx_term(zctx);
  for (size_t i = 0; i < f.n; i++) free(f.ids[i]);
  free(f.ids), free(f.rows), free(f.perm);
  return status;
}
