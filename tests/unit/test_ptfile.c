// ESM extract.py .pt files (ptfile.h):
//  - every testvectors/esm2-tiny/esm-extract/*.pt reads back to exactly the floats torch.load
//    gives (dumped by /usr/bin/python3 during the test; skipped without torch), and, without
//    Python, per_residue / mean tensors match expected.safetensors within 1e-4;
//  - the writer reproduces those files byte for byte from the floats we read, round-trips
//    through our reader (float32 / float16 / bfloat16, many layers, residue-only, mean-only),
//    and torch.load reads its files to the same structure and floats (skipped without torch);
//  - the source: directory order, ids, nested folders from labels with '/', layer -1, skip,
//    count, protein level from mean_representations or pooled, deflated archives;
//  - broken inputs give errors naming the file and the position: truncated zip, bad magic,
//    legacy pickle, bad pickle opcode, storage shorter than the tensor, missing storage,
//    non-contiguous stride, CRC mismatch, missing layer, label mismatch, dims that differ, NaN.
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "emb.h"
#include "ptfile.h"

static char g_dir[64];
static char g_shared[1024];

static const char *const NAMES[] = {"P30047", "P62328", "Q8NFA2", "Q9H9T3", "edge_rare", "edge_single"};
#define N_NAMES 6

// ---- helpers -----------------------------------------------------------------------------
static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/test_ptfile.XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static void shared_dir(void) {
  const char *e = getenv("PROTSAE_SHARED");
  if (e && *e) snprintf(g_shared, sizeof g_shared, "%s", e);
  else {
    const char *src = getenv("PROTSAE_SRC");
    snprintf(g_shared, sizeof g_shared, "%s/../shared", src ? src : ".");
  }
}

static void extract_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/testvectors/esm2-tiny/esm-extract/%s.pt", g_shared, name);
}

static void tmp_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_dir, name); }

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) fail_msg("cannot create %s", path);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

static float val(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t x = a * 2654435761u ^ b * 40503u ^ c * 2246822519u;
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  float f = (float)(x & 0xffffff) / 16777216.0f - 0.5f;
  if (x % 7 == 0) f *= 1e-30f;
  if (x % 11 == 0) f *= 1e20f;
  return f;
}

static pt_file_t *open_file_ok(const char *path) {
  pt_file_t *f = NULL;
  ps_err_t err = {0};
  if (pt_file_open(&f, path, &err) < 0) fail_msg("open %s: %s", path, err.msg);
  return f;
}

static float *read_tensor_ok(pt_file_t *f, pt_repr_t w, int layer, pt_tensor_info_t *info) {
  ps_err_t err = {0};
  if (pt_file_tensor_info(f, w, layer, info, &err) < 0) fail_msg("info: %s", err.msg);
  float *x = malloc((info->numel ? info->numel : 1) * sizeof(float));
  if (pt_file_read_tensor(f, w, layer, x, info->numel, &err) < 0) fail_msg("read: %s", err.msg);
  return x;
}

// A pt_file_open that must fail: returns the code, err filled.
static int open_file_err(const char *path, ps_err_t *err) {
  pt_file_t *f = NULL;
  int rc = pt_file_open(&f, path, err);
  if (rc >= 0) {
    pt_file_destroy(&f);
    fail_msg("%s opened but should not have", path);
  }
  assert_null(f);
  return rc;
}

// Open f and read every tensor; returns the first error (0 if none).
static int read_all(const char *path, ps_err_t *err) {
  pt_file_t *f = NULL;
  int rc = pt_file_open(&f, path, err);
  if (rc < 0) return rc;
  for (int w = 0; w < 2 && rc >= 0; w++) {
    const int *ls;
    size_t n = pt_file_layers(f, (pt_repr_t)w, &ls);
    for (size_t j = 0; j < n && rc >= 0; j++) {
      pt_tensor_info_t info;
      if ((rc = pt_file_tensor_info(f, (pt_repr_t)w, ls[j], &info, err)) < 0) break;
      float *x = malloc((info.numel ? info.numel : 1) * sizeof(float));
      rc = pt_file_read_tensor(f, (pt_repr_t)w, ls[j], x, info.numel, err);
      free(x);
    }
  }
  pt_file_destroy(&f);
  return rc;
}

static emb_source_t *source_ok(const char *path, emb_level_t level, int layer) {
  emb_source_opts_t o = {.path = path, .format = "pt", .level = level, .layer = layer};
  emb_source_t *s = NULL;
  ps_err_t err = {0};
  if (emb_source_open(&s, &o, &err) < 0) fail_msg("open %s: %s", path, err.msg);
  return s;
}

// ---- a minimal zip reader / builder for crafting broken files ----------------------------
typedef struct {
  char name[160];
  uint8_t *data;
  size_t len;
} zfile_t;

static size_t zip_load(const char *path, zfile_t *out, size_t max) {
  size_t len;
  uint8_t *b = slurp(path, &len);
  size_t e = len - 22;
  while (memcmp(b + e, "PK\x05\x06", 4)) e--;
  uint32_t n = b[e + 10] | b[e + 11] << 8;
  uint32_t cd = b[e + 16] | b[e + 17] << 8 | b[e + 18] << 16 | (uint32_t)b[e + 19] << 24;
  assert_true(n <= max);
  for (uint32_t k = 0; k < n; k++) {
    const uint8_t *h = b + cd;
    assert_memory_equal(h, "PK\x01\x02", 4);
    uint32_t size = h[24] | h[25] << 8 | h[26] << 16 | (uint32_t)h[27] << 24;
    uint32_t nl = h[28] | h[29] << 8, el = h[30] | h[31] << 8, cl = h[32] | h[33] << 8;
    uint32_t lho = h[42] | h[43] << 8 | h[44] << 16 | (uint32_t)h[45] << 24;
    memcpy(out[k].name, h + 46, nl);
    out[k].name[nl] = 0;
    const uint8_t *lh = b + lho;
    uint32_t lnl = lh[26] | lh[27] << 8, lel = lh[28] | lh[29] << 8;
    out[k].data = malloc(size + 1);
    memcpy(out[k].data, lh + 30 + lnl + lel, size);
    out[k].len = size;
    cd += 46 + nl + el + cl;
  }
  free(b);
  return n;
}

