// supervise.c — the process-group supervisor of protsae demo / run (supervise.h).
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "io.h"

extern char **environ;

static volatile sig_atomic_t g_sv_signal, g_sv_count;

static void on_signal(int sig) {
  g_sv_signal = sig;
  g_sv_count = g_sv_count + 1;
}

typedef struct run {
  const sv_stage_t *st;
  size_t n;
  const sv_opts_t *o;
  sv_result_t *res;
  pid_t pid[SV_MAX_STAGES];   // > 0 while running (not yet reaped)
  pid_t pgid[SV_MAX_STAGES];  // its process group
  pid_t group;                // the process group new stages join (0: none yet)
  int started[SV_MAX_STAGES];
} run_t;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);  // a signal cuts it short: fine
}

static int code_of(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1; }

// "logs/NAME.log" of ".../logs/NAME.log": the last two path components.
static const char *short_path(const char *p) {
  const char *s = strrchr(p, '/');
  if (!s || s == p) return p;
  const char *t = s - 1;
  while (t > p && *t != '/') t--;
  return *t == '/' ? t + 1 : t;
}

static pid_t spawn_in(char *const argv[], const char *log, pid_t pgid, int *err_no) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 2, 1);
  posix_spawnattr_init(&at);
  sigset_t def, none;
  sigemptyset(&def);
  sigaddset(&def, SIGINT);
  sigaddset(&def, SIGTERM);
  sigaddset(&def, SIGPIPE);
  sigaddset(&def, SIGCHLD);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&at, &def);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setpgroup(&at, pgid);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  *err_no = rc;
  return rc == 0 ? pid : -1;
}

// Start stage i (its restart_argv when again). 0, or -errno.
static int start(run_t *r, size_t i) {
  const sv_stage_t *s = &r->st[i];
  char *const *av = r->started[i] && s->restart_argv ? s->restart_argv : s->argv;
  int e = 0;
  pid_t pid = r->group > 0 ? spawn_in(av, s->log, r->group, &e) : -1;
  if (pid < 0 && (r->group <= 0 || e == EPERM || e == ESRCH)) {
    // no group yet, or its members are all gone: this stage leads a new one
    pid = spawn_in(av, s->log, 0, &e);
    if (pid > 0) r->group = pid;
  }
  if (pid < 0) return -e;
  r->pid[i] = pid;
  r->pgid[i] = r->group;
  r->started[i] = 1;
  r->res->stage[i].status = -1;
  r->res->stage[i].done = 0;
  return 0;
}

