// protsae demo — end to end on the built-in planted dataset (protsae synth over the real human
// Swiss-Prot proteins and their GO annotations), each stage a separate process over ipc://, all
// under one supervisor (supervise.h: one process group, restarts, Ctrl-C stops everything):
//   1. generate the dataset (once; cached in the work directory)
//   2. train an SAE (demo_train.c: the recipe, BatchTopK by default): protsae-reader ->
//      protsae-trainer; planted-feature recovery (in-process)
//   3. encode: protsae-reader -> N x protsae-encoder -> protsae-scorer (RocksDB feature store), and
//      the same with the raw dimensions (protsae-encoder --neurons 1) for the baseline; the two
//      topologies run one after the other (each has the machine's cores to itself)
//   4. GO enrichment of every feature and every neuron: the scorer runs it into its store once the
//      stream is complete, leaving out the held-out proteins of step 6
//   5. explanations scored on held-out proteins: the scorer sends interpretation requests to
//      protsae-interpreter (offline unless a key is set) and stores the results; then it exits
//   6. GO prediction on held-out proteins: --holdout of the proteins (seeded) are left out of the
//      enrichment of step 4 and annotated by the annotation service (annot_svc.h: Fmax
//      against their propagated annotations)
// then the report and a summary of `key: value` lines, every figure read as data (the stores'
// "enrich/summary" and "interp/summary", the structs of the in-process steps), never scraped
// from another command's output. Stage logs go to WORKDIR/logs/. `--level residue` (an AA-level
// SAE, residue concepts) is demo_residue.c's flow, reusing this file's parts (demo_shared.h).
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "annot.h"
#include "annot_svc.h"
#include "annstore.h"
#include "blascore.h"
#include "topo.h"
#include "cli.h"
#include "conf.h"
#include "config.h"
#include "demo_interp.h"
#include "demo_shared.h"
#include "demo_train.h"
#include "emb.h"
#include "enrich.h"
#include "fasta.h"
#include "featstore.h"
#include "fsutil.h"
#include "hash.h"
#include "io.h"
#include "knn.h"
#include "npy.h"
#include "prom.h"
#include "supervise.h"
#include "synth.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"


