// conf.h — `key = value` files as option arguments: a run CONFIG (cli/run.c) and the presets
// shipped in cli/presets/ (installed to share/protsae/presets) both become `--key=value`
// arguments of `protsae demo`'s option table, so flags given later override them.
#ifndef PS_CLI_CONF_H
#define PS_CLI_CONF_H

#include <stddef.h>

#include "err.h"

// A growing argv: av[0..n) (av[n] kept NULL); owned[i] says whether av[i] is ours to free.
typedef struct conf_argv {
  char **av;
  unsigned char *owned;
  size_t n, cap;
} conf_argv_t;

void conf_argv_push(conf_argv_t *a, char *arg, int owned);
void conf_argv_free(conf_argv_t *a);

// Append the `key = value` lines of path as `--key=value` ('#' starts a comment; blank lines
// ignored). Every key must satisfy known(key); a line without '=', a bad or unknown key, or a
// key given twice in the file is an error naming the file and line. 0, or <0 with err.
int conf_read(const char *path, int (*known)(const char *key), conf_argv_t *a, ps_err_t *err);

// The file of preset name: name itself when it holds a '/' (a path), else NAME.conf in
// $PROTSAE_PRESETS, beside the installed binary (../share/protsae/presets) or in the source tree.
// Writes into buf; returns buf, or NULL with err listing where it looked and the presets there.
const char *conf_preset_path(const char *name, char *buf, size_t cap, ps_err_t *err);

// argv with every `--preset NAME` (or `--preset=NAME`, or $PROTSAE_PRESET) replaced by the
// preset's `--key=value` arguments followed by `--preset=NAME` (so the option table records it),
// placed first: the command line's own flags override the preset. Every key of the preset must
// satisfy valid (the pipeline's keys: a preset covers the whole pipeline); those a single-step
// command does not take (known(key) false) are left out. A preset naming another preset is
// refused. 0 (out filled; free with conf_argv_free), or <0 with err.
int conf_preset_expand(int argc, char **argv, int (*valid)(const char *key), int (*known)(const char *key),
                       conf_argv_t *out, ps_err_t *err);

#endif
