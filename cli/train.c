// protsae train — step 2 of `protsae demo` / `run` alone: protsae-reader -> protsae-trainer with
// the demo's training recipe and keys (demo_train.c), on the user's embeddings, the SAE (or
// transcoder, with --target) written to --out as a SAELens directory: OUT/latest, and OUT/best
// (the lowest validation MSE) when --val-fraction > 0. With --save-best 1 the SAE reported is
// OUT/best. `protsae train CONFIG [--key value ...]` reads `key = value` lines like `protsae run`.
// Ends with `key: value` lines: sae, steps, train_rows, val_proteins, sae_step, best_val_mse,
// train_seconds, transcoder (and target_mode). Stage logs in OUT/logs/.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "demo_train.h"
#include "io.h"
#include "prom.h"
#include "safetensors.h"
#include "topo.h"
#include "verb.h"

static const ps_config_entry_t own[] = {
    {"out", "protsae-train", "output directory: the SAE (OUT/latest, OUT/best: SAELens directories), stage logs"},
    {"emb", NULL, "protein-level embeddings (npy, safetensors, h5, pt); needs --fasta"},
    {"seed", "1", "seed of the validation split (the reader's --seed; the demo's held-out proteins use the same hash)"},
    {NULL, NULL, NULL},
};

// the demo's keys this step uses (their help and defaults: cli/demo.c)
static const char *const keys[] = {"fasta", "ids", "target", "target-ids", "target-mode", "batch-rows",
                                   "arch", "d-sae", "k", "train-rows", "train-epochs", "train-batch", "lr", "lr-decay",
                                   "tie-coeff", "init-from-data", "normalize-per-sample", "aux-coeff", "k-aux",
                                   "train-threads", "ckpt-every", "val-fraction", "save-best", "dead-steps", "l1",
                                   "l1-warmup", "lr-warmup", "preset", NULL};

static ps_config_entry_t table[VERB_MAX_KEYS + 1];

// The final checkpoint's step and validation MSE (its trainer state's metadata).
static int final_figures(const char *dir, int64_t *step, double *val_mse, ps_err_t *err) {
  char path[PATH_MAX + 48];
  snprintf(path, sizeof path, "%s/trainer_state.safetensors", dir);
  st_file_t *f = NULL;
  int rc = st_open(&f, path, err);
  if (rc < 0) return rc;
  const char *s = st_metadata(f, "step"), *v = st_metadata(f, "best_val_mse"), *b = st_metadata(f, "best_step");
  if (!s) rc = ps_err_set(err, PS_EFORMAT, "%s: no step in its metadata", path);
  else *step = strtoll(s, NULL, 10);
  // the best checkpoint is the one whose step is its run's best step at that time
  *val_mse = v && b && strtoll(b, NULL, 10) == *step ? strtod(v, NULL) : NAN;
  st_close(&f);
  return rc;
}

