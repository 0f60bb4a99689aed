// send.h — the reader's messages: EmbeddingBatches and EndOfStreams (the one-shot stream of
// main.c and the annotation service's per-proteome streams, service.c).
#ifndef PS_READER_SEND_H
#define PS_READER_SEND_H

#include <stdint.h>

#include "reader.h"
#include "wire.h"

typedef struct send_ctx {
  void *sock;
  const char *run_id, *producer;
  int residue;
  uint32_t layer;
  uint64_t stream_batches;   // announced on every batch (0 = unknown)
  const char *proteome;      // the annotation service's proteome key, or NULL
} send_ctx_t;

// One batch (seq b->seq). Blocks under back-pressure; PS_EINTR on a stop request.
int send_batch(const send_ctx_t *c, const reader_batch_t *b, ps_err_t *err);

typedef struct send_eos_info {
  uint64_t seq;              // the next seq (not consumed)
  uint64_t rows, batches, proteins, skipped, residues;
  const char *reason;        // "done", "signal", "finished", "error: ..."
} send_eos_info_t;

// EndOfStream. eos_wait_ms >= 0: give up after that long under back-pressure (-ETIMEDOUT);
// < 0: wait (a stop request interrupts).
int send_eos(const send_ctx_t *c, const send_eos_info_t *e, int eos_wait_ms, ps_err_t *err);

#endif
