// Wire format: envelopes round trip; malformed bytes, foreign major versions, empty or removed
// bodies and inconsistent batches are dropped and counted, never crash; PUSH/PULL over inproc carries
// batches in order with back-pressure; a producer's hang-up wait follows its consumers'
// connections, and a producer process that waits for it loses nothing at exit to a lagging
// consumer (the end-of-stream tail loss of libzmq 4.3, see wire.h).
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

#include "fixture.h"

#include "wire.h"

static uint8_t *pack_batch(uint32_t schema, uint32_t n_rows, uint32_t dim, size_t bytes_override, size_t *len) {
  Protsae__Envelope env;
  Protsae__EmbeddingBatch b = PROTSAE__EMBEDDING_BATCH__INIT;
  wire_envelope_init(&env, "r", "p", 42);
  env.schema_version = schema;
  static char *ids[4] = {"A", "B", "C", "D"};
  float rows[4 * 8];
  for (int i = 0; i < 32; i++) rows[i] = (float)i * 0.5f;
  b.n_protein_ids = n_rows;
  b.protein_ids = ids;
  b.dim = dim;
  b.n_rows = n_rows;
  b.rows.data = (uint8_t *)rows;
  b.rows.len = bytes_override ? bytes_override : (size_t)n_rows * dim * 4;
  env.body_case = PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH;
  env.embedding_batch = &b;
  *len = protsae__envelope__get_packed_size(&env);
  uint8_t *buf = malloc(*len);
  protsae__envelope__pack(&env, buf);
  return buf;
}

static void test_roundtrip(void **state) {
  (void)state;
  size_t len;
  uint8_t *buf = pack_batch(PS_SCHEMA_VERSION, 4, 8, 0, &len);
  wire_stats_t st = {0};
  Protsae__Envelope *env;
  assert_int_equal(wire_decode(buf, len, &env, &st), 1);
  assert_int_equal(env->seq, 42);
  assert_string_equal(env->producer, "p");
  assert_int_equal(env->embedding_batch->n_rows, 4);
  assert_int_equal(env->embedding_batch->dim, 8);
  const float *x = (const float *)env->embedding_batch->rows.data;
  assert_true(x[31] == 15.5f);
  assert_int_equal(st.received, 1);
  wire_free(&env);
  assert_null(env);
  free(buf);
}

static void test_minor_version_accepted_major_dropped(void **state) {
  (void)state;
  size_t len;
  wire_stats_t st = {0};
  Protsae__Envelope *env;
  uint8_t *buf = pack_batch(PS_SCHEMA_MAJOR * 1000 + 999, 2, 8, 0, &len);  // newer minor: fine
  assert_int_equal(wire_decode(buf, len, &env, &st), 1);
  wire_free(&env);
  free(buf);
  buf = pack_batch((PS_SCHEMA_MAJOR + 1) * 1000, 2, 8, 0, &len);
  assert_int_equal(wire_decode(buf, len, &env, &st), 0);
  assert_null(env);
  assert_int_equal(st.dropped_version, 1);
  free(buf);
}

static void test_malformed_dropped(void **state) {
  (void)state;
  wire_stats_t st = {0};
  Protsae__Envelope *env;
  size_t len;
  uint8_t *buf = pack_batch(PS_SCHEMA_VERSION, 4, 8, 0, &len);
  for (size_t cut = 1; cut < len; cut += 7) wire_decode(buf, cut, &env, &st), wire_free(&env);
  assert_true(st.dropped_malformed > 0);
  uint8_t junk[64];
  for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 11);
  uint64_t before = st.dropped_malformed + st.dropped_empty + st.dropped_version;
  assert_int_equal(wire_decode(junk, sizeof junk, &env, &st), 0);
  assert_int_equal(st.dropped_malformed + st.dropped_empty + st.dropped_version, before + 1);
  free(buf);
  // rows bytes that do not match n_rows x dim: dropped as malformed
  buf = pack_batch(PS_SCHEMA_VERSION, 4, 8, 12, &len);
  st.dropped_malformed = 0;
  assert_int_equal(wire_decode(buf, len, &env, &st), 0);
  assert_int_equal(st.dropped_malformed, 1);
  free(buf);
  // an envelope without a body (e.g. a newer oneof member): dropped as empty
  Protsae__Envelope e;
  wire_envelope_init(&e, "r", "p", 1);
  uint8_t small[64];
  len = protsae__envelope__pack(&e, small);
  assert_int_equal(wire_decode(small, len, &env, &st), 0);
  assert_int_equal(st.dropped_empty, 1);
}

