// proteins_tsv.c — proteins.tsv rows over the common line reader (io.h). See proteins_tsv.h.
#include "proteins_tsv.h"

#include <string.h>

#include "io.h"

enum { MAX_LINE = 1 << 20 };

int ps_proteins_tsv_each(const char *path, ps_protein_row_fn fn, void *ctx, ps_err_t *err) {
  ps_lines_t *in;
  int rc = ps_lines_open(&in, path, MAX_LINE, err);
  if (rc < 0) return rc;
  char *line;
  size_t len;
  int got;
  while ((got = ps_lines_next(in, &line, &len, err)) > 0) {
    uint64_t lineno = ps_lines_lineno(in);
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
      got = ps_err_set(err, PS_EFORMAT, "%s: line %llu: empty accession", path, (unsigned long long)lineno);
      break;
    }
    ps_protein_row_t row = {col[0], col[1], col[2], col[3], col[4], lineno};
    if ((got = fn(ctx, &row, err)) < 0) break;
  }
  ps_lines_close(&in);
  return got < 0 ? got : 0;
}
