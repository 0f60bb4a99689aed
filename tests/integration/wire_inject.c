// wire_inject — sends what an attacker or a broken peer would to a stage's socket, for the
// pipeline fault tests: wire_inject ENDPOINT KIND... (ENDPOINT in CZMQ form: @ binds, > connects;
// a PUSH socket). Kinds:
//   garbage          random bytes (not a protobuf Envelope)
//   truncated        a valid InterpretResult envelope cut in half
//   version          an envelope of schema major 99
//   result-unknown   an InterpretResult for unit 999999 (never asked for)
//   result-badpred   an InterpretResult for unit 0 with a prediction of 7 and NaN r
//   result-store     an InterpretResult for another store
//   batch-nan        a FeatureBatch with a NaN activation
//   request-bad      an InterpretRequest whose ids and activations differ in count
//   request-tiny     an InterpretRequest with 2 held-out proteins
//   eos              an EndOfStream (an interpreter exits on it)
//   batch-seq=N      a valid FeatureBatch (4 features, protein P99999) of stream "reader-0", seq N
//   batch-nfeat=N    the same at seq 0 with n_features N
//   eos-relayed=N    an encoder's relayed EndOfStream of stream "reader-0" with source_next_seq N
//   embed-seq=N      a valid EmbeddingBatch (1 row of dim 8, stream of 4 batches) of producer "reader-0", seq N
//   embed-dim=N      the same at seq 0 with one row of dim N
//   oversize=MB      one message of MB MiB (an Envelope whose run_id is that long)
// With @ it waits up to 10 s for a peer first. Exit 0 when everything was handed to the socket.
// tcp:// with CURVE like a stage when PROTSAE_CURVE_SECRET (and optionally PROTSAE_CURVE_PUBLIC,
// PROTSAE_CURVE_SERVER_PUBLIC, PROTSAE_CURVE_ALLOWED) name key files; without them, plain.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "curve.h"
#include "protsae.pb-c.h"
#include "wire.h"

static int send_raw(void *s, const void *b, size_t n) { return zmq_send(s, b, n, 0) < 0 ? -1 : 0; }

