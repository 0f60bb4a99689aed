// cli.h — subcommands of the protsae front command.
#ifndef PS_CLI_H
#define PS_CLI_H

#include <sys/types.h>

int cli_consume(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_recovery(int argc, char **argv);
int synth_main(int argc, char **argv);

// Path of a stage executable (protsae-NAME): $PROTSAE_LIBEXEC, else beside this binary, else the
// build tree (../stages/NAME/). Writes into buf; returns buf or NULL when not found.
const char *cli_stage_path(const char *name, char *buf, size_t cap);
// Start argv[0] as a child process (stdout/stderr inherited). Returns pid or -1.
pid_t cli_spawn(char *const argv[]);
// Wait for pid; returns its exit status, 128+signal when killed, -1 on error.
int cli_wait(pid_t pid);
// The shared data directory: $PROTSAE_DATA, else ../shared/data/human-swissprot from the source
// tree or the current directory. NULL when none holds proteins.fasta.gz.
const char *cli_data_dir(char *buf, size_t cap);

#endif
