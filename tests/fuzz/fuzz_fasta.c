// fuzz_fasta — arbitrary bytes as a FASTA file through fasta_parse_buffer: it must return records
// or an error message, never crash, and every record it returns must be well formed (non-empty
// id without blanks, desc trimmed, seq of exactly len residue characters, increasing lines).
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fasta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  uint64_t n, last_line;
} state_t;

static int check(const fasta_record_t *r, void *ud) {
  state_t *st = ud;
  if (!r->id || !r->desc || !r->seq) abort();
  if (!r->id[0]) abort();
  for (const char *p = r->id; *p; p++)
    if ((unsigned char)*p <= 32 || *p == 127) abort();
  size_t dl = strlen(r->desc);
  if (dl && (isspace((unsigned char)r->desc[0]) || isspace((unsigned char)r->desc[dl - 1]))) abort();
  if (strlen(r->seq) != r->len) abort();
  for (size_t i = 0; i < r->len; i++) {
    unsigned char c = (unsigned char)r->seq[i];
    if (!isalpha(c) && c != '*' && c != '-' && c != '.') abort();
  }
  if (r->index != st->n || (st->n && r->line <= st->last_line) || r->line == 0) abort();
  st->n++;
  st->last_line = r->line;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  state_t st = {0, 0};
  ps_err_t err = {0, {0}};
  int n = fasta_parse_buffer((const char *)data, size, check, &st, &err);
  if (n >= 0 && (uint64_t)n != st.n) abort();
  if (n < 0 && (err.code != n || !strstr(err.msg, "buffer: line "))) abort();
  return 0;
}
