// safetensors (safetensors.h): the ESM2 test vectors read back to the exact floats (checked
// against numpy reading the file by hand, and independently: layerK.mean = mean of
// layerK.per_residue), the model weights file listed with every shape, writer -> reader round
// trips (F32 / F16 / BF16, streamed tensors, metadata, the three source layouts at protein and
// residue level), skip/resume, and broken files (short, huge or truncated header, bad JSON,
// offsets out of range or overlapping, unknown dtype, truncated data, dims disagreeing, NaN)
// giving errors that name the file and the tensor / record / row: those are
// test_safetensors_broken.c.
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

// ---- the ESM2 test vectors -------------------------------------------------------------------
static const char *EXP_IDS[] = {"P62328", "P30047", "Q8NFA2", "Q9H9T3", "edge_single", "edge_rare"};
static const uint32_t EXP_LEN[] = {44, 84, 376, 547, 1, 26};

static void test_expected_index(void **state) {
  (void)state;
  char p[4096];
  vec_path(p, sizeof p, "esm2-tiny/expected.safetensors");
  if (access(p, R_OK) != 0) skip();
  st_file_t *f = NULL;
  ps_err_t err = {0};
  if (st_open(&f, p, &err) < 0) fail_msg("%s", err.msg);
  assert_int_equal(st_n_tensors(f), 48);
  assert_int_equal(st_n_metadata(f), 0);
  assert_null(st_metadata(f, "format"));
  uint64_t prev = 0;
  for (size_t i = 0; i < st_n_tensors(f); i++) {
    const st_tensor_info_t *t = st_tensor_info(f, i);
    assert_true(t->offset >= prev);  // data-offset order
    prev = t->offset + t->nbytes;
    assert_int_equal(t->dtype, ST_F32);
    assert_ptr_equal(st_tensor_find(f, t->name), t);
  }
  assert_null(st_tensor_info(f, 48));
  assert_null(st_tensor_find(f, "nope"));
  const st_tensor_info_t *t = st_tensor_find(f, "Q8NFA2.layer1.per_residue");
  assert_non_null(t);
  assert_int_equal(t->ndim, 2);
  assert_int_equal(t->shape[0], 376);
  assert_int_equal(t->shape[1], 64);
  t = st_tensor_find(f, "P62328.logits");
  assert_int_equal(t->shape[0], 46);
  assert_int_equal(t->shape[1], 33);
  // st_read_f32 checks the count
  float x[64];
  assert_int_equal(st_read_f32(f, "P62328.layer0.mean", x, 63, &err), PS_EDIM);
  assert_msg_has(&err, "P62328.layer0.mean");
  assert_int_equal(st_read_f32(f, "missing", x, 64, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "expected.safetensors");
  assert_int_equal(st_read_f32(f, "P62328.layer0.mean", x, 64, &err), 0);
  // range read = the same floats
  float y[8];
  assert_int_equal(st_read_range_f32(f, st_tensor_find(f, "P62328.layer0.mean"), 10, 8, y, &err), 0);
  assert_memory_equal(y, x + 10, sizeof y);
  assert_int_equal(st_read_range_f32(f, st_tensor_find(f, "P62328.layer0.mean"), 60, 8, y, &err), PS_EDIM);
  st_close(&f);
  assert_null(f);
  st_close(&f);  // NULL is fine
}

// Independent check: the layered source, at each layer, gives per-residue rows whose mean is the
// stored layerK.mean (within 1e-5), for the 6 proteins in file order.
static void test_expected_source(void **state) {
  (void)state;
  char p[4096];
  vec_path(p, sizeof p, "esm2-tiny/expected.safetensors");
  if (access(p, R_OK) != 0) skip();
  for (int layer = -1; layer <= 2; layer++) {
    emb_source_t *res = src_open(p, EMB_LEVEL_RESIDUE, layer), *prot = src_open(p, EMB_LEVEL_PROTEIN, layer);
    assert_int_equal(safetensors_source_layer(res), layer < 0 ? 2 : layer);
    assert_int_equal(emb_source_count(res), 6);
    assert_int_equal(emb_source_count(prot), 6);
    assert_int_equal(safetensors_source_n_skipped(res), 42);
    ps_err_t err = {0};
    for (int i = 0; i < 6; i++) {
      emb_record_t r, m;
      if (emb_source_next(res, &r, &err) != 1) fail_msg("%s", err.msg);
      assert_string_equal(r.id, EXP_IDS[i]);
      assert_int_equal(r.n_rows, EXP_LEN[i]);
      assert_int_equal(r.dim, 64);
      assert_int_equal(r.index, i);
      double mean[64] = {0};
      for (uint32_t k = 0; k < r.n_rows; k++)
        for (int j = 0; j < 64; j++) mean[j] += r.rows[k * 64 + j];
      if (emb_source_next(prot, &m, &err) != 1) fail_msg("%s", err.msg);
      assert_string_equal(m.id, EXP_IDS[i]);
      assert_int_equal(m.n_rows, 1);
      for (int j = 0; j < 64; j++) {
        double want = mean[j] / r.n_rows;
        if (fabs(want - m.rows[j]) > 1e-5)
          fail_msg("%s layer %d col %d: stored mean %.8g, mean of rows %.8g", EXP_IDS[i], layer, j, m.rows[j], want);
      }
    }
    emb_record_t r;
    assert_int_equal(emb_source_next(res, &r, &err), 0);
    assert_int_equal(emb_source_next(prot, &r, &err), 0);
    emb_source_destroy(&res);
    emb_source_destroy(&prot);
  }
  // a layer that is not there
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = 7};
  ps_err_t err = {0};
  assert_int_equal(src_open_err(&o, &err), PS_ENOTFOUND);
  assert_msg_has(&err, "layer 7");
  assert_msg_has(&err, "0, 1, 2");
  assert_msg_has(&err, "expected.safetensors");
}

