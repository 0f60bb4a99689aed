// cli.h — the user commands of the protsae front command (the developer tools are in dev/dev.h)
// and the small helpers they share.
#ifndef PS_CLI_H
#define PS_CLI_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "err.h"
#include "featstore.h"

int cli_demo(int argc, char **argv);
extern const ps_config_entry_t demo_keys[];  // the keys of `protsae demo` / `run` (demo_keys.c)
int demo_has_option(const char *name);  // a key of `protsae demo` (and so of a run CONFIG)
const ps_config_entry_t *demo_option(const char *name);  // its entry (NULL when not a key)
// The FASTA's ids in order, one a line, into path (the ids of a .npy given without them); *n ids.
int demo_fasta_ids(const char *fasta, const char *path, int64_t *n, ps_err_t *err);
int cli_run(int argc, char **argv);
int cli_train(int argc, char **argv);      // step 2 of demo/run alone (cli/train.c)
int cli_interpret(int argc, char **argv);  // the interpreter over an existing feature store (cli/interpret.c)
int cli_embed(int argc, char **argv);
int cli_enrich(int argc, char **argv);
int cli_features(int argc, char **argv);
int cli_feature(int argc, char **argv);
int cli_synth(int argc, char **argv);
int cli_enrich_store(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_annotate(int argc, char **argv);
int cli_submit(int argc, char **argv);   // a ProteomeRequest to a running annotation service
int cli_keys(int argc, char **argv);    // a CURVE keypair (common/curve.h) as key files
int cli_dump(int argc, char **argv);    // the whole store as text (fs_dump), for comparing runs
int cli_export(int argc, char **argv);  // a store's results (enrichment, explanations) as TSV / JSONL

// Path of a stage executable (protsae-NAME): $PROTSAE_LIBEXEC, else beside this binary, else the
// build tree (../stages/NAME/). Writes into buf; returns buf or NULL when not found.
const char *cli_stage_path(const char *name, char *buf, size_t cap);
// Open the feature store at path read-only and read its meta; an empty store (nothing committed
// yet) is an error (PS_ENOTFOUND naming the path). 0 or <0 with err; *fs is the caller's to close
// (also after an error).
int cli_store_open(const char *path, fs_t **fs, fs_meta_t *m, ps_err_t *err);
// The default data directory (common/godata.h: ps_godata_default_dir).
const char *cli_data_dir(char *buf, size_t cap);

#endif
