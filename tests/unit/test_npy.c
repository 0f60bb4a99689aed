// npy (npy.h): header parsing (v1/v2/v3, dtypes, Fortran order, big-endian, bad shapes), writer
// -> reader round trips (f32 / f16, protein level and residue level with offsets, ids from a
// file / the FASTA order / row<i>), files written by numpy (every version, f4/f2/f8, int32
// offsets) read to the exact floats and our files read by numpy (skipped without numpy),
// skip/resume, and broken inputs (bad magic, truncated header / data, wrong offsets, ids count
// mismatch, duplicate ids, NaN) giving errors that name the file and the position.
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
#include <cmocka.h>

#include "fixture.h"

#include "emb.h"
#include "npy.h"

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

static int have_numpy(void) { return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

static float val(uint32_t row, uint32_t col) {
  uint32_t x = row * 2654435761u ^ col * 2246822519u;
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  float f = (float)(x & 0xffffff) / 16777216.0f - 0.5f;
  return (x & 0x1000000) ? f * 100.0f : f * 0.01f;
}

static emb_source_t *src_open(const emb_source_opts_t *o) {
  emb_source_t *s = NULL;
  ps_err_t err = {0};
  if (npy_source_open(&s, o, &err) < 0) fail_msg("open %s: %s", o->path, err.msg);
  assert_non_null(s);
  return s;
}

static int src_open_err(const emb_source_opts_t *o, ps_err_t *err) {
  emb_source_t *s = NULL;
  int rc = npy_source_open(&s, o, err);
  if (rc >= 0) {
    emb_source_destroy(&s);
    fail_msg("%s opened but should not have", o->path);
  }
  assert_null(s);
  return rc;
}

// A raw NPY v1 file: dict text as given (padded), then n bytes of data.
static void write_npy_raw(const char *path, int version, const char *dict, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  size_t pre = version == 1 ? 10 : 12, dl = strlen(dict);
  size_t total = (pre + dl + 1 + 63) / 64 * 64;
  size_t hl = total - pre;
  fwrite("\x93NUMPY", 1, 6, f);
  fputc(version, f);
  fputc(0, f);
  for (size_t i = 0; i < pre - 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
  fputs(dict, f);
  for (size_t i = pre + dl; i < total - 1; i++) fputc(' ', f);
  fputc('\n', f);
  if (n) fwrite(data, 1, n, f);
  fclose(f);
}

// ---- header ------------------------------------------------------------------------------------
static int parse(const char *dict, int version, npy_header_t *h, ps_err_t *err) {
  char p[256];
  fx_path(p, sizeof p, "hdr.npy");
  write_npy_raw(p, version, dict, NULL, 0);
  FILE *f = fopen(p, "rb");
  int rc = npy_read_header(f, "hdr.npy", h, err);
  fclose(f);
  return rc;
}

static void test_header(void **state) {
  (void)state;
  npy_header_t h;
  ps_err_t err = {0};
  for (int v = 1; v <= 3; v++) {
    assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", v, &h, &err), 0);
    assert_int_equal(h.version, v);
    assert_int_equal(h.dtype, NPY_F32);
    assert_int_equal(h.ndim, 2);
    assert_int_equal(h.shape[0], 3);
    assert_int_equal(h.shape[1], 4);
    assert_int_equal(h.data_offset % 64, 0);
  }
  assert_int_equal(parse("{\"descr\":\"|f2\",\"shape\":(7,),\"fortran_order\":False}", 1, &h, &err), 0);
  assert_int_equal(h.dtype, NPY_F16);
  assert_int_equal(h.ndim, 1);
  assert_int_equal(h.shape[0], 7);
  assert_int_equal(h.shape[1], 1);
  assert_int_equal(parse("{'descr': '<i8', 'fortran_order': False, 'shape': (3L, 2L), }", 1, &h, &err), 0);  // Python 2
  assert_int_equal(h.dtype, NPY_I64);
  assert_int_equal(parse("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 5), }", 1, &h, &err), 0);
  assert_int_equal(h.esize, 8);
  // refusals name the file and the byte
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", 1, &h, &err), PS_EUNSUPP);
  assert_msg_has(&err, "hdr.npy");
  assert_msg_has(&err, "Fortran");
  assert_int_equal(parse("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", 1, &h, &err), PS_EUNSUPP);
  assert_msg_has(&err, "big-endian");
  assert_int_equal(parse("{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }", 1, &h, &err), PS_EUNSUPP);
  assert_msg_has(&err, "'<u2'");
  assert_msg_has(&err, "byte ");
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 5), }", 1, &h, &err), PS_EDIM);
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 1, &h, &err), PS_EDIM);
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3 4), }", 1, &h, &err), PS_EFORMAT);
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4), }", 1, &h, &err), PS_EFORMAT);
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4", 1, &h, &err), PS_EFORMAT);
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3, 4), }", 1, &h, &err), PS_EFORMAT);
  assert_int_equal(parse("{'descr': '<f4', 'shape': (3, 4), }", 1, &h, &err), PS_EFORMAT);
  assert_int_equal(parse("{'fortran_order': False, 'shape': (3, 4), }", 1, &h, &err), PS_EFORMAT);
  assert_msg_has(&err, "descr");
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 4), }", 1, &h, &err),
                   PS_EFORMAT);
  assert_int_equal(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 1, &h, &err),
                   PS_EFORMAT);
  // preamble faults, from memory
  const uint8_t bad[] = "\x93NUMPZ\x01\x00\x10\x00{}";
  assert_int_equal(npy_parse_header(bad, sizeof bad - 1, "m.npy", &h, &err), PS_EFORMAT);
  assert_msg_has(&err, "m.npy: byte 0");
  assert_msg_has(&err, "magic");
  const uint8_t v4[] = "\x93NUMPY\x04\x00\x10\x00\x00\x00{}";
  assert_int_equal(npy_parse_header(v4, sizeof v4 - 1, "m.npy", &h, &err), PS_EUNSUPP);
  assert_msg_has(&err, "version 4");
  const uint8_t shortpre[] = "\x93NUMPY\x02\x00\x10";
  assert_int_equal(npy_parse_header(shortpre, sizeof shortpre - 1, "m.npy", &h, &err), PS_ETRUNC);
  const uint8_t trunc[] = "\x93NUMPY\x01\x00\x40\x00{'descr': '<f4'";
  assert_int_equal(npy_parse_header(trunc, sizeof trunc - 1, "m.npy", &h, &err), PS_ETRUNC);
  assert_msg_has(&err, "header");
  const uint8_t huge[] = "\x93NUMPY\x02\x00\xff\xff\xff\x7f{";
  assert_int_equal(npy_parse_header(huge, sizeof huge - 1, "m.npy", &h, &err), PS_EFORMAT);
  assert_msg_has(&err, "limit");
  assert_string_equal(npy_dtype_descr(NPY_I32), "<i4");
}

