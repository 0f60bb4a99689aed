// prom.h — the front command's client of the stages' Prometheus endpoints (common/metrics.h):
// fetch a page over HTTP (libcurl), read one sample, and draw a progress line from a stage's
// rows_done / rows_planned / rows_per_second (protsae status, demo progress bars).
#ifndef PS_CLI_PROM_H
#define PS_CLI_PROM_H

#include <stddef.h>

typedef struct prom_buf {
  char *p;  // NUL-terminated body (malloc'ed; caller frees), NULL when nothing arrived
  size_t n;
} prom_buf_t;

// GET url into b (at most 4 MB); returns the HTTP status, or -1 when there was no answer.
long prom_fetch(const char *url, long timeout_ms, prom_buf_t *b);
// The value of protsae_<name>{...} in page, which must start with '\n' (NAN when absent).
// stage / producer (may be NULL) get the sample's labels.
double prom_metric(const char *page, const char *name, char *stage, size_t cap, char *producer, size_t pcap);
// The annotation service's proteome counts on a stage's page (the reader in service mode, the
// annotator), page as for prom_metric: "proteomes: queued Q, in flight I, done D, failed F;
// R residues/s, T ESM2 tokens/s; P proteins annotated", each part only when the page has its
// series. 1 with out filled when the page has the service's series, else 0.
int prom_service_line(const char *page, char *out, size_t cap);
// A free TCP port on 127.0.0.1 (bound and released: another process may take it first), or 0.
int prom_free_port(void);

// Progress of one step from a stage's metrics on 127.0.0.1:port. On a terminal the line is
// redrawn in place (bar, %, rows, rate, ETA); otherwise a plain line at most every 10 s.
typedef struct prom_progress {
  const char *label;
  int port;
  int train_port;  // > 0: also show loss, L0 and dead % from a trainer's endpoint
  int tty;
  double last_print, t0;
  int drawn;
} prom_progress_t;

void prom_progress_init(prom_progress_t *p, const char *label, int port);
void prom_progress_poll(prom_progress_t *p);  // fetch (100 ms timeout) and draw
void prom_progress_end(prom_progress_t *p);   // clear the terminal line

#endif
