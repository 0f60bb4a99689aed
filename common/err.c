#include "err.h"

#include <stdarg.h>
#include <string.h>

const char *ps_strerror(int code) {
  switch (code) {
  case 0: return "success";
  case PS_EFORMAT: return "malformed input";
  case PS_ETRUNC: return "truncated input";
  case PS_EDIM: return "wrong dimension";
  case PS_ENAN: return "NaN or Inf in data";
  case PS_ENOTFOUND: return "not found";
  case PS_EUNSUPP: return "unsupported";
  case PS_EMISMATCH: return "inputs disagree";
  case PS_ENOMEM: return "out of memory";
  case PS_EPROTO: return "malformed message";
  case PS_ESTATE: return "invalid state";
  case PS_EINTR: return "interrupted";
  case PS_ESTORE: return "store error";
  case PS_EIO: return "I/O error";
  case PS_ECONFIG: return "bad configuration";
  default: break;
  }
  if (code < 0 && code > -4096) return strerror(-code);
  return "unknown error";
}

int ps_err_set(ps_err_t *e, int code, const char *fmt, ...) {
  if (!e) return code;
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return code;
}

int ps_err_prefix(ps_err_t *e, const char *fmt, ...) {
  if (!e) return 0;
  char pre[512], old[sizeof e->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, e->msg, sizeof old);
  size_t pl = strnlen(pre, sizeof e->msg - 1);
  memcpy(e->msg, pre, pl);
  size_t ol = strnlen(old, sizeof e->msg - 1 - pl);
  memcpy(e->msg + pl, old, ol);
  e->msg[pl + ol] = 0;
  return e->code;
}

void ps_err_clear(ps_err_t *e) {
  if (!e) return;
  e->code = 0;
  e->msg[0] = 0;
}

static void oom(size_t n) {
  fprintf(stderr, "protsae: out of memory allocating %zu bytes\n", n);
  abort();
}

void *ps_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n);
  return p;
}

void *ps_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom(n * size);
  return p;
}

void *ps_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n);
  return q;
}

char *ps_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ps_xmalloc(n);
  memcpy(p, s, n);
  return p;
}
