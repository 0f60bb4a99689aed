// Native ESM2: the forward pass against ../shared/testvectors/esm2-tiny/expected.safetensors
// (fair-esm, all six sequences in one padded batch) — tokens, every layer per residue and mean,
// logits — batched, one at a time and through the FASTA runner / reader; tokenizer policies
// (unknown letters, long sequences); f16 / bf16 checkpoints; loader errors naming the file and
// the tensor.
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

#include "esm2.h"
#include "esm2_kern.h"
#include "fasta.h"
#include "reader.h"
#include "safetensors.h"

#define TOL 1e-4
#define NSEQ 6

static char vec_dir[PATH_MAX + 64];
static char fasta_path[4200], exp_path[4200];
static char *ids[NSEQ], *seqs[NSEQ];
static size_t lens[NSEQ];
static int nseq;
static esm2_model_t *model;
static st_file_t *expected;

static int cb(const fasta_record_t *r, void *ud) {
  (void)ud;
  if (nseq >= NSEQ) return 1;
  ids[nseq] = strdup(r->id);
  seqs[nseq] = strdup(r->seq);
  lens[nseq] = r->len;
  nseq++;
  return 0;
}

static int setup(void **state) {
  (void)state;
  int found = fx_find_shared("testvectors/esm2-tiny/sequences.fasta");
  snprintf(vec_dir, sizeof vec_dir, "%s/testvectors/esm2-tiny", fx_shared_dir);
  snprintf(fasta_path, sizeof fasta_path, "%s/sequences.fasta", vec_dir);
  snprintf(exp_path, sizeof exp_path, "%s/expected.safetensors", vec_dir);
  FILE *f = found ? fopen(fasta_path, "rb") : NULL;
  if (!f) {
    fprintf(stderr, "no test vectors at %s\n", vec_dir);
    return -1;
  }
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  ps_err_t err = {0};
  if (fasta_parse_buffer(buf, n, cb, NULL, &err) != NSEQ) return -1;
  if (esm2_load(&model, vec_dir, &err) < 0) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  if (st_open(&expected, exp_path, &err) < 0) return -1;
  return fx_setup(state);
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < nseq; i++) {
    free(ids[i]);
    free(seqs[i]);
  }
  esm2_destroy(&model);
  st_close(&expected);
  return fx_teardown(state);
}

// Expected tensor name (e.g. "P62328.layer1.mean"), n floats; caller frees.
static float *exp_read(const char *name, uint64_t n) {
  const st_tensor_info_t *t = st_tensor_find(expected, name);
  if (!t) fail_msg("expected tensor %s missing", name);
  assert_int_equal(t->n_elems, n);
  float *v = malloc(n * sizeof(float));
  ps_err_t err = {0};
  assert_int_equal(st_read_f32(expected, name, v, n, &err), 0);
  return v;
}

static double max_abs(const float *a, const float *b, uint64_t n) {
  double m = 0;
  for (uint64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= m)) m = d;  // NaN propagates
  }
  return m;
}

static int all_layers[3] = {0, 1, 2};

// Compare the outputs of sequence b of the last forward (request: all layers, residue, mean,
// logits) with expected `id`; returns the largest absolute difference.
static double compare_seq(esm2_ws_t *ws, int b, const char *id, int n_tok) {
  const int D = 64, V = 33;
  char name[256];
  double worst = 0;
  for (int l = 0; l < 3; l++) {
    snprintf(name, sizeof name, "%s.layer%d.per_residue", id, l);
    float *e = exp_read(name, (uint64_t)(n_tok - 2) * D);
    double d = max_abs(esm2_out_residue(ws, l, b), e, (uint64_t)(n_tok - 2) * D);
    if (d > TOL) fail_msg("%s: max abs error %g > %g", name, d, TOL);
    worst = fmax(worst, d);
    free(e);
    snprintf(name, sizeof name, "%s.layer%d.mean", id, l);
    e = exp_read(name, D);
    d = max_abs(esm2_out_mean(ws, l, b), e, D);
    if (d > TOL) fail_msg("%s: max abs error %g > %g", name, d, TOL);
    worst = fmax(worst, d);
    free(e);
  }
  snprintf(name, sizeof name, "%s.logits", id);
  float *e = exp_read(name, (uint64_t)n_tok * V);
  double d = max_abs(esm2_out_logits(ws, b), e, (uint64_t)n_tok * V);
  if (d > TOL) fail_msg("%s: max abs error %g > %g", name, d, TOL);
  free(e);
  return fmax(worst, d);
}

