// demo_residue.c — `protsae demo --level residue` and `protsae run` with `level = residue`: the
// demo's pipeline at residue level, as InterPLM does it:
//   1. the planted dataset at residue level (protsae synth --level residue: amino-acid and
//      sequence-motif directions added to every residue; truth/motif_concepts.tsv, the motif hits
//      as residue concepts), or the user's residue-level embeddings (npy + offsets, safetensors,
//      h5, pt)
//   2. an AA-level SAE: protsae-reader --level residue -> protsae-trainer (the demo's training
//      keys, with residue-level defaults: residue_defaults below); recovery of the planted
//      motif, amino-acid and GO-term directions
//   3. encoding at residue level with the SAE and with the neurons: reader --level residue ->
//      encoders (residue codes, pooled per protein) -> scorer (--concepts, --residue-top: the
//      top residues of every active feature per protein in the store)
//   4. GO enrichment on the pooled codes, as at protein level
//   5. explanations scored on held-out proteins (pooled codes)
//   6. the residue concept analysis (InterPLM's F1, in the scorer), features beside neurons, and
//      residue_concept_found: of the SAE features that recovered a planted motif direction, the
//      share whose best concept is that motif
// GO prediction on held-out proteins is protein-level only (the annotation service reads
// protein-level embeddings): said in the output, not run. Then the report (residue cards) and
// the summary's `key: value` lines.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "demo_shared.h"
#include "demo_train.h"
#include "emb.h"
#include "featstore.h"
#include "fsutil.h"
#include "io.h"
#include "prom.h"
#include "synth.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

// Where the protein-level recipe does not fit residues: ~5 active directions a residue (its amino
// acid, a motif or two, its protein's GO terms), hundreds of residues a protein.
static const char *const residue_defaults[][2] = {
    {"d-sae", "1024"}, {"k", "16"}, {"train-rows", "1000000"}, {"n-interpret", "100"},
    {NULL, NULL}};

// Rows (residues) of a residue-level source: what the training plan counts; *longest: the most
// residues of one protein (a residue batch exceeds --batch-rows by less than one protein).
static int count_residues(const char *emb, const char *ids, int64_t *n, int64_t *longest, ps_err_t *err) {
  emb_source_t *src = NULL;
  emb_source_opts_t o = {.path = emb, .level = EMB_LEVEL_RESIDUE, .layer = -1, .ids_path = ids, .allow_nonfinite = 1};
  int rc = emb_source_open(&src, &o, err);
  emb_record_t r;
  *n = *longest = 0;
  while (rc >= 0 && (rc = emb_source_next(src, &r, err)) > 0) {
    *n += r.n_rows;
    if (r.n_rows > *longest) *longest = r.n_rows;
  }
  emb_source_destroy(&src);
  if (rc < 0) return rc;
  if (*n == 0) return ps_err_set(err, PS_ECONFIG, "%s: no residues to train on", emb);
  return 0;
}

