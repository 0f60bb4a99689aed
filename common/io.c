// io.c — clocks, directory fsync, atomic file writes and the gzip/plain line reader. See io.h.
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static double clock_s(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double ps_mono_s(void) { return clock_s(CLOCK_MONOTONIC); }
double ps_wall_s(void) { return clock_s(CLOCK_REALTIME); }

int64_t ps_mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int ps_fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) ? -errno : 0;
  close(fd);
  return rc;
}

int ps_fsync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else if ((size_t)(slash - path) >= sizeof dir) return -ENAMETOOLONG;
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  return ps_fsync_dir(dir);
}

int ps_fclose_synced(FILE *f) {
  int e = 0;
  if (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0) e = errno ? errno : EIO;
  if (fclose(f) != 0 && !e) e = errno;
  return -e;
}

int ps_write_file_atomic(const char *path, const void *data, size_t len, ps_err_t *err) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return ps_err_set(err, PS_ECONFIG, "path too long: %s", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ps_err_set(err, -errno, "%s: %s", tmp, strerror(errno));
  const char *p = data;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, p + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      return ps_err_set(err, -e, "%s: write: %s", tmp, strerror(e));
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return ps_err_set(err, -e, "%s: fsync: %s", tmp, strerror(e));
  }
  if (close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return ps_err_set(err, -e, "%s: close: %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return ps_err_set(err, -e, "%s: rename to %s: %s", tmp, path, strerror(e));
  }
  (void)ps_fsync_parent(path);  // best effort: some file systems refuse fsync on directories
  return 0;
}

// ---- line reader ---------------------------------------------------------------------------------

struct ps_lines {
  char *name;
  gzFile gz;                 // NULL when reading from memory
  const unsigned char *mem;  // memory input
  size_t mem_len, mem_pos;
  unsigned char buf[1 << 16];
  size_t pos, len;
  int eof, failed;
  size_t max_line;
  char *ln;
  size_t ln_len, ln_cap;
  uint64_t line;
};

int ps_lines_open(ps_lines_t **out, const char *path, size_t max_line, ps_err_t *err) {
  *out = NULL;
  gzFile gz;
  errno = 0;
  int is_stdin = !strcmp(path, "-");
  if (is_stdin) {
    int fd = dup(0);  // gzclose closes its descriptor: never close the caller's stdin
    if (fd < 0) return ps_err_set(err, -errno, "stdin: cannot dup: %s", strerror(errno));
    if (!(gz = gzdopen(fd, "rb"))) close(fd);
  } else {
    gz = gzopen(path, "rb");
  }
  if (!gz) {
    int e = errno ? errno : ENOMEM;
    return ps_err_set(err, -e, "%s: cannot open: %s", is_stdin ? "stdin" : path, strerror(e));
  }
  gzbuffer(gz, 1 << 17);
  ps_lines_t *r = ps_xcalloc(1, sizeof *r);
  r->gz = gz;
  r->name = ps_xstrdup(is_stdin ? "stdin" : path);
  r->max_line = max_line ? max_line : (size_t)1 << 28;
  *out = r;
  return 0;
}

ps_lines_t *ps_lines_open_mem(const void *buf, size_t len, const char *name, size_t max_line) {
  ps_lines_t *r = ps_xcalloc(1, sizeof *r);
  r->mem = buf;
  r->mem_len = buf ? len : 0;
  r->name = ps_xstrdup(name ? name : "buffer");
  r->max_line = max_line ? max_line : (size_t)1 << 28;
  return r;
}

void ps_lines_close(ps_lines_t **rp) {
  if (!rp || !*rp) return;
  ps_lines_t *r = *rp;
  if (r->gz) gzclose(r->gz);
  free(r->name);
  free(r->ln);
  free(r);
  *rp = NULL;
}

uint64_t ps_lines_lineno(const ps_lines_t *r) { return r ? r->line : 0; }
const char *ps_lines_name(const ps_lines_t *r) { return r ? r->name : ""; }

