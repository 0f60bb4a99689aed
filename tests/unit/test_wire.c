// Wire format: envelopes round trip; malformed bytes, foreign major versions, empty bodies and
// inconsistent batches are dropped and counted, never crash; PUSH/PULL over inproc carries
// batches in order with back-pressure.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>

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
    Protsae__Heartbeat h = PROTSAE__HEARTBEAT__INIT;
    wire_envelope_init(&env, "r", "p", i);
    h.rows_done = i * 10;
    env.body_case = PROTSAE__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &h;
    assert_int_equal(wire_send(push, &env, NULL, &err), 0);
  }
  wire_stats_t st = {0};
  for (uint64_t i = 0; i < 3; i++) {
    Protsae__Envelope *env;
    assert_int_equal(wire_recv(pull, &env, 1000, NULL, &st, &err), 1);
    assert_int_equal(env->seq, i);
    assert_int_equal(env->heartbeat->rows_done, i * 10);
    wire_free(&env);
  }
  Protsae__Envelope *env;
  assert_int_equal(wire_recv(pull, &env, 50, NULL, &st, &err), 0);  // timeout
  volatile sig_atomic_t stop = 1;
  assert_int_equal(wire_recv(pull, &env, -1, &stop, &st, &err), PS_EINTR);
  // a bad endpoint is a clear error
  assert_null(wire_socket(ctx, ZMQ_PUSH, ">bogus://x", &o, &err));
  assert_non_null(strstr(err.msg, "bogus://x"));
  wire_close(&push);
  wire_close(&pull);
  zmq_ctx_term(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_minor_version_accepted_major_dropped),
      cmocka_unit_test(test_malformed_dropped),
      cmocka_unit_test(test_check_residue_offsets),
      cmocka_unit_test(test_push_pull_inproc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