// The FASTA's ids in order, one a line, into path (the ids of a .npy given without them).
int demo_fasta_ids(const char *fasta, const char *path, int64_t *n, ps_err_t *err) {
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

int need_stage(const char *name, char *buf, size_t cap) {
  if (cli_stage_path(name, buf, cap)) return 0;
  fprintf(stderr, "protsae demo: cannot find the protsae-%s executable (set PROTSAE_LIBEXEC)\n", name);
  return -1;
}

const char *g_logs;  // WORKDIR/logs

// The held-out proteome's result in the annotation store (as_result_each's callback).
typedef struct held_result {
  as_result_t r;
  int found;
} held_result_t;

static int find_heldout(const as_result_t *r, void *ctx) {
  held_result_t *h = ctx;
  if (strcmp(r->name, "heldout")) return 0;
  if (h->found) as_result_free(&h->r);
  h->r = *r;  // deep copy of the strings we read (status, error, figures)
  h->r.key = ps_xstrdup(r->key), h->r.name = ps_xstrdup(r->name), h->r.producer = ps_xstrdup(r->producer);
  h->r.error = ps_xstrdup(r->error), h->r.tsv = ps_xstrdup(r->tsv), h->r.jsonl = ps_xstrdup(r->jsonl);
  h->r.eval_txt = ps_xstrdup(r->eval_txt);
  h->found = 1;
  return 0;
}

// Progress while a topology runs (ctx: a prom_progress_t): a reader's metrics (and a trainer's).
static void progress_poll(void *ctx) { prom_progress_poll(ctx); }
static void progress_quiet(void *ctx) { prom_progress_end(ctx); }

// Run t under the supervisor with a progress line from the reader on port (train_port: the
// trainer's too). 0, 130 when interrupted by a signal, 1 when it failed (the supervisor has said
// which stage and printed its log's tail).
int topo_run(topo_t *t, const char *label, int port, int train_port, sv_result_t *res) {
  prom_progress_t prog;
  prom_progress_init(&prog, label, port);
  prog.train_port = train_port;
  sv_opts_t o = {.poll = progress_poll, .quiet = progress_quiet, .ctx = &prog, .stop_ms = 10000};
  ps_err_t err = {0};
  fflush(stdout);
  int rc = sv_run(t->st, t->n, &o, res, &err);
  prom_progress_end(&prog);
  fflush(stdout);
  if (rc == PS_EINTR) {
    fprintf(stderr, "protsae demo: interrupted (%s): every stage stopped\n", label);
    return 130;
  }
  if (rc < 0) {
    fprintf(stderr, "protsae demo: %s failed (stage logs in %s)\n", label, g_logs);
    return 1;
  }
  return 0;
}

// The encode topology of `name` ("features": encoders --sae; "neurons": --neurons 1): reader ->
// n encoders -> scorer (the sink: ingest, GO enrichment, interpretation requests, results) <->
// interpreter. Reader, encoders and interpreter are services. A stage that dies is restarted (at
// most 3 times each); the store ends the same: exactly-once apply, re-sent lost batches, cached
// LLM answers (offline mode is deterministic).
int encode_topology(const char *name, const encode_args_t *a) {
  char reader[PATH_MAX], encoder[PATH_MAX], scorer[PATH_MAX], interp[PATH_MAX], sn[64];
  if (need_stage("reader", reader, sizeof reader) || need_stage("encoder", encoder, sizeof encoder) ||
      need_stage("scorer", scorer, sizeof scorer) || need_stage("interpreter", interp, sizeof interp))
    return 1;
  int rc = ps_rm_rf(a->store);
  if (rc < 0) {
    fprintf(stderr, "protsae demo: cannot remove %s: %s\n", a->store, strerror(-rc));
    return 1;
  }
  topo_t *t = topo_new(g_logs);
  const char *w = a->work;
  snprintf(sn, sizeof sn, "%s-scorer", name);
  size_t s = topo_add(t, sn, SV_SINK, 3, 0);
  argv_push(t->argv[s], scorer);
  topo_arg(t, s, "--db", "%s", a->store);
  topo_arg(t, s, "--in", "@ipc://%s/%s-sc.ipc", w, name);
  topo_arg(t, s, "--control", ">ipc://%s/%s-ctl.ipc", w, name);
  topo_arg(t, s, "--run-id", "%s", name);
  topo_arg(t, s, "--data", "%s", a->datadir);
  if (a->hold_ids) topo_arg(t, s, "--enrich-exclude", "%s", a->hold_ids);
  for (const char *const *k = enrich_config_keys; *k; k++) {
    char fl[64];
    snprintf(fl, sizeof fl, "--%s", *k);
    if (ps_config_str(a->cfg, *k)) topo_arg(t, s, fl, "%s", ps_config_str(a->cfg, *k));
  }
  topo_arg(t, s, "--interp-out", "@ipc://%s/%s-interp.ipc", w, name);
  topo_arg(t, s, "--n-interpret", "%s", a->n_interpret);
  topo_arg(t, s, "--residue-top", "%s", a->residue_top);
  if (a->concepts && a->concepts[0]) topo_arg(t, s, "--concepts", "%s", a->concepts);
  topo_arg(t, s, "--concept-min-instances", "%s", a->concept_min);
  if (a->n_sc > 1) {  // the sink is the front; the shards are services (each exits once it has the whole stream)
    topo_arg(t, s, "--shards", "%d", a->n_sc);
    topo_arg(t, s, "--shard-out", "@ipc://%s/%s-shard.ipc", w, name);
    for (int k = 0; k < a->n_sc; k++) {
      snprintf(sn, sizeof sn, "%s-scorer-shard-%d", name, k);
      size_t h = topo_add(t, sn, SV_SERVICE, 3, 0);
      argv_push(t->argv[h], scorer);
      topo_arg(t, h, "--db", "%s", a->store);
      topo_arg(t, h, "--shards", "%d", a->n_sc);
      topo_arg(t, h, "--shard", "%d", k);
      topo_arg(t, h, "--in", ">ipc://%s/%s-shard.ipc", w, name);
      topo_arg(t, h, "--control", ">ipc://%s/%s-ctl.ipc", w, name);
      topo_arg(t, h, "--run-id", "%s", name);
      topo_arg(t, h, "--producer", "scorer-shard-%d", k);
      topo_arg(t, h, "--residue-top", "%s", a->residue_top);
    }
  }
  for (int i = 0; i < a->n_enc; i++) {
    snprintf(sn, sizeof sn, "%s-encoder-%d", name, i);
    size_t e = topo_add(t, sn, SV_SERVICE, 3, 0);
    argv_push(t->argv[e], encoder);
    if (a->sae) topo_arg(t, e, "--sae", "%s", a->sae);
    else topo_arg(t, e, "--neurons", "1");
    topo_arg(t, e, "--in", ">ipc://%s/%s-rd.ipc", w, name);
    topo_arg(t, e, "--out", ">ipc://%s/%s-sc.ipc", w, name);
    topo_arg(t, e, "--producer", "encoder-%d", i);
    topo_arg(t, e, "--run-id", "%s", name);
    for (const char *const *x = a->encoder_extra; x && x[0]; x += 2) topo_arg(t, e, x[0], "%s", x[1]);
  }
  int port = prom_free_port();  // the reader's metrics: the progress bar
  snprintf(sn, sizeof sn, "%s-reader", name);
  size_t r = topo_add(t, sn, SV_SERVICE, 3, 0);
  argv_push(t->argv[r], reader);
  topo_arg(t, r, "--emb", "%s", a->emb);
  topo_arg(t, r, "--fasta", "%s", a->fasta);
  topo_arg(t, r, "--out", "@ipc://%s/%s-rd.ipc", w, name);
  topo_arg(t, r, "--control", "@ipc://%s/%s-ctl.ipc", w, name);
  topo_arg(t, r, "--consumers", "0");  // one EndOfStream per live consumer: any encoder count
  topo_arg(t, r, "--batch-rows", "%s", a->batch_rows);
  topo_arg(t, r, "--run-id", "%s", name);
  topo_arg(t, r, "--metrics-port", "%d", port);
  if (a->ids) topo_arg(t, r, "--ids", "%s", a->ids);
  for (const char *const *x = a->reader_extra; x && x[0]; x += 2) topo_arg(t, r, x[0], "%s", x[1]);
  snprintf(sn, sizeof sn, "%s-interpreter", name);
  size_t x = topo_add(t, sn, SV_SERVICE, 3, 0);
  argv_push(t->argv[x], interp);
  topo_arg(t, x, "--in", ">ipc://%s/%s-interp.ipc", w, name);
  topo_arg(t, x, "--results", ">ipc://%s/%s-sc.ipc", w, name);  // back into the scorer's input
  topo_arg(t, x, "--data", "%s", a->datadir);
  topo_arg(t, x, "--mode", "%s", a->mode);
  topo_arg(t, x, "--cache", "%s/llm-cache-%s", w, name);
  topo_arg(t, x, "--producer", "interp-%s-0", name);
  demo_interp_args(t, s, x, a->cfg);
  sv_result_t res;
  rc = topo_run(t, name, port, 0, &res);
  if (rc == 0 && res.restarts)
    printf("      %d stage restart%s (%s); the store is complete\n", res.restarts, res.restarts > 1 ? "s" : "", name);
  topo_free(t);
  return rc;
}

// ---- figures from the stores --------------------------------------------------------------------
static int first_mode(uint32_t unit, const fs_interp_t *x, const char *json, void *ctx) {
  (void)unit, (void)json;
  if (x->mode) snprintf((char *)ctx, 96, "%s", x->mode);
  return 1;  // the first is enough
}

json_t *store_json(fs_t *fs, const char *key) {
  char *v = NULL;
  size_t len = 0;
  ps_err_t err = {0};
  if (fs_kv_get(fs, key, &v, &len, &err) != 1) return NULL;
  json_t *j = json_loadb(v, len, 0, NULL);
  free(v);
  return j;
}

void store_figs_load(store_figs_t *f, const char *path) {
  memset(f, 0, sizeof *f);
  fs_t *fs = NULL;
  ps_err_t err = {0};
  if (fs_open(&fs, path, FS_OPEN_READONLY, &err) < 0) {
    fprintf(stderr, "protsae demo: %s: %s\n", path, err.msg);
    return;
  }
  f->enrich = store_json(fs, "enrich/summary");
  f->interp = store_json(fs, "interp/summary");
  fs_interp_each(fs, first_mode, f->mode, &err);
  fs_close(&fs);
}

void store_figs_free(store_figs_t *f) {
  json_decref(f->enrich);
  json_decref(f->interp);
  memset(f, 0, sizeof *f);
}

double jnum(json_t *o, const char *key) {
  json_t *x = json_object_get(o, key);
  return json_is_number(x) ? json_number_value(x) : NAN;
}

static double pct(double a, double b) { return b > 0 ? 100.0 * a / b : 0.0; }

// The headline GO figures, features beside neurons (the full table: protsae report).
void print_enrich_table(json_t *f, json_t *n) {
  printf("      %-44s %10s %10s\n", "", "features", "neurons");
#define ROW(label, fmt, a, b) do { \
    char x_[32], y_[32]; snprintf(x_, sizeof x_, fmt, a); snprintf(y_, sizeof y_, fmt, b); \
    printf("      %-44s %10s %10s\n", label, x_, y_); } while (0)
  double fa = jnum(f, "n_alive"), na = jnum(n, "n_alive");
  ROW("units alive (active on an annotated protein)", "%.0f", fa, na);
  ROW("with >= 1 significant GO term", "%.1f%%", pct(jnum(f, "with_any"), fa), pct(jnum(n, "with_any"), na));
  ROW("  ... biological process", "%.1f%%", pct(jnum(f, "with_bp"), fa), pct(jnum(n, "with_bp"), na));
  ROW("  ... molecular function", "%.1f%%", pct(jnum(f, "with_mf"), fa), pct(jnum(n, "with_mf"), na));
  ROW("  ... cellular component", "%.1f%%", pct(jnum(f, "with_cc"), fa), pct(jnum(n, "with_cc"), na));
  ROW("median best F1 to a GO term", "%.3f", jnum(f, "median_best_f1"), jnum(n, "median_best_f1"));
  ROW("with a GO term at F1 >= 0.5", "%.1f%%", pct(jnum(f, "f1_over_05"), fa), pct(jnum(n, "f1_over_05"), na));
  ROW("DAG distance between a unit's terms", "%.2f", jnum(f, "mono_dist"), jnum(n, "mono_dist"));
  ROW("  ... between random terms", "%.2f", jnum(f, "mono_rand_dist"), jnum(n, "mono_rand_dist"));
#undef ROW
}

