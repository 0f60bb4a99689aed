// trainer.h — the training loop: stream in, shuffle, train, validate, checkpoint, resume.
//
// Rows arrive as reader batches (in-process reader or the wire). Validation proteins (the
// reader's seeded split, is_val) fill a held-out buffer in the first epoch (at most
// val_max_rows rows); training rows pass through a shuffle buffer of shuffle_rows rows: once it
// is full, each new row replaces a uniformly chosen resident, which joins the next training
// batch (at the end of the stream the residents drain in random order). Every eval_every steps
// the model is evaluated on the held-out rows (MSE, FVU, L0, dead fraction, AuxK loss) and the
// best checkpoint on validation MSE is kept.
//
// Checkpoints (every ckpt_every steps, at the end, on SIGTERM/SIGINT): OUT/ckpt-<step>/ holds a
// SAELens directory (cfg.json + sae_weights.safetensors, dataset scale folded in) and
// trainer_state.safetensors (raw weights, Adam moments, dead-latent counters, shuffle buffer,
// pending batch, held-out rows, RNG, stream position, dataset scales; jumprelu: log_threshold and
// its Adam moments). Each is written to
// ckpt-<step>.tmp/ (files fsynced), renamed, the directory fsynced, then the symlink OUT/latest
// (and OUT/best) atomically replaced; older checkpoints are deleted. After kill -9 a run
// restarted with resume=1 continues from OUT/latest and ends with the same weights as an
// uninterrupted run (bitwise at the same thread count; in-process source).
// Divergence (non-finite loss or gradient) stops training with the last good checkpoint kept.
// Memory: params x 4 (weights, gradient, 2 Adam moments) + shuffle_rows + batch_rows +
// val_max_rows rows + chunk workspace (sae_train.h), independent of the stream length.
#ifndef PS_TRAINER_H
#define PS_TRAINER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "pool.h"
#include "reader.h"
#include "sae.h"
#include "sae_train.h"

typedef struct trainer_opts {
  sae_cfg_t cfg;               // d_in / d_out taken from the stream when 0
  sae_train_opts_t train;
  int64_t batch_rows;          // rows per training step
  int64_t shuffle_rows;        // shuffle buffer (0 = stream order)
  int64_t max_steps;           // 0 = until the stream ends
  int64_t eval_every, ckpt_every, log_every;   // steps (0 = never / only at the end)
  int64_t val_max_rows;
  int dataset_norm;            // scale inputs (and targets) so that E||x|| = sqrt(d)
  int b_dec_init;              // 0 zeros, 1 mean, 2 geometric median of the first batch
  float dec_init_norm;
  int init_from_data;          // decoder rows (and encoder columns) from training rows - b_dec at step 0
  int64_t resample_every;      // topk / batchtopk SAE: every N steps the dead latents are resampled
                               // toward the worst-reconstructed shuffle-buffer rows (0 = off)
  int64_t resample_dead_steps; // ... the latents without firing for this many steps (0 = train.dead_steps)
  double resample_until;       // ... while step <= resample_until x train.total_steps (no limit when 0)
  double resample_enc_scale;   // encoder norm of a resampled latent: this x the mean live norm (0: tied)
  uint64_t seed;
  const char *out_dir;
  int resume;
  int keep_ckpts;              // besides best
  // Transcoder target (a stream with target rows): 1 = delta, the target row minus the input row
  // (h_{L+1} - h_L, per row: mean-pooled rows at protein level, per residue at residue level),
  // taken at intake so training, validation, scales and the saved cfg.json ("protsae_target")
  // all see it; needs d_in == d_out. 0 = raw, the target rows as they come.
  int target_delta;
  const char *input_name, *target_name;  // where input and target come from, for errors (may be NULL)
} trainer_opts_t;

void trainer_opts_default(trainer_opts_t *o);

// Source of batches: 1 = *b filled (borrowed until the next call), 0 = end, <0 = error.
typedef int (*trainer_next_fn)(void *ctx, reader_batch_t *b, ps_err_t *err);
// On resume the source must continue from pos (called once before the first next).
typedef int (*trainer_seek_fn)(void *ctx, const reader_pos_t *pos, ps_err_t *err);

typedef struct trainer_report {
  int64_t steps, rows_trained, rows_skipped_nonfinite, val_rows;
  double best_val_mse, last_val_mse, last_val_fvu, last_val_l0, dead_fraction;
  double rows_per_s;
  int64_t best_step;
  int resumed_from_step;       // -1 when not resumed
  int stopped;                 // 1 = stop flag, 2 = diverged
} trainer_report_t;

typedef void (*trainer_progress_fn)(void *ctx, const trainer_report_t *r, const sae_losses_t *last);

typedef struct trainer_hooks {
  trainer_next_fn next;
  trainer_seek_fn seek;
  void *src_ctx;
  trainer_progress_fn progress;   // every log_every steps (may be NULL)
  void *progress_ctx;
  volatile sig_atomic_t *stop;
} trainer_hooks_t;

// Run to the end of the stream (or max_steps / stop). pool may be NULL.
int trainer_run(const trainer_opts_t *o, const trainer_hooks_t *h, ps_pool_t *pool, trainer_report_t *rep,
                ps_err_t *err);

#endif
