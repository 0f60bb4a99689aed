// protsae demo — end to end on the built-in planted dataset (protsae synth over the real human
// Swiss-Prot proteins and their GO annotations), each stage a separate process over ipc://:
//   1. generate the dataset (once; cached in the work directory)
//   2. train a TopK SAE: protsae-reader -> protsae-trainer; planted-feature recovery
//   3. encode: protsae-reader -> 2 x protsae-encoder -> protsae-scorer (RocksDB feature store), and
//      the same with the raw dimensions (protsae-encoder --neurons) for the baseline
//   4. GO enrichment of every feature and every neuron (protsae enrich --db)
//   5. explanations scored on held-out proteins (protsae-interpreter; offline unless a key is set)
//   6. GO prediction on held-out proteins: --holdout of the proteins (seeded) are left out of the
//      enrichment of step 4, dropped as one proteome into WORKDIR/annotate/drop and annotated by
//      `protsae annotate --once 1 --evaluate 1` (Fmax against their propagated annotations)
// then the report and a summary of `key: value` lines. Stage logs go to WORKDIR/logs/.
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>

#include <jansson.h>
#include <math.h>

#include "cli.h"
#include "config.h"
#include "prom.h"
#include "emb.h"
#include "fasta.h"
#include "log.h"
#include "npy.h"
#include "strmap.h"

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
    {"encoders", "2", "encoder processes"},
    {"ckpt-every", "500", "trainer checkpoint interval (steps): a restarted trainer resumes from the last one"},
    {"retrain", "1", "0: reuse the SAE already trained in the work directory (sae/latest) when there is one"},
    {"n-interpret", "200", "features and neurons explained and scored (each)"},
    {"holdout", "0.1", "share of proteins held out of the GO enrichment and annotated in step 6 (seeded by --seed)"},
    {"mode", "auto", "interpreter: auto (Claude when ANTHROPIC_API_KEY is set, else offline) | offline | anthropic"},
    {"emb", NULL, "your own protein-level embeddings (npy, safetensors, h5, pt) instead of the planted dataset "
                  "(protsae run CONFIG); needs --fasta"},
    {"fasta", NULL, "the FASTA of --emb (ids are checked against it)"},
    {"ids", NULL, "ids of --emb's rows when it is a single matrix (default for .npy: the FASTA's order)"},
    {"data", NULL, "annotation directory (proteins.tsv.gz, go_annotations.tsv.gz, go-*.obo.gz; default "
                   "$PROTSAE_DATA or ../shared/data/human-swissprot)"},
    {NULL, NULL, NULL},
};

int demo_has_option(const char *name) {
  for (const ps_config_entry_t *e = table; e->name; e++)
    if (!strcmp(e->name, name)) return 1;
  return 0;
}