// An old peer's status message (Envelope field 13 before schema 1.3, now reserved; the fuzz corpus
// has one: envelope/old_peer_field13) unpacks with no body and is dropped as empty.
static void test_removed_body_dropped(void **state) {
  (void)state;
  static const uint8_t old[] = {0x08, 0xea, 0x07, 0x12, 0x03, 'r', 'u', 'n', 0x1a, 0x08, 'r', 'e', 'a', 'd', 'e',
                                'r', '-', '0', 0x20, 0x03, 0x6a, 0x08, 0x12, 0x06, 'r', 'e', 'a', 'd', 'e', 'r'};
  wire_stats_t st = {0};
  Protsae__Envelope *env = NULL;
  assert_int_equal(wire_decode(old, sizeof old, &env, &st), 0);
  assert_null(env);
  assert_int_equal(st.dropped_empty, 1);
  assert_int_equal(st.dropped_malformed + st.dropped_version + st.received, 0);
}

static void test_check_residue_offsets(void **state) {
  (void)state;
  Protsae__EmbeddingBatch b = PROTSAE__EMBEDDING_BATCH__INIT;
  static char *ids[2] = {"A", "B"};
  float rows[5 * 2] = {0};
  uint32_t off_ok[3] = {0, 2, 5}, off_bad[3] = {0, 3, 2}, off_short[3] = {0, 2, 4};
  b.level = PROTSAE__LEVEL__LEVEL_RESIDUE;
  b.n_protein_ids = 2;
  b.protein_ids = ids;
  b.dim = 2;
  b.n_rows = 5;
  b.rows.data = (uint8_t *)rows;
  b.rows.len = sizeof rows;
  b.n_residue_offsets = 3;
  b.residue_offsets = off_ok;
  ps_err_t err = {0};
  assert_int_equal(wire_check_embedding_batch(&b, &err), 0);
  b.residue_offsets = off_bad;
  assert_int_equal(wire_check_embedding_batch(&b, &err), PS_EPROTO);
  b.residue_offsets = off_short;
  assert_int_equal(wire_check_embedding_batch(&b, &err), PS_EPROTO);
  assert_non_null(strstr(err.msg, "5 rows"));
  b.n_residue_offsets = 2;
  assert_int_equal(wire_check_embedding_batch(&b, &err), PS_EPROTO);
}

static void test_push_pull_inproc(void **state) {
  (void)state;
  void *ctx = zmq_ctx_new();
  ps_err_t err = {0};
  wire_opts_t o = WIRE_OPTS_DEFAULT;
  o.hwm = 2;
  o.linger_ms = 0;
  void *pull = wire_socket(ctx, ZMQ_PULL, "@inproc://t", &o, &err);
  assert_non_null(pull);
  void *push = wire_socket(ctx, ZMQ_PUSH, ">inproc://t", &o, &err);
  assert_non_null(push);
  for (uint64_t i = 0; i < 3; i++) {  // hwm 2 on each side: 3 fit in flight
    Protsae__Envelope env;
    Protsae__EndOfStream e = PROTSAE__END_OF_STREAM__INIT;
    wire_envelope_init(&env, "r", "p", i);
    e.rows_sent = i * 10;
    env.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
    env.end_of_stream = &e;
    assert_int_equal(wire_send(push, &env, NULL, &err), 0);
  }
  wire_stats_t st = {0};
  for (uint64_t i = 0; i < 3; i++) {
    Protsae__Envelope *env;
    // timeout 0 takes what has arrived without waiting (inproc: the first is there, so are the others)
    assert_int_equal(wire_recv(pull, &env, i ? 0 : 1000, NULL, &st, &err), 1);
    assert_int_equal(env->seq, i);
    assert_int_equal(env->end_of_stream->rows_sent, i * 10);
    wire_free(&env);
  }
  Protsae__Envelope *env;
  assert_int_equal(wire_recv(pull, &env, 50, NULL, &st, &err), 0);  // timeout
  assert_int_equal(wire_recv(pull, &env, 0, NULL, &st, &err), 0);   // nothing there
  volatile sig_atomic_t stop = 1;
  assert_int_equal(wire_recv(pull, &env, -1, &stop, &st, &err), PS_EINTR);
  // a bad endpoint is a clear error
  assert_null(wire_socket(ctx, ZMQ_PUSH, ">bogus://x", &o, &err));
  assert_non_null(strstr(err.msg, "bogus://x"));
  wire_close(&push);
  wire_close(&pull);
  zmq_ctx_term(ctx);
}

static int send_padded(void *push, uint64_t seq, size_t pad) {
  Protsae__Envelope env;
  Protsae__EndOfStream e = PROTSAE__END_OF_STREAM__INIT;
  wire_envelope_init(&env, "r", "p", seq);
  char *reason = malloc(pad + 1);  // padding so a few messages fill the kernel's socket buffers
  memset(reason, 'x', pad);
  reason[pad] = 0;
  e.reason = reason;
  e.rows_sent = seq;
  env.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
  env.end_of_stream = &e;
  ps_err_t err = {0};
  int rc = wire_send(push, &env, NULL, &err);
  free(reason);
  return rc;
}

// ipc://<scratch dir>/name (the socket file is removed by rm_endpoint).
static void tmp_endpoint(char *buf, size_t cap, const char *name) {
  int n = snprintf(buf, cap, "ipc://%s/%s", fx_dir, name);
  assert_true(n > 0 && (size_t)n < cap);
}

