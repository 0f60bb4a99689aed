// wire_in.c — see wire_in.h.
#include "wire_in.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "signals.h"
#include "wire.h"

static const char *const names[TW_REJ_N] = {"malformed", "seq_out_of_range", "dim", "eos_inconsistent"};
const char *tw_reject_name(tw_reject_t r) { return (unsigned)r < TW_REJ_N ? names[r] : "unknown"; }

void trainer_wire_init(trainer_wire_t *w, int64_t d_in, int64_t d_out, int64_t max_dim) {
  memset(w, 0, sizeof *w);
  w->d_in = d_in > 0 ? d_in : 0;
  w->d_out = d_out > 0 ? d_out : 0;
  w->max_dim = max_dim > 0 ? max_dim : 8192;
  w->seen = strmap_new(4);
  w->have_target = w->d_out ? 1 : -1;
}

void trainer_wire_free(trainer_wire_t *w) {
  free(w->rows);
  free(w->target);
  free(w->is_val);
  free(w->offsets);
  strmap_destroy(&w->seen);
  memset(w, 0, sizeof *w);
}

static int reject(trainer_wire_t *w, tw_reject_t r, tw_reject_t *why, int rc) {
  w->rejected_by[r]++;
  if (why) *why = r;
  return rc;
}

int trainer_wire_take(trainer_wire_t *w, const Protsae__Envelope *e, reader_batch_t *b, tw_reject_t *why,
                      ps_err_t *err) {
  const char *prod = e->producer && e->producer[0] ? e->producer : "";
  unsigned long long seq = (unsigned long long)e->seq;
  uint64_t seen = 0;
  strmap_get(w->seen, prod, &seen);
  if (e->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM) {
    // the reader's EndOfStream carries its next seq: every batch it sent is below it
    if (e->seq > TW_MAX_SEQ || e->seq < seen)
      return reject(w, TW_REJ_EOS, why, ps_err_set(err, PS_EPROTO, "%s: EndOfStream at seq %llu, but a batch of seq "
                                                   "%llu was taken (or over 2^32)", prod, seq,
                                                   (unsigned long long)seen - 1));
    w->eos++;
    return 0;
  }
  if (e->body_case != PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH) return 0;
  const Protsae__EmbeddingBatch *eb = e->embedding_batch;
  int rc;
  if (!prod[0]) return reject(w, TW_REJ_MALFORMED, why, ps_err_set(err, PS_EPROTO, "batch seq=%llu without a producer", seq));
  if (e->seq >= TW_MAX_SEQ || eb->stream_batches > TW_MAX_SEQ || (eb->stream_batches && e->seq >= eb->stream_batches))
    return reject(w, TW_REJ_SEQ_RANGE, why, ps_err_set(err, PS_EPROTO, "%s batch seq=%llu: outside the stream's %llu "
                                                       "batches (bound 2^32)", prod, seq,
                                                       (unsigned long long)eb->stream_batches));
  if ((rc = wire_check_embedding_batch(eb, err)) < 0) {
    ps_err_prefix(err, "%s batch seq=%llu: ", prod, seq);
    return reject(w, TW_REJ_MALFORMED, why, rc);
  }
  int64_t want_d = w->d_in ? w->d_in : w->max_dim, want_t = w->d_out ? w->d_out : w->max_dim;
  int tgt = eb->target_dim > 0;
  if (!eb->dim || (w->d_in ? eb->dim != want_d : eb->dim > want_d) || (w->have_target >= 0 && tgt != w->have_target) ||
      (tgt && (w->d_out ? eb->target_dim != want_t : eb->target_dim > want_t)))
    return reject(w, TW_REJ_DIM, why, ps_err_set(err, PS_EDIM, "%s batch seq=%llu: dim %u (target %u), the trainer "
                                                 "takes %lld (target %lld%s)%s", prod, seq, eb->dim, eb->target_dim,
                                                 (long long)w->d_in, (long long)w->d_out,
                                                 w->have_target == 0 ? ", none" : "",
                                                 w->d_in ? "" : " (0 = up to max_dim)"));
  // accepted: the stream's dims are fixed from here on
  if (!w->d_in) w->d_in = eb->dim;
  if (w->have_target < 0) w->have_target = tgt;
  if (tgt && !w->d_out) w->d_out = eb->target_dim;
  if (e->seq + 1 > seen && (seen || strmap_size(w->seen) < 4096)) strmap_put(w->seen, prod, e->seq + 1);  // bounded
  size_t nf = (size_t)eb->n_rows * eb->dim;
  if (nf > w->rows_cap) {
    w->rows = ps_xrealloc(w->rows, nf * sizeof(float));
    w->rows_cap = nf;
  }
  if (nf) memcpy(w->rows, eb->rows.data, nf * sizeof(float));
  size_t nt = (size_t)eb->n_rows * eb->target_dim;
  if (nt > w->target_cap) {
    w->target = ps_xrealloc(w->target, nt * sizeof(float));
    w->target_cap = nt;
  }
  if (nt) memcpy(w->target, eb->target_rows.data, nt * sizeof(float));
  free(w->is_val);
  free(w->offsets);
  w->is_val = ps_xcalloc(eb->n_protein_ids + 1, 1);
  for (size_t i = 0; i < eb->n_is_validation && i < eb->n_protein_ids; i++) w->is_val[i] = eb->is_validation[i];
  w->offsets = NULL;
  // residue offsets only at residue level, where wire_check_embedding_batch has checked them
  // (n_proteins + 1, spanning the rows); a protein-level batch carrying some (found by
  // fuzz_trainer_msg) had the training loop read past them
  if (eb->level == PROTSAE__LEVEL__LEVEL_RESIDUE && eb->n_residue_offsets) {
    w->offsets = ps_xmalloc(eb->n_residue_offsets * sizeof(uint32_t));
    memcpy(w->offsets, eb->residue_offsets, eb->n_residue_offsets * sizeof(uint32_t));
  }
  memset(b, 0, sizeof *b);
  b->n_proteins = (uint32_t)eb->n_protein_ids;
  b->ids = eb->protein_ids;
  b->is_val = w->is_val;
  b->n_rows = eb->n_rows;
  b->dim = eb->dim;
  b->target_dim = eb->target_dim;
  b->rows = w->rows;
  b->target = nt ? w->target : NULL;
  b->offsets = w->offsets;
  b->epoch = eb->epoch;
  b->first_record = eb->first_record;
  b->seq = e->seq;
  b->next.epoch = eb->epoch;
  b->next.record = eb->first_record + eb->n_protein_ids;
  b->next.seq = e->seq + 1;
  return 1;
}

