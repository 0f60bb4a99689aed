// cli.h — subcommands of the protsae front command.
#ifndef PS_CLI_H
#define PS_CLI_H

#include <sys/types.h>

int cli_consume(int argc, char **argv);
int cli_demo(int argc, char **argv);
int demo_has_option(const char *name);  // a key of `protsae demo` (and so of a run CONFIG)
int cli_run(int argc, char **argv);
int cli_recovery(int argc, char **argv);
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
int demo_enrich(const char *fstore, const char *nstore, const char *datadir, const char *outdir, int threads);
// The same with the proteins listed in holdout_ids (one id a line; NULL = none) left out: not in the
// population and their activations dropped, so the feature -> term map is learned without them.
int demo_enrich_holdout(const char *fstore, const char *nstore, const char *datadir, const char *outdir, int threads,
                        const char *holdout_ids);

// Path of a stage executable (protsae-NAME): $PROTSAE_LIBEXEC, else beside this binary, else the
// build tree (../stages/NAME/). Writes into buf; returns buf or NULL when not found.
const char *cli_stage_path(const char *name, char *buf, size_t cap);
// Start argv[0] as a child process (stdout/stderr inherited). Returns pid or -1.
pid_t cli_spawn(char *const argv[]);
// Same, with stdout and stderr appended to log_path.
pid_t cli_spawn_log(char *const argv[], const char *log_path);
// Only stderr to log_path when with_stdout is 0.
pid_t cli_spawn_log_fds(char *const argv[], const char *log_path, int with_stdout);
// Wait for pid; returns its exit status, 128+signal when killed, -1 on error.
int cli_wait(pid_t pid);
// The shared data directory: $PROTSAE_DATA, else ../shared/data/human-swissprot from the source
// tree or the current directory. NULL when none holds proteins.fasta.gz.
const char *cli_data_dir(char *buf, size_t cap);

#endif
