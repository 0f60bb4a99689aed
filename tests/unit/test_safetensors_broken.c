// safetensors (safetensors.h), broken files: short, huge or truncated header, bad JSON, offsets
// out of range or overlapping, unknown dtype, truncated data, dims disagreeing, NaN, no float
// tensor, writer misuse; each error names the file and the tensor / record / row.
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

#include "st_fixture.h"

// ---- broken files ------------------------------------------------------------------------------
static void test_broken_header(void **state) {
  (void)state;
  char p[256];
  ps_err_t err = {0};
  float data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  // shorter than the length field
  fx_path(p, sizeof p, "short.safetensors");
  FILE *f = fopen(p, "wb");
  fputs("\x05\x00\x00", f);
  fclose(f);
  assert_int_equal(st_open_err(p, &err), PS_ETRUNC);
  assert_msg_has(&err, "short.safetensors");
  assert_msg_has(&err, "byte 0");
  // header length huge (e.g. a random file)
  fx_path(p, sizeof p, "huge.safetensors");
  f = fopen(p, "wb");
  fwrite("\x00\x00\x00\x00\x00\x10\x00\x00{}", 1, 10, f);
  fclose(f);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "huge.safetensors");
  assert_msg_has(&err, "limit");
  // header runs past the end (truncated header)
  fx_path(p, sizeof p, "trunchdr.safetensors");
  f = fopen(p, "wb");
  fwrite("\x40\x00\x00\x00\x00\x00\x00\x00{\"a\": {\"dtype\"", 1, 8 + 14, f);
  fclose(f);
  assert_int_equal(st_open_err(p, &err), PS_ETRUNC);
  assert_msg_has(&err, "trunchdr.safetensors");
  assert_msg_has(&err, "byte 8");
  // not JSON
  fx_path(p, sizeof p, "badjson.safetensors");
  write_raw(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}", data, 8);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "badjson.safetensors");
  assert_msg_has(&err, "JSON");
  // not an object / not starting with '{'
  write_raw(p, "[1, 2]", NULL, 0);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  // duplicate keys
  write_raw(p,
            "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
            " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
            data, 8);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "duplicate");
  // offsets out of range
  fx_path(p, sizeof p, "range.safetensors");
  write_raw(p, "{\"P1\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]}}", data, 16);
  assert_int_equal(st_open_err(p, &err), PS_ETRUNC);
  assert_msg_has(&err, "range.safetensors");
  assert_msg_has(&err, "'P1'");
  assert_msg_has(&err, "[16, 32]");
  // begin > end
  write_raw(p, "{\"P1\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", data, 16);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  // span disagrees with shape x dtype
  write_raw(p, "{\"P1\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [0, 16]}}", data, 16);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "'P1'");
  // overlapping tensors
  fx_path(p, sizeof p, "overlap.safetensors");
  write_raw(p,
            "{\"A\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
            " \"B\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [12, 28]}}",
            data, 32);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "overlap.safetensors");
  assert_msg_has(&err, "'B'");
  assert_msg_has(&err, "'A'");
  // unknown dtype, bad shape, missing fields, bad metadata
  fx_path(p, sizeof p, "fields.safetensors");
  write_raw(p, "{\"A\": {\"dtype\": \"F17\", \"shape\": [1], \"data_offsets\": [0, 4]}}", data, 4);
  assert_int_equal(st_open_err(p, &err), PS_EUNSUPP);
  assert_msg_has(&err, "F17");
  write_raw(p, "{\"A\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", data, 4);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "shape[0]");
  write_raw(p, "{\"A\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", data, 4);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  write_raw(p, "{\"A\": {\"dtype\": \"F32\", \"shape\": [1]}}", data, 4);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "data_offsets");
  write_raw(p, "{\"A\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 4]}}",
            data, 4);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "overflow");
  write_raw(p, "{\"__metadata__\": {\"a\": 1}, \"A\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
            data, 4);
  assert_int_equal(st_open_err(p, &err), PS_EFORMAT);
  assert_msg_has(&err, "__metadata__");
  // a valid small one with a gap, zero-size tensor, header padded with spaces, metadata
  write_raw(p,
            "{\"__metadata__\": {\"format\": \"pt\"}, \"A\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
            " \"Z\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [8, 8]}}    ",
            data, 8);
  st_file_t *sf = NULL;
  if (st_open(&sf, p, &err) < 0) fail_msg("%s", err.msg);
  assert_int_equal(st_n_tensors(sf), 2);
  assert_string_equal(st_metadata(sf, "format"), "pt");
  float x;
  assert_int_equal(st_read_f32(sf, "A", &x, 1, &err), 0);
  assert_true(x == 2.0f);
  st_close(&sf);
}

