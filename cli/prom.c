// prom.c — see prom.h.
#include "prom.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"

static size_t on_data(char *d, size_t sz, size_t nm, void *ctx) {
  prom_buf_t *b = ctx;
  size_t n = sz * nm;
  if (b->n + n > (1u << 22)) return 0;  // 4 MB is not a metrics page
  char *p = realloc(b->p, b->n + n + 1);
  if (!p) return 0;
  b->p = p;
  memcpy(b->p + b->n, d, n);
  b->n += n;
  b->p[b->n] = 0;
  return n;
}

long prom_fetch(const char *url, long timeout_ms, prom_buf_t *b) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  b->p = NULL;
  b->n = 0;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  long code = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

double prom_metric(const char *page, const char *name, char *stage, size_t cap, char *producer, size_t pcap) {
  char key[96];
  snprintf(key, sizeof key, "\nprotsae_%s{", name);
  const char *p = strstr(page, key);
  if (!p) return NAN;
  p += strlen(key);
  const char *s = strstr(p, "stage=\""), *q = strstr(p, "producer=\""), *e = strchr(p, '}');
  if (!e) return NAN;
  if (stage && s && s < e) {
    s += 7;
    size_t l = strcspn(s, "\"");
    snprintf(stage, cap, "%.*s", (int)(l < cap ? l : cap - 1), s);
  }
  if (producer && q && q < e) {
    q += 10;
    size_t l = strcspn(q, "\"");
    snprintf(producer, pcap, "%.*s", (int)(l < pcap ? l : pcap - 1), q);
  }
  return strtod(e + 1, NULL);
}

int prom_service_line(const char *page, char *out, size_t cap) {
  static const char *const counts[][2] = {{"proteomes_queued", "queued"},
                                          {"proteomes_in_flight", "in flight"},
                                          {"proteomes_done_total", "done"},
                                          {"proteomes_failed_total", "failed"}};
  static const char *const rates[][2] = {{"residues_per_second", "residues/s"},
                                         {"esm2_tokens_per_second", "ESM2 tokens/s"},
                                         {"proteins_annotated_total", "proteins annotated"}};
  if (isnan(prom_metric(page, "proteomes_done_total", NULL, 0, NULL, 0)) &&
      isnan(prom_metric(page, "proteomes_in_flight", NULL, 0, NULL, 0)))
    return 0;
  size_t n = (size_t)snprintf(out, cap, "proteomes:");
  const char *sep = " ";
  for (size_t i = 0; i < sizeof counts / sizeof *counts && n < cap; i++) {
    double v = prom_metric(page, counts[i][0], NULL, 0, NULL, 0);
    if (isnan(v)) continue;
    n += (size_t)snprintf(out + n, cap - n, "%s%s %.0f", sep, counts[i][1], v);
    sep = ", ";
  }
  sep = "; ";
  for (size_t i = 0; i < sizeof rates / sizeof *rates && n < cap; i++) {
    double v = prom_metric(page, rates[i][0], NULL, 0, NULL, 0);
    if (isnan(v)) continue;
    n += (size_t)snprintf(out + n, cap - n, "%s%.0f %s", sep, v, rates[i][1]);
    sep = ", ";
  }
  return 1;
}

int prom_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  int port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

void prom_progress_init(prom_progress_t *p, const char *label, int port) {
  memset(p, 0, sizeof *p);
  p->label = label;
  p->port = port;
  p->tty = isatty(STDOUT_FILENO);
  p->t0 = ps_mono_s();
  p->last_print = p->t0 - 8.0;  // not a terminal: a first line after 2 s, then every 10 s
}

static void human(char *out, size_t cap, double v) {
  if (v >= 1e6) snprintf(out, cap, "%.1fM", v / 1e6);
  else if (v >= 1e4) snprintf(out, cap, "%.0fk", v / 1e3);
  else snprintf(out, cap, "%.0f", v);
}

void prom_progress_poll(prom_progress_t *p) {
  if (p->port <= 0) return;
  double t = ps_mono_s();
  if (!p->tty && t - p->last_print < 10.0) return;
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", p->port);
  prom_buf_t b = {0};
  long code = prom_fetch(url, 100, &b);
  if (code != 200 || !b.p) {
    free(b.p);
    return;
  }
  char *pg = malloc(b.n + 2);
  if (!pg) {
    free(b.p);
    return;
  }
  pg[0] = '\n';
  memcpy(pg + 1, b.p, b.n + 1);
  double done = prom_metric(pg, "rows_done", NULL, 0, NULL, 0), total = prom_metric(pg, "rows_planned", NULL, 0, NULL, 0);
  double rate = prom_metric(pg, "rows_per_second", NULL, 0, NULL, 0);
  free(pg);
  free(b.p);
  if (isnan(done)) return;
  char train[96] = "";
  if (p->train_port > 0) {
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", p->train_port);
    prom_buf_t tb = {0};
    if (prom_fetch(url, 100, &tb) == 200 && tb.p) {
      char *tp = malloc(tb.n + 2);
      if (tp) {
        tp[0] = '\n';
        memcpy(tp + 1, tb.p, tb.n + 1);
        double loss = prom_metric(tp, "loss", NULL, 0, NULL, 0), l0 = prom_metric(tp, "l0", NULL, 0, NULL, 0);
        double dead = prom_metric(tp, "dead_fraction", NULL, 0, NULL, 0);
        double steps = prom_metric(tp, "steps_total", NULL, 0, NULL, 0);
        if (!isnan(loss) && steps > 0) snprintf(train, sizeof train, ", loss %.4g L0 %.1f dead %.1f%%", loss, l0, 100 * dead);
        free(tp);
      }
    }
    free(tb.p);
  }
  char sd[16], st[16], sr[16], eta[32] = "";
  human(sd, sizeof sd, done);
  human(st, sizeof st, isnan(total) ? 0 : total);
  human(sr, sizeof sr, isnan(rate) ? 0 : rate);
  double frac = !isnan(total) && total > 0 ? done / total : NAN;
  if (!isnan(frac) && rate > 0) snprintf(eta, sizeof eta, " ETA %.0f s", (total - done) / rate);
  if (p->tty) {
    char bar[31];
    int w = isnan(frac) ? 0 : (int)(frac * 30 + 0.5);
    if (w > 30) w = 30;
    for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : '.';
    bar[30] = 0;
    if (isnan(frac)) printf("\r      %s %s rows, %s rows/s%s\033[K", p->label, sd, sr, train);
    else printf("\r      %s [%s] %3.0f%% %s/%s rows, %s rows/s%s%s\033[K", p->label, bar, 100 * frac, sd, st, sr, eta, train);
    p->drawn = 1;
  } else {
    if (isnan(frac)) printf("      %s: %s rows, %s rows/s%s\n", p->label, sd, sr, train);
    else printf("      %s: %.0f%% (%s of %s rows, %s rows/s%s)%s\n", p->label, 100 * frac, sd, st, sr, eta, train);
  }
  fflush(stdout);
  p->last_print = t;
}

void prom_progress_end(prom_progress_t *p) {
  if (p->tty && p->drawn) {
    printf("\r\033[K");
    fflush(stdout);
  }
  p->drawn = 0;
}
