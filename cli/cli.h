// cli.h — subcommands of the protsae front command.
#ifndef PS_CLI_H
#define PS_CLI_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

int cli_consume(int argc, char **argv);
int cli_demo(int argc, char **argv);
int demo_has_option(const char *name);  // a key of `protsae demo` (and so of a run CONFIG)
int cli_run(int argc, char **argv);
int cli_recovery(int argc, char **argv);
// How many planted directions (truth: .npy, one row each) some decoder row of the SAE in sae_dir
// recovers: per direction the best cosine over the decoder rows. The figures `protsae recovery`
// prints, as data. 0 or a negative code (err says why).
typedef struct recovery {
  int64_t n_directions, d_sae;
  double planted_recovery_cos09;  // share of directions with best cosine >= 0.9
  double planted_recovery_cos08;  // ... >= 0.8
  double mean_best_cos;
} recovery_t;
int recovery_measure(const char *sae_dir, const char *truth, recovery_t *r, ps_err_t *err);
int cli_embed(int argc, char **argv);
int cli_enrich(int argc, char **argv);
int cli_features(int argc, char **argv);
int cli_feature(int argc, char **argv);
int cli_encode_check(int argc, char **argv);
int synth_main(int argc, char **argv);
// GO enrichment of the feature stores fstore (and nstore, neurons; may be NULL) against the data
// directory's ontology and annotations; summary on stdout, TSVs in outdir. 0 or 1.
int cli_enrich_store(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_annotate(int argc, char **argv);
int cli_keys(int argc, char **argv);    // a CURVE keypair (common/curve.h) as key files
int cli_dump(int argc, char **argv);    // the whole store as text (fs_dump), for comparing runs
int cli_export(int argc, char **argv);  // a store's results (enrichment, explanations) as TSV / JSONL
int demo_enrich(const char *fstore, const char *nstore, const char *datadir, const char *outdir, int threads);
// The same with the proteins listed in holdout_ids (one id a line; NULL = none) left out: not in the
// population and their activations dropped, so the feature -> term map is learned without them.
int demo_enrich_holdout(const char *fstore, const char *nstore, const char *datadir, const char *outdir, int threads,
                        const char *holdout_ids);

// Path of a stage executable (protsae-NAME): $PROTSAE_LIBEXEC, else beside this binary, else the
// build tree (../stages/NAME/). Writes into buf; returns buf or NULL when not found.
const char *cli_stage_path(const char *name, char *buf, size_t cap);
// The default data directory (common/godata.h: ps_godata_default_dir).
const char *cli_data_dir(char *buf, size_t cap);

#endif
