// protsae annotate — the annotation service: new proteomes in, features, GO terms and
// explanations out. It runs the pipeline's processes under the supervisor (supervise.h):
//
//   protsae-reader --watch DROP (native ESM2 with --esm2, or each proteome's precomputed
//   embeddings) -> N x protsae-encoder --sae SAE -> protsae-annotator (the sink: OUT/NAME.tsv,
//   NAME.jsonl, the per-proteome result in its store), which acknowledges each proteome to the
//   reader on a control socket.
//
// The same processes run in compose (compose/, profile "annotate"). This command wires them on
// ipc:// endpoints named after OUT, keeps their logs in OUT/logs/, restarts a stage that dies
// (exactly once: see stages/reader/service.h and stages/annotator/), relays the stages' lines for
// people (per proteome: started, progress, sent, annotated / FAILED / skipped) and with --once 1
// exits when the drop directory is done: 0, or 1 when a proteome failed or the run failed.
// One annotate per output directory (an flock on OUT/.lock).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annot.h"
#include "annot_svc.h"
#include "blascore.h"
#include "cli.h"
#include "config.h"
#include "godata.h"
#include "topo.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const ps_config_entry_t table[] = {
    {"watch", NULL, "drop directory: NAME.fasta[.gz] [+ NAME.npy|.safetensors|.h5 [+ NAME.ids]] [+ NAME.ready]"},
    {"out", NULL, "output directory: NAME.tsv, NAME.jsonl (NAME.eval.txt) (default: WATCH/annotated)"},
    {"state", NULL, "the service's state: the sink's store annotations.db, the reader's ledger/, logs/ (default: OUT)"},
    {"sae", NULL, "trained SAE (checkpoint / SAELens directory)"},
    {"db", NULL, "the SAE's feature store with complete GO enrichment (and explanations): protsae-scorer --db"},
    {"esm2", NULL, "ESM2 checkpoint directory (config.json + model.safetensors): embeds FASTA-only proteomes"},
    {"layers", "last", "ESM2 layer whose (mean-pooled) representation the SAE was trained on"},
    {"esm2-threads", "1", "threads of the ESM2 forward"},
    {"esm2-precision", "f32", "ESM2 projections in f32 | bf16 (AVX-512 BF16 where the CPU has it)"},
    {"tokens-per-batch", "4096", "ESM2 token budget of one forward batch"},
    {"max-residues", "1022", "ESM2: longer sequences are truncated (ESM's way) or bad records (--long error)"},
    {"long", "truncate", "ESM2: sequences over --max-residues: truncate | error"},
    {"unknown", "error", "ESM2: letters outside the alphabet: error (a bad record) | unk"},
    {"bad-records", "fail", "a bad FASTA record fails its proteome (fail) or is skipped and counted (skip)"},
    {"data", NULL, "data directory: go*.obo[.gz] (and go_annotations.tsv[.gz] or a GAF for --evaluate); default the shared human data"},
    {"encoders", "1", "encoder processes"},
    {"once", "0", "1: annotate what is in the drop directory and exit (status 1 when a proteome failed)"},
    {"interval-ms", "2000", "polling interval of the drop directory"},
    {"settle-ms", "1000", "a proteome without NAME.ready is taken when its files are this old"},
    {"missing-after", "60", "seconds after which a FASTA without embeddings (no --esm2) or the reverse fails"},
    {"batch-rows", "256", "proteins a batch"},
    {"max-in-flight", "2", "proteomes streamed and not yet written, at most (the queue beyond is the drop directory)"},
    {"min-score", "0.01", "GO terms scoring below are not written"},
    {"max-terms", "100", "at most this many GO terms a protein, best first (0 = all)"},
    {"scale-activation", "1", "1: score = min(1, activation / the feature's max) x confidence; 0: confidence alone"},
    {"confidence", "precision", "confidence of a feature -> term pair: precision (k/n of the enrichment) | f1 | 1-q"},
    {"evaluate", "0", "1: Fmax of the predictions against the data's GO annotations (propagated), per proteome"},
    {"requests", "", "also take proteomes as ProteomeRequests (REP) on this endpoint (e.g. @tcp://0.0.0.0:5560)"},
    {"metrics-port", "0", "first of the stages' /metrics ports (reader, annotator, encoders; 0 = off)"},
    {"pace-ms", "0", "the reader sleeps this long after each batch (tests)"},
    {NULL, NULL, NULL},
};

