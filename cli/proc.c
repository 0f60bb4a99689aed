#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "godata.h"

extern char **environ;

static int is_exec(const char *p) { return access(p, X_OK) == 0; }

static void self_dir(char *buf, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
  if (n <= 0) {
    snprintf(buf, cap, ".");
    return;
  }
  buf[n] = 0;
  char *s = strrchr(buf, '/');
  if (s) *s = 0;
}

const char *cli_stage_path(const char *name, char *buf, size_t cap) {
  const char *env = getenv("PROTSAE_LIBEXEC");
  if (env) {
    snprintf(buf, cap, "%s/protsae-%s", env, name);
    if (is_exec(buf)) return buf;
  }
  char dir[PATH_MAX];
  self_dir(dir, sizeof dir);
  snprintf(buf, cap, "%s/protsae-%s", dir, name);
  if (is_exec(buf)) return buf;
  snprintf(buf, cap, "%s/../stages/%s/protsae-%s", dir, name, name);
  if (is_exec(buf)) return buf;
  return NULL;
}

const char *cli_data_dir(char *buf, size_t cap) { return ps_godata_default_dir(buf, cap); }
