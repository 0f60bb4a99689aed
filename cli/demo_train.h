// demo_train.h — step 2 of `protsae demo` / `run`: the SAE training recipe (the training keys
// of the demo's option table, cli/demo.c) made into a plan for the number of training rows at
// hand, and the protsae-reader -> protsae-trainer topology that runs the plan.
#ifndef PS_CLI_DEMO_TRAIN_H
#define PS_CLI_DEMO_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "topo.h"

typedef struct demo_train_plan {
  const char *arch;     // borrowed from the config
  int64_t n_rows;       // training rows per epoch (the proteins of the embeddings less the validation ones)
  int64_t epochs;       // --train-epochs, or (0) max(1, floor(train-rows / n_rows))
  int64_t batch;        // rows per step
  int64_t steps;        // ceil(epochs x n_rows / batch): the trainer's --total-steps
  int64_t decay_steps;  // round(lr-decay x steps): lr decays linearly to 0 over these last steps
  int64_t warmup_steps;     // round(lr-warmup x steps): lr ramps up linearly from 0 over these first steps
  int64_t l1_warmup_steps;  // round(l1-warmup x steps): relu / jumprelu sparsity penalty ramp
  int64_t ckpt_every;   // --ckpt-every, or (0) about 256K rows' worth of steps
  int64_t log_every;    // about 10K rows' worth of steps
  double lr;
  double val_fraction;  // --val-fraction: share of proteins the reader flags as validation
  int save_best;        // --save-best: the final SAE is DIR/best (lowest validation MSE), not DIR/latest
  const char *target_mode;  // --target-mode (a transcoder: --target given)
} demo_train_plan_t;

// The training rows per epoch of the embeddings at emb (ids: as the reader gets them, may be
// NULL): its records less the validation proteins (cfg's val-fraction, split by cfg's seed as the
// reader's --seed does); *n_val the latter. With cfg's target, also checks that the target's
// dimension equals the input's when target-mode is delta (err names both files). 0 or <0 with err
// naming the file.
int demo_train_count_rows(const ps_config_t *cfg, const char *emb, const char *ids, int64_t *n, int64_t *n_val,
                          ps_err_t *err);
// The plan for n_rows rows from cfg's training keys. 0, or PS_ECONFIG with err naming the key
// (save-best without val-fraction names both).
int demo_train_plan(const ps_config_t *cfg, int64_t n_rows, demo_train_plan_t *p, ps_err_t *err);

// Where the topology's stages read and write (borrowed strings).
typedef struct demo_train_io {
  const char *trainer, *reader;  // the stage executables
  const char *work;              // endpoint directory (train.ipc)
  const char *sae_dir;           // the trainer's --out
  const char *emb, *fasta, *ids; // the reader's input (ids may be NULL)
  const char *reader_batch;      // the reader's --batch-rows
  int trainer_port, reader_port; // metrics endpoints
} demo_train_io_t;

// Add the trainer (the sink; restarted with --resume 1 from its last checkpoint) and the reader
// (one restart group with it) to t. The reader sends every protein for plan->epochs passes, those
// of the validation split (val-fraction, seeded by seed: ps_id_in_fraction, the hash that also
// picks the demo's held-out proteins, so with val-fraction <= holdout they are among them)
// flagged on the batch: the trainer keeps them (first epoch) as its validation rows, evaluates
// every checkpoint interval and links DIR/best to the lowest validation MSE. A transcoder: the
// reader pairs cfg's target (target-ids) with the input, the trainer takes --target-mode.
void demo_train_topo(topo_t *t, const ps_config_t *cfg, const demo_train_plan_t *p, const demo_train_io_t *io);

// The SAE the later steps use: DIR/best with save-best, else DIR/latest, into buf.
void demo_train_final(const demo_train_plan_t *p, const char *sae_dir, char *buf, size_t cap);

// What the finished training did, from the state of sae_dir's last checkpoint (DIR/latest): steps
// and rows trained. 0 or <0 with err naming the file.
int demo_train_done(const char *sae_dir, int64_t *steps, int64_t *rows, ps_err_t *err);

#endif