// The planted dataset at residue level in dir, generated unless dir holds one made with the same
// arguments (dir/demo.args).
static int residue_dataset(const ps_config_t *cfg, const char *datadir, const char *dir, int regen) {
  char *av[] = {"synth", "--data", (char *)datadir, "--out", (char *)dir, "--seed", (char *)ps_config_str(cfg, "seed"),
                "--dim", (char *)ps_config_str(cfg, "dim"), "--n-terms", (char *)ps_config_str(cfg, "n-terms"),
                "--level", "residue", "--residue-proteins", (char *)ps_config_str(cfg, "residue-proteins"),
                "--residue-formats", "npy", "--quiet", "1", NULL};
  int ac = (int)(sizeof av / sizeof *av) - 1;
  char stamp[PATH_MAX + 16], meta[PATH_MAX + 32], want[PATH_MAX * 2] = "", have[PATH_MAX * 2] = "";
  for (int i = 1; i < ac; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s\n", av[i]);
  snprintf(stamp, sizeof stamp, "%s/demo.args", dir);
  snprintf(meta, sizeof meta, "%s/truth/meta.json", dir);
  FILE *f = fopen(stamp, "r");
  if (f) {
    have[fread(have, 1, sizeof have - 1, f)] = 0;
    fclose(f);
  }
  if (!regen && access(meta, R_OK) == 0 && !strcmp(want, have)) {
    printf("[1/6] reusing the residue-level planted dataset in %s (--regenerate to rebuild)\n", dir);
    return 0;
  }
  printf("[1/6] generating the planted dataset at residue level (%s proteins) from %s\n",
         ps_config_str(cfg, "residue-proteins"), datadir);
  fflush(stdout);
  if (cli_synth(ac, av) != 0) {
    fprintf(stderr, "protsae demo: generating the residue-level dataset failed\n");
    return -1;
  }
  ps_err_t err = {0};
  if (ps_write_file_atomic(stamp, want, strlen(want), &err) < 0) fprintf(stderr, "protsae demo: %s\n", err.msg);
  return 0;
}

// residue_concept_found: among the SAE features whose decoder row recovers a planted motif
// direction (cosine >= 0.9), the share whose best concept in the store is that motif. *n_rec: how
// many such features. NAN when there are none.
static double concept_found(const char *sae, const char *motif_dirs, const char *store, int64_t *n_rec, ps_err_t *err) {
  int32_t *dir_of = NULL;
  int64_t m = 0, hit = 0;
  *n_rec = 0;
  if (recovery_match(sae, motif_dirs, 0.9f, &dir_of, &m, err) < 0) return NAN;
  fs_t *fs = NULL;
  if (fs_open(&fs, store, FS_OPEN_READONLY, err) < 0) {
    free(dir_of);
    return NAN;
  }
  for (int64_t j = 0; j < m; j++) {
    if (dir_of[j] < 0 || dir_of[j] >= SYNTH_N_MOTIFS) continue;
    (*n_rec)++;
    fs_concept_t c;
    int rc = fs_concept_get(fs, (uint32_t)j, &c, err);
    if (rc < 0) break;
    if (rc == 1) {
      hit += c.concept && !strcmp(c.concept, synth_motif(dir_of[j])->name);
      fs_concept_free(&c);
    }
  }
  fs_close(&fs);
  free(dir_of);
  return *n_rec ? (double)hit / (double)*n_rec : NAN;
}

// The concept analysis of both stores side by side ("concept/summary").
static void print_concept_table(json_t *f, json_t *n) {
  static const char *const keys[][2] = {{"n_concepts", "concepts scored"},
                                        {"n_features", "units"},
                                        {"features_f1_over_05", "units with a concept at F1 > 0.5"},
                                        {"frac_f1_over_05", "... share of the units"},
                                        {"concepts_covered", "concepts some unit has at F1 > 0.5"}};
  printf("      %-40s %10s %10s\n", "", "features", "neurons");
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    char x[32], y[32];
    const char *fmt = k == 3 ? "%.4f" : "%.0f";
    snprintf(x, sizeof x, fmt, jnum(f, keys[k][0]));
    snprintf(y, sizeof y, fmt, jnum(n, keys[k][0]));
    printf("      %-40s %10s %10s\n", keys[k][1], x, y);
  }
}

static json_t *concept_summary(const char *path) {
  fs_t *fs = NULL;
  ps_err_t err = {0};
  if (fs_open(&fs, path, FS_OPEN_READONLY, &err) < 0) return NULL;
  json_t *j = store_json(fs, "concept/summary");
  fs_close(&fs);
  return j;
}

// Paths of one residue-level run.
typedef struct rpaths {
  char work[PATH_MAX], data[PATH_MAX], synth[PATH_MAX + 32], emb[PATH_MAX], fasta[PATH_MAX], ids[PATH_MAX + 32],
      concepts[PATH_MAX * 2], sae_dir[PATH_MAX + 8], sae[PATH_MAX + 16], fstore[PATH_MAX + 16], nstore[PATH_MAX + 16];
  int user;  // the user's embeddings (protsae run): no planted truth
  int64_t n_rows;       // residues of the input
  char max_batch[32];   // the trainer's and encoders' --max-batch-rows: --batch-rows + the longest protein
} rpaths_t;