static void zfiles_free(zfile_t *z, size_t n) {
  for (size_t k = 0; k < n; k++) free(z[k].data);
}

static void put16(FILE *f, unsigned x) {
  fputc((int)(x & 0xff), f);
  fputc((int)((x >> 8) & 0xff), f);
}
static void put32(FILE *f, uint32_t x) {
  put16(f, x & 0xffff);
  put16(f, x >> 16);
}

// A plain zip (no zip64, no data descriptors), entries stored or raw-deflated.
static void zip_save(const char *path, const zfile_t *z, size_t n, int deflated) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  uint32_t *lho = calloc(n, 4), *crc = calloc(n, 4), *csz = calloc(n, 4);
  uint8_t **cdata = calloc(n, sizeof *cdata);
  for (size_t k = 0; k < n; k++) {
    crc[k] = (uint32_t)crc32(crc32(0, Z_NULL, 0), z[k].data, (uInt)z[k].len);
    if (deflated) {
      z_stream s;
      memset(&s, 0, sizeof s);
      assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
      uLong bound = deflateBound(&s, (uLong)z[k].len);
      cdata[k] = malloc(bound);
      s.next_in = z[k].data;
      s.avail_in = (uInt)z[k].len;
      s.next_out = cdata[k];
      s.avail_out = (uInt)bound;
      assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
      csz[k] = (uint32_t)s.total_out;
      deflateEnd(&s);
    } else {
      cdata[k] = z[k].data;
      csz[k] = (uint32_t)z[k].len;
    }
    lho[k] = (uint32_t)ftell(f);
    put32(f, 0x04034b50);
    put16(f, 20);
    put16(f, 0);
    put16(f, deflated ? 8 : 0);
    put16(f, 0);
    put16(f, 0);
    put32(f, crc[k]);
    put32(f, csz[k]);
    put32(f, (uint32_t)z[k].len);
    put16(f, (unsigned)strlen(z[k].name));
    put16(f, 0);
    fwrite(z[k].name, 1, strlen(z[k].name), f);
    fwrite(cdata[k], 1, csz[k], f);
  }
  uint32_t cd = (uint32_t)ftell(f);
  for (size_t k = 0; k < n; k++) {
    put32(f, 0x02014b50);
    put16(f, 20);
    put16(f, 20);
    put16(f, 0);
    put16(f, deflated ? 8 : 0);
    put16(f, 0);
    put16(f, 0);
    put32(f, crc[k]);
    put32(f, csz[k]);
    put32(f, (uint32_t)z[k].len);
    put16(f, (unsigned)strlen(z[k].name));
    put16(f, 0);
    put16(f, 0);
    put16(f, 0);
    put16(f, 0);
    put32(f, 0);
    put32(f, lho[k]);
    fwrite(z[k].name, 1, strlen(z[k].name), f);
  }
  uint32_t cdsz = (uint32_t)ftell(f) - cd;
  put32(f, 0x06054b50);
  put16(f, 0);
  put16(f, 0);
  put16(f, (unsigned)n);
  put16(f, (unsigned)n);
  put32(f, cdsz);
  put32(f, cd);
  put16(f, 0);
  fclose(f);
  for (size_t k = 0; k < n; k++)
    if (deflated) free(cdata[k]);
  free(cdata);
  free(lho);
  free(crc);
  free(csz);
}

static zfile_t *zfind(zfile_t *z, size_t n, const char *suffix) {
  for (size_t k = 0; k < n; k++) {
    size_t a = strlen(z[k].name), b = strlen(suffix);
    if (a >= b && !strcmp(z[k].name + a - b, suffix)) return &z[k];
  }
  fail_msg("no entry *%s", suffix);
  return NULL;
}

static long memfind(const uint8_t *h, size_t hn, const void *needle, size_t nn) {
  for (size_t i = 0; i + nn <= hn; i++)
    if (!memcmp(h + i, needle, nn)) return (long)i;
  return -1;
}

// A small file: label "P1", layers {0, 6}, L = 3, d = 5; layer 6 rows hold val(6, r, c).
#define SL 3
#define SD 5
static void write_small(const char *path, const char *label, float nan_at_6_2_3) {
  static float rep[2][SL * SD], mean[2][SD];
  int layers[2] = {0, 6};
  for (int l = 0; l < 2; l++) {
    for (int r = 0; r < SL; r++)
      for (int c = 0; c < SD; c++) rep[l][r * SD + c] = val((uint32_t)layers[l], (uint32_t)r, (uint32_t)c);
    for (int c = 0; c < SD; c++) mean[l][c] = val((uint32_t)layers[l] + 100, 0, (uint32_t)c);
  }
  rep[1][2 * SD + 3] = nan_at_6_2_3 ? NAN : rep[1][2 * SD + 3];
  const float *pr[2] = {rep[0], rep[1]}, *mr[2] = {mean[0], mean[1]};
  ps_err_t err = {0};
  if (pt_write_extract(path, label, layers, 2, pr, mr, SL, SD, &err) < 0) fail_msg("write %s: %s", path, err.msg);
}

