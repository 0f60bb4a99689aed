// protsae-reader — streams EmbeddingBatches from embedding files to the pipeline.
// Wiring only: configuration, socket, state file, loop, shutdown. The batches come from the
// embedding dataset (common/dataset/reader.h); re-sends from replay.c.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "blascore.h"
#include "config.h"
#include "curve.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "reader.h"
#include "replay.h"
#include "send.h"
#include "service.h"
#include "signals.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    {"emb", NULL, "embeddings: .npy, .safetensors, .h5, .pt or a directory of .pt files"},
    {"esm2", NULL, "native ESM2: Hugging Face checkpoint directory (config.json + model.safetensors); "
                   "embeddings computed from --fasta instead of read from --emb"},
    {"layers", "last", "esm2: layer to send, or 'L,L+1' (the second becomes the transcoder target)"},
    {"tokens-per-batch", "4096", "esm2: token budget of one forward batch (BOS/EOS included)"},
    {"sort-window", "4096", "esm2: sequences read ahead and sorted by length (1 = FASTA order)"},
    {"max-residues", "1022", "esm2: longer sequences are truncated or an error (see --long)"},
    {"long", "truncate", "esm2: sequences over --max-residues: truncate (as ESM) | error"},
    {"unknown", "error", "esm2: letters outside the alphabet: error (names sequence and position) | unk"},
    {"threads", "1", "esm2: threads for the forward pass (projections, attention, element-wise)"},
    {"precision", "f32", "esm2: projections in f32 | bf16 (AVX-512 BF16 where the CPU has it, else f32; "
                         "docs/benchmarks.md: speed and accuracy)"},
    {"format", NULL, "force the format: npy|safetensors|h5|pt"},
    {"fasta", NULL, "FASTA (plain or .gz): ids are checked against it (and give npy ids)"},
    {"ids", NULL, "text file with one id per row (npy / single-matrix safetensors)"},
    {"offsets", NULL, "npy residue level: offsets .npy (default <stem>.offsets.npy)"},
    {"level", "protein", "protein | residue"},
    {"layer", "-1", "layer to read (-1 = the only / highest one)"},
    {"target", NULL, "transcoders: embeddings of the paired target (same ids and rows)"},
    {"target-format", NULL, "format of --target"},
    {"target-ids", NULL, "ids of --target, one per row (npy / single-matrix safetensors; default: --ids)"},
    {"target-layer", "-1", "layer of --target"},
    {"batch-rows", "1024", "rows per batch"},
    {"val-fraction", "0.1", "share of proteins in the validation split"},
    {"seed", "1", "split seed"},
    {"split", "all", "which proteins to send: all | train | val"},
    {"epochs", "1", "passes over the data"},
    {"max-records", "0", "records per epoch (0 = all)"},
    {"skip-nonfinite", "0", "skip records with NaN/Inf (counted) instead of stopping"},
    {"out", "@ipc:///tmp/protsae-reader.ipc", "endpoint (@ binds, > connects)"},
    {"consumers", "1", "consumers that will read this stream: each gets an EndOfStream (0 = as many as are "
                       "connected at the end, and one more to each that stays connected: any --scale works)"},
    {"hwm", "16", "batches queued per consumer before sending blocks"},
    {"metrics-port", "0", "serve Prometheus /metrics and /healthz on this port (0 = off)"},
    {"metrics-bind", "127.0.0.1", "address of the metrics endpoint (0.0.0.0 in containers)"},
    {"max-rate", "0", "at most this many batches per second (0 = as fast as the consumers take them)"},
    {"linger-ms", "30000", "at exit, how long to wait for the consumers to take the stream and hang up"},
    {"run-id", "run", "run id stamped on every message"},
    {"producer", "reader-0", "producer name stamped on every message"},
    {"state", NULL, "state file: the position after the last sent batch"},
    {"resume", "0", "continue from --state when it exists"},
    {"control", "", "after the stream, serve ResendRequests from the last stage on this endpoint "
                    "(PULL; e.g. @ipc:///tmp/protsae-reader-ctl.ipc) until it reports the stream complete"},
    // service mode (service.h): the head of the annotation service
    {"watch", NULL, "service mode: annotate proteomes dropped here (NAME.fasta[.gz], with NAME.npy|.safetensors|.h5 "
                    "[+ NAME.ids] when precomputed; else --esm2 computes them); --control is required"},
    {"requests", "", "service: also take ProteomeRequests (REP) on this endpoint (e.g. @tcp://0.0.0.0:5560)"},
    {"state-dir", NULL, "service: its ledger of acknowledged proteomes (default WATCH/.reader)"},
    {"once", "0", "service: annotate what is in the drop directory, wait for the acknowledgements, exit (1 when one failed)"},
    {"interval-ms", "2000", "service: polling interval of the drop directory"},
    {"settle-ms", "1000", "service: a proteome without NAME.ready is taken when its files are this old"},
    {"missing-after", "60", "service: seconds after which a FASTA without embeddings (no --esm2) or the reverse fails"},
    {"max-in-flight", "2", "service: proteomes streamed and not yet acknowledged by the sink, at most"},
    {"ack-timeout-ms", "30000", "service: an EndOfStream not acknowledged this long is sent again"},
    {"dim", "0", "service: precomputed embeddings must have this dimension (the SAE's d_in; 0 = unchecked)"},
    {"bad-records", "fail", "service: a bad FASTA record (letter outside the alphabet, empty, too long with --long error, "
                            "duplicate id) fails the proteome (fail) or is skipped and counted (skip)"},
    {"pace-ms", "0", "service: sleep this long after each batch (tests)"},
    {"max-request-mb", "512", "service: largest ProteomeRequest accepted (MiB)"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

// Service mode: load the model once, open the sockets, run service.c, end the encoders' streams.
static int run_service(ps_config_t *cfg, reader_opts_t *o, int residue, ps_err_t *err) {
  int64_t interval, settle, missing, ack, inflight, dim, hwm, linger, mport, maxreq, pace;
  int once;
  const ps_config_bind_t binds[] = {
      PS_CFG_I64("interval-ms", &interval), PS_CFG_I64("settle-ms", &settle), PS_CFG_I64("missing-after", &missing),
      PS_CFG_I64("ack-timeout-ms", &ack),   PS_CFG_I64("max-in-flight", &inflight), PS_CFG_I64("dim", &dim),
      PS_CFG_I64("hwm", &hwm),              PS_CFG_I64("linger-ms", &linger),    PS_CFG_I64("metrics-port", &mport),
      PS_CFG_I64("max-request-mb", &maxreq), PS_CFG_BOOL("once", &once),          PS_CFG_I64("pace-ms", &pace),
      {0}};
  if (ps_config_read(cfg, binds, err) < 0) return err->code;
  const char *bad = ps_config_str(cfg, "bad-records"), *ctl_ep = ps_config_str(cfg, "control");
  if (residue) return ps_err_set(err, PS_ECONFIG, "--watch annotates at protein level (--level protein)");
  if (!bad || (strcmp(bad, "fail") && strcmp(bad, "skip")))
    return ps_err_set(err, PS_ECONFIG, "--bad-records must be fail or skip, not '%s'", bad ? bad : "");
  if (!ctl_ep || !ctl_ep[0])
    return ps_err_set(err, PS_ECONFIG, "--watch needs --control (the endpoint the sink acknowledges proteomes on)");
  if (interval < 1 || settle < 0 || missing < 0 || ack < 100 || inflight < 1 || dim < 0 || hwm < 1 || maxreq < 1)
    return ps_err_set(err, PS_ECONFIG, "interval-ms >= 1, ack-timeout-ms >= 100, max-in-flight >= 1, dim >= 0");
  service_opts_t so = {0};
  esm2_model_t *model = NULL;
  void *zctx = NULL, *out = NULL, *ctl = NULL, *req = NULL;
  wire_peers_t *peers = NULL;
  ps_metrics_t *mx = NULL;
  int rc = 0;
  if (o->esm2_dir) {
    int *lay = NULL, nl = 0;
    if ((rc = esm2_load(&model, o->esm2_dir, err)) < 0 ||
        (rc = esm2_parse_layers(o->esm2_layers, esm2_config(model)->n_layers, &lay, &nl, err)) < 0)
      goto out;
    so.layer = nl > 0 && lay[0] >= 0 ? (uint32_t)lay[0] : 0;
    free(lay);
    if (nl != 1) {
      rc = ps_err_set(err, PS_ECONFIG, "--watch: give one layer (--layers), not %d", nl);
      goto out;
    }
  }
  so.drop = ps_config_str(cfg, "watch");
  so.state = ps_config_str(cfg, "state-dir");
  so.base = *o;
  so.esm2 = model;
  so.interval_ms = interval, so.settle_ms = settle, so.missing_after_s = missing, so.ack_timeout_ms = ack;
  so.pace_ms = pace;
  so.once = once, so.max_in_flight = (int)inflight, so.expect_dim = dim, so.skip_bad = !strcmp(bad, "skip");
  so.run_id = ps_config_str(cfg, "run-id"), so.producer = ps_config_str(cfg, "producer");
  if ((rc = curve_from_config(cfg, err)) < 0) goto out;
  zctx = zmq_ctx_new();
  wire_opts_t wo = {.hwm = (int)hwm, .linger_ms = (int)linger, .max_msg = WIRE_MAX_CONTROL_MSG};
  wire_opts_t ro = wo;
  ro.max_msg = maxreq << 20;
  const char *req_ep = ps_config_str(cfg, "requests");
  if (!(ctl = wire_socket(zctx, ZMQ_PULL, ctl_ep, &wo, err)) ||
      (req_ep && req_ep[0] && !(req = wire_socket(zctx, ZMQ_REP, req_ep, &ro, err))) ||
      !(out = wire_socket_watched(zctx, ZMQ_PUSH, ps_config_str(cfg, "out"), &wo, &peers, err))) {
    rc = err->code ? err->code : PS_EIO;
    goto out;
  }
  if ((rc = ps_metrics_start(&mx, "reader", so.producer, ps_config_str(cfg, "metrics-bind"), (int)mport, err)) < 0)
    goto out;
  curve_metrics(mx);
  service_io_t io = {out, peers, ctl, req, mx, (int)linger};
  rc = service_run(&so, &io, err);
  if (rc >= 0) {  // the encoders' streams end with the service: each connected one gets "finished"
    send_ctx_t sc = {out, so.run_id, so.producer, 0, so.layer, 0, NULL};
    send_eos_info_t ei = {0, 0, 0, 0, 0, 0, "finished"};
    int n = wire_peers_live(peers);
    for (int i = 0; i < n; i++) {
      ps_err_t se = {0};
      send_eos(&sc, &ei, 100, &se);
    }
    ps_err_t we = {0};
    if (wire_peers_wait_hangup(peers, linger < 10000 ? (int)linger : 10000, &we) < 0) PS_WARN("stream end: %s", we.msg);
  }
out:
  ps_metrics_stop(&mx);
  wire_peers_destroy(&peers);
  wire_close(&out);
  wire_close(&ctl);
  wire_close(&req);
  if (zctx) zmq_ctx_term(zctx);
  esm2_destroy(&model);
  return rc;
}

// Serve ResendRequests (see protsae-scorer) until one says the stream is complete, or a stop
// request. Requests queued while busy are drained first; only the newest one is served.
// 1 when finished, 0 on a stop request or a control socket error.
static int serve_control(void *ctl, const send_ctx_t *sc, replay_t *rp, const send_eos_info_t *eos) {
  const char *producer = sc->producer;
  PS_INFO("stream sent: serving re-send requests until the last stage has every batch");
  for (;;) {
    ps_err_t e = {0};
    Protsae__Envelope *req = NULL, *env = NULL;
    int rc = wire_recv(ctl, &env, 500, &ps_stop_flag, NULL, &e);
    if (rc == PS_EINTR) return 0;
    if (rc < 0) {
      PS_WARN("control: %s", e.msg);
      return 0;
    }
    while (rc == 1) {
      if (env->body_case == PROTSAE__ENVELOPE__BODY_RESEND_REQUEST) {
        if (env->resend_request->finished) {
          PS_INFO("the last stage has every batch (%s)", env->producer);
          wire_free(&env);
          wire_free(&req);
          return 1;
        }
        wire_free(&req);
        req = env;
      } else {
        wire_free(&env);
      }
      env = NULL;
      rc = wire_recv(ctl, &env, 0, &ps_stop_flag, NULL, &e);
    }
    if (!req) continue;
    const Protsae__ResendRequest *rq = req->resend_request;
    if (rq->producer[0] && strcmp(rq->producer, producer)) {
      wire_free(&req);
      continue;  // another reader's stream
    }
    size_t sent = 0, unknown = 0;
    for (size_t i = 0; i < rq->n_seqs && !ps_signals_stop_requested(); i++) {
      reader_batch_t b;
      int got = replay_batch(rp, rq->seqs[i], &b, &e);
      if (got < 0) {
        PS_ERROR("re-send of seq %llu: %s", (unsigned long long)rq->seqs[i], e.msg);
        break;
      }
      if (got == 0) {
        unknown++;
        continue;
      }
      if (send_batch(sc, &b, &e) < 0) break;
      sent++;
    }
    if (rq->n_seqs)
      PS_INFO("re-sent %zu of %zu requested batches (%zu not sent by this process)", sent, rq->n_seqs, unknown);
    if (send_eos(sc, eos, 2000, &e) < 0)
      PS_WARN("EndOfStream not re-sent: %s", e.msg);
    wire_free(&req);
  }
}

int main(int argc, char **argv) {
  ps_log_init("reader");
  ps_signals_install();
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  reader_t *rd = NULL;
  void *zctx = NULL, *sock = NULL, *ctl = NULL;
  replay_t *rp = NULL;
  wire_peers_t *peers = NULL;
  ps_metrics_t *mx = NULL;
  int status = 1;
  int crc = ps_config_main(&cfg, table, "protsae-reader", argc, argv);
  if (crc >= 0) return crc;

  reader_opts_t o;
  memset(&o, 0, sizeof o);
  int64_t layer, tlayer, batch_rows, seed, epochs, max_records, consumers, hwm, linger;
  double valf;
  double max_rate;
  int skip_nf, resume;
  const ps_config_bind_t binds[] = {
      PS_CFG_F64("max-rate", &max_rate),       PS_CFG_I64("layer", &layer),
      PS_CFG_I64("target-layer", &tlayer),     PS_CFG_I64("batch-rows", &batch_rows),
      PS_CFG_I64("seed", &seed),               PS_CFG_I64("epochs", &epochs),
      PS_CFG_I64("max-records", &max_records), PS_CFG_I64("consumers", &consumers),
      PS_CFG_I64("hwm", &hwm),                 PS_CFG_I64("linger-ms", &linger),
      PS_CFG_F64("val-fraction", &valf),       PS_CFG_BOOL("skip-nonfinite", &skip_nf),
      PS_CFG_BOOL("resume", &resume),          {0}};
  if (ps_config_read(cfg, binds, &err) < 0) goto fail;
  if (batch_rows < 1 || batch_rows > (1 << 24) || epochs < 1 || consumers < 0 || hwm < 1) {
    ps_err_set(&err, PS_ECONFIG, "batch-rows, epochs and hwm must be >= 1, consumers >= 0");
    goto fail;
  }
  if (!(max_rate >= 0)) {
    ps_err_set(&err, PS_ECONFIG, "max-rate must be >= 0 (got %g)", max_rate);
    goto fail;
  }
  o.src.path = ps_config_str(cfg, "emb");
  o.esm2_dir = ps_config_str(cfg, "esm2");
  const char *watch = ps_config_str(cfg, "watch");
  if (o.esm2_dir) {
    // --layers is parsed by reader_new once the model (and its layer count) is loaded
    int64_t tpb, win, maxres, threads;
    const ps_config_bind_t eb[] = {PS_CFG_I64("tokens-per-batch", &tpb), PS_CFG_I64("sort-window", &win),
                                   PS_CFG_I64("max-residues", &maxres), PS_CFG_I64("threads", &threads), {0}};
    if (ps_config_read(cfg, eb, &err) < 0) goto fail;
    ps_blas_core_check();  // the native ESM2 forward runs on OpenBLAS
    if (tpb < 3 || win < 1 || win > (1 << 24) || maxres < 1 || maxres > (1 << 20) || threads < 1 || threads > 256) {
      ps_err_set(&err, PS_ECONFIG, "tokens-per-batch >= 3, sort-window >= 1, max-residues >= 1, threads 1..256");
      goto fail;
    }
    const char *lp = ps_config_str(cfg, "long"), *up = ps_config_str(cfg, "unknown");
    if (!lp || (strcmp(lp, "truncate") && strcmp(lp, "error")) || !up || (strcmp(up, "error") && strcmp(up, "unk"))) {
      ps_err_set(&err, PS_ECONFIG, "--long must be truncate|error and --unknown error|unk");
      goto fail;
    }
    o.esm2_layers = ps_config_str(cfg, "layers");
    o.esm2.tokens_per_batch = (uint32_t)tpb;
    o.esm2.sort_window = (uint32_t)win;
    o.esm2.max_residues = (uint32_t)maxres;
    o.esm2.long_policy = !strcmp(lp, "error") ? ESM2_LONG_ERROR : ESM2_LONG_TRUNCATE;
    o.esm2.unknown = !strcmp(up, "unk") ? ESM2_UNKNOWN_UNK : ESM2_UNKNOWN_ERROR;
    o.esm2.threads = (int)threads;
    const char *prec = ps_config_str(cfg, "precision");
    if (!prec || (strcmp(prec, "f32") && strcmp(prec, "bf16"))) {
      ps_err_set(&err, PS_ECONFIG, "--precision must be f32 or bf16, not '%s'", prec ? prec : "");
      goto fail;
    }
    o.esm2.precision = !strcmp(prec, "bf16") ? ESM2_PREC_BF16 : ESM2_PREC_F32;
    if (o.esm2.precision == ESM2_PREC_BF16)
      PS_INFO("esm2: bfloat16 projections %s", esm2_bf16_supported() ? "(AVX-512 BF16)"
                                                                      : "requested, but this CPU has no AVX512_BF16: float32");
    if (!watch && !ps_config_str(cfg, "fasta")) {
      ps_err_set(&err, PS_ECONFIG, "--esm2 needs --fasta");
      goto fail;
    }
  } else if (!o.src.path && !watch) {
    ps_err_set(&err, PS_ECONFIG, "--emb (or --esm2 with --fasta, or --watch) is required (see --help)");
    goto fail;
  }
  o.src.format = ps_config_str(cfg, "format");
  o.src.ids_path = ps_config_str(cfg, "ids");
  o.src.offsets_path = ps_config_str(cfg, "offsets");
  o.src.layer = (int)layer;
  const char *level = ps_config_str(cfg, "level");
  if (!level || (strcmp(level, "protein") && strcmp(level, "residue"))) {
    ps_err_set(&err, PS_ECONFIG, "--level must be protein or residue, not '%s'", level ? level : "");
    goto fail;
  }
  int residue = !strcmp(level, "residue");
  o.src.level = residue ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN;
  o.fasta_path = ps_config_str(cfg, "fasta");
  o.target_path = ps_config_str(cfg, "target");
  o.target_format = ps_config_str(cfg, "target-format");
  o.target_ids_path = ps_config_str(cfg, "target-ids");
  o.target_layer = (int)tlayer;
  o.batch_rows = (uint32_t)batch_rows;
  o.val_fraction = valf;
  o.seed = (uint64_t)seed;
  const char *split = ps_config_str(cfg, "split");
  if (!split || !strcmp(split, "all")) o.split = READER_SPLIT_ALL;
  else if (!strcmp(split, "train")) o.split = READER_SPLIT_TRAIN;
  else if (!strcmp(split, "val")) o.split = READER_SPLIT_VAL;
  else {
    ps_err_set(&err, PS_ECONFIG, "--split must be all, train or val, not '%s'", split);
    goto fail;
  }
  o.epochs = (uint32_t)epochs;
  o.max_records = (uint64_t)max_records;
  o.skip_nonfinite = skip_nf;

  if (watch) {
    int rc = run_service(cfg, &o, residue, &err);
    if (rc >= 0) {
      ps_config_destroy(&cfg);
      return rc;
    }
    goto fail;
  }
  if (reader_new(&rd, &o, &err) < 0) goto fail;
  if (o.esm2_dir) layer = reader_esm2_layer(rd);
  const char *state = ps_config_str(cfg, "state");
  reader_pos_t pos = {0, 0, 0};
  if (resume && state) {
    int got = reader_pos_load(state, &pos, &err);
    if (got < 0) goto fail;
    if (got) {
      PS_INFO("resuming epoch=%u record=%llu seq=%llu", pos.epoch, (unsigned long long)pos.record,
              (unsigned long long)pos.seq);
      if (reader_seek(rd, &pos, &err) < 0) goto fail;
    }
  }

  const char *run_id = ps_config_str(cfg, "run-id"), *producer = ps_config_str(cfg, "producer");
  // the control socket receives only ResendRequests (<= 4096 seqs from the scorer)
  wire_opts_t wo = {.hwm = (int)hwm, .linger_ms = (int)linger, .max_msg = WIRE_MAX_CONTROL_MSG};
  if (curve_from_config(cfg, &err) < 0) goto fail;
  zctx = zmq_ctx_new();
  const char *ctl_ep = ps_config_str(cfg, "control");
  if (ctl_ep && ctl_ep[0] && !(ctl = wire_socket(zctx, ZMQ_PULL, ctl_ep, &wo, &err))) goto fail;
  rp = replay_new(&o, pos.seq);
  reader_pos_t cur_pos = pos;
  if (!(sock = wire_socket_watched(zctx, ZMQ_PUSH, ps_config_str(cfg, "out"), &wo, &peers, &err))) goto fail;

  int64_t per_epoch = reader_records_per_epoch(rd), mport = 0;
  if (ps_config_i64(cfg, "metrics-port", &mport, &err) < 0 ||
      ps_metrics_start(&mx, "reader", producer, ps_config_str(cfg, "metrics-bind"), (int)mport, &err) < 0)
    goto fail;
  curve_metrics(mx);
  int m_rows = ps_metrics_add(mx, "rows_total", PS_COUNTER, "embedding rows sent");
  int m_done = ps_metrics_add(mx, "rows_done", PS_GAUGE, "rows sent (progress; see rows_planned)");
  int m_plan = ps_metrics_add(mx, "rows_planned", PS_GAUGE, "rows the stream will send (protein level; known totals only)");
  int m_batches = ps_metrics_add(mx, "batches_total", PS_COUNTER, "batches sent");
  int m_prot = ps_metrics_add(mx, "proteins_total", PS_COUNTER, "proteins sent");
  int m_rate = ps_metrics_add(mx, "rows_per_second", PS_GAUGE, "rows sent per second since start");
  int m_block = ps_metrics_add(mx, "send_seconds_total", PS_COUNTER,
                               "time spent handing batches to the socket; high = consumers are the bottleneck (queues full)");
  if (per_epoch > 0 && !residue) ps_metrics_set(mx, m_plan, (double)per_epoch * (double)o.epochs);
  // Batches the stream will have, announced on every batch (EmbeddingBatch.stream_batches) so the
  // consumers can reject seqs outside it: known in advance at protein level when every record of
  // a source of known size is sent (split all, no skipping: batches are exactly batch_rows, the
  // last of an epoch shorter). Otherwise 0 (unknown). Seqs are a function of the position, so a
  // resumed reader announces the same count.
  uint64_t stream_batches = 0;
  if (!residue && !o.esm2_dir && o.split == READER_SPLIT_ALL && !o.skip_nonfinite && per_epoch > 0) {
    uint64_t recs = (uint64_t)per_epoch;
    if (o.max_records && o.max_records < recs) recs = o.max_records;
    stream_batches = (recs + o.batch_rows - 1) / o.batch_rows * o.epochs;
  }
  PS_INFO("stream: %" PRIu64 " batches%s", stream_batches, stream_batches ? "" : " (unknown in advance)");
  const send_ctx_t sc = {sock, run_id, producer, residue, layer < 0 ? 0 : (uint32_t)layer, stream_batches, NULL};
  int64_t t0 = ps_mono_ms();
  uint64_t rows_sent = 0, batches_sent = 0, prot_sent = 0;
  uint64_t seq = pos.seq;
  const char *reason = "done";
  reader_batch_t b;
  int rc;
  ps_metrics_set_stall(mx, 600);  // a send may wait that long on slow consumers (back-pressure)
  while ((rc = reader_next_batch(rd, &b, &err)) > 0) {
    ps_metrics_alive(mx);
    int64_t ts0 = ps_mono_ms();
    if ((rc = send_batch(&sc, &b, &err)) < 0)
      break;
    rows_sent += b.n_rows;
    batches_sent++;
    prot_sent += b.n_proteins;
    if (mx) {
      int64_t ts1 = ps_mono_ms();
      ps_metrics_inc(mx, m_block, (double)(ts1 - ts0) / 1000.0);
      ps_metrics_set(mx, m_rows, (double)rows_sent);
      ps_metrics_set(mx, m_done, (double)rows_sent);
      ps_metrics_set(mx, m_batches, (double)batches_sent);
      ps_metrics_set(mx, m_prot, (double)prot_sent);
      ps_metrics_set(mx, m_rate, (double)rows_sent * 1000.0 / (double)(ts1 - t0 + 1));
    }
    seq = b.next.seq;
    replay_note(rp, b.seq, &cur_pos);
    cur_pos = b.next;
    if (state && reader_pos_save(state, &b.next, &err) < 0) goto fail;
    if (max_rate > 0) {  // throttle: batch n leaves no earlier than t0 + n / max_rate
      int64_t due = t0 + (int64_t)((double)batches_sent * 1000.0 / max_rate), t = ps_mono_ms();
      if (due > t && !ps_signals_stop_requested()) {
        struct timespec ts = {(time_t)((due - t) / 1000), (long)((due - t) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
      }
    }
    if (ps_signals_stop_requested()) {
      reason = "signal";
      PS_INFO("stop requested: finishing after batch seq=%llu", (unsigned long long)b.seq);
      break;
    }
  }
  if (rc < 0 && rc != PS_EINTR) goto fail;
  if (rc == PS_EINTR) reason = "signal";
  {
    // EndOfStream, also after a stop request (reason "signal"), one per consumer so each knows
    // the totals. While a stop is pending a blocked send gives up instead of waiting.
    int eos_wait = ps_signals_stop_requested() ? 10000 : -1;
    int64_t n_eos = consumers;
    if (consumers == 0) {
      n_eos = wire_peers_live(peers);
      if (n_eos < 1) n_eos = 1;
      PS_INFO("stream end: %lld consumers connected, one EndOfStream each", (long long)n_eos);
    }
    for (int64_t i = 0; i < n_eos; i++) {
      send_eos_info_t ei = {seq, rows_sent, batches_sent, prot_sent, 0, 0, reason};
      if (send_eos(&sc, &ei, eos_wait, &err) < 0) {
        PS_WARN("EndOfStream %lld of %lld not sent: %s", (long long)i + 1, (long long)n_eos, err.msg);
        break;
      }
    }
  }
  int finished = 0;
  if (ctl && !ps_signals_stop_requested()) {
    send_eos_info_t ei = {seq, rows_sent, batches_sent, prot_sent, 0, 0, "done"};
    finished = serve_control(ctl, &sc, rp, &ei);
  }
  // The consumers (encoders) stay up while the last stage may still ask for batches again; once it
  // has everything, each connected consumer gets an EndOfStream "finished": it exits.
  const char *last_reason = finished ? "finished" : reason;
  if (finished) {
    int n = wire_peers_live(peers);
    for (int i = 0; i < n; i++) {
      ps_err_t se = {0};
      send_eos_info_t ei = {seq, rows_sent, batches_sent, prot_sent, 0, 0, "finished"};
      send_eos(&sc, &ei, 100, &se);
    }
  }
  const reader_counts_t *c = reader_counts(rd);
  double secs = (double)(ps_mono_ms() - t0) / 1000.0;
  PS_INFO("finished reason=%s batches=%llu rows=%llu proteins=%llu skipped_nonfinite=%llu seconds=%.2f rows_per_s=%.0f",
          reason, (unsigned long long)batches_sent, (unsigned long long)rows_sent, (unsigned long long)prot_sent,
          (unsigned long long)c->skipped_nonfinite, secs, rows_sent / (secs > 0 ? secs : 1e-9));
  {
    // Closing now would lose the tail of the stream whenever a consumer lags (see wire.h): keep
    // the connections open until the consumers have read everything and hung up, within the
    // linger budget, of which closing gets what is left.
    int64_t tw = ps_mono_ms();
    if (consumers == 0 || finished) {  // a consumer still connected may not have had its EndOfStream: one more each 2 s
      int64_t last = tw;
      while (wire_peers_live(peers) > 0 && (linger < 0 || ps_mono_ms() - tw < linger)) {
        if (ps_mono_ms() - last >= 2000) {
          last = ps_mono_ms();
          ps_err_t se = {0};
          send_eos_info_t ei = {seq, rows_sent, batches_sent, prot_sent, 0, 0, last_reason};
          if (send_eos(&sc, &ei, 100, &se) == 0)
            PS_INFO("a consumer is still connected: another EndOfStream");
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
    }
    if (wire_peers_wait_hangup(peers, (int)linger, &err) < 0) PS_WARN("stream end: %s", err.msg);
    else PS_INFO("consumers hung up waited_ms=%llu", (unsigned long long)(ps_mono_ms() - tw));
    if (linger >= 0) {
      int64_t waited = ps_mono_ms() - tw;
      int left = waited >= linger ? 0 : (int)(linger - waited);
      zmq_setsockopt(sock, ZMQ_LINGER, &left, sizeof left);
    }
  }
  status = 0;
fail:
  if (status) PS_ERROR("%s", err.msg[0] ? err.msg : ps_strerror(err.code));
  ps_metrics_stop(&mx);
  wire_peers_destroy(&peers);
  wire_close(&ctl);
  replay_destroy(&rp);
  wire_close(&sock);
  if (zctx) zmq_ctx_term(zctx);
  reader_destroy(&rd);
  ps_config_destroy(&cfg);
  return status;
}