// ---- round trips ------------------------------------------------------------------------------
#define NP 11
#define D 6
static uint32_t plen(uint32_t i) { return i == 5 ? 0 : 1 + (i * 5) % 7; }  // protein 5 has no residues

static void write_protein(const char *path, npy_dtype_t dt, uint64_t n) {
  npy_writer_t *w = NULL;
  ps_err_t err = {0};
  if (npy_writer_open(&w, path, dt, D, &err) < 0) fail_msg("%s", err.msg);
  float row[D];
  for (uint32_t i = 0; i < n; i++) {
    for (uint32_t c = 0; c < D; c++) row[c] = val(i, c);
    assert_int_equal(npy_writer_append_f32(w, row, 1, &err), 0);
  }
  assert_int_equal(npy_writer_count(w), n);
  if (npy_writer_close(&w, &err) < 0) fail_msg("%s", err.msg);
  assert_null(w);
}

// residues.npy + residues.offsets.npy; residue r of protein i = val(1000 * i + r, c)
static void write_residue(const char *path, const char *offs, npy_dtype_t dt) {
  npy_writer_t *w = NULL, *o = NULL;
  ps_err_t err = {0};
  assert_int_equal(npy_writer_open(&w, path, dt, D, &err), 0);
  assert_int_equal(npy_writer_open(&o, offs, NPY_I64, 0, &err), 0);
  int64_t at = 0;
  assert_int_equal(npy_writer_append_i64(o, &at, 1, &err), 0);
  float rows[8 * D];
  for (uint32_t i = 0; i < NP; i++) {
    for (uint32_t r = 0; r < plen(i); r++)
      for (uint32_t c = 0; c < D; c++) rows[r * D + c] = val(1000 * i + r, c);
    assert_int_equal(npy_writer_append_f32(w, rows, plen(i), &err), 0);
    at += plen(i);
    assert_int_equal(npy_writer_append_i64(o, &at, 1, &err), 0);
  }
  assert_int_equal(npy_writer_close(&w, &err), 0);
  assert_int_equal(npy_writer_close(&o, &err), 0);
}

