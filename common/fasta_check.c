// fasta_check.c — a proteome FASTA checked in one streaming pass over fasta.h's reader: each
// record's own problems (empty, too long, a letter outside the alphabet) as it is read, its id
// hash kept for the duplicate check (sorted at the end, confirmed by a second read when two
// hashes repeat), bad letters located on their file line by a second line reader. See
// fasta_check.h.
#include "fasta_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fasta.h"
#include "hash.h"
#include "io.h"

#define MSG_CAP 1024

typedef struct skip_ent {
  uint64_t index;
  char *id;
  int kind;
  char *msg;
} skip_ent_t;

typedef struct check {
  const char *path;
  fasta_check_opts_t o;
  fasta_check_result_t *res;
  uint64_t *hash;               // id hashes of records 0 .. n_hash-1 (8 bytes a record)
  size_t n_hash, cap_hash;
  skip_ent_t *ents;             // SKIP: records with a problem
  size_t n_ents, cap_ents;
  ps_lines_t *loc;              // the locator (second line reader), opened on the first bad letter
  int loc_lost;
} check_t;

const char *fasta_problem_name(int kind) {
  static const char *const names[FASTA_PROBLEM_KINDS] = {"letter", "empty",  "long",   "duplicate", "no-header",
                                                         "no-id",  "format", "gzip",   "io"};
  return kind >= 0 && kind < FASTA_PROBLEM_KINDS ? names[kind] : "none";
}

void fasta_check_result_free(fasta_check_result_t *res) {
  if (!res) return;
  for (uint64_t i = 0; i < res->n_skipped; i++) {
    free(res->skip_id[i]);
    free(res->skip_msg[i]);
  }
  free(res->skip_index);
  free(res->skip_id);
  free(res->skip_kind);
  free(res->skip_msg);
  memset(res, 0, sizeof *res);
  res->fail_kind = -1;
}

static void add_ent(check_t *c, uint64_t index, const char *id, int kind, const char *msg) {
  if (c->n_ents == c->cap_ents) {
    c->cap_ents = c->cap_ents ? c->cap_ents * 2 : 64;
    c->ents = ps_xrealloc(c->ents, c->cap_ents * sizeof *c->ents);
  }
  c->ents[c->n_ents++] = (skip_ent_t){index, ps_xstrdup(id), kind, ps_xstrdup(msg)};
}

// ---- locating a residue on its file line ---------------------------------------------------------

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f'; }

// File line and column of residue pos (1-based) of the record whose header is on line hdr. The
// locator moves forward only (problems are met in file order), reopening when asked for an
// earlier record; if the file cannot be followed the header line is given (column 0).
static void locate(check_t *c, uint64_t hdr, size_t pos, uint64_t *line, size_t *col) {
  *line = hdr;
  *col = 0;
  if (c->loc_lost) return;
  if (c->loc && ps_lines_lineno(c->loc) >= hdr) ps_lines_close(&c->loc);
  if (!c->loc && ps_lines_open(&c->loc, c->path, (size_t)1 << 30, NULL) < 0) {
    c->loc_lost = 1;
    return;
  }
  char *ln;
  size_t n, seen = 0;
  while (ps_lines_lineno(c->loc) < hdr)
    if (ps_lines_next(c->loc, &ln, &n, NULL) <= 0) goto lost;
  while (ps_lines_next(c->loc, &ln, &n, NULL) > 0) {
    for (size_t i = 0; i < n; i++)
      if (!is_blank(ln[i]) && ++seen == pos) {
        *line = ps_lines_lineno(c->loc);
        *col = i + 1;
        return;
      }
  }
lost:
  ps_lines_close(&c->loc);
  c->loc_lost = 1;
}

// ---- one record's own problems ---------------------------------------------------------------

// Length of what snprintf wrote into a MSG_CAP buffer (its return value may exceed it).
static int clamp(int k) { return k < 0 ? 0 : k >= MSG_CAP ? MSG_CAP - 1 : k; }

// "FILE: record N (id 'ID'), line L" into msg; returns its length.
static int where(const check_t *c, const fasta_record_t *rec, uint64_t line, char *msg) {
  return clamp(snprintf(msg, MSG_CAP, "%s: record %llu (id '%s'), line %llu", c->path,
                        (unsigned long long)rec->index + 1, rec->id, (unsigned long long)line));
}

