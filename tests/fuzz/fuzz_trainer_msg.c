// fuzz_trainer_msg — arbitrary bytes as what arrives on the trainer's --in, through its intake
// (trainer_wire_take, wire_in.h): a sequence of messages, each a 2-byte little-endian length and
// that many bytes, into two intakes (d_in 8 configured; d_in from the stream, max_dim 64). A batch
// handed to training must have the intake's dims, hold every row it claims (touched here), and
// carry a seq inside its stream; an EndOfStream is counted or dropped with a reason.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wire_in.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void take(trainer_wire_t *w, const Protsae__Envelope *env) {
  reader_batch_t b;
  tw_reject_t why = TW_REJ_N;
  ps_err_t err = {0};
  uint64_t eos = w->eos;
  int rc = trainer_wire_take(w, env, &b, &why, &err);
  if (rc < 0) {
    if (why >= TW_REJ_N || !err.msg[0]) abort();
    return;
  }
  if (rc == 0) {
    if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM && w->eos != eos + 1) abort();
    return;
  }
  if (rc != 1 || (int64_t)b.dim != w->d_in || !b.dim || b.dim > 64) abort();
  if (b.target_dim && (int64_t)b.target_dim != w->d_out) abort();
  if (b.seq >= TW_MAX_SEQ) abort();
  volatile float acc = 0;
  for (size_t i = 0; i < (size_t)b.n_rows * b.dim; i++) acc += b.rows[i];
  for (size_t i = 0; b.target && i < (size_t)b.n_rows * b.target_dim; i++) acc += b.target[i];
  for (uint32_t p = 0; p < b.n_proteins; p++) {
    acc += b.is_val[p];
    if (b.offsets && (b.offsets[p] > b.offsets[p + 1] || b.offsets[p + 1] > b.n_rows)) abort();
  }
  (void)acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  trainer_wire_t w8, w0;
  trainer_wire_init(&w8, 8, 0, 64);
  trainer_wire_init(&w0, 0, 0, 64);
  wire_stats_t st = {0};
  size_t off = 0;
  while (off + 2 <= size) {
    size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
    off += 2;
    if (n > size - off) n = size - off;
    Protsae__Envelope *env = NULL;
    if (wire_decode(data + off, n, &env, &st)) {
      take(&w8, env);
      take(&w0, env);
      wire_free(&env);
    }
    off += n;
  }
  trainer_wire_free(&w8);
  trainer_wire_free(&w0);
  return 0;
}