// numpy reads the file by hand (JSON header + np.frombuffer) and dumps, for each protein in
// file order, layer 1 per-residue rows then layer 2 mean as float32; we must match to the bit.
static void test_expected_vs_numpy(void **state) {
  (void)state;
  char p[4096], dump[4096], script[4096], cmd[3 * 4096 + 64];
  vec_path(p, sizeof p, "esm2-tiny/expected.safetensors");
  if (access(p, R_OK) != 0 || !have_numpy()) skip();
  fx_path(dump, sizeof dump, "expected.f32");
  fx_path(script, sizeof script, "dump.py");
  FILE *s = fopen(script, "w");
  fputs("import json, struct, sys\n"
        "import numpy as np\n"
        "b = open(sys.argv[1], 'rb').read()\n"
        "n = struct.unpack('<Q', b[:8])[0]\n"
        "h = json.loads(b[8:8 + n])\n"
        "def t(k):\n"
        "    v = h[k]; s, e = v['data_offsets']\n"
        "    assert v['dtype'] == 'F32'\n"
        "    return np.frombuffer(b[8 + n + s:8 + n + e], dtype='<f4').reshape(v['shape'])\n"
        "ids = []\n"
        "for k, v in sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0] if kv[0] != '__metadata__' else -1):\n"
        "    if k.endswith('.layer1.per_residue'): ids.append(k[:-len('.layer1.per_residue')])\n"
        "with open(sys.argv[2], 'wb') as o:\n"
        "    for i in ids:\n"
        "        o.write(t(i + '.layer1.per_residue').astype('<f4').tobytes())\n"
        "        o.write(t(i + '.layer2.mean').astype('<f4').tobytes())\n"
        "print(' '.join(ids))\n",
        s);
  fclose(s);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s", script, p, dump);
  FILE *pp = popen(cmd, "r");
  assert_non_null(pp);
  char line[1024] = "";
  if (!fgets(line, sizeof line, pp)) line[0] = 0;
  assert_int_equal(pclose(pp), 0);
  line[strcspn(line, "\n")] = 0;
  assert_string_equal(line, "P62328 P30047 Q8NFA2 Q9H9T3 edge_single edge_rare");
  FILE *d = fopen(dump, "rb");
  assert_non_null(d);
  emb_source_t *res = src_open(p, EMB_LEVEL_RESIDUE, 1), *prot = src_open(p, EMB_LEVEL_PROTEIN, 2);
  ps_err_t err = {0};
  size_t total = 0;
  for (int i = 0; i < 6; i++) {
    emb_record_t r;
    if (emb_source_next(res, &r, &err) != 1) fail_msg("%s", err.msg);
    size_t nv = (size_t)r.n_rows * r.dim;
    float *want = malloc(nv * sizeof(float));
    assert_int_equal(fread(want, sizeof(float), nv, d), nv);
    for (size_t k = 0; k < nv; k++)
      if (memcmp(&want[k], &r.rows[k], 4)) fail_msg("%s layer1 value %zu: numpy %.9g, ours %.9g", r.id, k, want[k], r.rows[k]);
    free(want);
    float wm[64];
    assert_int_equal(fread(wm, sizeof(float), 64, d), 64);
    if (emb_source_next(prot, &r, &err) != 1) fail_msg("%s", err.msg);
    assert_memory_equal(wm, r.rows, sizeof wm);
    total += nv + 64;
  }
  assert_int_equal(fgetc(d), EOF);
  fclose(d);
  assert_int_equal(total, (44 + 84 + 376 + 547 + 1 + 26) * 64 + 6 * 64);
  emb_source_destroy(&res);
  emb_source_destroy(&prot);
}