static float rt(npy_dtype_t dt, float x) { return dt == NPY_F16 ? emb_half_to_float(emb_float_to_half(x)) : x; }

static void test_roundtrip_protein(void **state) {
  (void)state;
  const npy_dtype_t dts[] = {NPY_F32, NPY_F16};
  for (int k = 0; k < 2; k++) {
    char p[256], tmp[300];
    fx_path(p, sizeof p, k ? "prot16.npy" : "prot.npy");
    write_protein(p, dts[k], NP);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_int_not_equal(access(tmp, F_OK), 0);
    emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1};
    emb_source_t *s = src_open(&o);
    assert_int_equal(emb_source_count(s), NP);
    ps_err_t err = {0};
    for (uint32_t i = 0; i < NP; i++) {
      emb_record_t r;
      if (emb_source_next(s, &r, &err) != 1) fail_msg("%s", err.msg);
      char id[16];
      snprintf(id, sizeof id, "row%u", i);
      assert_string_equal(r.id, id);
      assert_int_equal(r.index, i);
      assert_int_equal(r.n_rows, 1);
      assert_int_equal(r.dim, D);
      for (uint32_t c = 0; c < D; c++) {
        float want = rt(dts[k], val(i, c));
        if (memcmp(&want, &r.rows[c], 4)) fail_msg("row %u col %u: %.9g, wrote %.9g", i, c, r.rows[c], want);
      }
    }
    emb_record_t r;
    assert_int_equal(emb_source_next(s, &r, &err), 0);
    assert_int_equal(emb_source_next(s, &r, &err), 0);
    emb_source_destroy(&s);
    assert_null(s);
    emb_source_destroy(&s);
  }
}

static void test_roundtrip_residue(void **state) {
  (void)state;
  const npy_dtype_t dts[] = {NPY_F32, NPY_F16};
  for (int k = 0; k < 2; k++) {
    char p[256], offs[256];
    fx_path(p, sizeof p, k ? "res16.npy" : "res.npy");
    fx_path(offs, sizeof offs, k ? "res16.offsets.npy" : "res.offsets.npy");
    write_residue(p, offs, dts[k]);
    // the default offsets name (<stem>.offsets.npy) at residue level, and pooled at protein level
    for (int level = 0; level < 2; level++) {
      emb_source_opts_t o = {.path = p, .level = (emb_level_t)level, .layer = -1};
      emb_source_t *s = src_open(&o);
      assert_int_equal(emb_source_count(s), NP);
      ps_err_t err = {0};
      for (uint32_t i = 0; i < NP; i++) {
        emb_record_t r;
        int rc = emb_source_next(s, &r, &err);
        if (level == 0 && plen(i) == 0) {  // nothing to pool: an error naming the record
          assert_int_equal(rc, PS_EDIM);
          assert_msg_has(&err, "record 5");
          assert_msg_has(&err, p);
          continue;
        }
        if (rc != 1) fail_msg("%s", err.msg);
        assert_int_equal(r.n_rows, level ? plen(i) : 1);
        for (uint32_t c = 0; c < D; c++) {
          double acc = 0;
          for (uint32_t q = 0; q < plen(i); q++) {
            float want = rt(dts[k], val(1000 * i + q, c));
            if (level && memcmp(&want, &r.rows[q * D + c], 4))
              fail_msg("record %u row %u col %u: %.9g, wrote %.9g", i, q, c, r.rows[q * D + c], want);
            acc += want;
          }
          if (!level && fabs(acc / plen(i) - r.rows[c]) > 1e-5 * (1 + fabs(acc))) fail_msg("pooled %g vs %g", r.rows[c], acc);
        }
      }
      emb_source_destroy(&s);
    }
  }
  // an explicit offsets path; int32 offsets
  char p[256], offs[256];
  fx_path(p, sizeof p, "res.npy");
  fx_path(offs, sizeof offs, "o32.npy");
  int32_t o32[NP + 1];
  o32[0] = 0;
  for (uint32_t i = 0; i < NP; i++) o32[i + 1] = o32[i] + (int32_t)plen(i);
  char dict[128];
  snprintf(dict, sizeof dict, "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }", NP + 1);
  write_npy_raw(offs, 1, dict, o32, sizeof o32);
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_RESIDUE, .layer = -1, .offsets_path = offs};
  emb_source_t *s = src_open(&o);
  ps_err_t err = {0};
  emb_record_t r;
  for (uint32_t i = 0; i < 4; i++) assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_int_equal(r.n_rows, plen(3));
  assert_true(r.rows[D] == val(3001, 0));
  emb_source_destroy(&s);
}

