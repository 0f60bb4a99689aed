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

pid_t cli_spawn(char *const argv[]) {
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
  if (rc != 0) {
    fprintf(stderr, "protsae: cannot start %s: %s\n", argv[0], strerror(rc));
    return -1;
  }
  return pid;
}

pid_t cli_spawn_log(char *const argv[], const char *log_path) { return cli_spawn_log_fds(argv, log_path, 1); }

pid_t cli_spawn_log_fds(char *const argv[], const char *log_path, int with_stdout) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (with_stdout) posix_spawn_file_actions_adddup2(&fa, 2, 1);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    fprintf(stderr, "protsae: cannot start %s: %s\n", argv[0], strerror(rc));
    return -1;
  }
  return pid;
}

int cli_wait(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

static int has_data(const char *dir) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/proteins.fasta.gz", dir);
  return access(p, R_OK) == 0;
}

const char *cli_data_dir(char *buf, size_t cap) {
  const char *env = getenv("PROTSAE_DATA");
  if (env && has_data(env)) return snprintf(buf, cap, "%s", env), buf;
  char dir[PATH_MAX];
  self_dir(dir, sizeof dir);
  // build tree: <src>/build/cli/protsae -> <src>/../shared ; installed: try cwd too
  const char *cands[] = {"%s/../../../shared/data/human-swissprot", "%s/../../shared/data/human-swissprot",
                         "%s/../shared/data/human-swissprot"};
  for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
    snprintf(buf, cap, cands[i], dir);
    if (has_data(buf)) return buf;
  }
  const char *rel[] = {"../shared/data/human-swissprot", "shared/data/human-swissprot", "data/human-swissprot"};
  for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
    snprintf(buf, cap, "%s", rel[i]);
    if (has_data(buf)) return buf;
  }
  return NULL;
}
