// fuzz_fasta_check — arbitrary bytes through fasta_check, via a memfd. Byte 0 picks the options
// (bit 0: policy SKIP, bit 1: long = ERROR, bit 2: unknown = UNK, bits 3-7: max_residues 1..32),
// the rest is the file (plain, or gzip when it starts with the magic). It must never crash;
// errors carry the code and name the file; and, for plain input, the result must equal an
// oracle built from fasta_parse_buffer's records: the skipped records are exactly those that are
// empty, too long (ERROR), hold a letter outside the alphabet among their first max_residues
// residues (ERROR), or share their id with another record; FAIL succeeds only when no record is
// such; a file the parser refuses fails under SKIP with a fatal kind.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fasta.h"
#include "fasta_check.h"
#include "fuzz_memfd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const fasta_check_opts_t *o;
  int8_t *alpha;
  char **ids;
  uint8_t *bad;   // the record's own problem (empty, long, letter)
  size_t n, cap;
} oracle_t;

static int collect(const fasta_record_t *r, void *ud) {
  oracle_t *s = ud;
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
    s->bad = realloc(s->bad, s->cap);
  }
  int bad = r->len == 0 || (r->len > s->o->max_residues && s->o->long_policy == FASTA_LONG_ERROR);
  for (size_t i = 0; !bad && i < r->len && i < s->o->max_residues; i++)
    if (s->alpha[(unsigned char)r->seq[i]] < 0 && s->o->unknown == FASTA_UNKNOWN_ERROR) bad = 1;
  s->ids[s->n] = strdup(r->id);
  s->bad[s->n++] = (uint8_t)bad;
  return 0;
}

// The records that should be skipped, as a 0/1 array (caller frees); n_bad of them.
static uint8_t *expected(oracle_t *s, size_t *n_bad) {
  uint8_t *e = calloc(s->n + 1, 1);
  *n_bad = 0;
  for (size_t i = 0; i < s->n; i++) {
    e[i] = s->bad[i];
    for (size_t j = 0; j < s->n && !e[i]; j++)
      if (j != i && !strcmp(s->ids[i], s->ids[j])) e[i] = 1;
    *n_bad += e[i];
  }
  return e;
}

static void check_result(const fasta_check_result_t *res, const char *path) {
  uint64_t sum = 0;
  for (int k = 0; k < FASTA_PROBLEM_KINDS; k++) sum += res->skipped[k];
  if (sum != res->n_skipped) abort();
  for (uint64_t i = 0; i < res->n_skipped; i++) {
    if (i && res->skip_index[i] <= res->skip_index[i - 1]) abort();
    if (res->skip_index[i] >= res->records || res->skip_kind[i] > FASTA_PROBLEM_DUPLICATE) abort();
    char want[128];
    snprintf(want, sizeof want, ": record %llu (id '", (unsigned long long)res->skip_index[i] + 1);
    if (!strstr(res->skip_msg[i], path) || !strstr(res->skip_msg[i], want) || !strstr(res->skip_msg[i], res->skip_id[i]))
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  fasta_check_opts_t o = {0};
  o.policy = data[0] & 1 ? FASTA_CHECK_SKIP : FASTA_CHECK_FAIL;
  o.long_policy = data[0] & 2 ? FASTA_LONG_ERROR : FASTA_LONG_TRUNCATE;
  o.unknown = data[0] & 4 ? FASTA_UNKNOWN_UNK : FASTA_UNKNOWN_ERROR;
  o.max_residues = (uint32_t)(data[0] >> 3) + 1;
  int8_t alpha[256];
  memset(alpha, -1, sizeof alpha);
  for (const char *p = "ACDEFGHIKLMNPQRSTVWYXBUZO.-"; *p; p++) alpha[(unsigned char)*p] = 1;
  o.letter_id = alpha;
  data++;
  size--;
  char path[64];
  int fd = fuzz_memfd(data, size, "proteome.fasta", path, sizeof path);
  if (fd < 0) return 0;
  fasta_check_result_t res;
  ps_err_t err = {0, {0}};
  int rc = fasta_check(path, &o, &res, &err);
  close(fd);
  if (rc < 0 && (err.code != rc || !strstr(err.msg, path) || res.fail_kind < 0 || res.fail_kind >= FASTA_PROBLEM_KINDS))
    abort();
  if (rc == 0) check_result(&res, path);
  if (o.policy == FASTA_CHECK_FAIL && res.n_skipped) abort();
  if (size < 2 || data[0] != 0x1f || data[1] != 0x8b) {  // plain: compare with the oracle
    oracle_t s = {.o = &o, .alpha = alpha};
    ps_err_t perr = {0, {0}};
    int n = fasta_parse_buffer((const char *)data, size, collect, &s, &perr);
    size_t n_bad;
    uint8_t *e = expected(&s, &n_bad);
    if (n < 0 && o.policy == FASTA_CHECK_SKIP &&
        (rc >= 0 || res.fail_kind < FASTA_PROBLEM_NO_HEADER || res.fail_kind > FASTA_PROBLEM_FORMAT))
      abort();
    if (n < 0 && o.policy == FASTA_CHECK_FAIL && rc >= 0) abort();
    if (n >= 0 && o.policy == FASTA_CHECK_FAIL && (rc == 0) != (n_bad == 0)) abort();
    if (n >= 0 && o.policy == FASTA_CHECK_SKIP) {
      if (rc < 0 || res.records != (uint64_t)n || res.n_skipped != n_bad) abort();
      for (uint64_t i = 0; i < res.n_skipped; i++)
        if (!e[res.skip_index[i]] || strcmp(res.skip_id[i], s.ids[res.skip_index[i]])) abort();
    }
    for (size_t i = 0; i < s.n; i++) free(s.ids[i]);
    free(s.ids);
    free(s.bad);
    free(e);
  }
  fasta_check_result_free(&res);
  return 0;
}
