// proteins_tsv.c — see proteins_tsv.h.
#include "proteins_tsv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "log.h"

enum { MAX_LINE = 1 << 20 };

// One line into *buf (grown as needed), without its "\n" / "\r\n". 1 = a line, 0 = end of file,
// -1 = longer than MAX_LINE.
static int gz_line(gzFile g, char **buf, size_t *cap) {
  if (!*buf) {
    *cap = 4096;
    *buf = ps_xmalloc(*cap);
  }
  size_t n = 0;
  for (;;) {
    if (!gzgets(g, *buf + n, (int)(*cap - n))) return n > 0;
    n += strlen(*buf + n);
    if (n && (*buf)[n - 1] == '\n') {
      (*buf)[--n] = 0;
      if (n && (*buf)[n - 1] == '\r') (*buf)[--n] = 0;
      return 1;
    }
    if (n + 1 < *cap) return 1;  // last line, no newline
    if (*cap >= MAX_LINE) return -1;
    *cap *= 2;
    *buf = ps_xrealloc(*buf, *cap);
  }
}

int ps_proteins_tsv_each(const char *path, ps_protein_row_fn fn, void *ctx, ps_err_t *err) {
  errno = 0;
  gzFile g = gzopen(path, "rb");
  if (!g) return ps_err_set(err, errno ? -errno : PS_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : EIO));
  char *line = NULL;
  size_t cap = 0;
  uint64_t lineno = 0;
  int rc = 0, got;
  while ((got = gz_line(g, &line, &cap)) != 0) {
    lineno++;
    if (got < 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: longer than %d bytes", path, (unsigned long long)lineno, MAX_LINE);
      break;
    }
    if (lineno == 1 && !strncmp(line, "accession", 9)) continue;
    if (!*line || *line == '#') continue;
    char *col[5] = {"", "", "", "", ""};
    char *s = line;
    for (int c = 0; c < 5 && s; c++) {
      col[c] = s;
      s = strchr(s, '\t');
      if (s) *s++ = 0;
    }
    if (!*col[0]) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: empty accession", path, (unsigned long long)lineno);
      break;
    }
    ps_protein_row_t row = {col[0], col[1], col[2], col[3], col[4], lineno};
    if ((rc = fn(ctx, &row, err)) < 0) break;
    rc = 0;
  }
  if (!rc) {
    int ge;
    const char *m = gzerror(g, &ge);
    if (ge != Z_OK && ge != Z_STREAM_END)  // Z_BUF_ERROR: a truncated gzip stream
      rc = ps_err_set(err, ge == Z_BUF_ERROR ? PS_ETRUNC : PS_EFORMAT, "%s: after line %llu: %s%s", path, (unsigned long long)lineno,
                      ge == Z_BUF_ERROR ? "truncated gzip stream: " : "", m);
  }
  free(line);
  gzclose(g);
  return rc;
}