// ---- the stages' lines for people ------------------------------------------------------------
// The reader and the sink print their per-proteome lines on stdout (their logs); log lines start
// with a timestamp. Lines for people are relayed: FAILED and output errors to stderr, the rest
// to stdout; the reader's final count line gives the exit status.
typedef struct relay {
  const char *path[2];
  long off[2];
  int failed;                 // from "annotated: A, skipped: S, failed: F"
  int seen_summary;
} relay_t;

static int is_log_line(const char *s) {
  return strlen(s) > 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[0] >= '0' && s[0] <= '9';
}

static void relay_poll(void *ctx) {
  relay_t *r = ctx;
  for (int k = 0; k < 2; k++) {
    FILE *f = fopen(r->path[k], "r");
    if (!f) continue;
    if (fseek(f, r->off[k], SEEK_SET) == 0) {
      char line[8192];
      while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n && line[n - 1] != '\n' && !feof(f)) continue;  // a very long line: skipped
        if (n && line[n - 1] != '\n') break;                 // incomplete: read it next time
        r->off[k] = ftell(f);
        if (is_log_line(line)) continue;
        int a, sk, fl;
        if (sscanf(line, "annotated: %d, skipped: %d, failed: %d", &a, &sk, &fl) == 3) {
          r->failed = fl;
          r->seen_summary = 1;
        }
        int to_err = strstr(line, ": FAILED: ") || strstr(line, "cannot write the output");
        fputs(line, to_err ? stderr : stdout);
      }
      fflush(stdout);
    }
    fclose(f);
  }
}

// The model as the sink will load it (the SAE and its feature store, whose enrichment must be
// complete, and the ontology): refused here at once, naming the store, rather than by a sink that
// would be restarted in vain. *d_in: the SAE's input dimension.
static int check_model(const char *sae, const char *db, const char *data, int64_t *d_in, ps_err_t *err) {
  ps_godata_t gd;
  int rc = ps_godata_find(data, PS_GODATA_NEED_ONTOLOGY, &gd, err);
  if (rc < 0) return rc;
  annot_opts_t ao = {.sae_dir = sae, .db = db, .obo = gd.obo};
  annot_model_t *m = NULL;
  if ((rc = annot_model_load(&m, &ao, err)) < 0) return rc;
  *d_in = annot_model_d_in(m);
  annot_model_free(&m);
  return 0;
}

