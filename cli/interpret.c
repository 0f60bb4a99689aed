// protsae interpret — explanations for the units of an existing feature store (the demo's step 5
// alone): the stage processes the pipeline uses, over ipc:// under the supervisor:
// protsae-scorer on the complete store (no --data: the store's enrichment is kept as it is; it
// plans the units, sends InterpretRequests, stores each answer once) <-> N protsae-interpreter
// (offline unless a key is set). Units already explained are not asked again, so a larger
// --n-interpret adds to the store's explanations. A store sharded over several scorers is
// refused (run the pipeline's topology for it). Ends with `key: value` lines from the store's
// "interp/summary": interpret_mode, analysed, scored, failed, mean_r, median_r. Stage logs in
// WORKDIR/logs/, the LLM response cache in WORKDIR/llm-cache.
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "demo_interp.h"
#include "featstore.h"
#include "topo.h"
#include "verb.h"

static const ps_config_entry_t own[] = {
    {"db", NULL, "the feature store (a complete one: protsae demo / run, or reader -> encoders -> scorer)"},
    {"workdir", "protsae-interpret", "stage logs, sockets and the LLM response cache"},
    {"interpreters", "1", "interpreter processes sharing the requests"},
    {NULL, NULL, NULL},
};
static const char *const keys[] = {"data", "mode", "n-interpret", "interp-explain-frac", "interp-go-by-namespace",
                                   "interp-neuron-scaling", "interp-model", "pfam-names", "uniprot-flat", "preset",
                                   NULL};  // the demo's (cli/demo.c)
static ps_config_entry_t table[VERB_MAX_KEYS + 1];

// The store's "interp/summary" (NULL when absent) and the explanations' mode ("" when none).
static int first_mode(uint32_t unit, const fs_interp_t *x, const char *json, void *ctx) {
  (void)unit, (void)json;
  if (x->mode) snprintf((char *)ctx, 96, "%s", x->mode);
  return 1;
}

static json_t *summary(const char *db, char *mode, int *neurons, ps_err_t *err) {
  fs_t *fs = NULL;
  fs_meta_t m;
  char *v = NULL;
  size_t len = 0;
  json_t *j = NULL;
  if (cli_store_open(db, &fs, &m, err) >= 0) {
    *neurons = (int)m.neurons;
    if (fs_kv_get(fs, "interp/summary", &v, &len, err) == 1) j = json_loadb(v, len, 0, NULL);
    fs_interp_each(fs, first_mode, mode, err);
  }
  free(v);
  fs_close(&fs);
  return j;
}

