// pt_test.h — what unit_ptfile and unit_ptsource share: the torch-written fixtures
// (pt_fixtures.py, run once per test binary by pt_setup), the torch.load cross-check, and
// asserting wrappers around ptfile.h. Include after cmocka.h and fixture.h. Header-only.
#ifndef PS_TEST_PT_H
#define PS_TEST_PT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emb.h"
#include "ptfile.h"

static char pt_fixtures[PATH_MAX + 8];  // the fixtures' root ("" without torch)
static int pt_fixtures_rc;          // the make script's exit status when it failed

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

// The small fixtures' values (pt_fixtures.py's rep_val / mean_val).
static inline float rep_val(int layer, int r, int c) { return (float)(layer * 100 + r * 10 + c) + 0.5f; }
static inline float mean_val(int layer, int c) { return -(float)(layer * 100 + c) - 0.25f; }

static inline int pt_have_torch(void) {
  return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

// Run pt_fixtures.py MODE DIR [ARGS]; its exit status.
static inline int pt_script(const char *mode, const char *dir, const char *args) {
  const char *src = getenv("PROTSAE_SRC");
  char cmd[PATH_MAX * 3 + 256];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/unit/pt_fixtures.py' %s '%s' %s", src && *src ? src : ".",
           mode, dir, args ? args : "");
  return system(cmd);
}

// cmocka group setup: fx_setup, then the fixtures under fx_dir/fx when torch imports.
static inline int pt_setup(void **state) {
  if (fx_setup(state) < 0) return -1;
  if (!pt_have_torch()) return 0;
  char d[sizeof pt_fixtures];
  snprintf(d, sizeof d, "%s/fx", fx_dir);
  if ((pt_fixtures_rc = pt_script("make", d, NULL)) == 0) snprintf(pt_fixtures, sizeof pt_fixtures, "%s", d);
  return 0;
}

// A test that reads torch-written fixtures: skips, saying why, when /usr/bin/python3 has no torch.
#define PT_NEED_FIXTURES()                                                                          \
  do {                                                                                              \
    if (!pt_fixtures[0] && pt_fixtures_rc) fail_msg("pt_fixtures.py make failed (%d)", pt_fixtures_rc); \
    if (!pt_fixtures[0]) {                                                                          \
      printf("# /usr/bin/python3 cannot import torch (python3-torch), which writes the .pt fixtures: skipped\n"); \
      skip();                                                                                       \
    }                                                                                               \
  } while (0)

// The fixture at REL below the fixtures' root.
static inline char *pt_fx(char *buf, size_t cap, const char *rel) {
  int n = snprintf(buf, cap, "%s/%s", pt_fixtures, rel);
  assert_true(n > 0 && (size_t)n < cap);
  return buf;
}

static inline pt_file_t *open_file_ok(const char *path) {
  pt_file_t *f = NULL;
  ps_err_t err = {0};
  if (pt_file_open(&f, path, &err) < 0) fail_msg("open %s: %s", path, err.msg);
  return f;
}

static inline float *read_tensor_ok(pt_file_t *f, pt_repr_t w, int layer, pt_tensor_info_t *info) {
  ps_err_t err = {0};
  if (pt_file_tensor_info(f, w, layer, info, &err) < 0) fail_msg("info: %s", err.msg);
  float *x = malloc((info->numel ? info->numel : 1) * sizeof(float));
  if (pt_file_read_tensor(f, w, layer, x, info->numel, &err) < 0) fail_msg("read: %s", err.msg);
  return x;
}

static inline emb_source_t *source_ok(const char *path, emb_level_t level, int layer) {
  emb_source_opts_t o = {.path = path, .format = "pt", .level = level, .layer = layer};
  emb_source_t *s = NULL;
  ps_err_t err = {0};
  if (emb_source_open(&s, &o, &err) < 0) fail_msg("open %s: %s", path, err.msg);
  return s;
}

// torch.load the files (into fx_dir/SUB), then check each against our reader: keys (want_keys[i]
// when given), label, every tensor's dtype, shape and floats bit for bit.
static inline void torch_check(const char *sub, const char *const *paths, size_t n, const char *const *want_keys) {
  char dir[PATH_MAX + 64], args[8192];
  snprintf(dir, sizeof dir, "%s/%s", fx_dir, sub);
  size_t o = 0;
  for (size_t k = 0; k < n; k++) o += (size_t)snprintf(args + o, sizeof args - o, " '%s'", paths[k]);
  assert_true(o < sizeof args);
  int st = pt_script("dump", dir, args);
  if (st != 0) fail_msg("torch.load dump failed (%d) for%s", st, args);
  char man[PATH_MAX + 96];
  snprintf(man, sizeof man, "%s/manifest.txt", dir);
  FILE *m = fopen(man, "r");
  assert_non_null(m);
  char line[4096];
  pt_file_t *f = NULL;
  size_t n_tensors = 0, n_files = 0;
  while (fgets(line, sizeof line, m)) {
    line[strcspn(line, "\n")] = 0;
    if (!strncmp(line, "file ", 5)) {
      pt_file_destroy(&f);
      size_t i = (size_t)atoi(line + 5);
      assert_true(i < n);
      f = open_file_ok(paths[i]);
      if (want_keys && want_keys[i]) assert_string_equal(strchr(line + 5, ' ') + 1, want_keys[i]);
      n_files++;
    } else if (!strncmp(line, "label ", 6)) {
      assert_string_equal(pt_file_label(f), line + 6);
    } else if (!strncmp(line, "tensor ", 7)) {
      char w[64], dt[32], shape[64], fn[256];
      int layer;
      assert_int_equal(sscanf(line + 7, "%63s %d %31s %63s %255s", w, &layer, dt, shape, fn), 5);
      pt_repr_t which = !strcmp(w, "mean_representations") ? PT_REPR_MEAN : PT_REPR_PER_RESIDUE;
      pt_tensor_info_t info;
      float *x = read_tensor_ok(f, which, layer, &info);
      assert_string_equal(info.dtype_name, dt);
      char ours[64];
      size_t so = 0;
      for (int k = 0; k < info.ndim; k++)
        so += (size_t)snprintf(ours + so, sizeof ours - so, "%s%llu", k ? "x" : "", (unsigned long long)info.shape[k]);
      ours[so] = 0;
      assert_string_equal(ours, shape);
      char rp[PATH_MAX + 400];
      snprintf(rp, sizeof rp, "%s/%s", dir, fn);
      size_t rl;
      char *raw = fx_read_file(rp, &rl);
      assert_int_equal(rl, info.numel * sizeof(float));
      for (size_t k = 0; k < info.numel; k++) {
        float t;
        memcpy(&t, raw + 4 * k, 4);
        if (memcmp(&t, &x[k], 4))
          fail_msg("%s %s[%d] element %zu: torch %.9g, ours %.9g", paths[0], w, layer, k, (double)t, (double)x[k]);
      }
      free(raw);
      free(x);
      n_tensors++;
    }
  }
  fclose(m);
  pt_file_destroy(&f);
  assert_int_equal(n_files, n);
  assert_true(n_tensors > 0);
  printf("# torch.load agrees bit for bit: %zu files, %zu tensors\n", n_files, n_tensors);
}

#endif
