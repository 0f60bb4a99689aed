// fsdump.h — the unit tests' one way to read a feature store as text: fs_dump of the store at
// path (plain or sharded), into a malloc'ed string (the caller frees). Fails the test on error.
#ifndef PS_TEST_FSDUMP_H
#define PS_TEST_FSDUMP_H

#include <stdio.h>
#include <stdlib.h>

#include "featstore.h"

// (not inlined: GCC 12 then mistakes open_memstream's buffer for a dangling local)
__attribute__((noinline, unused)) static char *fx_dump_store(const char *path) {
  fs_t *fs = NULL;
  ps_err_t err = {0};
  assert_int_equal(fs_open(&fs, path, FS_OPEN_READONLY, &err), 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  assert_non_null(m);
  assert_int_equal(fs_dump(fs, m, &err), 0);
  fclose(m);
  fs_close(&fs);
  return buf;
}

#endif
