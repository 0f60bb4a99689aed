// The stage supervisor (cli/supervise.c) with /bin/sh stages: a sink that ends after a moment
// beside a service that runs forever; a stage that crashes twice then succeeds; one that always
// crashes (the run fails, the log's tail is printed); a restart group (both members restarted,
// the later starts with restart_argv); SIGTERM of the supervisor forwarded to the stages'
// process group, and SIGKILL for a stage that ignores it.
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "fsutil.h"
#include "supervise.h"

static char *slurp(const char *p) {
  static char buf[65536];
  FILE *f = fopen(p, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

typedef struct stage_buf {
  char log[128], script[512];
  char *argv[4];
} stage_buf_t;

static void sh_stage(sv_stage_t *s, stage_buf_t *b, const char *name, sv_role_t role, int max_restarts,
                     const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->script, sizeof b->script, fmt, ap);
  va_end(ap);
  char ln[64];
  snprintf(ln, sizeof ln, "%s.log", name);
  fx_path(b->log, sizeof b->log, ln);
  b->argv[0] = "/bin/sh", b->argv[1] = "-c", b->argv[2] = b->script, b->argv[3] = NULL;
  *s = (sv_stage_t){.name = name, .argv = b->argv, .log = b->log, .role = role,
                    .restart = max_restarts ? SV_RESTART_ON_FAILURE : SV_RESTART_NEVER, .max_restarts = max_restarts};
}

static double g_t0;
static int g_polls;
static void count_poll(void *ctx) {
  (void)ctx;
  g_polls++;
}

// a sink that exits 0 after a moment; a service that would run forever: done, the service stopped
static void test_sink_and_service(void **state) {
  (void)state;
  sv_stage_t st[2];
  stage_buf_t b[2];
  char mark[128];
  fx_path(mark, sizeof mark, "pgrp");
  sh_stage(&st[0], &b[0], "service", SV_SERVICE, 3, "echo started; exec sleep 1000");
  sh_stage(&st[1], &b[1], "sink", SV_SINK, 0, "cut -d' ' -f5 /proc/$$/stat > %s; sleep 0.5; echo finished", mark);
  sv_result_t res;
  ps_err_t err = {0};
  g_polls = 0;
  sv_opts_t o = {.poll = count_poll, .stop_ms = 2000};
  int rc = sv_run(st, 2, &o, &res, &err);
  assert_int_equal(rc, 0);
  assert_int_equal(res.failed, -1);
  assert_int_equal(res.stage[1].status, 0);
  assert_true(res.stage[1].done);
  assert_int_equal(res.stage[0].status, 128 + SIGTERM);  // stopped by the supervisor
  assert_false(res.stage[0].done);
  assert_int_equal(res.restarts, 0);
  assert_true(res.seconds >= 0.4 && res.seconds < 2.0);
  if (g_polls < 1) fail_msg("poll called %d times", g_polls);
  // the stages run in their own process group, not ours
  char *pg = slurp(mark);
  assert_non_null(pg);
  assert_int_not_equal(atoi(pg), (int)getpgrp());
  assert_non_null(strstr(slurp(b[0].log), "started"));
  assert_non_null(strstr(slurp(b[1].log), "finished"));
}

// crashes twice, then succeeds: two restart lines, restarts == 2
static void test_crash_twice(void **state) {
  (void)state;
  sv_stage_t st[1];
  stage_buf_t b[1];
  char cnt[128];
  fx_path(cnt, sizeof cnt, "count");
  sh_stage(&st[0], &b[0], "flaky", SV_SINK, 3,
           "n=$(cat %s 2>/dev/null || echo 0); echo $((n+1)) > %s; [ $n -ge 2 ] || exit 3; exit 0", cnt, cnt);
  FILE *out = tmpfile();
  sv_opts_t o = {.out = out};
  sv_result_t res;
  ps_err_t err = {0};
  assert_int_equal(sv_run(st, 1, &o, &res, &err), 0);
  assert_int_equal(res.stage[0].restarts, 2);
  assert_int_equal(res.stage[0].status, 0);
  assert_int_equal(res.restarts, 2);
  rewind(out);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, out);
  buf[n] = 0;
  fclose(out);
  const char *want = "      ! flaky exited with status 3: restarting it (see ";
  char *p = strstr(buf, want);
  if (!p || !strstr(p + 1, want)) fail_msg("restart lines: '%s'", buf);
  assert_non_null(strstr(buf, "/flaky.log)"));
}

