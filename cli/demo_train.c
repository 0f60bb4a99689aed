// demo_train.c — step 2 of `protsae demo` / `run`: the training recipe as a plan for the rows at
// hand (epochs from a row budget, the lr schedule's steps, checkpoint and log intervals scaled to
// the batch) and the protsae-reader -> protsae-trainer topology that runs it. The defaults are the
// recipe of docs/experiments/2026-12-06-recipe-budget.md (BatchTopK 2048, k 10, batch 64, lr 1.5e-3
// decayed to 0 over the last third, tied encoder, decoder started at data rows, 1.5M rows); the
// validation share and best checkpoint, and a transcoder's target, when the keys ask for them.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_train.h"
#include "emb.h"
#include "hash.h"
#include "safetensors.h"

// The first record's dimension of path into *dim.
static int first_dim(const char *path, const char *ids, uint32_t *dim, ps_err_t *err) {
  emb_source_t *src = NULL;
  emb_source_opts_t o = emb_source_opts_protein(path, ids);
  o.allow_nonfinite = 1;
  emb_record_t r;
  int rc = emb_source_open(&src, &o, err);
  if (rc >= 0 && (rc = emb_source_next(src, &r, err)) == 0) rc = ps_err_set(err, PS_ECONFIG, "%s: no records", path);
  if (rc > 0) *dim = r.dim, rc = 0;
  emb_source_destroy(&src);
  return rc;
}

// A transcoder's target (cfg's target) against the input emb: a delta target needs its dimension.
static int check_target(const ps_config_t *cfg, const char *emb, const char *ids, ps_err_t *err) {
  const char *tg = ps_config_str(cfg, "target"), *mode = ps_config_str(cfg, "target-mode");
  const char *tids = ps_config_str(cfg, "target-ids");
  uint32_t d = 0, od = 0;
  if (!tg || strcmp(mode, "delta")) return 0;
  int rc = first_dim(emb, ids, &d, err);
  if (rc >= 0) rc = first_dim(tg, tids ? tids : ids, &od, err);
  if (rc < 0) return rc;
  if (d != od)
    return ps_err_set(err, PS_ECONFIG, "--target-mode delta (target - input) needs equal dimensions: --emb %s has %u, "
                      "--target %s has %u (--target-mode raw trains on the target as it is)", emb, d, tg, od);
  return 0;
}

