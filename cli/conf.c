// conf.c — `key = value` files into option arguments: run CONFIGs and presets (conf.h).
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

#ifndef PS_PRESET_SRC_DIR
#define PS_PRESET_SRC_DIR ""
#endif

void conf_argv_push(conf_argv_t *a, char *arg, int owned) {
  if (a->n + 2 > a->cap) {
    a->cap = a->cap ? 2 * a->cap : 16;
    a->av = ps_xrealloc(a->av, a->cap * sizeof *a->av);
    a->owned = ps_xrealloc(a->owned, a->cap);
  }
  a->owned[a->n] = (unsigned char)owned;
  a->av[a->n++] = arg;
  a->av[a->n] = NULL;
}

void conf_argv_free(conf_argv_t *a) {
  for (size_t i = 0; i < a->n; i++)
    if (a->owned[i]) free(a->av[i]);
  free(a->av);
  free(a->owned);
  memset(a, 0, sizeof *a);
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
  return s;
}

int conf_read(const char *path, int (*known)(const char *key), conf_argv_t *a, ps_err_t *err) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return ps_err_set(err, PS_ECONFIG, "%s: is a directory, not a CONFIG file ('key = value' lines)", path);
  FILE *f = fopen(path, "r");
  if (!f) return ps_err_set(err, PS_EIO, "%s: %s", path, strerror(errno));
  size_t first = a->n;
  char line[8192];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      rc = ps_err_set(err, PS_ECONFIG, "%s line %d: longer than %zu bytes", path, lineno, sizeof line - 2);
      break;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = trim(line);
    if (!*s) continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      rc = ps_err_set(err, PS_ECONFIG, "%s line %d: 'key = value' expected, got '%s'", path, lineno, s);
      break;
    }
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(key)) {
      rc = ps_err_set(err, PS_ECONFIG, "%s line %d: bad key '%s' (lower-case words joined by '-')", path, lineno, key);
      break;
    }
    if (!known(key)) {
      rc = ps_err_set(err, PS_ECONFIG, "%s line %d: unknown key '%s' (see protsae demo --help)", path, lineno, key);
      break;
    }
    size_t kl = strlen(key);
    for (size_t i = first; i < a->n && rc == 0; i++)
      if (!strncmp(a->av[i] + 2, key, kl) && a->av[i][2 + kl] == '=')
        rc = ps_err_set(err, PS_ECONFIG, "%s line %d: '%s' given twice", path, lineno, key);
    if (rc) break;
    size_t vl = strlen(val);
    char *arg = ps_xmalloc(kl + vl + 4);  // --key=value: a value may start with '-'
    snprintf(arg, kl + vl + 4, "--%s=%s", key, val);
    conf_argv_push(a, arg, 1);
  }
  if (rc == 0 && ferror(f)) rc = ps_err_set(err, PS_EIO, "%s: read error: %s", path, strerror(errno));
  fclose(f);
  return rc;
}

// The directories presets are looked for in, in order (empty entries skipped).
static int preset_dirs(char dirs[3][PATH_MAX]) {
  int n = 0;
  const char *env = getenv("PROTSAE_PRESETS");
  if (env && *env) snprintf(dirs[n++], PATH_MAX, "%s", env);
  char exe[PATH_MAX];
  ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (l > 0) {
    exe[l] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      snprintf(dirs[n++], PATH_MAX, "%.*s/../share/protsae/presets", PATH_MAX - 32, exe);
    }
  }
  if (PS_PRESET_SRC_DIR[0]) snprintf(dirs[n++], PATH_MAX, "%s", PS_PRESET_SRC_DIR);
  return n;
}

const char *conf_preset_path(const char *name, char *buf, size_t cap, ps_err_t *err) {
  if (strchr(name, '/')) {
    if (access(name, R_OK) == 0) return snprintf(buf, cap, "%s", name), buf;
    ps_err_set(err, PS_ENOTFOUND, "preset %s: %s", name, strerror(errno));
    return NULL;
  }
  if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(name)) {
    ps_err_set(err, PS_ECONFIG, "preset '%s': a name (letters, digits, '-') or a path", name);
    return NULL;
  }
  char dirs[3][PATH_MAX], seen[512] = "";
  int nd = preset_dirs(dirs);
  for (int d = 0; d < nd; d++) {
    snprintf(buf, cap, "%s/%s.conf", dirs[d], name);
    if (access(buf, R_OK) == 0) return buf;
  }
  for (int d = 0; d < nd; d++) {  // what there is, for the error
    DIR *dp = opendir(dirs[d]);
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
      size_t el = strlen(e->d_name), sl = strlen(seen);
      if (el > 5 && !strcmp(e->d_name + el - 5, ".conf") && !strstr(seen, e->d_name) && sl + el < sizeof seen - 4)
        snprintf(seen + sl, sizeof seen - sl, "%s%.*s", sl ? ", " : "", (int)(el - 5), e->d_name);
    }
    if (dp) closedir(dp);
  }
  ps_err_set(err, PS_ENOTFOUND, "no preset '%s' (presets: %s; set PROTSAE_PRESETS to their directory)", name,
             seen[0] ? seen : "none found");
  return NULL;
}

int conf_preset_expand(int argc, char **argv, int (*valid)(const char *key), int (*known)(const char *key),
                       conf_argv_t *out, ps_err_t *err) {
  memset(out, 0, sizeof *out);
  conf_argv_push(out, argv[0], 0);
  const char *name = getenv("PROTSAE_PRESET");
  if (name && !*name) name = NULL;
  int rc = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--preset") && i + 1 < argc) name = argv[i + 1];
    else if (!strncmp(argv[i], "--preset=", 9)) name = argv[i] + 9;
  }
  if (name) {
    char path[PATH_MAX];
    conf_argv_t p = {0};
    if (!conf_preset_path(name, path, sizeof path, err)) rc = PS_ENOTFOUND;
    else rc = conf_read(path, valid, &p, err);
    for (size_t i = 0; i < p.n && rc == 0; i++) {
      char key[64];
      sscanf(p.av[i] + 2, "%63[a-z0-9-]", key);
      if (!strcmp(key, "preset"))
        rc = ps_err_set(err, PS_ECONFIG, "preset %s names another preset: a preset holds settings only", path);
      else if (known(key)) conf_argv_push(out, p.av[i], 1), p.owned[i] = 0;
    }
    conf_argv_free(&p);
    if (rc == 0) {
      size_t nl = strlen(name) + 10;
      char *arg = ps_xmalloc(nl);
      snprintf(arg, nl, "--preset=%s", name);
      conf_argv_push(out, arg, 1);
    }
  }
  for (int i = 1; i < argc && rc == 0; i++) {  // the command line's flags, preset flags left out
    if (!strcmp(argv[i], "--preset") && i + 1 < argc) {
      i++;
      continue;
    }
    if (!strncmp(argv[i], "--preset=", 9)) continue;
    conf_argv_push(out, argv[i], 0);
  }
  if (rc < 0) conf_argv_free(out);
  return rc;
}
