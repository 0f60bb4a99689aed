// The front command's Prometheus client (cli/prom.c) against a real stage endpoint
// (common/metrics.c): samples read back, progress drawn as a bar (terminal) or a plain line.
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "metrics.h"
#include "prom.h"

static void test_fetch_and_progress(void **st) {
  (void)st;
  ps_err_t err = {0};
  ps_metrics_t *m = NULL;
  assert_int_equal(ps_metrics_start(&m, "reader", "reader-0", "127.0.0.1", -1, &err), 0);
  int port = ps_metrics_port(m);
  assert_true(port > 0);
  int done = ps_metrics_add(m, "rows_done", PS_GAUGE, "rows sent");
  int plan = ps_metrics_add(m, "rows_planned", PS_GAUGE, "rows planned");
  int rate = ps_metrics_add(m, "rows_per_second", PS_GAUGE, "rate");
  ps_metrics_set(m, done, 30000);
  ps_metrics_set(m, plan, 120000);
  ps_metrics_set(m, rate, 1000);

  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
  prom_buf_t b = {0};
  assert_int_equal(prom_fetch(url, 2000, &b), 200);
  assert_non_null(b.p);
  char *pg = malloc(b.n + 2);
  pg[0] = '\n';
  memcpy(pg + 1, b.p, b.n + 1);
  char stage[16] = "", prod[16] = "";
  assert_true(prom_metric(pg, "rows_done", stage, sizeof stage, prod, sizeof prod) == 30000.0);
  assert_string_equal(stage, "reader");
  assert_string_equal(prod, "reader-0");
  assert_true(isnan(prom_metric(pg, "loss", NULL, 0, NULL, 0)));
  free(pg);
  free(b.p);
  // no server: -1
  int free_port = prom_free_port();
  assert_true(free_port > 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", free_port);
  assert_int_equal(prom_fetch(url, 500, &b), -1);
  free(b.p);

  // progress, captured from stdout: a bar on a terminal, a plain line otherwise
  char path[PATH_MAX];
  int fd = open(fx_path(path, sizeof path, "progress.out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  dup2(fd, STDOUT_FILENO);
  prom_progress_t p;
  prom_progress_init(&p, "encode", port);
  p.tty = 1;
  prom_progress_poll(&p);
  prom_progress_end(&p);
  p.tty = 0;
  p.last_print = 0;  // due
  prom_progress_poll(&p);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  close(fd);
  char *out = fx_read_file(path, NULL);
  assert_non_null(strstr(out, "\r      encode [########......................]  25% 30k/120k rows, 1000 rows/s ETA 90 s"));
  assert_non_null(strstr(out, "      encode: 25% (30k of 120k rows, 1000 rows/s ETA 90 s)\n"));
  free(out);
  ps_metrics_stop(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_fetch_and_progress)};
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
