// metrics.c — see metrics.h.
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "io.h"

#define MAX_METRICS 64

typedef struct metric {
  char name[64];
  char help[160];
  ps_metric_kind_t kind;
  double value;
  double (*read)(void);  // ps_metrics_add_read: the value is read at render time
} metric_t;

struct ps_metrics {
  struct MHD_Daemon *d;
  pthread_mutex_t mu;
  char stage[32], producer[64];
  metric_t m[MAX_METRICS];
  int n;
  int healthy;
  char reason[160];
  int port;
  double started;
  double alive_at;   // monotonic time of the last ps_metrics_alive, 0 = never called
  double stall_s;    // liveness limit, <= 0 off
};

static void put(char *buf, size_t cap, size_t *o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf + *o, cap - *o, fmt, ap);
  va_end(ap);
  if (w > 0) *o += (size_t)w < cap - *o ? (size_t)w : cap - *o - 1;
}

size_t ps_metrics_render(ps_metrics_t *m, char *buf, size_t cap) {
  if (!m || !cap) return 0;
  size_t o = 0;
  buf[0] = 0;
  pthread_mutex_lock(&m->mu);
#define PUT(...) put(buf, cap, &o, __VA_ARGS__)
  PUT("# HELP protsae_up 1 while the stage runs\n# TYPE protsae_up gauge\nprotsae_up{stage=\"%s\",producer=\"%s\"} 1\n",
      m->stage, m->producer);
  PUT("# HELP protsae_start_time_seconds start time (unix)\n# TYPE protsae_start_time_seconds gauge\n"
      "protsae_start_time_seconds{stage=\"%s\",producer=\"%s\"} %.3f\n", m->stage, m->producer, m->started);
  for (int i = 0; i < m->n; i++) {
    const metric_t *x = &m->m[i];
    double v = x->read ? x->read() : x->value;
    PUT("# HELP protsae_%s %s\n# TYPE protsae_%s %s\nprotsae_%s{stage=\"%s\",producer=\"%s\"} %.17g\n", x->name, x->help,
        x->name, x->kind == PS_COUNTER ? "counter" : "gauge", x->name, m->stage, m->producer, v);
  }
  if (m->alive_at > 0)
    PUT("# HELP protsae_loop_age_seconds time since the main loop last reported\n"
        "# TYPE protsae_loop_age_seconds gauge\nprotsae_loop_age_seconds{stage=\"%s\",producer=\"%s\"} %.3f\n",
        m->stage, m->producer, ps_mono_s() - m->alive_at);
#undef PUT
  pthread_mutex_unlock(&m->mu);
  return o;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)version, (void)upload, (void)upload_size, (void)con_cls;
  ps_metrics_t *m = cls;
  if (strcmp(method, "GET") && strcmp(method, "HEAD")) return MHD_NO;
  unsigned code = MHD_HTTP_OK;
  char *body;
  size_t len;
  const char *ctype = "text/plain; version=0.0.4; charset=utf-8";
  if (!strcmp(url, "/metrics")) {
    size_t cap = 4096 + (size_t)MAX_METRICS * 512;
    body = malloc(cap);
    if (!body) return MHD_NO;
    len = ps_metrics_render(m, body, cap);
  } else if (!strcmp(url, "/healthz")) {
    body = malloc(200);
    if (!body) return MHD_NO;
    pthread_mutex_lock(&m->mu);
    double age = m->alive_at > 0 ? ps_mono_s() - m->alive_at : 0;
    if (!m->healthy) {
      code = MHD_HTTP_SERVICE_UNAVAILABLE;
      len = (size_t)snprintf(body, 200, "unhealthy: %s\n", m->reason);
    } else if (m->alive_at > 0 && m->stall_s > 0 && age > m->stall_s) {
      code = MHD_HTTP_SERVICE_UNAVAILABLE;
      len = (size_t)snprintf(body, 200, "unhealthy: main loop has not reported for %.1f s (limit %g s)\n", age,
                             m->stall_s);
    } else {
      len = (size_t)snprintf(body, 200, "ok\n");
    }
    pthread_mutex_unlock(&m->mu);
    ctype = "text/plain; charset=utf-8";
  } else {
    body = malloc(64);
    if (!body) return MHD_NO;
    len = (size_t)snprintf(body, 64, "not found: try /metrics or /healthz\n");
    code = MHD_HTTP_NOT_FOUND;
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", ctype);
  enum MHD_Result rc = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return rc;
}

