// fasta.c — streaming FASTA reader over zlib (plain and gzip alike). See fasta.h.
#include "fasta.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#define FASTA_MAX_LINE ((size_t)1 << 30)

struct fasta_reader {
  gzFile gz;                   // NULL when reading from memory
  const unsigned char *mem;    // fasta_parse_buffer's input
  size_t mem_len, mem_pos;
  char *path;
  // input buffer
  unsigned char buf[1 << 16];
  size_t pos, len;
  int eof;
  uint64_t line;       // lines consumed so far
  // current line
  char *ln;
  size_t ln_len, ln_cap;
  int have_header;     // ln holds a header read ahead
  uint64_t header_line;
  // record being built
  char *id, *desc, *seq;
  size_t id_cap, desc_cap, seq_len, seq_cap;
  uint64_t index;
};

int fasta_open(fasta_reader_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  gzFile gz = !strcmp(path, "-") ? gzdopen(0, "rb") : gzopen(path, "rb");
  if (!gz) return ps_err_set(err, errno ? -errno : PS_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : EIO));
  gzbuffer(gz, 1 << 17);
  fasta_reader_t *r = ps_xcalloc(1, sizeof *r);
  r->gz = gz;
  r->path = ps_xstrdup(path);
  *out = r;
  return 0;
}

void fasta_close(fasta_reader_t **rp) {
  if (!rp || !*rp) return;
  fasta_reader_t *r = *rp;
  if (r->gz) gzclose(r->gz);
  free(r->path);
  free(r->ln);
  free(r->id);
  free(r->desc);
  free(r->seq);
  free(r);
  *rp = NULL;
}

// Read one line into r->ln (without the newline). 1 = line, 0 = end, <0 = error.
static int read_line(fasta_reader_t *r, ps_err_t *err) {
  r->ln_len = 0;
  int got = 0;
  for (;;) {
    if (r->pos == r->len) {
      if (r->eof) break;
      if (!r->gz) {  // memory input
        size_t n = r->mem_len - r->mem_pos;
        if (n > sizeof r->buf) n = sizeof r->buf;
        if (n == 0) {
          r->eof = 1;
          break;
        }
        memcpy(r->buf, r->mem + r->mem_pos, n);
        r->mem_pos += n;
        r->pos = 0;
        r->len = n;
        continue;
      }
      int n = gzread(r->gz, r->buf, sizeof r->buf);
      if (n < 0) {
        int zerr;
        const char *m = gzerror(r->gz, &zerr);
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu: %s", r->path, (unsigned long long)r->line + 1, m);
      }
      if (n == 0) {
        int zerr;
        const char *m = gzerror(r->gz, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END)
          return ps_err_set(err, PS_ETRUNC, "%s: line %llu: %s", r->path, (unsigned long long)r->line + 1, m);
        r->eof = 1;
        break;
      }
      r->pos = 0;
      r->len = (size_t)n;
    }
    unsigned char *s = r->buf + r->pos, *nl = memchr(s, '\n', r->len - r->pos);
    size_t take = nl ? (size_t)(nl - s) : r->len - r->pos;
    if (r->ln_len + take + 1 > r->ln_cap) {
      if (r->ln_len + take + 1 > FASTA_MAX_LINE)
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu: longer than 1 GiB", r->path, (unsigned long long)r->line + 1);
      size_t c = r->ln_cap ? r->ln_cap : 256;
      while (c < r->ln_len + take + 1) c *= 2;
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
  if (!got && r->eof) return 0;
  if (r->ln_len && r->ln[r->ln_len - 1] == '\r') r->ln_len--;
  r->ln[r->ln_len] = 0;
  r->line++;
  if (memchr(r->ln, 0, r->ln_len))
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: NUL byte (binary data?)", r->path, (unsigned long long)r->line);
  return 1;
}

static void put(char **dst, size_t *cap, const char *s, size_t n) {
  if (n + 1 > *cap) {
    *cap = n + 1 > 64 ? n + 1 : 64;
    *dst = ps_xrealloc(*dst, *cap);
  }
  memcpy(*dst, s, n);
  (*dst)[n] = 0;
}

static int take_header(fasta_reader_t *r, ps_err_t *err) {
  const char *h = r->ln + 1;
  while (*h == ' ' || *h == '\t') h++;
  size_t idl = strcspn(h, " \t");
  if (idl == 0) return ps_err_set(err, PS_EFORMAT, "%s: line %llu: header without an id", r->path, (unsigned long long)r->line);
  put(&r->id, &r->id_cap, h, idl);
  const char *d = h + idl;
  while (*d == ' ' || *d == '\t') d++;
  size_t dl = strlen(d);
  while (dl && (d[dl - 1] == ' ' || d[dl - 1] == '\t')) dl--;
  put(&r->desc, &r->desc_cap, d, dl);
  r->header_line = r->line;
  return 0;
}

// States: 0 = before the first header, 1 = id/desc hold the current header, 3 = the next
// header waits in r->ln (parsed on the next call, so returned strings stay valid), 2 = end.
int fasta_next(fasta_reader_t *r, fasta_record_t *rec, ps_err_t *err) {
  int rc;
  if (r->have_header == 2) return 0;
  if (r->have_header == 0) {  // skip blank lines, expect a header
    for (;;) {
      if ((rc = read_line(r, err)) <= 0) return rc;
      size_t k = strspn(r->ln, " \t");
      if (r->ln[k] == 0 || r->ln[k] == ';') continue;  // blank or old-style comment
      if (r->ln[0] != '>')
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu: sequence data before the first '>' header", r->path,
                          (unsigned long long)r->line);
      break;
    }
  }
  if ((rc = take_header(r, err)) < 0) return rc;
  r->have_header = 1;
  r->seq_len = 0;
  for (;;) {
    rc = read_line(r, err);
    if (rc < 0) return rc;
    if (rc == 0) {
      r->have_header = 2;
      break;
    }
    if (r->ln[0] == '>') {
      r->have_header = 3;
      break;
    }
    for (size_t i = 0; i < r->ln_len; i++) {
      unsigned char c = (unsigned char)r->ln[i];
      if (c == ' ' || c == '\t') continue;
      if (c < 33 || c > 126)
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu, column %zu: unexpected byte 0x%02x in sequence %s", r->path,
                          (unsigned long long)r->line, i + 1, c, r->id);
      if (r->seq_len + 2 > r->seq_cap) {
        r->seq_cap = r->seq_cap ? r->seq_cap * 2 : 1024;
        r->seq = ps_xrealloc(r->seq, r->seq_cap);
      }
      r->seq[r->seq_len++] = (char)c;
    }
  }
  if (!r->seq) {
    r->seq_cap = 16;
    r->seq = ps_xcalloc(1, r->seq_cap);
  }
  r->seq[r->seq_len] = 0;
  rec->id = r->id;
  rec->desc = r->desc;
  rec->seq = r->seq;
  rec->len = r->seq_len;
  rec->index = r->index++;
  rec->line = r->header_line;
  return 1;
}

int fasta_parse_buffer(const char *buf, size_t len, int (*cb)(const fasta_record_t *, void *), void *ud,
                       ps_err_t *err) {
  fasta_reader_t *r = ps_xcalloc(1, sizeof *r);
  r->path = ps_xstrdup("buffer");
  r->mem = (const unsigned char *)buf;
  r->mem_len = len;
  int n = 0, rc;
  fasta_record_t rec;
  while ((rc = fasta_next(r, &rec, err)) > 0) {
    n++;
    if (cb && cb(&rec, ud)) break;
  }
  fasta_close(&r);
  return rc < 0 ? rc : n;
}