// ids from a file (first token, blank lines ignored, CRLF) and from the FASTA order
static void test_ids(void **state) {
  (void)state;
  char p[256], ids[256];
  fx_path(p, sizeof p, "prot.npy");
  write_protein(p, NPY_F32, NP);
  fx_path(ids, sizeof ids, "prot.ids");
  FILE *f = fopen(ids, "w");
  for (int i = 0; i < NP; i++) fprintf(f, "%sACC%d desc %d\r\n%s", i == 3 ? "  " : "", i, i, i == 6 ? "\n   \n" : "");
  fclose(f);
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids};
  emb_source_t *s = src_open(&o);
  ps_err_t err = {0};
  for (int i = 0; i < NP; i++) {
    emb_record_t r;
    assert_int_equal(emb_source_next(s, &r, &err), 1);
    char want[16];
    snprintf(want, sizeof want, "ACC%d", i);
    assert_string_equal(r.id, want);
  }
  emb_source_destroy(&s);
  const char *fb[NP] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"};
  o = (emb_source_opts_t){.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1, .fallback_ids = fb, .n_fallback_ids = NP};
  s = src_open(&o);
  emb_record_t r;
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_string_equal(r.id, "a");
  assert_int_equal(emb_source_skip(s, 9, &err), 0);
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_string_equal(r.id, "k");
  assert_int_equal(r.index, 10);
  assert_true(r.rows[0] == val(10, 0));
  emb_source_destroy(&s);
  // mismatches name both
  o.n_fallback_ids = NP - 1;
  assert_int_equal(src_open_err(&o, &err), PS_EMISMATCH);
  assert_msg_has(&err, "prot.npy");
  assert_msg_has(&err, "FASTA has 10");
  f = fopen(ids, "a");
  fputs("one-too-many\n", f);
  fclose(f);
  o = (emb_source_opts_t){.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids};
  assert_int_equal(src_open_err(&o, &err), PS_EMISMATCH);
  assert_msg_has(&err, "prot.ids has 12 ids");
  assert_msg_has(&err, "prot.npy has 11 records");
  o.ids_path = "/nonexistent/ids.txt";
  assert_int_equal(src_open_err(&o, &err), -ENOENT);
  assert_msg_has(&err, "/nonexistent/ids.txt");
  // a repeated id (right count, so one protein would go missing and another count twice):
  // refused at open, naming the file, the line, the id and where it first appeared
  f = fopen(ids, "w");
  for (int i = 0; i < NP; i++) fprintf(f, "%sACC%d\n", i == 2 ? "\n" : "", i == 7 ? 4 : i);
  fclose(f);
  o.ids_path = ids;
  assert_int_equal(src_open_err(&o, &err), PS_EFORMAT);
  assert_msg_has(&err, "prot.ids: line 9: duplicate id 'ACC4' (first on line 6)");
}