// The inputs: the user's (emb, fasta, ids, concepts) or the planted dataset. 0 or -1 (said).
static int residue_inputs(const ps_config_t *cfg, rpaths_t *p) {
  const char *u_emb = ps_config_str(cfg, "emb"), *u_fasta = ps_config_str(cfg, "fasta"), *u_ids = ps_config_str(cfg, "ids"),
             *u_con = ps_config_str(cfg, "concepts");
  int regen = 0;
  ps_config_bool(cfg, "regenerate", &regen, NULL);
  p->user = u_emb != NULL;
  p->ids[0] = p->concepts[0] = 0;
  if (p->user) {
    if (!u_fasta) {
      fprintf(stderr, "protsae demo: --emb needs --fasta (the proteins' sequences and ids)\n");
      return -1;
    }
    const char *bad = !realpath(u_emb, p->emb) ? u_emb : !realpath(u_fasta, p->fasta) ? u_fasta
                      : u_ids && !realpath(u_ids, p->ids) ? u_ids : NULL;
    if (bad) {
      fprintf(stderr, "protsae demo: %s: %s\n", bad, strerror(errno));
      return -1;
    }
    size_t el = strlen(p->emb);
    if (!u_ids && el > 4 && !strcmp(p->emb + el - 4, ".npy")) {  // a .npy's proteins: the FASTA's order
      int64_t nid = 0;
      ps_err_t err = {0};
      snprintf(p->ids, sizeof p->ids, "%s/input.ids", p->work);
      if (demo_fasta_ids(p->fasta, p->ids, &nid, &err) < 0) {
        fprintf(stderr, "protsae demo: %s\n", err.msg);
        return -1;
      }
    }
    printf("[1/6] your residue-level data: %s (%s); annotations %s\n", p->emb, p->fasta, p->data);
  } else {
    snprintf(p->synth, sizeof p->synth, "%s/synth-residue", p->work);
    if (residue_dataset(cfg, p->data, p->synth, regen) < 0) return -1;
    snprintf(p->emb, sizeof p->emb, "%s/residues.npy", p->synth);
    snprintf(p->fasta, sizeof p->fasta, "%s/proteins.fasta", p->synth);
    snprintf(p->ids, sizeof p->ids, "%s/residues.ids", p->synth);
    snprintf(p->concepts, sizeof p->concepts, "%s/truth/motif_concepts.tsv", p->synth);
  }
  if (u_con && u_con[0]) {  // the user's concept files, after the planted motifs
    size_t l = strlen(p->concepts);
    snprintf(p->concepts + l, sizeof p->concepts - l, "%s%s", l ? "," : "", u_con);
  }
  return 0;
}

// [2/6] the AA-level SAE: reader --level residue -> trainer. 0, or the exit status.
static int residue_train(const ps_config_t *cfg, const rpaths_t *p, double *train_s, int64_t *rows) {
  char reader[PATH_MAX], trainer[PATH_MAX];
  ps_err_t err = {0};
  if (need_stage("reader", reader, sizeof reader) || need_stage("trainer", trainer, sizeof trainer)) return 1;
  int rc = ps_rm_rf(p->sae_dir);
  if (rc < 0) {
    fprintf(stderr, "protsae demo: cannot remove %s: %s\n", p->sae_dir, strerror(-rc));
    return 1;
  }
  double t0 = ps_mono_s();
  int64_t n_rows = p->n_rows, steps = 0;
  demo_train_plan_t plan;
  if (demo_train_plan(cfg, n_rows, &plan, &err) < 0) {
    fprintf(stderr, "protsae demo: %s\n", err.msg);
    return 1;
  }
  printf("[2/6] training an AA-level SAE on residues: %s, d_sae %s, k %s, batch %lld, lr %g, %lld epochs x %lld "
         "residues = %lld rows: protsae-reader --level residue -> protsae-trainer\n", plan.arch,
         ps_config_str(cfg, "d-sae"), ps_config_str(cfg, "k"), (long long)plan.batch, plan.lr, (long long)plan.epochs,
         (long long)n_rows, (long long)(plan.epochs * n_rows));
  topo_t *t = topo_new(g_logs);
  demo_train_io_t io = {.trainer = trainer, .reader = reader, .work = p->work, .sae_dir = p->sae_dir, .emb = p->emb,
                        .fasta = p->fasta, .ids = p->ids[0] ? p->ids : NULL,
                        .reader_batch = ps_config_str(cfg, "batch-rows"), .trainer_port = prom_free_port(),
                        .reader_port = prom_free_port()};
  demo_train_topo(t, cfg, &plan, &io);
  for (size_t i = 0; i < t->n; i++)
    if (!strcmp(t->name[i], "train-reader")) topo_arg(t, i, "--level", "residue");
    else if (!strcmp(t->name[i], "trainer")) topo_arg(t, i, "--max-batch-rows", "%s", p->max_batch);
  sv_result_t res;
  rc = topo_run(t, "training stream", io.reader_port, io.trainer_port, &res);
  topo_free(t);
  if (rc) return rc;
  *train_s = ps_mono_s() - t0;
  if (demo_train_done(p->sae_dir, &steps, rows, &err) < 0) {
    fprintf(stderr, "protsae demo: the finished training: %s\n", err.msg);
    return 1;
  }
  printf("      trained in %.0f s (%lld rows, %lld steps)\n", *train_s, (long long)*rows, (long long)steps);
  return 0;
}

