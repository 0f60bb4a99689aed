// synth_fixture.h — what the two synth test binaries share (test_synth: the generator's model;
// test_synth_files: the files it writes): the real data loaded once per binary by a cmocka group
// setup (it also makes fx_dir), the small options the tests start from, and a reader of the
// generator's float32 .npy files. Include after cmocka.h.
#ifndef PS_TEST_SYNTH_FIXTURE_H
#define PS_TEST_SYNTH_FIXTURE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "synth.h"

#define SX_DATA "data/human-swissprot"

static synth_data_t g_data;

// Group setup / teardown of the data tests: fx_setup + the real data (PROTSAE_SHARED) loaded.
static inline int sx_setup(void **state) {
  char dir[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/" SX_DATA, fx_shared_dir);
  ps_err_t e = {0};
  if (synth_data_load(&g_data, dir, &e) != 0) {
    fprintf(stderr, "loading %s: %s\n", dir, e.msg);
    return -1;
  }
  return fx_setup(state);
}
static inline int sx_teardown(void **state) {
  synth_data_free(&g_data);
  return fx_teardown(state);
}

// 1 when the shared data are there (else the binary exits 77 after its data-free tests).
static inline int sx_have_data(void) {
  if (fx_find_shared(SX_DATA "/proteins.fasta.gz")) return 1;
  printf("no ../shared/" SX_DATA " (set PROTSAE_SHARED): skipping the data tests\n");
  return 0;
}

static inline void small_opts(synth_opts_t *o, const char *out) {
  synth_opts_default(o);
  o->out_dir = out;
  o->dim = 64;
  o->n_terms = 50;
  o->residue_proteins = 20;
  o->quiet = 1;
}

// The whole file (fx_read_file), or NULL when it is not there (*n = 0).
static inline char *slurp(const char *path, size_t *n) {
  *n = 0;
  return access(path, R_OK) == 0 ? fx_read_file(path, n) : NULL;
}

// Reads a float32 .npy (C order, 1-D or 2-D) written by the generator. Caller frees.
static inline float *read_npy_f32(const char *path, size_t *rows, size_t *cols) {
  size_t n;
  char *b = slurp(path, &n);
  if (!b) return NULL;
  if (n < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
    free(b);
    return NULL;
  }
  size_t hl = b[6] == 1 ? (size_t)(uint8_t)b[8] | ((size_t)(uint8_t)b[9] << 8) : (size_t)(uint8_t)b[8] | ((size_t)(uint8_t)b[9] << 8) | ((size_t)(uint8_t)b[10] << 16);
  size_t off = (b[6] == 1 ? 10 : 12) + hl;
  char *hdr = strndup(b + (b[6] == 1 ? 10 : 12), hl);
  char *sh = strstr(hdr, "'shape': (");
  assert_non_null(strstr(hdr, "<f4"));
  assert_non_null(sh);
  unsigned long r = 0, c = 1;
  if (sscanf(sh, "'shape': (%lu, %lu)", &r, &c) < 2) {
    sscanf(sh, "'shape': (%lu,", &r);
    c = 1;
  }
  free(hdr);
  *rows = r;
  *cols = c;
  assert_int_equal(n - off, r * c * 4);
  float *m = malloc(r * c * 4 + 4);
  memcpy(m, b + off, r * c * 4);
  free(b);
  return m;
}

static inline double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}


#endif
