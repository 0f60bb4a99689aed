// HDF5 embeddings (h5emb.h): writer -> reader round trips at protein and residue level (exact
// floats, order, ids that are not link names), skip/count, pooling of [L, d] at protein level;
// a cross-check against h5py (files in the UniProt layout written by Python read back to the
// same floats, and our files read by h5py; skipped when /usr/bin/python3 lacks h5py/numpy);
// broken inputs (truncated file, not HDF5, dims disagreeing across datasets, wrong rank, NaN,
// bad original_id) giving errors that name the file and the dataset.
#include <errno.h>
#include <hdf5.h>
#include <limits.h>
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
#include <cmocka.h>

#include "fixture.h"

#include "emb.h"
#include "h5emb.h"

// ---- helpers -----------------------------------------------------------------------------

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

static emb_source_t *open_ok(const char *path, emb_level_t level) {
  emb_source_opts_t o = {.path = path, .format = "h5", .level = level, .layer = -1};
  emb_source_t *s = NULL;
  ps_err_t err = {0};
  int rc = h5_source_open(&s, &o, &err);
  if (rc < 0) fail_msg("open %s: %s", path, err.msg);
  assert_non_null(s);
  return s;
}

static int open_err(const char *path, emb_level_t level, ps_err_t *err) {
  emb_source_opts_t o = {.path = path, .format = "h5", .level = level, .layer = -1};
  emb_source_t *s = NULL;
  int rc = h5_source_open(&s, &o, err);
  if (rc >= 0) {
    emb_source_destroy(&s);
    fail_msg("%s opened but should not have", path);
  }
  assert_null(s);
  return rc;
}

// Deterministic, awkward values: signs, tiny and huge magnitudes, exact float bit patterns.
static float val(uint32_t rec, uint32_t row, uint32_t col) {
  uint32_t x = rec * 2654435761u ^ row * 40503u ^ col * 2246822519u;
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  float f = (float)(x & 0xffffff) / 16777216.0f - 0.5f;
  if ((x >> 24) % 7 == 0) f *= 1e30f;
  if ((x >> 24) % 11 == 0) f *= 1e-40f;  // subnormal
  return f;
}