int demo_train_count_rows(const ps_config_t *cfg, const char *emb, const char *ids, int64_t *n, int64_t *n_val,
                          ps_err_t *err) {
  emb_source_t *src = NULL;
  emb_source_opts_t o = emb_source_opts_protein(emb, ids);
  o.allow_nonfinite = 1;  // counting only; the reader decides about bad rows
  double vf = 0;
  int64_t seed = 1;
  *n_val = 0;
  if (ps_config_f64(cfg, "val-fraction", &vf, err) < 0 || ps_config_i64(cfg, "seed", &seed, err) < 0) return PS_ECONFIG;
  int rc = check_target(cfg, emb, ids, err);
  if (rc < 0) return rc;
  if ((rc = emb_source_open(&src, &o, err)) < 0) return rc;
  *n = vf > 0 ? -1 : emb_source_count(src);
  if (*n < 0) {  // a format that does not know its length, or the validation ids to count: read it through
    emb_record_t r;
    *n = 0;
    while ((rc = emb_source_next(src, &r, err)) > 0) {
      (*n)++;
      if (vf > 0 && ps_id_in_fraction(r.id, (uint64_t)seed, vf)) (*n_val)++;
    }
  }
  emb_source_destroy(&src);
  if (rc < 0) return rc;
  *n -= *n_val;
  if (*n <= 0)
    return ps_err_set(err, PS_ECONFIG, "%s: no embeddings to train on (%lld validation proteins at --val-fraction %g)",
                      emb, (long long)*n_val, vf);
  return 0;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int demo_train_plan(const ps_config_t *cfg, int64_t n_rows, demo_train_plan_t *p, ps_err_t *err) {
  memset(p, 0, sizeof *p);
  int64_t budget = 0, ckpt = 0;
  double decay = 0, l1_warmup = 0, lr_warmup = 0;
  p->n_rows = n_rows;
  p->arch = ps_config_str(cfg, "arch");
  p->target_mode = ps_config_str(cfg, "target-mode");
  if (ps_config_f64(cfg, "val-fraction", &p->val_fraction, err) < 0 || ps_config_bool(cfg, "save-best", &p->save_best, err) < 0)
    return PS_ECONFIG;
  if (!(p->val_fraction >= 0 && p->val_fraction < 1))
    return ps_err_set(err, PS_ECONFIG, "--val-fraction %s: need a share in [0, 1)", ps_config_str(cfg, "val-fraction"));
  if (p->save_best && p->val_fraction <= 0)
    return ps_err_set(err, PS_ECONFIG, "--save-best 1 needs --val-fraction > 0 (the validation proteins it picks the "
                      "best checkpoint on); --val-fraction is %s", ps_config_str(cfg, "val-fraction"));
  if (strcmp(p->target_mode, "delta") && strcmp(p->target_mode, "raw"))
    return ps_err_set(err, PS_ECONFIG, "--target-mode %s: expected delta or raw", p->target_mode);
  if (ps_config_i64(cfg, "train-rows", &budget, err) < 0 || ps_config_i64(cfg, "train-epochs", &p->epochs, err) < 0 ||
      ps_config_i64(cfg, "train-batch", &p->batch, err) < 0 || ps_config_f64(cfg, "lr", &p->lr, err) < 0 ||
      ps_config_f64(cfg, "lr-decay", &decay, err) < 0 ||
      ps_config_f64(cfg, "l1-warmup", &l1_warmup, err) < 0 || ps_config_f64(cfg, "lr-warmup", &lr_warmup, err) < 0 ||
      ps_config_i64(cfg, "ckpt-every", &ckpt, err) < 0)
    return PS_ECONFIG;
  if (strcmp(p->arch, "topk") && strcmp(p->arch, "batchtopk") && strcmp(p->arch, "relu") && strcmp(p->arch, "jumprelu"))
    return ps_err_set(err, PS_ECONFIG, "--arch %s: expected topk, batchtopk, relu or jumprelu", p->arch);
  const char *bad = budget < 1 ? "--train-rows %s: need >= 1"
                    : p->epochs < 0 ? "--train-epochs %s: need >= 0 (0 = from --train-rows)"
                    : p->batch < 1 ? "--train-batch %s: need >= 1"
                    : !(p->lr > 0) ? "--lr %s: need > 0"
                    : !(decay >= 0 && decay <= 1) ? "--lr-decay %s: need a share of the steps in [0, 1]"
                    : !(l1_warmup >= 0 && l1_warmup <= 1) ? "--l1-warmup %s: need a share of the steps in [0, 1]"
                    : !(lr_warmup >= 0 && lr_warmup + decay <= 1)
                        ? "--lr-warmup %s: need a share of the steps in [0, 1 - lr-decay]"
                    : ckpt < 0 ? "--ckpt-every %s: need >= 0 (0 = about 256,000 rows)" : NULL;
  if (bad) {
    char key[32];
    sscanf(bad + 2, "%31[a-z0-9-]", key);
    return ps_err_set(err, PS_ECONFIG, bad, ps_config_str(cfg, key));
  }
  if (p->epochs == 0) p->epochs = budget / n_rows > 1 ? budget / n_rows : 1;
  if (p->epochs > UINT32_MAX / 2) return ps_err_set(err, PS_ECONFIG, "--train-epochs %lld: too many", (long long)p->epochs);
  p->steps = ceil_div(p->epochs * n_rows, p->batch);
  p->decay_steps = llround(decay * (double)p->steps);
  p->l1_warmup_steps = llround(l1_warmup * (double)p->steps);
  p->warmup_steps = llround(lr_warmup * (double)p->steps);
  // intervals in rows, as with the old batch of 512: a checkpoint every 500 steps, a log line every 20
  p->ckpt_every = ckpt ? ckpt : ceil_div(256000, p->batch);
  p->log_every = ceil_div(10240, p->batch);
  return 0;
}

void demo_train_topo(topo_t *t, const ps_config_t *cfg, const demo_train_plan_t *p, const demo_train_io_t *io) {
  // One restart group: a trainer or reader that dies is reported and both restart, the trainer
  // from its last checkpoint (--resume 1), the reader from the start of the (deterministic)
  // stream, of which the trainer skips what the checkpoint holds: the weights end the same.
  size_t ti = topo_add(t, "trainer", SV_SINK, 3, 1);
  argv_push(t->argv[ti], io->trainer);
  topo_arg(t, ti, "--in", "@ipc://%s/train.ipc", io->work);
  topo_arg(t, ti, "--out", "%s", io->sae_dir);
  topo_arg(t, ti, "--resume", "0");
  topo_arg(t, ti, "--arch", "%s", p->arch);
  static const char *const pass[] = {"d-sae", "k", "tie-coeff", "init-from-data", "normalize-per-sample", "aux-coeff",
                                     "k-aux", "dead-steps", "l1", NULL};
  for (const char *const *k = pass; *k; k++) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", *k);
    topo_arg(t, ti, flag, "%s", ps_config_str(cfg, *k));
  }
  topo_arg(t, ti, "--threads", "%s", ps_config_str(cfg, "train-threads"));
  topo_arg(t, ti, "--val-fraction", "%.9g", p->val_fraction);  // the reader's split: checked by the trainer
  topo_arg(t, ti, "--batch-rows", "%lld", (long long)p->batch);
  topo_arg(t, ti, "--lr", "%.9g", p->lr);
  topo_arg(t, ti, "--total-steps", "%lld", (long long)p->steps);
  topo_arg(t, ti, "--decay-steps", "%lld", (long long)p->decay_steps);
  topo_arg(t, ti, "--l1-warmup-steps", "%lld", (long long)p->l1_warmup_steps);
  topo_arg(t, ti, "--warmup-steps", "%lld", (long long)p->warmup_steps);
  topo_arg(t, ti, "--shuffle-rows", "16384");
  topo_arg(t, ti, "--eval-every", "%lld", (long long)p->ckpt_every);  // without validation rows: logs dead %
  if (ps_config_str(cfg, "target")) topo_arg(t, ti, "--target-mode", "%s", p->target_mode);
  topo_arg(t, ti, "--ckpt-every", "%lld", (long long)p->ckpt_every);
  topo_arg(t, ti, "--log-every", "%lld", (long long)p->log_every);
  topo_arg(t, ti, "--timeout-ms", "600000");
  topo_arg(t, ti, "--metrics-port", "%d", io->trainer_port);
  topo_restart_with(t, ti, "--resume", "1");
  size_t ri = topo_add(t, "train-reader", SV_SERVICE, 3, 1);
  argv_push(t->argv[ri], io->reader);
  topo_arg(t, ri, "--emb", "%s", io->emb);
  topo_arg(t, ri, "--fasta", "%s", io->fasta);
  topo_arg(t, ri, "--out", ">ipc://%s/train.ipc", io->work);
  topo_arg(t, ri, "--batch-rows", "%s", io->reader_batch);
  topo_arg(t, ri, "--epochs", "%lld", (long long)p->epochs);
  topo_arg(t, ri, "--val-fraction", "%.9g", p->val_fraction);  // flagged: the trainer never trains on them
  topo_arg(t, ri, "--seed", "%s", ps_config_str(cfg, "seed"));
  const char *tg = ps_config_str(cfg, "target"), *tids = ps_config_str(cfg, "target-ids");
  if (tg) topo_arg(t, ri, "--target", "%s", tg);
  if (tg && tids) topo_arg(t, ri, "--target-ids", "%s", tids);
  topo_arg(t, ri, "--run-id", "demo-train");
  topo_arg(t, ri, "--metrics-port", "%d", io->reader_port);
  if (io->ids) topo_arg(t, ri, "--ids", "%s", io->ids);
}

void demo_train_final(const demo_train_plan_t *p, const char *sae_dir, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s", sae_dir, p->save_best ? "best" : "latest");
}

int demo_train_done(const char *sae_dir, int64_t *steps, int64_t *rows, ps_err_t *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/latest/trainer_state.safetensors", sae_dir);
  st_file_t *f = NULL;
  int rc = st_open(&f, path, err);
  if (rc < 0) return rc;
  const char *s = st_metadata(f, "step"), *r = st_metadata(f, "rows_trained");
  if (s && r) {
    *steps = strtoll(s, NULL, 10);
    *rows = strtoll(r, NULL, 10);
  } else {
    rc = ps_err_set(err, PS_EFORMAT, "%s: no step / rows_trained in its metadata", path);
  }
  st_close(&f);
  return rc;
}
