// service.h — the reader's service mode (--watch): the head of the annotation service.
//
// Proteomes arrive in a drop directory (drop.h), or as ProteomeRequests on a REP socket that the
// service writes into the drop directory before answering (so the directory is the one durable
// queue). Each proteome is its own stream: batches with `proteome = NAME.HASH` and seqs from 0,
// then an EndOfStream for the proteome (reason "done", or "error: ..." when its input is bad:
// nothing of it is sent, the sink records the failure). Embeddings come from the native ESM2
// (model loaded once) or, when the proteome has them, from its precomputed file.
//
// Exactly once: a proteome stays in the drop directory until the last stage acknowledges it
// (ResendRequest{proteome, finished} on the control socket); then its key goes into the ledger
// (STATE/ledger/KEY, atomic) and its files to DROP/done/. A key in the ledger is not streamed
// again (the same FASTA dropped twice: moved to done/ as already annotated). After a kill, a
// proteome not yet acknowledged is streamed again from seq 0; batches are a function of the input
// and the settings, so the sink's deduplication makes it exactly once. The sink's re-send
// requests (listed seqs, or the EndOfStream) are served by re-reading those batches (replay.h);
// an EndOfStream not acknowledged within --ack-timeout-ms is sent again.
//
// Back-pressure and memory: one proteome is streamed at a time, at most --max-in-flight
// proteomes wait for their acknowledgement (each keeps 24 bytes a batch for re-sends); the queue
// beyond is the drop directory on disk. The send socket's high-water mark bounds the batches in
// the pipe. Memory: one batch, one ESM2 sort window and workspace, the model.
#ifndef PS_READER_SERVICE_H
#define PS_READER_SERVICE_H

#include <stdint.h>

#include "err.h"
#include "esm2.h"
#include "metrics.h"
#include "reader.h"
#include "wire.h"

typedef struct service_opts {
  const char *drop;             // drop directory
  const char *state;            // state directory (its ledger/); NULL: DROP/.reader
  reader_opts_t base;           // per-proteome template: batch_rows, level, the ESM2 run options
  const esm2_model_t *esm2;     // native ESM2, loaded once (NULL: precomputed embeddings required)
  uint32_t layer;               // stamped on batches
  int64_t interval_ms, settle_ms, missing_after_s, ack_timeout_ms;
  int once;                     // process what is there, wait for the acknowledgements, exit
  int max_in_flight;
  int64_t expect_dim;           // precomputed embeddings must have this dimension (0 = unchecked)
  int64_t pace_ms;              // sleep after each batch (tests)
  int skip_bad;                 // bad FASTA records: 1 skip and count, 0 fail the proteome
  const char *run_id, *producer;
} service_opts_t;

typedef struct service_io {
  void *out;                    // PUSH to the encoders
  wire_peers_t *peers;          // its connections
  void *ctl;                    // PULL: ResendRequests from the sink (required)
  void *req;                    // REP: ProteomeRequests (may be NULL)
  ps_metrics_t *mx;             // may be NULL
  int linger_ms;
} service_io_t;

// Runs until a stop request (or, with once, until every proteome present at the start and since
// is retired). 0, 1 when (once) a proteome failed, <0 on a fault of the service itself.
int service_run(const service_opts_t *o, const service_io_t *io, ps_err_t *err);

#endif