static float *make_rows(uint32_t rec, uint32_t n, uint32_t d) {
  float *x = malloc((size_t)(n ? n : 1) * d * sizeof(float));
  assert_non_null(x);
  for (uint32_t r = 0; r < n; r++)
    for (uint32_t j = 0; j < d; j++) x[(size_t)r * d + j] = val(rec, r, j);
  return x;
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

// ---- round trips ---------------------------------------------------------------------------
static const char *k_ids[] = {"Q9Z999", "A0A183", "sp|P12345|NAME", "M5", ".", "P0/0 x", "Ü-unicode"};
#define N_IDS (sizeof k_ids / sizeof k_ids[0])

static void test_protein_roundtrip(void **state) {
  (void)state;
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  fx_path(path, sizeof path, "prot.h5");
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  const uint32_t D = 33;
  ps_err_t err = {0};
  h5emb_writer_t *w = NULL;
  assert_int_equal(h5emb_writer_open(&w, path, EMB_LEVEL_PROTEIN, &err), 0);
  assert_true(file_exists(tmp));
  for (uint32_t i = 0; i < N_IDS; i++) {
    float *x = make_rows(i, 1, D);
    int rc = h5emb_writer_add(w, k_ids[i], x, 1, D, &err);
    if (rc < 0) fail_msg("%s", err.msg);
    free(x);
  }
  assert_int_equal(h5emb_writer_count(w), N_IDS);
  assert_false(file_exists(path));
  assert_int_equal(h5emb_writer_close(&w, &err), 0);
  assert_null(w);
  assert_true(file_exists(path));
  assert_false(file_exists(tmp));

  emb_source_t *s = open_ok(path, EMB_LEVEL_PROTEIN);
  assert_int_equal(emb_source_count(s), N_IDS);
  assert_int_equal(h5_source_n_skipped(s), 0);
  emb_record_t rec;
  for (uint32_t i = 0; i < N_IDS; i++) {
    int rc = emb_source_next(s, &rec, &err);
    if (rc != 1) fail_msg("record %u: rc %d: %s", i, rc, err.msg);
    assert_string_equal(rec.id, k_ids[i]);  // written order, original ids restored
    assert_int_equal(rec.index, i);
    assert_int_equal(rec.n_rows, 1);
    assert_int_equal(rec.dim, D);
    float *x = make_rows(i, 1, D);
    assert_memory_equal(rec.rows, x, D * sizeof(float));  // bit-exact
    free(x);
  }
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  emb_source_destroy(&s);
  assert_null(s);
  emb_source_destroy(&s);

  // skip: records 0..2 skipped without reading, then 3; past the end is an error
  s = open_ok(path, EMB_LEVEL_PROTEIN);
  assert_int_equal(emb_source_skip(s, 3, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, k_ids[3]);
  assert_int_equal(rec.index, 3);
  int rc = emb_source_skip(s, N_IDS, &err);
  assert_int_equal(rc, PS_ETRUNC);
  assert_msg_has(&err, path);
  emb_source_destroy(&s);

  // residue level asked of a [d] file: an error naming the dataset
  rc = open_err(path, EMB_LEVEL_RESIDUE, &err);
  assert_int_equal(rc, PS_EDIM);
  assert_msg_has(&err, path);
  assert_msg_has(&err, "dataset 'Q9Z999'");
  assert_msg_has(&err, "residue level needs [L, d]");
}

static void test_residue_roundtrip(void **state) {
  (void)state;
  char path[PATH_MAX];
  fx_path(path, sizeof path, "res.h5");
  const uint32_t D = 20, NP = 40;
  ps_err_t err = {0};
  h5emb_writer_t *w = NULL;
  assert_int_equal(h5emb_writer_open(&w, path, EMB_LEVEL_RESIDUE, &err), 0);
  char id[32];
  for (uint32_t i = 0; i < NP; i++) {
    uint32_t L = 1 + (i * 37) % 300;
    float *x = make_rows(i, L, D);
    snprintf(id, sizeof id, "P%05u", (NP - i) * 7919 % 100000);  // not in name order
    int rc = h5emb_writer_add(w, id, x, L, D, &err);
    if (rc < 0) fail_msg("%s", err.msg);
    free(x);
  }
  assert_int_equal(h5emb_writer_close(&w, &err), 0);

  emb_source_t *s = open_ok(path, EMB_LEVEL_RESIDUE);
  emb_source_t *p = open_ok(path, EMB_LEVEL_PROTEIN);  // the same file, mean-pooled by emb.c
  assert_int_equal(emb_source_count(s), NP);
  assert_int_equal(emb_source_count(p), NP);
  emb_record_t rec, prec;
  for (uint32_t i = 0; i < NP; i++) {
    uint32_t L = 1 + (i * 37) % 300;
    snprintf(id, sizeof id, "P%05u", (NP - i) * 7919 % 100000);
    assert_int_equal(emb_source_next(s, &rec, &err), 1);
    assert_string_equal(rec.id, id);
    assert_int_equal(rec.n_rows, L);
    assert_int_equal(rec.dim, D);
    float *x = make_rows(i, L, D);
    assert_memory_equal(rec.rows, x, (size_t)L * D * sizeof(float));
    int rc = emb_source_next(p, &prec, &err);
    if (rc != 1) fail_msg("%s", err.msg);
    assert_string_equal(prec.id, id);
    assert_int_equal(prec.n_rows, 1);
    for (uint32_t j = 0; j < D; j++) {
      double acc = 0;
      for (uint32_t r = 0; r < L; r++) acc += x[(size_t)r * D + j];
      assert_true(prec.rows[j] == (float)(acc / L));
    }
    free(x);
  }
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  emb_source_destroy(&s);
  emb_source_destroy(&p);

  // an empty record at residue level reads back as 0 rows; pooling it is an error
  fx_path(path, sizeof path, "res0.h5");
  assert_int_equal(h5emb_writer_open(&w, path, EMB_LEVEL_RESIDUE, &err), 0);
  float one[3] = {1, 2, 3};
  assert_int_equal(h5emb_writer_add(w, "E0", NULL, 0, 3, &err), 0);
  assert_int_equal(h5emb_writer_add(w, "E1", one, 1, 3, &err), 0);
  assert_int_equal(h5emb_writer_close(&w, &err), 0);
  s = open_ok(path, EMB_LEVEL_RESIDUE);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(rec.n_rows, 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(rec.n_rows, 1);
  assert_memory_equal(rec.rows, one, sizeof one);
  emb_source_destroy(&s);
  s = open_ok(path, EMB_LEVEL_PROTEIN);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_EDIM);
  assert_msg_has(&err, "no rows to pool");
  emb_source_destroy(&s);
}

static void test_writer_errors(void **state) {
  (void)state;
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  fx_path(path, sizeof path, "werr.h5");
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  ps_err_t err = {0};
  h5emb_writer_t *w = NULL;
  float x[8] = {0};
  assert_int_equal(h5emb_writer_open(&w, path, EMB_LEVEL_PROTEIN, &err), 0);
  assert_int_equal(h5emb_writer_add(w, "A", x, 1, 8, &err), 0);
  assert_int_equal(h5emb_writer_add(w, "A", x, 1, 8, &err), PS_EFORMAT);
  assert_msg_has(&err, "duplicate id 'A'");
  assert_int_equal(h5emb_writer_add(w, "", x, 1, 8, &err), PS_EFORMAT);
  assert_msg_has(&err, "empty id");
  assert_int_equal(h5emb_writer_add(w, "B", x, 2, 4, &err), PS_EDIM);
  assert_msg_has(&err, "takes 1 row");
  assert_int_equal(h5emb_writer_add(w, "B", x, 1, 4, &err), PS_EDIM);
  assert_msg_has(&err, "dimension 4");
  assert_int_equal(h5emb_writer_add(w, "B", x, 1, 8, &err), 0);  // still usable after refusals
  assert_int_equal(h5emb_writer_count(w), 2);
  h5emb_writer_abort(&w);
  assert_null(w);
  h5emb_writer_abort(&w);
  assert_int_equal(h5emb_writer_close(&w, &err), 0);
  assert_false(file_exists(tmp));
  assert_false(file_exists(path));
  // cannot create
  int rc = h5emb_writer_open(&w, "/nonexistent-dir/x.h5", EMB_LEVEL_PROTEIN, &err);
  assert_true(rc < 0);
  assert_null(w);
  assert_msg_has(&err, "/nonexistent-dir/x.h5.tmp");
}

// ---- fixtures written with the raw HDF5 API --------------------------------------------------
static void raw_dataset(hid_t f, const char *name, hid_t ftype, int rank, const hsize_t *dims, const float *data) {
  hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t ds = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(ds >= 0);
  if (data) assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void test_broken_inputs(void **state) {
  (void)state;
  char path[PATH_MAX], big[PATH_MAX];
  ps_err_t err = {0};
  int rc;
  // missing file, empty file, text file
  rc = open_err("/nonexistent/e.h5", EMB_LEVEL_PROTEIN, &err);
  assert_int_equal(rc, -ENOENT);
  assert_msg_has(&err, "/nonexistent/e.h5");
  fx_path(path, sizeof path, "empty.h5");
  FILE *f = fopen(path, "w");
  fclose(f);
  assert_int_equal(open_err(path, EMB_LEVEL_PROTEIN, &err), PS_EFORMAT);
  assert_msg_has(&err, path);
  assert_msg_has(&err, "not an HDF5 file");
  fx_path(path, sizeof path, "text.h5");
  f = fopen(path, "w");
  for (int i = 0; i < 200; i++) fprintf(f, ">P%d\nMKVLAAGG\n", i);
  fclose(f);
  assert_int_equal(open_err(path, EMB_LEVEL_PROTEIN, &err), PS_EFORMAT);
  assert_msg_has(&err, "not an HDF5 file");
  assert_int_equal(open_err(fx_dir, EMB_LEVEL_PROTEIN, &err), -EISDIR);

  // truncated: a real file cut in half, and cut to its first 100 bytes
  fx_path(big, sizeof big, "big.h5");
  h5emb_writer_t *w = NULL;
  assert_int_equal(h5emb_writer_open(&w, big, EMB_LEVEL_PROTEIN, &err), 0);
  for (uint32_t i = 0; i < 64; i++) {
    char id[16];
    snprintf(id, sizeof id, "T%u", i);
    float *x = make_rows(i, 1, 128);
    assert_int_equal(h5emb_writer_add(w, id, x, 1, 128, &err), 0);
    free(x);
  }
  assert_int_equal(h5emb_writer_close(&w, &err), 0);
  struct stat st;
  assert_int_equal(stat(big, &st), 0);
  const off_t cuts[] = {st.st_size / 2, st.st_size - 1, 100};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
    fx_path(path, sizeof path, "trunc.h5");
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "head -c %lld '%s' > '%s'", (long long)cuts[k], big, path);
    assert_int_equal(system(cmd), 0);
    rc = open_err(path, EMB_LEVEL_PROTEIN, &err);
    if (rc != PS_ETRUNC && rc != PS_EFORMAT) fail_msg("cut at %lld: rc %d: %s", (long long)cuts[k], rc, err.msg);
    assert_msg_has(&err, path);
    printf("  cut at %lld bytes of %lld: %s\n", (long long)cuts[k], (long long)st.st_size, err.msg);
    if (cuts[k] > 100) assert_int_equal(rc, PS_ETRUNC);
  }

  // dims disagree across datasets; rank 3; non-string original_id; NaN
  const float z[2 * 3 * 4] = {0};
  hsize_t d4[1] = {4}, d5[1] = {5}, d34[2] = {3, 4}, d234[3] = {2, 3, 4};
  fx_path(path, sizeof path, "dims.h5");
  hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  raw_dataset(h, "A1", H5T_IEEE_F32LE, 1, d4, z);
  raw_dataset(h, "B2", H5T_IEEE_F32LE, 1, d5, z);
  H5Fclose(h);
  assert_int_equal(open_err(path, EMB_LEVEL_PROTEIN, &err), PS_EDIM);
  assert_msg_has(&err, path);
  assert_msg_has(&err, "dataset 'B2' (record 1) has dimension 5 but dataset 'A1' (record 0) has 4");

  fx_path(path, sizeof path, "rank3.h5");
  h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  raw_dataset(h, "A1", H5T_IEEE_F32LE, 2, d34, z);
  raw_dataset(h, "C3", H5T_IEEE_F32LE, 3, d234, z);
  H5Fclose(h);
  assert_int_equal(open_err(path, EMB_LEVEL_RESIDUE, &err), PS_EDIM);
  assert_msg_has(&err, "dataset 'C3' (record 1) has 3 dimensions");

  fx_path(path, sizeof path, "badattr.h5");
  h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  raw_dataset(h, "A1", H5T_IEEE_F32LE, 1, d4, z);
  hid_t ds = H5Dopen2(h, "A1", H5P_DEFAULT);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(ds, "original_id", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  int v = 7;
  H5Awrite(a, H5T_NATIVE_INT, &v);
  H5Aclose(a);
  H5Sclose(sp);
  H5Dclose(ds);
  H5Fclose(h);
  emb_source_t *s = open_ok(path, EMB_LEVEL_PROTEIN);
  emb_record_t rec;
  assert_int_equal(emb_source_next(s, &rec, &err), PS_EFORMAT);
  assert_msg_has(&err, "dataset 'A1' (record 0): attribute original_id is not one string");
  emb_source_destroy(&s);

  fx_path(path, sizeof path, "nan.h5");
  assert_int_equal(h5emb_writer_open(&w, path, EMB_LEVEL_RESIDUE, &err), 0);
  float x[3 * 4] = {0};
  assert_int_equal(h5emb_writer_add(w, "ok0", x, 3, 4, &err), 0);
  assert_int_equal(h5emb_writer_add(w, "ok1", x, 3, 4, &err), 0);
  x[1 * 4 + 3] = NAN;
  assert_int_equal(h5emb_writer_add(w, "bad2", x, 3, 4, &err), 0);
  assert_int_equal(h5emb_writer_close(&w, &err), 0);
  s = open_ok(path, EMB_LEVEL_RESIDUE);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_ENAN);
  assert_msg_has(&err, path);
  assert_msg_has(&err, "record 2 (id bad2): NaN at row 1, column 3");
  emb_source_destroy(&s);
  emb_source_opts_t o = {.path = path, .level = EMB_LEVEL_RESIDUE, .allow_nonfinite = 1};
  assert_int_equal(h5_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_skip(s, 2, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_true(isnan(rec.rows[7]));
  emb_source_destroy(&s);

  // in-memory images: junk and a cut image
  unsigned char junk[64] = "\x89HDF\r\n\x1a\n then nothing sensible";
  emb_source_opts_t oi = {.path = "junk-image", .level = EMB_LEVEL_PROTEIN};
  rc = h5_source_open_image(&s, &oi, junk, sizeof junk, &err);
  assert_true(rc < 0);
  assert_null(s);
  assert_msg_has(&err, "junk-image");
  rc = h5_source_open_image(&s, &oi, "hello", 5, &err);
  assert_int_equal(rc, PS_EFORMAT);
  assert_msg_has(&err, "not an HDF5 file image");
}

static void test_skipped_objects(void **state) {
  (void)state;
  char path[PATH_MAX];
  fx_path(path, sizeof path, "mixed.h5");
  const float z[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  hsize_t d4[1] = {4}, d24[2] = {2, 4};
  hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  raw_dataset(h, "P1", H5T_IEEE_F32LE, 1, d4, z);
  raw_dataset(h, "P2", H5T_IEEE_F64BE, 2, d24, z);  // [L, d] float64 big-endian: pooled
  raw_dataset(h, "int", H5T_STD_I32LE, 1, d4, NULL);
  raw_dataset(h, "scalar", H5T_IEEE_F32LE, 0, NULL, z);
  hid_t g = H5Gcreate2(h, "group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  raw_dataset(g, "nested", H5T_IEEE_F32LE, 1, d4, z);
  H5Gclose(g);
  H5Lcreate_soft("/P1", h, "soft", H5P_DEFAULT, H5P_DEFAULT);
  H5Lcreate_external("other.h5", "/x", h, "ext", H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(h);
  emb_source_t *s = open_ok(path, EMB_LEVEL_PROTEIN);
  assert_int_equal(emb_source_count(s), 2);
  assert_int_equal(h5_source_n_skipped(s), 5);
  ps_err_t err = {0};
  emb_record_t rec;
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, "P1");
  assert_memory_equal(rec.rows, z, 4 * sizeof(float));
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, "P2");
  const float mean[4] = {3, 4, 5, 6};
  assert_memory_equal(rec.rows, mean, sizeof mean);
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  emb_source_destroy(&s);
}

// ---- determinism -----------------------------------------------------------------------------
// Identical input must give byte-identical files: object headers carry no timestamps. The two
// writes are more than a second apart, so tracked (second-resolution) times would differ.
static void write_fixed(const char *path, emb_level_t level) {
  ps_err_t err = {0};
  h5emb_writer_t *w = NULL;
  assert_int_equal(h5emb_writer_open(&w, path, level, &err), 0);
  for (uint32_t i = 0; i < N_IDS; i++) {
    uint32_t n = level == EMB_LEVEL_PROTEIN ? 1 : 1 + 5 * i;
    float *x = make_rows(i, n, 24);
    if (h5emb_writer_add(w, k_ids[i], x, n, 24, &err) < 0) fail_msg("%s", err.msg);
    free(x);
  }
  if (h5emb_writer_close(&w, &err) < 0) fail_msg("%s", err.msg);
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  unsigned char *b = malloc((size_t)n);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void test_deterministic_bytes(void **state) {
  (void)state;
  const emb_level_t levels[] = {EMB_LEVEL_PROTEIN, EMB_LEVEL_RESIDUE};
  char a[PATH_MAX], b[PATH_MAX];
  fx_path(a, sizeof a, "det_a_p.h5");
  write_fixed(a, levels[0]);
  char a2[PATH_MAX];
  fx_path(a2, sizeof a2, "det_a_r.h5");
  write_fixed(a2, levels[1]);
  usleep(1100 * 1000);
  for (int k = 0; k < 2; k++) {
    const char *first = k ? a2 : a;
    fx_path(b, sizeof b, k ? "det_b_r.h5" : "det_b_p.h5");
    write_fixed(b, levels[k]);
    size_t na, nb;
    unsigned char *xa = slurp(first, &na), *xb = slurp(b, &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
      if (xa[i] != xb[i]) fail_msg("%s and %s differ at byte %zu (of %zu)", first, b, i, na);
    free(xa);
    free(xb);
    emb_source_t *s = open_ok(b, levels[k]);  // and the file is still a valid one
    assert_int_equal(emb_source_count(s), N_IDS);
    emb_source_destroy(&s);
  }
}

// ---- h5py cross-check ------------------------------------------------------------------------
static int have_h5py(void) { return system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") == 0; }

// Python writes uniprot.h5 (per protein, name order, float32/float16/float64, one dataset named
// by a hash with original_id, a group and a string dataset to skip) and residues.h5 ([L, d],
// chunked + gzip), and expected.bin: for each record in name order, id\n then rows as float32.
static const char k_py_write[] =
    "import sys, h5py, numpy as np\n"
    "d = sys.argv[1]\n"
    "rng = np.random.default_rng(7)\n"
    "exp = open(d + '/expected.txt', 'w'); raw = open(d + '/expected.bin', 'wb')\n"
    "with h5py.File(d + '/uniprot.h5', 'w') as f:\n"
    "    recs = {}\n"
    "    for i in range(30):\n"
    "        acc = 'P%05d' % (i * 7919 % 99991)\n"
    "        dt = [np.float32, np.float16, np.float64][i % 3]\n"
    "        e = float(rng.integers(-4, 3)) if dt is np.float16 else float(rng.integers(-8, 8))\n"
    "        x = (rng.standard_normal(64) * 10.0 ** e).astype(dt)\n"
    "        f.create_dataset(acc, data=x)\n"
    "        recs[acc] = (acc, x.astype(np.float32))\n"
    "    x = rng.standard_normal(64).astype(np.float32)\n"
    "    ds = f.create_dataset('5d41402abc4b2a76b9719d911017c592', data=x)\n"
    "    ds.attrs['original_id'] = 'sp|Q00001|WITH_ORIGINAL_ID'\n"
    "    recs['5d41402abc4b2a76b9719d911017c592'] = ('sp|Q00001|WITH_ORIGINAL_ID', x)\n"
    "    x = rng.standard_normal(64).astype(np.float32)\n"
    "    ds = f.create_dataset('fixedattr', data=x)\n"
    "    ds.attrs['original_id'] = np.string_('FIXED_ID')\n"
    "    recs['fixedattr'] = ('FIXED_ID', x)\n"
    "    f.create_group('meta').create_dataset('x', data=np.zeros(64, np.float32))\n"
    "    f.create_dataset('version', data='1.0')\n"
    "    f.create_dataset('counts', data=np.arange(64, dtype=np.int64))\n"
    "    for k in sorted(recs, key=lambda s: s.encode()):\n"
    "        exp.write(recs[k][0] + '\\n'); raw.write(recs[k][1].tobytes())\n"
    "with h5py.File(d + '/residues.h5', 'w') as f:\n"
    "    for i in range(12):\n"
    "        acc = 'R%03d' % i\n"
    "        x = rng.standard_normal((1 + 17 * i, 48)).astype(np.float32)\n"
    "        f.create_dataset(acc, data=x, chunks=(min(8, x.shape[0]), 48), compression='gzip', shuffle=True)\n"
    "        exp.write(acc + '\\n'); raw.write(x.tobytes())\n";

// Python reads our writer's file (ours.h5) and checks ids, order, values and original_id.
static const char k_py_read[] =
    "import sys, h5py, numpy as np\n"
    "d = sys.argv[1]\n"
    "with h5py.File(d + '/ours.h5', 'r') as f:\n"
    "    names = list(f.keys())\n"
    "    want = [l.rstrip('\\n') for l in open(d + '/ours.txt')]\n"
    "    raw = np.fromfile(d + '/ours.bin', dtype=np.float32)\n"
    "    got = []\n"
    "    off = 0\n"
    "    for n in names:\n"
    "        ds = f[n]\n"
    "        got.append(ds.attrs.get('original_id', n))\n"
    "        x = ds[()].astype(np.float32).ravel()\n"
    "        if not np.array_equal(x.view(np.uint32), raw[off:off + x.size].view(np.uint32)):\n"
    "            print('values differ in', n); sys.exit(1)\n"
    "        off += x.size\n"
    "    if got != want or off != raw.size:\n"
    "        print('ids/order differ', got, want, off, raw.size); sys.exit(1)\n";

static void run_py(const char *script_name, const char *script) {
  char p[PATH_MAX], cmd[3 * PATH_MAX];
  fx_path(p, sizeof p, script_name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(script, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", p, fx_dir);
  int st = system(cmd);
  if (st != 0) fail_msg("python script %s failed (%d)", script_name, st);
}

static void check_against_expected(const char *h5, emb_level_t level, FILE *ids, FILE *raw, size_t n, uint64_t skipped) {
  emb_source_t *s = open_ok(h5, level);
  assert_int_equal(emb_source_count(s), (int64_t)n);
  assert_int_equal(h5_source_n_skipped(s), skipped);
  ps_err_t err = {0};
  emb_record_t rec;
  char want[256];
  for (size_t i = 0; i < n; i++) {
    int rc = emb_source_next(s, &rec, &err);
    if (rc != 1) fail_msg("%s record %zu: %d %s", h5, i, rc, err.msg);
    assert_non_null(fgets(want, sizeof want, ids));
    want[strcspn(want, "\n")] = 0;
    assert_string_equal(rec.id, want);
    size_t nv = (size_t)rec.n_rows * rec.dim;
    float *x = malloc(nv * sizeof(float));
    assert_int_equal(fread(x, sizeof(float), nv, raw), nv);
    for (size_t j = 0; j < nv; j++)
      if (memcmp(&x[j], &rec.rows[j], 4) != 0)
        fail_msg("%s: record %zu (%s) value %zu: h5py %.9g, ours %.9g", h5, i, rec.id, j, x[j], rec.rows[j]);
    free(x);
  }
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  emb_source_destroy(&s);
}

static void test_h5py_crosscheck(void **state) {
  (void)state;
  if (!have_h5py()) {
    printf("  /usr/bin/python3 has no h5py/numpy: skipped\n");
    skip();
  }
  run_py("write.py", k_py_write);
  char p[PATH_MAX];
  fx_path(p, sizeof p, "expected.txt");
  FILE *ids = fopen(p, "r");
  fx_path(p, sizeof p, "expected.bin");
  FILE *raw = fopen(p, "rb");
  assert_non_null(ids);
  assert_non_null(raw);
  fx_path(p, sizeof p, "uniprot.h5");
  check_against_expected(p, EMB_LEVEL_PROTEIN, ids, raw, 32, 3);
  fx_path(p, sizeof p, "residues.h5");
  check_against_expected(p, EMB_LEVEL_RESIDUE, ids, raw, 12, 0);
  fclose(ids);
  fclose(raw);

  // and the other way: our writer's file read by h5py (h5py lists names in name order)
  char h5[PATH_MAX];
  fx_path(h5, sizeof h5, "ours.h5");
  ps_err_t err = {0};
  h5emb_writer_t *w = NULL;
  assert_int_equal(h5emb_writer_open(&w, h5, EMB_LEVEL_RESIDUE, &err), 0);
  const char *ids_in[] = {"B2", "A1", "x/y", "C3"};  // "x/y" is stored as record_2 + original_id
  const char *ids_sorted[] = {"A1", "B2", "C3", "x/y"};
  const int order[] = {1, 0, 3, 2};
  for (int i = 0; i < 4; i++) {
    float *x = make_rows((uint32_t)i, (uint32_t)(2 + i), 16);
    assert_int_equal(h5emb_writer_add(w, ids_in[i], x, (uint32_t)(2 + i), 16, &err), 0);
    free(x);
  }
  assert_int_equal(h5emb_writer_close(&w, &err), 0);
  fx_path(p, sizeof p, "ours.txt");
  FILE *t = fopen(p, "w");
  fx_path(p, sizeof p, "ours.bin");
  FILE *b = fopen(p, "wb");
  for (int k = 0; k < 4; k++) {
    int i = order[k];
    fprintf(t, "%s\n", ids_sorted[k]);
    float *x = make_rows((uint32_t)i, (uint32_t)(2 + i), 16);
    fwrite(x, sizeof(float), (size_t)(2 + i) * 16, b);
    free(x);
  }
  fclose(t);
  fclose(b);
  run_py("read.py", k_py_read);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protein_roundtrip), cmocka_unit_test(test_residue_roundtrip),
      cmocka_unit_test(test_writer_errors),     cmocka_unit_test(test_broken_inputs),
      cmocka_unit_test(test_skipped_objects),   cmocka_unit_test(test_h5py_crosscheck),
      cmocka_unit_test(test_deterministic_bytes),
  };
  h5emb_quiet();
  return cmocka_run_group_tests_name("h5emb", tests, fx_setup, fx_teardown);
}