// ---- python (torch) ----------------------------------------------------------------------
static int have_torch(void) {
  return access("/usr/bin/python3", X_OK) == 0 &&
         system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

static const char *DUMP_PY =
    "import os, sys, torch\n"
    "out = sys.argv[1]\n"
    "with open(os.path.join(out, 'manifest.txt'), 'w') as man:\n"
    "    for i, p in enumerate(sys.argv[2:]):\n"
    "        d = torch.load(p)\n"
    "        assert type(d) is dict, type(d)\n"
    "        man.write('file %d %s\\n' % (i, ','.join(d.keys())))\n"
    "        man.write('label %s\\n' % d['label'])\n"
    "        for w in ('representations', 'mean_representations'):\n"
    "            for layer, t in d.get(w, {}).items():\n"
    "                assert type(layer) is int and isinstance(t, torch.Tensor)\n"
    "                fn = '%d.%s.%d.f32' % (i, w, layer)\n"
    "                t.float().contiguous().numpy().tofile(os.path.join(out, fn))\n"
    "                shape = 'x'.join(str(s) for s in t.shape)\n"
    "                man.write('tensor %s %d %s %s %s\\n' % (w, layer, str(t.dtype)[6:], shape, fn))\n";

// Run torch.load over files into dir g_dir/sub; then check each file against our reader.
static void torch_check(const char *sub, const char *const *paths, size_t n, const char *const *want_keys) {
  char dir[512], script[600], cmd[8192];
  snprintf(dir, sizeof dir, "%s/%s", g_dir, sub);
  mkdir(dir, 0755);
  snprintf(script, sizeof script, "%s/dump.py", dir);
  spit(script, DUMP_PY, strlen(DUMP_PY));
  size_t o = (size_t)snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, dir);
  for (size_t k = 0; k < n; k++) o += (size_t)snprintf(cmd + o, sizeof cmd - o, " '%s'", paths[k]);
  int st = system(cmd);
  if (st != 0) fail_msg("torch.load dump failed (%d): %s", st, cmd);
  char man[600];
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
      char rp[1024];
      snprintf(rp, sizeof rp, "%s/%s", dir, fn);
      size_t rl;
      uint8_t *raw = slurp(rp, &rl);
      assert_int_equal(rl, info.numel * sizeof(float));
      if (rl && memcmp(raw, x, rl)) {
        for (size_t k = 0; k < info.numel; k++) {
          float t;
          memcpy(&t, raw + 4 * k, 4);
          if (memcmp(&t, &x[k], 4)) fail_msg("%s %s[%d] element %zu: torch %.9g, ours %.9g", paths[0], w, layer, k,
                                             (double)t, (double)x[k]);
        }
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

// ---- expected.safetensors (parsed here, independently of the library) ----------------------
typedef struct {
  uint8_t *buf;
  size_t len;
  char *hdr;
  size_t data0;
} st_file_t;

static void st_load(st_file_t *s) {
  char p[1200];
  snprintf(p, sizeof p, "%s/testvectors/esm2-tiny/expected.safetensors", g_shared);
  s->buf = slurp(p, &s->len);
  uint64_t hl = 0;
  for (int k = 7; k >= 0; k--) hl = hl << 8 | s->buf[k];
  assert_true(8 + hl <= s->len);
  s->hdr = malloc(hl + 1);
  memcpy(s->hdr, s->buf + 8, hl);
  s->hdr[hl] = 0;
  s->data0 = 8 + hl;
}

// Tensor `key` as float32 (F32 only, as the file holds); *n elements.
static const float *st_get(st_file_t *s, const char *key, size_t *n, size_t shape[2], int *ndim) {
  char k[256];
  snprintf(k, sizeof k, "\"%s\":", key);
  char *e = strstr(s->hdr, k);
  if (!e) fail_msg("expected.safetensors: no %s", key);
  char *end = strchr(e, '}');
  char *dt = strstr(e, "\"dtype\""), *sh = strstr(e, "\"shape\""), *of = strstr(e, "\"data_offsets\"");
  assert_true(dt && sh && of && dt < end && sh < end && of < end);
  assert_non_null(strstr(dt, "\"F32\""));
  assert_true(strstr(dt, "\"F32\"") < end);
  *ndim = 0;
  char *q = strchr(sh, '[') + 1;
  while (*q != ']') {
    shape[(*ndim)++] = strtoul(q, &q, 10);
    if (*q == ',') q++;
  }
  q = strchr(of, '[') + 1;
  size_t a = strtoul(q, &q, 10);
  q++;
  size_t b = strtoul(q, &q, 10);
  assert_true(s->data0 + b <= s->len && a <= b && (b - a) % 4 == 0);
  *n = (b - a) / 4;
  return (const float *)(s->buf + s->data0 + a);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t k = 0; k < n; k++) {
    double d = fabs((double)a[k] - (double)b[k]);
    if (!(d <= m)) m = d;
  }
  return m;
}

// ---- tests ---------------------------------------------------------------------------------
// Every .pt in esm-extract/ is one of NAMES (so the tests below cover them all).
static void test_real_listing(void **state) {
  (void)state;
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/testvectors/esm2-tiny/esm-extract", g_shared);
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot list %s", dir);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 4 || strcmp(e->d_name + l - 3, ".pt")) continue;
    int known = 0;
    for (int i = 0; i < N_NAMES; i++)
      if (strlen(NAMES[i]) == l - 3 && !strncmp(NAMES[i], e->d_name, l - 3)) known = 1;
    if (!known) fail_msg("%s/%s is not covered by the tests", dir, e->d_name);
    n++;
  }
  closedir(d);
  assert_int_equal(n, N_NAMES);
}

static void test_real_vs_torch(void **state) {
  (void)state;
  if (!have_torch()) {
    printf("# /usr/bin/python3 has no torch: skipped\n");
    skip();
  }
  char paths[N_NAMES][1200];
  const char *pp[N_NAMES];
  for (int i = 0; i < N_NAMES; i++) {
    extract_path(paths[i], sizeof paths[i], NAMES[i]);
    pp[i] = paths[i];
  }
  const char *keys[N_NAMES];
  for (int i = 0; i < N_NAMES; i++) keys[i] = "label,representations,mean_representations";
  torch_check("real", pp, N_NAMES, keys);
}

