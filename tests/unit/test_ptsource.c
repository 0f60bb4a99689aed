// The "pt" embedding source over torch-written files (pt_fixtures.py) and the writer protsae
// synth uses (pt_write_extract):
//  - the source: directory order, ids, nested folders from labels with '/', layer -1, skip,
//    count, protein level from mean_representations or pooled from representations;
//  - its errors name the file: missing layer, label mismatch, dims that differ, NaN (row and
//    column), a broken file in the directory, a path that does not exist;
//  - the writer: 300 layers round-trip bit for bit through our reader, one dict only, equal input
//    gives equal bytes, its refusals; torch.load reads its files to the same floats (skipped
//    without torch).
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
#include "pt_test.h"

// ---- the source --------------------------------------------------------------------------------
static void test_source_dir(void **state) {
  (void)state;
  PT_NEED_FIXTURES();
  // B2, "a1 first protein", C3 and "sp|P3|X_HUMAN serine/threonine kinase" (a label with '/':
  // extract.py makes the subfolder), layers {0, 6}, [3, 5] (pt_fixtures.py)
  char d[PATH_MAX], p[PATH_MAX + 64], sub[PATH_MAX];
  pt_fx(d, sizeof d, "srcdir");
  snprintf(p, sizeof p, "%s/notes.txt", d);
  fx_write_text(p, "x");
  snprintf(p, sizeof p, "%s/.hidden.pt", d);
  fx_write_text(p, "junk");
  emb_source_t *s = source_ok(d, EMB_LEVEL_RESIDUE, -1);
  assert_int_equal(emb_source_count(s), 4);
  const char *order[] = {"B2", "C3", "a1", "sp|P3|X_HUMAN"};  // byte order of the relative paths
  emb_record_t rec;
  ps_err_t err = {0};
  for (int k = 0; k < 4; k++) {
    if (emb_source_next(s, &rec, &err) != 1) fail_msg("%s", err.msg);
    assert_string_equal(rec.id, order[k]);
    assert_int_equal(rec.n_rows, 3);
    assert_int_equal(rec.dim, 5);
    for (int r = 0; r < 3; r++)
      for (int c = 0; c < 5; c++) assert_float_equal(rec.rows[r * 5 + c], rep_val(6, r, c), 0);
  }
  assert_int_equal(emb_source_next(s, &rec, &err), 0);
  emb_source_destroy(&s);
  // skip opens nothing, lands on the right record; skipping too far is an error
  s = source_ok(d, EMB_LEVEL_PROTEIN, 0);
  assert_int_equal(emb_source_skip(s, 3, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, "sp|P3|X_HUMAN");
  assert_int_equal(rec.n_rows, 1);
  for (int c = 0; c < 5; c++) assert_float_equal(rec.rows[c], mean_val(0, c), 0);
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
  fx_path(sub, sizeof sub, "empty");
  mkdir(sub, 0755);
  o.path = sub;
  o.format = "pt";
  assert_int_equal(emb_source_open(&s, &o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, sub);
  assert_null(s);
}

// One dict only (torch.save'd): protein level pools representations, or takes
// mean_representations; residue level needs representations.
static void test_one_dict(void **state) {
  (void)state;
  PT_NEED_FIXTURES();
  char pa[PATH_MAX], pb[PATH_MAX], da[PATH_MAX], db[PATH_MAX];
  pt_fx(pa, sizeof pa, "resonly/R1.pt");
  pt_fx(pb, sizeof pb, "meanonly/M1.pt");
  pt_fx(da, sizeof da, "resonly");
  pt_fx(db, sizeof db, "meanonly");
  pt_file_t *f = open_file_ok(pa);
  assert_false(pt_file_has(f, PT_REPR_MEAN));
  assert_int_equal(pt_file_layers(f, PT_REPR_MEAN, NULL), 0);
  pt_tensor_info_t info;
  float *rep = read_tensor_ok(f, PT_REPR_PER_RESIDUE, 299, &info);  // the highest layer
  const int L = (int)info.shape[0], D = (int)info.shape[1];
  pt_file_destroy(&f);
  f = open_file_ok(pb);
  float *mean = read_tensor_ok(f, PT_REPR_MEAN, 298, &info);
  pt_file_destroy(&f);
  emb_source_t *s = source_ok(da, EMB_LEVEL_PROTEIN, -1);
  emb_record_t rec;
  ps_err_t err = {0};
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_string_equal(rec.id, "R1");
  assert_int_equal(rec.n_rows, 1);
  for (int c = 0; c < D; c++) {
    double acc = 0;
    for (int r = 0; r < L; r++) acc += rep[r * D + c];
    assert_float_equal(rec.rows[c], (float)(acc / L), 0);
  }
  emb_source_destroy(&s);
  s = source_ok(db, EMB_LEVEL_PROTEIN, 298);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_memory_equal(rec.rows, mean, (size_t)D * sizeof(float));
  emb_source_destroy(&s);
  emb_source_opts_t o = {.path = db, .format = "pt", .level = EMB_LEVEL_RESIDUE, .layer = -1};
  assert_int_equal(emb_source_open(&s, &o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "M1.pt");
  assert_msg_has(&err, "per_tok");
  free(rep);
  free(mean);
}

static void test_source_errors(void **state) {
  (void)state;
  PT_NEED_FIXTURES();
  char d[PATH_MAX], p[PATH_MAX + 64];
  ps_err_t err = {0};
  emb_source_t *s = NULL;
  emb_record_t rec;
  // missing layer: the message lists the layers present (errs1: P1 with layers {0, 6}; P2 with 0)
  pt_fx(d, sizeof d, "errs1");
  emb_source_opts_t o = {.path = d, .format = "pt", .level = EMB_LEVEL_RESIDUE, .layer = 7};
  assert_int_equal(emb_source_open(&s, &o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "P1.pt: layer 7 not in representations; layers present: 0, 6");
  // a later file lacking the layer of the first
  o.layer = -1;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "P2.pt: layer 6 not in representations; layers present: 0");
  emb_source_destroy(&s);

  // label mismatch
  pt_fx(d, sizeof d, "errs2");
  snprintf(p, sizeof p, "%s/OTHER.pt", d);  // labelled "P1 something"
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
  pt_fx(d, sizeof d, "errs3");  // A: [3, 5]; B: [3, 6]
  o.path = d;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_EDIM);
  assert_msg_has(&err, "B.pt: representations[6] has dimension 6; the first file's is 5");
  emb_source_destroy(&s);

  // NaN: file, tensor, row and column
  pt_fx(d, sizeof d, "errs4");
  snprintf(p, sizeof p, "%s/N1.pt", d);  // representations[6][2, 3] = NaN
  o.path = d;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), PS_ENAN);
  assert_msg_has(&err, p);
  assert_msg_has(&err, "representations[6]: NaN at row 2, column 3");
  emb_source_destroy(&s);
  o.allow_nonfinite = 1;
  assert_int_equal(emb_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &rec, &err), 1);
  assert_true(isnan(rec.rows[2 * 5 + 3]));
  emb_source_destroy(&s);
  o.allow_nonfinite = 0;

  // a broken file inside a directory: named in the error
  snprintf(p, sizeof p, "%s/N0.pt", d);
  fx_write_file(p, "PK\x03\x04 not really", 15);
  assert_true(emb_source_open(&s, &o, &err) < 0);
  assert_msg_has(&err, p);
  // a path that does not exist
  o.path = "/nonexistent/dir";
  assert_true(emb_source_open(&s, &o, &err) < 0);
  assert_msg_has(&err, "/nonexistent/dir");
}