int ps_metrics_start(ps_metrics_t **out, const char *stage, const char *producer, const char *bind, int port,
                     ps_err_t *err) {
  *out = NULL;
  if (port == 0) return 0;
  ps_metrics_t *m = ps_xcalloc(1, sizeof *m);
  pthread_mutex_init(&m->mu, NULL);
  snprintf(m->stage, sizeof m->stage, "%s", stage);
  snprintf(m->producer, sizeof m->producer, "%s", producer ? producer : stage);
  m->healthy = 1;
  m->started = ps_wall_s();
  m->stall_s = PS_METRICS_STALL_DEFAULT_S;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)(port < 0 ? 0 : port));
  const char *addr = bind && bind[0] ? bind : "127.0.0.1";
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
    free(m);
    return ps_err_set(err, PS_ECONFIG, "metrics: bad bind address '%s' (an IPv4 address)", addr);
  }
  m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, m,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                          MHD_OPTION_END);
  if (!m->d) {
    pthread_mutex_destroy(&m->mu);
    free(m);
    return ps_err_set(err, PS_EIO, "metrics: cannot serve HTTP on %s:%d (port in use?)", addr, port);
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
  m->port = di ? di->port : port;
  *out = m;
  return 0;
}

void ps_metrics_stop(ps_metrics_t **mp) {
  ps_metrics_t *m = *mp;
  if (!m) return;
  MHD_stop_daemon(m->d);
  pthread_mutex_destroy(&m->mu);
  free(m);
  *mp = NULL;
}

int ps_metrics_port(const ps_metrics_t *m) { return m ? m->port : 0; }

int ps_metrics_add(ps_metrics_t *m, const char *name, ps_metric_kind_t kind, const char *help) {
  if (!m) return -1;
  pthread_mutex_lock(&m->mu);
  int id = -1;
  for (int i = 0; i < m->n; i++)
    if (!strcmp(m->m[i].name, name)) id = i;
  if (id < 0 && m->n < MAX_METRICS) {
    id = m->n++;
    snprintf(m->m[id].name, sizeof m->m[id].name, "%s", name);
    snprintf(m->m[id].help, sizeof m->m[id].help, "%s", help ? help : name);
    m->m[id].kind = kind;
    m->m[id].value = 0;
    m->m[id].read = NULL;
  }
  pthread_mutex_unlock(&m->mu);
  return id;
}

int ps_metrics_add_read(ps_metrics_t *m, const char *name, ps_metric_kind_t kind, const char *help,
                        double (*read)(void)) {
  int id = ps_metrics_add(m, name, kind, help);
  if (id < 0) return id;
  pthread_mutex_lock(&m->mu);
  m->m[id].read = read;
  pthread_mutex_unlock(&m->mu);
  return id;
}

void ps_metrics_set(ps_metrics_t *m, int id, double v) {
  if (!m || id < 0) return;
  pthread_mutex_lock(&m->mu);
  if (id < m->n) m->m[id].value = v;
  pthread_mutex_unlock(&m->mu);
}

void ps_metrics_inc(ps_metrics_t *m, int id, double by) {
  if (!m || id < 0) return;
  pthread_mutex_lock(&m->mu);
  if (id < m->n) m->m[id].value += by;
  pthread_mutex_unlock(&m->mu);
}

void ps_metrics_health(ps_metrics_t *m, int healthy, const char *reason) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  m->healthy = healthy;
  snprintf(m->reason, sizeof m->reason, "%s", reason ? reason : "");
  pthread_mutex_unlock(&m->mu);
}

void ps_metrics_alive(ps_metrics_t *m) {
  if (!m) return;
  double now = ps_mono_s();
  pthread_mutex_lock(&m->mu);
  m->alive_at = now;
  pthread_mutex_unlock(&m->mu);
}

void ps_metrics_set_stall(ps_metrics_t *m, double seconds) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  m->stall_s = seconds;
  pthread_mutex_unlock(&m->mu);
}
