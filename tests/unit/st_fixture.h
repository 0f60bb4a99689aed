// st_fixture.h — what the two safetensors tests share (test_safetensors.c: test vectors and round
// trips, test_safetensors_broken.c: broken files): openers that must succeed or fail, a raw file
// writer, a deterministic value generator. Include after cmocka.h. Header-only (static inline).
#ifndef PS_TEST_ST_FIXTURE_H
#define PS_TEST_ST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emb.h"
#include "fixture.h"
#include "npy.h"
#include "safetensors.h"
// The shared test vectors: $PROTSAE_SHARED, else $PROTSAE_SRC/../shared, else ../shared.
static inline const char *vec_path(char *buf, size_t cap, const char *rel) {
  const char *sh = getenv("PROTSAE_SHARED");
  const char *src = getenv("PROTSAE_SRC");
  if (sh) snprintf(buf, cap, "%s/testvectors/%s", sh, rel);
  else if (src) snprintf(buf, cap, "%s/../shared/testvectors/%s", src, rel);
  else snprintf(buf, cap, "../shared/testvectors/%s", rel);
  return buf;
}

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

static inline int have_numpy(void) { return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

static inline emb_source_t *src_open(const char *path, emb_level_t level, int layer) {
  emb_source_opts_t o = {.path = path, .format = "safetensors", .level = level, .layer = layer};
  emb_source_t *s = NULL;
  ps_err_t err = {0};
  if (safetensors_source_open(&s, &o, &err) < 0) fail_msg("open %s: %s", path, err.msg);
  return s;
}

static inline int src_open_err(const emb_source_opts_t *o, ps_err_t *err) {
  emb_source_t *s = NULL;
  int rc = safetensors_source_open(&s, o, err);
  if (rc >= 0) {
    emb_source_destroy(&s);
    fail_msg("%s opened but should not have", o->path);
  }
  assert_null(s);
  return rc;
}

static inline int st_open_err(const char *path, ps_err_t *err) {
  st_file_t *f = NULL;
  int rc = st_open(&f, path, err);
  if (rc >= 0) {
    st_close(&f);
    fail_msg("%s opened but should not have", path);
  }
  assert_null(f);
  return rc;
}

// A raw file: 8-byte length + header text (+ padding) + data.
static inline void write_raw(const char *path, const char *hdr, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  uint64_t hl = strlen(hdr);
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hl >> (8 * i));
  assert_int_equal(fwrite(b, 1, 8, f), 8);
  assert_int_equal(fwrite(hdr, 1, hl, f), hl);
  if (n) assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

static inline float val(uint32_t rec, uint32_t row, uint32_t col) {
  uint32_t x = rec * 2654435761u ^ row * 40503u ^ col * 2246822519u;
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  float f = (float)(x & 0xffffff) / 16777216.0f - 0.5f;
  return (x & 0x1000000) ? f * 1000.0f : f * 0.001f;
}


// Sizes of the written round-trip files: NP proteins of D dims, protein i with plen(i) residues.
#define NP 7
#define D 5
static inline uint32_t plen(uint32_t i) { return 1 + (i * 3) % 5; }

#endif