// The ESM2 weights: every tensor listed with its shape and dtype, in offset order, agreeing
// with what numpy finds; sums of every tensor agree (ours read through st_read_f32).
static void test_model_weights(void **state) {
  (void)state;
  char p[4096], script[4096], cmd[2 * 4096 + 64];
  vec_path(p, sizeof p, "esm2-tiny/model.safetensors");
  if (access(p, R_OK) != 0) skip();
  st_file_t *f = NULL;
  ps_err_t err = {0};
  if (st_open(&f, p, &err) < 0) fail_msg("%s", err.msg);
  assert_int_equal(st_n_tensors(f), 43);
  const st_tensor_info_t *t = st_tensor_info(f, 0);
  assert_string_equal(t->name, "esm.embeddings.word_embeddings.weight");
  assert_int_equal(t->shape[0], 33);
  assert_int_equal(t->shape[1], 64);
  t = st_tensor_find(f, "esm.encoder.layer.1.intermediate.dense.weight");
  assert_non_null(t);
  assert_int_equal(t->ndim, 2);
  assert_int_equal(t->shape[0], 256);
  assert_int_equal(t->shape[1], 64);
  t = st_tensor_find(f, "esm.encoder.layer.0.attention.self.rotary_embeddings.inv_freq");
  assert_int_equal(t->ndim, 1);
  assert_int_equal(t->shape[0], 8);
  float inv[8];
  assert_int_equal(st_read_f32(f, t->name, inv, 8, &err), 0);
  assert_true(inv[0] == 1.0f);  // 1 / 10000^(0/16)
  assert_true(inv[1] > 0.3f && inv[1] < 0.35f);  // 10000^(-2/16) ~ 0.316, rounded through f16
  // every tensor readable
  for (size_t i = 0; i < st_n_tensors(f); i++) {
    t = st_tensor_info(f, i);
    float *x = malloc(t->n_elems * sizeof(float));
    if (st_read_f32(f, t->name, x, t->n_elems, &err) < 0) fail_msg("%s", err.msg);
    for (uint64_t k = 0; k < t->n_elems; k++) assert_true(isfinite(x[k]));
    free(x);
  }
  if (!have_numpy()) {
    st_close(&f);
    skip();
  }
  fx_path(script, sizeof script, "model.py");
  FILE *s = fopen(script, "w");
  fputs("import json, struct, sys\n"
        "import numpy as np\n"
        "b = open(sys.argv[1], 'rb').read()\n"
        "n = struct.unpack('<Q', b[:8])[0]\n"
        "h = json.loads(b[8:8 + n]); h.pop('__metadata__', None)\n"
        "for k, v in sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0]):\n"
        "    s, e = v['data_offsets']\n"
        "    x = np.frombuffer(b[8 + n + s:8 + n + e], dtype='<f4').astype(np.float64)\n"
        "    print(k, v['dtype'], 'x'.join(map(str, v['shape'])), repr(float(x.sum())))\n",
        s);
  fclose(s);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, p);
  FILE *pp = popen(cmd, "r");
  assert_non_null(pp);
  char line[1024];
  size_t i = 0;
  while (fgets(line, sizeof line, pp)) {
    char name[512], dt[16], shape[128];
    double sum;
    assert_int_equal(sscanf(line, "%511s %15s %127s %lf", name, dt, shape, &sum), 4);
    t = st_tensor_info(f, i++);
    assert_non_null(t);
    assert_string_equal(t->name, name);
    assert_string_equal(st_dtype_name(t->dtype), dt);
    char ours[128] = "";
    size_t l = 0;
    for (int k = 0; k < t->ndim; k++) l += (size_t)snprintf(ours + l, sizeof ours - l, "%s%llu", k ? "x" : "", (unsigned long long)t->shape[k]);
    assert_string_equal(ours, shape);
    float *x = malloc(t->n_elems * sizeof(float));
    assert_int_equal(st_read_f32(f, t->name, x, t->n_elems, &err), 0);
    double acc = 0;
    for (uint64_t k = 0; k < t->n_elems; k++) acc += x[k];
    free(x);
    if (fabs(acc - sum) > 1e-9 * (1 + fabs(sum))) fail_msg("%s: sum %.17g, numpy %.17g", name, acc, sum);
  }
  assert_int_equal(pclose(pp), 0);
  assert_int_equal(i, 43);
  st_close(&f);
}