static void rm_endpoint(const char *name) {
  char path[PATH_MAX];
  unlink(fx_path(path, sizeof path, name));
}

static void test_peers_wait_hangup(void **state) {
  (void)state;
  char ep[128], bind_ep[160], conn_ep[160];
  tmp_endpoint(ep, sizeof ep, "h.ipc");
  snprintf(bind_ep, sizeof bind_ep, "@%s", ep);
  snprintf(conn_ep, sizeof conn_ep, ">%s", ep);
  void *ctx = zmq_ctx_new();
  ps_err_t err = {0};
  wire_opts_t o = WIRE_OPTS_DEFAULT;
  o.linger_ms = 0;
  wire_peers_t *peers = NULL;
  void *push = wire_socket_watched(ctx, ZMQ_PUSH, conn_ep, &o, &peers, &err);
  assert_non_null(push);
  assert_non_null(peers);
  // nobody has connected yet: the wait times out and says so
  assert_int_equal(wire_peers_wait_hangup(peers, 50, &err), -ETIMEDOUT);
  assert_non_null(strstr(err.msg, "no consumer connected"));
  void *pull = wire_socket(ctx, ZMQ_PULL, bind_ep, &o, &err);
  assert_non_null(pull);
  assert_int_equal(send_padded(push, 0, 10), 0);
  wire_stats_t st = {0};
  Protsae__Envelope *env = NULL;
  assert_int_equal(wire_recv(pull, &env, 5000, NULL, &st, &err), 1);
  wire_free(&env);
  assert_int_equal(wire_peers_live(peers), 1);
  // connected: the wait times out while the consumer stays
  assert_int_equal(wire_peers_wait_hangup(peers, 50, &err), -ETIMEDOUT);
  assert_non_null(strstr(err.msg, "still connected"));
  // the consumer hangs up: the wait ends
  wire_close(&pull);
  assert_int_equal(wire_peers_wait_hangup(peers, 5000, &err), 0);
  assert_int_equal(wire_peers_live(peers), 0);
  wire_peers_destroy(&peers);
  assert_null(peers);
  wire_peers_destroy(&peers);  // NULL is fine
  wire_close(&push);
  zmq_ctx_term(ctx);
  rm_endpoint("h.ipc");
}

// A producer process streams to a consumer that lags (small receive HWM, slow reads), sends its
// last message, waits for the hang-up and exits: every message must arrive. Without the wait
// libzmq 4.3 drops what is still in the consumer's kernel buffer when the producer exits.
static void test_producer_exit_loses_nothing(void **state) {
  (void)state;
  enum { N = 120, PAD = 20000 };
  char ep[128], bind_ep[160], conn_ep[160];
  tmp_endpoint(ep, sizeof ep, "x.ipc");
  snprintf(bind_ep, sizeof bind_ep, "@%s", ep);
  snprintf(conn_ep, sizeof conn_ep, ">%s", ep);
  wire_opts_t o = WIRE_OPTS_DEFAULT;
  o.hwm = 4;
  void *ctx = zmq_ctx_new();
  ps_err_t err = {0};
  void *pull = wire_socket(ctx, ZMQ_PULL, bind_ep, &o, &err);
  assert_non_null(pull);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {  // the producer: its own context, exits without returning into cmocka
    void *c2 = zmq_ctx_new();
    wire_peers_t *peers = NULL;
    void *push = wire_socket_watched(c2, ZMQ_PUSH, conn_ep, &o, &peers, &err);
    int bad = !push;
    for (uint64_t i = 0; !bad && i < N; i++) bad = send_padded(push, i, PAD) != 0;
    if (!bad) bad = wire_peers_wait_hangup(peers, 30000, &err) != 0;
    wire_peers_destroy(&peers);
    wire_close(&push);
    zmq_ctx_term(c2);
    _exit(bad);
  }
  wire_stats_t st = {0};
  uint64_t got = 0;
  for (;;) {
    Protsae__Envelope *env = NULL;
    int rc = wire_recv(pull, &env, 10000, NULL, &st, &err);
    if (rc != 1) break;
    assert_int_equal(env->seq, got);
    got++;
    wire_free(&env);
    if (got == N) break;
    if (got > N - 40) usleep(5000);  // lag at the end, when the producer is done
  }
  wire_close(&pull);  // hang up: the producer may go
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  zmq_ctx_term(ctx);
  rm_endpoint("x.ipc");
  if (got != N) fail_msg("received %llu of %d messages", (unsigned long long)got, N);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_minor_version_accepted_major_dropped),
      cmocka_unit_test(test_malformed_dropped),
      cmocka_unit_test(test_removed_body_dropped),
      cmocka_unit_test(test_check_residue_offsets),
      cmocka_unit_test(test_push_pull_inproc),
      cmocka_unit_test(test_peers_wait_hangup),
      cmocka_unit_test(test_producer_exit_loses_nothing),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
