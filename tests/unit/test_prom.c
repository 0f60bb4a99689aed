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

// The page as protsae status reads it: '\n' + the body of http://127.0.0.1:port/metrics.
static char *fetch_page(int port) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
  prom_buf_t b = {0};
  assert_int_equal(prom_fetch(url, 2000, &b), 200);
  assert_non_null(b.p);
  char *pg = malloc(b.n + 2);
  pg[0] = '\n';
  memcpy(pg + 1, b.p, b.n + 1);
  free(b.p);
  return pg;
}

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

  char *pg = fetch_page(port);
  char stage[16] = "", prod[16] = "";
  assert_true(prom_metric(pg, "rows_done", stage, sizeof stage, prod, sizeof prod) == 30000.0);
  assert_string_equal(stage, "reader");
  assert_string_equal(prod, "reader-0");
  assert_true(isnan(prom_metric(pg, "loss", NULL, 0, NULL, 0)));
  free(pg);
  // no server: -1
  int free_port = prom_free_port();
  assert_true(free_port > 0);
  char url[64];
  prom_buf_t b = {0};
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

// The annotation service's series (reader --watch; the annotator): one line of proteome counts.
static void test_service_line(void **st) {
  (void)st;
  ps_err_t err = {0};
  ps_metrics_t *r = NULL, *a = NULL;
  assert_int_equal(ps_metrics_start(&r, "reader", "reader-0", "127.0.0.1", -1, &err), 0);
  assert_int_equal(ps_metrics_start(&a, "annotator", "annotator-0", "127.0.0.1", -1, &err), 0);
  char line[256];
  char *pg = fetch_page(ps_metrics_port(r));  // no service series yet: no line
  assert_int_equal(prom_service_line(pg, line, sizeof line), 0);
  free(pg);
  static const char *const rn[] = {"proteomes_queued", "proteomes_in_flight", "proteomes_done_total",
                                   "proteomes_failed_total", "residues_per_second", "esm2_tokens_per_second"};
  static const double rv[] = {3, 2, 17, 1, 1234.4, 5678.6};
  for (int i = 0; i < 6; i++) ps_metrics_set(r, ps_metrics_add(r, rn[i], i < 2 || i > 3 ? PS_GAUGE : PS_COUNTER, "x"), rv[i]);
  pg = fetch_page(ps_metrics_port(r));
  assert_int_equal(prom_service_line(pg, line, sizeof line), 1);
  assert_string_equal(line, "proteomes: queued 3, in flight 2, done 17, failed 1; 1234 residues/s, 5679 ESM2 tokens/s");
  free(pg);
  static const char *const an[] = {"proteomes_done_total", "proteomes_failed_total", "proteomes_in_flight",
                                   "proteins_annotated_total"};
  static const double av[] = {5, 0, 1, 20412};
  for (int i = 0; i < 4; i++) ps_metrics_set(a, ps_metrics_add(a, an[i], i == 2 ? PS_GAUGE : PS_COUNTER, "x"), av[i]);
  pg = fetch_page(ps_metrics_port(a));
  assert_int_equal(prom_service_line(pg, line, sizeof line), 1);
  assert_string_equal(line, "proteomes: in flight 1, done 5, failed 0; 20412 proteins annotated");
  char small[24];  // truncated, never overrun
  assert_int_equal(prom_service_line(pg, small, sizeof small), 1);
  assert_string_equal(small, "proteomes: in flight 1,");
  free(pg);
  ps_metrics_stop(&a);
  ps_metrics_stop(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_fetch_and_progress), cmocka_unit_test(test_service_line)};
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