int cli_annotate(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae annotate", argc, argv);
  if (crc >= 0) return crc;
  int status = 2, lock_fd = -1, once = 0, evaluate = 0;
  topo_t *t = NULL;
  int64_t n_enc = 1, mport = 0, d_in = 0;
  char outbuf[PATH_MAX], dd[PATH_MAX], logs[PATH_MAX + 16];
  const char *drop = ps_config_str(cfg, "watch"), *sae = ps_config_str(cfg, "sae"), *db = ps_config_str(cfg, "db");
  if (!drop || !sae || !db) {
    fprintf(stderr, "protsae annotate: --watch, --sae and --db are required (--help)\n");
    goto out;
  }
  const ps_config_bind_t binds[] = {PS_CFG_BOOL("once", &once), PS_CFG_BOOL("evaluate", &evaluate),
                                    PS_CFG_I64("encoders", &n_enc), PS_CFG_I64("metrics-port", &mport), {0}};
  if (ps_config_read(cfg, binds, &err) < 0) {
    fprintf(stderr, "protsae annotate: %s\n", err.msg);
    goto out;
  }
  if (n_enc < 1 || n_enc > 32) {
    fprintf(stderr, "protsae annotate: --encoders must be 1..32\n");
    goto out;
  }
  const char *data = ps_config_str(cfg, "data");
  if (!data) data = ps_godata_default_dir(dd, sizeof dd);
  if (!data) {
    fprintf(stderr, "protsae annotate: no GO ontology: --data DIR with go*.obo[.gz] (or PROTSAE_DATA)\n");
    goto out;
  }
  const char *out = ps_config_str(cfg, "out");
  if (!out) {
    snprintf(outbuf, sizeof outbuf, "%s/annotated", drop);
    out = outbuf;
  }
  struct stat sd;
  if (stat(drop, &sd) != 0 || !S_ISDIR(sd.st_mode)) {
    fprintf(stderr, "protsae annotate: %s: not a directory\n", drop);
    goto out;
  }
  const char *state = ps_config_str(cfg, "state");
  if (!state) state = out;
  snprintf(logs, sizeof logs, "%s/logs", state);
  if ((mkdir(out, 0755) != 0 && errno != EEXIST) || (mkdir(state, 0755) != 0 && errno != EEXIST) ||
      (mkdir(logs, 0755) != 0 && errno != EEXIST)) {
    fprintf(stderr, "protsae annotate: %s: cannot create: %s\n", logs, strerror(errno));
    goto out;
  }
  // one annotate per output directory; the kernel drops the lock with the process (kill -9 too)
  char lockp[PATH_MAX + 16];
  snprintf(lockp, sizeof lockp, "%s/.lock", out);
  lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    fprintf(stderr, "protsae annotate: another protsae annotate is using %s (%s)\n", out,
            lock_fd < 0 ? strerror(errno) : "locked");
    goto out;
  }
  if (check_model(sae, db, data, &d_in, &err) < 0) {
    fprintf(stderr, "protsae annotate: %s\n", err.msg);
    goto out;
  }
  ps_blas_core_check();  // once here; the encoders' and the reader's logs say it again
  status = 1;
  // the reader's and the annotator's options given on this command line, passed on
  static const char *const pass_r[] = {"once", "interval-ms", "settle-ms", "missing-after", "max-in-flight",
                                       "bad-records", "requests", "pace-ms", NULL};
  static const char *const pass_e[] = {"layers", "tokens-per-batch", "max-residues", "long", "unknown", NULL};
  static const char *const pass_a[] = {"min-score", "max-terms", "scale-activation", "confidence", "evaluate", NULL};
  const char *rargs[64], *aargs[16];
  char flags[40][64];
  int nr = 0, na = 0, nf = 0;
  const char *esm2 = ps_config_str(cfg, "esm2");
  for (int i = 0; pass_r[i]; i++) {
    snprintf(flags[nf], sizeof flags[nf], "--%s", pass_r[i]);
    rargs[nr++] = flags[nf++], rargs[nr++] = ps_config_str(cfg, pass_r[i]);
  }
  if (esm2) {
    rargs[nr++] = "--esm2", rargs[nr++] = esm2;
    rargs[nr++] = "--threads", rargs[nr++] = ps_config_str(cfg, "esm2-threads");
    rargs[nr++] = "--precision", rargs[nr++] = ps_config_str(cfg, "esm2-precision");
    for (int i = 0; pass_e[i]; i++) {
      snprintf(flags[nf], sizeof flags[nf], "--%s", pass_e[i]);
      rargs[nr++] = flags[nf++], rargs[nr++] = ps_config_str(cfg, pass_e[i]);
    }
  }
  rargs[nr] = NULL;
  for (int i = 0; pass_a[i]; i++) {
    snprintf(flags[nf], sizeof flags[nf], "--%s", pass_a[i]);
    aargs[na++] = flags[nf++], aargs[na++] = ps_config_str(cfg, pass_a[i]);
  }
  aargs[na] = NULL;
  annot_svc_t sv = {drop, out, state, sae, db, data, d_in, (int)n_enc, mport, ps_config_str(cfg, "batch-rows"),
                    rargs, aargs};
  t = topo_new(logs);
  size_t r, a;
  if (annot_svc_topo(t, &sv, &r, &a) < 0) goto no_exe;
  relay_t rl = {{t->log[r], t->log[a]}, {0, 0}, 0, 0};
  for (int k = 0; k < 2; k++) {  // relay only what this run writes
    struct stat ls;
    rl.off[k] = stat(rl.path[k], &ls) == 0 ? (long)ls.st_size : 0;
  }
  sv_opts_t so = {.poll = relay_poll, .ctx = &rl, .stop_ms = 10000, .indent = ""};
  sv_result_t res;
  int rc = sv_run(t->st, t->n, &so, &res, &err);
  relay_poll(&rl);
  if (rc == PS_EINTR) status = 0;  // stopped by SIGTERM / Ctrl-C: what is in flight is redone at the next start
  else if (rc < 0) fprintf(stderr, "protsae annotate: %s (stage logs in %s)\n", err.msg, logs);
  else status = once && rl.failed ? 1 : 0;
  goto out;
no_exe:
  fprintf(stderr, "protsae annotate: cannot find the stage executables (set PROTSAE_LIBEXEC)\n");
out:
  topo_free(t);
  if (lock_fd >= 0) close(lock_fd);
  ps_config_destroy(&cfg);
  return status;
}
