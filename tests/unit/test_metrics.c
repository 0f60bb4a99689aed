// Metrics endpoint: Prometheus text with the registered gauges and counters and their labels,
// /healthz 200 / 503 with the reason, 404 elsewhere, port 0 = off, bad addresses named; the
// liveness signal (ps_metrics_alive) turns /healthz 503 (with the age) when the loop stops reporting.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics.h"

// Plain HTTP/1.0 GET; returns the whole response (status line, headers, body).
static char *get(int port, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
  assert_int_equal(write(fd, req, (size_t)n), n);
  size_t cap = 65536, len = 0;
  char *buf = calloc(1, cap);
  ssize_t r;
  while ((r = read(fd, buf + len, cap - len - 1)) > 0) len += (size_t)r;
  close(fd);
  return buf;
}

static void test_metrics_http(void **st) {
  (void)st;
  ps_metrics_t *m = NULL;
  ps_err_t err = {0};
  assert_int_equal(ps_metrics_start(&m, "encoder", "encoder-3", NULL, -1, &err), 0);
  assert_non_null(m);
  int port = ps_metrics_port(m);
  assert_true(port > 0);
  int rows = ps_metrics_add(m, "rows_total", PS_COUNTER, "rows encoded");
  int rate = ps_metrics_add(m, "rows_per_second", PS_GAUGE, "rate");
  assert_int_equal(ps_metrics_add(m, "rows_total", PS_COUNTER, "again"), rows);  // idempotent
  ps_metrics_inc(m, rows, 1000);
  ps_metrics_inc(m, rows, 24);
  ps_metrics_set(m, rate, 512.5);
  char *r = get(port, "/metrics");
  assert_non_null(strstr(r, "HTTP/1.0 200") ? r : strstr(r, "HTTP/1.1 200"));
  assert_non_null(strstr(r, "# TYPE protsae_rows_total counter\n"));
  assert_non_null(strstr(r, "protsae_rows_total{stage=\"encoder\",producer=\"encoder-3\"} 1024\n"));
  assert_non_null(strstr(r, "protsae_rows_per_second{stage=\"encoder\",producer=\"encoder-3\"} 512.5\n"));
  assert_non_null(strstr(r, "# TYPE protsae_rows_per_second gauge\n"));
  free(r);
  r = get(port, "/healthz");
  assert_non_null(strstr(r, " 200 "));
  assert_non_null(strstr(r, "\r\n\r\nok\n"));
  free(r);
  ps_metrics_health(m, 0, "upstream silent for 60 s");
  r = get(port, "/healthz");
  assert_non_null(strstr(r, " 503 "));
  assert_non_null(strstr(r, "upstream silent for 60 s"));
  free(r);
  r = get(port, "/nope");
  assert_non_null(strstr(r, " 404 "));
  free(r);
  ps_metrics_stop(&m);
  assert_null(m);
}

static void test_metrics_off_and_errors(void **st) {
  (void)st;
  ps_metrics_t *m = (ps_metrics_t *)1;
  ps_err_t err = {0};
  assert_int_equal(ps_metrics_start(&m, "scorer", NULL, NULL, 0, &err), 0);
  assert_null(m);
  assert_int_equal(ps_metrics_add(m, "x", PS_GAUGE, "x"), -1);  // no-ops on NULL
  ps_metrics_set(m, 0, 1.0);
  assert_int_equal(ps_metrics_port(m), 0);
  assert_true(ps_metrics_start(&m, "scorer", NULL, "not-an-address", 9999, &err) < 0);
  assert_non_null(strstr(err.msg, "not-an-address"));
  // a port in use is a named error
  ps_metrics_t *a = NULL, *b = NULL;
  assert_int_equal(ps_metrics_start(&a, "scorer", NULL, NULL, -1, &err), 0);
  assert_true(ps_metrics_start(&b, "scorer", NULL, NULL, ps_metrics_port(a), &err) < 0);
  char want[32];
  snprintf(want, sizeof want, ":%d", ps_metrics_port(a));
  assert_non_null(strstr(err.msg, want));
  ps_metrics_stop(&a);
}

// A loop that reported once and then hangs: 503 naming the age once past the stall limit, 200
// again when it reports; a stage that never reports stays 200 however long it runs.
static void test_metrics_liveness(void **st) {
  (void)st;
  ps_metrics_t *m = NULL;
  ps_err_t err = {0};
  assert_int_equal(ps_metrics_start(&m, "scorer", NULL, NULL, -1, &err), 0);
  int port = ps_metrics_port(m);
  ps_metrics_set_stall(m, 0.2);
  usleep(300000);
  char *r = get(port, "/healthz");
  if (!strstr(r, " 200 ")) fail_msg("never reported: want 200, got '%s'", r);
  free(r);
  r = get(port, "/metrics");
  assert_null(strstr(r, "loop_age"));
  free(r);
  ps_metrics_alive(m);
  r = get(port, "/healthz");
  if (!strstr(r, " 200 ")) fail_msg("just reported: want 200, got '%s'", r);
  free(r);
  usleep(400000);  // the loop hangs
  r = get(port, "/healthz");
  if (!strstr(r, " 503 ") || !strstr(r, "main loop has not reported for 0.") || !strstr(r, "(limit 0.2 s)"))
    fail_msg("hung loop: want 503 with the age, got '%s'", r);
  free(r);
  r = get(port, "/metrics");
  assert_non_null(strstr(r, "protsae_loop_age_seconds{stage=\"scorer\",producer=\"scorer\"} 0."));
  free(r);
  ps_metrics_alive(m);
  r = get(port, "/healthz");
  if (!strstr(r, " 200 ")) fail_msg("reporting again: want 200, got '%s'", r);
  free(r);
  ps_metrics_set_stall(m, 0);  // off
  usleep(300000);
  r = get(port, "/healthz");
  if (!strstr(r, " 200 ")) fail_msg("check off: want 200, got '%s'", r);
  free(r);
  ps_metrics_alive(NULL);  // no-ops on NULL
  ps_metrics_set_stall(NULL, 1);
  ps_metrics_stop(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_http),
      cmocka_unit_test(test_metrics_off_and_errors),
      cmocka_unit_test(test_metrics_liveness),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
