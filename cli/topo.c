// topo.c — see topo.h.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "topo.h"

topo_t *topo_new(const char *logs) {
  topo_t *t = ps_xcalloc(1, sizeof *t);
  snprintf(t->logs, sizeof t->logs, "%s", logs);
  return t;
}

size_t topo_add(topo_t *t, const char *name, sv_role_t role, int max_restarts, int group) {
  PS_ASSERT(t->n < SV_MAX_STAGES);
  size_t i = t->n++;
  snprintf(t->name[i], sizeof t->name[i], "%s", name);
  snprintf(t->log[i], sizeof t->log[i], "%s/%s.log", t->logs, name);
  t->st[i] = (sv_stage_t){.name = t->name[i], .argv = t->argv[i], .log = t->log[i], .role = role,
                          .restart = max_restarts > 0 ? SV_RESTART_ON_FAILURE : SV_RESTART_NEVER,
                          .max_restarts = max_restarts, .group = group};
  return i;
}

void argv_push(char **v, const char *s) {
  int k = 0;
  while (v[k]) k++;
  PS_ASSERT(k + 1 < TOPO_MAX_ARGS);
  v[k] = ps_xstrdup(s);
}

void topo_arg(topo_t *t, size_t i, const char *flag, const char *fmt, ...) {
  char buf[PATH_MAX + 128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (flag) argv_push(t->argv[i], flag);
  argv_push(t->argv[i], buf);
}

void topo_restart_with(topo_t *t, size_t i, const char *flag, const char *value) {
  for (int k = 0; t->argv[i][k]; k++) {
    int is_val = k > 0 && !strcmp(t->argv[i][k - 1], flag);
    t->rargv[i][k] = ps_xstrdup(is_val ? value : t->argv[i][k]);
  }
  t->st[i].restart_argv = t->rargv[i];
}

void topo_free(topo_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++)
    for (int k = 0; k < TOPO_MAX_ARGS; k++) {
      free(t->argv[i][k]);
      free(t->rargv[i][k]);
    }
  free(t);
}
