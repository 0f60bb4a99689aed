// verb.c — the single-step verbs' shared parts (verb.h): their option tables from the demo's
// entries, and a topology run under the supervisor with a progress line.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "prom.h"
#include "verb.h"

void verb_table(ps_config_entry_t *table, const ps_config_entry_t *own, const char *const *keys) {
  size_t n = 0;
  for (; own->name; own++) table[n++] = *own;
  for (; *keys; keys++) {
    const ps_config_entry_t *e = demo_option(*keys);
    PS_ASSERT(e && n < VERB_MAX_KEYS);
    table[n++] = *e;
  }
  table[n] = (ps_config_entry_t){NULL, NULL, NULL};
}

static const ps_config_entry_t *g_table;  // the table verb_parse reads a CONFIG against

static int known(const char *name) {
  for (const ps_config_entry_t *e = g_table; e->name; e++)
    if (!strcmp(e->name, name)) return 1;
  return 0;
}

int verb_parse(const char *prog, ps_config_entry_t *table, const ps_config_entry_t *own, const char *const *keys,
               int argc, char **argv, ps_config_t **cfg) {
  char name[64];
  verb_table(table, own, keys);
  g_table = table;
  snprintf(name, sizeof name, "protsae %s", prog);
  conf_argv_t ca = {0}, pa = {0};
  ps_err_t err = {0};
  int rc = 0;
  if (argc >= 2 && argv[1][0] != '-') {  // CONFIG [--key value ...]: its lines, then the flags
    conf_argv_push(&ca, argv[0], 0);
    rc = conf_read(argv[1], known, &ca, &err);
    for (int i = 2; i < argc; i++) conf_argv_push(&ca, argv[i], 0);
    argc = (int)ca.n, argv = ca.av;
  }
  if (rc == 0 && known("preset")) {  // the preset's keys first
    rc = conf_preset_expand(argc, argv, demo_has_option, known, &pa, &err);
    if (rc == 0) argc = (int)pa.n, argv = pa.av;
  }
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", name, err.msg);
    rc = 2;
  } else {
    rc = ps_config_cli(cfg, table, name, argc, argv);
  }
  conf_argv_free(&pa);
  conf_argv_free(&ca);
  return rc;
}

static void poll_cb(void *ctx) { prom_progress_poll(ctx); }
static void quiet_cb(void *ctx) { prom_progress_end(ctx); }

int verb_topo_run(topo_t *t, const char *prog, const char *label, const char *logs, int port, int train_port) {
  prom_progress_t prog_line;
  prom_progress_init(&prog_line, label, port);
  prog_line.train_port = train_port;
  sv_opts_t o = {.poll = port ? poll_cb : NULL, .quiet = port ? quiet_cb : NULL, .ctx = &prog_line, .stop_ms = 10000};
  sv_result_t res;
  ps_err_t err = {0};
  fflush(stdout);
  int rc = sv_run(t->st, t->n, &o, &res, &err);
  if (port) prom_progress_end(&prog_line);
  fflush(stdout);
  if (rc == PS_EINTR) {
    fprintf(stderr, "protsae %s: interrupted (%s): every stage stopped\n", prog, label);
    return 130;
  }
  if (rc < 0) {
    fprintf(stderr, "protsae %s: %s failed: %s (stage logs in %s)\n", prog, label, err.msg, logs);
    return 1;
  }
  return 0;
}
