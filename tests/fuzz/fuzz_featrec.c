// fuzz_featrec — arbitrary bytes as a feature-store record (common/featstore.h) through
// fs_feat_decode, the first byte choosing the store's top_n. It must decode or return an error
// naming the record and an offset, never crash; a decoded record must re-encode to the same bytes
// (the format has one encoding) with its top list within top_n.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "featstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint32_t top_n = data[0] % 32;
  fs_feat_t f;
  fs_feat_init(&f, top_n);
  ps_err_t err = {0};
  int rc = fs_feat_decode(&f, top_n, data + 1, size - 1, "fuzz", &err);
  if (rc < 0) {
    if (!strstr(err.msg, "fuzz")) abort();
  } else {
    if (f.n_top > top_n) abort();
    uint8_t *buf = NULL;
    size_t cap = 0, n = fs_feat_encode(&f, &buf, &cap);
    if (n != size - 1 || memcmp(buf, data + 1, n)) abort();
    free(buf);
  }
  fs_feat_clear(&f);
  return 0;
}