static void test_real_vs_safetensors(void **state) {
  (void)state;
  st_file_t st;
  st_load(&st);
  double worst = 0;
  for (int i = 0; i < N_NAMES; i++) {
    char p[1200];
    extract_path(p, sizeof p, NAMES[i]);
    pt_file_t *f = open_file_ok(p);
    assert_string_equal(pt_file_label(f), NAMES[i]);
    assert_string_equal(pt_file_archive_name(f), NAMES[i]);
    for (int w = 0; w < 2; w++) {
      const int *ls;
      assert_int_equal(pt_file_layers(f, (pt_repr_t)w, &ls), 3);
      for (int layer = 0; layer < 3; layer++) {
        assert_int_equal(ls[layer], layer);
        char key[128];
        snprintf(key, sizeof key, "%s.layer%d.%s", NAMES[i], layer, w ? "mean" : "per_residue");
        size_t n, shape[2];
        int nd;
        const float *want = st_get(&st, key, &n, shape, &nd);
        pt_tensor_info_t info;
        float *x = read_tensor_ok(f, (pt_repr_t)w, layer, &info);
        assert_int_equal(info.ndim, nd);
        assert_int_equal(info.ndim, w ? 1 : 2);
        for (int k = 0; k < nd; k++) assert_int_equal(info.shape[k], shape[k]);
        assert_int_equal(info.numel, n);
        assert_string_equal(info.dtype_name, "float32");
        double m = max_abs_diff(x, want, n);
        if (!(m <= 1e-4)) fail_msg("%s: max |ours - expected| = %g > 1e-4", key, m);
        if (m > worst) worst = m;
        free(x);
      }
    }
    pt_file_destroy(&f);
  }
  printf("# 36 tensors within %.3g of expected.safetensors\n", worst);

  // the same through the source: directory in byte order, ids, residue and protein level
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/testvectors/esm2-tiny/esm-extract", g_shared);
  for (int lvl = 0; lvl < 2; lvl++) {
    emb_source_t *s = source_ok(dir, lvl ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN, lvl ? 1 : -1);
    assert_int_equal(emb_source_count(s), N_NAMES);
    emb_record_t rec;
    ps_err_t err = {0};
    for (int i = 0; i < N_NAMES; i++) {
      if (emb_source_next(s, &rec, &err) != 1) fail_msg("next: %s", err.msg);
      assert_string_equal(rec.id, NAMES[i]);
      assert_int_equal(rec.index, i);
      assert_int_equal(rec.dim, 64);
      char key[128];
      snprintf(key, sizeof key, "%s.layer%d.%s", NAMES[i], lvl ? 1 : 2, lvl ? "per_residue" : "mean");
      size_t n, shape[2];
      int nd;
      const float *want = st_get(&st, key, &n, shape, &nd);
      assert_int_equal((size_t)rec.n_rows * rec.dim, n);
      double m = max_abs_diff(rec.rows, want, n);
      if (!(m <= 1e-4)) fail_msg("source %s: max diff %g", key, m);
    }
    assert_int_equal(emb_source_next(s, &rec, &err), 0);
    emb_source_destroy(&s);
    assert_null(s);
  }
  free(st.hdr);
  free(st.buf);
}

// Our writer, fed the floats our reader got, reproduces extract.py's files byte for byte.
static void test_writer_bytes_match_torch_save(void **state) {
  (void)state;
  for (int i = 0; i < N_NAMES; i++) {
    if (!strcmp(NAMES[i], "edge_single")) continue;  // torch kept an odd stride (384, 1) for a [1, 64] clone
    char p[1200], q[600];
    extract_path(p, sizeof p, NAMES[i]);
    pt_file_t *f = open_file_ok(p);
    float *rep[3], *mean[3];
    const float *pr[3], *mr[3];
    int layers[3] = {0, 1, 2};
    pt_tensor_info_t info;
    uint32_t L = 0;
    for (int l = 0; l < 3; l++) {
      pr[l] = rep[l] = read_tensor_ok(f, PT_REPR_PER_RESIDUE, l, &info);
      L = (uint32_t)info.shape[0];
      mr[l] = mean[l] = read_tensor_ok(f, PT_REPR_MEAN, l, &info);
    }
    snprintf(q, sizeof q, "%s/%s.pt", g_dir, NAMES[i]);
    ps_err_t err = {0};
    if (pt_write_extract(q, pt_file_label(f), layers, 3, pr, mr, L, 64, &err) < 0) fail_msg("%s", err.msg);
    size_t a, b;
    uint8_t *x = slurp(p, &a), *y = slurp(q, &b);
    assert_int_equal(a, b);
    for (size_t k = 0; k < a; k++)
      if (x[k] != y[k]) fail_msg("%s: first difference at byte %zu: %02x vs %02x", NAMES[i], k, x[k], y[k]);
    free(x);
    free(y);
    for (int l = 0; l < 3; l++) {
      free(rep[l]);
      free(mean[l]);
    }
    pt_file_destroy(&f);
    unlink(q);
  }
}

