// protsae-trainer — trains an SAE / transcoder from an embedding stream.
// Wiring only: configuration, source (embedding files in-process, or a reader over the wire),
// heartbeats, signals. The loop lives in trainer.c, the step in sae_train.c.
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "config.h"
#include "curve.h"
#include "log.h"
#include "metrics.h"
#include "reader.h"
#include "signals.h"
#include "trainer.h"
#include "wire_in.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    // source: files (in-process reader; resumable) or the wire
    {"emb", NULL, "embeddings (.npy, .safetensors, .h5, .pt): read in-process"},
    {"format", NULL, "force the format of --emb"},
    {"fasta", NULL, "FASTA: ids are checked against it"},
    {"ids", NULL, "text file with one id per row (npy)"},
    {"offsets", NULL, "npy residue level: offsets .npy"},
    {"level", "protein", "protein | residue"},
    {"layer", "-1", "layer to read (-1 = the only / highest one)"},
    {"target", NULL, "transcoder: paired target embeddings (same ids and rows)"},
    {"target-format", NULL, "format of --target"},
    {"target-layer", "-1", "layer of --target"},
    {"epochs", "1", "passes over the data (--emb)"},
    {"val-fraction", "0.1", "share of proteins held out for validation (--emb)"},
    {"split-seed", "1", "seed of the train/validation split (--emb)"},
    {"skip-nonfinite", "1", "skip (and count) rows with NaN/Inf instead of stopping"},
    {"in", NULL, "instead of --emb: endpoint to pull EmbeddingBatches from (@ binds, > connects)"},
    {"producers", "1", "--in: readers feeding the stream (each ends with an EndOfStream)"},
    {"timeout-ms", "0", "--in: give up after this long without a message (0 = wait)"},
    {"d-in", "0", "--in: the input dimension; batches of another are dropped (0 = the first batch's, up to --max-dim)"},
    {"d-out", "0", "--in: the target dimension of a transcoder stream (0 = the first batch's, up to --max-dim)"},
    {"max-dim", "2560", "--in: largest dimension taken from the stream when --d-in / --d-out are 0"},
    {"max-batch-rows", "2048", "--in: largest batch accepted, rows (at least the reader's --batch-rows): bounds the "
                               "message size, rows x (d_in + d_out) x 4 x 2 + 1 MiB (max-dim for a dimension not "
                               "given). A larger message closes the sender's connection unread"},
    // model
    {"arch", "topk", "topk | relu | batchtopk | jumprelu"},
    {"d-sae", "4096", "dictionary size (latents)"},
    {"k", "32", "active latents per row (topk; batchtopk: mean per row)"},
    {"k-aux", "-1", "AuxK latents (-1 = d_in / 2; 0 = off)"},
    {"aux-coeff", "0.03125", "AuxK loss weight"},
    {"ortho-coeff", "0", "decoder orthogonality: weight of sum (w_i . w_j)^2 over the latents active in a batch"},
    {"ortho-margin", "0", "decoder orthogonality: only |w_i . w_j| beyond this margin is penalised"},
    {"tie-coeff", "0", "SAE: weight of sum_j ||W_enc_j - W_dec_j||^2 (encoder columns tied to decoder rows)"},
    {"ortho-scope", "batch", "decoder orthogonality: batch (pairs active in the batch) | row (pairs active in the same row, per row) | row-rarer (row; only the less frequent latent of a pair moves)"},
    {"dead-steps", "100", "steps without firing after which a latent is dead"},
    {"l1", "5", "relu: L1 coefficient (decoder-norm weighted)"},
    {"l1-warmup-steps", "0", "relu / jumprelu: steps over which the L1 / L0 coefficient ramps up"},
    {"l0-coeff", "1", "jumprelu: L0 coefficient"},
    {"jumprelu-bandwidth", "0.001", "jumprelu: straight-through rectangle kernel width"},
    {"jumprelu-init-threshold", "0.001", "jumprelu: initial threshold"},
    {"matryoshka", NULL, "topk / batchtopk: nested prefix sizes, e.g. 128,512,2048 (d_sae added last)"},
    {"normalize-per-sample", "0", "(x - mean) / std on every row"},
    {"dataset-norm", "1", "scale rows so that E||x|| = sqrt(d) (folded into the saved weights)"},
    {"unit-norm-decoder", "-1", "unit-norm decoder rows (-1 = on except for relu)"},
    {"b-dec-init", "median", "none | mean | median (geometric median of the first batch)"},
    {"dec-init-norm", "0.1", "initial decoder row norm"},
    {"model-name", "esm2", "name recorded in cfg.json"},
    // optimiser
    {"lr", "-1", "learning rate (-1 = 1e-4, relu 5e-5)"},
    {"beta1", "0.9", "Adam beta1"},
    {"beta2", "0.999", "Adam beta2"},
    {"eps", "1e-8", "Adam epsilon"},
    {"warmup-steps", "0", "linear learning-rate warm-up"},
    {"decay-steps", "0", "linear decay to 0 over the last N of --total-steps"},
    {"total-steps", "0", "planned steps (for --decay-steps; default --max-steps)"},
    {"clip", "1.0", "gradient norm clip (0 = off)"},
    // loop
    {"batch-rows", "4096", "rows per training step"},
    {"shuffle-rows", "65536", "shuffle buffer (rows; 0 = stream order)"},
    {"max-steps", "0", "stop after N steps (0 = end of stream)"},
    {"eval-every", "100", "validate every N steps"},
    {"ckpt-every", "500", "checkpoint every N steps"},
    {"log-every", "20", "log / heartbeat every N steps"},
    {"val-max-rows", "16384", "held-out rows kept for validation"},
    {"chunk-rows", "1024", "rows per pass in a step (memory: chunk x d_sae floats)"},
    {"seed", "1", "initialisation and shuffle seed"},
    {"threads", "0", "threads for BLAS and the sparse kernels (0 = all CPUs)"},
    {"out", "protsae-train", "output directory (checkpoints, metrics.jsonl)"},
    {"resume", "1", "continue from OUT/latest when it exists"},
    {"keep-ckpts", "1", "checkpoints kept besides the best"},
    {"heartbeat", NULL, "endpoint to push Heartbeats to (monitoring)"},
    {"metrics-port", "0", "serve Prometheus /metrics and /healthz on this port (0 = off)"},
    {"metrics-bind", "127.0.0.1", "address of the metrics endpoint (0.0.0.0 in containers)"},
    {"run-id", "run", "run id stamped on heartbeats"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

// ---- sources ---------------------------------------------------------------------------------
typedef struct {
  reader_opts_t ro;
  reader_t *r;
} file_src_t;

static int file_next(void *ctx, reader_batch_t *b, ps_err_t *err) {
  file_src_t *s = ctx;
  return reader_next_batch(s->r, b, err);
}

static int file_seek(void *ctx, const reader_pos_t *pos, ps_err_t *err) {
  file_src_t *s = ctx;
  reader_destroy(&s->r);
  int rc = reader_new(&s->r, &s->ro, err);
  if (rc) return rc;
  return reader_seek(s->r, pos, err);
}

typedef struct {
  void *sock;
  int producers;
  int64_t timeout_ms;
  Protsae__Envelope *env;
  trainer_wire_t w;          // the checks and the batch buffers (wire_in.h)
  int have_seek;
  reader_pos_t seek;
  wire_stats_t st;
  ps_metrics_t *mx;
  int m_rej_by[TW_REJ_N], m_wdrop;
  uint64_t logged[TW_REJ_N];
} wire_src_t;

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

// ---- heartbeats ------------------------------------------------------------------------------
typedef struct {
  void *sock;
  const char *run_id;
  uint64_t seq;
  ps_metrics_t *mx;  // Prometheus endpoint (NULL = off)
  int m_steps, m_rows, m_rate, m_loss, m_l0, m_dead, m_val, m_skipped;
} hb_t;

static void progress(void *ctx, const trainer_report_t *r, const sae_losses_t *L) {
  hb_t *h = ctx;
  if (h->mx) {
    ps_metrics_alive(h->mx);
    ps_metrics_set(h->mx, h->m_steps, (double)r->steps);
    ps_metrics_set(h->mx, h->m_rows, (double)r->rows_trained);
    ps_metrics_set(h->mx, h->m_rate, r->rows_per_s);
    ps_metrics_set(h->mx, h->m_loss, L->loss);
    ps_metrics_set(h->mx, h->m_l0, L->l0);
    ps_metrics_set(h->mx, h->m_dead, r->dead_fraction);
    ps_metrics_set(h->mx, h->m_val, r->last_val_mse);
    ps_metrics_set(h->mx, h->m_skipped, (double)r->rows_skipped_nonfinite);
  }
}

#define GET_I(name, var) ps_config_i64(cfg, name, &var, &err) < 0
#define GET_F(name, var) ps_config_f64(cfg, name, &var, &err) < 0

int main(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int rc = 1;
  void *zctx = NULL;
  file_src_t fs = {0};
  wire_src_t ws = {0};
  hb_t hb = {0};
  ps_pool_t *pool = NULL;
  ps_log_init("trainer");
  int crc = ps_config_main(&cfg, table, "protsae-trainer", argc, argv);
  if (crc >= 0) return crc;
  ps_signals_install();
  trainer_opts_t o;
  trainer_opts_default(&o);
  int64_t d_sae, k, kaux, dead, l1w, ws_, ds, ts_, bat, shuf, maxs, ev, ck, lg, vm, chunk, seed, threads, keep, epochs,
      sseed, producers, tmo, w_din, w_dout, w_maxdim, w_maxrows;
  double auxc, orthc, orthm, tiec, l1, l0c, jbw, jthr, din, lr, b1, b2, eps, clip, valf;
  int pern, dnorm, unorm, resume, skipnf;
  const char *s;
  if (GET_I("d-sae", d_sae) || GET_I("k", k) || GET_I("k-aux", kaux) || GET_I("dead-steps", dead) ||
      GET_I("l1-warmup-steps", l1w) || GET_I("warmup-steps", ws_) || GET_I("decay-steps", ds) ||
      GET_I("total-steps", ts_) || GET_I("batch-rows", bat) || GET_I("shuffle-rows", shuf) ||
      GET_I("max-steps", maxs) || GET_I("eval-every", ev) || GET_I("ckpt-every", ck) || GET_I("log-every", lg) ||
      GET_I("val-max-rows", vm) || GET_I("chunk-rows", chunk) || GET_I("seed", seed) || GET_I("threads", threads) ||
      GET_I("keep-ckpts", keep) || GET_I("epochs", epochs) || GET_I("split-seed", sseed) ||
      GET_I("producers", producers) || GET_I("timeout-ms", tmo) || GET_I("d-in", w_din) || GET_I("d-out", w_dout) ||
      GET_I("max-dim", w_maxdim) || GET_I("max-batch-rows", w_maxrows) || GET_F("aux-coeff", auxc) || GET_F("ortho-coeff", orthc) || GET_F("ortho-margin", orthm) || GET_F("tie-coeff", tiec) || GET_F("l1", l1) || GET_F("l0-coeff", l0c) ||
      GET_F("jumprelu-bandwidth", jbw) || GET_F("jumprelu-init-threshold", jthr) ||
      GET_F("dec-init-norm", din) || GET_F("lr", lr) || GET_F("beta1", b1) || GET_F("beta2", b2) || GET_F("eps", eps) ||
      GET_F("clip", clip) || GET_F("val-fraction", valf) ||
      ps_config_bool(cfg, "normalize-per-sample", &pern, &err) < 0 ||
      ps_config_bool(cfg, "dataset-norm", &dnorm, &err) < 0 || ps_config_bool(cfg, "resume", &resume, &err) < 0 ||
      ps_config_bool(cfg, "skip-nonfinite", &skipnf, &err) < 0 ||
      ps_config_i64(cfg, "unit-norm-decoder", &(int64_t){0}, &err) < 0)
    goto fail;
  {
    int64_t un;
    ps_config_i64(cfg, "unit-norm-decoder", &un, &err);
    unorm = (int)un;
  }
  if (sae_arch_parse(ps_config_str(cfg, "arch"), &o.cfg.arch)) {
    ps_err_set(&err, PS_ECONFIG, "--arch %s: expected topk, relu, batchtopk or jumprelu", ps_config_str(cfg, "arch"));
    goto fail;
  }
  if (d_sae <= 0 || bat <= 0 || ((o.cfg.arch == SAE_TOPK || o.cfg.arch == SAE_BATCHTOPK) && (k <= 0 || k > d_sae))) {
    ps_err_set(&err, PS_ECONFIG, "--d-sae %lld --k %lld --batch-rows %lld: need d_sae > 0, 0 < k <= d_sae, batch > 0",
               (long long)d_sae, (long long)k, (long long)bat);
    goto fail;
  }
  o.cfg.d_sae = d_sae;
  o.cfg.k = (int32_t)k;
  o.cfg.normalize_per_sample = pern;
  snprintf(o.cfg.level, sizeof o.cfg.level, "%s", ps_config_str(cfg, "level"));
  snprintf(o.cfg.model_name, sizeof o.cfg.model_name, "%s", ps_config_str(cfg, "model-name"));
  {
    int64_t layer, tlayer;
    ps_config_i64(cfg, "layer", &layer, &err);
    ps_config_i64(cfg, "target-layer", &tlayer, &err);
    o.cfg.layer = (int32_t)layer;
    o.cfg.target_layer = (int32_t)tlayer;
  }
  sae_train_opts_default(&o.train, &o.cfg);
  if (lr > 0) o.train.lr = lr;
  o.train.beta1 = b1;
  o.train.beta2 = b2;
  o.train.eps = eps;
  o.train.warmup_steps = ws_;
  o.train.decay_steps = ds;
  o.train.total_steps = ts_ ? ts_ : maxs;
  o.train.clip_norm = clip;
  o.train.l1_coeff = o.cfg.arch == SAE_RELU ? l1 : 0;
  o.train.l1_warmup_steps = l1w;
  o.train.l0_coeff = o.cfg.arch == SAE_JUMPRELU ? l0c : 0;
  o.train.jumprelu_bandwidth = jbw;
  o.train.jumprelu_init_threshold = jthr;
  if (ps_config_str(cfg, "matryoshka") &&
      sae_train_parse_matryoshka(&o.train, ps_config_str(cfg, "matryoshka"), d_sae, &err))
    goto fail;
  o.train.aux_coeff = auxc;
  o.train.ortho_coeff = orthc;
  o.train.ortho_margin = orthm;
  o.train.tie_coeff = tiec;
  o.train.dead_steps = dead;
  o.train.chunk_rows = chunk;
  if (kaux >= 0) o.train.k_aux = (int32_t)kaux;
  else o.train.k_aux = -1;  // resolved below from d_in
  if (unorm >= 0) o.train.unit_norm_decoder = unorm;
  o.batch_rows = bat;
  o.shuffle_rows = shuf;
  o.max_steps = maxs;
  o.eval_every = ev;
  o.ckpt_every = ck;
  o.log_every = lg;
  o.val_max_rows = vm;
  o.dataset_norm = dnorm;
  s = ps_config_str(cfg, "ortho-scope");
  o.train.ortho_per_row = !strcmp(s, "row") ? 1 : !strcmp(s, "row-rarer") ? 2 : !strcmp(s, "batch") ? 0 : -1;
  if (o.train.ortho_per_row < 0) {
    ps_err_set(&err, PS_ECONFIG, "--ortho-scope %s: expected batch, row or row-rarer", s);
    goto fail;
  }
  s = ps_config_str(cfg, "b-dec-init");
  o.b_dec_init = !strcmp(s, "none") ? 0 : !strcmp(s, "mean") ? 1 : !strcmp(s, "median") ? 2 : -1;
  if (o.b_dec_init < 0) {
    ps_err_set(&err, PS_ECONFIG, "--b-dec-init %s: expected none, mean or median", s);
    goto fail;
  }
  o.dec_init_norm = (float)din;
  o.seed = (uint64_t)seed;
  o.out_dir = ps_config_str(cfg, "out");
  o.resume = resume;
  o.keep_ckpts = (int)keep;

  if (threads > 0) openblas_set_num_threads((int)threads);
  pool = ps_pool_new((int)threads);

  trainer_hooks_t h = {0};
  h.stop = &ps_stop_flag;
  h.progress = progress;
  h.progress_ctx = &hb;
  hb.run_id = ps_config_str(cfg, "run-id");
  int64_t mport = 0;
  if (GET_I("metrics-port", mport) ||
      ps_metrics_start(&hb.mx, "trainer", "trainer-0", ps_config_str(cfg, "metrics-bind"), (int)mport, &err) < 0)
    goto fail;
  curve_metrics(hb.mx);
  ps_metrics_set_stall(hb.mx, 600);  // progress is reported every --log-every steps (and not while loading data)
  hb.m_steps = ps_metrics_add(hb.mx, "steps_total", PS_COUNTER, "optimizer steps");
  hb.m_rows = ps_metrics_add(hb.mx, "rows_total", PS_COUNTER, "rows trained on");
  hb.m_rate = ps_metrics_add(hb.mx, "rows_per_second", PS_GAUGE, "rows trained per second");
  hb.m_loss = ps_metrics_add(hb.mx, "loss", PS_GAUGE, "training loss (last logged step)");
  hb.m_l0 = ps_metrics_add(hb.mx, "l0", PS_GAUGE, "active latents per row (last logged step)");
  hb.m_dead = ps_metrics_add(hb.mx, "dead_fraction", PS_GAUGE, "share of latents dead");
  hb.m_val = ps_metrics_add(hb.mx, "val_mse", PS_GAUGE, "last validation MSE");
  hb.m_skipped = ps_metrics_add(hb.mx, "rows_skipped_nonfinite_total", PS_COUNTER, "NaN/Inf rows skipped");
  if (curve_from_config(cfg, &err) < 0) goto fail;
  zctx = zmq_ctx_new();
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  if (ps_config_str(cfg, "heartbeat")) {
    wire_opts_t ho = wo;
    ho.linger_ms = 0;
    if (!(hb.sock = wire_socket(zctx, ZMQ_PUSH, ps_config_str(cfg, "heartbeat"), &ho, &err))) goto fail;
  }
  if (ps_config_str(cfg, "emb") && ps_config_str(cfg, "in")) {
    ps_err_set(&err, PS_ECONFIG, "give either --emb (files) or --in (a reader stream), not both");
    goto fail;
  }
  if (ps_config_str(cfg, "emb")) {
    reader_opts_t *ro = &fs.ro;
    memset(ro, 0, sizeof *ro);
    ro->src.path = ps_config_str(cfg, "emb");
    ro->src.format = ps_config_str(cfg, "format");
    ro->src.ids_path = ps_config_str(cfg, "ids");
    ro->src.offsets_path = ps_config_str(cfg, "offsets");
    ro->src.level = !strcmp(ps_config_str(cfg, "level"), "residue") ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN;
    ro->src.layer = o.cfg.layer;
    ro->fasta_path = ps_config_str(cfg, "fasta");
    ro->target_path = ps_config_str(cfg, "target");
    ro->target_format = ps_config_str(cfg, "target-format");
    ro->target_layer = o.cfg.target_layer;
    ro->batch_rows = 1024;
    ro->val_fraction = valf;
    ro->seed = (uint64_t)sseed;
    ro->split = READER_SPLIT_ALL;
    ro->epochs = (uint32_t)(epochs > 0 ? epochs : 1);
    ro->skip_nonfinite = skipnf;
    if (reader_new(&fs.r, ro, &err)) goto fail;
    h.next = file_next;
    h.seek = file_seek;
    h.src_ctx = &fs;
  } else if (ps_config_str(cfg, "in")) {
    if (w_din < 0 || w_dout < 0 || w_maxdim < 1 || w_maxdim > (1 << 20) || w_din > (1 << 20) || w_dout > (1 << 20) ||
        w_maxrows < 1 || w_maxrows > (1 << 24)) {
      ps_err_set(&err, PS_ECONFIG, "--d-in, --d-out in 0..2^20, --max-dim in 1..2^20, --max-batch-rows in 1..2^24");
      goto fail;
    }
    trainer_wire_init(&ws.w, w_din, w_dout, w_maxdim);
    ws.mx = hb.mx;
    for (int r = 0; r < TW_REJ_N; r++) {  // no label API: protsae_messages_rejected_<reason>_total
      char name[96], help[128];
      snprintf(name, sizeof name, "messages_rejected_%s_total", tw_reject_name((tw_reject_t)r));
      snprintf(help, sizeof help, "stream messages dropped as %s", tw_reject_name((tw_reject_t)r));
      ws.m_rej_by[r] = ps_metrics_add(hb.mx, name, PS_COUNTER, help);
    }
    ws.m_wdrop = ps_metrics_add(hb.mx, "wire_dropped_malformed_total", PS_COUNTER,
                                "messages dropped by the wire: not an Envelope or an inconsistent batch");
    wo.max_msg = wire_max_embedding_msg(w_maxrows, (w_din ? w_din : w_maxdim) + (w_dout ? w_dout : w_maxdim));
    PS_INFO("trainer: input messages up to %lld bytes", (long long)wo.max_msg);
    if (!(ws.sock = wire_socket(zctx, ZMQ_PULL, ps_config_str(cfg, "in"), &wo, &err))) goto fail;
    ws.producers = (int)producers;
    ws.timeout_ms = tmo;
    h.next = wire_next;
    h.seek = wire_seek;
    h.src_ctx = &ws;
  } else {
    ps_err_set(&err, PS_ECONFIG, "no input: give --emb FILE or --in ENDPOINT (see --help)");
    goto fail;
  }
  trainer_report_t rep;
  int trc = trainer_run(&o, &h, pool, &rep, &err);
  if (trc) {
    if (rep.stopped == 2) PS_ERROR("protsae-trainer: diverged: %s (last good checkpoint: %s/latest)", err.msg, o.out_dir);
    goto fail;
  }
  printf("steps: %lld\nrows_trained: %lld\nrows_skipped_nonfinite: %lld\nval_rows: %lld\nbest_val_mse: %.6g\n"
         "best_step: %lld\nlast_val_fvu: %.6g\nlast_val_l0: %.2f\ndead_fraction: %.4f\nstopped: %s\ncheckpoint: %s/latest\n",
         (long long)rep.steps, (long long)rep.rows_trained, (long long)rep.rows_skipped_nonfinite,
         (long long)rep.val_rows, rep.best_val_mse, (long long)rep.best_step, rep.last_val_fvu, rep.last_val_l0,
         rep.dead_fraction, rep.stopped == 1 ? "signal" : "no", o.out_dir);
  if (fs.r) printf("records_skipped_nonfinite: %llu\n", (unsigned long long)reader_counts(fs.r)->skipped_nonfinite);
  rc = 0;
  goto out;
fail:
  PS_ERROR("protsae-trainer: %s", err.msg);
  rc = 1;
out:
  reader_destroy(&fs.r);
  wire_free(&ws.env);
  trainer_wire_free(&ws.w);
  wire_close(&ws.sock);
  wire_close(&hb.sock);
  ps_metrics_stop(&hb.mx);
  if (zctx) zmq_ctx_term(zctx);
  ps_pool_destroy(&pool);
  ps_config_destroy(&cfg);
  return rc;
}