static int train_main(ps_config_t *cfg) {
  ps_err_t err = {0};
  const char *emb_in = ps_config_str(cfg, "emb"), *fasta_in = ps_config_str(cfg, "fasta"),
             *ids_in = ps_config_str(cfg, "ids"), *out = ps_config_str(cfg, "out");
  char absout[PATH_MAX], logs[PATH_MAX + 8], emb[PATH_MAX], fasta[PATH_MAX], ids_buf[PATH_MAX + 16], lt[PATH_MAX + 16];
  char reader[PATH_MAX], trainer[PATH_MAX], final[PATH_MAX + 16];
  const char *ids = NULL;
  demo_train_plan_t plan;
  int64_t n_rows = 0, n_val = 0;
  if (demo_train_plan(cfg, 1, &plan, &err) < 0) goto fail;  // the keys, checked before anything runs
  if (!realpath(emb_in, emb) || !realpath(fasta_in, fasta)) {
    fprintf(stderr, "protsae train: %s: %s\n", realpath(emb_in, emb) ? fasta_in : emb_in, strerror(errno));
    return 1;
  }
  if (!cli_stage_path("reader", reader, sizeof reader) || !cli_stage_path("trainer", trainer, sizeof trainer)) {
    fprintf(stderr, "protsae train: cannot find the protsae-reader / protsae-trainer executables (set PROTSAE_LIBEXEC)\n");
    return 1;
  }
  if (mkdir(out, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "protsae train: --out %s: %s\n", out, strerror(errno));
    return 1;
  }
  if (!realpath(out, absout)) snprintf(absout, sizeof absout, "%s", out);
  snprintf(lt, sizeof lt, "%s/latest", absout);
  if (access(lt, F_OK) == 0) {
    fprintf(stderr, "protsae train: --out %s already holds a trained SAE (%s): remove it or choose another --out\n",
            out, lt);
    return 1;
  }
  snprintf(logs, sizeof logs, "%s/logs", absout);
  mkdir(logs, 0755);
  size_t el = strlen(emb);
  if (ids_in) {
    ids = ids_in;
  } else if (el > 4 && !strcmp(emb + el - 4, ".npy")) {  // rows in the FASTA's order
    int64_t nid = 0;
    snprintf(ids_buf, sizeof ids_buf, "%s/input.ids", absout);
    if (demo_fasta_ids(fasta, ids_buf, &nid, &err) < 0) goto fail;
    ids = ids_buf;
  }
  if (demo_train_count_rows(cfg, emb, ids, &n_rows, &n_val, &err) < 0 || demo_train_plan(cfg, n_rows, &plan, &err) < 0)
    goto fail;
  const char *tg = ps_config_str(cfg, "target");
  printf("protsae train: %s%s, d_sae %s, k %s, batch %lld, lr %g (linear decay to 0 over the last %lld of %lld steps), "
         "%lld epochs x %lld proteins = %lld rows (%lld validation proteins): protsae-reader -> protsae-trainer\n",
         plan.arch, tg ? " transcoder" : "", ps_config_str(cfg, "d-sae"), ps_config_str(cfg, "k"), (long long)plan.batch,
         plan.lr, (long long)plan.decay_steps, (long long)plan.steps, (long long)plan.epochs, (long long)n_rows,
         (long long)(plan.epochs * n_rows), (long long)n_val);
  double t0 = ps_mono_s();
  topo_t *t = topo_new(logs);
  demo_train_io_t io = {.trainer = trainer, .reader = reader, .work = absout, .sae_dir = absout, .emb = emb,
                        .fasta = fasta, .ids = ids, .reader_batch = ps_config_str(cfg, "batch-rows"),
                        .trainer_port = prom_free_port(), .reader_port = prom_free_port()};
  demo_train_topo(t, cfg, &plan, &io);
  int rc = verb_topo_run(t, "train", "training stream", logs, io.reader_port, io.trainer_port);
  topo_free(t);
  if (rc) return rc;
  double secs = ps_mono_s() - t0;
  int64_t steps = 0, rows = 0, sae_step = 0;
  double val_mse = NAN;
  demo_train_final(&plan, absout, final, sizeof final);
  if (demo_train_done(absout, &steps, &rows, &err) < 0 || final_figures(final, &sae_step, &val_mse, &err) < 0) goto fail;
  printf("sae: %s (SAELens directory)\nsteps: %lld\ntrain_rows: %lld\nval_proteins: %lld\nsae_step: %lld\n"
         "best_val_mse: %.6g\ntrain_seconds: %.1f\ntranscoder: %d\n", final, (long long)steps, (long long)rows,
         (long long)n_val, (long long)sae_step, val_mse, secs, tg != NULL);
  if (tg) printf("target_mode: %s\n", plan.target_mode);
  return 0;
fail:
  fprintf(stderr, "protsae train: %s\n", err.msg);
  return 1;
}

int cli_train(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = verb_parse("train", table, own, keys, argc, argv, &cfg);
  if (crc >= 0) return crc;
  if (!ps_config_str(cfg, "emb") || !ps_config_str(cfg, "fasta"))
    return ps_config_cli_bad(&cfg, table, "protsae train", "--emb and --fasta are needed (the embeddings and their "
                                                           "proteins)");
  int rc = train_main(cfg);
  ps_config_destroy(&cfg);
  return rc;
}