// A zlib error as a return code and a message naming the input and the line.
static int gz_fail(ps_lines_t *r, ps_err_t *err) {
  int zerr = Z_OK;
  const char *m = gzerror(r->gz, &zerr);
  r->failed = 1;
  if (zerr == Z_ERRNO) {
    int e = errno ? errno : EIO;
    return ps_err_set(err, -e, "%s: line %llu: read error: %s", r->name, (unsigned long long)r->line + 1, strerror(e));
  }
  int code = zerr == Z_BUF_ERROR ? PS_ETRUNC : zerr == Z_MEM_ERROR ? PS_ENOMEM : PS_EFORMAT;
  if (!m || !*m) m = "gzip error";
  size_t pl = strlen(r->name);  // zlib prefixes its message with the path: drop it
  if (!strncmp(m, r->name, pl) && m[pl] == ':' && m[pl + 1] == ' ') m += pl + 2;
  return ps_err_set(err, code, "%s: line %llu: %s%s", r->name, (unsigned long long)r->line + 1, m,
                    code == PS_ETRUNC ? " (truncated gzip file)" : " (corrupt gzip data)");
}

// Refill the input buffer: 1 = bytes, 0 = end, <0 = error.
static int fill(ps_lines_t *r, ps_err_t *err) {
  if (!r->gz) {
    size_t n = r->mem_len - r->mem_pos;
    if (n > sizeof r->buf) n = sizeof r->buf;
    if (n == 0) return 0;
    memcpy(r->buf, r->mem + r->mem_pos, n);
    r->mem_pos += n;
    r->pos = 0;
    r->len = n;
    return 1;
  }
  errno = 0;
  int n = gzread(r->gz, r->buf, sizeof r->buf);
  if (n < 0) return gz_fail(r, err);
  if (n == 0) {
    int zerr = Z_OK;
    gzerror(r->gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) return gz_fail(r, err);
    return 0;
  }
  r->pos = 0;
  r->len = (size_t)n;
  return 1;
}

// "1 GiB", "256 MiB", "64 KiB" for whole multiples, else "N bytes".
static const char *human_size(char *b, size_t cap, size_t n) {
  static const char *unit[] = {"GiB", "MiB", "KiB"};
  for (int k = 0; k < 3; k++) {
    size_t u = (size_t)1 << (30 - 10 * k);
    if (n >= u && n % u == 0) {
      snprintf(b, cap, "%zu %s", n / u, unit[k]);
      return b;
    }
  }
  snprintf(b, cap, "%zu bytes", n);
  return b;
}

int ps_lines_next(ps_lines_t *r, char **line, size_t *len, ps_err_t *err) {
  if (r->failed) return ps_err_set(err, PS_ESTATE, "%s: line %llu: reader failed before", r->name,
                                   (unsigned long long)r->line + 1);
  r->ln_len = 0;
  int got = 0;
  for (;;) {
    if (r->pos == r->len) {
      if (r->eof) break;
      int f = fill(r, err);
      if (f < 0) return f;
      if (f == 0) {
        r->eof = 1;
        break;
      }
    }
    unsigned char *s = r->buf + r->pos, *nl = memchr(s, '\n', r->len - r->pos);
    size_t take = nl ? (size_t)(nl - s) : r->len - r->pos;
    if (r->ln_len + take + 1 > r->ln_cap) {
      if (r->ln_len + take > r->max_line) {
        r->failed = 1;
        char sz[32];
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu: longer than %s (not a text file?)", r->name,
                          (unsigned long long)r->line + 1, human_size(sz, sizeof sz, r->max_line));
      }
      size_t c = r->ln_cap ? r->ln_cap : 256;
      while (c < r->ln_len + take + 1) c *= 2;
      if (c > r->max_line + 1) c = r->max_line + 1;
      r->ln = ps_xrealloc(r->ln, c);
      r->ln_cap = c;
    }
    memcpy(r->ln + r->ln_len, s, take);
    r->ln_len += take;
    r->pos += take;
    got = 1;
    if (nl) {
      r->pos++;
      break;
    }
  }
  if (!got) return 0;
  if (r->ln_len && r->ln[r->ln_len - 1] == '\r') r->ln_len--;
  r->ln[r->ln_len] = 0;
  r->line++;
  *line = r->ln;
  *len = r->ln_len;
  return 1;
}