static void test_writer_roundtrip(void **state) {
  (void)state;
  enum { NL = 300, L = 4, D = 7 };  // 300 layers: memo keys past 255, layer keys past 255
  static float rep[NL][L * D], mean[NL][D];
  const float *pr[NL], *mr[NL];
  int layers[NL];
  for (int l = 0; l < NL; l++) {
    layers[l] = l == NL - 1 ? 70000 : NL - 1 - l;  // unsorted on purpose; one needs BININT
    for (int k = 0; k < L * D; k++) rep[l][k] = val((uint32_t)l, (uint32_t)k, 1);
    for (int k = 0; k < D; k++) mean[l][k] = val((uint32_t)l, (uint32_t)k, 2);
    pr[l] = rep[l];
    mr[l] = mean[l];
  }
  rep[3][5] = -0.0f;
  rep[4][6] = 1e-45f;  // subnormal
  const pt_dtype_t dts[3] = {PT_DTYPE_F32, PT_DTYPE_F16, PT_DTYPE_BF16};
  const char *dtn[3] = {"float32", "float16", "bfloat16"};
  for (int t = 0; t < 3; t++) {
    char p[600];
    snprintf(p, sizeof p, "%s/many.%s.pt", g_dir, dtn[t]);
    ps_err_t err = {0};
    if (pt_write_extract_dtype(p, "many layers \xce\xb1", layers, NL, pr, mr, L, D, dts[t], &err) < 0)
      fail_msg("%s", err.msg);
    struct stat st;
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_int_not_equal(stat(tmp, &st), 0);  // renamed away
    pt_file_t *f = open_file_ok(p);
    assert_string_equal(pt_file_label(f), "many layers \xce\xb1");
    assert_string_equal(pt_file_archive_name(f), t == 0 ? "many.float32" : t == 1 ? "many.float16" : "many.bfloat16");
    const int *ls;
    assert_int_equal(pt_file_layers(f, PT_REPR_PER_RESIDUE, &ls), NL);
    assert_int_equal(ls[0], 1);  // layers 1..299 and 70000
    assert_int_equal(ls[NL - 2], NL - 1);
    assert_int_equal(ls[NL - 1], 70000);
    for (int l = 0; l < NL; l++) {
      pt_tensor_info_t info;
      float *x = read_tensor_ok(f, PT_REPR_PER_RESIDUE, layers[l], &info);
      assert_string_equal(info.dtype_name, dtn[t]);
      assert_int_equal(info.ndim, 2);
      assert_int_equal(info.shape[0], L);
      assert_int_equal(info.shape[1], D);
      for (int k = 0; k < L * D; k++) {
        float want = rep[l][k];
        if (t == 1) want = emb_half_to_float(emb_float_to_half(want));
        if (t == 2) {  // bf16, nearest even
          uint32_t u;
          memcpy(&u, &want, 4);
          u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
          memcpy(&want, &u, 4);
        }
        if (memcmp(&want, &x[k], 4)) fail_msg("%s layer %d element %d: %.9g vs %.9g", dtn[t], layers[l], k,
                                              (double)want, (double)x[k]);
      }
      free(x);
      x = read_tensor_ok(f, PT_REPR_MEAN, layers[l], &info);
      assert_int_equal(info.ndim, 1);
      assert_int_equal(info.shape[0], D);
      if (t == 0) assert_memory_equal(x, mean[l], sizeof mean[l]);
      free(x);
    }
    pt_file_destroy(&f);
  }

  // residue only / mean only; protein level then comes from mean_representations or pooling
  char pa[600], pb[600];
  snprintf(pa, sizeof pa, "%s/resonly/R1.pt", g_dir);
  snprintf(pb, sizeof pb, "%s/meanonly/M1.pt", g_dir);
  char da[600], db[600];
  snprintf(da, sizeof da, "%s/resonly", g_dir);
  snprintf(db, sizeof db, "%s/meanonly", g_dir);
  mkdir(da, 0755);
  mkdir(db, 0755);
  ps_err_t err = {0};
  assert_int_equal(pt_write_extract(pa, "R1 residue only", layers, 2, pr, NULL, L, D, &err), 0);
  assert_int_equal(pt_write_extract(pb, "M1", layers, 2, NULL, mr, L, D, &err), 0);
  pt_file_t *f = open_file_ok(pa);
  assert_false(pt_file_has(f, PT_REPR_MEAN));
  assert_int_equal(pt_file_layers(f, PT_REPR_MEAN, NULL), 0);
  pt_file_destroy(&f);
  emb_source_t *s = source_ok(da, EMB_LEVEL_PROTEIN, -1);  // highest layer: 299 = layers[0]
  emb_record_t rec;
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, "R1");
  assert_int_equal(rec.n_rows, 1);
  for (int c = 0; c < D; c++) {
    double acc = 0;
    for (int r = 0; r < L; r++) acc += rep[0][r * D + c];
    assert_float_equal(rec.rows[c], (float)(acc / L), 0);
  }
  emb_source_destroy(&s);
  s = source_ok(db, EMB_LEVEL_PROTEIN, 298);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_memory_equal(rec.rows, mean[1], sizeof mean[1]);
  emb_source_destroy(&s);
  emb_source_opts_t o = {.path = db, .format = "pt", .level = EMB_LEVEL_RESIDUE, .layer = -1};
  assert_int_equal(emb_source_open(&s, &o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "M1.pt");
  assert_msg_has(&err, "per_tok");

  // writer refusals
  int dup[2] = {3, 3};
  assert_int_equal(pt_write_extract(pa, "x", dup, 2, pr, mr, L, D, &err), PS_ECONFIG);
  assert_int_equal(pt_write_extract(pa, "bad \xff utf8", layers, 1, pr, mr, L, D, &err), PS_EFORMAT);
  assert_int_equal(pt_write_extract(pa, "", layers, 1, pr, mr, L, D, &err), PS_ECONFIG);
  assert_int_equal(pt_write_extract(pa, "x", layers, 1, NULL, NULL, L, D, &err), PS_ECONFIG);
  char nodir[700];
  snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.pt", g_dir);
  assert_true(pt_write_extract(nodir, "x", layers, 1, pr, mr, L, D, &err) < 0);
  assert_msg_has(&err, nodir);
}

