// fuzz_rcode — arbitrary bytes as a feature store's residue code record (featstore.h
// fs_rcode_decode). It must decode or return an error naming the record and an offset, never
// crash; a decoded record has entries ascending by (feature, pos) inside its length and re-encodes
// to the same bytes (the format has one encoding).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "featstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fs_rcode_t rc;
  void *owned = NULL;
  ps_err_t err = {0};
  if (fs_rcode_decode(data, size, &rc, &owned, "fuzz", &err) < 0) {
    if (!strstr(err.msg, "fuzz") || owned) abort();
    return 0;
  }
  for (uint32_t i = 0; i < rc.n; i++)
    if (rc.pos[i] >= rc.len || (i && rc.feat[i] < rc.feat[i - 1])) abort();
  uint8_t *buf = NULL;
  size_t cap = 0, n = fs_rcode_encode(&rc, &buf, &cap);
  if (n != size || memcmp(buf, data, n)) abort();
  free(buf);
  free(owned);
  return 0;
}