static int interpret_main(ps_config_t *cfg) {
  ps_err_t err = {0};
  const char *db_in = ps_config_str(cfg, "db"), *u_data = ps_config_str(cfg, "data");
  char db[PATH_MAX], absw[PATH_MAX], logs[PATH_MAX + 8], datadir[PATH_MAX], sc[PATH_MAX], ip[PATH_MAX],
      probe[PATH_MAX + 16], mode[96] = "";
  int64_t n_int = 1;
  int neurons = 0;
  if (ps_config_i64(cfg, "interpreters", &n_int, &err) < 0 || n_int < 1 || n_int > 16) {
    fprintf(stderr, "protsae interpret: --interpreters must be 1..16\n");
    return 1;
  }
  if (!realpath(db_in, db)) {
    fprintf(stderr, "protsae interpret: --db %s: %s\n", db_in, strerror(errno));
    return 1;
  }
  snprintf(probe, sizeof probe, "%s/shard-0", db);
  if (access(probe, F_OK) == 0) {
    fprintf(stderr, "protsae interpret: --db %s is sharded over several scorers: not supported here\n", db_in);
    return 1;
  }
  json_decref(summary(db, mode, &neurons, &err));  // a store that opens (and is not empty), before starting
  if (err.msg[0]) {
    fprintf(stderr, "protsae interpret: %s\n", err.msg);
    return 1;
  }
  if (u_data ? !realpath(u_data, datadir) : !cli_data_dir(datadir, sizeof datadir)) {
    fprintf(stderr, "protsae interpret: no annotation data: --data %s (or PROTSAE_DATA)\n", u_data ? u_data : "unset");
    return 1;
  }
  if (!cli_stage_path("scorer", sc, sizeof sc) || !cli_stage_path("interpreter", ip, sizeof ip)) {
    fprintf(stderr, "protsae interpret: cannot find protsae-scorer / protsae-interpreter (set PROTSAE_LIBEXEC)\n");
    return 1;
  }
  const char *work = ps_config_str(cfg, "workdir");
  mkdir(work, 0755);
  if (!realpath(work, absw)) snprintf(absw, sizeof absw, "%s", work);
  snprintf(logs, sizeof logs, "%s/logs", absw);
  mkdir(logs, 0755);
  topo_t *t = topo_new(logs);
  size_t s = topo_add(t, "scorer", SV_SINK, 3, 0);
  argv_push(t->argv[s], sc);
  topo_arg(t, s, "--db", "%s", db);
  topo_arg(t, s, "--in", "@ipc://%s/sc.ipc", absw);
  topo_arg(t, s, "--interp-out", "@ipc://%s/interp.ipc", absw);
  topo_arg(t, s, "--n-interpret", "%s", ps_config_str(cfg, "n-interpret"));
  topo_arg(t, s, "--run-id", "interpret");
  for (int64_t i = 0; i < n_int; i++) {
    char name[32];
    snprintf(name, sizeof name, "interpreter-%lld", (long long)i);
    size_t x = topo_add(t, name, SV_SERVICE, 3, 0);
    argv_push(t->argv[x], ip);
    topo_arg(t, x, "--in", ">ipc://%s/interp.ipc", absw);
    topo_arg(t, x, "--results", ">ipc://%s/sc.ipc", absw);
    topo_arg(t, x, "--data", "%s", datadir);
    topo_arg(t, x, "--mode", "%s", ps_config_str(cfg, "mode"));
    topo_arg(t, x, "--cache", "%s/llm-cache", absw);
    topo_arg(t, x, "--producer", "interp-%lld", (long long)i);
    demo_interp_args(t, i ? SIZE_MAX : s, x, cfg);
  }
  printf("protsae interpret: %s (%s): protsae-scorer <-> %lld x protsae-interpreter, %s units\n", db,
         neurons ? "neurons" : "features", (long long)n_int, ps_config_str(cfg, "n-interpret"));
  int rc = verb_topo_run(t, "interpret", "interpretation", logs, 0, 0);
  topo_free(t);
  if (rc) return rc;
  json_t *j = summary(db, mode, &neurons, &err);
  if (!j) {
    fprintf(stderr, "protsae interpret: %s: no interpretation summary%s%s\n", db, err.msg[0] ? ": " : "", err.msg);
    return 1;
  }
  printf("store: %s\nunits: %s\ninterpret_mode: %s\n", db, neurons ? "neurons" : "features", mode[0] ? mode : "none");
  static const char *const fig[] = {"analysed", "scored", "failed", "mean_r", "median_r", "frac_p_lt_0.05"};
  for (size_t k = 0; k < sizeof fig / sizeof *fig; k++) {
    json_t *x = json_object_get(j, fig[k]);
    if (json_is_number(x)) printf(k < 3 ? "%s: %.0f\n" : "%s: %.4f\n", fig[k], json_number_value(x));
  }
  json_decref(j);
  return 0;
}

int cli_interpret(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = verb_parse("interpret", table, own, keys, argc, argv, &cfg);
  if (crc >= 0) return crc;
  if (!ps_config_str(cfg, "db")) return ps_config_cli_bad(&cfg, table, "protsae interpret", "--db STORE is needed");
  int rc = interpret_main(cfg);
  ps_config_destroy(&cfg);
  return rc;
}