static void check_skip(const emb_source_opts_t *o) {
  ps_err_t err = {0};
  emb_source_t *s = src_open(o);
  int64_t n = emb_source_count(s);
  assert_true(n > 0 && n <= 64);
  char ids[64][32];
  float last[64];
  uint32_t rows[64];
  for (int64_t i = 0; i < n; i++) {
    emb_record_t r;
    if (emb_source_next(s, &r, &err) != 1) fail_msg("%s", err.msg);
    snprintf(ids[i], 32, "%s", r.id);
    rows[i] = r.n_rows;
    last[i] = r.n_rows ? r.rows[(size_t)r.n_rows * r.dim - 1] : 0;
  }
  emb_source_destroy(&s);
  for (int64_t k = 0; k <= n; k++) {
    s = src_open(o);
    // skip in two steps, reading one record in between when possible, to exercise repositioning
    if (k > 0 && k < n) {
      assert_int_equal(emb_source_skip(s, (uint64_t)k - 1, &err), 0);
      emb_record_t r;
      assert_int_equal(emb_source_next(s, &r, &err), 1);
      assert_string_equal(r.id, ids[k - 1]);
    } else {
      assert_int_equal(emb_source_skip(s, (uint64_t)k, &err), 0);
    }
    for (int64_t i = k; i < n; i++) {
      emb_record_t r;
      assert_int_equal(emb_source_next(s, &r, &err), 1);
      assert_int_equal(r.index, i);
      assert_string_equal(r.id, ids[i]);
      assert_int_equal(r.n_rows, rows[i]);
      if (r.n_rows) assert_true(r.rows[(size_t)r.n_rows * r.dim - 1] == last[i]);
    }
    emb_record_t r;
    assert_int_equal(emb_source_next(s, &r, &err), 0);
    assert_int_equal(emb_source_skip(s, 1, &err), PS_ETRUNC);
    assert_msg_has(&err, o->path);
    emb_source_destroy(&s);
  }
}

static void test_skip_resume(void **state) {
  (void)state;
  char p[256], ids[256];
  fx_path(p, sizeof p, "prot16.npy");
  write_protein(p, NPY_F16, NP);
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1};
  check_skip(&o);
  fx_path(ids, sizeof ids, "skip.ids");
  FILE *f = fopen(ids, "w");
  for (int i = 0; i < NP; i++) fprintf(f, "S%d\n", i);
  fclose(f);
  o.ids_path = ids;
  check_skip(&o);
  char offs[256];
  fx_path(p, sizeof p, "res.npy");
  fx_path(offs, sizeof offs, "res.offsets.npy");
  write_residue(p, offs, NPY_F32);
  o = (emb_source_opts_t){.path = p, .level = EMB_LEVEL_RESIDUE, .layer = -1, .ids_path = ids};
  check_skip(&o);
}

