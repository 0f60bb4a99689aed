// fasta.c — streaming FASTA reader over the common line reader (io.h: plain, gzip, stdin or
// memory). See fasta.h.
//
// Memory: the line reader's 64 KiB input buffer and current line, and the current record (id,
// description, sequence), each grown on demand: the largest record, never the whole file. A
// single line may not exceed FASTA_MAX_LINE (1 GiB).
#include "fasta.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

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
  ps_lines_t *lines;   // the line reader (file, stdin or memory)
  const char *path;    // its name, for messages
  uint64_t line;       // lines consumed so far
  // current line: borrowed from the line reader until the next read
  char *ln;
  size_t ln_len;
  int state;
  int fail_code;
  uint64_t header_line;
  // record being built
  char *id, *desc, *seq;
  size_t id_cap, desc_cap, seq_len, seq_cap;
  uint64_t index;
};

static fasta_reader_t *reader_new(ps_lines_t *lines) {
  fasta_reader_t *r = ps_xcalloc(1, sizeof *r);
  r->lines = lines;
  r->path = ps_lines_name(lines);
  return r;
}

int fasta_open(fasta_reader_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  ps_lines_t *lines;
  int rc = ps_lines_open(&lines, path, FASTA_MAX_LINE, err);
  if (rc < 0) return rc;
  *out = reader_new(lines);
  return 0;
}

void fasta_close(fasta_reader_t **rp) {
  if (!rp || !*rp) return;
  fasta_reader_t *r = *rp;
  ps_lines_close(&r->lines);
  free(r->id);
  free(r->desc);
  free(r->seq);
  free(r);
  *rp = NULL;
}

// Read one line into r->ln (without the newline, NUL-terminated). 1 = line, 0 = end, <0 = error.
// A NUL byte is an error here (binary data): the rest of the parser works on C strings.
static int read_line(fasta_reader_t *r, ps_err_t *err) {
  int rc = ps_lines_next(r->lines, &r->ln, &r->ln_len, err);
  if (rc <= 0) return rc;
  r->line = ps_lines_lineno(r->lines);
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
  fasta_reader_t *r = reader_new(ps_lines_open_mem(buf, len, "buffer", FASTA_MAX_LINE));
  int n = 0, rc;
  fasta_record_t rec;
  while ((rc = fasta_next(r, &rec, err)) > 0) {
    n++;
    if (cb && cb(&rec, ud)) break;
  }
  fasta_close(&r);
  return rc < 0 ? rc : n;
}
