// fuzz_proteins_tsv — arbitrary bytes (plain, or gzip when they start with its magic) as a
// proteins.tsv file through ps_proteins_tsv_each, via a memfd: it must return 0 or an error naming
// the file, never crash; every row it hands out has a non-empty accession, columns free of tabs and
// line breaks, and increasing line numbers.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_memfd.h"
#include "proteins_tsv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *ctx, const ps_protein_row_t *r, ps_err_t *err) {
  (void)err;
  uint64_t *last = ctx;
  const char *cols[5] = {r->accession, r->gene, r->name, r->pfam, r->length};
  for (int c = 0; c < 5; c++) {
    if (!cols[c]) abort();
    if (strpbrk(cols[c], "\t\n")) abort();
  }
  if (!r->accession[0] || r->line <= *last) abort();
  *last = r->line;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  int fd = fuzz_memfd(data, size, "proteins.tsv", path, sizeof path);
  if (fd < 0) return 0;
  uint64_t last = 0;
  ps_err_t err = {0, {0}};
  int rc = ps_proteins_tsv_each(path, check, &last, &err);
  if (rc < 0 && (err.code != rc || !strstr(err.msg, path))) abort();
  close(fd);
  return 0;
}
