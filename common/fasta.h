// fasta.h — streaming FASTA reader, plain or gzip (detected from the magic bytes).
//
// id = first word of the header line (up to a space, tab, CR, VT or FF; a control byte in it is an
// error), description = the rest, trimmed (may be empty). Sequence lines are joined; blanks are
// dropped; letters are kept as written (case preserved);
// '*', '-' and '.' are kept too; any other byte is an error. Blank lines and ';' comment lines
// before the first header are skipped. Memory: the largest record (a line may not exceed 1 GiB),
// never the whole file. Errors name the file and the line (and column): sequence data before the
// first header, a header without an id, NUL or other binary bytes, a truncated or corrupt gzip
// stream. After an error every further fasta_next returns an error.
// Duplicate ids are not the parser's business: callers that need unique ids check them.
// A reader is used by one thread at a time.
#ifndef PS_FASTA_H
#define PS_FASTA_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct fasta_record {
  const char *id;     // borrowed until the next call
  const char *desc;   // borrowed until the next call ("" when none)
  const char *seq;    // borrowed until the next call, NUL-terminated
  size_t len;         // sequence length
  uint64_t index;     // 0-based record number
  uint64_t line;      // 1-based line of the header
} fasta_record_t;

typedef struct fasta_reader fasta_reader_t;

// Open path ("-" = stdin, which stays open). 0 or <0 with err. Caller closes with fasta_close.
int fasta_open(fasta_reader_t **out, const char *path, ps_err_t *err);
// 1 = record, 0 = end, <0 = error (e.g. sequence before the first header, empty id, binary junk).
int fasta_next(fasta_reader_t *r, fasta_record_t *rec, ps_err_t *err);
// Close and free; accepts NULL and *r == NULL; sets *r to NULL.
void fasta_close(fasta_reader_t **r);

// Parse a whole in-memory buffer (fuzzing, tests): calls cb for each record; stops at the first
// error or when cb returns non-zero. Returns number of records or <0. The record passed to cb is
// borrowed for the duration of the call; the file name in messages is "buffer".
int fasta_parse_buffer(const char *buf, size_t len, int (*cb)(const fasta_record_t *, void *),
                       void *ud, ps_err_t *err);

#endif