// The record's first problem (kind, message in msg) or -1. Counts truncated / unknown records.
static int record_problem(check_t *c, const fasta_record_t *rec, char *msg) {
  uint32_t max = c->o.max_residues;
  if (rec->len == 0) {
    int k = where(c, rec, rec->line, msg);
    snprintf(msg + k, MSG_CAP - (size_t)k, ": empty sequence (no residues)");
    return FASTA_PROBLEM_EMPTY;
  }
  if (rec->len > max && c->o.long_policy == FASTA_LONG_ERROR) {
    int k = where(c, rec, rec->line, msg);
    snprintf(msg + k, MSG_CAP - (size_t)k,
             ": %zu residues, more than max-residues %u (long=truncate keeps the first %u, as ESM does)", rec->len,
             max, max);
    return FASTA_PROBLEM_LONG;
  }
  int unknown = 0;
  if (c->o.letter_id) {
    size_t n = rec->len < max ? rec->len : max;  // what the tokenizer sees
    for (size_t i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)rec->seq[i];
      if (c->o.letter_id[ch] >= 0) continue;
      if (c->o.unknown == FASTA_UNKNOWN_UNK) {
        unknown = 1;
        break;
      }
      uint64_t line;
      size_t col;
      locate(c, rec->line, i + 1, &line, &col);
      int k = where(c, rec, line, msg);
      if (col) k = clamp(k + snprintf(msg + k, MSG_CAP - (size_t)k, ", column %zu", col));
      snprintf(msg + k, MSG_CAP - (size_t)k,
               ": letter '%c' at residue %zu is not in the ESM2 alphabet (unknown=unk maps it to <unk>)", ch, i + 1);
      return FASTA_PROBLEM_LETTER;
    }
  }
  c->res->unknown += (uint64_t)unknown;
  c->res->truncated += rec->len > max;
  return -1;
}

// ---- duplicates ------------------------------------------------------------------------------

typedef struct dup_ent {
  uint64_t index, line;
  char *id;
} dup_ent_t;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_dup(const void *a, const void *b) {
  const dup_ent_t *x = a, *y = b;
  int s = strcmp(x->id, y->id);
  if (s) return s;
  return x->index < y->index ? -1 : x->index > y->index;
}

// Records 0 .. n_hash-1 whose id another of them has: sorted by (id, index) into *out (ids
// owned), *n_out of them. The hashes that repeat are the candidates; a second read of the file
// compares the candidates' ids. 0 or <0 with err.
static int find_duplicates(check_t *c, dup_ent_t **out, size_t *n_out, ps_err_t *err) {
  *out = NULL;
  *n_out = 0;
  if (c->n_hash) qsort(c->hash, c->n_hash, sizeof *c->hash, cmp_u64);
  size_t n_cand = 0;  // the repeated hashes, compacted to the front
  for (size_t i = 1; i < c->n_hash; i++)
    if (c->hash[i] == c->hash[i - 1] && (n_cand == 0 || c->hash[n_cand - 1] != c->hash[i])) c->hash[n_cand++] = c->hash[i];
  if (!n_cand) return 0;
  fasta_reader_t *f = NULL;
  int rc = fasta_open(&f, c->path, err);
  if (rc < 0) return rc;
  dup_ent_t *d = NULL;
  size_t n = 0, cap = 0;
  fasta_record_t rec;
  while ((rc = fasta_next(f, &rec, err)) > 0 && rec.index < c->n_hash) {
    uint64_t h = ps_fnv1a64(rec.id);
    if (!bsearch(&h, c->hash, n_cand, sizeof h, cmp_u64)) continue;
    if (n == cap) d = ps_xrealloc(d, (cap = cap ? cap * 2 : 16) * sizeof *d);
    d[n++] = (dup_ent_t){rec.index, rec.line, ps_xstrdup(rec.id)};
  }
  fasta_close(&f);
  if (rc < 0) {
    for (size_t i = 0; i < n; i++) free(d[i].id);
    free(d);
    return ps_err_prefix(err, "re-reading for duplicate ids: ");
  }
  if (n) qsort(d, n, sizeof *d, cmp_dup);
  size_t k = 0;  // keep the members of groups of >= 2 equal ids
  for (size_t i = 0; i < n; i++) {
    int dup = (i > 0 && !strcmp(d[i].id, d[i - 1].id)) || (i + 1 < n && !strcmp(d[i].id, d[i + 1].id));
    if (dup) d[k++] = d[i];
    else free(d[i].id);
  }
  *out = d;
  *n_out = k;
  return 0;
}