// ---- the writer (protsae synth) -----------------------------------------------------------------
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
  char p[PATH_MAX], q[PATH_MAX], tmp[PATH_MAX + 8];
  fx_path(p, sizeof p, "many.pt");
  ps_err_t err = {0};
  if (pt_write_extract(p, "many layers \xce\xb1", layers, NL, pr, mr, L, D, &err) < 0) fail_msg("%s", err.msg);
  struct stat st;
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  assert_int_not_equal(stat(tmp, &st), 0);  // renamed away
  pt_file_t *f = open_file_ok(p);
  assert_string_equal(pt_file_label(f), "many layers \xce\xb1");
  assert_string_equal(pt_file_archive_name(f), "many");
  const int *ls;
  assert_int_equal(pt_file_layers(f, PT_REPR_PER_RESIDUE, &ls), NL);
  assert_int_equal(ls[0], 1);  // layers 1..299 and 70000
  assert_int_equal(ls[NL - 2], NL - 1);
  assert_int_equal(ls[NL - 1], 70000);
  for (int l = 0; l < NL; l++) {
    pt_tensor_info_t info;
    float *x = read_tensor_ok(f, PT_REPR_PER_RESIDUE, layers[l], &info);
    assert_string_equal(info.dtype_name, "float32");
    assert_int_equal(info.ndim, 2);
    assert_int_equal(info.shape[0], L);
    assert_int_equal(info.shape[1], D);
    assert_memory_equal(x, rep[l], sizeof rep[l]);
    free(x);
    x = read_tensor_ok(f, PT_REPR_MEAN, layers[l], &info);
    assert_int_equal(info.ndim, 1);
    assert_int_equal(info.shape[0], D);
    assert_memory_equal(x, mean[l], sizeof mean[l]);
    free(x);
  }
  pt_file_destroy(&f);
  // equal input, equal bytes (synth's outputs are compared byte for byte)
  fx_path(q, sizeof q, "again/many.pt");
  char qd[PATH_MAX];
  mkdir(fx_path(qd, sizeof qd, "again"), 0755);
  assert_int_equal(pt_write_extract(q, "many layers \xce\xb1", layers, NL, pr, mr, L, D, &err), 0);
  size_t na, nb;
  char *ba = fx_read_file(p, &na), *bb = fx_read_file(q, &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(ba, bb, na);
  free(ba);
  free(bb);

  // one dict only
  fx_path(p, sizeof p, "R1.pt");
  assert_int_equal(pt_write_extract(p, "R1 residue only", layers, 2, pr, NULL, L, D, &err), 0);
  f = open_file_ok(p);
  assert_true(pt_file_has(f, PT_REPR_PER_RESIDUE));
  assert_false(pt_file_has(f, PT_REPR_MEAN));
  pt_file_destroy(&f);
  fx_path(p, sizeof p, "M1.pt");
  assert_int_equal(pt_write_extract(p, "M1", layers, 2, NULL, mr, L, D, &err), 0);
  f = open_file_ok(p);
  assert_false(pt_file_has(f, PT_REPR_PER_RESIDUE));
  assert_int_equal(pt_file_layers(f, PT_REPR_MEAN, NULL), 2);
  pt_file_destroy(&f);

  // refusals
  int dup[2] = {3, 3};
  assert_int_equal(pt_write_extract(p, "x", dup, 2, pr, mr, L, D, &err), PS_ECONFIG);
  assert_int_equal(pt_write_extract(p, "bad \xff utf8", layers, 1, pr, mr, L, D, &err), PS_EFORMAT);
  assert_int_equal(pt_write_extract(p, "", layers, 1, pr, mr, L, D, &err), PS_ECONFIG);
  assert_int_equal(pt_write_extract(p, "x", layers, 1, NULL, NULL, L, D, &err), PS_ECONFIG);
  char nodir[PATH_MAX];
  fx_path(nodir, sizeof nodir, "no/such/dir/x.pt");
  assert_true(pt_write_extract(nodir, "x", layers, 1, pr, mr, L, D, &err) < 0);
  assert_msg_has(&err, nodir);
}

