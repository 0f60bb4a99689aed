// wire_in.h — the trainer's intake of a reader stream from the wire: every received envelope is
// checked against the stream's bounds before it reaches the training loop (DESIGN.md: nothing off
// the wire is trusted). A batch is dropped and counted when its seq is outside the stream
// (>= its announced stream_batches, or >= 2^32), when its dimension is not the trainer's d_in
// (configured, or the first accepted batch's, at most max_dim), or its target dimension not d_out
// (likewise). An EndOfStream whose next seq is below a batch already taken from that producer,
// or over its announced count, is dropped and counted too (it would end training early).
#ifndef PS_TRAINER_WIRE_IN_H
#define PS_TRAINER_WIRE_IN_H

#include <stdint.h>

#include "err.h"
#include "metrics.h"
#include "protsae.pb-c.h"
#include "reader.h"
#include "strmap.h"
#include "trainer.h"
#include "wire.h"

typedef enum {
  TW_REJ_MALFORMED = 0,  // inconsistent batch (sizes), no producer
  TW_REJ_SEQ_RANGE,      // seq outside the stream (announced count, 2^32)
  TW_REJ_DIM,            // dim / target dim not the trainer's, or over max_dim
  TW_REJ_EOS,            // EndOfStream inconsistent with the batches taken
  TW_REJ_N
} tw_reject_t;
const char *tw_reject_name(tw_reject_t r);  // "malformed", "seq_out_of_range", "dim", "eos_inconsistent"
#define TW_MAX_SEQ ((uint64_t)1 << 32)

typedef struct trainer_wire {
  int64_t d_in, d_out;   // expected dims; 0 = the first accepted batch's (set then)
  int64_t max_dim;       // bound on a dim taken from the stream (0 = 8192)
  uint64_t eos;          // EndOfStreams accepted
  uint64_t rejected_by[TW_REJ_N];
  // private
  float *rows, *target;
  size_t rows_cap, target_cap;
  uint8_t *is_val;
  uint32_t *offsets;
  strmap_t *seen;        // producer -> highest seq taken + 1
  int have_target;       // the stream's target presence, once known (-1 unknown)
} trainer_wire_t;

void trainer_wire_init(trainer_wire_t *w, int64_t d_in, int64_t d_out, int64_t max_dim);
void trainer_wire_free(trainer_wire_t *w);
// One received envelope. 1 = *b filled (its arrays borrowed from w and env until the next call
// or until env is freed), 0 = no batch (an EndOfStream counted in w->eos, a heartbeat, another
// body), <0 = dropped: *why says why (counted in rejected_by), err names producer and seq.
int trainer_wire_take(trainer_wire_t *w, const Protsae__Envelope *env, reader_batch_t *b, tw_reject_t *why,
                      ps_err_t *err);

// ---- the wire source of trainer_run ----------------------------------------------------------------
// EmbeddingBatches pulled from an endpoint, each checked by trainer_wire_take before it is used
// (dropped and counted per reason as protsae_messages_rejected_<reason>_total); on resume the
// batches before the checkpoint's position are skipped, and a stream that continues elsewhere is
// an error naming the position to restart the reader from.
typedef struct wire_src_opts {
  const char *endpoint;      // @ binds, > connects
  int producers;             // readers feeding the stream (each ends with an EndOfStream)
  int64_t timeout_ms;        // give up after this long without a message (0 = wait)
  int64_t d_in, d_out;       // expected dimensions (0 = the first batch's, up to max_dim)
  int64_t max_dim, max_batch_rows;
} wire_src_opts_t;

typedef struct wire_src {
  void *zctx, *sock;
  int producers;
  int64_t timeout_ms;
  Protsae__Envelope *env;
  trainer_wire_t w;          // the checks and the batch buffers (wire_in.h)
  int have_seek;
  reader_pos_t seek;
  wire_stats_t st;
  ps_metrics_t *mx;          // borrowed
  int m_rej_by[TW_REJ_N], m_wdrop;
  uint64_t logged[TW_REJ_N];
} wire_src_t;

// Check the bounds, register the rejection counters on mx, open the socket and point h at it.
int wire_src_open(wire_src_t *s, const wire_src_opts_t *o, ps_metrics_t *mx, trainer_hooks_t *h, ps_err_t *err);
void wire_src_close(wire_src_t *s);

#endif
