// send.c — see send.h.
#include <stdlib.h>
#include <string.h>

#include "send.h"
#include "signals.h"

int send_batch(const send_ctx_t *c, const reader_batch_t *b, ps_err_t *err) {
  Protsae__Envelope env;
  Protsae__EmbeddingBatch eb;
  wire_envelope_init(&env, c->run_id, c->producer, b->seq);
  protsae__embedding_batch__init(&eb);
  eb.n_protein_ids = b->n_proteins;
  eb.protein_ids = b->ids;
  eb.level = c->residue ? PROTSAE__LEVEL__LEVEL_RESIDUE : PROTSAE__LEVEL__LEVEL_PROTEIN;
  eb.layer = c->layer;
  eb.dim = b->dim;
  eb.n_rows = b->n_rows;
  eb.rows.data = (uint8_t *)b->rows;
  eb.rows.len = (size_t)b->n_rows * b->dim * sizeof(float);
  if (c->residue) {
    eb.n_residue_offsets = b->n_proteins + 1;
    eb.residue_offsets = b->offsets;
  }
  if (b->target_dim) {
    eb.target_dim = b->target_dim;
    eb.target_rows.data = (uint8_t *)b->target;
    eb.target_rows.len = (size_t)b->n_rows * b->target_dim * sizeof(float);
  }
  eb.n_source_index = b->n_proteins;
  eb.source_index = b->src_index;
  eb.n_is_validation = b->n_proteins;
  eb.is_validation = (protobuf_c_boolean *)ps_xmalloc((b->n_proteins ? b->n_proteins : 1) * sizeof(protobuf_c_boolean));
  for (uint32_t i = 0; i < b->n_proteins; i++) eb.is_validation[i] = b->is_val[i];
  eb.epoch = b->epoch;
  eb.first_record = b->first_record;
  eb.stream_batches = c->stream_batches;
  eb.proteome = c->proteome ? (char *)c->proteome : (char *)"";
  env.body_case = PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH;
  env.embedding_batch = &eb;
  int rc = wire_send(c->sock, &env, &ps_stop_flag, err);
  free(eb.is_validation);
  return rc;
}

// EndOfStream carries the seq of the next batch without consuming one, so batch seq numbers stay
// a pure function of the stream position.
int send_eos(const send_ctx_t *c, const send_eos_info_t *e, int eos_wait_ms, ps_err_t *err) {
  Protsae__Envelope env = PROTSAE__ENVELOPE__INIT;
  Protsae__EndOfStream eos = PROTSAE__END_OF_STREAM__INIT;
  eos.rows_sent = e->rows;
  eos.batches_sent = e->batches;
  eos.proteins_sent = e->proteins;
  eos.n_producers = 1;
  eos.reason = (char *)e->reason;
  eos.proteome = c->proteome ? (char *)c->proteome : (char *)"";
  eos.proteins_skipped = e->skipped;
  eos.residues_sent = e->residues;
  wire_envelope_init(&env, c->run_id, c->producer, e->seq);
  env.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
  env.end_of_stream = &eos;
  if (eos_wait_ms >= 0) return wire_send_timeout(c->sock, &env, eos_wait_ms, err);
  return wire_send(c->sock, &env, &ps_stop_flag, err);
}