// torch.load reads the writer's files to the same structure and floats.
static void test_writer_vs_torch(void **state) {
  (void)state;
  if (!pt_have_torch()) {
    printf("# /usr/bin/python3 cannot import torch (python3-torch): skipped\n");
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
  char p[3][PATH_MAX];
  const char *pp[3], *keys[3] = {"label,representations,mean_representations", "label,representations",
                                 "label,mean_representations"};
  const char *names[3] = {"f32", "res", "mean"};
  for (int k = 0; k < 3; k++) {
    char rel[64];
    snprintf(rel, sizeof rel, "torchcheck_%s.pt", names[k]);
    pp[k] = fx_path(p[k], sizeof p[k], rel);
  }
  ps_err_t err = {0};
  assert_int_equal(pt_write_extract(p[0], "sp|P1|X_HUMAN a protein", layers, 3, pr, mr, L, D, &err), 0);
  assert_int_equal(pt_write_extract(p[1], "res", layers, 1, pr, NULL, L, D, &err), 0);
  assert_int_equal(pt_write_extract(p[2], "mean", layers, 3, NULL, mr, L, D, &err), 0);
  torch_check("ours", pp, 3, keys);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_source_dir),       cmocka_unit_test(test_one_dict),
      cmocka_unit_test(test_source_errors),    cmocka_unit_test(test_writer_roundtrip),
      cmocka_unit_test(test_writer_vs_torch),
  };
  return cmocka_run_group_tests(tests, pt_setup, fx_teardown);
}