// ---- writer round trips ------------------------------------------------------------------------

static void test_writer_roundtrip(void **state) {
  (void)state;
  const st_dtype_t dts[] = {ST_F32, ST_F16, ST_BF16};
  for (size_t di = 0; di < 3; di++) {
    char p[256];
    fx_path(p, sizeof p, "rt.safetensors");
    st_writer_t *w = NULL;
    ps_err_t err = {0};
    assert_int_equal(st_writer_open(&w, p, &err), 0);
    assert_int_equal(st_writer_set_metadata(w, "format", "pt", &err), 0);
    assert_int_equal(st_writer_set_metadata(w, "producer", "test", &err), 0);
    assert_int_equal(st_writer_set_metadata(w, "format", "protsae", &err), 0);  // replaces
    float buf[5 * D];
    for (uint32_t i = 0; i < NP; i++) {
      char id[32];
      snprintf(id, sizeof id, "P%u|x y", i);  // ids are any string
      for (uint32_t r = 0; r < plen(i); r++)
        for (uint32_t c = 0; c < D; c++) buf[r * D + c] = val(i, r, c);
      uint64_t shape[2] = {plen(i), D};
      if (i % 2) {
        assert_int_equal(st_writer_add_f32(w, id, dts[di], shape, 2, buf, &err), 0);
      } else {  // streamed in pieces
        assert_int_equal(st_writer_begin(w, id, dts[di], shape, 2, &err), 0);
        for (uint32_t r = 0; r < plen(i); r++) assert_int_equal(st_writer_append_f32(w, buf + r * D, D, &err), 0);
        assert_int_equal(st_writer_end(w, &err), 0);
      }
    }
    int64_t tok[3] = {0, 5, -2};
    uint64_t ts = 3;
    assert_int_equal(st_writer_add_i64(w, "P0.tokens", &ts, 1, tok, &err), 0);
    assert_int_equal(st_writer_count(w), NP + 1);
    assert_int_equal(st_writer_close(&w, &err), 0);
    assert_null(w);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.data.tmp", p);
    assert_int_not_equal(access(tmp, F_OK), 0);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_int_not_equal(access(tmp, F_OK), 0);

    st_file_t *f = NULL;
    if (st_open(&f, p, &err) < 0) fail_msg("%s", err.msg);
    assert_int_equal(st_n_tensors(f), NP + 1);
    assert_string_equal(st_metadata(f, "format"), "protsae");
    assert_string_equal(st_metadata(f, "producer"), "test");
    const char *k, *v;
    assert_int_equal(st_metadata_at(f, 0, &k, &v), 0);
    assert_string_equal(k, "format");
    assert_int_equal(st_metadata_at(f, 2, &k, &v), PS_ENOTFOUND);
    float x[3];
    assert_int_equal(st_read_f32(f, "P0.tokens", x, 3, &err), 0);
    assert_true(x[0] == 0 && x[1] == 5 && x[2] == -2);
    assert_int_equal(st_tensor_find(f, "P3|x y")->dtype, dts[di]);
    st_close(&f);

    for (int level = 0; level < 2; level++) {
      emb_source_t *s = src_open(p, (emb_level_t)level, -1);
      assert_int_equal(emb_source_count(s), NP);
      assert_int_equal(safetensors_source_n_skipped(s), 1);  // the .tokens
      for (uint32_t i = 0; i < NP; i++) {
        emb_record_t r;
        if (emb_source_next(s, &r, &err) != 1) fail_msg("%s", err.msg);
        char id[32];
        snprintf(id, sizeof id, "P%u|x y", i);
        assert_string_equal(r.id, id);
        assert_int_equal(r.dim, D);
        assert_int_equal(r.n_rows, level ? plen(i) : 1);
        for (uint32_t c = 0; c < D; c++) {
          double acc = 0;
          for (uint32_t q = 0; q < plen(i); q++) {
            float want = val(i, q, c);
            if (dts[di] == ST_F16) want = emb_half_to_float(emb_float_to_half(want));
            if (dts[di] == ST_BF16) {
              float got = level ? r.rows[q * D + c] : want;
              if (fabsf(got - want) > fabsf(want) / 256) fail_msg("bf16 %g vs %g", got, want);
              want = got;
            }
            if (level && memcmp(&want, &r.rows[q * D + c], 4))
              fail_msg("dtype %s record %u row %u col %u: %.9g, wrote %.9g", st_dtype_name(dts[di]), i, q, c,
                       r.rows[q * D + c], want);
            acc += want;
          }
          if (!level && dts[di] != ST_BF16 && fabs(acc / plen(i) - r.rows[c]) > 1e-6 * (1 + fabs(acc)))
            fail_msg("pooled %g vs %g", r.rows[c], acc / plen(i));
        }
      }
      emb_record_t r;
      assert_int_equal(emb_source_next(s, &r, &err), 0);
      emb_source_destroy(&s);
    }
  }
}

