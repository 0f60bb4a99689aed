// fasta.c — streaming FASTA reader over zlib (plain and gzip alike). See fasta.h.
//
// Memory: a 64 KiB input buffer, the current line and the current record (id, description,
// sequence), each grown on demand: the largest record, never the whole file. A single line may
// not exceed FASTA_MAX_LINE (1 GiB).
#include "fasta.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FASTA_MAX_LINE ((size_t)1 << 30)

// Reader states (fasta_reader.state).
enum {
  ST_START = 0,   // before the first header
  ST_IN_RECORD,   // id/desc hold the current header
  ST_END,         // end of input reached
  ST_HEADER_NEXT, // the next header waits in r->ln (parsed on the next call, so returned strings stay valid)
  ST_FAILED,      // an error was returned; it is returned again
};

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
  int state;
  int fail_code;
  uint64_t header_line;
  // record being built
  char *id, *desc, *seq;
  size_t id_cap, desc_cap, seq_len, seq_cap;
  uint64_t index;
};

int fasta_open(fasta_reader_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  gzFile gz;
  errno = 0;
  if (!strcmp(path, "-")) {
    int fd = dup(0);  // gzclose closes its descriptor: never close the caller's stdin
    if (fd < 0) return ps_err_set(err, -errno, "stdin: cannot dup: %s", strerror(errno));
    if (!(gz = gzdopen(fd, "rb"))) close(fd);
  } else {
    gz = gzopen(path, "rb");
  }
  if (!gz) {
    int e = errno ? errno : ENOMEM;
    return ps_err_set(err, -e, "%s: cannot open: %s", path, strerror(e));
  }
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

// A zlib error as a return code and message.
static int gz_fail(fasta_reader_t *r, ps_err_t *err) {
  int zerr = Z_OK;
  const char *m = gzerror(r->gz, &zerr);
  int code = PS_EFORMAT;
  if (zerr == Z_ERRNO) {
    int e = errno ? errno : EIO;
    return ps_err_set(err, -e, "%s: line %llu: read error: %s", r->path, (unsigned long long)r->line + 1, strerror(e));
  }
  if (zerr == Z_BUF_ERROR) code = PS_ETRUNC;  // "unexpected end of file": truncated gzip stream
  else if (zerr == Z_MEM_ERROR) code = PS_ENOMEM;
  if (!m || !*m) m = "gzip error";
  size_t pl = strlen(r->path);  // zlib prefixes its message with the path: drop it
  if (!strncmp(m, r->path, pl) && m[pl] == ':' && m[pl + 1] == ' ') m += pl + 2;
  return ps_err_set(err, code, "%s: line %llu: %s%s", r->path, (unsigned long long)r->line + 1, m,
                    code == PS_ETRUNC ? " (truncated gzip file)" : " (corrupt gzip data)");
}

// Read one line into r->ln (without the newline, NUL-terminated). 1 = line, 0 = end, <0 = error.
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
      errno = 0;
      int n = gzread(r->gz, r->buf, sizeof r->buf);
      if (n < 0) return gz_fail(r, err);
      if (n == 0) {
        int zerr = Z_OK;
        gzerror(r->gz, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END) return gz_fail(r, err);
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
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu: longer than 1 GiB (not a FASTA file?)", r->path,
                          (unsigned long long)r->line + 1);
      size_t c = r->ln_cap ? r->ln_cap : 256;
      while (c < r->ln_len + take + 1) c *= 2;
      if (c > FASTA_MAX_LINE) c = FASTA_MAX_LINE;
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
  const char *z = memchr(r->ln, 0, r->ln_len);
  if (z)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu, column %zu: NUL byte (binary data, not FASTA text)", r->path,
                      (unsigned long long)r->line, (size_t)(z - r->ln) + 1);
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

#define BLANKS " \t\r\v\f"
static int is_blank(char c) { return c && strchr(BLANKS, c) != NULL; }

// id = first word (up to any blank), desc = the rest with blanks trimmed. Control bytes in the
// id are an error (they would corrupt logs and ids downstream); the description keeps them
// (NCBI joins deflines with ^A).
static int take_header(fasta_reader_t *r, ps_err_t *err) {
  const char *h = r->ln + 1;
  while (is_blank(*h)) h++;
  size_t idl = strcspn(h, BLANKS);
  if (idl == 0)
    return ps_err_set(err, PS_EFORMAT, "%s: line %llu: header '>' without an id", r->path, (unsigned long long)r->line);
  for (size_t i = 0; i < idl; i++)
    if ((unsigned char)h[i] < 32 || h[i] == 127)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu, column %zu: control byte 0x%02x in the id", r->path,
                        (unsigned long long)r->line, (size_t)(h - r->ln) + i + 1, (unsigned char)h[i]);
  put(&r->id, &r->id_cap, h, idl);
  const char *d = h + idl;
  while (is_blank(*d)) d++;
  size_t dl = strlen(d);
  while (dl && is_blank(d[dl - 1])) dl--;
  put(&r->desc, &r->desc_cap, d, dl);
  r->header_line = r->line;
  return 0;
}

// Residue characters: letters (any case, kept as written), '*' (stop), '-' and '.' (gaps).
static int is_residue(unsigned char c) { return isalpha(c) || c == '*' || c == '-' || c == '.'; }

static int next_record(fasta_reader_t *r, fasta_record_t *rec, ps_err_t *err) {
  int rc;
  if (r->state == ST_END) return 0;
  if (r->state == ST_START) {  // skip blank lines and ';' comments, expect a header
    for (;;) {
      if ((rc = read_line(r, err)) <= 0) {
        if (rc == 0) r->state = ST_END;
        return rc;
      }
      size_t k = strspn(r->ln, " \t");
      if (r->ln[k] == 0 || r->ln[k] == ';') continue;
      if (r->ln[0] != '>')
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu: sequence data before the first '>' header (not a FASTA file?)",
                          r->path, (unsigned long long)r->line);
      break;
    }
  }
  if ((rc = take_header(r, err)) < 0) return rc;
  r->state = ST_IN_RECORD;
  r->seq_len = 0;
  for (;;) {
    rc = read_line(r, err);
    if (rc < 0) return rc;
    if (rc == 0) {
      r->state = ST_END;
      break;
    }
    if (r->ln[0] == '>') {
      r->state = ST_HEADER_NEXT;
      break;
    }
    for (size_t i = 0; i < r->ln_len; i++) {
      unsigned char c = (unsigned char)r->ln[i];
      if (is_blank((char)c)) continue;
      if (!is_residue(c)) {
        if (c >= 33 && c <= 126)
          return ps_err_set(err, PS_EFORMAT, "%s: line %llu, column %zu: unexpected character '%c' in sequence %s",
                            r->path, (unsigned long long)r->line, i + 1, c, r->id);
        return ps_err_set(err, PS_EFORMAT, "%s: line %llu, column %zu: unexpected byte 0x%02x in sequence %s (binary data?)",
                          r->path, (unsigned long long)r->line, i + 1, c, r->id);
      }
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

int fasta_next(fasta_reader_t *r, fasta_record_t *rec, ps_err_t *err) {
  memset(rec, 0, sizeof *rec);
  if (r->state == ST_FAILED)
    return ps_err_set(err, r->fail_code, "%s: reading after an earlier error (line %llu)", r->path,
                      (unsigned long long)r->line);
  int rc = next_record(r, rec, err);
  if (rc < 0) {
    r->state = ST_FAILED;
    r->fail_code = rc;
  }
  return rc;
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