static void dup_msg(const check_t *c, const dup_ent_t *e, const dup_ent_t *other, int is_first, char *msg) {
  snprintf(msg, MSG_CAP, "%s: record %llu (id '%s'), line %llu: duplicate id, %s record %llu (line %llu)", c->path,
           (unsigned long long)e->index + 1, e->id, (unsigned long long)e->line,
           is_first ? "again in" : "first in", (unsigned long long)other->index + 1,
           (unsigned long long)other->line);
}

// ---- the result --------------------------------------------------------------------------------

static int cmp_ent(const void *a, const void *b) {
  const skip_ent_t *x = a, *y = b;
  if (x->index != y->index) return x->index < y->index ? -1 : 1;
  return (x->kind == FASTA_PROBLEM_DUPLICATE) - (y->kind == FASTA_PROBLEM_DUPLICATE);  // own problem first
}

// SKIP: the entries sorted by index, one per record (its own problem before a duplicate), moved
// into the result's arrays.
static void fill_skips(check_t *c) {
  fasta_check_result_t *res = c->res;
  if (c->n_ents) qsort(c->ents, c->n_ents, sizeof *c->ents, cmp_ent);
  size_t n = c->n_ents ? c->n_ents : 1;
  res->skip_index = ps_xmalloc(n * sizeof *res->skip_index);
  res->skip_id = ps_xmalloc(n * sizeof *res->skip_id);
  res->skip_kind = ps_xmalloc(n);
  res->skip_msg = ps_xmalloc(n * sizeof *res->skip_msg);
  for (size_t i = 0; i < c->n_ents; i++) {
    skip_ent_t *e = &c->ents[i];
    if (res->n_skipped && res->skip_index[res->n_skipped - 1] == e->index) {
      free(e->id);
      free(e->msg);
      continue;
    }
    uint64_t k = res->n_skipped++;
    res->skip_index[k] = e->index;
    res->skip_id[k] = e->id;
    res->skip_kind[k] = (uint8_t)e->kind;
    res->skip_msg[k] = e->msg;
    res->skipped[e->kind]++;
  }
  c->n_ents = 0;
}

// The kind of a FASTA reader error (its messages are fasta.c's and io.c's).
static int read_error_kind(const ps_err_t *e) {
  if (e->code == PS_ETRUNC || strstr(e->msg, "(corrupt gzip data)")) return FASTA_PROBLEM_GZIP;
  if (e->code > PS_EFORMAT && e->code < 0) return FASTA_PROBLEM_IO;  // -errno
  if (strstr(e->msg, "before the first '>'")) return FASTA_PROBLEM_NO_HEADER;
  if (strstr(e->msg, "without an id")) return FASTA_PROBLEM_NO_ID;
  return FASTA_PROBLEM_FORMAT;
}

// The reader failed after n complete records: name the record and, for gzip, the last line read.
static int read_failed(check_t *c, uint64_t n, const char *last_id, ps_err_t *err) {
  fasta_check_result_t *res = c->res;
  res->fail_kind = read_error_kind(err);
  res->fail_index = n;
  unsigned long long line = 0;
  const char *p = strstr(err->msg, ": line ");
  if (res->fail_kind == FASTA_PROBLEM_GZIP && p && sscanf(p, ": line %llu", &line) == 1 && line > 0) {
    char tail[320];
    if (last_id)
      snprintf(tail, sizeof tail, "; the last line read is %llu, after record %llu (id '%s')", line - 1,
               (unsigned long long)n, last_id);
    else
      snprintf(tail, sizeof tail, "; the last line read is %llu, before any complete record", line - 1);
    size_t l = strlen(err->msg);
    snprintf(err->msg + l, sizeof err->msg - l, "%s", tail);
    return err->code;
  }
  size_t l = strlen(err->msg);
  snprintf(err->msg + l, sizeof err->msg - l, " (record %llu)", (unsigned long long)n + 1);
  return err->code;
}

