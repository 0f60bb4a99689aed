// protsae demo — end to end on the built-in planted dataset (protsae synth over the real human
// Swiss-Prot proteins and their GO annotations). Today: generate (once, cached in the work
// directory), then stream it through the reader stage (a separate process over ipc://) into a
// checking sink, and print a summary. Later stages (trainer, encoder, scorer, interpreter) join
// this pipeline as they land.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const ps_config_entry_t table[] = {
    {"workdir", "protsae-demo", "where the dataset, state and results go"},
    {"seed", "1", "seed of the planted dataset"},
    {"dim", "480", "embedding dimension (480 = ESM2-35M)"},
    {"n-terms", "1000", "planted GO-term features"},
    {"batch-rows", "1024", "rows per batch"},
    {"regenerate", "0", "regenerate the dataset even when the work directory has one"},
    {"train-epochs", "100", "passes over the data for the SAE"},
    {"d-sae", "2048", "SAE dictionary size"},
    {"k", "8", "TopK: active latents per protein"},
    {NULL, NULL, NULL},
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cli_demo(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  if (ps_config_parse(&cfg, table, argc, argv, &err) < 0) {
    fprintf(stderr, "protsae demo: %s\n", err.msg);
    return 2;
  }
  if (ps_config_help_requested(cfg)) {
    ps_config_usage(table, "protsae demo", stdout);
    ps_config_destroy(&cfg);
    return 0;
  }
  int status = 1, regen = 0;
  char work[PATH_MAX], synth_dir[PATH_MAX], meta[PATH_MAX], datadir[PATH_MAX], reader[PATH_MAX];
  char emb[PATH_MAX], fasta[PATH_MAX], ep_bind[PATH_MAX + 16], ep_conn[PATH_MAX + 16];
  snprintf(work, sizeof work, "%s", ps_config_str(cfg, "workdir"));
  ps_config_bool(cfg, "regenerate", &regen, NULL);
  mkdir(work, 0755);
  snprintf(synth_dir, sizeof synth_dir, "%s/synth", work);
  snprintf(meta, sizeof meta, "%s/truth/meta.json", synth_dir);
  double t0 = now_s();

  printf("== protsae demo: planted GO-term features over real human proteins ==\n");
  if (regen || access(meta, R_OK) != 0) {
    if (!cli_data_dir(datadir, sizeof datadir)) {
      fprintf(stderr, "protsae demo: no protein data found: set PROTSAE_DATA to a directory holding "
                      "proteins.fasta.gz, proteins.tsv.gz, go_annotations.tsv.gz and go-2022-07-01.obo.gz "
                      "(../shared/data/human-swissprot, or scripts/fetch-annotations DIR)\n");
      goto out;
    }
    printf("[1/3] generating the planted dataset from %s into %s\n", datadir, synth_dir);
    fflush(stdout);
    char *sargv[] = {"synth", "--data", datadir, "--out", synth_dir, "--seed", (char *)ps_config_str(cfg, "seed"),
                     "--dim", (char *)ps_config_str(cfg, "dim"), "--n-terms", (char *)ps_config_str(cfg, "n-terms"),
                     NULL};
    if (synth_main(11, sargv) != 0) {
      fprintf(stderr, "protsae demo: generating the dataset failed\n");
      goto out;
    }
  } else {
    printf("[1/3] reusing the planted dataset in %s (--regenerate to rebuild)\n", synth_dir);
  }
  if (!cli_stage_path("reader", reader, sizeof reader)) {
    fprintf(stderr, "protsae demo: cannot find the protsae-reader executable (set PROTSAE_LIBEXEC)\n");
    goto out;
  }
  snprintf(emb, sizeof emb, "%s/emb.npy", synth_dir);
  snprintf(fasta, sizeof fasta, "%s/proteins.fasta", synth_dir);
  char absw[PATH_MAX];
  if (!realpath(work, absw)) snprintf(absw, sizeof absw, "%s", work);
  snprintf(ep_bind, sizeof ep_bind, "@ipc://%s/reader.ipc", absw);
  snprintf(ep_conn, sizeof ep_conn, ">ipc://%s/reader.ipc", absw);
  printf("[2/3] streaming it: protsae-reader -> ipc:// -> sink\n");
  fflush(stdout);
  char *rargv[] = {reader, "--emb", emb, "--fasta", fasta, "--out", ep_bind, "--batch-rows",
                   (char *)ps_config_str(cfg, "batch-rows"), "--run-id", "demo", NULL};
  pid_t pid = cli_spawn(rargv);
  if (pid < 0) goto out;
  char *cargv[] = {"consume", "--in", ep_conn, "--timeout-ms", "120000", NULL};
  int crc = cli_consume(5, cargv);
  int rrc = cli_wait(pid);
  if (rrc != 0) {
    fprintf(stderr, "protsae demo: the reader stage failed (exit %d); see its log above\n", rrc);
    goto out;
  }
  if (crc != 0) goto out;

  // [3/3] train a TopK SAE on the stream, then measure how many planted features it recovered
  char trainer[PATH_MAX], sae_dir[PATH_MAX], best[PATH_MAX + 8], truth[PATH_MAX + 32], tb[PATH_MAX + 16],
      tc[PATH_MAX + 16], cmd[PATH_MAX + 32];
  if (!cli_stage_path("trainer", trainer, sizeof trainer)) {
    fprintf(stderr, "protsae demo: cannot find the protsae-trainer executable (set PROTSAE_LIBEXEC)\n");
    goto out;
  }
  snprintf(sae_dir, sizeof sae_dir, "%s/sae", absw);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", sae_dir);
  if (system(cmd) != 0) goto out;
  snprintf(tb, sizeof tb, "@ipc://%s/train.ipc", absw);
  snprintf(tc, sizeof tc, ">ipc://%s/train.ipc", absw);
  printf("[3/3] training a TopK SAE (d_sae %s, k %s, %s epochs): protsae-reader -> ipc:// -> protsae-trainer\n",
         ps_config_str(cfg, "d-sae"), ps_config_str(cfg, "k"), ps_config_str(cfg, "train-epochs"));
  fflush(stdout);
  char *targv[] = {trainer, "--in", tb, "--out", sae_dir, "--resume", "0", "--d-sae", (char *)ps_config_str(cfg, "d-sae"),
                   "--k", (char *)ps_config_str(cfg, "k"), "--batch-rows", "512", "--lr", "1e-3",
                   "--shuffle-rows", "16384", "--eval-every", "500", "--ckpt-every", "2000", "--log-every", "500",
                   "--timeout-ms", "600000", NULL};
  pid_t tpid = cli_spawn(targv);
  if (tpid < 0) goto out;
  char *r2argv[] = {reader, "--emb", emb, "--fasta", fasta, "--out", tc, "--batch-rows",
                    (char *)ps_config_str(cfg, "batch-rows"), "--epochs", (char *)ps_config_str(cfg, "train-epochs"),
                    "--run-id", "demo-train", NULL};
  pid_t rpid = cli_spawn(r2argv);
  int r2 = rpid < 0 ? -1 : cli_wait(rpid);
  int t2 = cli_wait(tpid);
  if (r2 != 0 || t2 != 0) {
    fprintf(stderr, "protsae demo: training failed (reader exit %d, trainer exit %d); see the log above\n", r2, t2);
    goto out;
  }
  snprintf(best, sizeof best, "%s/latest", sae_dir);
  snprintf(truth, sizeof truth, "%s/truth/directions.npy", synth_dir);
  printf("planted features recovered by the SAE (best decoder-row cosine per planted GO-term direction):\n");
  fflush(stdout);
  char *vargv[] = {"recovery", "--sae", best, "--truth", truth, NULL};
  if (cli_recovery(5, vargv) != 0) goto out;
  printf("sae: %s (SAELens directory; %s/best is the best on validation MSE)\n", best, sae_dir);
  printf("seconds: %.1f\n", now_s() - t0);
  printf("dataset: %s\n", synth_dir);
  status = 0;
out:
  ps_config_destroy(&cfg);
  return status;
}
