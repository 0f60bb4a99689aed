// fasta_check.h — checks a proteome FASTA (plain or gzip) before it is streamed: records with
// letters outside the ESM2 alphabet, no residues, too many residues or an id another record
// has either fail the proteome (the first problem, naming file, record, id and position) or are
// skipped and counted (policy SKIP); a file the FASTA reader cannot read on (truncated or
// corrupt gzip, data before the first '>', a header without an id, a byte that is no residue,
// binary data, a read error) always fails.
//
// Users: the reader's service mode (stages/reader) checks each proteome, then streams it through
// the ESM2 runner with the skipped record indexes (esm2_run_opts_t.skip_index) or through the
// embedding dataset with the skipped ids (reader_opts_t.skip_ids). Records are those of
// fasta.h's reader (same ids, same 0-based index), so the three agree.
//
// The letter, empty and long checks mirror the ESM2 runner (esm2_run.c / esm2_tokenize): an
// empty record is refused; a record over max_residues is truncated (counted) or a problem; only
// the residues that would be tokenized (the first max_residues) are checked against the alphabet
// (a table indexed by byte, < 0 = outside: esm2_config(m)->letter_id, or esm2_default_alphabet()
// without a model; lowercase, J, '*' are outside ESM2's, '-' and '.' inside).
//
// Duplicates: every record whose id another record also has is a problem, the first occurrence
// included (so skipping by index and skipping by id agree); policy FAIL names the second
// occurrence and the first's record. Found from a sorted array of 64-bit id hashes, confirmed by
// comparing the ids in a second read of the file (only when two hashes are equal).
//
// Cost: one read of the file; a second one when two id hashes repeat; locating bad letters on
// their file line reads the file once more at most (a second line reader moving forward only).
// Memory: the largest record, 8 bytes a record (the id hashes), the skip set; never the whole
// file. The path must be a file ("-" is refused: it is re-read).
#ifndef PS_FASTA_CHECK_H
#define PS_FASTA_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum { FASTA_CHECK_FAIL = 0, FASTA_CHECK_SKIP = 1 } fasta_check_policy_t;
// Same values as esm2.h's esm2_long_t and esm2_unknown_t (common/ does not include the engine).
typedef enum { FASTA_LONG_TRUNCATE = 0, FASTA_LONG_ERROR = 1 } fasta_long_t;
typedef enum { FASTA_UNKNOWN_ERROR = 0, FASTA_UNKNOWN_UNK = 1 } fasta_unknown_t;

typedef enum {
  FASTA_PROBLEM_LETTER = 0,   // a letter outside the alphabet (unknown = ERROR)
  FASTA_PROBLEM_EMPTY,        // a record without residues
  FASTA_PROBLEM_LONG,         // more residues than max_residues (long = ERROR)
  FASTA_PROBLEM_DUPLICATE,    // an id another record has
  // always fatal (the rest of the file cannot be trusted or read):
  FASTA_PROBLEM_NO_HEADER,    // sequence data before the first '>' header
  FASTA_PROBLEM_NO_ID,        // a '>' header without an id
  FASTA_PROBLEM_FORMAT,       // a byte that is no residue, a NUL, a control byte in an id, ...
  FASTA_PROBLEM_GZIP,         // truncated or corrupt gzip stream
  FASTA_PROBLEM_IO,           // cannot open or read the file
  FASTA_PROBLEM_KINDS
} fasta_problem_t;

// "letter", "empty", "long", "duplicate", "no-header", "no-id", "format", "gzip", "io".
const char *fasta_problem_name(int kind);

typedef struct fasta_check_opts {
  fasta_check_policy_t policy;   // FAIL (default) or SKIP records with a problem
  uint32_t max_residues;         // 0 = 1022 (ESM2's)
  fasta_long_t long_policy;      // TRUNCATE (default: counted, as ESM does) or ERROR
  fasta_unknown_t unknown;       // ERROR (default) or UNK (counted, ESM2 maps them to <unk>)
  const int8_t *letter_id;       // 256 entries, < 0 = outside the alphabet; NULL = no letter check
} fasta_check_opts_t;

typedef struct fasta_check_result {
  uint64_t records;              // records read (skipped ones included)
  uint64_t residues;             // their residues
  uint64_t truncated;            // records over max_residues that are kept truncated (TRUNCATE)
  uint64_t unknown;              // records with letters outside the alphabet kept (UNK)
  // SKIP: the skipped records, ascending by FASTA record index (0-based, = fasta_record_t.index
  // = esm2_item_t.fasta_index); parallel arrays of n_skipped entries, owned by the result.
  uint64_t n_skipped;
  uint64_t skipped[FASTA_PROBLEM_KINDS];  // per kind; a record counts once, under its own
                                          // problem (a duplicate that is also empty: empty)
  uint64_t *skip_index;
  char **skip_id;
  uint8_t *skip_kind;            // fasta_problem_t
  char **skip_msg;               // what is wrong, naming file, record, id and position
  // fasta_check returned < 0: the kind of the problem and its record (0-based; UINT64_MAX when
  // no record is concerned, e.g. the file cannot be opened).
  int fail_kind;                 // fasta_problem_t, -1 when it did not fail
  uint64_t fail_index;
} fasta_check_result_t;

// Check path. 0 = usable (res lists what to skip under SKIP), < 0 = the proteome fails: err
// names the file, the record (1-based), the id and the position (the residue and its file line,
// the length against the limit, the first record of a duplicate id, the last line read of a
// truncated gzip). res is always filled (counts so far); caller frees it with
// fasta_check_result_free.
int fasta_check(const char *path, const fasta_check_opts_t *opts, fasta_check_result_t *res, ps_err_t *err);
void fasta_check_result_free(fasta_check_result_t *res);

#endif