// ---- broken inputs -----------------------------------------------------------------------------
static void test_broken(void **state) {
  (void)state;
  char p[256], offs[256];
  ps_err_t err = {0};
  emb_source_opts_t o = {.level = EMB_LEVEL_PROTEIN, .layer = -1};
  // missing file
  o.path = "/nonexistent/x.npy";
  assert_int_equal(src_open_err(&o, &err), -ENOENT);
  assert_msg_has(&err, "/nonexistent/x.npy");
  // bad magic
  fx_path(p, sizeof p, "magic.npy");
  FILE *f = fopen(p, "wb");
  fputs("PK\x03\x04 this is a zip, not an npy file", f);
  fclose(f);
  o.path = p;
  assert_int_equal(src_open_err(&o, &err), PS_EFORMAT);
  assert_msg_has(&err, "magic.npy: byte 0");
  // empty file, truncated header
  f = fopen(p, "wb");
  fclose(f);
  assert_int_equal(src_open_err(&o, &err), PS_ETRUNC);
  assert_msg_has(&err, "magic.npy");
  fx_path(p, sizeof p, "prot.npy");
  write_protein(p, NPY_F32, NP);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(truncate(p, 60), 0);
  assert_int_equal(src_open_err(&o, &err), PS_ETRUNC);
  assert_msg_has(&err, "prot.npy: byte 60");
  // truncated data: caught at open from the size, naming the row where it ends
  write_protein(p, NPY_F32, NP);
  assert_int_equal(truncate(p, st.st_size - 5), 0);
  assert_int_equal(src_open_err(&o, &err), PS_ETRUNC);
  assert_msg_has(&err, "prot.npy");
  assert_msg_has(&err, "row 10");
  assert_msg_has(&err, "11 x 6");
  // ... and at the row when the file shrinks after open (past stdio's first buffer)
  fx_path(p, sizeof p, "long.npy");
  write_protein(p, NPY_F32, 2000);
  o.path = p;
  emb_source_t *s = src_open(&o);
  assert_int_equal(truncate(p, 128 + 1500 * D * 4 + 10), 0);  // rows 1500.. gone (1500 partly)
  emb_record_t r;
  int rc = 0;
  uint64_t good = 0;
  while ((rc = emb_source_next(s, &r, &err)) == 1) good++;
  assert_int_equal(rc, PS_ETRUNC);
  assert_int_equal(good, 1500);
  assert_msg_has(&err, "long.npy");
  assert_msg_has(&err, "record 1500, row 1500");
  emb_source_destroy(&s);
  // wrong dtype / rank / dim
  fx_path(p, sizeof p, "ints.npy");
  int64_t iv[6] = {0};
  write_npy_raw(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", iv, sizeof iv);
  o.path = p;
  assert_int_equal(src_open_err(&o, &err), PS_EUNSUPP);
  assert_msg_has(&err, "ints.npy");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", iv, 24);
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);
  assert_msg_has(&err, "2-D");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 0), }", iv, 0);
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", iv, 24);
  assert_int_equal(src_open_err(&o, &err), PS_EUNSUPP);
  assert_msg_has(&err, "ints.npy");
  // NaN: at the record, naming file, record, row, column
  fx_path(p, sizeof p, "nan.npy");
  float x[4 * D];
  for (int i = 0; i < 4 * D; i++) x[i] = (float)i;
  x[2 * D + 4] = NAN;
  char dict[128];
  snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, %d), }", D);
  write_npy_raw(p, 1, dict, x, sizeof x);
  o.path = p;
  s = src_open(&o);
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_int_equal(emb_source_next(s, &r, &err), PS_ENAN);
  assert_msg_has(&err, "nan.npy");
  assert_msg_has(&err, "record 2");
  assert_msg_has(&err, "column 4");
  emb_source_destroy(&s);

  // offsets: missing at residue level, not starting at 0, decreasing, not ending at rows, 2-D
  fx_path(p, sizeof p, "res.npy");
  fx_path(offs, sizeof offs, "res.offsets.npy");
  write_residue(p, offs, NPY_F32);
  int64_t total = 0;
  for (uint32_t i = 0; i < NP; i++) total += plen(i);
  unlink(offs);
  o = (emb_source_opts_t){.path = p, .level = EMB_LEVEL_RESIDUE, .layer = -1};
  assert_int_equal(src_open_err(&o, &err), -ENOENT);
  assert_msg_has(&err, "res.offsets.npy");
  assert_msg_has(&err, "res.npy");
  int64_t bad[4] = {1, 2, 3, total};
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", bad, sizeof bad);
  assert_int_equal(src_open_err(&o, &err), PS_EFORMAT);
  assert_msg_has(&err, "res.offsets.npy: entry 0");
  int64_t dec[4] = {0, 5, 3, total};
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", dec, sizeof dec);
  assert_int_equal(src_open_err(&o, &err), PS_EFORMAT);
  assert_msg_has(&err, "entry 2");
  assert_msg_has(&err, "decrease");
  int64_t shortend[3] = {0, 5, total - 1};
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", shortend, sizeof shortend);
  assert_int_equal(src_open_err(&o, &err), PS_EMISMATCH);
  assert_msg_has(&err, "entry 2");
  assert_msg_has(&err, "res.npy");
  int64_t past[3] = {0, total + 3, total + 3};
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", past, sizeof past);
  assert_int_equal(src_open_err(&o, &err), PS_EMISMATCH);
  assert_msg_has(&err, "entry 1");
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }", NULL, 0);
  assert_int_equal(src_open_err(&o, &err), PS_EFORMAT);
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", bad, sizeof bad);
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);
  assert_msg_has(&err, "1-D");
  write_npy_raw(offs, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", bad, 8);
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", bad, 16);  // truncated
  assert_int_equal(src_open_err(&o, &err), PS_ETRUNC);
  assert_msg_has(&err, "res.offsets.npy");
  // an offsets file beside a protein-level file makes it per-residue (documented in emb.h)
  int64_t one[2] = {0, total};
  write_npy_raw(offs, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", one, sizeof one);
  o.level = EMB_LEVEL_PROTEIN;
  s = src_open(&o);
  assert_int_equal(emb_source_count(s), 1);
  emb_source_destroy(&s);
}

static void test_writer_errors(void **state) {
  (void)state;
  ps_err_t err = {0};
  npy_writer_t *w = NULL;
  assert_int_equal(npy_writer_open(&w, "/nonexistent/x.npy", NPY_F32, 3, &err), -ENOENT);
  assert_msg_has(&err, "/nonexistent/x.npy.tmp");
  assert_null(w);
  assert_int_equal(npy_writer_open(&w, "/tmp/x.npy", NPY_I32, 3, &err), PS_EUNSUPP);
  char p[256];
  fx_path(p, sizeof p, "w.npy");
  assert_int_equal(npy_writer_open(&w, p, NPY_I64, 0, &err), 0);
  float x[3] = {0};
  assert_int_equal(npy_writer_append_f32(w, x, 1, &err), PS_ESTATE);
  npy_writer_abort(&w);
  assert_null(w);
  npy_writer_abort(&w);
  assert_int_equal(npy_writer_close(&w, &err), 0);
  assert_int_not_equal(access(p, F_OK), 0);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  assert_int_not_equal(access(tmp, F_OK), 0);
  assert_int_equal(npy_writer_open(&w, p, NPY_F32, 3, &err), 0);
  int64_t v = 1;
  assert_int_equal(npy_writer_append_i64(w, &v, 1, &err), PS_ESTATE);
  assert_int_equal(npy_writer_close(&w, &err), 0);  // an empty (0, 3) array
  FILE *f = fopen(p, "rb");
  npy_header_t h;
  assert_int_equal(npy_read_header(f, p, &h, &err), 0);
  fclose(f);
  assert_int_equal(h.shape[0], 0);
  assert_int_equal(h.shape[1], 3);
  assert_int_equal(h.data_offset, 128);
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1};
  emb_source_t *s = src_open(&o);
  emb_record_t r;
  assert_int_equal(emb_source_next(s, &r, &err), 0);
  emb_source_destroy(&s);
}