// always crashes: the run fails after max_restarts; the service is stopped; the log tail is printed
static void test_always_crashes(void **state) {
  (void)state;
  sv_stage_t st[2];
  stage_buf_t b[2];
  sh_stage(&st[0], &b[0], "service", SV_SERVICE, 3, "exec sleep 1000");
  sh_stage(&st[1], &b[1], "broken", SV_SINK, 2, "echo line-one; echo the-last-words; exit 7");
  FILE *out = tmpfile(), *eout = tmpfile();
  sv_opts_t o = {.out = out, .err_out = eout, .stop_ms = 2000, .tail_lines = 1};
  sv_result_t res;
  ps_err_t err = {0};
  int rc = sv_run(st, 2, &o, &res, &err);
  assert_int_equal(rc, PS_ESTATE);
  assert_int_equal(res.failed, 1);
  assert_int_equal(res.stage[1].restarts, 2);
  assert_int_equal(res.stage[1].status, 7);
  assert_int_equal(res.stage[0].status, 128 + SIGTERM);
  assert_non_null(strstr(err.msg, "broken exited with status 7"));
  rewind(eout);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, eout);
  buf[n] = 0;
  if (!strstr(buf, "the-last-words\n") || strstr(buf, "line-one")) fail_msg("tail: '%s'", buf);
  fclose(out);
  fclose(eout);
}

// a restart group: one member dies, both start again, the later starts with restart_argv
static void test_group(void **state) {
  (void)state;
  sv_stage_t st[2];
  stage_buf_t b[2];
  char cnt[128], resumed[128];
  fx_path(cnt, sizeof cnt, "gcount");
  fx_path(resumed, sizeof resumed, "resumed");
  sh_stage(&st[0], &b[0], "feeder", SV_SERVICE, 3, "echo start >> %s.feeder; exec sleep 1000", cnt);
  sh_stage(&st[1], &b[1], "learner", SV_SINK, 3, "sleep 0.3; exit 9");
  char rs[512];
  snprintf(rs, sizeof rs, "echo resumed > %s; exit 0", resumed);
  char *rargv[] = {"/bin/sh", "-c", rs, NULL};
  st[1].restart_argv = rargv;
  st[0].group = st[1].group = 1;
  FILE *out = tmpfile();
  sv_opts_t o = {.out = out, .stop_ms = 2000};
  sv_result_t res;
  ps_err_t err = {0};
  assert_int_equal(sv_run(st, 2, &o, &res, &err), 0);
  assert_int_equal(res.stage[1].restarts, 1);
  assert_int_equal(res.stage[0].restarts, 1);
  assert_non_null(slurp(resumed));
  char p[160];
  snprintf(p, sizeof p, "%s.feeder", cnt);
  assert_string_equal(slurp(p), "start\nstart\n");
  fclose(out);
}

static int g_term_at;
static void term_soon(void *ctx) {
  (void)ctx;
  if (++g_polls == g_term_at) kill(getpid(), SIGTERM);
}

