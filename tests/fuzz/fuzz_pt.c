// fuzz_pt — arbitrary bytes as an ESM extract.py .pt file (zip + pickle + storages).
//
// The input is written to a temp file (one per process, in a mkdtemp directory) and read twice:
//  1. through ptfile.h: pt_file_open, then every layer of both dicts: info, a validation read
//     with cap = 0, and, when the file holds the data, a full read;
//  2. as a single-file embedding source (residue level, then protein level; layer -1), after
//     renaming the file to "<first word of its label>.pt" so the label check passes.
//  3. as a peer's weights (ptfile.h pt_state_*: every tensor's info and validation read, small
//     ones read whole; then sae_load on the file: an ae.pt / Lightning .ckpt SAE, or an error).
// Checked: no crash, leak or sanitizer report; every failure returns a negative code equal to
// err.code with a message that starts with the file's path; records have an id and
// n_rows * dim floats; a single-file source yields exactly one record or an error.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emb.h"
#include "ptfile.h"
#include "sae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];

static void cleanup(void) {
  if (g_dir[0]) rmdir(g_dir);
}

static void check_err(int rc, const ps_err_t *err, const char *path) {
  if (rc >= 0) return;
  if (err->code != rc || strncmp(err->msg, path, strlen(path))) {
    fprintf(stderr, "bad error report: rc=%d code=%d msg='%s' (path %s)\n", rc, err->code, err->msg, path);
    abort();
  }
}

static void read_file(const char *path, char *id, size_t id_cap) {
  pt_file_t *f = NULL;
  ps_err_t err = {0, {0}};
  int rc = pt_file_open(&f, path, &err);
  check_err(rc, &err, path);
  id[0] = 0;
  if (rc < 0) return;
  pt_label_id(pt_file_label(f), id, id_cap);
  if (strchr(pt_file_label(f), '/')) id[0] = 0;
  for (int w = 0; w < 2; w++) {
    const int *ls;
    size_t n = pt_file_layers(f, (pt_repr_t)w, &ls);
    for (size_t j = 0; j < n; j++) {
      pt_tensor_info_t info;
      rc = pt_file_tensor_info(f, (pt_repr_t)w, ls[j], &info, &err);
      check_err(rc, &err, path);
      if (rc < 0) abort();  // a listed layer is always found
      rc = pt_file_read_tensor(f, (pt_repr_t)w, ls[j], NULL, 0, &err);
      check_err(rc, &err, path);
      if (rc == PS_EDIM) {  // valid: the entry holds numel elements, so numel is bounded by the input
        float *x = malloc(info.numel * sizeof(float));
        rc = pt_file_read_tensor(f, (pt_repr_t)w, ls[j], x, info.numel, &err);
        check_err(rc, &err, path);
        volatile float acc = 0;
        if (rc == 0)
          for (uint64_t k = 0; k < info.numel; k++) acc += x[k];
        (void)acc;
        free(x);
      }
    }
  }
  pt_file_destroy(&f);
  if (f) abort();
}

static void read_source(const char *path, emb_level_t level) {
  emb_source_opts_t o = {.path = path, .format = "pt", .level = level, .layer = -1};
  emb_source_t *s = NULL;
  ps_err_t err = {0, {0}};
  int rc = emb_source_open(&s, &o, &err);
  check_err(rc, &err, path);
  if (rc < 0) {
    if (s) abort();
    return;
  }
  if (emb_source_count(s) != 1) abort();
  emb_record_t rec;
  int got = 0;
  while ((rc = emb_source_next(s, &rec, &err)) > 0) {
    if (!rec.id || !*rec.id || rec.dim == 0 || (rec.n_rows && !rec.rows)) abort();
    if (level == EMB_LEVEL_PROTEIN && rec.n_rows != 1) abort();
    volatile float acc = 0;
    for (size_t k = 0; k < (size_t)rec.n_rows * rec.dim; k++) acc += rec.rows[k];
    (void)acc;
    got++;
  }
  check_err(rc, &err, path);
  if (got > 1 || (rc == 0 && got != 1)) abort();
  emb_source_destroy(&s);
}

static void read_state(const char *path) {
  pt_state_t *st = NULL;
  ps_err_t err = {0, {0}};
  int rc = pt_state_open(&st, path, &err);
  check_err(rc, &err, path);
  if (rc >= 0) {
    for (size_t i = 0; i < pt_state_count(st); i++) {
      pt_tensor_info_t info;
      pt_state_info(st, i, &info);
      if (pt_state_find(st, pt_state_name(st, i)) != (int64_t)i) abort();
      rc = pt_state_read(st, i, NULL, 0, &err);
      check_err(rc, &err, path);
      if (rc == PS_EDIM && info.numel <= 4096) {  // valid and small: read it
        float x[4096];
        rc = pt_state_read(st, i, x, info.numel, &err);
        check_err(rc, &err, path);
      }
    }
    int64_t k;
    char buf[32];
    (void)pt_state_hparam_int(st, "k", &k);
    (void)pt_state_hparam_str(st, "architecture", buf, sizeof buf);
    pt_state_destroy(&st);
  }
  if (st) abort();
  sae_t *s = NULL;
  rc = sae_load(&s, path, &err);
  check_err(rc, &err, path);
  if ((rc < 0) != (s == NULL)) abort();
  sae_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz_pt.XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    atexit(cleanup);
  }
  char path[128], named[512], id[256];
  snprintf(path, sizeof path, "%s/input.pt", g_dir);
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  if (size && fwrite(data, 1, size, fp) != size) abort();
  fclose(fp);
  read_state(path);
  read_file(path, id, sizeof id);
  if (id[0] && strcmp(id, ".") && strcmp(id, "..")) {
    snprintf(named, sizeof named, "%s/%s.pt", g_dir, id);
    if (rename(path, named) == 0) {
      read_source(named, EMB_LEVEL_RESIDUE);
      read_source(named, EMB_LEVEL_PROTEIN);
      unlink(named);
    }
  }
  unlink(path);
  return 0;
}