// protsae's own layered layout, written by the writer: ID.layerK(.mean|.per_residue)
static void test_layered_written(void **state) {
  (void)state;
  char p[256];
  fx_path(p, sizeof p, "lay.safetensors");
  st_writer_t *w = NULL;
  ps_err_t err = {0};
  assert_int_equal(st_writer_open(&w, p, &err), 0);
  float buf[5 * D], mean[D];
  for (uint32_t i = 0; i < NP; i++) {
    for (int layer = 3; layer <= 12; layer += 9) {
      char name[64];
      for (uint32_t r = 0; r < plen(i); r++)
        for (uint32_t c = 0; c < D; c++) buf[r * D + c] = val(i, r, c) + (float)layer;
      for (uint32_t c = 0; c < D; c++) mean[c] = (float)(i * 100 + layer);  // not the true mean: tells which was read
      uint64_t shape[2] = {plen(i), D};
      snprintf(name, sizeof name, "Q%u.layer%d.per_residue", i, layer);
      assert_int_equal(st_writer_add_f32(w, name, ST_F32, shape, 2, buf, &err), 0);
      if (i != 2) {  // protein 2 has no mean: protein level pools its rows
        snprintf(name, sizeof name, "Q%u.layer%d.mean", i, layer);
        assert_int_equal(st_writer_add_f32(w, name, ST_F32, shape + 1, 1, mean, &err), 0);
      }
    }
  }
  assert_int_equal(st_writer_close(&w, &err), 0);
  for (int layer = -1; layer <= 3; layer += 4) {
    int k = layer < 0 ? 12 : 3;
    emb_source_t *res = src_open(p, EMB_LEVEL_RESIDUE, layer), *prot = src_open(p, EMB_LEVEL_PROTEIN, layer);
    assert_int_equal(safetensors_source_layer(prot), k);
    for (uint32_t i = 0; i < NP; i++) {
      emb_record_t r;
      if (emb_source_next(res, &r, &err) != 1) fail_msg("%s", err.msg);
      char id[16];
      snprintf(id, sizeof id, "Q%u", i);
      assert_string_equal(r.id, id);
      assert_int_equal(r.n_rows, plen(i));
      assert_true(r.rows[plen(i) * D - 1] == val(i, plen(i) - 1, D - 1) + (float)k);
      if (emb_source_next(prot, &r, &err) != 1) fail_msg("%s", err.msg);
      assert_string_equal(r.id, id);
      if (i != 2) {
        assert_true(r.rows[0] == (float)(i * 100 + k));
      } else {
        double acc = 0;
        for (uint32_t q = 0; q < plen(i); q++) acc += val(i, q, 0) + (float)k;
        assert_true(fabs(r.rows[0] - acc / plen(i)) < 1e-4);
      }
    }
    emb_source_destroy(&res);
    emb_source_destroy(&prot);
  }
}