// A file with tensors but no embedding among them (a tokenizer dump: integer ids, a mask, a
// scalar): an error naming the file and listing its tensors, not an empty stream.
static void test_no_float_tensor(void **state) {
  (void)state;
  char p[256];
  ps_err_t err = {0};
  uint8_t data[64] = {0};
  fx_path(p, sizeof p, "tokens.safetensors");
  write_raw(p,
            "{\"input_ids\": {\"dtype\": \"I64\", \"shape\": [2, 3], \"data_offsets\": [0, 48]},"
            " \"mask\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [48, 50]},"
            " \"scale\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [50, 54]}}",
            data, 54);
  emb_source_opts_t o = {.path = p, .format = "safetensors", .level = EMB_LEVEL_PROTEIN, .layer = -1};
  assert_int_equal(src_open_err(&o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "tokens.safetensors: no embedding tensor");
  assert_msg_has(&err, "among its 3 tensors");
  assert_msg_has(&err, "'input_ids' I64 [2, 3]");
  assert_msg_has(&err, "'mask' U8 [2]");
  assert_msg_has(&err, "'scale' F32 []");
  o.level = EMB_LEVEL_RESIDUE;
  assert_int_equal(src_open_err(&o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "'input_ids' I64 [2, 3]");
}

static void test_broken_data(void **state) {
  (void)state;
  char p[256];
  ps_err_t err = {0};
  // truncated data: a written file loses its tail
  fx_path(p, sizeof p, "trunc.safetensors");
  st_writer_t *w = NULL;
  assert_int_equal(st_writer_open(&w, p, &err), 0);
  float buf[4 * D];
  for (int i = 0; i < 4 * D; i++) buf[i] = (float)i;
  uint64_t shape[2] = {4, D};
  assert_int_equal(st_writer_add_f32(w, "A", ST_F32, shape, 2, buf, &err), 0);
  buf[2 * D + 3] = NAN;  // record B, row 2, col 3
  assert_int_equal(st_writer_add_f32(w, "B", ST_F32, shape, 2, buf, &err), 0);
  assert_int_equal(st_writer_close(&w, &err), 0);
  // NaN: at read, naming file, record, row and column
  emb_source_t *s = src_open(p, EMB_LEVEL_RESIDUE, -1);
  emb_record_t r;
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_int_equal(emb_source_next(s, &r, &err), PS_ENAN);
  assert_msg_has(&err, "trunc.safetensors");
  assert_msg_has(&err, "record 1");
  assert_msg_has(&err, "row 2");
  assert_msg_has(&err, "column 3");
  emb_source_destroy(&s);
  // allowed when asked
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_RESIDUE, .layer = -1, .allow_nonfinite = 1};
  assert_int_equal(safetensors_source_open(&s, &o, &err), 0);
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_true(isnan(r.rows[2 * D + 3]));
  emb_source_destroy(&s);
  // truncated before open: B's offsets are past the end
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(truncate(p, st.st_size - 6), 0);
  assert_int_equal(st_open_err(p, &err), PS_ETRUNC);
  assert_msg_has(&err, "trunc.safetensors");
  assert_msg_has(&err, "'B'");
  // truncated after open: the read names the record and tensor
  assert_int_equal(truncate(p, st.st_size), 0);
  s = src_open(p, EMB_LEVEL_RESIDUE, -1);
  assert_int_equal(truncate(p, st.st_size - 6), 0);
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_int_equal(emb_source_next(s, &r, &err), PS_ETRUNC);
  assert_msg_has(&err, "trunc.safetensors");
  assert_msg_has(&err, "record 1");
  assert_msg_has(&err, "'B'");
  emb_source_destroy(&s);

  // layouts refused at open
  float data[64] = {0};
  fx_path(p, sizeof p, "dims.safetensors");
  write_raw(p,
            "{\"A\": {\"dtype\": \"F32\", \"shape\": [2, 4], \"data_offsets\": [0, 32]},"
            " \"B\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [32, 56]}}",
            data, 64);
  o = (emb_source_opts_t){.path = p, .level = EMB_LEVEL_RESIDUE, .layer = -1};
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);
  assert_msg_has(&err, "dims.safetensors");
  assert_msg_has(&err, "'B'");
  write_raw(p,
            "{\"A\": {\"dtype\": \"F32\", \"shape\": [2, 2, 2], \"data_offsets\": [0, 32]},"
            " \"B\": {\"dtype\": \"F32\", \"shape\": [2, 4], \"data_offsets\": [32, 64]}}",
            data, 64);
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);
  assert_msg_has(&err, "'A'");
  write_raw(p,
            "{\"A\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
            " \"B\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]}}",
            data, 32);
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);  // 1-D at residue level
  assert_msg_has(&err, "residue");
  o.level = EMB_LEVEL_PROTEIN;  // fine at protein level
  emb_source_t *ok = NULL;
  assert_int_equal(safetensors_source_open(&ok, &o, &err), 0);
  assert_int_equal(emb_source_count(ok), 2);
  emb_source_destroy(&ok);
  write_raw(p,
            "{\"A\": {\"dtype\": \"F32\", \"shape\": [2, 0], \"data_offsets\": [0, 0]},"
            " \"B\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]}}",
            data, 32);
  assert_int_equal(src_open_err(&o, &err), PS_EDIM);  // dimension 0
  assert_msg_has(&err, "'A'");
  // layered: an id with layer tensors but not the one asked for
  fx_path(p, sizeof p, "lay.safetensors");
  write_raw(p,
            "{\"A.layer1.mean\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
            " \"A.layer2.mean\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]},"
            " \"B.layer1.mean\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [32, 48]}}",
            data, 48);
  o = (emb_source_opts_t){.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1};
  assert_int_equal(src_open_err(&o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "'B'");
  assert_msg_has(&err, "layer 2");
  o.layer = 1;
  assert_int_equal(safetensors_source_open(&ok, &o, &err), 0);
  assert_int_equal(emb_source_count(ok), 2);
  emb_source_destroy(&ok);
  o.level = EMB_LEVEL_RESIDUE;  // only means: no residues
  assert_int_equal(src_open_err(&o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "per-residue");
  // layered tensor of an integer dtype
  write_raw(p, "{\"A.layer1.per_residue\": {\"dtype\": \"I32\", \"shape\": [1, 4], \"data_offsets\": [0, 16]}}", data, 16);
  assert_int_equal(src_open_err(&o, &err), PS_EUNSUPP);
  assert_msg_has(&err, "I32");
}

static void test_writer_errors(void **state) {
  (void)state;
  char p[256];
  ps_err_t err = {0};
  st_writer_t *w = NULL;
  assert_int_equal(st_writer_open(&w, "/nonexistent-dir/x.safetensors", &err), -ENOENT);
  assert_msg_has(&err, "/nonexistent-dir/x.safetensors");
  assert_null(w);
  fx_path(p, sizeof p, "werr.safetensors");
  assert_int_equal(st_writer_open(&w, p, &err), 0);
  float x[4] = {1, 2, 3, 4};
  uint64_t sh = 4;
  assert_int_equal(st_writer_add_f32(w, "", ST_F32, &sh, 1, x, &err), PS_EFORMAT);
  assert_int_equal(st_writer_add_f32(w, "__metadata__", ST_F32, &sh, 1, x, &err), PS_EFORMAT);
  assert_int_equal(st_writer_add_f32(w, "bad\xff", ST_F32, &sh, 1, x, &err), PS_EFORMAT);
  assert_int_equal(st_writer_add_f32(w, "a", ST_F32, &sh, 1, x, &err), 0);
  assert_int_equal(st_writer_add_f32(w, "a", ST_F32, &sh, 1, x, &err), PS_EFORMAT);
  assert_msg_has(&err, "twice");
  assert_int_equal(st_writer_add_f32(w, "b", ST_I8, &sh, 1, x, &err), PS_EUNSUPP);
  assert_int_equal(st_writer_append_f32(w, x, 1, &err), PS_ESTATE);
  assert_int_equal(st_writer_begin(w, "c", ST_F32, &sh, 1, &err), 0);
  assert_int_equal(st_writer_append_f32(w, x, 3, &err), 0);
  assert_int_equal(st_writer_append_f32(w, x, 2, &err), PS_EDIM);  // too many
  assert_int_equal(st_writer_end(w, &err), PS_EDIM);                // too few
  assert_int_equal(st_writer_close(&w, &err), PS_ESTATE);           // unfinished: nothing written
  assert_null(w);
  assert_int_not_equal(access(p, F_OK), 0);
  // abort leaves nothing
  assert_int_equal(st_writer_open(&w, p, &err), 0);
  assert_int_equal(st_writer_add_f32(w, "a", ST_F32, &sh, 1, x, &err), 0);
  st_writer_abort(&w);
  assert_null(w);
  st_writer_abort(&w);
  assert_int_equal(st_writer_close(&w, &err), 0);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.data.tmp", p);
  assert_int_not_equal(access(tmp, F_OK), 0);
  assert_int_not_equal(access(p, F_OK), 0);
  // an empty file is valid
  assert_int_equal(st_writer_open(&w, p, &err), 0);
  assert_int_equal(st_writer_close(&w, &err), 0);
  st_file_t *f = NULL;
  assert_int_equal(st_open(&f, p, &err), 0);
  assert_int_equal(st_n_tensors(f), 0);
  st_close(&f);
  emb_source_t *s = src_open(p, EMB_LEVEL_PROTEIN, -1);
  assert_int_equal(emb_source_count(s), 0);
  emb_record_t r;
  assert_int_equal(emb_source_next(s, &r, &err), 0);
  emb_source_destroy(&s);
}

// Our writer's files read by numpy (by hand, as safetensors' own loader would).

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_broken_header),
      cmocka_unit_test(test_broken_data),
      cmocka_unit_test(test_no_float_tensor),
      cmocka_unit_test(test_writer_errors),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