// The FASTA's ids in order, one a line, into path (the ids of a .npy given without them).
static int fasta_ids(const char *fasta, const char *path, int64_t *n, ps_err_t *err) {
  fasta_reader_t *fr = NULL;
  FILE *f = fopen(path, "w");
  if (!f) return ps_err_set(err, PS_EIO, "%s: cannot write", path);
  int rc = fasta_open(&fr, fasta, err);
  fasta_record_t r;
  *n = 0;
  while (rc >= 0 && (rc = fasta_next(fr, &r, err)) > 0) {
    fprintf(f, "%s\n", r.id);
    (*n)++;
  }
  fasta_close(&fr);
  if (fclose(f) != 0 && rc >= 0) rc = ps_err_set(err, PS_EIO, "%s: write failed", path);
  return rc < 0 ? rc : 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char g_logs[PATH_MAX];

static void log_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s.log", g_logs, name); }

static int need_stage(const char *name, char *buf, size_t cap) {
  if (cli_stage_path(name, buf, cap)) return 0;
  fprintf(stderr, "protsae demo: cannot find the protsae-%s executable (set PROTSAE_LIBEXEC)\n", name);
  return -1;
}

static void tail_log(const char *name) {
  char p[PATH_MAX + 64], cmd[PATH_MAX + 96];
  log_path(p, sizeof p, name);
  fprintf(stderr, "--- last lines of %s ---\n", p);
  snprintf(cmd, sizeof cmd, "tail -n 8 '%s' >&2", p);
  if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
}

// reader -> n encoders -> scorer into `store`; neurons: the encoders use the raw dimensions.
static int encode_stream(const char *name, const char *work, const char *emb, const char *fasta, const char *ids,
                         const char *sae, int n_enc, const char *batch_rows, const char *store) {
  char reader[PATH_MAX], encoder[PATH_MAX], scorer[PATH_MAX];
  if (need_stage("reader", reader, sizeof reader) || need_stage("encoder", encoder, sizeof encoder) ||
      need_stage("scorer", scorer, sizeof scorer))
    return -1;
  char rd_b[PATH_MAX + 32], rd_c[PATH_MAX + 32], sc_b[PATH_MAX + 32], sc_c[PATH_MAX + 32], ct_b[PATH_MAX + 32],
      ct_c[PATH_MAX + 32], lg[PATH_MAX + 64], cmd[PATH_MAX + 32], nenc[16];
  snprintf(rd_b, sizeof rd_b, "@ipc://%s/%s-rd.ipc", work, name);
  snprintf(rd_c, sizeof rd_c, ">ipc://%s/%s-rd.ipc", work, name);
  snprintf(sc_b, sizeof sc_b, "@ipc://%s/%s-sc.ipc", work, name);
  snprintf(sc_c, sizeof sc_c, ">ipc://%s/%s-sc.ipc", work, name);
  snprintf(ct_b, sizeof ct_b, "@ipc://%s/%s-ctl.ipc", work, name);
  snprintf(ct_c, sizeof ct_c, ">ipc://%s/%s-ctl.ipc", work, name);
  snprintf(nenc, sizeof nenc, "%d", n_enc);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", store);
  if (system(cmd) != 0) return -1;
  char sname[64];
  snprintf(sname, sizeof sname, "%s-scorer", name);
  log_path(lg, sizeof lg, sname);
  char *sargv[] = {scorer, "--db", (char *)store, "--in", sc_b, "--control", ct_c, "--run-id", (char *)name, NULL};
  pid_t sp = cli_spawn_log(sargv, lg);
  if (sp < 0) return -1;
  pid_t ep[16];
  int ne = 0;
  for (int i = 0; i < n_enc && i < 16; i++) {
    char ename[64], prod[32];
    snprintf(ename, sizeof ename, "%s-encoder-%d", name, i);
    snprintf(prod, sizeof prod, "encoder-%d", i);
    log_path(lg, sizeof lg, ename);
    char *eargv[] = {encoder, sae ? "--sae" : "--neurons", sae ? (char *)sae : "1", "--in", rd_c, "--out", sc_c,
                     "--producer", prod, "--run-id", (char *)name, NULL};
    if ((ep[ne] = cli_spawn_log(eargv, lg)) > 0) ne++;
  }
  char rname[64];
  snprintf(rname, sizeof rname, "%s-reader", name);
  log_path(lg, sizeof lg, rname);
  char mport[16];
  int port = prom_free_port();  // the reader's metrics: the progress bar
  snprintf(mport, sizeof mport, "%d", port);
  char *rargv[] = {reader, "--emb", (char *)emb, "--fasta", (char *)fasta, "--out", rd_b, "--control", ct_b,
                   "--consumers", nenc, "--batch-rows", (char *)batch_rows, "--run-id", (char *)name,
                   "--metrics-port", mport, ids ? "--ids" : NULL, (char *)ids, NULL};
  pid_t rp = cli_spawn_log(rargv, lg);
  // Supervision: a stage that dies before the scorer has every batch is reported and restarted
  // (at most 3 times each); the store ends the same (exactly-once apply, re-send of lost batches;
  // a restarted reader starts over and the scorer ignores what it already has).
  int restarts = 0, src = -1, rrc = -1, fail_stage = 0;
  prom_progress_t prog;
  prom_progress_init(&prog, name, port);
  for (;;) {
    int st;
    pid_t w = waitpid(-1, &st, WNOHANG);
    if (w == 0) {
      prom_progress_poll(&prog);
      usleep(200 * 1000);
      continue;
    }
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    const char *what = NULL;
    char *const *av = NULL;
    char lgn[64];
    pid_t *slot = NULL;
    if (w == sp) {
      if (code == 0) {
        src = 0;
        break;
      }
      what = "scorer", av = sargv, slot = &sp;
      snprintf(lgn, sizeof lgn, "%s", sname);
    } else if (w == rp) {
      if (code == 0) {  // the reader ends after the scorer said it has everything
        rrc = 0;
        rp = -1;
        continue;
      }
      what = "reader", av = rargv, slot = &rp;
      snprintf(lgn, sizeof lgn, "%s", rname);
    } else {
      for (int i = 0; i < ne; i++)
        if (w == ep[i]) {
          what = "encoder", slot = &ep[i];
          snprintf(lgn, sizeof lgn, "%s-encoder-%d", name, i);
        }
      if (!what) continue;  // not ours
    }
    if (++restarts > 3 * (n_enc + 2)) {
      fprintf(stderr, "protsae demo: %s (%s) exited with status %d; too many restarts, giving up\n", what, name, code);
      fail_stage = 1;
      break;
    }
    prom_progress_end(&prog);
    printf("      ! %s (%s) exited with status %d%s: restarting it (see logs/%s.log)\n", what, name, code,
           code > 128 ? " (killed)" : "", lgn);
    fflush(stdout);
    log_path(lg, sizeof lg, lgn);
    if (!av) {  // an encoder: rebuild its argv
      int i = (int)(slot - ep);
      char prod[32];
      snprintf(prod, sizeof prod, "encoder-%d", i);
      char *eargv[] = {encoder, sae ? "--sae" : "--neurons", sae ? (char *)sae : "1", "--in", rd_c, "--out", sc_c,
                       "--producer", prod, "--run-id", (char *)name, NULL};
      *slot = cli_spawn_log(eargv, lg);
    } else {
      *slot = cli_spawn_log(av, lg);
    }
  }
  prom_progress_end(&prog);
  for (int i = 0; i < ne; i++) kill(ep[i], SIGTERM);
  for (int i = 0; i < ne; i++) cli_wait(ep[i]);
  if ((src != 0 || fail_stage) && rp > 0) kill(rp, SIGTERM);
  if (rp > 0) rrc = cli_wait(rp);
  if (src != 0 || rrc != 0) {
    fprintf(stderr, "protsae demo: encoding (%s) failed: scorer exit %d, reader exit %d\n", name, src, rrc);
    tail_log(sname);
    tail_log(rname);
    if (sp > 0 && src != 0) kill(sp, SIGTERM);
    return -1;
  }
  if (restarts) printf("      %d stage restart%s during encoding (%s); the store is complete\n", restarts,
                       restarts > 1 ? "s" : "", name);
  return 0;
}

// Held-out proteins: a seeded hash of the id (splitmix64 of FNV-1a ^ seed) below frac.
static int held_out(const char *id, uint64_t seed, double frac) {
  uint64_t z = strmap_hash(id) ^ (seed * 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53 < frac;
}

// The held-out proteins of the dataset as one proteome: dir/heldout.fasta, .npy, .ids; their ids
// also in ids_out. Streams the FASTA and the embeddings (one record at a time).
static int write_holdout(const char *fasta, const char *emb, const char *ids, const char *dir, const char *ids_out,
                         uint64_t seed, double frac, int64_t *n_out, ps_err_t *err) {
  char p[PATH_MAX + 32];
  fasta_reader_t *fr = NULL;
  emb_source_t *src = NULL;
  npy_writer_t *w = NULL;
  FILE *ff = NULL, *fi = NULL, *fo = NULL;
  int rc = 0;
  *n_out = 0;
  snprintf(p, sizeof p, "%s/heldout.fasta", dir);
  ff = fopen(p, "w");
  snprintf(p, sizeof p, "%s/heldout.ids", dir);
  fi = fopen(p, "w");
  fo = fopen(ids_out, "w");
  if (!ff || !fi || !fo) {
    rc = ps_err_set(err, PS_EIO, "%s: cannot write the held-out proteome", dir);
    goto out;
  }
  if ((rc = fasta_open(&fr, fasta, err)) < 0) goto out;
  fasta_record_t r;
  while ((rc = fasta_next(fr, &r, err)) > 0)
    if (held_out(r.id, seed, frac)) fprintf(ff, ">%s%s%s\n%s\n", r.id, r.desc[0] ? " " : "", r.desc, r.seq);
  if (rc < 0) goto out;
  emb_source_opts_t eo = {.path = emb, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids};
  if ((rc = emb_source_open(&src, &eo, err)) < 0) goto out;
  emb_record_t e;
  snprintf(p, sizeof p, "%s/heldout.npy", dir);
  while ((rc = emb_source_next(src, &e, err)) > 0) {
    if (!held_out(e.id, seed, frac)) continue;
    if (!w && (rc = npy_writer_open(&w, p, NPY_F32, e.dim, err)) < 0) goto out;
    if ((rc = npy_writer_append_f32(w, e.rows, 1, err)) < 0) goto out;
    fprintf(fi, "%s\n", e.id);
    fprintf(fo, "%s\n", e.id);
    (*n_out)++;
  }
  if (rc < 0) goto out;
  if (w) rc = npy_writer_close(&w, err);
out:
  npy_writer_abort(&w);
  emb_source_destroy(&src);
  fasta_close(&fr);
  if (ff && fclose(ff) != 0 && rc == 0) rc = ps_err_set(err, PS_EIO, "%s: write failed", dir);
  if (fi && fclose(fi) != 0 && rc == 0) rc = ps_err_set(err, PS_EIO, "%s: write failed", dir);
  if (fo && fclose(fo) != 0 && rc == 0) rc = ps_err_set(err, PS_EIO, "%s: write failed", ids_out);
  return rc;
}

// The value of `key: value` in a file (NAN when absent).
static double read_kv(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f) return NAN;
  char line[512];
  size_t kl = strlen(key);
  double v = NAN;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && line[kl] == ':') {
      v = strtod(line + kl + 1, NULL);
      break;
    }
  fclose(f);
  return v;
}