static int send_env(void *s, Protsae__Envelope *e, size_t cut) {
  size_t n = protsae__envelope__get_packed_size(e);
  uint8_t *b = malloc(n);
  protsae__envelope__pack(e, b);
  int rc = send_raw(s, b, cut ? n / 2 : n);
  free(b);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: wire_inject ENDPOINT KIND...\n");
    return 2;
  }
  void *ctx = zmq_ctx_new();
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  wo.linger_ms = 5000;
  wire_peers_t *peers = NULL;
  ps_err_t err = {0};
  if (curve_configure(getenv("PROTSAE_CURVE_SECRET"), getenv("PROTSAE_CURVE_PUBLIC"),
                      getenv("PROTSAE_CURVE_SERVER_PUBLIC"), getenv("PROTSAE_CURVE_ALLOWED"), &err) < 0) {
    fprintf(stderr, "wire_inject: %s\n", err.msg);
    return 1;
  }
  void *s = wire_socket_watched(ctx, ZMQ_PUSH, argv[1], &wo, &peers, &err);
  if (!s) {
    fprintf(stderr, "wire_inject: %s\n", err.msg);
    return 1;
  }
  for (int i = 0; i < 100 && wire_peers_live(peers) == 0; i++) usleep(100 * 1000);
  int rc = 0;
  for (int a = 2; a < argc && rc == 0; a++) {
    const char *k = argv[a];
    Protsae__Envelope env;
    wire_envelope_init(&env, "features", "injector", (uint64_t)a);
    Protsae__InterpretResult r = PROTSAE__INTERPRET_RESULT__INIT;
    Protsae__InterpretRequest q = PROTSAE__INTERPRET_REQUEST__INIT;
    Protsae__FeatureBatch fb = PROTSAE__FEATURE_BATCH__INIT;
    Protsae__EndOfStream eos = PROTSAE__END_OF_STREAM__INIT;
    double preds[3] = {0.1, 7, 0.3};
    r.store = "features";
    r.unit = 0;
    r.explanation = "forged";
    r.n_predictions = 3;
    r.predictions = preds;
    r.scored = 1;
    r.r = 0.5;
    r.p = 0.1;
    r.mode = "offline";
    env.body_case = PROTSAE__ENVELOPE__BODY_INTERPRET_RESULT;
    env.interpret_result = &r;
    if (!strcmp(k, "garbage")) {
      uint8_t b[300];
      for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)(i * 131 + 7);
      rc = send_raw(s, b, sizeof b);
    } else if (!strcmp(k, "truncated")) {
      rc = send_env(s, &env, 1);
    } else if (!strcmp(k, "version")) {
      env.schema_version = 99000;
      rc = send_env(s, &env, 0);
    } else if (!strcmp(k, "result-unknown")) {
      r.unit = 999999;
      preds[1] = 0.2;
      rc = send_env(s, &env, 0);
    } else if (!strcmp(k, "result-badpred")) {
      r.r = 0.0 / 0.0;
      rc = send_env(s, &env, 0);
    } else if (!strcmp(k, "result-store")) {
      r.store = "someone-else";
      preds[1] = 0.2;
      rc = send_env(s, &env, 0);
    } else if (!strcmp(k, "batch-nan")) {
      char *ids[1] = {"P99999"};
      uint32_t indptr[2] = {0, 1}, idx[1] = {0};
      float val[1] = {0.0f / 0.0f};
      fb.n_protein_ids = 1;
      fb.protein_ids = ids;
      fb.n_rows = 1;
      fb.n_features = 4;
      fb.n_indptr = 2;
      fb.indptr = indptr;
      fb.n_indices = 1;
      fb.indices = idx;
      fb.n_values = 1;
      fb.values = val;
      fb.source_producer = "injector";
      fb.source_seq = 0;
      env.body_case = PROTSAE__ENVELOPE__BODY_FEATURE_BATCH;
      env.feature_batch = &fb;
      rc = send_env(s, &env, 0);
    } else if (!strcmp(k, "request-bad") || !strcmp(k, "request-tiny")) {
      char *ids[4] = {"P04637", "P38398", "P00533", "P01116"};
      float act[4] = {1, 0.5f, 0.2f, 0};
      q.unit = 5;
      q.store = "features";
      q.n_shown_ids = 1;
      q.shown_ids = ids;
      q.n_shown_act = !strcmp(k, "request-bad") ? 0 : 1;
      q.shown_act = act;
      q.n_held_ids = 2;
      q.held_ids = ids + 1;
      q.n_held_act = 2;
      q.held_act = act + 1;
      env.body_case = PROTSAE__ENVELOPE__BODY_INTERPRET_REQUEST;
      env.interpret_request = &q;
      rc = send_env(s, &env, 0);
    } else if (!strncmp(k, "batch-seq=", 10) || !strncmp(k, "batch-nfeat=", 12)) {
      char *ids[1] = {"P99999"};
      uint32_t indptr[2] = {0, 1}, idx[1] = {1};
      float val[1] = {0.5f};
      int is_seq = k[6] == 's';
      unsigned long long n = strtoull(strchr(k, '=') + 1, NULL, 0);
      fb.n_protein_ids = 1;
      fb.protein_ids = ids;
      fb.n_rows = 1;
      fb.n_features = is_seq ? 4 : (uint32_t)n;
      fb.n_indptr = 2;
      fb.indptr = indptr;
      fb.n_indices = 1;
      fb.indices = idx;
      fb.n_values = 1;
      fb.values = val;
      fb.source_producer = "reader-0";
      fb.source_seq = is_seq ? n : 0;
      env.body_case = PROTSAE__ENVELOPE__BODY_FEATURE_BATCH;
      env.feature_batch = &fb;
      rc = send_env(s, &env, 0);
    } else if (!strncmp(k, "eos-relayed=", 12)) {
      eos.reason = "done";
      eos.source_producer = "reader-0";
      eos.source_next_seq = strtoull(k + 12, NULL, 0);
      env.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
      env.end_of_stream = &eos;
      rc = send_env(s, &env, 0);
    } else if (!strncmp(k, "embed-seq=", 10) || !strncmp(k, "embed-dim=", 10)) {
      Protsae__EmbeddingBatch eb = PROTSAE__EMBEDDING_BATCH__INIT;
      char *ids[1] = {"P99999"};
      unsigned long long n = strtoull(k + 10, NULL, 0);
      uint32_t dim = k[6] == 'd' ? (uint32_t)n : 8;
      float *row = calloc(dim ? dim : 1, sizeof(float));
      eb.n_protein_ids = 1;
      eb.protein_ids = ids;
      eb.dim = dim;
      eb.n_rows = 1;
      eb.rows.data = (uint8_t *)row;
      eb.rows.len = (size_t)dim * sizeof(float);
      eb.stream_batches = 4;
      env.producer = "reader-0";
      env.seq = k[6] == 's' ? n : 0;
      env.body_case = PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH;
      env.embedding_batch = &eb;
      rc = send_env(s, &env, 0);
      free(row);
    } else if (!strncmp(k, "oversize=", 9)) {
      size_t n = (size_t)strtoull(k + 9, NULL, 0) << 20;
      char *big = malloc(n + 1);
      memset(big, 'x', n);
      big[n] = 0;
      env.run_id = big;
      rc = send_env(s, &env, 0);
      free(big);
    } else if (!strcmp(k, "eos")) {
      eos.reason = "done";
      env.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
      env.end_of_stream = &eos;
      rc = send_env(s, &env, 0);
    } else {
      fprintf(stderr, "wire_inject: unknown kind %s\n", k);
      rc = 2;
    }
  }
  usleep(300 * 1000);
  wire_peers_destroy(&peers);
  zmq_close(s);
  zmq_ctx_term(ctx);
  return rc ? 1 : 0;
}
