// topo.h — a topology: the table of stage specs (supervise.h) that `protsae demo`, `run` and
// `annotate` build, with the argv strings owned by the table.
#ifndef PS_CLI_TOPO_H
#define PS_CLI_TOPO_H

#include <limits.h>
#include <stddef.h>

#include "supervise.h"

#define TOPO_MAX_ARGS 64

typedef struct topo {
  sv_stage_t st[SV_MAX_STAGES];
  char *argv[SV_MAX_STAGES][TOPO_MAX_ARGS], *rargv[SV_MAX_STAGES][TOPO_MAX_ARGS];  // strings owned
  char name[SV_MAX_STAGES][64], log[SV_MAX_STAGES][PATH_MAX + 80];
  char logs[PATH_MAX];
  size_t n;
} topo_t;

// An empty table whose stages log to LOGS/NAME.log. Free with topo_free.
topo_t *topo_new(const char *logs);
void topo_free(topo_t *t);
// A stage named name; its argv is filled afterwards (argv_push for the executable, topo_arg for
// each flag). Returns its index.
size_t topo_add(topo_t *t, const char *name, sv_role_t role, int max_restarts, int group);
void argv_push(char **v, const char *s);
// Append arguments (printf-formatted one at a time: topo_arg(t, i, "--db", "%s", path)).
void topo_arg(topo_t *t, size_t i, const char *flag, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
// The restart argv of stage i: its argv with flag's value replaced (trainer: --resume 1).
void topo_restart_with(topo_t *t, size_t i, const char *flag, const char *value);

#endif