// Planted directions recovered (motifs, amino acids, GO terms), printed; the motifs' share at
// cosine >= 0.9 in *motif09, the GO terms' in *go09. 0 or -1 (said).
static int residue_recovery(const rpaths_t *p, double *motif09, double *aa09, double *go09) {
  static const char *const what[] = {"motif_directions", "sequence motifs", "aa_directions", "amino acids",
                                     "directions", "GO terms"};
  double *out[] = {motif09, aa09, go09};
  for (int k = 0; k < 3; k++) {
    char truth[PATH_MAX + 64];
    recovery_t rec;
    ps_err_t err = {0};
    snprintf(truth, sizeof truth, "%s/truth/%s.npy", p->synth, what[2 * k]);
    if (recovery_measure(p->sae, truth, &rec, &err) < 0) {
      fprintf(stderr, "protsae demo: planted-direction recovery: %s\n", err.msg);
      return -1;
    }
    *out[k] = rec.planted_recovery_cos09;
    printf("      planted %s recovered (%lld directions): %.1f%% at cosine >= 0.9, mean best cosine %.4f\n",
           what[2 * k + 1], (long long)rec.n_directions, 100 * rec.planted_recovery_cos09, rec.mean_best_cos);
  }
  return 0;
}

int demo_residue(int argc, char **argv, const ps_config_entry_t *table) {
  size_t nt = 0;
  while (table[nt].name) nt++;
  ps_config_entry_t *rt = ps_xcalloc(nt + 1, sizeof *rt);  // the table with residue-level defaults
  memcpy(rt, table, nt * sizeof *rt);
  for (size_t i = 0; i < nt; i++)
    for (int k = 0; residue_defaults[k][0]; k++)
      if (!strcmp(rt[i].name, residue_defaults[k][0])) rt[i].def = residue_defaults[k][1];
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, rt, "protsae demo --level residue", argc, argv);
  if (crc >= 0) {
    free(rt);
    return crc;
  }
  int status = 1, rc;
  ps_err_t err = {0};
  rpaths_t *p = ps_xcalloc(1, sizeof *p);
  char logs[PATH_MAX + 8];
  int64_t n_enc = 2, n_sc = 1;
  double t0 = ps_mono_s(), train_s = NAN, motif09 = NAN, aa09 = NAN, go09 = NAN;
  int64_t train_rows = 0;
  demo_train_plan_t check;
  if (strcmp(ps_config_str(cfg, "level"), "residue")) {
    fprintf(stderr, "protsae demo: --level %s: expected protein or residue\n", ps_config_str(cfg, "level"));
    goto out;
  }
  if (demo_check_keys(cfg, &n_enc, &n_sc, &check) < 0) goto out;
  const char *w = ps_config_str(cfg, "workdir"), *u_data = ps_config_str(cfg, "data");
  mkdir(w, 0755);
  if (!realpath(w, p->work)) snprintf(p->work, sizeof p->work, "%s", w);
  snprintf(logs, sizeof logs, "%s/logs", p->work);
  mkdir(logs, 0755);
  g_logs = logs;
  if (u_data ? !realpath(u_data, p->data) : !cli_data_dir(p->data, sizeof p->data)) {
    fprintf(stderr, "protsae demo: no annotation data: %s\n", u_data ? u_data : "set PROTSAE_DATA or --data");
    goto out;
  }
  unsetenv("PROTSAE_DATA");  // the stages get --data (shard scorers refuse it from the environment too)
  printf("== protsae %s at residue level: an AA-level SAE, residue concepts ==\n", ps_config_str(cfg, "emb") ? "run" : "demo");
  printf("work directory %s (stage logs in logs/)\n", p->work);
  if (residue_inputs(cfg, p) < 0) goto out;
  int64_t longest = 0, batch_rows = 0;
  if (count_residues(p->emb, p->ids[0] ? p->ids : NULL, &p->n_rows, &longest, &err) < 0 ||
      ps_config_i64(cfg, "batch-rows", &batch_rows, &err) < 0) {
    fprintf(stderr, "protsae demo: %s\n", err.msg);
    goto out;
  }
  snprintf(p->max_batch, sizeof p->max_batch, "%lld", (long long)(batch_rows + longest));
  snprintf(p->sae_dir, sizeof p->sae_dir, "%s/sae", p->work);
  demo_train_final(&check, p->sae_dir, p->sae, sizeof p->sae);  // sae/best with save-best
  snprintf(p->fstore, sizeof p->fstore, "%s/features.db", p->work);
  snprintf(p->nstore, sizeof p->nstore, "%s/neurons.db", p->work);

  // [2/6] train (or reuse) the SAE; recovery of the planted directions
  int retrain = 1;
  char cfgp[PATH_MAX + 32];
  ps_config_bool(cfg, "retrain", &retrain, NULL);
  snprintf(cfgp, sizeof cfgp, "%s/cfg.json", p->sae);
  if (!retrain && access(cfgp, R_OK) == 0) {
    printf("[2/6] reusing the SAE in %s (--retrain 1 to train again)\n", p->sae);
  } else if ((rc = residue_train(cfg, p, &train_s, &train_rows)) != 0) {
    status = rc;
    goto out;
  }
  if (p->user) printf("      (your data has no planted truth: recovery not measured)\n");
  else if (residue_recovery(p, &motif09, &aa09, &go09) < 0) goto out;

  // [3/6] encode at residue level with the SAE, then with the neurons; the scorer keeps the top
  // residues and runs the enrichment, the explanations and the concept analysis into its store
  const char *rx[] = {"--level", "residue", NULL}, *ex[] = {"--max-batch-rows", p->max_batch, NULL};
  double t1 = ps_mono_s();
  printf("[3/6] encoding residues: protsae-reader --level residue -> %lld x protsae-encoder -> protsae-scorer "
         "(top residues, concepts%s%s) -> protsae-interpreter, SAE features then neurons\n", (long long)n_enc,
         p->concepts[0] ? ": " : " none given", p->concepts);
  fflush(stdout);
  encode_args_t ea = {.work = p->work, .emb = p->emb, .fasta = p->fasta, .ids = p->ids[0] ? p->ids : NULL,
                      .sae = p->sae, .batch_rows = ps_config_str(cfg, "batch-rows"), .store = p->fstore,
                      .datadir = p->data, .mode = ps_config_str(cfg, "mode"),
                      .n_interpret = ps_config_str(cfg, "n-interpret"), .n_enc = (int)n_enc, .n_sc = (int)n_sc,
                      .residue_top = ps_config_str(cfg, "residue-top"), .concepts = p->concepts,
                      .concept_min = ps_config_str(cfg, "concept-min-instances"), .reader_extra = rx,
                      .encoder_extra = ex, .cfg = cfg};
  if ((rc = encode_topology("features", &ea)) != 0 || (ea.sae = NULL, ea.store = p->nstore, 0) ||
      (rc = encode_topology("neurons", &ea)) != 0) {
    status = rc;
    goto out;
  }
  printf("      encoded, enriched, explained and concept-scored in %.0f s; stores %s, %s\n", ps_mono_s() - t1,
         p->fstore, p->nstore);

  // [4/6], [5/6] GO enrichment of the pooled codes and the explanations, from the stores
  store_figs_t ff, nf;
  store_figs_load(&ff, p->fstore);
  store_figs_load(&nf, p->nstore);
  printf("[4/6] GO enrichment of every feature and every neuron, on the codes pooled per protein\n");
  if (ff.enrich && nf.enrich) print_enrich_table(ff.enrich, nf.enrich);
  else printf("      (no enrichment summary)\n");
  printf("[5/6] explaining %s features and %s neurons (pooled codes), scored on held-out proteins\n",
         ps_config_str(cfg, "n-interpret"), ps_config_str(cfg, "n-interpret"));
  if (ff.mode[0]) printf("      mode: %s\n", ff.mode);
  if (ff.interp && nf.interp) print_interp_table(ff.interp, nf.interp);
  else printf("      (no interpretation summary)\n");
  double fgo = jnum(ff.enrich, "frac_alive_with_term"), ngo = jnum(nf.enrich, "frac_alive_with_term");
  double fr = jnum(ff.interp, "mean_r"), nr = jnum(nf.interp, "mean_r");
  store_figs_free(&ff);
  store_figs_free(&nf);

  // [6/6] residue concepts: features beside neurons, and the planted motifs found
  json_t *fc = concept_summary(p->fstore), *nc = concept_summary(p->nstore);
  printf("[6/6] residue concepts (InterPLM's F1: residue precision, domain recall; in the scorer)\n");
  if (fc && nc) print_concept_table(fc, nc);
  else printf("      (no concept summary in %s)\n", fc ? p->nstore : p->fstore);
  double ffrac = jnum(fc, "frac_f1_over_05"), nfrac = jnum(nc, "frac_f1_over_05"), found = NAN;
  json_decref(fc);
  json_decref(nc);
  int64_t n_rec = 0;
  if (!p->user) {
    char md[PATH_MAX + 64];
    snprintf(md, sizeof md, "%s/truth/motif_directions.npy", p->synth);
    found = concept_found(p->sae, md, p->fstore, &n_rec, &err);
    if (err.msg[0]) fprintf(stderr, "protsae demo: residue_concept_found: %s\n", err.msg);
    printf("      planted motifs: %lld SAE features recover a motif direction (cosine >= 0.9); %.1f%% of them have "
           "that motif as their best concept\n", (long long)n_rec, 100 * found);
  }
  printf("      GO prediction on held-out proteins is protein-level only (the annotation service reads "
         "protein-level embeddings): not run at residue level\n\n");
  fflush(stdout);
  char *pargv[] = {"report", "--workdir", p->work, "--data", p->data, "--fasta", p->fasta, NULL};
  if (cli_report(7, pargv) != 0) goto out;
  if (!p->user)
    printf("planted_recovery_cos09: %.4f\nmotif_recovery_cos09: %.4f\naa_recovery_cos09: %.4f\n", go09, motif09, aa09);
  printf("train_seconds: %.1f\ntrain_rows: %lld\n", train_s, (long long)train_rows);
  printf("features_with_go_fraction: %.4f\nneurons_with_go_fraction: %.4f\n", fgo, ngo);
  printf("features_mean_r: %.4f\nneurons_mean_r: %.4f\n", fr, nr);
  printf("seconds: %.1f\n", ps_mono_s() - t0);
  printf("sae: %s (SAELens directory)\n", p->sae);
  printf("residue_concept_features: %lld\n", (long long)n_rec);
  printf("residue_concept_found: %.4f\n", found);
  printf("features_concept_f1_frac: %.4f\nneurons_concept_f1_frac: %.4f\n", ffrac, nfrac);
  status = 0;
out:
  free(p);
  ps_config_destroy(&cfg);
  free(rt);
  return status;
}