// SIGTERM of the supervisor: SIGTERM to the stages' group (a trap sees it), SIGKILL to a stage
// that ignores it after stop_ms; the run returns PS_EINTR and our own handler is back
static void test_sigterm_forwarding(void **state) {
  (void)state;
  sv_stage_t st[3];
  stage_buf_t b[3];
  char got[128];
  fx_path(got, sizeof got, "got-term");
  sh_stage(&st[0], &b[0], "polite", SV_SERVICE, 3, "trap 'echo term > %s; exit 0' TERM; while :; do sleep 0.05; done",
           got);
  sh_stage(&st[1], &b[1], "stubborn", SV_SERVICE, 3, "trap '' TERM; while :; do sleep 0.05; done");
  sh_stage(&st[2], &b[2], "sink", SV_SINK, 3, "exec sleep 1000");
  struct sigaction mine, now;
  memset(&mine, 0, sizeof mine);
  mine.sa_handler = SIG_IGN;
  sigaction(SIGTERM, &mine, NULL);
  g_polls = 0;
  g_term_at = 3;
  sv_opts_t o = {.poll = term_soon, .stop_ms = 700};
  sv_result_t res;
  ps_err_t err = {0};
  g_t0 = 0;
  int rc = sv_run(st, 3, &o, &res, &err);
  assert_int_equal(rc, PS_EINTR);
  assert_int_equal(res.signal, SIGTERM);
  assert_int_equal(res.failed, -1);
  assert_non_null(slurp(got));
  assert_int_equal(res.stage[0].status, 0);
  assert_int_equal(res.stage[1].status, 128 + SIGKILL);
  assert_int_equal(res.stage[2].status, 128 + SIGTERM);
  if (!(res.seconds > 0.6 && res.seconds < 5)) fail_msg("took %.2f s", res.seconds);
  sigaction(SIGTERM, NULL, &now);
  assert_true(now.sa_handler == SIG_IGN);
  signal(SIGTERM, SIG_DFL);
}

// a stage whose executable does not exist: the run fails at once
static void test_missing_executable(void **state) {
  (void)state;
  sv_stage_t st[1];
  stage_buf_t b[1];
  sh_stage(&st[0], &b[0], "ghost", SV_SINK, 3, "true");
  b[0].argv[0] = "/nonexistent/protsae-ghost";
  FILE *eout = tmpfile();
  sv_opts_t o = {.err_out = eout};
  sv_result_t res;
  ps_err_t err = {0};
  assert_int_equal(sv_run(st, 1, &o, &res, &err), PS_ESTATE);
  assert_int_equal(res.failed, 0);
  assert_non_null(strstr(err.msg, "cannot start ghost"));
  fclose(eout);
}

// ps_rm_rf: a tree with a symlink out of it (removed, not followed)
static void test_rm_rf(void **state) {
  (void)state;
  char d[160], f[200], keep[160], l[200];
  fx_path(keep, sizeof keep, "keep");
  fx_path(f, sizeof f, "tree");
  assert_int_equal(mkdir(f, 0755), 0);
  fx_path(d, sizeof d, "tree/a");
  assert_int_equal(mkdir(d, 0755), 0);
  fx_path(d, sizeof d, "tree/a/b");
  assert_int_equal(mkdir(d, 0755), 0);
  snprintf(l, sizeof l, "%s/x", d);
  fclose(fopen(l, "w"));
  fclose(fopen(keep, "w"));
  snprintf(l, sizeof l, "%s/link", d);
  assert_int_equal(symlink(keep, l), 0);
  assert_int_equal(ps_rm_rf(f), 0);
  assert_int_equal(access(f, F_OK), -1);
  assert_int_equal(access(keep, F_OK), 0);
  assert_int_equal(ps_rm_rf(f), 0);  // absent: fine
  snprintf(l, sizeof l, "%s", keep);
  assert_int_equal(ps_rm_rf(l), 0);  // a plain file
  assert_int_equal(access(keep, F_OK), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sink_and_service), cmocka_unit_test(test_crash_twice),
      cmocka_unit_test(test_always_crashes),   cmocka_unit_test(test_group),
      cmocka_unit_test(test_sigterm_forwarding), cmocka_unit_test(test_missing_executable),
      cmocka_unit_test(test_rm_rf),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
