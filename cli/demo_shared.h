// demo_shared.h — the parts of `protsae demo` (demo.c) that its residue-level flow
// (demo_residue.c) reuses: finding stage executables, running a topology under the supervisor
// with a progress line, the encode topology, and the stores' summary figures and tables.
#ifndef PS_CLI_DEMO_SHARED_H
#define PS_CLI_DEMO_SHARED_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "demo_train.h"
#include "err.h"
#include "featstore.h"
#include "topo.h"

extern const char *g_logs;  // WORKDIR/logs (set by the demo before any topology runs)

// The stage executable protsae-NAME into buf; -1 (said on stderr) when it is not found.
int need_stage(const char *name, char *buf, size_t cap);
// Run t under the supervisor with a progress line from the reader's metrics on port (train_port:
// the trainer's too). 0, 130 when interrupted, 1 when it failed (said on stderr).
int topo_run(topo_t *t, const char *label, int port, int train_port, sv_result_t *res);

typedef struct encode_args {
  const char *work, *emb, *fasta, *ids, *sae, *batch_rows, *store, *datadir, *hold_ids, *mode, *n_interpret;
  int n_enc, n_sc;
  const char *residue_top, *concepts, *concept_min;  // the scorer's residue codes and concept analysis
  // NULL or (flag, value) pairs, NULL-ended (borrowed): more flags for the reader and the encoders
  const char *const *reader_extra, *const *encoder_extra;
  const ps_config_t *cfg;  // the enrichment keys (enrich_config_keys) and interpretation settings (demo_interp.h)
} encode_args_t;
// The encode topology of name ("features" with a->sae, "neurons" without): reader -> encoders ->
// scorer <-> interpreter, run to completion into a->store. 0, 130 or 1 as topo_run.
int encode_topology(const char *name, const encode_args_t *a);

typedef struct store_figs {
  json_t *enrich, *interp;  // "enrich/summary", "interp/summary" (NULL when absent)
  char mode[96];            // the explanations' mode (first record), "" when none
} store_figs_t;
void store_figs_load(store_figs_t *f, const char *path);
void store_figs_free(store_figs_t *f);
json_t *store_json(fs_t *fs, const char *key);  // the JSON value of a store key, NULL when absent (caller decrefs)
double jnum(json_t *o, const char *key);        // a number of o, NAN when absent
void print_enrich_table(json_t *f, json_t *n);  // GO figures, features beside neurons
void print_interp_table(json_t *f, json_t *n);  // explanation scores, features beside neurons

// The keys checked before anything runs: encoders and scorers (1..16 each) into *n_enc, *n_sc,
// and the training keys (demo_train_plan over one row) into *check. 0, or -1 (said on stderr).
int demo_check_keys(const ps_config_t *cfg, int64_t *n_enc, int64_t *n_sc, demo_train_plan_t *check);

// The residue-level flow of `protsae demo --level residue` / `run` (demo_residue.c): argv parsed
// again against table with residue-level defaults. The command's exit status.
int demo_residue(int argc, char **argv, const ps_config_entry_t *table);

#endif
