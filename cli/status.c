// protsae status — one line per stage from the stages' Prometheus endpoints (/metrics): rows
// done, rate, progress / ETA where the stage knows its total, loss, L0, dead %, and whether
// /healthz answers ok; under a stage of the annotation service (reader --watch, annotator) a second
// line with its proteomes queued / in flight / done / failed and rates. Endpoints: --endpoints
// host:port,... or PROTSAE_STATUS_ENDPOINTS. With --healthy 1 the exit status says whether every
// endpoint answered healthy (the compose file's container healthchecks).
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "prom.h"

static const ps_config_entry_t table[] = {
    {"endpoints", "127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103,127.0.0.1:9104,127.0.0.1:9105",
     "comma-separated host:port of the stages' --metrics-port"},
    {"timeout-ms", "2000", "per-request timeout"},
    {"healthy", "0", "1: exit 1 unless every endpoint answers and its /healthz is ok (container healthchecks)"},
    {NULL, NULL, NULL},
};

static void fmt(char *out, size_t cap, double v, const char *f) {
  if (isnan(v)) snprintf(out, cap, "-");
  else snprintf(out, cap, f, v);
}

int cli_status(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae status", argc, argv);
  if (crc >= 0) return crc;
  int64_t tmo = 2000;
  int need_healthy = 0;
  ps_config_i64(cfg, "timeout-ms", &tmo, NULL);
  ps_config_bool(cfg, "healthy", &need_healthy, NULL);
  char *eps = ps_xstrdup(ps_config_str(cfg, "endpoints"));
  curl_global_init(CURL_GLOBAL_DEFAULT);
  printf("%-22s %-10s %-12s %12s %10s %9s %10s %9s %7s %7s %s\n", "endpoint", "stage", "producer", "rows", "rows/s",
         "progress", "eta", "loss", "l0", "dead%", "health");
  int up = 0, n = 0, healthy = 0;
  double sent_b = 0, applied_b = 0;  // queue depth of the pipeline: batches between reader and scorer
  int have_sent = 0, have_applied = 0;
  for (char *save = NULL, *ep = strtok_r(eps, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
    n++;
    char url[512];
    prom_buf_t b = {0}, h = {0};
    snprintf(url, sizeof url, "http://%s/metrics", ep);
    long code = prom_fetch(url, (long)tmo, &b);
    if (code != 200 || !b.p) {
      printf("%-22s %-10s (no answer%s)\n", ep, "-", code > 0 ? ": HTTP error" : "");
      free(b.p);
      continue;
    }
    up++;
    char stage[32] = "?", prod[64] = "?";
    char *pg = malloc(b.n + 2);
    pg[0] = '\n';
    memcpy(pg + 1, b.p, b.n + 1);
    prom_metric(pg, "up", stage, sizeof stage, prod, sizeof prod);
    double rows = prom_metric(pg, "rows_total", NULL, 0, NULL, 0);
    double rate = prom_metric(pg, "rows_per_second", NULL, 0, NULL, 0);
    double done = prom_metric(pg, "rows_done", NULL, 0, NULL, 0), total = prom_metric(pg, "rows_planned", NULL, 0, NULL, 0);
    double applied = prom_metric(pg, "batches_applied_total", NULL, 0, NULL, 0);
    double planned_b = prom_metric(pg, "stream_batches", NULL, 0, NULL, 0);
    double loss = prom_metric(pg, "loss", NULL, 0, NULL, 0), l0 = prom_metric(pg, "l0", NULL, 0, NULL, 0);
    double dead = prom_metric(pg, "dead_fraction", NULL, 0, NULL, 0);
    double prog = NAN, eta = NAN;
    if (!isnan(done) && !isnan(total) && total > 0) {
      prog = done / total;
      if (!isnan(rate) && rate > 0) eta = (total - done) / rate;
    } else if (!isnan(applied) && !isnan(planned_b) && planned_b > 0) {
      prog = applied / planned_b;
    }
    if (isnan(rows) && !isnan(done)) rows = done;
    double sb = prom_metric(pg, "batches_total", NULL, 0, NULL, 0);
    if (!strcmp(stage, "reader") && !isnan(sb)) sent_b += sb, have_sent = 1;
    if (!strcmp(stage, "scorer") && !isnan(applied)) applied_b += applied, have_applied = 1;
    snprintf(url, sizeof url, "http://%s/healthz", ep);
    long hc = prom_fetch(url, (long)tmo, &h);
    char c_rows[24], c_rate[24], c_prog[24], c_eta[24], c_loss[24], c_l0[24], c_dead[24];
    fmt(c_rows, sizeof c_rows, rows, "%.0f");
    fmt(c_rate, sizeof c_rate, rate, "%.0f");
    fmt(c_prog, sizeof c_prog, isnan(prog) ? NAN : 100 * prog, "%.1f%%");
    fmt(c_eta, sizeof c_eta, eta, "%.0fs");
    fmt(c_loss, sizeof c_loss, loss, "%.4g");
    fmt(c_l0, sizeof c_l0, l0, "%.1f");
    fmt(c_dead, sizeof c_dead, isnan(dead) ? NAN : 100 * dead, "%.1f");
    printf("%-22s %-10s %-12s %12s %10s %9s %10s %9s %7s %7s %s\n", ep, stage, prod, c_rows, c_rate, c_prog, c_eta,
           c_loss, c_l0, c_dead, hc == 200 ? "ok" : "UNHEALTHY");
    healthy += hc == 200;
    char svc[256];
    if (prom_service_line(pg, svc, sizeof svc)) printf("%-22s %s\n", "", svc);
    free(pg);
    free(b.p);
    free(h.p);
  }
  curl_global_cleanup();
  free(eps);
  ps_config_destroy(&cfg);
  if (have_sent && have_applied)
    printf("queue: %.0f batches in flight between the reader(s) and the scorer (sent %.0f, applied %.0f)\n",
           sent_b > applied_b ? sent_b - applied_b : 0.0, sent_b, applied_b);
  printf("%d of %d endpoints answered, %d healthy\n", up, n, healthy);
  if (need_healthy) return healthy == n ? 0 : 1;
  return up > 0 ? 0 : 1;
}
