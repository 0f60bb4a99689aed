#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

enum { ORIGIN_DEFAULT, ORIGIN_FLAG, ORIGIN_ENV, ORIGIN_SET };
static const char *origin_names[] = {"default", "flag", "env", "set"};

struct ps_config {
  const ps_config_entry_t *table;
  size_t n;
  char **values;   // owned copies
  int *origin;
  char **pos;
  size_t n_pos;
  int help;
};

static long find(const ps_config_t *c, const char *name, size_t len) {
  for (size_t i = 0; i < c->n; i++)
    if (strlen(c->table[i].name) == len && !strncmp(c->table[i].name, name, len)) return (long)i;
  return -1;
}

static void put(ps_config_t *c, size_t i, const char *v, int origin) {
  free(c->values[i]);
  c->values[i] = v ? ps_xstrdup(v) : NULL;
  c->origin[i] = origin;
}

int ps_config_parse(ps_config_t **out, const ps_config_entry_t *table, int argc, char **argv,
                    ps_err_t *err) {
  *out = NULL;
  ps_config_t *c = ps_xcalloc(1, sizeof *c);
  c->table = table;
  while (table[c->n].name) c->n++;
  c->values = ps_xcalloc(c->n, sizeof(char *));
  c->origin = ps_xcalloc(c->n, sizeof(int));
  c->pos = ps_xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
  for (size_t i = 0; i < c->n; i++) put(c, i, table[i].def, ORIGIN_DEFAULT);
  int rc = 0;
  for (int a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      c->help = 1;
      continue;
    }
    if (!strcmp(arg, "--")) {
      for (a++; a < argc; a++) c->pos[c->n_pos++] = ps_xstrdup(argv[a]);
      break;
    }
    if (strncmp(arg, "--", 2) || !arg[2]) {
      c->pos[c->n_pos++] = ps_xstrdup(arg);
      continue;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    long i = find(c, name, len);
    const char *val;
    if (i < 0 && !eq && len > 3 && !strncmp(name, "no-", 3) && (i = find(c, name + 3, len - 3)) >= 0) {
      put(c, (size_t)i, "0", ORIGIN_FLAG);
      continue;
    }
    if (i < 0) {
      rc = ps_err_set(err, PS_ECONFIG, "unknown option '%.*s' (argument %d); see --help", (int)len + 2,
                      arg, a);
      goto fail;
    }
    if (eq) {
      val = eq + 1;
    } else if (a + 1 < argc && strncmp(argv[a + 1], "--", 2)) {
      val = argv[++a];
    } else {
      val = "1";  // boolean flag
    }
    put(c, (size_t)i, val, ORIGIN_FLAG);
  }
  // environment wins over flags
  for (size_t i = 0; i < c->n; i++) {
    char env[256] = "PROTSAE_";
    size_t k = 8;
    for (const char *p = table[i].name; *p && k < sizeof env - 1; p++)
      env[k++] = (*p == '-' || *p == '.') ? '_' : (char)toupper((unsigned char)*p);
    env[k] = 0;
    const char *v = getenv(env);
    if (v) put(c, i, v, ORIGIN_ENV);
  }
  *out = c;
  return 0;
fail:
  ps_config_destroy(&c);
  return rc;
}

void ps_config_destroy(ps_config_t **cp) {
  if (!cp || !*cp) return;
  ps_config_t *c = *cp;
  for (size_t i = 0; i < c->n; i++) free(c->values[i]);
  for (size_t i = 0; i < c->n_pos; i++) free(c->pos[i]);
  free(c->values);
  free(c->origin);
  free(c->pos);
  free(c);
  *cp = NULL;
}

int ps_config_help_requested(const ps_config_t *c) { return c->help; }

int ps_config_main(ps_config_t **out, const ps_config_entry_t *table, const char *prog, int argc, char **argv) {
  ps_err_t err = {0};
  *out = NULL;
  if (ps_config_parse(out, table, argc, argv, &err) < 0) {
    PS_ERROR("%s: %s", prog, err.msg);
    return 2;
  }
  if (ps_config_help_requested(*out)) {
    ps_config_usage(table, prog, stdout);
    ps_config_destroy(out);
    return 0;
  }
  ps_config_print(*out);
  return -1;
}

int ps_config_cli(ps_config_t **out, const ps_config_entry_t *table, const char *prog, int argc, char **argv) {
  ps_err_t err = {0};
  *out = NULL;
  if (ps_config_parse(out, table, argc, argv, &err) < 0) {
    fprintf(stderr, "%s: %s\n", prog, err.msg);
    return 2;
  }
  if (ps_config_help_requested(*out)) {
    ps_config_usage(table, prog, stdout);
    ps_config_destroy(out);
    return 0;
  }
  return -1;
}