static int tokenize_check(int i, int32_t *tok) {
  ps_err_t err = {0};
  int n = esm2_tokenize(esm2_config(model), ids[i], seqs[i], lens[i], 1022, ESM2_UNKNOWN_ERROR, tok, &err);
  assert_int_equal(n, (int)lens[i] + 2);
  char name[256];
  snprintf(name, sizeof name, "%s.tokens", ids[i]);
  float *e = exp_read(name, (uint64_t)n);
  for (int t = 0; t < n; t++)
    if ((int)e[t] != tok[t]) fail_msg("%s: token %d is %d, expected %d", ids[i], t, tok[t], (int)e[t]);
  free(e);
  return n;
}

static void test_tokens(void **state) {
  (void)state;
  int32_t tok[2048];
  for (int i = 0; i < nseq; i++) tokenize_check(i, tok);
}

static double run_batched(int threads) {
  static int32_t tok[8192];
  int nt[NSEQ], off = 0;
  for (int i = 0; i < nseq; i++) {
    nt[i] = tokenize_check(i, tok + off);
    off += nt[i];
  }
  esm2_ws_t *ws = esm2_ws_new(threads);
  esm2_request_t req = {all_layers, 3, 1, 1, 1};
  ps_err_t err = {0};
  int rc = esm2_forward(model, ws, tok, nt, nseq, &req, &err);
  if (rc < 0) fail_msg("%s", err.msg);
  double worst = 0;
  for (int i = 0; i < nseq; i++) worst = fmax(worst, compare_seq(ws, i, ids[i], nt[i]));
  esm2_ws_destroy(&ws);
  return worst;
}

static void test_forward_batched(void **state) {
  (void)state;
  double w = run_batched(1);
  printf("esm2 batched (1 thread): max abs error %.3g\n", w);
  w = run_batched(2);
  printf("esm2 batched (2 threads): max abs error %.3g\n", w);
}

static void test_forward_single(void **state) {
  (void)state;
  esm2_ws_t *ws = esm2_ws_new(1);
  esm2_request_t req = {all_layers, 3, 1, 1, 1};
  double worst = 0;
  for (int i = 0; i < nseq; i++) {
    int32_t tok[2048];
    int n = tokenize_check(i, tok);
    ps_err_t err = {0};
    if (esm2_forward(model, ws, tok, &n, 1, &req, &err) < 0) fail_msg("%s", err.msg);
    worst = fmax(worst, compare_seq(ws, 0, ids[i], n));
  }
  printf("esm2 one at a time: max abs error %.3g\n", worst);
  esm2_ws_destroy(&ws);
}

// A request for some layers only stops early and still matches.
static void test_forward_partial(void **state) {
  (void)state;
  esm2_ws_t *ws = esm2_ws_new(1);
  int lay[1] = {1};
  esm2_request_t req = {lay, 1, 0, 1, 0};
  int32_t tok[2048];
  int n = tokenize_check(0, tok);
  ps_err_t err = {0};
  assert_int_equal(esm2_forward(model, ws, tok, &n, 1, &req, &err), 0);
  assert_null(esm2_out_residue(ws, 0, 0));
  assert_null(esm2_out_logits(ws, 0));
  char name[256];
  snprintf(name, sizeof name, "%s.layer1.mean", ids[0]);
  float *e = exp_read(name, 64);
  double d = max_abs(esm2_out_mean(ws, 0, 0), e, 64);
  if (d > TOL) fail_msg("%s: %g", name, d);
  free(e);
  // bad requests
  int bad[1] = {3};
  esm2_request_t rq2 = {bad, 1, 0, 1, 0};
  assert_int_equal(esm2_forward(model, ws, tok, &n, 1, &rq2, &err), PS_ECONFIG);
  assert_non_null(strstr(err.msg, "layer 3"));
  esm2_ws_destroy(&ws);
}

static int find_id(const char *id) {
  for (int i = 0; i < nseq; i++)
    if (!strcmp(ids[i], id)) return i;
  return -1;
}