// A single N x d matrix: ids from a file, from the FASTA order, or row<i>.
static void test_matrix_layout(void **state) {
  (void)state;
  char p[256], ids[256];
  fx_path(p, sizeof p, "mat.safetensors");
  fx_path(ids, sizeof ids, "mat.ids");
  const uint64_t N = 9;
  float *m = malloc(N * D * sizeof(float));
  for (uint32_t i = 0; i < N; i++)
    for (uint32_t c = 0; c < D; c++) m[i * D + c] = val(i, 0, c);
  st_writer_t *w = NULL;
  ps_err_t err = {0};
  assert_int_equal(st_writer_open(&w, p, &err), 0);
  uint64_t shape[2] = {N, D};
  assert_int_equal(st_writer_add_f32(w, "embeddings", ST_F16, shape, 2, m, &err), 0);
  assert_int_equal(st_writer_close(&w, &err), 0);
  FILE *f = fopen(ids, "w");
  for (uint32_t i = 0; i < N; i++) fprintf(f, "ACC%u description\n%s", i, i == 4 ? "\n" : "");
  fclose(f);
  const char *fb[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  for (int mode = 0; mode < 3; mode++) {
    emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1};
    if (mode == 1) o.ids_path = ids;
    if (mode == 2) o.fallback_ids = fb, o.n_fallback_ids = N;
    emb_source_t *s = NULL;
    if (safetensors_source_open(&s, &o, &err) < 0) fail_msg("%s", err.msg);
    assert_int_equal(emb_source_count(s), N);
    for (uint32_t i = 0; i < N; i++) {
      emb_record_t r;
      if (emb_source_next(s, &r, &err) != 1) fail_msg("%s", err.msg);
      char want[32];
      if (mode == 0) snprintf(want, sizeof want, "row%u", i);
      else if (mode == 1) snprintf(want, sizeof want, "ACC%u", i);
      else snprintf(want, sizeof want, "%s", fb[i]);
      assert_string_equal(r.id, want);
      assert_int_equal(r.n_rows, 1);
      for (uint32_t c = 0; c < D; c++) assert_true(r.rows[c] == emb_half_to_float(emb_float_to_half(val(i, 0, c))));
    }
    emb_source_destroy(&s);
  }
  // count mismatches name both inputs
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1, .fallback_ids = fb, .n_fallback_ids = 8};
  assert_int_equal(src_open_err(&o, &err), PS_EMISMATCH);
  assert_msg_has(&err, "mat.safetensors");
  assert_msg_has(&err, "8");
  f = fopen(ids, "a");
  fputs("extra\n", f);
  fclose(f);
  o.fallback_ids = NULL;
  o.ids_path = ids;
  assert_int_equal(src_open_err(&o, &err), PS_EMISMATCH);
  assert_msg_has(&err, "mat.ids");
  assert_msg_has(&err, "mat.safetensors");
  // residue level: a single 2-D tensor is one protein [L, d] named by its key
  emb_source_t *s = src_open(p, EMB_LEVEL_RESIDUE, -1);
  emb_record_t r;
  assert_int_equal(emb_source_next(s, &r, &err), 1);
  assert_string_equal(r.id, "embeddings");
  assert_int_equal(r.n_rows, N);
  emb_source_destroy(&s);
  free(m);
}

// skip(k) then reading gives exactly what reading through gives, for every k.
static void check_skip(const emb_source_opts_t *o) {
  ps_err_t err = {0};
  emb_source_t *s = NULL;
  if (safetensors_source_open(&s, o, &err) < 0) fail_msg("%s", err.msg);
  int64_t n = emb_source_count(s);
  char ids[64][64];
  float first[64];
  uint32_t rows[64];
  assert_true(n > 0 && n <= 64);
  for (int64_t i = 0; i < n; i++) {
    emb_record_t r;
    if (emb_source_next(s, &r, &err) != 1) fail_msg("%s", err.msg);
    snprintf(ids[i], 64, "%s", r.id);
    first[i] = r.rows[(size_t)r.n_rows * r.dim - 1];
    rows[i] = r.n_rows;
  }
  emb_source_destroy(&s);
  for (int64_t k = 0; k <= n; k++) {
    assert_int_equal(safetensors_source_open(&s, o, &err), 0);
    assert_int_equal(emb_source_skip(s, (uint64_t)k, &err), 0);
    for (int64_t i = k; i < n; i++) {
      emb_record_t r;
      assert_int_equal(emb_source_next(s, &r, &err), 1);
      assert_int_equal(r.index, i);
      assert_string_equal(r.id, ids[i]);
      assert_int_equal(r.n_rows, rows[i]);
      assert_true(r.rows[(size_t)r.n_rows * r.dim - 1] == first[i]);
    }
    emb_record_t r;
    assert_int_equal(emb_source_next(s, &r, &err), 0);
    assert_int_equal(emb_source_skip(s, 1, &err), PS_ETRUNC);
    emb_source_destroy(&s);
  }
}

