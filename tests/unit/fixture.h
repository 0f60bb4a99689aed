// fixture.h — the unit tests' one fixture: a scratch directory per test binary (made by a cmocka
// group setup, removed by its teardown), paths inside it, small file writers, and the finder of
// ../shared (the real data). Include it after cmocka.h. Header-only: every function is static
// inline, so a test uses what it needs.
#ifndef PS_TEST_FIXTURE_H
#define PS_TEST_FIXTURE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fsutil.h"

static char fx_dir[PATH_MAX];        // the scratch directory ("" before fx_setup)
static char fx_shared_dir[PATH_MAX]; // ../shared once fx_find_shared() said 1

// cmocka group setup / teardown: mkdtemp under $TMPDIR (or /tmp), named after the test binary.
static inline int fx_setup_named(const char *name) {
  const char *t = getenv("TMPDIR");
  snprintf(fx_dir, sizeof fx_dir, "%s/%s.XXXXXX", t && *t ? t : "/tmp", name);
  return mkdtemp(fx_dir) ? 0 : -1;
}
static inline int fx_setup(void **state) {
  (void)state;
  extern char *program_invocation_short_name;
  return fx_setup_named(program_invocation_short_name);
}
static inline int fx_teardown(void **state) {
  (void)state;
  if (fx_dir[0] && !getenv("PROTSAE_KEEP_TMP")) ps_rm_rf(fx_dir);
  return 0;
}

// fx_dir/name into buf (asserts it fits); returns buf.
static inline char *fx_path(char *buf, size_t cap, const char *name) {
  int n = snprintf(buf, cap, "%s/%s", fx_dir, name);
  assert_true(n > 0 && (size_t)n < cap);
  return buf;
}

static inline void fx_write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}
static inline void fx_write_text(const char *path, const char *text) { fx_write_file(path, text, strlen(text)); }

static inline void fx_write_gz(const char *path, const void *data, size_t n) {
  gzFile g = gzopen(path, "wb");
  assert_non_null(g);
  if (n) assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
  assert_int_equal(gzclose(g), Z_OK);
}

// The whole file into a malloc'd, NUL-terminated buffer (*len = its size); asserts it reads.
static inline char *fx_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  assert_non_null(b);
  size_t got;
  while ((got = fread(b + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      b = realloc(b, cap *= 2);
      assert_non_null(b);
    }
  }
  fclose(f);
  b[n] = 0;
  if (len) *len = n;
  return b;
}

// The integer a shell command prints (independent reference counts, e.g. zcat | grep -c);
// asserts the command succeeds.
static inline long long fx_sh_count(const char *cmd) {
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  long long v = -1;
  if (fscanf(p, "%lld", &v) != 1) v = -1;
  int st = pclose(p);
  if (st != 0) fprintf(stderr, "command failed (%d): %s\n", st, cmd);
  assert_int_equal(st, 0);
  return v;
}

// 1 when the shared data (../shared: $PROTSAE_SHARED, else $PROTSAE_SRC/../shared, else
// ./../shared) holds rel (e.g. "data/human-swissprot/proteins.fasta.gz"); its root is then in
// fx_shared_dir. Tests skip() when it says 0.
static inline int fx_find_shared(const char *rel) {
  char p[PATH_MAX * 2];
  const char *sh = getenv("PROTSAE_SHARED");
  if (sh && *sh) {
    snprintf(fx_shared_dir, sizeof fx_shared_dir, "%s", sh);
    snprintf(p, sizeof p, "%s/%s", fx_shared_dir, rel);
    if (access(p, R_OK) == 0) return 1;
  }
  const char *src = getenv("PROTSAE_SRC");
  snprintf(fx_shared_dir, sizeof fx_shared_dir, "%s/../shared", src && *src ? src : ".");
  snprintf(p, sizeof p, "%s/%s", fx_shared_dir, rel);
  return access(p, R_OK) == 0;
}

// 1 and the path of a built stage executable ($PROTSAE_BUILD/stages/STAGE/protsae-STAGE) in buf;
// 0 when it is not there. Tests skip() when it says 0.
static inline int fx_stage_bin(const char *stage, char *buf, size_t cap) {
  const char *build = getenv("PROTSAE_BUILD");
  snprintf(buf, cap, "%s/stages/%s/protsae-%s", build ? build : ".", stage, stage);
  if (access(buf, X_OK) == 0) return 1;
  printf("no %s: skipped\n", buf);
  return 0;
}

#endif