// ---- wire ---------------------------------------------------------------------------------------
static int wire_next(void *ctx, reader_batch_t *b, ps_err_t *err) {
  wire_src_t *s = ctx;
  for (;;) {
    wire_free(&s->env);
    if (s->w.eos >= (uint64_t)s->producers) {
      wire_close(&s->sock);  // hang up now: the readers wait for their consumers before exiting
      return 0;
    }
    int rc = wire_recv(s->sock, &s->env, s->timeout_ms > 0 ? (int)s->timeout_ms : -1, &ps_stop_flag, &s->st, err);
    ps_metrics_set(s->mx, s->m_wdrop, (double)s->st.dropped_malformed);
    if (rc < 0) return rc;
    if (rc == 0) return ps_err_set(err, PS_ETRUNC, "trainer: no message for %lld ms", (long long)s->timeout_ms);
    Protsae__Envelope *e = s->env;
    tw_reject_t why = TW_REJ_MALFORMED;
    ps_err_t be = {0};
    int got = trainer_wire_take(&s->w, e, b, &why, &be);
    if (got < 0) {  // dropped and counted; logged the first 3 times per reason
      ps_metrics_set(s->mx, s->m_rej_by[why], (double)s->w.rejected_by[why]);
      if (s->logged[why]++ < 3)
        PS_WARN("trainer: dropped (%s%s): %s", tw_reject_name(why), s->logged[why] == 3 ? "; further ones only counted" : "",
                be.msg);
      continue;
    }
    if (got == 0) continue;
    if (s->have_seek) {  // resume: skip what the checkpoint already holds
      if (b->epoch < s->seek.epoch || (b->epoch == s->seek.epoch && b->first_record < s->seek.record)) continue;
      if (b->epoch != s->seek.epoch || b->first_record != s->seek.record)
        return ps_err_set(err, PS_EMISMATCH, "trainer: resuming at epoch %u record %" PRIu64 " but the stream "
                          "continues at epoch %u record %" PRIu64 "; restart the reader from that position "
                          "(protsae-reader --state FILE --resume with \"%u %" PRIu64 " %" PRIu64 "\" in FILE)",
                          s->seek.epoch, s->seek.record, b->epoch, b->first_record, s->seek.epoch, s->seek.record,
                          s->seek.seq);
      s->have_seek = 0;
    }
    return 1;
  }
}

static int wire_seek(void *ctx, const reader_pos_t *pos, ps_err_t *err) {
  wire_src_t *s = ctx;
  (void)err;
  s->seek = *pos;
  s->have_seek = 1;
  return 0;
}

int wire_src_open(wire_src_t *s, const wire_src_opts_t *o, ps_metrics_t *mx, trainer_hooks_t *h, ps_err_t *err) {
  if (o->d_in < 0 || o->d_out < 0 || o->max_dim < 1 || o->max_dim > (1 << 20) || o->d_in > (1 << 20) ||
      o->d_out > (1 << 20) || o->max_batch_rows < 1 || o->max_batch_rows > (1 << 24))
    return ps_err_set(err, PS_ECONFIG, "--d-in, --d-out in 0..2^20, --max-dim in 1..2^20, --max-batch-rows in 1..2^24");
  trainer_wire_init(&s->w, o->d_in, o->d_out, o->max_dim);
  s->mx = mx;
  for (int r = 0; r < TW_REJ_N; r++) {  // no label API: protsae_messages_rejected_<reason>_total
    char name[96], help[128];
    snprintf(name, sizeof name, "messages_rejected_%s_total", tw_reject_name((tw_reject_t)r));
    snprintf(help, sizeof help, "stream messages dropped as %s", tw_reject_name((tw_reject_t)r));
    s->m_rej_by[r] = ps_metrics_add(mx, name, PS_COUNTER, help);
  }
  s->m_wdrop = ps_metrics_add(mx, "wire_dropped_malformed_total", PS_COUNTER,
                              "messages dropped by the wire: not an Envelope or an inconsistent batch");
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  wo.max_msg = wire_max_embedding_msg(o->max_batch_rows,
                                      (o->d_in ? o->d_in : o->max_dim) + (o->d_out ? o->d_out : o->max_dim));
  PS_INFO("trainer: input messages up to %lld bytes", (long long)wo.max_msg);
  s->zctx = zmq_ctx_new();
  if (!(s->sock = wire_socket(s->zctx, ZMQ_PULL, o->endpoint, &wo, err))) return err->code ? err->code : PS_EIO;
  s->producers = o->producers;
  s->timeout_ms = o->timeout_ms;
  h->next = wire_next;
  h->seek = wire_seek;
  h->src_ctx = s;
  return 0;
}

void wire_src_close(wire_src_t *s) {
  wire_free(&s->env);
  trainer_wire_free(&s->w);
  wire_close(&s->sock);
  if (s->zctx) zmq_ctx_term(s->zctx);
  s->zctx = NULL;
}
