// metrics.h — every stage's monitoring endpoint: Prometheus text metrics on GET /metrics and a
// health check on GET /healthz, served over HTTP by libmicrohttpd on its own thread.
//
// A stage registers gauges and counters by name once, then sets them from its loop (a mutex
// guards the values; setting costs a lock, no allocation). Names get the "protsae_" prefix and
// every sample carries the labels stage="<stage>",producer="<producer>".
// Port 0 disables the endpoint (all calls become no-ops on a NULL handle). Binds 127.0.0.1 by
// default; set bind to "0.0.0.0" for containers.
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include "err.h"

typedef struct ps_metrics ps_metrics_t;

typedef enum { PS_GAUGE = 0, PS_COUNTER = 1 } ps_metric_kind_t;

// *out = NULL (and 0) when port is 0. Errors name the address and port.
int ps_metrics_start(ps_metrics_t **out, const char *stage, const char *producer, const char *bind, int port,
                     ps_err_t *err);
void ps_metrics_stop(ps_metrics_t **m);
// The port actually bound (useful with port -1: any free port). 0 when m is NULL.
int ps_metrics_port(const ps_metrics_t *m);
// Register a metric (idempotent); returns its handle (>= 0), or -1 when m is NULL or full (64).
int ps_metrics_add(ps_metrics_t *m, const char *name, ps_metric_kind_t kind, const char *help);
// The same for a value kept elsewhere: read() is called (under the metrics lock, from the HTTP
// thread) each time /metrics is rendered; it must be thread-safe and outlive m.
int ps_metrics_add_read(ps_metrics_t *m, const char *name, ps_metric_kind_t kind, const char *help,
                        double (*read)(void));
void ps_metrics_set(ps_metrics_t *m, int id, double v);
void ps_metrics_inc(ps_metrics_t *m, int id, double by);
// /healthz answers 200 "ok" while healthy, 503 with the reason otherwise.
void ps_metrics_health(ps_metrics_t *m, int healthy, const char *reason);
// Liveness: a stage's main loop calls ps_metrics_alive each time round (cheap: a lock and a
// clock read). From the first call on, /healthz answers 503 "main loop has not reported for
// A s (limit L s)" once the last call is older than the stall limit, and /metrics carries
// protsae_loop_age_seconds. A stage that never calls it keeps the plain 200.
#define PS_METRICS_STALL_DEFAULT_S 30.0
void ps_metrics_alive(ps_metrics_t *m);
// Stall limit in seconds (default PS_METRICS_STALL_DEFAULT_S); <= 0 turns the check off.
void ps_metrics_set_stall(ps_metrics_t *m, double seconds);
// Render the exposition text into buf (for tests and `protsae status`); returns the length.
size_t ps_metrics_render(ps_metrics_t *m, char *buf, size_t cap);

#endif