static void test_writer_vs_torch(void **state) {
  (void)state;
  if (!have_torch()) {
    printf("# /usr/bin/python3 has no torch: skipped\n");
    skip();
  }
  enum { L = 5, D = 6 };
  static float rep[3][L * D], mean[3][D];
  const float *pr[3], *mr[3];
  int layers[3] = {33, 0, 300};
  for (int l = 0; l < 3; l++) {
    for (int k = 0; k < L * D; k++) rep[l][k] = val(7, (uint32_t)l, (uint32_t)k);
    for (int k = 0; k < D; k++) mean[l][k] = val(8, (uint32_t)l, (uint32_t)k);
    pr[l] = rep[l];
    mr[l] = mean[l];
  }
  rep[1][3] = NAN;  // the writer stores what it is given
  char p[5][600];
  const char *pp[5], *keys[5];
  const char *names[5] = {"f32", "f16", "bf16", "res", "mean"};
  for (int k = 0; k < 5; k++) {
    snprintf(p[k], sizeof p[k], "%s/torchcheck_%s.pt", g_dir, names[k]);
    pp[k] = p[k];
    keys[k] = "label,representations,mean_representations";
  }
  ps_err_t err = {0};
  assert_int_equal(pt_write_extract(p[0], "sp|P1|X_HUMAN a protein", layers, 3, pr, mr, L, D, &err), 0);
  assert_int_equal(pt_write_extract_dtype(p[1], "half", layers, 3, pr, mr, L, D, PT_DTYPE_F16, &err), 0);
  assert_int_equal(pt_write_extract_dtype(p[2], "bf16", layers, 3, pr, mr, L, D, PT_DTYPE_BF16, &err), 0);
  assert_int_equal(pt_write_extract(p[3], "res", layers, 1, pr, NULL, L, D, &err), 0);
  assert_int_equal(pt_write_extract(p[4], "mean", layers, 3, NULL, mr, L, D, &err), 0);
  keys[3] = "label,representations";
  keys[4] = "label,mean_representations";
  torch_check("ours", pp, 5, keys);

  // and files torch writes itself in float16 / bfloat16 / with a storage offset read back here
  char dir[600], script[700], cmd[1600];
  snprintf(dir, sizeof dir, "%s/torchmade", g_dir);
  mkdir(dir, 0755);
  snprintf(script, sizeof script, "%s/make.py", dir);
  const char *py =
      "import sys, torch\n"
      "d = sys.argv[1]\n"
      "g = torch.Generator().manual_seed(3)\n"
      "x = torch.randn(9, 8, generator=g)\n"
      "torch.save({'label': 'h', 'representations': {4: x.half()}, 'mean_representations': {4: x.mean(0).half()}},"
      " d + '/h.pt')\n"
      "torch.save({'label': 'b', 'representations': {4: x.bfloat16()}}, d + '/b.pt')\n"
      "big = torch.randn(20, 8, generator=g)\n"
      "torch.save({'label': 'v', 'representations': {4: big[5:14]}, 'contacts': torch.zeros(3, 3),"
      " 'logits': torch.zeros(2, 4), 'extra': [1, 2.5, None, True, 'x', (1,)]}, d + '/v.pt')\n"
      "torch.save({'label': 't', 'representations': {4: big.t()}}, d + '/t.pt')\n"
      "torch.save({'label': 'p4', 'representations': {4: x, 5: x.double()}, 'mean_representations': {4: x[0]}},"
      " d + '/p4.pt', pickle_protocol=4)\n";
  spit(script, py, strlen(py));
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, dir);
  assert_int_equal(system(cmd), 0);
  char hp[700], bp[700], vp[700], tp[700], p4[700];
  snprintf(hp, sizeof hp, "%s/h.pt", dir);
  snprintf(bp, sizeof bp, "%s/b.pt", dir);
  snprintf(vp, sizeof vp, "%s/v.pt", dir);
  snprintf(tp, sizeof tp, "%s/t.pt", dir);
  snprintf(p4, sizeof p4, "%s/p4.pt", dir);
  const char *tm[4] = {hp, bp, vp, p4};  // float16, bfloat16, a view at offset 40, protocol 4 + float64
  torch_check("torchmade_dump", tm, 4, NULL);
  // a transposed view is refused with a clear message
  pt_file_t *f = open_file_ok(tp);
  float buf[200];
  assert_int_equal(pt_file_read_tensor(f, PT_REPR_PER_RESIDUE, 4, buf, 200, &err), PS_EUNSUPP);
  assert_msg_has(&err, "t.pt");
  assert_msg_has(&err, "not contiguous");
  assert_msg_has(&err, "representations[4]");
  pt_file_destroy(&f);
}

static void test_source_dir(void **state) {
  (void)state;
  char d[600], p[800], sub[800];
  snprintf(d, sizeof d, "%s/srcdir", g_dir);
  mkdir(d, 0755);
  // labels with '/' make subfolders (extract.py does mkdir on the parent)
  const char *labels[] = {"B2", "a1 first protein", "sp|P3|X_HUMAN serine/threonine kinase", "C3"};
  for (int k = 0; k < 4; k++) {
    if (k == 2) {
      snprintf(sub, sizeof sub, "%s/sp|P3|X_HUMAN serine", d);
      mkdir(sub, 0755);
      snprintf(p, sizeof p, "%s/sp|P3|X_HUMAN serine/threonine kinase.pt", d);
    } else {
      char id[64];
      snprintf(p, sizeof p, "%s/%s.pt", d, k == 1 ? "a1 first protein" : pt_label_id(labels[k], id, sizeof id));
    }
    write_small(p, labels[k], 0);
  }
  snprintf(p, sizeof p, "%s/notes.txt", d);
  spit(p, "x", 1);
  snprintf(p, sizeof p, "%s/.hidden.pt", d);
  spit(p, "junk", 4);
  emb_source_t *s = source_ok(d, EMB_LEVEL_RESIDUE, -1);
  assert_int_equal(emb_source_count(s), 4);
  const char *order[] = {"B2", "C3", "a1", "sp|P3|X_HUMAN"};  // byte order of the relative paths
  emb_record_t rec;
  ps_err_t err = {0};
  for (int k = 0; k < 4; k++) {
    if (emb_source_next(s, &rec, &err) != 1) fail_msg("%s", err.msg);
    assert_string_equal(rec.id, order[k]);
    assert_int_equal(rec.n_rows, SL);
    assert_int_equal(rec.dim, SD);
    for (int r = 0; r < SL; r++)
      for (int c = 0; c < SD; c++) assert_float_equal(rec.rows[r * SD + c], val(6, (uint32_t)r, (uint32_t)c), 0);
  }
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  emb_source_destroy(&s);
  // skip opens nothing, lands on the right record; skipping too far is an error
  s = source_ok(d, EMB_LEVEL_PROTEIN, 0);
  assert_int_equal(emb_source_skip(s, 3, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, "sp|P3|X_HUMAN");
  assert_int_equal(rec.n_rows, 1);
  for (int c = 0; c < SD; c++) assert_float_equal(rec.rows[c], val(100, 0, (uint32_t)c), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  emb_source_destroy(&s);
  s = source_ok(d, EMB_LEVEL_PROTEIN, 0);
  assert_int_equal(emb_source_skip(s, 5, &err), PS_ETRUNC);
  emb_source_destroy(&s);
  // a single file; format from the extension
  snprintf(p, sizeof p, "%s/B2.pt", d);
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = 6};
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_count(s), 1);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, "B2");
  emb_source_destroy(&s);
  // empty directory
  snprintf(sub, sizeof sub, "%s/empty", g_dir);
  mkdir(sub, 0755);
  o.path = sub;
  o.format = "pt";
  assert_int_equal(emb_source_open(&s, &o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, sub);
  assert_null(s);
}