// The FASTA runner with small budgets (several batches, two windows) matches, in length order.
static void test_runner(void **state) {
  (void)state;
  esm2_run_opts_t o = {0};
  o.fasta_path = fasta_path;
  o.req = (esm2_request_t){all_layers, 3, 1, 1, 1};
  o.tokens_per_batch = 150;
  o.sort_window = 4;
  esm2_runner_t *r = NULL;
  ps_err_t err = {0};
  assert_int_equal(esm2_runner_new(&r, model, &o, &err), 0);
  esm2_item_t it;
  int n = 0, rc;
  uint32_t prev_len = 0;
  const int D = 64;
  while ((rc = esm2_runner_next(r, &it, &err)) > 0) {
    int i = find_id(it.id);
    assert_true(i >= 0);
    assert_int_equal(it.index, (uint64_t)n);
    assert_int_equal(it.n_residues, lens[i]);
    if (n != 4) assert_true(it.n_residues >= prev_len);  // sorted within a window (window 2 starts at 4)
    prev_len = it.n_residues;
    char name[256];
    for (int l = 0; l < 3; l++) {
      snprintf(name, sizeof name, "%s.layer%d.per_residue", it.id, l);
      float *e = exp_read(name, (uint64_t)it.n_residues * D);
      double d = max_abs(it.residue[l], e, (uint64_t)it.n_residues * D);
      if (d > TOL) fail_msg("runner %s: %g", name, d);
      free(e);
      snprintf(name, sizeof name, "%s.layer%d.mean", it.id, l);
      e = exp_read(name, D);
      d = max_abs(it.mean[l], e, D);
      if (d > TOL) fail_msg("runner %s: %g", name, d);
      free(e);
    }
    n++;
  }
  if (rc < 0) fail_msg("%s", err.msg);
  assert_int_equal(n, nseq);
  uint64_t want_tok = 0;
  for (int i = 0; i < nseq; i++) want_tok += lens[i] + 2;
  assert_int_equal(esm2_runner_tokens(r), want_tok);
  esm2_runner_destroy(&r);

  // skip 3 then read the rest: the same items as positions 3.. of a full run
  assert_int_equal(esm2_runner_new(&r, model, &o, &err), 0);
  assert_int_equal(esm2_runner_skip(r, 3, &err), 0);
  n = 0;
  while ((rc = esm2_runner_next(r, &it, &err)) > 0) {
    assert_int_equal(it.index, (uint64_t)(3 + n));
    n++;
  }
  assert_int_equal(rc, 0);
  assert_int_equal(n, nseq - 3);
  esm2_runner_destroy(&r);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_unknown_letters(void **state) {
  (void)state;
  int32_t tok[64];
  ps_err_t err = {0};
  const esm2_config_t *c = esm2_config(model);
  int n = esm2_tokenize(c, "seqJ", "MKJL", 4, 1022, ESM2_UNKNOWN_ERROR, tok, &err);
  assert_int_equal(n, PS_EFORMAT);
  assert_non_null(strstr(err.msg, "seqJ"));
  assert_non_null(strstr(err.msg, "'J' at position 3"));
  n = esm2_tokenize(c, "low", "MkL", 3, 1022, ESM2_UNKNOWN_ERROR, tok, &err);
  assert_int_equal(n, PS_EFORMAT);
  assert_non_null(strstr(err.msg, "'k' at position 2"));
  n = esm2_tokenize(c, "seqJ", "MKJL", 4, 1022, ESM2_UNKNOWN_UNK, tok, &err);
  assert_int_equal(n, 6);
  assert_int_equal(tok[0], c->cls_id);
  assert_int_equal(tok[3], c->unk_id);
  assert_int_equal(tok[5], c->eos_id);
  // through the runner: the error names the FASTA, its line, the sequence and the position
  char p[256];
  fx_path(p, sizeof p, "unk.fasta");
  write_text(p, ">a\nMKL\n>b\nMK\nL*A\n");
  esm2_run_opts_t o = {0};
  o.fasta_path = p;
  o.req = (esm2_request_t){all_layers, 1, 0, 1, 0};
  esm2_runner_t *r = NULL;
  assert_int_equal(esm2_runner_new(&r, model, &o, &err), 0);
  esm2_item_t it;
  int rc = esm2_runner_next(r, &it, &err);
  assert_true(rc < 0);
  printf("  error as expected: %s\n", err.msg);
  assert_non_null(strstr(err.msg, "unk.fasta: line 3"));
  assert_non_null(strstr(err.msg, "sequence 'b'"));
  assert_non_null(strstr(err.msg, "'*' at position 4"));
  esm2_runner_destroy(&r);
  o.unknown = ESM2_UNKNOWN_UNK;
  assert_int_equal(esm2_runner_new(&r, model, &o, &err), 0);
  int k = 0;
  while ((rc = esm2_runner_next(r, &it, &err)) > 0) k++;
  assert_int_equal(rc, 0);
  assert_int_equal(k, 2);
  esm2_runner_destroy(&r);
}

static void test_long_sequences(void **state) {
  (void)state;
  // Q9H9T3 (547 residues) with max_residues 100: truncation = the forward of the first 100.
  int i = find_id("Q9H9T3");
  assert_true(i >= 0);
  char p[256];
  fx_path(p, sizeof p, "long.fasta");
  FILE *f = fopen(p, "w");
  fprintf(f, ">%s\n%s\n", ids[i], seqs[i]);
  fclose(f);
  esm2_run_opts_t o = {0};
  o.fasta_path = p;
  o.req = (esm2_request_t){all_layers, 3, 1, 1, 0};
  o.max_residues = 100;
  o.long_policy = ESM2_LONG_ERROR;
  esm2_runner_t *r = NULL;
  ps_err_t err = {0};
  esm2_item_t it;
  assert_int_equal(esm2_runner_new(&r, model, &o, &err), 0);
  assert_int_equal(esm2_runner_next(r, &it, &err), PS_EDIM);
  assert_non_null(strstr(err.msg, "Q9H9T3"));
  assert_non_null(strstr(err.msg, "547 residues"));
  esm2_runner_destroy(&r);
  o.long_policy = ESM2_LONG_TRUNCATE;
  assert_int_equal(esm2_runner_new(&r, model, &o, &err), 0);
  assert_int_equal(esm2_runner_next(r, &it, &err), 1);
  assert_int_equal(it.n_residues, 100);
  assert_int_equal(it.seq_len, 547);
  assert_int_equal(esm2_runner_truncated(r), 1);
  // reference: direct forward of BOS + 100 residues + EOS
  int32_t tok[128];
  int n = esm2_tokenize(esm2_config(model), "x", seqs[i], 100, 1022, ESM2_UNKNOWN_ERROR, tok, &err);
  assert_int_equal(n, 102);
  esm2_ws_t *ws = esm2_ws_new(1);
  esm2_request_t req = {all_layers, 3, 1, 1, 0};
  assert_int_equal(esm2_forward(model, ws, tok, &n, 1, &req, &err), 0);
  assert_true(max_abs(esm2_out_residue(ws, 2, 0), it.residue[2], 100 * 64) == 0);
  // and it differs from the untruncated representation of those residues (attention sees less)
  float *e = exp_read("Q9H9T3.layer2.per_residue", 547 * 64);
  assert_true(max_abs(e, it.residue[2], 100 * 64) > 1e-3);
  free(e);
  esm2_ws_destroy(&ws);
  esm2_runner_destroy(&r);
}

// The reader in native ESM2 mode: protein level, layers 1 and 2 (input and target).
static void test_reader_esm2(void **state) {
  (void)state;
  for (int level = 0; level < 2; level++) {
    reader_opts_t o;
    memset(&o, 0, sizeof o);
    o.fasta_path = fasta_path;
    o.esm2_dir = vec_dir;
    o.esm2_layers = "1,2";
    o.esm2.tokens_per_batch = 300;
    o.src.level = level ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN;
    o.batch_rows = level ? 500 : 4;
    o.epochs = 1;
    reader_t *rd = NULL;
    ps_err_t err = {0};
    if (reader_new(&rd, &o, &err) < 0) fail_msg("%s", err.msg);
    assert_int_equal(reader_esm2_layer(rd), 1);
    reader_batch_t b;
    int rc, seen = 0;
    while ((rc = reader_next_batch(rd, &b, &err)) > 0) {
      assert_int_equal(b.dim, 64);
      assert_int_equal(b.target_dim, 64);
      for (uint32_t p = 0; p < b.n_proteins; p++) {
        int i = find_id(b.ids[p]);
        assert_true(i >= 0);
        uint32_t r0 = level ? b.offsets[p] : p, nr = level ? b.offsets[p + 1] - b.offsets[p] : 1;
        if (level) assert_int_equal(nr, lens[i]);
        char name[256];
        snprintf(name, sizeof name, "%s.layer1.%s", b.ids[p], level ? "per_residue" : "mean");
        float *e = exp_read(name, (uint64_t)nr * 64);
        double d = max_abs(b.rows + (size_t)r0 * 64, e, (uint64_t)nr * 64);
        if (d > TOL) fail_msg("reader %s: %g", name, d);
        free(e);
        snprintf(name, sizeof name, "%s.layer2.%s", b.ids[p], level ? "per_residue" : "mean");
        e = exp_read(name, (uint64_t)nr * 64);
        d = max_abs(b.target + (size_t)r0 * 64, e, (uint64_t)nr * 64);
        if (d > TOL) fail_msg("reader target %s: %g", name, d);
        free(e);
        seen++;
      }
    }
    if (rc < 0) fail_msg("%s", err.msg);
    assert_int_equal(seen, nseq);
    reader_destroy(&rd);
  }
  // resume: seek to record 2, the remaining ids equal those of a full run from 2 on
  reader_opts_t o;
  memset(&o, 0, sizeof o);
  o.fasta_path = fasta_path;
  o.esm2_dir = vec_dir;
  o.esm2_layers = "last";
  o.batch_rows = 1;
  reader_t *rd = NULL;
  ps_err_t err = {0};
  assert_int_equal(reader_new(&rd, &o, &err), 0);
  char order[NSEQ][64];
  reader_batch_t b;
  int k = 0;
  while (reader_next_batch(rd, &b, &err) > 0) snprintf(order[k++], 64, "%s", b.ids[0]);
  assert_int_equal(k, nseq);
  reader_destroy(&rd);
  assert_int_equal(reader_new(&rd, &o, &err), 0);
  reader_pos_t pos = {0, 2, 2};
  assert_int_equal(reader_seek(rd, &pos, &err), 0);
  k = 2;
  while (reader_next_batch(rd, &b, &err) > 0) {
    assert_string_equal(b.ids[0], order[k]);
    assert_int_equal(b.seq, (uint64_t)k);
    k++;
  }
  assert_int_equal(k, nseq);
  reader_destroy(&rd);
}

// ---- checkpoints written by the test -------------------------------------------------------

typedef struct {
  const char *skip;       // tensor left out
  const char *reshape;    // tensor stored with its first dimension minus one
  st_dtype_t dtype;       // dtype of every tensor
  int round_only;         // write F32 values rounded through `dtype` instead
  int sharded;            // two shards + model.safetensors.index.json, as large checkpoints
} copy_opts_t;

static void expect_load_error(const char *dir, int code, const char *s1, const char *s2);

static void copy_model(const char *dst, const copy_opts_t *co) {
  mkdir(dst, 0755);
  char p[4200], cmd[8600];
  snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/config.json'", vec_dir, dst);
  assert_int_equal(system(cmd), 0);
  snprintf(p, sizeof p, "%s/model.safetensors", vec_dir);
  st_file_t *src = NULL;
  ps_err_t err = {0};
  assert_int_equal(st_open(&src, p, &err), 0);
  st_writer_t *ws[2] = {NULL, NULL};
  FILE *idx = NULL;
  if (co->sharded) {
    for (int k = 0; k < 2; k++) {
      snprintf(p, sizeof p, "%s/model-%05d-of-00002.safetensors", dst, k + 1);
      assert_int_equal(st_writer_open(&ws[k], p, &err), 0);
    }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dst);
    idx = fopen(p, "w");
    assert_non_null(idx);
    fprintf(idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
  } else {
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    assert_int_equal(st_writer_open(&ws[0], p, &err), 0);
  }
  for (size_t i = 0; i < st_n_tensors(src); i++) {
    const st_tensor_info_t *t = st_tensor_info(src, i);
    if (co->skip && !strcmp(t->name, co->skip)) continue;
    float *v = malloc(t->n_elems * sizeof(float));
    assert_int_equal(st_read_f32(src, t->name, v, t->n_elems, &err), 0);
    uint64_t shape[8];
    memcpy(shape, t->shape, sizeof shape);
    if (co->reshape && !strcmp(t->name, co->reshape)) shape[0]--;
    for (uint64_t k = 0; co->round_only && k < t->n_elems; k++) {
      if (co->dtype == ST_F16) {
        v[k] = emb_half_to_float(emb_float_to_half(v[k]));
      } else {  // bfloat16, round to nearest even
        uint32_t bits;
        memcpy(&bits, &v[k], 4);
        v[k] = emb_bf16_to_float((uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16));
      }
    }
    int k = co->sharded ? (int)(i % 2) : 0;
    if (idx) fprintf(idx, "%s\"%s\": \"model-%05d-of-00002.safetensors\"", i ? ", " : "", t->name, k + 1);
    assert_int_equal(st_writer_add_f32(ws[k], t->name, co->round_only ? ST_F32 : co->dtype, shape, t->ndim, v, &err), 0);
    free(v);
  }
  for (int k = 0; k < 2; k++)
    if (ws[k]) assert_int_equal(st_writer_close(&ws[k], &err), 0);
  if (idx) {
    fprintf(idx, "}}\n");
    fclose(idx);
  }
  st_close(&src);
}

// Forward of sequence 2 with all outputs; returns 1 when a and b give identical results.
static int same_outputs(esm2_model_t *a, esm2_model_t *b) {
  int32_t tok[2048];
  int n = tokenize_check(2, tok);
  esm2_request_t req = {all_layers, 3, 1, 1, 1};
  esm2_ws_t *wa = esm2_ws_new(1), *wb = esm2_ws_new(1);
  ps_err_t err = {0};
  assert_int_equal(esm2_forward(a, wa, tok, &n, 1, &req, &err), 0);
  assert_int_equal(esm2_forward(b, wb, tok, &n, 1, &req, &err), 0);
  int same = max_abs(esm2_out_residue(wa, 2, 0), esm2_out_residue(wb, 2, 0), (uint64_t)(n - 2) * 64) == 0 &&
             max_abs(esm2_out_logits(wa, 0), esm2_out_logits(wb, 0), (uint64_t)n * 33) == 0;
  esm2_ws_destroy(&wa);
  esm2_ws_destroy(&wb);
  return same;
}

// A sharded checkpoint (index.json + two files) and one without lm_head.decoder.weight (tied to
// the word embeddings, as the published checkpoints store it) give the original outputs.
static void test_sharded_and_tied(void **state) {
  (void)state;
  char d[256];
  ps_err_t err = {0};
  fx_path(d, sizeof d, "sharded");
  copy_opts_t c1 = {NULL, NULL, ST_F32, 0, 1};
  copy_model(d, &c1);
  esm2_model_t *m = NULL;
  if (esm2_load(&m, d, &err) < 0) fail_msg("%s", err.msg);
  assert_true(same_outputs(model, m));
  esm2_destroy(&m);
  fx_path(d, sizeof d, "tied");
  copy_opts_t c2 = {"lm_head.decoder.weight", NULL, ST_F32, 0, 0};
  copy_model(d, &c2);
  if (esm2_load(&m, d, &err) < 0) fail_msg("%s", err.msg);
  assert_true(esm2_config(m)->has_lm_head);
  assert_true(same_outputs(model, m));
  esm2_destroy(&m);
  // a shard named in the index but absent: the error names it
  fx_path(d, sizeof d, "sharded/model-00002-of-00002.safetensors");
  assert_int_equal(remove(d), 0);
  fx_path(d, sizeof d, "sharded");
  expect_load_error(d, -2, "model-00002-of-00002.safetensors", NULL);
}

// Half-precision checkpoints load (converted to float32) and give exactly the outputs of a
// float32 checkpoint holding the same rounded values; and stay near the float32 reference.
static void test_half_checkpoints(void **state) {
  (void)state;
  st_dtype_t dts[2] = {ST_F16, ST_BF16};
  for (int k = 0; k < 2; k++) {
    char d1[256], d2[256], name[32];
    snprintf(name, sizeof name, "half%d", k);
    fx_path(d1, sizeof d1, name);
    snprintf(name, sizeof name, "rounded%d", k);
    fx_path(d2, sizeof d2, name);
    copy_opts_t c1 = {NULL, NULL, dts[k], 0, 0}, c2 = {NULL, NULL, dts[k], 1, 0};
    copy_model(d1, &c1);
    copy_model(d2, &c2);
    esm2_model_t *a = NULL, *b = NULL;
    ps_err_t err = {0};
    if (esm2_load(&a, d1, &err) < 0) fail_msg("%s", err.msg);
    if (esm2_load(&b, d2, &err) < 0) fail_msg("%s", err.msg);
    int32_t tok[2048];
    int n = tokenize_check(2, tok);
    esm2_request_t req = {all_layers, 3, 1, 1, 1};
    esm2_ws_t *wa = esm2_ws_new(1), *wb = esm2_ws_new(1);
    assert_int_equal(esm2_forward(a, wa, tok, &n, 1, &req, &err), 0);
    assert_int_equal(esm2_forward(b, wb, tok, &n, 1, &req, &err), 0);
    assert_true(max_abs(esm2_out_residue(wa, 2, 0), esm2_out_residue(wb, 2, 0), (uint64_t)(n - 2) * 64) == 0);
    assert_true(max_abs(esm2_out_logits(wa, 0), esm2_out_logits(wb, 0), (uint64_t)n * 33) == 0);
    float *e = exp_read("Q8NFA2.layer2.per_residue", (uint64_t)(n - 2) * 64);
    double d = max_abs(esm2_out_residue(wa, 2, 0), e, (uint64_t)(n - 2) * 64);
    printf("esm2 %s weights: max abs error vs float32 reference %.3g\n", k ? "bf16" : "f16", d);
    assert_true(d > 0 && d < (k ? 0.5 : 0.05));
    free(e);
    esm2_ws_destroy(&wa);
    esm2_ws_destroy(&wb);
    esm2_destroy(&a);
    esm2_destroy(&b);
  }
}

static void expect_load_error(const char *dir, int code, const char *s1, const char *s2) {
  esm2_model_t *m = NULL;
  ps_err_t err = {0};
  int rc = esm2_load(&m, dir, &err);
  assert_null(m);
  if (rc != code) fail_msg("load %s: code %d, expected %d (%s)", dir, rc, code, err.msg);
  if (s1 && !strstr(err.msg, s1)) fail_msg("message lacks '%s': %s", s1, err.msg);
  if (s2 && !strstr(err.msg, s2)) fail_msg("message lacks '%s': %s", s2, err.msg);
  printf("  error as expected: %s\n", err.msg);
}

static void test_loader_errors(void **state) {
  (void)state;
  char d[256], p[300];
  // missing tensor
  fx_path(d, sizeof d, "missing");
  copy_opts_t c1 = {"esm.encoder.layer.1.attention.self.key.weight", NULL, ST_F32, 0, 0};
  copy_model(d, &c1);
  expect_load_error(d, PS_ENOTFOUND, "missing/model.safetensors", "'esm.encoder.layer.1.attention.self.key.weight' is missing");
  // wrong shape
  fx_path(d, sizeof d, "shape");
  copy_opts_t c2 = {NULL, "esm.encoder.layer.0.intermediate.dense.weight", ST_F32, 0, 0};
  copy_model(d, &c2);
  expect_load_error(d, PS_EDIM, "shape/model.safetensors", "'esm.encoder.layer.0.intermediate.dense.weight' has shape [255, 64], expected [256, 64]");
  // truncated file
  fx_path(d, sizeof d, "trunc");
  copy_opts_t c3 = {NULL, NULL, ST_F32, 0, 0};
  copy_model(d, &c3);
  snprintf(p, sizeof p, "%s/model.safetensors", d);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(truncate(p, st.st_size - 1000), 0);
  expect_load_error(d, PS_ETRUNC, "trunc/model.safetensors", "lm_head");
  // bad header
  fx_path(d, sizeof d, "header");
  copy_model(d, &c3);
  snprintf(p, sizeof p, "%s/model.safetensors", d);
  FILE *f = fopen(p, "r+b");
  fseek(f, 8, SEEK_SET);
  fputs("{\"x\": [", f);
  fclose(f);
  expect_load_error(d, PS_EFORMAT, "header/model.safetensors", NULL);
  // no weights at all
  fx_path(d, sizeof d, "empty");
  mkdir(d, 0755);
  char cmd[8600];
  snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/'", vec_dir, d);
  assert_int_equal(system(cmd), 0);
  expect_load_error(d, PS_ENOTFOUND, "empty", "model.safetensors");
  // no directory
  fx_path(d, sizeof d, "nonexistent");
  expect_load_error(d, PS_ENOTFOUND, "nonexistent/config.json", NULL);
  // bad config
  fx_path(d, sizeof d, "config");
  copy_model(d, &c3);
  snprintf(p, sizeof p, "%s/config.json", d);
  write_text(p, "{\"hidden_size\": 64, \"num_hidden_layers\": 2,\n \"num_attention_heads\": 4 \"x\"}");
  expect_load_error(d, PS_EFORMAT, "config/config.json: line 2", NULL);
  write_text(p, "{\"hidden_size\": 64, \"num_hidden_layers\": 2, \"intermediate_size\": 256}");
  expect_load_error(d, PS_EFORMAT, "config/config.json", "'num_attention_heads' is missing");
  // a config that disagrees with the weights: the shape error names file and tensor
  write_text(p, "{\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}");
  expect_load_error(d, PS_EDIM, "config/model.safetensors", "'esm.encoder.layer.0.intermediate.dense.weight'");
}

static void test_random_roundtrip(void **state) {
  (void)state;
  // esm2_new_random + esm2_save + esm2_load give the same forward
  esm2_model_t *a = esm2_new_random(2, 32, 4, 64, 7), *b = NULL;
  char d[256], p[300];
  fx_path(d, sizeof d, "rand");
  mkdir(d, 0755);
  snprintf(p, sizeof p, "%s/config.json", d);
  write_text(p, "{\"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 64,"
                " \"vocab_size\": 33, \"token_dropout\": true, \"mask_token_id\": 32}");
  snprintf(p, sizeof p, "%s/model.safetensors", d);
  ps_err_t err = {0};
  assert_int_equal(esm2_save(a, p, &err), 0);
  if (esm2_load(&b, d, &err) < 0) fail_msg("%s", err.msg);
  assert_int_equal(esm2_n_params(a), esm2_n_params(b));
  int32_t tok[16] = {0, 5, 6, 7, 32, 9, 2};
  int n = 7;
  int lay[1] = {2};
  esm2_request_t req = {lay, 1, 1, 1, 0};
  esm2_ws_t *wa = esm2_ws_new(1), *wb = esm2_ws_new(1);
  assert_int_equal(esm2_forward(a, wa, tok, &n, 1, &req, &err), 0);
  assert_int_equal(esm2_forward(b, wb, tok, &n, 1, &req, &err), 0);
  assert_true(max_abs(esm2_out_residue(wa, 0, 0), esm2_out_residue(wb, 0, 0), 5 * 32) == 0);
  esm2_ws_destroy(&wa);
  esm2_ws_destroy(&wb);
  esm2_destroy(&a);
  esm2_destroy(&b);
}

static void test_parse_layers(void **state) {
  (void)state;
  int *v = NULL, n = 0;
  ps_err_t err = {0};
  assert_int_equal(esm2_parse_layers("5,6", 12, &v, &n, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(v[0], 5);
  assert_int_equal(v[1], 6);
  free(v);
  assert_int_equal(esm2_parse_layers("last", 12, &v, &n, &err), 0);
  assert_int_equal(v[0], 12);
  free(v);
  assert_int_equal(esm2_parse_layers("-1", 12, &v, &n, &err), 0);
  assert_int_equal(v[0], 12);
  free(v);
  assert_int_equal(esm2_parse_layers("all", 2, &v, &n, &err), 0);
  assert_int_equal(n, 3);
  free(v);
  assert_int_equal(esm2_parse_layers("13", 12, &v, &n, &err), PS_ECONFIG);
  assert_int_equal(esm2_parse_layers("1,1", 12, &v, &n, &err), PS_ECONFIG);
  assert_int_equal(esm2_parse_layers("x", 12, &v, &n, &err), PS_ECONFIG);
  assert_null(v);
}

// The vectorized kernels against the scalar libm formulas.
static void test_kernels(void **state) {
  (void)state;
  // softmax probabilities are exp(x - max) <= 1: relative and absolute error on [-87, 0]
  double worst = 0, worst_abs = 0;
  for (int i = 0; i <= 200000; i++) {
    float x = -87.0f * (float)i / 200000.0f;
    double want = exp((double)x), got = esm2_kern_exp(x);
    worst = fmax(worst, fabs(got - want) / want);
    worst_abs = fmax(worst_abs, fabs(got - want));
  }
  printf("kernel exp: max relative error %.3g, max abs error %.3g on [-87, 0]\n", worst, worst_abs);
  assert_true(worst < 3e-7);
  assert_true(worst_abs < 1e-7);
  enum { N = 4099 };
  static float u[N], b[N], s[N], inv[3];
  for (int i = 0; i < N; i++) {
    u[i] = -8.0f + 16.0f * (float)i / N;
    b[i] = 0.01f * (float)(i % 7);
  }
  esm2_kern_gelu_bias(u, b, N);
  double gw = 0;
  for (int i = 0; i < N; i++) {
    double x = (double)(-8.0f + 16.0f * (float)i / N) + (double)b[i];
    double want = 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    gw = fmax(gw, fabs(u[i] - want));
  }
  printf("kernel gelu: max abs error %.3g\n", gw);
  assert_true(gw < 2e-6);
  // softmax rows: sums to one after scaling, and matches the direct formula
  for (int i = 0; i < 3 * 1000; i++) s[i] = (float)((i * 37) % 101) * 0.173f - (float)(i / 1000) * 40.0f;
  float ref[3000];
  memcpy(ref, s, sizeof ref);
  esm2_kern_softmax_unnorm(s, 3, 1000, inv);
  for (int r = 0; r < 3; r++) {
    double mx = -1e30, sum = 0, tot = 0;
    for (int j = 0; j < 1000; j++) mx = fmax(mx, ref[r * 1000 + j]);
    for (int j = 0; j < 1000; j++) sum += exp(ref[r * 1000 + j] - mx);
    for (int j = 0; j < 1000; j++) {
      double p = s[r * 1000 + j] * inv[r];
      tot += p;
      assert_true(fabs(p - exp(ref[r * 1000 + j] - mx) / sum) < 1e-6);
    }
    assert_true(fabs(tot - 1.0) < 1e-5);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokens),          cmocka_unit_test(test_forward_batched),
      cmocka_unit_test(test_forward_single),  cmocka_unit_test(test_forward_partial),
      cmocka_unit_test(test_runner),          cmocka_unit_test(test_unknown_letters),
      cmocka_unit_test(test_long_sequences),  cmocka_unit_test(test_reader_esm2),
      cmocka_unit_test(test_half_checkpoints), cmocka_unit_test(test_loader_errors),
      cmocka_unit_test(test_random_roundtrip), cmocka_unit_test(test_parse_layers),
      cmocka_unit_test(test_kernels),          cmocka_unit_test(test_sharded_and_tied),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
