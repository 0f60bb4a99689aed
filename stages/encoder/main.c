// protsae-encoder — EmbeddingBatches in, FeatureBatches (sparse codes) out. Stateless: start as
// many as cores or machines allow; PUSH/PULL spreads the batches. Wiring only; logic in encoder.c.
//
// Stream end: an upstream EndOfStream is relayed downstream (source_producer, source_next_seq)
// so the scorer knows how many batches the stream holds. An encoder runs until SIGTERM, the
// reader's `finished` EndOfStream (the last stage has every batch), or --idle-exit-ms after it
// relayed an EndOfStream: the scorer decides when a stream is complete and asks the reader to
// re-send what a killed encoder lost (ResendRequest), so an encoder never needs to know whether it
// was the last one.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "blascore.h"
#include "config.h"
#include "curve.h"
#include "encoder.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    {"sae", NULL, "SAE: a directory (cfg.json + sae_weights.safetensors) or a peer checkpoint (ae.pt, .ckpt)"},
    {"neurons", "0", "baseline: the raw dimensions (ReLU) are the features"},
    {"pooling", "mean", "residue level: per-protein pooling of the residue codes, mean | max"},
    {"in", ">ipc:///tmp/protsae-reader.ipc", "input endpoint (PULL; > connects, @ binds)"},
    {"out", ">ipc:///tmp/protsae-scorer.ipc", "output endpoint (PUSH)"},
    {"threads", "1", "threads for the top-k selection (OpenBLAS: OPENBLAS_NUM_THREADS)"},
    {"chunk-rows", "1024", "rows encoded at a time (bounds the pre-activation buffer)"},
    {"max-batch-rows", "2048", "largest batch accepted, rows (at least the reader's --batch-rows): bounds the message "
                               "size, rows x 2 d_in x 4 x 2 + 1 MiB (room for a paired target of d_in; a residue-level "
                               "batch exceeds --batch-rows by less than one protein). A larger message closes the "
                               "sender's connection unread"},
    {"max-dim", "8192", "neuron mode: largest dimension the first batch may set"},
    {"hwm", "16", "messages queued per peer"},
    {"linger-ms", "5000", "at exit, how long to wait for unsent messages"},
    {"idle-exit-ms", "0", "exit when idle this long after relaying an EndOfStream (0 = run until SIGTERM)"},
    {"run-id", "run", "run id stamped on every message"},
    {"producer", "encoder-0", "producer name stamped on every message"},
    {"metrics-port", "0", "serve Prometheus /metrics and /healthz on this port (0 = off)"},
    {"metrics-bind", "127.0.0.1", "address of the metrics endpoint (0.0.0.0 in containers)"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) {
  ps_blas_short_spin(argv);  // (blascore.h: ~5% of encoder throughput on 2 cores)
  ps_log_init("encoder");
  ps_signals_install();
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  encoder_t *enc = NULL;
  void *zctx = NULL, *in = NULL, *out = NULL;
  ps_metrics_t *mx = NULL;
  int status = 1;
  int crc = ps_config_main(&cfg, table, "protsae-encoder", argc, argv);
  if (crc >= 0) return crc;
  int64_t threads, chunk, hwm, linger, idle_exit, mport, max_rows, max_dim;
  int neurons;
  const ps_config_bind_t opts[] = {
      PS_CFG_I64("threads", &threads),     PS_CFG_I64("chunk-rows", &chunk),         PS_CFG_I64("hwm", &hwm),
      PS_CFG_I64("linger-ms", &linger),    PS_CFG_I64("idle-exit-ms", &idle_exit),   PS_CFG_I64("metrics-port", &mport),
      PS_CFG_I64("max-batch-rows", &max_rows), PS_CFG_I64("max-dim", &max_dim),      PS_CFG_BOOL("neurons", &neurons),
      {0},
  };
  if (ps_config_read(cfg, opts, &err) < 0) goto fail;
  ps_blas_core_check();
  if (max_rows < 1 || max_rows > (1 << 24) || max_dim < 1 || max_dim > (1 << 20)) {
    ps_err_set(&err, PS_ECONFIG, "max-batch-rows must be in 1..2^24, max-dim in 1..2^20");
    goto fail;
  }
  encoder_opts_t eo = {0};
  eo.sae_dir = ps_config_str(cfg, "sae");
  eo.neurons = neurons;
  eo.threads = (int)threads;
  eo.chunk_rows = chunk;
  eo.max_dim = (uint32_t)max_dim;
  const char *pooling = ps_config_str(cfg, "pooling");
  if (!strcmp(pooling, "mean")) eo.pooling = ENC_POOL_MEAN;
  else if (!strcmp(pooling, "max")) eo.pooling = ENC_POOL_MAX;
  else {
    ps_err_set(&err, PS_ECONFIG, "--pooling must be mean or max, not '%s'", pooling);
    goto fail;
  }
  if (neurons && eo.sae_dir) {
    ps_err_set(&err, PS_ECONFIG, "--sae and --neurons exclude each other");
    goto fail;
  }
  if (encoder_new(&enc, &eo, &err) < 0) goto fail;
  if (!neurons) PS_INFO("SAE %s: d_in=%u d_sae=%u", eo.sae_dir, (unsigned)encoder_sae(enc)->cfg.d_in, encoder_n_features(enc));

  const char *run_id = ps_config_str(cfg, "run-id"), *producer = ps_config_str(cfg, "producer");
  // input bound: max-batch-rows rows of d_in (+ a target of d_in), see wire.h
  int64_t d_in = neurons ? max_dim : (int64_t)encoder_sae(enc)->cfg.d_in;
  wire_opts_t wo = {(int)hwm, (int)linger, 0, wire_max_embedding_msg(max_rows, 2 * d_in)};
  PS_INFO("input messages up to %lld bytes", (long long)wo.max_msg);
  if (curve_from_config(cfg, &err) < 0) goto fail;
  zctx = zmq_ctx_new();
  if (!(in = wire_socket(zctx, ZMQ_PULL, ps_config_str(cfg, "in"), &wo, &err))) goto fail;
  wo.max_msg = 0;
  if (!(out = wire_socket(zctx, ZMQ_PUSH, ps_config_str(cfg, "out"), &wo, &err))) goto fail;

  if (ps_metrics_start(&mx, "encoder", producer, ps_config_str(cfg, "metrics-bind"), (int)mport, &err) < 0) goto fail;
  curve_metrics(mx);
  int m_rows = ps_metrics_add(mx, "rows_total", PS_COUNTER, "embedding rows encoded");
  int m_batches = ps_metrics_add(mx, "batches_total", PS_COUNTER, "batches encoded");
  int m_bad = ps_metrics_add(mx, "bad_batches_total", PS_COUNTER, "batches dropped (bad dimension, NaN)");
  int m_rate = ps_metrics_add(mx, "rows_per_second", PS_GAUGE, "rows encoded per second since start");
  int m_rej_by[ENC_REJ_N];  // no label API: protsae_messages_rejected_<reason>_total
  for (int r = 0; r < ENC_REJ_N; r++) {
    char name[96], help[128];
    snprintf(name, sizeof name, "messages_rejected_%s_total", encoder_reject_name((enc_reject_t)r));
    snprintf(help, sizeof help, "batches dropped as %s", encoder_reject_name((enc_reject_t)r));
    m_rej_by[r] = ps_metrics_add(mx, name, PS_COUNTER, help);
  }
  int m_wdrop = ps_metrics_add(mx, "wire_dropped_malformed_total", PS_COUNTER,
                               "messages dropped by the wire: not an Envelope or an inconsistent batch");
  uint64_t logged[ENC_REJ_N] = {0};  // rejections logged per reason (the first few only)
  wire_stats_t st = {0};
  uint64_t seq = 0, rows = 0, batches = 0, bad = 0;
  int64_t t0 = ps_mono_ms(), last_msg = t0;
  int relayed_eos = 0;
  for (;;) {
    ps_metrics_alive(mx);
    Protsae__Envelope *env = NULL;
    int rc = wire_recv(in, &env, 200, &ps_stop_flag, &st, &err);
    if (rc == PS_EINTR) break;
    if (rc < 0) goto fail;
    int64_t t = ps_mono_ms();
    ps_metrics_set(mx, m_wdrop, (double)st.dropped_malformed);
    if (rc == 0) {
      if (idle_exit > 0 && relayed_eos && t - last_msg >= idle_exit) {
        PS_INFO("idle for %lld ms after the end of stream: exiting", (long long)idle_exit);
        break;
      }
      if (ps_signals_stop_requested()) break;
      continue;
    }
    last_msg = t;
    Protsae__Envelope oe;
    if (env->body_case == PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH) {
      Protsae__FeatureBatch fb;
      enc_reject_t why = ENC_REJ_MALFORMED;
      rc = encoder_handle(enc, env, &fb, &why, &err);
      if (rc < 0) {
        // A bad batch is dropped and counted (the scorer will see it missing and report it). Logged
        // the first 3 times per reason (an encoder has one upstream reader, usually), then counted.
        bad++;
        ps_metrics_inc(mx, m_bad, 1);
        ps_metrics_inc(mx, m_rej_by[why], 1);
        if (logged[why]++ < 3)
          PS_ERROR("dropped (%s%s): %s", encoder_reject_name(why), logged[why] == 3 ? "; further ones only counted" : "",
                   err.msg);
        wire_free(&env);
        continue;
      }
      wire_envelope_init(&oe, run_id, producer, seq++);
      oe.body_case = PROTSAE__ENVELOPE__BODY_FEATURE_BATCH;
      oe.feature_batch = &fb;
      rc = wire_send(out, &oe, &ps_stop_flag, &err);
      rows += env->embedding_batch->n_rows;
      batches++;
      ps_metrics_inc(mx, m_rows, env->embedding_batch->n_rows);
      ps_metrics_inc(mx, m_batches, 1);
      ps_metrics_set(mx, m_rate, rows * 1000.0 / (double)(t - t0 + 1));
    } else if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM && env->end_of_stream->reason &&
               !strcmp(env->end_of_stream->reason, "finished")) {
      // the reader's word that the last stage has every batch: nothing more will be asked for
      PS_INFO("the stream of %s is finished (the last stage has every batch): exiting", env->producer);
      wire_free(&env);
      break;
    } else if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM) {
      const Protsae__EndOfStream *ue = env->end_of_stream;
      Protsae__EndOfStream eos = PROTSAE__END_OF_STREAM__INIT;
      eos.rows_sent = ue->rows_sent;
      eos.batches_sent = ue->batches_sent;
      eos.proteins_sent = ue->proteins_sent;
      eos.n_producers = ue->n_producers;
      eos.reason = ue->reason;
      eos.source_producer = ue->source_producer;
      eos.source_next_seq = ue->source_next_seq;
      eos.proteome = ue->proteome;
      eos.proteins_skipped = ue->proteins_skipped;
      eos.residues_sent = ue->residues_sent;
      if (!eos.source_producer || !eos.source_producer[0]) {
        eos.source_producer = env->producer;
        eos.source_next_seq = env->seq;
      }
      wire_envelope_init(&oe, run_id, producer, seq);
      oe.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
      oe.end_of_stream = &eos;
      rc = wire_send(out, &oe, &ps_stop_flag, &err);
      relayed_eos = 1;
      if (eos.proteome && eos.proteome[0])
        PS_INFO("relayed the end of %s's proteome %s (%" PRIu64 " batches)", eos.source_producer, eos.proteome,
                eos.source_next_seq);
      else
        PS_INFO("relayed the end of %s's stream (%" PRIu64 " batches)", eos.source_producer, eos.source_next_seq);
    } else {
      rc = 0;  // no other body belongs on this stream: dropped
    }
    wire_free(&env);
    if (rc == PS_EINTR) break;
    if (rc < 0) goto fail;
    if (ps_signals_stop_requested()) break;
  }
  double secs = (double)(ps_mono_ms() - t0) / 1000.0;
  PS_INFO("finished batches=%" PRIu64 " rows=%" PRIu64 " bad_batches=%" PRIu64 " dropped=%" PRIu64 " seconds=%.2f rows_per_s=%.0f",
          batches, rows, bad, st.dropped_malformed + st.dropped_version + st.dropped_empty, secs,
          rows / (secs > 0 ? secs : 1e-9));
  status = 0;
fail:
  if (status) PS_ERROR("%s", err.msg[0] ? err.msg : ps_strerror(err.code));
  ps_metrics_stop(&mx);
  wire_close(&in);
  wire_close(&out);
  if (zctx) zmq_ctx_term(zctx);
  encoder_destroy(&enc);
  ps_config_destroy(&cfg);
  return status;
}