// Reap stage i when it has ended (block: wait for it). 1 ended (status recorded), 0 running.
static int reap(run_t *r, size_t i, int block) {
  if (r->pid[i] <= 0) return 1;
  int st;
  pid_t w;
  while ((w = waitpid(r->pid[i], &st, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
  }
  if (w == 0) return 0;
  r->res->stage[i].status = w > 0 ? code_of(st) : -1;
  r->pid[i] = 0;
  return 1;
}

// sig to every running stage, once to each process group (never twice to a stage: a stage's
// second SIGTERM means "exit at once").
static void signal_all(run_t *r, int sig) {
  pid_t done[SV_MAX_STAGES];
  size_t nd = 0;
  for (size_t i = 0; i < r->n; i++) {
    if (r->pid[i] <= 0) continue;
    if (r->pgid[i] <= 0) {
      kill(r->pid[i], sig);
      continue;
    }
    size_t k = 0;
    while (k < nd && done[k] != r->pgid[i]) k++;
    if (k == nd && r->pgid[i] > 0) {
      kill(-r->pgid[i], sig);
      done[nd++] = r->pgid[i];
    }
  }
}

static int any_running(run_t *r) {
  for (size_t i = 0; i < r->n; i++)
    if (r->pid[i] > 0) return 1;
  return 0;
}

// SIGTERM the running stages (when the sinks are done only services are left), wait up to
// stop_ms, SIGKILL the rest.
static void stop_all(run_t *r) {
  int stop_ms = r->o->stop_ms > 0 ? r->o->stop_ms : 10000;
  int seen = g_sv_count;
  signal_all(r, SIGTERM);
  double t_end = ps_mono_s() + stop_ms / 1000.0;
  for (;;) {
    for (size_t i = 0; i < r->n; i++) reap(r, i, 0);
    if (!any_running(r)) return;
    if (ps_mono_s() >= t_end || g_sv_count > seen) break;  // timeout, or a signal: at once
    sleep_ms(20);
  }
  signal_all(r, SIGKILL);
  for (size_t i = 0; i < r->n; i++) reap(r, i, 1);
}

static void say(run_t *r) {
  if (r->o->quiet) r->o->quiet(r->o->ctx);
}

static void print_tail(run_t *r, size_t i, FILE *e) {
  int n = r->o->tail_lines > 0 ? r->o->tail_lines : 8;
  fprintf(e, "--- last lines of %s ---\n", r->st[i].log);
  fflush(e);
  if (ps_file_tail(r->st[i].log, n, e) < 0) fprintf(e, "(no log)\n");
  fflush(e);
}

int sv_run(const sv_stage_t *stages, size_t n, const sv_opts_t *opts, sv_result_t *res, ps_err_t *err) {
  static const sv_opts_t no_opts;
  sv_result_t local;
  ps_err_t lerr = {0};
  if (!err) err = &lerr;
  if (!opts) opts = &no_opts;
  if (!res) res = &local;
  memset(res, 0, sizeof *res);
  res->failed = -1;
  if (n == 0 || n > SV_MAX_STAGES) return ps_err_set(err, PS_ECONFIG, "supervisor: %zu stages (1..%d)", n, SV_MAX_STAGES);
  size_t sinks = 0;
  for (size_t i = 0; i < n; i++) {
    sinks += stages[i].role == SV_SINK;
    res->stage[i].status = -1;
  }
  if (!sinks) return ps_err_set(err, PS_ECONFIG, "supervisor: no sink among the %zu stages", n);
  res->n = n;
  FILE *out = opts->out ? opts->out : stdout, *eout = opts->err_out ? opts->err_out : stderr;
  const char *ind = opts->indent ? opts->indent : "      ";
  run_t r = {.st = stages, .n = n, .o = opts, .res = res};
  double t0 = ps_mono_s();

  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  g_sv_signal = 0;
  g_sv_count = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int e = start(&r, i);
    if (e < 0) {
      res->failed = (int)i;
      rc = ps_err_set(err, PS_ESTATE, "cannot start %s (%s): %s", stages[i].name, stages[i].argv[0], strerror(-e));
    }
  }
  double next_poll = ps_mono_s();
  while (rc == 0) {
    if (g_sv_count) {
      res->signal = g_sv_signal;
      rc = ps_err_set(err, PS_EINTR, "stopped by signal %d", (int)g_sv_signal);
      break;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
      if (r.pid[i] <= 0 || !reap(&r, i, 0)) continue;
      sv_stage_result_t *sr = &res->stage[i];
      const sv_stage_t *s = &stages[i];
      if (sr->status == 0) {
        sr->done = 1;
        continue;
      }
      if (s->restart == SV_RESTART_NEVER || sr->restarts >= s->max_restarts) {
        say(&r);
        res->failed = (int)i;
        rc = ps_err_set(err, PS_ESTATE, "%s exited with status %d%s%s", s->name, sr->status,
                        sr->status > 128 ? " (killed)" : "",
                        s->restart == SV_RESTART_NEVER ? "" : "; too many restarts, giving up");
        break;
      }
      say(&r);
      fprintf(out, "%s! %s exited with status %d%s: restarting it (see %s)\n", ind, s->name, sr->status,
              sr->status > 128 ? " (killed)" : "", short_path(s->log));
      // the other members of its group: stopped (SIGKILL: they are restarted anyway)
      if (s->group > 0)
        for (size_t j = 0; j < n; j++)
          if (j != i && stages[j].group == s->group && r.pid[j] > 0) {
            kill(r.pid[j], SIGKILL);
            reap(&r, j, 1);
          }
      fflush(out);
      res->restarts++;
      for (size_t j = 0; j < n && rc == 0; j++) {
        if (j != i && (s->group <= 0 || stages[j].group != s->group)) continue;
        if (j != i) fprintf(out, "%s  (restarting %s with it)\n", ind, stages[j].name), fflush(out);
        res->stage[j].restarts++;
        int e = start(&r, j);
        if (e < 0) {
          res->failed = (int)j;
          rc = ps_err_set(err, PS_ESTATE, "cannot start %s (%s): %s", stages[j].name, stages[j].argv[0], strerror(-e));
        }
      }
    }
    if (rc) break;
    size_t sinks_done = 0;
    for (size_t i = 0; i < n; i++) sinks_done += stages[i].role == SV_SINK && res->stage[i].done;
    if (sinks_done == sinks) break;
    if (opts->poll && ps_mono_s() >= next_poll) {
      opts->poll(opts->ctx);
      next_poll = ps_mono_s() + 0.2;
    }
    sleep_ms(20);
  }
  say(&r);
  stop_all(&r);  // done: the services left; failed or interrupted: everything
  if (rc == PS_ESTATE && res->failed >= 0) {
    fprintf(eout, "protsae: %s\n", err->msg);
    print_tail(&r, (size_t)res->failed, eout);
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  res->seconds = ps_mono_s() - t0;
  return rc;
}