// Deflated entries (zip tools re-packing a .pt) read back the same.
static void test_deflated(void **state) {
  (void)state;
  char p[1200], q[800];
  extract_path(p, sizeof p, "P62328");
  zfile_t z[16];
  size_t n = zip_load(p, z, 16);
  assert_int_equal(n, 8);
  snprintf(q, sizeof q, "%s/P62328.pt", g_dir);
  zip_save(q, z, n, 1);
  pt_file_t *a = open_file_ok(p), *b = open_file_ok(q);
  for (int w = 0; w < 2; w++)
    for (int l = 0; l < 3; l++) {
      pt_tensor_info_t ia, ib;
      float *x = read_tensor_ok(a, (pt_repr_t)w, l, &ia), *y = read_tensor_ok(b, (pt_repr_t)w, l, &ib);
      assert_int_equal(ia.numel, ib.numel);
      assert_memory_equal(x, y, ia.numel * 4);
      free(x);
      free(y);
    }
  pt_file_destroy(&a);
  pt_file_destroy(&b);
  // corrupt deflate data
  size_t len;
  uint8_t *bytes = slurp(q, &len);
  for (size_t k = 3000; k < 3100; k++) bytes[k] ^= 0x5a;
  spit(q, bytes, len);
  free(bytes);
  ps_err_t err = {0};
  assert_true(read_all(q, &err) < 0);
  assert_msg_has(&err, q);
  zfiles_free(z, n);
}

static void test_broken(void **state) {
  (void)state;
  char good[600], bad[600];
  snprintf(good, sizeof good, "%s/P1.pt", g_dir);
  write_small(good, "P1", 0);
  tmp_path(bad, sizeof bad, "bad.pt");
  size_t len;
  uint8_t *b = slurp(good, &len);
  ps_err_t err = {0};
  int rc;

  // truncations anywhere: a clean error naming the file
  for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 37)) {
    spit(bad, b, cut);
    memset(&err, 0, sizeof err);
    rc = read_all(bad, &err);
    if (rc >= 0) fail_msg("file cut at %zu of %zu bytes read without error", cut, len);
    assert_msg_has(&err, bad);
  }
  spit(bad, b, len - 10);
  open_file_err(bad, &err);
  assert_msg_has(&err, "end-of-central-directory");

  // bad magic
  uint8_t *c = malloc(len);
  memcpy(c, b, len);
  memcpy(c, "XXXX", 4);
  spit(bad, c, len);
  assert_int_equal(open_file_err(bad, &err), PS_EFORMAT);
  assert_msg_has(&err, "byte 0: bad magic");
  // a legacy torch (< 1.6) file: a bare pickle
  spit(bad, "\x80\x02\x8a\x0alZ\xfc\x9c", 8);
  assert_int_equal(open_file_err(bad, &err), PS_EUNSUPP);
  assert_msg_has(&err, "legacy");

  // CRC mismatch: flip one float bit of the last storage
  memcpy(c, b, len);
  zfile_t z[16];
  size_t n = zip_load(good, z, 16);
  long at = memfind(b, len, z[n - 2].data, z[n - 2].len);  // data/3 bytes in the file
  assert_true(at > 0);
  c[at + 2] ^= 1;
  spit(bad, c, len);
  assert_int_equal(read_all(bad, &err), PS_EFORMAT);
  assert_msg_has(&err, "CRC-32");
  assert_msg_has(&err, "P1/data/3");

  // an unknown opcode in data.pkl (CRC fixed up by rebuilding the zip)
  zfile_t *pk = zfind(z, n, "/data.pkl");
  long g = memfind(pk->data, pk->len, "ctorch._utils", 13);
  assert_true(g > 0);
  pk->data[g] = 0xff;
  zip_save(bad, z, n, 0);
  assert_int_equal(open_file_err(bad, &err), PS_EUNSUPP);
  char want[64];
  snprintf(want, sizeof want, "P1/data.pkl byte %ld: unknown", g);
  assert_msg_has(&err, want);
  assert_msg_has(&err, bad);
  pk->data[g] = 'c';
  // a pickle cut short
  size_t keep = pk->len;
  pk->len = 40;
  zip_save(bad, z, n, 0);
  assert_true(open_file_err(bad, &err) < 0);
  assert_msg_has(&err, "P1/data.pkl byte");
  pk->len = keep;
  // BINGET of an unset memo key
  long q = memfind(pk->data, pk->len, "h\x05", 2);
  assert_true(q > 0);
  pk->data[q + 1] = 200;
  zip_save(bad, z, n, 0);
  assert_int_equal(open_file_err(bad, &err), PS_EFORMAT);
  assert_msg_has(&err, "memo key 200");
  pk->data[q + 1] = 5;

  // a storage shorter than its tensor: drop bytes from data/1 (layer 6, [3, 5])
  zfile_t *s1 = zfind(z, n, "/data/1");
  s1->len -= 8;
  zip_save(bad, z, n, 0);
  pt_file_t *f = NULL;
  assert_int_equal(pt_file_open(&f, bad, &err), 0);
  float buf[64];
  assert_int_equal(pt_file_read_tensor(f, PT_REPR_PER_RESIDUE, 0, buf, 64, &err), 0);
  assert_int_equal(pt_file_read_tensor(f, PT_REPR_PER_RESIDUE, 6, buf, 64, &err), PS_ETRUNC);
  assert_msg_has(&err, bad);
  assert_msg_has(&err, "representations[6]");
  assert_msg_has(&err, "storage '1'");
  assert_msg_has(&err, "52 bytes");
  assert_int_equal(pt_file_read_tensor(f, PT_REPR_PER_RESIDUE, 0, buf, 3, &err), PS_EDIM);  // caller's room
  assert_msg_has(&err, "room for 3");
  pt_file_destroy(&f);
  s1->len += 8;
  // the tensor asks for more elements than its storage declares
  long nm = memfind(pk->data, pk->len, "X\x01\x00\x00\x00" "1q", 7);  // key '1', then 'cpu', numel 15
  assert_true(nm > 0);
  long kk = memfind(pk->data + nm, pk->len - (size_t)nm, "K\x0ft", 3);
  assert_true(kk > 0);
  pk->data[nm + kk + 1] = 14;
  zip_save(bad, z, n, 0);
  assert_int_equal(read_all(bad, &err), PS_ETRUNC);
  assert_msg_has(&err, "needs elements [0, 15) of storage '1', which holds 14");
  pk->data[nm + kk + 1] = 15;
  // a missing storage entry
  zfile_t saved = *s1;
  zfile_t z2[16];
  size_t m = 0;
  for (size_t k = 0; k < n; k++)
    if (&z[k] != s1) z2[m++] = z[k];
  zip_save(bad, z2, m, 0);
  assert_int_equal(read_all(bad, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "P1/data/1");
  (void)saved;
  // a non-contiguous stride: (5, 1) -> (1, 3) for layer 0's [3, 5]
  long st = memfind(pk->data, pk->len, "K\x05K\x01\x86", 5);
  assert_true(st > 0);
  pk->data[st + 1] = 1;
  pk->data[st + 3] = 3;
  zip_save(bad, z, n, 0);
  assert_int_equal(read_all(bad, &err), PS_EUNSUPP);
  assert_msg_has(&err, "not contiguous (stride (1, 3))");
  assert_msg_has(&err, "representations[0]");
  pk->data[st + 1] = 5;
  pk->data[st + 3] = 1;
  // BININT1 6 -> NONE then the byte 6, an unknown opcode
  long k6 = memfind(pk->data, pk->len, "K\x06h\x05", 4);  // layer key 6 before the rebuild global
  assert_true(k6 > 0);
  pk->data[k6] = 'N';
  zip_save(bad, z, n, 0);
  assert_true(open_file_err(bad, &err) < 0);
  assert_msg_has(&err, "P1/data.pkl byte");
  pk->data[k6] = 'K';
  // the archive is all right again
  zip_save(bad, z, n, 0);
  assert_int_equal(read_all(bad, &err), 0);
  zfiles_free(z, n);
  free(c);
  free(b);
}

