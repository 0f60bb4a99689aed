// ESM extract.py .pt files read through ptfile.h (the directory source and the writer are in
// test_ptsource.c):
//  - every testvectors/esm2-tiny/esm-extract/*.pt reads back to exactly the floats torch.load
//    gives (dumped by /usr/bin/python3 during the test; skipped without torch), and, without
//    Python, per_residue / mean tensors match expected.safetensors within 1e-4;
//  - files torch.save writes (pt_fixtures.py): float32 / float16 / bfloat16 with 300 layers, a
//    view at an offset, pickle protocol 4 with float64 read as torch.load reads them; a
//    transposed view is refused; deflated archives (re-packed here) read the same;
//  - broken inputs give errors naming the file and the position: truncated zip, bad magic,
//    legacy pickle, bad pickle opcode, storage shorter than the tensor, missing storage,
//    non-contiguous stride, CRC mismatch.
#include <dirent.h>
#include <errno.h>
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
#include <zip.h>
#include <cmocka.h>

#include "fixture.h"
#include "pt_test.h"

static const char *const NAMES[] = {"P30047", "P62328", "Q8NFA2", "Q9H9T3", "edge_rare", "edge_single"};
#define N_NAMES 6

static void extract_path(char *buf, size_t cap, const char *name) {
  if (!fx_find_shared("testvectors/esm2-tiny/esm-extract/P30047.pt"))
    fail_msg("no testvectors/esm2-tiny/esm-extract in ../shared ($PROTSAE_SHARED)");
  snprintf(buf, cap, "%s/testvectors/esm2-tiny/esm-extract/%s.pt", fx_shared_dir, name);
}

static uint8_t *slurp(const char *path, size_t *len) { return (uint8_t *)fx_read_file(path, len); }

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

// ---- crafting broken files: a torch archive's entries in memory, re-zipped by libzip ---------
typedef struct {
  char name[160];
  uint8_t *data;
  size_t len;
} zfile_t;

static size_t zip_load(const char *path, zfile_t *out, size_t max) {
  int ze = 0;
  zip_t *za = zip_open(path, ZIP_RDONLY, &ze);
  if (!za) fail_msg("%s: libzip cannot open it (%d)", path, ze);
  zip_int64_t n = zip_get_num_entries(za, 0);
  assert_true(n > 0 && (size_t)n <= max);
  for (zip_int64_t k = 0; k < n; k++) {
    zip_stat_t st;
    assert_int_equal(zip_stat_index(za, (zip_uint64_t)k, ZIP_FL_ENC_RAW, &st), 0);
    snprintf(out[k].name, sizeof out[k].name, "%s", st.name);
    out[k].data = malloc(st.size + 1);
    out[k].len = (size_t)st.size;
    zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)k, 0);
    assert_non_null(zf);
    assert_int_equal(zip_fread(zf, out[k].data, st.size), (zip_int64_t)st.size);
    zip_fclose(zf);
  }
  zip_discard(za);
  return (size_t)n;
}

static void zfiles_free(zfile_t *z, size_t n) {
  for (size_t k = 0; k < n; k++) free(z[k].data);
}

// A plain zip of the entries, stored or deflated.
static void zip_save(const char *path, const zfile_t *z, size_t n, int deflated) {
  int ze = 0;
  zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
  if (!za) fail_msg("%s: libzip cannot create it (%d)", path, ze);
  for (size_t k = 0; k < n; k++) {
    zip_source_t *src = zip_source_buffer(za, z[k].data, z[k].len, 0);
    assert_non_null(src);
    zip_int64_t i = zip_file_add(za, z[k].name, src, ZIP_FL_ENC_RAW);
    assert_true(i >= 0);
    assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)i, deflated ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0), 0);
  }
  if (zip_close(za) < 0) fail_msg("%s: %s", path, zip_strerror(za));
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

// ---- expected.safetensors (parsed here, independently of the library) ----------------------
typedef struct {
  uint8_t *buf;
  size_t len;
  char *hdr;
  size_t data0;
} st_file_t;

