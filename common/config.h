// config.h — stage configuration: defaults table < command-line flags < PROTSAE_* environment.
//
// A stage declares a table of entries (name, default, help). Flags are `--name value` or
// `--name=value` (a boolean flag alone means "1"); the environment variable for `batch-rows` is
// PROTSAE_BATCH_ROWS. Unknown flags are errors. Positional arguments are collected in order.
// ps_config_print() logs the effective configuration with the origin of each value.
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct ps_config_entry {
  const char *name;   // "batch-rows"
  const char *def;    // default value as text, NULL = unset
  const char *help;
} ps_config_entry_t;

typedef struct ps_config ps_config_t;

// Parse argv (argv[0] is skipped). table ends with an entry whose name is NULL. The table must
// outlive the config. Returns 0 or <0 (err names the flag). `--help` sets help_requested.
int ps_config_parse(ps_config_t **out, const ps_config_entry_t *table, int argc, char **argv,
                    ps_err_t *err);
void ps_config_destroy(ps_config_t **c);

int ps_config_help_requested(const ps_config_t *c);

// A stage's start: parse; on a bad flag log the error and return 2 (the exit status); on --help
// print the usage to stdout and return 0 with *out NULL; otherwise log the effective configuration
// and return -1 (go on). Usage: `int rc = ps_config_main(&cfg, table, "protsae-x", argc, argv);
// if (rc >= 0) return rc;`
int ps_config_main(ps_config_t **out, const ps_config_entry_t *table, const char *prog, int argc, char **argv);
// The CLI subcommands' variant: the same parse and --help, but a bad option is printed as
// "PROG: message" on stderr (exit status 2) and the configuration is not logged.
int ps_config_cli(ps_config_t **out, const ps_config_entry_t *table, const char *prog, int argc, char **argv);
// A subcommand's arguments parsed but unusable (a required option missing): the usage and
// "PROG: why" (why may be NULL) on stderr; destroys *cfg; returns 2, the exit status.
int ps_config_cli_bad(ps_config_t **cfg, const ps_config_entry_t *table, const char *prog, const char *why);
void ps_config_usage(const ps_config_entry_t *table, const char *prog, FILE *f);
void ps_config_print(const ps_config_t *c);   // to the log, one line per value

// Raw value (borrowed, NULL when unset). Asking for a name not in the table is a programmer error.
const char *ps_config_str(const ps_config_t *c, const char *name);
// Typed getters: 0 or PS_ECONFIG with err naming the key and the bad value.
int ps_config_i64(const ps_config_t *c, const char *name, int64_t *out, ps_err_t *err);
int ps_config_f64(const ps_config_t *c, const char *name, double *out, ps_err_t *err);
int ps_config_bool(const ps_config_t *c, const char *name, int *out, ps_err_t *err);
// Override a value programmatically (e.g. derived defaults). Copies value.
void ps_config_set(ps_config_t *c, const char *name, const char *value);

// Many options at once: a table of (name, type, destination) ending with {NULL}; each value is
// read with the getter of its type (PS_CFG_STR gives NULL when unset, PS_CFG_BOOL 0; an unset
// number leaves its destination as it was, so the caller's initial value is the fallback). 0, or the first error
// (err names the option and the bad value). Replaces a chain of getter calls in a stage's main:
//   ps_config_bind_t b[] = {PS_CFG_I64("batch-rows", &rows), PS_CFG_F64("lr", &lr), {0}};
//   if (ps_config_read(cfg, b, &err) < 0) ...
typedef enum { PS_CFG_T_STR, PS_CFG_T_I64, PS_CFG_T_INT, PS_CFG_T_F64, PS_CFG_T_BOOL } ps_config_type_t;
typedef struct ps_config_bind {
  const char *name;
  ps_config_type_t type;
  void *dst;  // const char ** | int64_t * | int * | double * | int *
} ps_config_bind_t;
#define PS_CFG_STR(name, p) {(name), PS_CFG_T_STR, (void *)(const char **)(p)}
#define PS_CFG_I64(name, p) {(name), PS_CFG_T_I64, (void *)(int64_t *)(p)}
#define PS_CFG_INT(name, p) {(name), PS_CFG_T_INT, (void *)(int *)(p)}
#define PS_CFG_F64(name, p) {(name), PS_CFG_T_F64, (void *)(double *)(p)}
#define PS_CFG_BOOL(name, p) {(name), PS_CFG_T_BOOL, (void *)(int *)(p)}
int ps_config_read(const ps_config_t *c, const ps_config_bind_t *binds, ps_err_t *err);

size_t ps_config_n_positional(const ps_config_t *c);
const char *ps_config_positional(const ps_config_t *c, size_t i);

#endif
