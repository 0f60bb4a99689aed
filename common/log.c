#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static char g_stage[64] = "protsae";
static ps_log_level_t g_level = PS_LOG_INFO;

void ps_log_init(const char *stage) {
  snprintf(g_stage, sizeof g_stage, "%s", stage ? stage : "protsae");
  const char *lv = getenv("PROTSAE_LOG_LEVEL");
  if (lv) {
    if (!strcasecmp(lv, "debug")) g_level = PS_LOG_DEBUG;
    else if (!strcasecmp(lv, "info")) g_level = PS_LOG_INFO;
    else if (!strcasecmp(lv, "warn")) g_level = PS_LOG_WARN;
    else if (!strcasecmp(lv, "error")) g_level = PS_LOG_ERROR;
  }
}

void ps_log_set_level(ps_log_level_t lvl) { g_level = lvl; }

void ps_log(ps_log_level_t lvl, const char *fmt, ...) {
  static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  if (lvl < g_level) return;
  char line[2048];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                   g_stage, names[lvl]);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  // one write so lines from several processes do not interleave
  size_t len = strnlen(line, sizeof line - 2);
  line[len] = '\n';
  fwrite(line, 1, len + 1, stderr);
}