int ps_config_cli_bad(ps_config_t **cfg, const ps_config_entry_t *table, const char *prog, const char *why) {
  ps_config_usage(table, prog, stderr);
  if (why) fprintf(stderr, "%s: %s\n", prog, why);
  ps_config_destroy(cfg);
  return 2;
}

void ps_config_usage(const ps_config_entry_t *table, const char *prog, FILE *f) {
  fprintf(f, "usage: %s [options]\noptions (also PROTSAE_<NAME> in the environment, which wins):\n", prog);
  for (const ps_config_entry_t *e = table; e->name; e++)
    fprintf(f, "  --%-22s %s%s%s%s\n", e->name, e->help ? e->help : "", e->def ? " [" : "",
            e->def ? e->def : "", e->def ? "]" : "");
}

void ps_config_print(const ps_config_t *c) {
  for (size_t i = 0; i < c->n; i++)
    PS_INFO("config %s=%s origin=%s", c->table[i].name, c->values[i] ? c->values[i] : "(unset)",
            origin_names[c->origin[i]]);
}

static long need(const ps_config_t *c, const char *name) {
  long i = find(c, name, strlen(name));
  if (i < 0) {
    fprintf(stderr, "config: '%s' is not in the table\n", name);
    abort();
  }
  return i;
}

const char *ps_config_str(const ps_config_t *c, const char *name) {
  const char *v = c->values[need(c, name)];
  return (v && *v) ? v : NULL;
}

void ps_config_set(ps_config_t *c, const char *name, const char *value) {
  put(c, (size_t)need(c, name), value, ORIGIN_SET);
}

int ps_config_i64(const ps_config_t *c, const char *name, int64_t *out, ps_err_t *err) {
  const char *v = ps_config_str(c, name);
  if (!v) return ps_err_set(err, PS_ECONFIG, "option --%s: no value", name);
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 0);
  if (errno || end == v || *end) return ps_err_set(err, PS_ECONFIG, "option --%s: '%s' is not an integer", name, v);
  *out = x;
  return 0;
}

int ps_config_f64(const ps_config_t *c, const char *name, double *out, ps_err_t *err) {
  const char *v = ps_config_str(c, name);
  if (!v) return ps_err_set(err, PS_ECONFIG, "option --%s: no value", name);
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end) return ps_err_set(err, PS_ECONFIG, "option --%s: '%s' is not a number", name, v);
  *out = x;
  return 0;
}

int ps_config_bool(const ps_config_t *c, const char *name, int *out, ps_err_t *err) {
  const char *v = ps_config_str(c, name);
  if (!v) {
    *out = 0;
    return 0;
  }
  if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) *out = 1;
  else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) *out = 0;
  else return ps_err_set(err, PS_ECONFIG, "option --%s: '%s' is not a boolean", name, v);
  return 0;
}

size_t ps_config_n_positional(const ps_config_t *c) { return c->n_pos; }
const char *ps_config_positional(const ps_config_t *c, size_t i) { return i < c->n_pos ? c->pos[i] : NULL; }

int ps_config_read(const ps_config_t *c, const ps_config_bind_t *b, ps_err_t *err) {
  for (; b && b->name; b++) {
    int rc = 0;
    if (b->type != PS_CFG_T_STR && b->type != PS_CFG_T_BOOL && !ps_config_str(c, b->name)) continue;  // unset: keep
    switch (b->type) {
    case PS_CFG_T_STR: *(const char **)b->dst = ps_config_str(c, b->name); break;
    case PS_CFG_T_I64: rc = ps_config_i64(c, b->name, b->dst, err); break;
    case PS_CFG_T_F64: rc = ps_config_f64(c, b->name, b->dst, err); break;
    case PS_CFG_T_BOOL: rc = ps_config_bool(c, b->name, b->dst, err); break;
    case PS_CFG_T_INT: {
      int64_t v;
      if ((rc = ps_config_i64(c, b->name, &v, err)) < 0) break;
      if (v < INT_MIN || v > INT_MAX)
        return ps_err_set(err, PS_ECONFIG, "option --%s: %lld is out of range", b->name, (long long)v);
      *(int *)b->dst = (int)v;
      break;
    }
    }
    if (rc < 0) return rc;
  }
  return 0;
}