// ---- numpy cross-check ------------------------------------------------------------------------
// numpy writes v1/v2/v3 files (f4, f2, f8; residue offsets as int32) plus the expected float32
// values raw; we read them. Then numpy loads our writer's files and compares.
static void test_numpy(void **state) {
  (void)state;
  if (!have_numpy()) skip();
  char script[256], cmd[2048];
  fx_path(script, sizeof script, "np.py");
  FILE *f = fopen(script, "w");
  fputs("import sys, numpy as np\n"
        "d = sys.argv[1]\n"
        "rng = np.random.default_rng(7)\n"
        "x = (rng.standard_normal((13, 9)) * np.logspace(-3, 3, 9)).astype('<f8')\n"
        "x[0, 0] = 65504.0; x[1, 1] = 6e-8; x[2, 2] = -0.0\n"
        "for v in (1, 2, 3):\n"
        "    for dt in ('<f4', '<f2', '<f8'):\n"
        "        a = x.astype(dt)\n"
        "        with open('%s/np_v%d_%s.npy' % (d, v, dt[1:]), 'wb') as f:\n"
        "            np.lib.format.write_array(f, a, version=(v, 0))\n"
        "        a.astype('<f4').tofile('%s/np_v%d_%s.raw' % (d, v, dt[1:]))\n"
        "off = np.array([0, 4, 4, 11, 13], dtype='<i4')\n"
        "np.save(d + '/npres.offsets.npy', off)\n"
        "np.save(d + '/npres.npy', x.astype('<f4'))\n"
        "np.save(d + '/fortran.npy', np.asfortranarray(x.astype('<f4')))\n"
        "np.save(d + '/big.npy', x.astype('>f4'))\n",
        f);
  fclose(f);
  assert_true(snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, fx_dir) < (int)sizeof cmd);
  assert_int_equal(system(cmd), 0);
  ps_err_t err = {0};
  const char *dts[] = {"f4", "f2", "f8"};
  for (int v = 1; v <= 3; v++) {
    for (int k = 0; k < 3; k++) {
      char p[256], raw[256], name[64];
      snprintf(name, sizeof name, "np_v%d_%s.npy", v, dts[k]);
      fx_path(p, sizeof p, name);
      snprintf(name, sizeof name, "np_v%d_%s.raw", v, dts[k]);
      fx_path(raw, sizeof raw, name);
      float want[13 * 9];
      FILE *rf = fopen(raw, "rb");
      assert_int_equal(fread(want, 4, 13 * 9, rf), 13 * 9);
      fclose(rf);
      emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1};
      emb_source_t *s = src_open(&o);
      assert_int_equal(emb_source_count(s), 13);
      for (int i = 0; i < 13; i++) {
        emb_record_t r;
        if (emb_source_next(s, &r, &err) != 1) fail_msg("%s", err.msg);
        assert_int_equal(r.dim, 9);
        for (int c = 0; c < 9; c++)
          if (memcmp(&want[i * 9 + c], &r.rows[c], 4))
            fail_msg("%s row %d col %d: numpy %.9g, ours %.9g", p, i, c, want[i * 9 + c], r.rows[c]);
      }
      emb_source_destroy(&s);
    }
  }
  char p[256];
  fx_path(p, sizeof p, "npres.npy");
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_RESIDUE, .layer = -1};
  emb_source_t *s = src_open(&o);
  assert_int_equal(emb_source_count(s), 4);
  const uint32_t lens[] = {4, 0, 7, 2};
  for (int i = 0; i < 4; i++) {
    emb_record_t r;
    assert_int_equal(emb_source_next(s, &r, &err), 1);
    assert_int_equal(r.n_rows, lens[i]);
  }
  emb_source_destroy(&s);
  fx_path(p, sizeof p, "fortran.npy");
  o.path = p;
  o.level = EMB_LEVEL_PROTEIN;
  assert_int_equal(src_open_err(&o, &err), PS_EUNSUPP);
  assert_msg_has(&err, "Fortran");
  fx_path(p, sizeof p, "big.npy");
  assert_int_equal(src_open_err(&o, &err), PS_EUNSUPP);
  assert_msg_has(&err, "big-endian");

  // our files read by numpy
  char prot[256], prot16[256], res[256];
  fx_path(prot, sizeof prot, "ours.npy");
  fx_path(prot16, sizeof prot16, "ours16.npy");
  fx_path(res, sizeof res, "oursres.npy");
  write_protein(prot, NPY_F32, NP);
  write_protein(prot16, NPY_F16, NP);
  char offs[256];
  fx_path(offs, sizeof offs, "oursres.offsets.npy");
  write_residue(res, offs, NPY_F32);
  char vals[8192] = "";
  size_t l = 0;
  for (uint32_t i = 0; i < NP; i++)
    for (uint32_t c = 0; c < D; c++) l += (size_t)snprintf(vals + l, sizeof vals - l, "%s%.9g", l ? "," : "", val(i, c));
  char lens_s[256] = "";
  l = 0;
  for (uint32_t i = 0; i < NP; i++) l += (size_t)snprintf(lens_s + l, sizeof lens_s - l, "%s%u", l ? "," : "", plen(i));
  fx_path(script, sizeof script, "np2.py");
  f = fopen(script, "w");
  fprintf(f,
          "import sys, numpy as np\n"
          "want = np.array([%s], dtype='<f4').reshape(%d, %d)\n"
          "a = np.load(sys.argv[1]); assert a.dtype == np.float32 and (a == want).all(), a\n"
          "b = np.load(sys.argv[2]); assert b.dtype == np.float16 and (b == want.astype(np.float16)).all()\n"
          "o = np.load(sys.argv[3]); assert o.dtype == np.int64\n"
          "assert (np.diff(o) == np.array([%s])).all() and o[0] == 0\n"
          "r = np.load(sys.argv[4]); assert r.shape == (o[-1], %d), r.shape\n",
          vals, NP, D, lens_s, D);
  fclose(f);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %s %s", script, prot, prot16, offs, res);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header),      cmocka_unit_test(test_roundtrip_protein),
      cmocka_unit_test(test_roundtrip_residue), cmocka_unit_test(test_ids),
      cmocka_unit_test(test_skip_resume), cmocka_unit_test(test_broken),
      cmocka_unit_test(test_writer_errors), cmocka_unit_test(test_numpy),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
