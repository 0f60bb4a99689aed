// protsae-trainer — trains an SAE / transcoder from an embedding stream.
// Wiring only: the options (read into trainer_args_t, then the trainer's settings), progress as
// Prometheus metrics, the source of batches (embedding files read in-process, below, or a reader
// stream over the wire: wire_in.c), signals. The loop lives in trainer.c, the step in sae_train*.c.
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "blascore.h"
#include "config.h"
#include "curve.h"
#include "log.h"
#include "metrics.h"
#include "reader.h"
#include "signals.h"
#include "trainer.h"
#include "wire_in.h"

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
    {"target-ids", NULL, "ids of --target, one per row (npy / single-matrix safetensors; default: --ids)"},
    {"target-layer", "-1", "layer of --target"},
    {"target-mode", "delta", "transcoder target: delta = target - input (h_{L+1} - h_L: the reference study's; needs "
                             "equal dimensions) | raw = the target rows as they are"},
    {"epochs", "1", "passes over the data (--emb)"},
    {"val-fraction", "0.1", "share of proteins held out for validation (--emb; --in: the reader's split, checked: "
                            "a warning when > 0 and the stream flags none)"},
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
    // Experimental (help starts with "experimental:"): --matryoshka measured worse than without it
    // on planted-feature recovery (docs/experiments/2026-12-03-planted-recovery.md) but is kept as the
    // published architecture (Bussmann et al. 2025) with PyTorch parity; --resample-* measured
    // within the noise (docs/experiments/2026-12-07-best-recipe.md). The decoder orthogonality
    // options (--ortho-coeff, --ortho-margin, --ortho-scope) measured worse in every setting tried
    // and were removed (2026-12-07; their figures stay in the 2026-12-03 experiments).
    {"arch", "topk", "topk | relu | batchtopk | jumprelu"},
    {"d-sae", "4096", "dictionary size (latents)"},
    {"k", "32", "active latents per row (topk; batchtopk: mean per row)"},
    {"k-aux", "-1", "AuxK latents (-1 = d_in / 2; 0 = off)"},
    {"aux-coeff", "0.03125", "AuxK loss weight"},
    {"tie-coeff", "0", "SAE: weight of sum_j ||W_enc_j - W_dec_j||^2 (encoder columns tied to decoder rows)"},
    {"dead-steps", "100", "steps without firing after which a latent is dead"},
    {"l1", "5", "relu: L1 coefficient (decoder-norm weighted)"},
    {"l1-warmup-steps", "0", "relu / jumprelu: steps over which the L1 / L0 coefficient ramps up"},
    {"l0-coeff", "1", "jumprelu: L0 coefficient"},
    {"jumprelu-bandwidth", "0.001", "jumprelu: straight-through rectangle kernel width"},
    {"jumprelu-init-threshold", "0.001", "jumprelu: initial threshold"},
    {"matryoshka", NULL, "experimental: topk / batchtopk: nested prefix sizes, e.g. 128,512,2048 (d_sae added last)"},
    {"normalize-per-sample", "0", "(x - mean) / std on every row"},
    {"dataset-norm", "1", "scale rows so that E||x|| = sqrt(d) (folded into the saved weights)"},
    {"unit-norm-decoder", "-1", "unit-norm decoder rows (-1 = on except for relu)"},
    {"b-dec-init", "median", "none | mean | median (geometric median of the first batch)"},
    {"dec-init-norm", "0.1", "initial decoder row norm"},
    {"init-from-data", "0", "initial decoder rows (SAE: and encoder columns) = random training rows minus b_dec (shuffle buffer and first batch), scaled to --dec-init-norm (part of the demo's default recipe)"},
    {"resample-every", "0", "experimental: topk / batchtopk SAE: every N steps, dead latents (--dead-steps) get the residual direction of shuffle-buffer rows drawn with probability ~ (squared error)^2 (0 = off)"},
    {"resample-dead-steps", "0", "experimental: resample the latents silent for this many steps (0 = --dead-steps)"},
    {"resample-until", "0.5", "experimental: resample only while step <= this fraction of --total-steps (0 = no limit)"},
    {"resample-enc-scale", "0.2", "experimental: a resampled latent's encoder norm = this x the mean live encoder norm (0 = tied to the decoder row)"},
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
    {"log-every", "20", "log (metrics.jsonl, the metrics endpoint) every N steps"},
    {"val-max-rows", "16384", "held-out rows kept for validation"},
    {"chunk-rows", "1024", "rows per pass in a step (memory: chunk x d_sae floats)"},
    {"seed", "1", "initialisation and shuffle seed"},
    {"threads", "0", "threads for BLAS and the sparse kernels (0 = all CPUs)"},
    {"out", "protsae-train", "output directory (checkpoints, metrics.jsonl)"},
    {"resume", "1", "continue from OUT/latest when it exists"},
    {"keep-ckpts", "1", "checkpoints kept besides the best"},
    {"metrics-port", "0", "serve Prometheus /metrics and /healthz on this port (0 = off)"},
    {"metrics-bind", "127.0.0.1", "address of the metrics endpoint (0.0.0.0 in containers)"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

// ---- options ------------------------------------------------------------------------------------
typedef struct {
  // source
  const char *emb, *format, *fasta, *ids, *offsets, *level, *target, *target_format, *target_ids, *target_mode;
  int64_t layer, target_layer, epochs, split_seed;
  double val_fraction;
  int skip_nonfinite;
  wire_src_opts_t wire;        // --in and its bounds
  // model
  const char *arch, *matryoshka, *b_dec_init, *model_name;
  int64_t d_sae, k, k_aux, dead_steps, l1_warmup, unit_norm;
  double aux_coeff, tie_coeff, l1, l0_coeff, jr_bandwidth, jr_init_threshold, dec_init_norm;
  int per_sample, dataset_norm, init_from_data;
  int64_t resample_every, resample_dead_steps;
  double resample_until, resample_enc_scale;
  // optimiser
  double lr, beta1, beta2, eps, clip;
  int64_t warmup, decay, total_steps;
  // loop
  int64_t batch_rows, shuffle_rows, max_steps, eval_every, ckpt_every, log_every, val_max_rows, chunk_rows, seed,
      threads, keep;
  const char *out;
  int resume;
  // monitoring
  int64_t metrics_port;
  const char *metrics_bind;
} trainer_args_t;

static int read_args(const ps_config_t *cfg, trainer_args_t *a, ps_err_t *err) {
  memset(a, 0, sizeof *a);
  const ps_config_bind_t b[] = {
      PS_CFG_STR("emb", &a->emb), PS_CFG_STR("format", &a->format), PS_CFG_STR("fasta", &a->fasta),
      PS_CFG_STR("ids", &a->ids), PS_CFG_STR("offsets", &a->offsets), PS_CFG_STR("level", &a->level),
      PS_CFG_I64("layer", &a->layer), PS_CFG_STR("target", &a->target), PS_CFG_STR("target-format", &a->target_format),
      PS_CFG_STR("target-ids", &a->target_ids), PS_CFG_STR("target-mode", &a->target_mode),
      PS_CFG_I64("target-layer", &a->target_layer), PS_CFG_I64("epochs", &a->epochs),
      PS_CFG_F64("val-fraction", &a->val_fraction), PS_CFG_I64("split-seed", &a->split_seed),
      PS_CFG_BOOL("skip-nonfinite", &a->skip_nonfinite), PS_CFG_STR("in", &a->wire.endpoint),
      PS_CFG_INT("producers", &a->wire.producers), PS_CFG_I64("timeout-ms", &a->wire.timeout_ms),
      PS_CFG_I64("d-in", &a->wire.d_in), PS_CFG_I64("d-out", &a->wire.d_out), PS_CFG_I64("max-dim", &a->wire.max_dim),
      PS_CFG_I64("max-batch-rows", &a->wire.max_batch_rows),
      PS_CFG_STR("arch", &a->arch), PS_CFG_I64("d-sae", &a->d_sae), PS_CFG_I64("k", &a->k),
      PS_CFG_I64("k-aux", &a->k_aux), PS_CFG_F64("aux-coeff", &a->aux_coeff),
      PS_CFG_F64("tie-coeff", &a->tie_coeff), PS_CFG_I64("dead-steps", &a->dead_steps), PS_CFG_F64("l1", &a->l1),
      PS_CFG_I64("l1-warmup-steps", &a->l1_warmup), PS_CFG_F64("l0-coeff", &a->l0_coeff),
      PS_CFG_F64("jumprelu-bandwidth", &a->jr_bandwidth), PS_CFG_F64("jumprelu-init-threshold", &a->jr_init_threshold),
      PS_CFG_STR("matryoshka", &a->matryoshka), PS_CFG_BOOL("normalize-per-sample", &a->per_sample),
      PS_CFG_BOOL("dataset-norm", &a->dataset_norm), PS_CFG_I64("unit-norm-decoder", &a->unit_norm),
      PS_CFG_STR("b-dec-init", &a->b_dec_init), PS_CFG_F64("dec-init-norm", &a->dec_init_norm),
      PS_CFG_BOOL("init-from-data", &a->init_from_data), PS_CFG_I64("resample-every", &a->resample_every),
      PS_CFG_I64("resample-dead-steps", &a->resample_dead_steps),
      PS_CFG_F64("resample-until", &a->resample_until), PS_CFG_F64("resample-enc-scale", &a->resample_enc_scale),
      PS_CFG_STR("model-name", &a->model_name),
      PS_CFG_F64("lr", &a->lr), PS_CFG_F64("beta1", &a->beta1), PS_CFG_F64("beta2", &a->beta2), PS_CFG_F64("eps", &a->eps),
      PS_CFG_I64("warmup-steps", &a->warmup), PS_CFG_I64("decay-steps", &a->decay),
      PS_CFG_I64("total-steps", &a->total_steps), PS_CFG_F64("clip", &a->clip),
      PS_CFG_I64("batch-rows", &a->batch_rows), PS_CFG_I64("shuffle-rows", &a->shuffle_rows),
      PS_CFG_I64("max-steps", &a->max_steps), PS_CFG_I64("eval-every", &a->eval_every),
      PS_CFG_I64("ckpt-every", &a->ckpt_every), PS_CFG_I64("log-every", &a->log_every),
      PS_CFG_I64("val-max-rows", &a->val_max_rows), PS_CFG_I64("chunk-rows", &a->chunk_rows),
      PS_CFG_I64("seed", &a->seed), PS_CFG_I64("threads", &a->threads), PS_CFG_STR("out", &a->out),
      PS_CFG_BOOL("resume", &a->resume), PS_CFG_I64("keep-ckpts", &a->keep),
      PS_CFG_I64("metrics-port", &a->metrics_port), PS_CFG_STR("metrics-bind", &a->metrics_bind),
      {0},
  };
  return ps_config_read(cfg, b, err);
}

// The trainer's settings from the options: checks and derived defaults.
static int trainer_opts_from_args(const trainer_args_t *a, trainer_opts_t *o, ps_err_t *err) {
  trainer_opts_default(o);
  if (sae_arch_parse(a->arch, &o->cfg.arch))
    return ps_err_set(err, PS_ECONFIG, "--arch %s: expected topk, relu, batchtopk or jumprelu", a->arch);
  if (a->d_sae <= 0 || a->batch_rows <= 0 ||
      ((o->cfg.arch == SAE_TOPK || o->cfg.arch == SAE_BATCHTOPK) && (a->k <= 0 || a->k > a->d_sae)))
    return ps_err_set(err, PS_ECONFIG, "--d-sae %lld --k %lld --batch-rows %lld: need d_sae > 0, 0 < k <= d_sae, batch > 0",
                      (long long)a->d_sae, (long long)a->k, (long long)a->batch_rows);
  o->cfg.d_sae = a->d_sae;
  o->cfg.k = (int32_t)a->k;
  o->cfg.normalize_per_sample = a->per_sample;
  snprintf(o->cfg.level, sizeof o->cfg.level, "%s", a->level);
  snprintf(o->cfg.model_name, sizeof o->cfg.model_name, "%s", a->model_name);
  o->cfg.layer = (int32_t)a->layer;
  o->cfg.target_layer = (int32_t)a->target_layer;
  sae_train_opts_t *t = &o->train;
  sae_train_opts_default(t, &o->cfg);
  if (a->lr > 0) t->lr = a->lr;
  t->beta1 = a->beta1;
  t->beta2 = a->beta2;
  t->eps = a->eps;
  t->warmup_steps = a->warmup;
  t->decay_steps = a->decay;
  t->total_steps = a->total_steps ? a->total_steps : a->max_steps;
  t->clip_norm = a->clip;
  t->l1_coeff = o->cfg.arch == SAE_RELU ? a->l1 : 0;
  t->l1_warmup_steps = a->l1_warmup;
  t->l0_coeff = o->cfg.arch == SAE_JUMPRELU ? a->l0_coeff : 0;
  t->jumprelu_bandwidth = a->jr_bandwidth;
  t->jumprelu_init_threshold = a->jr_init_threshold;
  if (a->matryoshka && sae_train_parse_matryoshka(t, a->matryoshka, a->d_sae, err)) return PS_ECONFIG;
  t->aux_coeff = a->aux_coeff;
  t->tie_coeff = a->tie_coeff;
  t->dead_steps = a->dead_steps;
  t->chunk_rows = a->chunk_rows;
  t->k_aux = a->k_aux >= 0 ? (int32_t)a->k_aux : -1;  // -1: resolved from d_in by the trainer
  if (a->unit_norm >= 0) t->unit_norm_decoder = (int)a->unit_norm;
  o->batch_rows = a->batch_rows;
  o->shuffle_rows = a->shuffle_rows;
  o->max_steps = a->max_steps;
  o->eval_every = a->eval_every;
  o->ckpt_every = a->ckpt_every;
  o->log_every = a->log_every;
  o->val_max_rows = a->val_max_rows;
  o->dataset_norm = a->dataset_norm;
  const char *s = a->b_dec_init;
  o->b_dec_init = !strcmp(s, "none") ? 0 : !strcmp(s, "mean") ? 1 : !strcmp(s, "median") ? 2 : -1;
  if (o->b_dec_init < 0) return ps_err_set(err, PS_ECONFIG, "--b-dec-init %s: expected none, mean or median", s);
  o->dec_init_norm = (float)a->dec_init_norm;
  o->init_from_data = a->init_from_data;
  o->resample_every = a->resample_every;
  o->resample_dead_steps = a->resample_dead_steps;
  o->resample_until = a->resample_until;
  o->resample_enc_scale = a->resample_enc_scale;
  o->seed = (uint64_t)a->seed;
  o->out_dir = a->out;
  o->resume = a->resume;
  o->keep_ckpts = (int)a->keep;
  if (strcmp(a->target_mode, "delta") && strcmp(a->target_mode, "raw"))
    return ps_err_set(err, PS_ECONFIG, "--target-mode %s: expected delta or raw", a->target_mode);
  o->target_delta = !strcmp(a->target_mode, "delta");
  o->input_name = a->emb ? a->emb : "of the stream (the reader's --emb)";
  o->target_name = a->target ? a->target : "of the stream (the reader's --target)";
  return 0;
}

// The in-process reader's settings from the options.
static void reader_opts_from_args(const trainer_args_t *a, reader_opts_t *ro) {
  memset(ro, 0, sizeof *ro);
  ro->src.path = a->emb;
  ro->src.format = a->format;
  ro->src.ids_path = a->ids;
  ro->src.offsets_path = a->offsets;
  ro->src.level = !strcmp(a->level, "residue") ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN;
  ro->src.layer = (int32_t)a->layer;
  ro->fasta_path = a->fasta;
  ro->target_path = a->target;
  ro->target_ids_path = a->target_ids;
  ro->target_format = a->target_format;
  ro->target_layer = (int32_t)a->target_layer;
  ro->batch_rows = 1024;
  ro->val_fraction = a->val_fraction;
  ro->seed = (uint64_t)a->split_seed;
  ro->split = READER_SPLIT_ALL;
  ro->epochs = (uint32_t)(a->epochs > 0 ? a->epochs : 1);
  ro->skip_nonfinite = a->skip_nonfinite;
}

// ---- source: embedding files, read in-process ----------------------------------------------------
// On resume the reader is reopened at the checkpoint's position.
typedef struct file_src {
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

static int file_src_open(file_src_t *s, const reader_opts_t *ro, trainer_hooks_t *h, ps_err_t *err) {
  s->ro = *ro;
  int rc = reader_new(&s->r, &s->ro, err);
  if (rc) return rc;
  h->next = file_next;
  h->seek = file_seek;
  h->src_ctx = s;
  return 0;
}

static uint64_t file_src_skipped_nonfinite(const file_src_t *s) { return s->r ? reader_counts(s->r)->skipped_nonfinite : 0; }

static void file_src_close(file_src_t *s) { reader_destroy(&s->r); }

// ---- progress: Prometheus metrics ---------------------------------------------------------------
typedef struct {
  ps_metrics_t *mx;  // Prometheus endpoint (NULL = off)
  int m_steps, m_rows, m_rate, m_loss, m_l0, m_dead, m_val, m_skipped;
} progress_t;

static void progress(void *ctx, const trainer_report_t *r, const sae_losses_t *L) {
  progress_t *p = ctx;
  if (!p->mx) return;
  ps_metrics_alive(p->mx);
  ps_metrics_set(p->mx, p->m_steps, (double)r->steps);
  ps_metrics_set(p->mx, p->m_rows, (double)r->rows_trained);
  ps_metrics_set(p->mx, p->m_rate, r->rows_per_s);
  ps_metrics_set(p->mx, p->m_loss, L->loss);
  ps_metrics_set(p->mx, p->m_l0, L->l0);
  ps_metrics_set(p->mx, p->m_dead, r->dead_fraction);
  ps_metrics_set(p->mx, p->m_val, r->last_val_mse);
  ps_metrics_set(p->mx, p->m_skipped, (double)r->rows_skipped_nonfinite);
}

static int progress_open(progress_t *p, const trainer_args_t *a, ps_err_t *err) {
  int rc = ps_metrics_start(&p->mx, "trainer", "trainer-0", a->metrics_bind, (int)a->metrics_port, err);
  if (rc < 0) return rc;
  curve_metrics(p->mx);
  ps_metrics_set_stall(p->mx, 600);  // progress is reported every --log-every steps (and not while loading data)
  p->m_steps = ps_metrics_add(p->mx, "steps_total", PS_COUNTER, "optimizer steps");
  p->m_rows = ps_metrics_add(p->mx, "rows_total", PS_COUNTER, "rows trained on");
  p->m_rate = ps_metrics_add(p->mx, "rows_per_second", PS_GAUGE, "rows trained per second");
  p->m_loss = ps_metrics_add(p->mx, "loss", PS_GAUGE, "training loss (last logged step)");
  p->m_l0 = ps_metrics_add(p->mx, "l0", PS_GAUGE, "active latents per row (last logged step)");
  p->m_dead = ps_metrics_add(p->mx, "dead_fraction", PS_GAUGE, "share of latents dead");
  p->m_val = ps_metrics_add(p->mx, "val_mse", PS_GAUGE, "last validation MSE");
  p->m_skipped = ps_metrics_add(p->mx, "rows_skipped_nonfinite_total", PS_COUNTER, "NaN/Inf rows skipped");
  return 0;
}

static void print_report(const trainer_report_t *rep, const char *out_dir, const file_src_t *fs) {
  printf("steps: %lld\nrows_trained: %lld\nrows_skipped_nonfinite: %lld\nval_rows: %lld\nbest_val_mse: %.6g\n"
         "best_step: %lld\nlast_val_fvu: %.6g\nlast_val_l0: %.2f\ndead_fraction: %.4f\nstopped: %s\ncheckpoint: %s/latest\n",
         (long long)rep->steps, (long long)rep->rows_trained, (long long)rep->rows_skipped_nonfinite,
         (long long)rep->val_rows, rep->best_val_mse, (long long)rep->best_step, rep->last_val_fvu, rep->last_val_l0,
         rep->dead_fraction, rep->stopped == 1 ? "signal" : "no", out_dir);
  if (fs->r) printf("records_skipped_nonfinite: %llu\n", (unsigned long long)file_src_skipped_nonfinite(fs));
}

// ---- main -----------------------------------------------------------------------------------------
int main(int argc, char **argv) {
  ps_blas_short_spin(argv);  // (blascore.h: ~10 ms of a 140 ms TopK step at 480 x 20000 on 2 cores)
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  file_src_t fs = {0};
  wire_src_t ws = {0};
  progress_t pg = {0};
  ps_pool_t *pool = NULL;
  trainer_args_t a;
  trainer_opts_t o;
  ps_log_init("trainer");
  int rc = ps_config_main(&cfg, table, "protsae-trainer", argc, argv);
  if (rc >= 0) return rc;
  ps_signals_install();
  if (read_args(cfg, &a, &err) < 0 || trainer_opts_from_args(&a, &o, &err)) goto fail;
  ps_blas_core_check();
  if (a.threads > 0) openblas_set_num_threads((int)a.threads);
  pool = ps_pool_new((int)a.threads);
  trainer_hooks_t h = {.stop = &ps_stop_flag, .progress = progress, .progress_ctx = &pg};
  if (progress_open(&pg, &a, &err) < 0 || curve_from_config(cfg, &err) < 0) goto fail;
  if (a.emb && a.wire.endpoint) {
    ps_err_set(&err, PS_ECONFIG, "give either --emb (files) or --in (a reader stream), not both");
    goto fail;
  }
  if (a.emb) {
    reader_opts_t ro;
    reader_opts_from_args(&a, &ro);
    if (file_src_open(&fs, &ro, &h, &err)) goto fail;
  } else if (a.wire.endpoint) {
    if (wire_src_open(&ws, &a.wire, pg.mx, &h, &err)) goto fail;
  } else {
    ps_err_set(&err, PS_ECONFIG, "no input: give --emb FILE or --in ENDPOINT (see --help)");
    goto fail;
  }
  trainer_report_t rep = {0};
  if (trainer_run(&o, &h, pool, &rep, &err)) {
    if (rep.stopped == 2) PS_ERROR("protsae-trainer: diverged: %s (last good checkpoint: %s/latest)", err.msg, o.out_dir);
    goto fail;
  }
  if (a.wire.endpoint && a.val_fraction > 0 && rep.val_rows == 0)
    PS_WARN("trainer: --val-fraction %g but the stream flagged no validation proteins (the reader's --val-fraction): "
            "no validation, no best checkpoint", a.val_fraction);
  print_report(&rep, o.out_dir, &fs);
  rc = 0;
  goto out;
fail:
  PS_ERROR("protsae-trainer: %s", err.msg);
  rc = 1;
out:
  file_src_close(&fs);
  wire_src_close(&ws);
  ps_metrics_stop(&pg.mx);
  ps_pool_destroy(&pool);
  ps_config_destroy(&cfg);
  return rc;
}