int fasta_check(const char *path, const fasta_check_opts_t *opts, fasta_check_result_t *res, ps_err_t *err) {
  memset(res, 0, sizeof *res);
  res->fail_kind = -1;
  res->fail_index = UINT64_MAX;
  if (!strcmp(path, "-")) {
    res->fail_kind = FASTA_PROBLEM_IO;
    return ps_err_set(err, PS_ECONFIG, "fasta check: stdin cannot be checked (it is read twice): give a file");
  }
  check_t c = {.path = path, .o = *opts, .res = res};
  if (!c.o.max_residues) c.o.max_residues = 1022;
  fasta_reader_t *f = NULL;
  int rc = fasta_open(&f, path, err);
  if (rc < 0) {
    res->fail_kind = FASTA_PROBLEM_IO;
    return rc;
  }
  char msg[MSG_CAP], first_msg[MSG_CAP] = "", *last_id = NULL;
  int first_kind = -1;  // FAIL: the first record with its own problem stops the read
  uint64_t first_index = UINT64_MAX;
  fasta_record_t rec;
  while ((rc = fasta_next(f, &rec, err)) > 0) {
    res->records++;
    res->residues += rec.len;
    int kind = record_problem(&c, &rec, msg);
    if (kind >= 0 && c.o.policy == FASTA_CHECK_FAIL) {
      first_kind = kind;
      first_index = rec.index;
      memcpy(first_msg, msg, sizeof msg);
      break;
    }
    if (kind >= 0) add_ent(&c, rec.index, rec.id, kind, msg);
    if (c.n_hash == c.cap_hash) {
      c.cap_hash = c.cap_hash ? c.cap_hash + c.cap_hash / 2 : 1024;
      c.hash = ps_xrealloc(c.hash, c.cap_hash * sizeof *c.hash);
    }
    c.hash[c.n_hash++] = ps_fnv1a64(rec.id);
    free(last_id);
    last_id = ps_xstrdup(rec.id);
  }
  fasta_close(&f);
  ps_lines_close(&c.loc);
  if (rc < 0) {
    rc = read_failed(&c, res->records, last_id, err);
    goto out;
  }
  dup_ent_t *d;
  size_t nd;
  if ((rc = find_duplicates(&c, &d, &nd, err)) < 0) {
    res->fail_kind = FASTA_PROBLEM_IO;
    goto out;
  }
  if (c.o.policy == FASTA_CHECK_FAIL) {
    // the earliest second occurrence of an id, if it comes before the first record's own problem
    size_t best = SIZE_MAX;
    for (size_t i = 1; i < nd; i++)
      if (!strcmp(d[i].id, d[i - 1].id) && (best == SIZE_MAX || d[i].index < d[best].index)) best = i;
    if (best != SIZE_MAX && d[best].index < first_index) {
      size_t g = best;
      while (g > 0 && !strcmp(d[g - 1].id, d[best].id)) g--;
      dup_msg(&c, &d[best], &d[g], 0, first_msg);
      first_kind = FASTA_PROBLEM_DUPLICATE;
      first_index = d[best].index;
    }
  } else {
    for (size_t i = 0; i < nd; i++) {
      int is_first = i == 0 || strcmp(d[i].id, d[i - 1].id);
      size_t other = i;  // the first occurrence names the next, later ones the first
      if (is_first) other = i + 1;
      else
        while (other > 0 && !strcmp(d[other - 1].id, d[i].id)) other--;
      dup_msg(&c, &d[i], &d[other], is_first, msg);
      add_ent(&c, d[i].index, d[i].id, FASTA_PROBLEM_DUPLICATE, msg);
    }
    fill_skips(&c);
  }
  for (size_t i = 0; i < nd; i++) free(d[i].id);
  free(d);
  if (first_kind >= 0) {
    res->fail_kind = first_kind;
    res->fail_index = first_index;
    rc = ps_err_set(err, first_kind == FASTA_PROBLEM_LONG ? PS_EDIM : PS_EFORMAT, "%s", first_msg);
  }
out:
  for (size_t i = 0; i < c.n_ents; i++) {
    free(c.ents[i].id);
    free(c.ents[i].msg);
  }
  free(c.ents);
  free(c.hash);
  free(last_id);
  return rc < 0 ? rc : 0;
}