static void test_source_errors(void **state) {
  (void)state;
  char d[600], p[800];
  ps_err_t err = {0};
  emb_source_t *s = NULL;
  emb_record_t rec;
  // missing layer: the message lists the layers present
  snprintf(d, sizeof d, "%s/errs1", g_dir);
  mkdir(d, 0755);
  snprintf(p, sizeof p, "%s/P1.pt", d);
  write_small(p, "P1", 0);
  emb_source_opts_t o = {.path = d, .format = "pt", .level = EMB_LEVEL_RESIDUE, .layer = 7};
  assert_int_equal(emb_source_open(&s, &o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "P1.pt: layer 7 not in representations; layers present: 0, 6");
  // a later file lacking the layer of the first
  snprintf(p, sizeof p, "%s/P2.pt", d);
  {
    float x[SL * SD] = {0}, m[SD] = {0};
    const float *pr[1] = {x}, *mr[1] = {m};
    int layers[1] = {0};
    assert_int_equal(pt_write_extract(p, "P2", layers, 1, pr, mr, SL, SD, &err), 0);
  }
  o.layer = -1;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "P2.pt: layer 6 not in representations; layers present: 0");
  emb_source_destroy(&s);

  // label mismatch
  snprintf(d, sizeof d, "%s/errs2", g_dir);
  mkdir(d, 0755);
  snprintf(p, sizeof p, "%s/OTHER.pt", d);
  write_small(p, "P1 something", 0);
  o.path = d;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_EMISMATCH);
  assert_msg_has(&err, p);
  assert_msg_has(&err, "label 'P1 something' does not match the file name 'OTHER'");
  emb_source_destroy(&s);
  o.path = p;  // single file: the same rule
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_EMISMATCH);
  emb_source_destroy(&s);

  // dims that differ between files
  snprintf(d, sizeof d, "%s/errs3", g_dir);
  mkdir(d, 0755);
  snprintf(p, sizeof p, "%s/A.pt", d);
  write_small(p, "A", 0);
  snprintf(p, sizeof p, "%s/B.pt", d);
  {
    float x[SL * 6] = {0}, m[6] = {0};
    const float *pr[1] = {x}, *mr[1] = {m};
    int layers[1] = {6};
    assert_int_equal(pt_write_extract(p, "B", layers, 1, pr, mr, SL, 6, &err), 0);
  }
  o.path = d;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_EDIM);
  assert_msg_has(&err, "B.pt: representations[6] has dimension 6; the first file's is 5");
  emb_source_destroy(&s);

  // NaN: file, tensor, row and column
  snprintf(d, sizeof d, "%s/errs4", g_dir);
  mkdir(d, 0755);
  snprintf(p, sizeof p, "%s/N1.pt", d);
  write_small(p, "N1", 1);
  o.path = d;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_ENAN);
  assert_msg_has(&err, p);
  assert_msg_has(&err, "representations[6]: NaN at row 2, column 3");
  emb_source_destroy(&s);
  o.allow_nonfinite = 1;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_true(isnan(rec.rows[2 * SD + 3]));
  emb_source_destroy(&s);
  o.allow_nonfinite = 0;

  // a broken file inside a directory: named in the error
  snprintf(p, sizeof p, "%s/N0.pt", d);
  spit(p, "PK\x03\x04 not really", 15);
  assert_true(emb_source_open(&s, &o, &err) < 0);
  assert_msg_has(&err, p);
  // a path that does not exist
  o.path = "/nonexistent/dir";
  assert_true(emb_source_open(&s, &o, &err) < 0);
  assert_msg_has(&err, "/nonexistent/dir");
}

int main(void) {
  shared_dir();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_listing),       cmocka_unit_test(test_real_vs_torch),
      cmocka_unit_test(test_real_vs_safetensors),
      cmocka_unit_test(test_writer_bytes_match_torch_save), cmocka_unit_test(test_writer_roundtrip),
      cmocka_unit_test(test_writer_vs_torch),    cmocka_unit_test(test_source_dir),
      cmocka_unit_test(test_deflated),           cmocka_unit_test(test_broken),
      cmocka_unit_test(test_source_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