static void st_load(st_file_t *s) {
  char p[PATH_MAX + 128];
  snprintf(p, sizeof p, "%s/testvectors/esm2-tiny/expected.safetensors", fx_shared_dir);
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
  char dir[PATH_MAX + 128], p0[PATH_MAX + 128];
  extract_path(p0, sizeof p0, NAMES[0]);
  snprintf(dir, sizeof dir, "%s/testvectors/esm2-tiny/esm-extract", fx_shared_dir);
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
  if (!pt_have_torch()) {
    printf("# /usr/bin/python3 cannot import torch (python3-torch): skipped\n");
    skip();
  }
  char paths[N_NAMES][PATH_MAX + 128];
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
  char p0[PATH_MAX + 64];
  extract_path(p0, sizeof p0, NAMES[0]);  // finds the shared data
  st_file_t st;
  st_load(&st);
  double worst = 0;
  for (int i = 0; i < N_NAMES; i++) {
    char p[PATH_MAX + 128];
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
  char dir[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/testvectors/esm2-tiny/esm-extract", fx_shared_dir);
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

// What torch.save writes beyond extract.py's float32 (pt_fixtures.py): 300 layers in float32,
// float16 and bfloat16; float16 / bfloat16 / a view at an offset / protocol 4 with float64.
static void test_torch_files(void **state) {
  (void)state;
  PT_NEED_FIXTURES();
  const char *dtn[3] = {"float32", "float16", "bfloat16"};
  char many[3][PATH_MAX];
  const char *mp[3];
  for (int t = 0; t < 3; t++) {
    char rel[64];
    snprintf(rel, sizeof rel, "many/many.%s.pt", dtn[t]);
    mp[t] = pt_fx(many[t], sizeof many[t], rel);
    pt_file_t *f = open_file_ok(mp[t]);
    assert_string_equal(pt_file_label(f), "many layers \xce\xb1");
    char arch[32];
    snprintf(arch, sizeof arch, "many.%s", dtn[t]);
    assert_string_equal(pt_file_archive_name(f), arch);
    const int *ls;
    assert_int_equal(pt_file_layers(f, PT_REPR_PER_RESIDUE, &ls), 300);
    assert_int_equal(ls[0], 1);  // layers 1..299 and 70000, ascending
    assert_int_equal(ls[298], 299);
    assert_int_equal(ls[299], 70000);
    assert_int_equal(pt_file_layers(f, PT_REPR_MEAN, NULL), 300);
    pt_file_destroy(&f);
  }
  torch_check("many_dump", mp, 3, NULL);
  char hp[PATH_MAX], bp[PATH_MAX], vp[PATH_MAX], p4[PATH_MAX], tp[PATH_MAX];
  const char *tm[4] = {pt_fx(hp, sizeof hp, "torchmade/h.pt"), pt_fx(bp, sizeof bp, "torchmade/b.pt"),
                       pt_fx(vp, sizeof vp, "torchmade/v.pt"), pt_fx(p4, sizeof p4, "torchmade/p4.pt")};
  torch_check("torchmade_dump", tm, 4, NULL);
  // a transposed view is refused with a clear message
  pt_file_t *f = open_file_ok(pt_fx(tp, sizeof tp, "torchmade/t.pt"));
  float buf[200];
  ps_err_t err = {0};
  assert_int_equal(pt_file_read_tensor(f, PT_REPR_PER_RESIDUE, 4, buf, 200, &err), PS_EUNSUPP);
  assert_msg_has(&err, "t.pt");
  assert_msg_has(&err, "not contiguous");
  assert_msg_has(&err, "representations[4]");
  pt_file_destroy(&f);
}

// Deflated entries (zip tools re-packing a .pt) read back the same.
static void test_deflated(void **state) {
  (void)state;
  char p[PATH_MAX + 128], q[PATH_MAX + 64];
  extract_path(p, sizeof p, "P62328");
  zfile_t z[16];
  size_t n = zip_load(p, z, 16);
  assert_int_equal(n, 8);
  snprintf(q, sizeof q, "%s/P62328.pt", fx_dir);
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
  fx_write_file(q, bytes, len);
  free(bytes);
  ps_err_t err = {0};
  assert_true(read_all(q, &err) < 0);
  assert_msg_has(&err, q);
  zfiles_free(z, n);
}

static void test_broken(void **state) {
  (void)state;
  PT_NEED_FIXTURES();
  char good[PATH_MAX], bad[PATH_MAX];
  pt_fx(good, sizeof good, "small/P1.pt");  // torch.save of layers {0, 6}, [3, 5] (pt_fixtures.py)
  fx_path(bad, sizeof bad, "bad.pt");
  size_t len;
  uint8_t *b = slurp(good, &len);
  ps_err_t err = {0};
  int rc;

  // truncations anywhere: a clean error naming the file
  for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 37)) {
    fx_write_file(bad, b, cut);
    memset(&err, 0, sizeof err);
    rc = read_all(bad, &err);
    if (rc >= 0) fail_msg("file cut at %zu of %zu bytes read without error", cut, len);
    assert_msg_has(&err, bad);
  }
  fx_write_file(bad, b, len - 10);
  open_file_err(bad, &err);
  assert_msg_has(&err, "end-of-central-directory");

  // bad magic
  uint8_t *c = malloc(len);
  memcpy(c, b, len);
  memcpy(c, "XXXX", 4);
  fx_write_file(bad, c, len);
  assert_int_equal(open_file_err(bad, &err), PS_EFORMAT);
  assert_msg_has(&err, "byte 0: bad magic");
  // a legacy torch (< 1.6) file: a bare pickle
  fx_write_file(bad, "\x80\x02\x8a\x0alZ\xfc\x9c", 8);
  assert_int_equal(open_file_err(bad, &err), PS_EUNSUPP);
  assert_msg_has(&err, "legacy");

  // CRC mismatch: flip one float bit of the last storage
  memcpy(c, b, len);
  zfile_t z[16];
  size_t n = zip_load(good, z, 16);
  long at = memfind(b, len, z[n - 2].data, z[n - 2].len);  // data/3 bytes in the file
  assert_true(at > 0);
  c[at + 2] ^= 1;
  fx_write_file(bad, c, len);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_listing), cmocka_unit_test(test_real_vs_torch),
      cmocka_unit_test(test_real_vs_safetensors), cmocka_unit_test(test_torch_files),
      cmocka_unit_test(test_deflated), cmocka_unit_test(test_broken),
  };
  return cmocka_run_group_tests(tests, pt_setup, fx_teardown);
}