static double json_path_num(json_t *root, const char *a, const char *b) {
  json_t *x = json_object_get(json_object_get(root, a), b);
  return json_is_number(x) ? json_number_value(x) : NAN;
}

// `protsae NAME ...` of this same binary as a child, its stdout echoed; *val = the value of key.
static int run_self_kv(char *const argv[], const char *key, double *val) {
  char self[64], cmd[8192];
  // this very binary, also when its file was replaced meanwhile (a rebuild during the demo)
  snprintf(self, sizeof self, "/proc/%d/exe", (int)getpid());
  size_t o = (size_t)snprintf(cmd, sizeof cmd, "'%s'", self);
  for (int i = 0; argv[i] && o < sizeof cmd; i++) o += (size_t)snprintf(cmd + o, sizeof cmd - o, " '%s'", argv[i]);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  char line[1024];
  size_t kl = strlen(key);
  *val = NAN;
  while (fgets(line, sizeof line, p)) {
    fputs(line, stdout);
    if (!strncmp(line, key, kl) && line[kl] == ':') *val = strtod(line + kl + 1, NULL);
  }
  fflush(stdout);
  int st = pclose(p);
  return st == 0 ? 0 : -1;
}

int cli_demo(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae demo", argc, argv);
  if (crc >= 0) return crc;
  int status = 1, regen = 0;
  int64_t n_enc = 2;
  char work[PATH_MAX], synth_dir[PATH_MAX], meta[PATH_MAX], datadir[PATH_MAX], emb[PATH_MAX], fasta[PATH_MAX],
      absw[PATH_MAX], lg[PATH_MAX + 64];
  snprintf(work, sizeof work, "%s", ps_config_str(cfg, "workdir"));
  ps_config_bool(cfg, "regenerate", &regen, NULL);
  if (ps_config_i64(cfg, "encoders", &n_enc, &err) < 0 || n_enc < 1 || n_enc > 16) {
    fprintf(stderr, "protsae demo: --encoders must be 1..16\n");
    goto out;
  }
  mkdir(work, 0755);
  if (!realpath(work, absw)) snprintf(absw, sizeof absw, "%s", work);
  snprintf(g_logs, sizeof g_logs, "%s/logs", absw);
  mkdir(g_logs, 0755);
  snprintf(synth_dir, sizeof synth_dir, "%s/synth", absw);
  snprintf(meta, sizeof meta, "%s/truth/meta.json", synth_dir);
  double t0 = now_s(), t1;
  const char *u_emb = ps_config_str(cfg, "emb"), *u_fasta = ps_config_str(cfg, "fasta"),
             *u_ids = ps_config_str(cfg, "ids"), *u_data = ps_config_str(cfg, "data");
  int user = u_emb != NULL;  // protsae run: the user's embeddings, no planted truth
  char ids_buf[PATH_MAX + 32] = "";
  const char *ids = NULL;  // --ids for the readers (user data only)
  if (user && !u_fasta) {
    fprintf(stderr, "protsae demo: --emb needs --fasta (the proteins' sequences and ids)\n");
    goto out;
  }
  if (u_data) {
    if (!realpath(u_data, datadir)) {
      fprintf(stderr, "protsae demo: --data %s: %s\n", u_data, strerror(errno));
      goto out;
    }
  } else if (!cli_data_dir(datadir, sizeof datadir)) {
    fprintf(stderr, "protsae demo: no protein data found: set PROTSAE_DATA to a directory holding "
                    "proteins.fasta.gz, proteins.tsv.gz, go_annotations.tsv.gz and go-2022-07-01.obo.gz "
                    "(../shared/data/human-swissprot, or scripts/fetch-annotations DIR)\n");
    goto out;
  }

  if (user)
    printf("== protsae run: features of your embeddings %s ==\n", u_emb);
  else
    printf("== protsae demo: planted GO-term features over real human proteins ==\n");
  printf("work directory %s (stage logs in logs/)\n", absw);
  if (user) {
    if (!realpath(u_emb, emb) || !realpath(u_fasta, fasta)) {
      fprintf(stderr, "protsae demo: %s: %s\n", realpath(u_emb, emb) ? u_fasta : u_emb, strerror(errno));
      goto out;
    }
    size_t el = strlen(emb);
    if (u_ids) {
      if (!realpath(u_ids, ids_buf)) {
        fprintf(stderr, "protsae demo: --ids %s: %s\n", u_ids, strerror(errno));
        goto out;
      }
      ids = ids_buf;
    } else if (el > 4 && !strcmp(emb + el - 4, ".npy")) {
      int64_t nid = 0;
      snprintf(ids_buf, sizeof ids_buf, "%s/input.ids", absw);
      if (fasta_ids(fasta, ids_buf, &nid, &err) < 0) {
        fprintf(stderr, "protsae demo: %s\n", err.msg);
        goto out;
      }
      ids = ids_buf;
    }
    printf("[1/6] your data: %s (%s); annotations %s\n", emb, fasta, datadir);
    goto have_data;
  }
  if (regen || access(meta, R_OK) != 0) {
    printf("[1/6] generating the planted dataset from %s\n", datadir);
    fflush(stdout);
    char *sargv[] = {"synth", "--data", datadir, "--out", synth_dir, "--seed", (char *)ps_config_str(cfg, "seed"),
                     "--dim", (char *)ps_config_str(cfg, "dim"), "--n-terms", (char *)ps_config_str(cfg, "n-terms"),
                     "--formats", "npy", "--quiet", "1", NULL};
    if (synth_main(15, sargv) != 0) {
      fprintf(stderr, "protsae demo: generating the dataset failed\n");
      goto out;
    }
  } else {
    printf("[1/6] reusing the planted dataset in %s (--regenerate to rebuild)\n", synth_dir);
  }
  snprintf(emb, sizeof emb, "%s/emb.npy", synth_dir);
  snprintf(fasta, sizeof fasta, "%s/proteins.fasta", synth_dir);
have_data:;

  // [2/5] train a TopK SAE on the stream, then measure how many planted features it recovered
  char reader[PATH_MAX], trainer[PATH_MAX], sae_dir[PATH_MAX], best[PATH_MAX + 8], truth[PATH_MAX + 32],
      tb[PATH_MAX + 16], tc[PATH_MAX + 16], cmd[PATH_MAX + 32];
  if (need_stage("reader", reader, sizeof reader) || need_stage("trainer", trainer, sizeof trainer)) goto out;
  snprintf(sae_dir, sizeof sae_dir, "%s/sae", absw);
  snprintf(best, sizeof best, "%s/latest", sae_dir);
  snprintf(truth, sizeof truth, "%s/truth/directions.npy", synth_dir);
  int retrain = 1;
  ps_config_bool(cfg, "retrain", &retrain, NULL);
  snprintf(cmd, sizeof cmd, "%s/cfg.json", best);
  if (!retrain && access(cmd, R_OK) == 0) {
    printf("[2/6] reusing the SAE in %s (--retrain 1 to train again)\n", best);
    goto trained;
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", sae_dir);
  if (system(cmd) != 0) goto out;
  snprintf(tb, sizeof tb, "@ipc://%s/train.ipc", absw);
  snprintf(tc, sizeof tc, ">ipc://%s/train.ipc", absw);
  t1 = now_s();
  printf("[2/6] training a TopK SAE (d_sae %s, k %s, %s epochs): protsae-reader -> protsae-trainer\n",
         ps_config_str(cfg, "d-sae"), ps_config_str(cfg, "k"), ps_config_str(cfg, "train-epochs"));
  fflush(stdout);
  // Supervision: a trainer or reader that dies is reported; both restart, the trainer from its
  // last checkpoint (--resume 1), the reader from the start of the (deterministic) stream, of
  // which the trainer skips what the checkpoint holds: the weights end the same.
  char resume_flag[2] = "0", trport[16];
  int trp = prom_free_port();  // the trainer's metrics: loss, L0, dead % beside the progress
  snprintf(trport, sizeof trport, "%d", trp);
  char *targv[] = {trainer, "--in", tb, "--out", sae_dir, "--resume", resume_flag, "--d-sae", (char *)ps_config_str(cfg, "d-sae"),
                   "--k", (char *)ps_config_str(cfg, "k"), "--batch-rows", "512", "--lr", "1e-3",
                   "--shuffle-rows", "16384", "--eval-every", "500", "--ckpt-every", (char *)ps_config_str(cfg, "ckpt-every"), "--log-every", "20",
                   "--timeout-ms", "600000", "--metrics-port", trport, NULL};
  char tport[16];
  int tp = prom_free_port();
  snprintf(tport, sizeof tport, "%d", tp);
  char *r2argv[] = {reader, "--emb", emb, "--fasta", fasta, "--out", tc, "--batch-rows",
                    (char *)ps_config_str(cfg, "batch-rows"), "--epochs", (char *)ps_config_str(cfg, "train-epochs"),
                    "--run-id", "demo-train", "--metrics-port", tport, ids ? "--ids" : NULL, (char *)ids, NULL};
  int r2 = -1, t2 = -1, t_restarts = 0;
  for (;;) {
    log_path(lg, sizeof lg, "trainer");
    pid_t tpid = cli_spawn_log(targv, lg);
    if (tpid < 0) goto out;
    log_path(lg, sizeof lg, "train-reader");
    pid_t rpid = cli_spawn_log(r2argv, lg);
    if (rpid < 0) {
      kill(tpid, SIGKILL);
      cli_wait(tpid);
      goto out;
    }
    prom_progress_t prog;  // the training stream's progress, from the reader's metrics
    prom_progress_init(&prog, "training stream", tp);
    prog.train_port = trp;
    const char *died = NULL;
    int code = 0;
    r2 = t2 = -1;
    while (t2 < 0 && !died) {
      int st;
      pid_t w = waitpid(-1, &st, WNOHANG);
      if (w == 0 || (w < 0 && errno == EINTR)) {
        if (r2 < 0) prom_progress_poll(&prog);
        usleep(250 * 1000);
        continue;
      }
      if (w < 0) break;
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (w == rpid) {
        if (code == 0) r2 = 0, rpid = -1;
        else died = "reader", rpid = -1;
      } else if (w == tpid) {
        if (code == 0) t2 = 0, tpid = -1;
        else died = "trainer", tpid = -1;
      }
    }
    prom_progress_end(&prog);
    if (!died) {
      if (rpid > 0) r2 = cli_wait(rpid);  // the trainer is done: the reader has sent everything
      break;
    }
    if (rpid > 0) kill(rpid, SIGKILL), cli_wait(rpid);
    if (tpid > 0) kill(tpid, SIGKILL), cli_wait(tpid);
    if (++t_restarts > 3) {
      fprintf(stderr, "protsae demo: the training %s exited with status %d; too many restarts, giving up\n", died, code);
      r2 = t2 = code;
      break;
    }
    printf("      ! training %s exited with status %d%s: restarting reader and trainer, the trainer from its "
           "last checkpoint (see logs/trainer.log)\n", died, code, code > 128 ? " (killed)" : "");
    fflush(stdout);
    strcpy(resume_flag, "1");
  }
  if (r2 != 0 || t2 != 0) {
    fprintf(stderr, "protsae demo: training failed (reader exit %d, trainer exit %d)\n", r2, t2);
    tail_log("trainer");
    tail_log("train-reader");
    goto out;
  }
  printf("      trained in %.0f s\n", now_s() - t1);
trained:;
  double recovery09 = NAN;
  char *vargv[] = {"recovery", "--sae", best, "--truth", truth, NULL};
  if (user) {
    printf("      (your data has no planted truth: recovery not measured)\n");
  } else {
    printf("      planted features recovered (best decoder-row cosine per planted direction):\n");
    fflush(stdout);
  }
  if (!user && run_self_kv(vargv, "planted_recovery_cos09", &recovery09) != 0) {
    fprintf(stderr, "protsae demo: protsae recovery failed\n");
    goto out;
  }

  // [3/5] encode every protein with the SAE and with the raw dimensions (baseline)
  char fstore[PATH_MAX + 16], nstore[PATH_MAX + 16];
  snprintf(fstore, sizeof fstore, "%s/features.db", absw);
  snprintf(nstore, sizeof nstore, "%s/neurons.db", absw);
  t1 = now_s();
  printf("[3/6] encoding: protsae-reader -> %lld x protsae-encoder -> protsae-scorer (RocksDB), SAE and neurons\n",
         (long long)n_enc);
  fflush(stdout);
  if (encode_stream("features", absw, emb, fasta, ids, best, (int)n_enc, ps_config_str(cfg, "batch-rows"), fstore) < 0 ||
      encode_stream("neurons", absw, emb, fasta, ids, NULL, (int)n_enc, ps_config_str(cfg, "batch-rows"), nstore) < 0)
    goto out;
  printf("      encoded in %.0f s; feature stores %s, %s (protsae features / feature N --db ...)\n", now_s() - t1,
         fstore, nstore);

  // [4/5] GO enrichment: features vs neurons
  char enr[PATH_MAX + 16];
  snprintf(enr, sizeof enr, "%s/enrichment", absw);
  t1 = now_s();
  printf("[4/6] GO enrichment of every feature and every neuron (Fisher's exact test, BH FDR)\n");
  fflush(stdout);
  // the held-out proteins (step 6) are left out of it: the feature -> term map is learned without them
  char ann_dir[PATH_MAX + 16], drop[PATH_MAX + 32], hold_ids[PATH_MAX + 32], synth_ids[PATH_MAX + 32];
  double holdout = 0.1;
  int64_t seed = 1, n_held = 0;
  ps_config_f64(cfg, "holdout", &holdout, NULL);
  ps_config_i64(cfg, "seed", &seed, NULL);
  if (!(holdout >= 0 && holdout < 1)) {
    fprintf(stderr, "protsae demo: --holdout must be in [0, 1)\n");
    goto out;
  }
  snprintf(ann_dir, sizeof ann_dir, "%s/annotate", absw);
  snprintf(drop, sizeof drop, "%s/drop", ann_dir);
  snprintf(hold_ids, sizeof hold_ids, "%s/holdout.ids", ann_dir);
  snprintf(synth_ids, sizeof synth_ids, "%s/proteins.ids", synth_dir);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", ann_dir);
  if (system(cmd) != 0) goto out;
  mkdir(ann_dir, 0755);
  mkdir(drop, 0755);
  if (holdout > 0 &&
      write_holdout(fasta, emb, user ? ids : synth_ids, drop, hold_ids, (uint64_t)seed, holdout, &n_held, &err) < 0) {
    fprintf(stderr, "protsae demo: held-out proteins: %s\n", err.msg);
    goto out;
  }
  if (holdout > 0) printf("      %lld proteins (%.0f%%) held out of the enrichment for step 6\n", (long long)n_held, 100 * holdout);
  fflush(stdout);
  if (demo_enrich_holdout(fstore, nstore, datadir, enr, 2, n_held ? hold_ids : NULL) != 0) goto out;
  printf("      in %.0f s; per-feature TSVs and the full table in %s\n", now_s() - t1, enr);

  // [5/5] interpretation: explanations scored on held-out proteins, features vs neurons
  char interp[PATH_MAX], interp_dir[PATH_MAX + 16];
  if (need_stage("interpreter", interp, sizeof interp)) goto out;
  snprintf(interp_dir, sizeof interp_dir, "%s/interp", absw);
  t1 = now_s();
  printf("[5/6] explaining %s features and %s neurons, scored on held-out proteins (protsae-interpreter)\n",
         ps_config_str(cfg, "n-interpret"), ps_config_str(cfg, "n-interpret"));
  fflush(stdout);
  char *iargv[] = {interp, "--features", fstore, "--neurons", nstore, "--data", datadir, "--out", interp_dir,
                   "--n-features", (char *)ps_config_str(cfg, "n-interpret"), "--n-neurons",
                   (char *)ps_config_str(cfg, "n-interpret"), "--mode", (char *)ps_config_str(cfg, "mode"), NULL};
  log_path(lg, sizeof lg, "interpreter");
  // Supervision: a dead interpreter is restarted (its LLM answers are cached; offline is
  // deterministic): the explanations end the same.
  for (int attempt = 0;; attempt++) {
    pid_t ipid = cli_spawn_log_fds(iargv, lg, 0);
    int ic = ipid < 0 ? -1 : cli_wait(ipid);
    if (ic == 0) break;
    if (ic < 0 || attempt >= 3) {
      fprintf(stderr, "protsae demo: the interpreter failed (exit %d; see logs/interpreter.log)\n", ic);
      tail_log("interpreter");
      goto out;
    }
    printf("      ! interpreter exited with status %d%s: restarting it (see logs/interpreter.log)\n", ic,
           ic > 128 ? " (killed)" : "");
    fflush(stdout);
  }
  printf("      in %.0f s; explanations in %s/features.jsonl and neurons.jsonl\n", now_s() - t1, interp_dir);

  // [6/6] GO prediction on the held-out proteins: protsae annotate on them as a dropped proteome
  char ann_out[PATH_MAX + 32], expl[PATH_MAX + 32], eval[PATH_MAX + 64], self[PATH_MAX];
  double fmax = NAN, fprec = NAN, frec = NAN, ftau = NAN, fprot = NAN, fnaive = NAN;
  snprintf(ann_out, sizeof ann_out, "%s/out", ann_dir);
  snprintf(expl, sizeof expl, "%s/features.jsonl", interp_dir);
  snprintf(eval, sizeof eval, "%s/heldout.eval.txt", ann_out);
  if (n_held > 0) {
    t1 = now_s();
    printf("[6/6] GO prediction for the %lld held-out proteins from their features (protsae annotate)\n", (long long)n_held);
    fflush(stdout);
    snprintf(self, sizeof self, "/proc/%d/exe", (int)getpid());  // this binary, as for recovery
    char *aargv[] = {self, "annotate", "--watch", drop, "--out", ann_out, "--sae", best, "--enrichment", enr,
                     "--explanations", expl, "--data", datadir, "--once", "1", "--evaluate", "1", NULL};
    log_path(lg, sizeof lg, "annotate");
    printf("      ");
    fflush(stdout);
    pid_t apid = cli_spawn_log_fds(aargv, lg, 0);
    if (apid < 0 || cli_wait(apid) != 0) {
      fprintf(stderr, "protsae demo: protsae annotate failed\n");
      tail_log("annotate");
      goto out;
    }
    fmax = read_kv(eval, "fmax"), fprec = read_kv(eval, "precision"), frec = read_kv(eval, "recall");
    ftau = read_kv(eval, "threshold"), fprot = read_kv(eval, "proteins_evaluated"), fnaive = read_kv(eval, "naive_fmax");
    printf("      in %.0f s; per protein: features, explanations, GO terms in %s/heldout.{tsv,jsonl}\n", now_s() - t1,
           ann_out);
  } else {
    printf("[6/6] no held-out proteins (--holdout 0): GO prediction not evaluated\n");
  }
  // the figures of the steps, collected
  double fgo = NAN, ngo = NAN, fr = NAN, nr = NAN;
  char sumf[PATH_MAX + 32];
  snprintf(sumf, sizeof sumf, "%s/summary.txt", enr);
  fgo = read_kv(sumf, "features_frac_alive_with_term");
  ngo = read_kv(sumf, "neurons_frac_alive_with_term");
  snprintf(sumf, sizeof sumf, "%s/summary.json", interp_dir);
  json_t *isum = json_load_file(sumf, 0, NULL);
  if (isum) {
    fr = json_path_num(isum, "features", "mean_r");
    nr = json_path_num(isum, "neurons", "mean_r");
    json_decref(isum);
  }
  printf("\n");
  fflush(stdout);
  char *pargv[] = {"report", "--workdir", absw, "--data", datadir, NULL};
  if (cli_report(5, pargv) != 0) goto out;
  printf("planted_recovery_cos09: %.4f\n", recovery09);
  printf("features_with_go_fraction: %.4f\nneurons_with_go_fraction: %.4f\n", fgo, ngo);
  printf("features_mean_r: %.4f\nneurons_mean_r: %.4f\n", fr, nr);
  printf("annotate_heldout_proteins: %lld\nannotate_evaluated_proteins: %.0f\n", (long long)n_held, fprot);
  printf("annotate_precision: %.4f\nannotate_recall: %.4f\nannotate_threshold: %.2f\nannotate_fmax: %.4f\n", fprec,
         frec, ftau, fmax);
  printf("annotate_naive_fmax: %.4f\n", fnaive);
  static const char *const nsn[] = {"bp", "mf", "cc"};
  for (int k = 0; k < 3; k++) {
    char kf[32], kn[32];
    snprintf(kf, sizeof kf, "fmax_%s", nsn[k]);
    snprintf(kn, sizeof kn, "naive_fmax_%s", nsn[k]);
    printf("annotate_fmax_%s: %.4f\nannotate_naive_fmax_%s: %.4f\n", nsn[k], n_held ? read_kv(eval, kf) : NAN, nsn[k],
           n_held ? read_kv(eval, kn) : NAN);
  }
  printf("seconds: %.1f\n", now_s() - t0);
  printf("sae: %s (SAELens directory; %s/best is the best on validation MSE)\n", best, sae_dir);
  status = 0;
out:
  ps_config_destroy(&cfg);
  return status;
}