// The explanation scores, features beside neurons.
void print_interp_table(json_t *f, json_t *n) {
  static const char *const keys[] = {"analysed", "scored", "failed", "mean_r", "median_r", "frac_p_lt_0.05"};
  printf("      %-22s %12s %12s\n", "", "features", "neurons");
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    double a = jnum(f, keys[k]), b = jnum(n, keys[k]);
    if (isnan(a) && isnan(b) && !json_object_get(f, keys[k])) continue;  // a field this store does not keep
    const char *fmt = k < 3 ? "%.0f" : "%.4f";
    char x[32], y[32];
    snprintf(x, sizeof x, fmt, a);
    snprintf(y, sizeof y, fmt, b);
    printf("      %-22s %12s %12s\n", keys[k], x, y);
  }
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
    if (ps_id_in_fraction(r.id, seed, frac)) fprintf(ff, ">%s%s%s\n%s\n", r.id, r.desc[0] ? " " : "", r.desc, r.seq);
  if (rc < 0) goto out;
  emb_source_opts_t eo = {.path = emb, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids};
  if ((rc = emb_source_open(&src, &eo, err)) < 0) goto out;
  emb_record_t e;
  snprintf(p, sizeof p, "%s/heldout.npy", dir);
  while ((rc = emb_source_next(src, &e, err)) > 0) {
    if (!ps_id_in_fraction(e.id, seed, frac)) continue;
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

int demo_check_keys(const ps_config_t *cfg, int64_t *n_enc, int64_t *n_sc, demo_train_plan_t *check) {
  ps_err_t err = {0};
  if (ps_config_i64(cfg, "encoders", n_enc, &err) < 0 || *n_enc < 1 || *n_enc > 16) {
    fprintf(stderr, "protsae demo: --encoders must be 1..16\n");
    return -1;
  }
  if (ps_config_i64(cfg, "scorers", n_sc, &err) < 0 || *n_sc < 1 || *n_sc > 16) {
    fprintf(stderr, "protsae demo: --scorers must be 1..16\n");
    return -1;
  }
  if (demo_train_plan(cfg, 1, check, &err) < 0) {
    fprintf(stderr, "protsae demo: %s\n", err.msg);
    return -1;
  }
  return 0;
}

int cli_demo(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  conf_argv_t pa;  // argv with the preset's settings first
  if (conf_preset_expand(argc, argv, demo_has_option, demo_has_option, &pa, &err) < 0) {
    fprintf(stderr, "protsae demo: %s\n", err.msg);
    return 2;
  }
  int crc = ps_config_cli(&cfg, demo_keys, "protsae demo", (int)pa.n, pa.av);
  if (crc < 0 && strcmp(ps_config_str(cfg, "level"), "protein")) {  // residue level: its own flow
    ps_config_destroy(&cfg);
    crc = demo_residue((int)pa.n, pa.av, demo_keys);
  }
  conf_argv_free(&pa);  // the option parser keeps copies
  if (crc >= 0) return crc;
  int status = 1, regen = 0, rc;
  char imode[96] = "";  // the mode of the explanations behind features_mean_r / neurons_mean_r
  int64_t n_enc = 2, n_sc = 1;
  char work[PATH_MAX], synth_dir[PATH_MAX], meta[PATH_MAX], datadir[PATH_MAX], emb[PATH_MAX], fasta[PATH_MAX],
      absw[PATH_MAX], logs[PATH_MAX + 8];
  snprintf(work, sizeof work, "%s", ps_config_str(cfg, "workdir"));
  ps_config_bool(cfg, "regenerate", &regen, NULL);
  demo_train_plan_t check;  // the training keys, checked before anything runs
  if (demo_check_keys(cfg, &n_enc, &n_sc, &check) < 0) goto out;
  ps_blas_core_check();  // once here; each stage's log says it again
  mkdir(work, 0755);
  if (!realpath(work, absw)) snprintf(absw, sizeof absw, "%s", work);
  snprintf(logs, sizeof logs, "%s/logs", absw);
  mkdir(logs, 0755);
  g_logs = logs;
  snprintf(synth_dir, sizeof synth_dir, "%s/synth", absw);
  snprintf(meta, sizeof meta, "%s/truth/meta.json", synth_dir);
  double t0 = ps_mono_s(), t1;
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
  unsetenv("PROTSAE_DATA");  // each stage that reads annotations gets --data; in the environment it would also
                             // reach the shard scorers, which refuse it

  if (user)
    printf("== protsae run: features of your embeddings %s ==\n", u_emb);
  else
    printf("== protsae demo: planted GO-term features over real human proteins ==\n");
  printf("work directory %s (stage logs in logs/)\n", absw);
  if (ps_config_str(cfg, "preset")) {
    char pp[PATH_MAX];
    printf("preset %s (%s): its settings, then yours\n", ps_config_str(cfg, "preset"),
           conf_preset_path(ps_config_str(cfg, "preset"), pp, sizeof pp, &err) ? pp : "?");
  }
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
      if (demo_fasta_ids(fasta, ids_buf, &nid, &err) < 0) {
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
    if (cli_synth(15, sargv) != 0) {
      fprintf(stderr, "protsae demo: generating the dataset failed\n");
      goto out;
    }
  } else {
    printf("[1/6] reusing the planted dataset in %s (--regenerate to rebuild)\n", synth_dir);
  }
  snprintf(emb, sizeof emb, "%s/emb.npy", synth_dir);
  snprintf(fasta, sizeof fasta, "%s/proteins.fasta", synth_dir);
have_data:;

  // [2/6] train an SAE on the stream (the recipe: demo_train.c), then measure how many planted features it recovered
  char reader[PATH_MAX], trainer[PATH_MAX], sae_dir[PATH_MAX], best[PATH_MAX + 8], truth[PATH_MAX + 32],
      cfgp[PATH_MAX + 32];
  if (need_stage("reader", reader, sizeof reader) || need_stage("trainer", trainer, sizeof trainer)) goto out;
  snprintf(sae_dir, sizeof sae_dir, "%s/sae", absw);
  demo_train_final(&check, sae_dir, best, sizeof best);
  snprintf(truth, sizeof truth, "%s/truth/directions.npy", synth_dir);
  int retrain = 1;
  int64_t train_steps = 0, train_rows = 0;
  double train_s = NAN;  // NAN: not trained in this run
  ps_config_bool(cfg, "retrain", &retrain, NULL);
  snprintf(cfgp, sizeof cfgp, "%s/cfg.json", best);
  if (!retrain && access(cfgp, R_OK) == 0) {
    printf("[2/6] reusing the SAE in %s (--retrain 1 to train again)\n", best);
    goto trained;
  }
  if ((rc = ps_rm_rf(sae_dir)) < 0) {
    fprintf(stderr, "protsae demo: cannot remove %s: %s\n", sae_dir, strerror(-rc));
    goto out;
  }
  t1 = ps_mono_s();
  {
    int64_t n_rows = 0, n_val = 0;
    demo_train_plan_t plan;
    if (demo_train_count_rows(cfg, emb, ids, &n_rows, &n_val, &err) < 0 || demo_train_plan(cfg, n_rows, &plan, &err) < 0) {
      fprintf(stderr, "protsae demo: %s\n", err.msg);
      goto out;
    }
    printf("[2/6] training the SAE: %s, d_sae %s, k %s, batch %lld, lr %g (linear decay to 0 over the last %lld of "
           "%lld steps), %lld epochs x %lld proteins = %lld rows: protsae-reader -> protsae-trainer\n",
           plan.arch, ps_config_str(cfg, "d-sae"), ps_config_str(cfg, "k"), (long long)plan.batch, plan.lr,
           (long long)plan.decay_steps, (long long)plan.steps, (long long)plan.epochs, (long long)n_rows,
           (long long)(plan.epochs * n_rows));
    topo_t *t = topo_new(g_logs);
    demo_train_io_t io = {.trainer = trainer, .reader = reader, .work = absw, .sae_dir = sae_dir, .emb = emb,
                          .fasta = fasta, .ids = ids, .reader_batch = ps_config_str(cfg, "batch-rows"),
                          .trainer_port = prom_free_port(), .reader_port = prom_free_port()};
    demo_train_topo(t, cfg, &plan, &io);
    sv_result_t res;
    rc = topo_run(t, "training stream", io.reader_port, io.trainer_port, &res);
    topo_free(t);
    if (rc) {
      status = rc;
      goto out;
    }
    if (res.restarts)
      printf("      %d restart%s of the training (the trainer resumed from its last checkpoint)\n", res.restarts,
             res.restarts > 1 ? "s" : "");
  }
  train_s = ps_mono_s() - t1;
  if (demo_train_done(sae_dir, &train_steps, &train_rows, &err) < 0) {
    fprintf(stderr, "protsae demo: the finished training: %s\n", err.msg);
    goto out;
  }
  printf("      trained in %.0f s (%lld rows, %lld steps)\n", train_s, (long long)train_rows, (long long)train_steps);
trained:;
  if (isnan(train_s) && demo_train_done(sae_dir, &train_steps, &train_rows, &err) < 0)  // reused: its figures if it has them
    train_rows = 0, err.msg[0] = 0;
  recovery_t rec = {.planted_recovery_cos09 = NAN};
  if (user) {
    printf("      (your data has no planted truth: recovery not measured)\n");
  } else {
    if (recovery_measure(best, truth, &rec, &err) < 0) {
      fprintf(stderr, "protsae demo: planted-feature recovery: %s\n", err.msg);
      goto out;
    }
    printf("      planted features recovered (best decoder-row cosine per planted direction, %lld directions, "
           "d_sae %lld):\n      %.1f%% at cosine >= 0.9, %.1f%% at >= 0.8, mean best cosine %.4f\n",
           (long long)rec.n_directions, (long long)rec.d_sae, 100 * rec.planted_recovery_cos09,
           100 * rec.planted_recovery_cos08, rec.mean_best_cos);
  }

  // the held-out proteins of step 6: left out of the enrichment (the scorer's --enrich-exclude),
  // so the feature -> term map is learned without them
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
  if ((rc = ps_rm_rf(ann_dir)) < 0) {
    fprintf(stderr, "protsae demo: cannot remove %s: %s\n", ann_dir, strerror(-rc));
    goto out;
  }
  mkdir(ann_dir, 0755);
  mkdir(drop, 0755);
  if (holdout > 0 &&
      write_holdout(fasta, emb, user ? ids : synth_ids, drop, hold_ids, (uint64_t)seed, holdout, &n_held, &err) < 0) {
    fprintf(stderr, "protsae demo: held-out proteins: %s\n", err.msg);
    goto out;
  }

  // [3/6] encode every protein with the SAE and with the raw dimensions (baseline); each scorer
  // then runs the GO enrichment [4/6] and the interpretation [5/6] into its store
  char fstore[PATH_MAX + 16], nstore[PATH_MAX + 16];
  snprintf(fstore, sizeof fstore, "%s/features.db", absw);
  snprintf(nstore, sizeof nstore, "%s/neurons.db", absw);
  t1 = ps_mono_s();
  char sc_desc[96] = "protsae-scorer (RocksDB)";
  if (n_sc > 1)
    snprintf(sc_desc, sizeof sc_desc, "protsae-scorer front -> %lld protsae-scorer shards (RocksDB each)", (long long)n_sc);
  printf("[3/6] encoding: protsae-reader -> %lld x protsae-encoder -> %s -> protsae-interpreter, SAE features then "
         "neurons\n", (long long)n_enc, sc_desc);
  if (holdout > 0)
    printf("      %lld proteins (%.0f%%) held out of the enrichment for step 6\n", (long long)n_held, 100 * holdout);
  fflush(stdout);
  encode_args_t ea = {.work = absw, .emb = emb, .fasta = fasta, .ids = ids, .sae = best,
                      .batch_rows = ps_config_str(cfg, "batch-rows"), .store = fstore, .datadir = datadir,
                      .hold_ids = n_held ? hold_ids : NULL, .mode = ps_config_str(cfg, "mode"),
                      .n_interpret = ps_config_str(cfg, "n-interpret"), .n_enc = (int)n_enc, .n_sc = (int)n_sc,
                      .residue_top = ps_config_str(cfg, "residue-top"), .concepts = ps_config_str(cfg, "concepts"),
                      .concept_min = ps_config_str(cfg, "concept-min-instances"), .cfg = cfg};
  if ((rc = encode_topology("features", &ea)) != 0) {
    status = rc;
    goto out;
  }
  ea.sae = NULL, ea.store = nstore;
  if ((rc = encode_topology("neurons", &ea)) != 0) {
    status = rc;
    goto out;
  }
  printf("      encoded, enriched and explained in %.0f s; feature stores %s, %s (protsae features / feature N "
         "--db ...)\n", ps_mono_s() - t1, fstore, nstore);
  store_figs_t ff, nf;
  store_figs_load(&ff, fstore);
  store_figs_load(&nf, nstore);

  // [4/6] GO enrichment: features vs neurons, from the stores
  printf("[4/6] GO enrichment of every feature and every neuron (in the scorer: Fisher's exact test, %s)\n",
         ps_config_str(cfg, "enrich-correction") && !strcmp(ps_config_str(cfg, "enrich-correction"), "bonferroni")
             ? "Bonferroni" : "BH FDR");
  if (ff.enrich && nf.enrich) print_enrich_table(ff.enrich, nf.enrich);
  else printf("      (no enrichment summary in %s)\n", ff.enrich ? nstore : fstore);

  // [5/6] interpretation: explanations scored on held-out proteins, features vs neurons
  printf("[5/6] explaining %s features and %s neurons, scored on held-out proteins (protsae-interpreter); the r "
         "figures come from the mode below\n", ps_config_str(cfg, "n-interpret"), ps_config_str(cfg, "n-interpret"));
  if (ff.mode[0])
    printf("      mode: %s%s\n", ff.mode, !strcmp(ff.mode, "offline") ? " (OFFLINE: no LLM, explanations from the shown proteins' annotations)" : "");
  if (ff.interp && nf.interp) print_interp_table(ff.interp, nf.interp);
  else printf("      (no interpretation summary in %s)\n", ff.interp ? nstore : fstore);
  double fgo = jnum(ff.enrich, "frac_alive_with_term"), ngo = jnum(nf.enrich, "frac_alive_with_term");
  double fr = jnum(ff.interp, "mean_r"), nr = jnum(nf.interp, "mean_r");
  snprintf(imode, sizeof imode, "%s", ff.mode);
  store_figs_free(&ff);
  store_figs_free(&nf);

  // [6/6] GO prediction on the held-out proteins, from the feature store's enrichment and explanations
  char ann_out[PATH_MAX + 32], hf[PATH_MAX + 48], he[PATH_MAX + 48], hi[PATH_MAX + 48];
  annot_fmax_result_t fm[ANNOT_N_FM], naive[ANNOT_N_FM], knn[ANNOT_N_FM];
  double n_eval = NAN;
  for (int k = 0; k < ANNOT_N_FM; k++)
    fm[k] = naive[k] = knn[k] = (annot_fmax_result_t){.fmax = NAN, .tau = NAN, .precision = NAN, .recall = NAN};
  snprintf(ann_out, sizeof ann_out, "%s/out", ann_dir);
  if (n_held > 0) {
    t1 = ps_mono_s();
    printf("[6/6] GO prediction for the %lld held-out proteins from their features\n", (long long)n_held);
    fflush(stdout);
    snprintf(hf, sizeof hf, "%s/heldout.fasta", drop);
    snprintf(he, sizeof he, "%s/done/heldout.npy", drop);  // where the service moves annotated inputs
    snprintf(hi, sizeof hi, "%s/done/heldout.ids", drop);
    // the annotation service's processes, as `protsae annotate` runs them: reader --watch (the
    // held-out proteome's precomputed embeddings) -> encoders -> annotator; the result is read
    // back through the annotation store's API
    char st_dir[PATH_MAX + 48], st_logs[PATH_MAX + 64], st_db[PATH_MAX + 64];
    snprintf(st_dir, sizeof st_dir, "%s/state", ann_dir);
    snprintf(st_logs, sizeof st_logs, "%s/logs", st_dir);
    snprintf(st_db, sizeof st_db, "%s/annotations.db", st_dir);
    mkdir(ann_out, 0755);
    mkdir(st_dir, 0755);
    mkdir(st_logs, 0755);
    static const char *const rargs[] = {"--once", "1", "--settle-ms", "0", NULL};
    static const char *const aargs[] = {"--evaluate", "1", NULL};
    annot_svc_t sv = {drop, ann_out, st_dir, best, fstore, datadir, 0, (int)n_enc, 0, ps_config_str(cfg, "batch-rows"),
                      rargs, aargs};
    topo_t *at = topo_new(st_logs);
    size_t ar, aa;
    sv_result_t ares;
    if (annot_svc_topo(at, &sv, &ar, &aa) < 0) {
      topo_free(at);
      fprintf(stderr, "protsae demo: cannot find the annotation service's executables (set PROTSAE_LIBEXEC)\n");
      goto out;
    }
    rc = topo_run(at, "annotate", 0, 0, &ares);
    topo_free(at);
    if (rc != 0) {
      status = rc;
      goto out;
    }
    as_t *as = NULL;
    held_result_t hr = {0};
    if (as_open(&as, st_db, AS_OPEN_READONLY, &err) < 0 || as_result_each(as, find_heldout, &hr, &err) < 0 || !hr.found) {
      fprintf(stderr, "protsae demo: annotating the held-out proteins: %s\n",
              err.msg[0] ? err.msg : "no result for the held-out proteome in the annotation store");
      as_close(&as);
      goto out;
    }
    as_close(&as);
    if (hr.r.status != AS_STATUS_DONE) {
      fprintf(stderr, "protsae demo: annotating the held-out proteins failed: %s\n", hr.r.error);
      as_result_free(&hr.r);
      goto out;
    }
    for (int k = 0; k < ANNOT_N_FM; k++) {
      fm[k] = (annot_fmax_result_t){.fmax = hr.r.fmax[k], .tau = hr.r.threshold[k], .precision = hr.r.precision[k],
                                    .recall = hr.r.recall[k]};
      naive[k] = (annot_fmax_result_t){.fmax = hr.r.naive[k]};
    }
    n_eval = (double)hr.r.n_evaluated;
    as_result_free(&hr.r);
    printf("      Fmax %.4f (naive %.4f) over %.0f proteins, in %.0f s; per protein: features, explanations, GO "
           "terms in %s/heldout.{tsv,jsonl}\n", fm[0].fmax, naive[0].fmax, n_eval, ps_mono_s() - t1, ann_out);
    // the nearest-neighbour baseline on the same embeddings: the other proteins of the file train
    t1 = ps_mono_s();
    annot_knn_stats_t kst;
    if (annot_knn_eval(datadir, emb, user ? ids : synth_ids, he, hi, NULL, knn, &kst, &err) < 0) {
      fprintf(stderr, "protsae demo: nearest-neighbour baseline: %s\n", err.msg);
      goto out;
    }
    printf("      nearest-neighbour transfer (k %d, cosine over the embeddings, %lld training proteins): Fmax %.4f, "
           "in %.0f s\n", ANNOT_KNN_K, (long long)kst.n_train, knn[0].fmax, ps_mono_s() - t1);
  } else {
    printf("[6/6] no held-out proteins (--holdout 0): GO prediction not evaluated\n");
  }

  printf("\n");
  fflush(stdout);
  char *pargv[] = {"report", "--workdir", absw, "--data", datadir, NULL};
  if (cli_report(5, pargv) != 0) goto out;
  printf("planted_recovery_cos09: %.4f\n", rec.planted_recovery_cos09);
  printf("train_seconds: %.1f\ntrain_rows: %lld\n", train_s, (long long)train_rows);
  printf("features_with_go_fraction: %.4f\nneurons_with_go_fraction: %.4f\n", fgo, ngo);
  printf("interpret_mode: %s\nfeatures_mean_r: %.4f\nneurons_mean_r: %.4f\n", imode[0] ? imode : "none", fr, nr);
  printf("annotate_heldout_proteins: %lld\nannotate_evaluated_proteins: %.0f\n", (long long)n_held, n_eval);
  printf("annotate_precision: %.4f\nannotate_recall: %.4f\nannotate_threshold: %.2f\nannotate_fmax: %.4f\n",
         fm[0].precision, fm[0].recall, fm[0].tau, fm[0].fmax);
  printf("annotate_naive_fmax: %.4f\nannotate_knn_fmax: %.4f\n", naive[0].fmax, knn[0].fmax);
  static const char *const nsn[] = {"bp", "mf", "cc"};
  for (int k = 0; k < 3; k++)
    printf("annotate_fmax_%s: %.4f\nannotate_naive_fmax_%s: %.4f\nannotate_knn_fmax_%s: %.4f\n", nsn[k],
           fm[1 + k].fmax, nsn[k], naive[1 + k].fmax, nsn[k], knn[1 + k].fmax);
  printf("seconds: %.1f\n", ps_mono_s() - t0);
  printf("sae: %s (SAELens directory)\n", best);
  status = 0;
out:
  ps_config_destroy(&cfg);
  return status;
}