static void test_skip_resume(void **state) {
  (void)state;
  char p[4096], ids[256];
  vec_path(p, sizeof p, "esm2-tiny/expected.safetensors");
  if (access(p, R_OK) == 0) {
    emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_RESIDUE, .layer = 1};
    check_skip(&o);
    o.level = EMB_LEVEL_PROTEIN;
    check_skip(&o);
  }
  fx_path(p, sizeof p, "mat.safetensors");  // from test_matrix_layout
  fx_path(ids, sizeof ids, "mat2.ids");
  FILE *f = fopen(ids, "w");
  for (int i = 0; i < 9; i++) fprintf(f, "id%d\r\n", i);
  fclose(f);
  emb_source_opts_t o = {.path = p, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids};
  check_skip(&o);
  fx_path(p, sizeof p, "rt.safetensors");
  o = (emb_source_opts_t){.path = p, .level = EMB_LEVEL_RESIDUE, .layer = -1};
  check_skip(&o);
}

static void test_writer_vs_numpy(void **state) {
  (void)state;
  if (!have_numpy()) skip();
  char p[256], script[256], cmd[1024];
  fx_path(p, sizeof p, "np.safetensors");
  st_writer_t *w = NULL;
  ps_err_t err = {0};
  assert_int_equal(st_writer_open(&w, p, &err), 0);
  assert_int_equal(st_writer_set_metadata(w, "format", "pt", &err), 0);
  float m[3 * D];
  for (int i = 0; i < 3 * D; i++) m[i] = val(9, (uint32_t)i, 1);
  uint64_t sh[2] = {3, D};
  assert_int_equal(st_writer_add_f32(w, "f32", ST_F32, sh, 2, m, &err), 0);
  assert_int_equal(st_writer_add_f32(w, "f16", ST_F16, sh, 2, m, &err), 0);
  assert_int_equal(st_writer_add_f32(w, "bf16", ST_BF16, sh, 2, m, &err), 0);
  assert_int_equal(st_writer_add_f32(w, "scalar", ST_F32, NULL, 0, m, &err), 0);
  assert_int_equal(st_writer_close(&w, &err), 0);
  // the values, printed exactly (%.9g round-trips a float)
  char vals[2048] = "";
  size_t l = 0;
  for (int i = 0; i < 3 * D; i++) l += (size_t)snprintf(vals + l, sizeof vals - l, "%s%.9g", i ? "," : "", m[i]);
  fx_path(script, sizeof script, "check.py");
  FILE *s = fopen(script, "w");
  fprintf(s,
          "import json, struct, sys\n"
          "import numpy as np\n"
          "b = open(sys.argv[1], 'rb').read()\n"
          "n = struct.unpack('<Q', b[:8])[0]\n"
          "assert n %% 8 == 0\n"
          "h = json.loads(b[8:8 + n])\n"
          "assert h['__metadata__'] == {'format': 'pt'}, h\n"
          "def t(k, dt):\n"
          "    v = h[k]; s, e = v['data_offsets']\n"
          "    return np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v['shape'])\n"
          "want = np.array([%s], dtype='<f4').reshape(3, %d)\n"
          "assert (t('f32', '<f4') == want).all()\n"
          "assert (t('f16', '<f2') == want.astype('<f2')).all(), 'f16 rounding'\n"
          "bf = (t('bf16', '<u2').astype('<u4') << 16).view('<f4')\n"
          "assert np.allclose(bf, want, rtol=1/256, atol=0)\n"
          "assert t('scalar', '<f4').shape == () and t('scalar', '<f4') == want.flat[0]\n"
          "assert len(b) == 8 + n + max(v['data_offsets'][1] for k, v in h.items() if k != '__metadata__')\n",
          vals, D);
  fclose(s);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, p);
  assert_int_equal(system(cmd), 0);
}


int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expected_index),   cmocka_unit_test(test_expected_source),
      cmocka_unit_test(test_expected_vs_numpy), cmocka_unit_test(test_model_weights),
      cmocka_unit_test(test_writer_roundtrip), cmocka_unit_test(test_layered_written),
      cmocka_unit_test(test_matrix_layout),    cmocka_unit_test(test_skip_resume),
      cmocka_unit_test(test_writer_vs_numpy),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
