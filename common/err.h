// err.h — error codes and error detail for library code.
//
// Library functions return 0 (or a positive count) on success and a negative code on failure:
// either -errno or one of PS_E* below. ps_strerror() names a code. Functions that can say more
// take a `ps_err_t *` (may be NULL) and fill it with a message that names the input and the
// position ("file.npy: row 12: NaN at column 3"). Only main() turns errors into exit codes.
#ifndef PS_ERR_H
#define PS_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum {
  PS_EFORMAT = -10001,   // input malformed (bad magic, bad header, bad syntax)
  PS_ETRUNC = -10002,    // input ends too early
  PS_EDIM = -10003,      // wrong dimension or shape
  PS_ENAN = -10004,      // NaN or Inf in data
  PS_ENOTFOUND = -10005, // id / key / tensor not found
  PS_EUNSUPP = -10006,   // valid but unsupported (dtype, version)
  PS_EMISMATCH = -10007, // inputs disagree (ids vs FASTA, length vs sequence)
  PS_ENOMEM = -10008,
  PS_EPROTO = -10009,    // malformed or foreign wire message
  PS_ESTATE = -10010,    // call not valid in this state
  PS_EINTR = -10011,     // stopped by a signal
  PS_ESTORE = -10012,    // RocksDB error
  PS_EIO = -10013,       // I/O error (errno unknown)
  PS_ECONFIG = -10014,   // bad configuration value
};

typedef struct ps_err {
  int code;
  char msg[1024];
} ps_err_t;

const char *ps_strerror(int code);

// Set e->code and e->msg (printf-style); returns `code` so callers can `return ps_err_set(...)`.
// e may be NULL. The message should name the input and the position.
int ps_err_set(ps_err_t *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Prefix an existing message ("reader: " + msg). Returns e->code (or 0 when e is NULL).
int ps_err_prefix(ps_err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ps_err_clear(ps_err_t *e);

// Programmer errors: abort with file:line.
#define PS_ASSERT(x)                                                                       \
  do {                                                                                     \
    if (!(x)) {                                                                            \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x);           \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

// Allocation that aborts on failure (out of memory is not an input error).
void *ps_xmalloc(size_t n);
void *ps_xcalloc(size_t n, size_t size);
void *ps_xrealloc(void *p, size_t n);
char *ps_xstrdup(const char *s);

#endif
