// fuzz_safetensors — arbitrary bytes as a .safetensors file, through the generic reader (st_open,
// every tensor's info, lookups by name, metadata, st_read_f32 / st_read_raw of small tensors)
// and through safetensors_source_open / skip / next at the level and layer the flags pick,
// exactly as from disk (the bytes are written to a memfd opened by its /proc/self/fd path).
// Checked: no crash or leak; failures fill an error message naming the file; tensors are in
// offset order, inside the file and non-overlapping; every record has an id, dim > 0 and
// n_rows * dim readable values; the record count matches count().
//
// Input layout: byte 0 = flags (bit0 residue level, bit1 allow non-finite, bits 2-3 layer: 0 ->
// -1 (highest), k -> k - 1, bits 4-7 records to skip first); the rest is the file.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emb.h"
#include "fuzz_memfd.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const ps_err_t *err, int rc, const char *name) {
  if (rc >= 0 || err->code != rc || !err->msg[0]) abort();
  if (name && !strstr(err->msg, name)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned flags = data[0];
  data++;
  size--;
  char path[64];
  int fd = fuzz_memfd(data, size, "fuzz.safetensors", path, sizeof path);
  if (fd < 0) return 0;
  ps_err_t err = {0, {0}};
  st_file_t *f = NULL;
  int rc = st_open(&f, path, &err);
  if (rc < 0) {
    if (f) abort();
    check_err(&err, rc, path);
  } else {
    uint64_t end = 0;
    float buf[256];
    for (size_t i = 0; i < st_n_tensors(f); i++) {
      const st_tensor_info_t *t = st_tensor_info(f, i);
      if (!t || !t->name || t->offset + t->nbytes > size || t->offset < 8) abort();
      if (t->nbytes && t->offset < end) abort();
      if (t->nbytes) end = t->offset + t->nbytes;
      if (t->nbytes != t->n_elems * st_dtype_size(t->dtype)) abort();
      if (st_tensor_find(f, t->name) != t) abort();
      if (t->n_elems <= 256) {
        if (st_read_f32(f, t->name, buf, t->n_elems, &err) < 0) abort();
        if (st_read_f32(f, t->name, buf, t->n_elems + 1, &err) != PS_EDIM) abort();
      }
      if (t->nbytes && st_read_raw(f, t, t->nbytes - 1, 1, buf, &err) < 0) abort();
      if (st_read_raw(f, t, t->nbytes, 1, buf, &err) != PS_EDIM) abort();
    }
    for (size_t i = 0; i < st_n_metadata(f); i++) {
      const char *k, *v;
      if (st_metadata_at(f, i, &k, &v) < 0 || !k || !v) abort();
      if (!st_metadata(f, k)) abort();
    }
    st_close(&f);
  }

  unsigned lay = (flags >> 2) & 3;
  emb_source_opts_t o = {.path = path,
                         .format = "safetensors",
                         .level = (flags & 1) ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN,
                         .layer = lay ? (int)lay - 1 : -1,
                         .allow_nonfinite = (flags & 2) != 0};
  emb_source_t *s = NULL;
  rc = safetensors_source_open(&s, &o, &err);
  if (rc < 0) {
    if (s) abort();
    check_err(&err, rc, path);
    goto out;
  }
  int64_t count = emb_source_count(s);
  if (count < 0) abort();
  uint64_t skip = flags >> 4, seen = 0;
  if (skip) {
    rc = emb_source_skip(s, skip, &err);
    if ((int64_t)skip > count) {
      if (rc != PS_ETRUNC) abort();
      check_err(&err, rc, path);
      emb_source_destroy(&s);
      goto out;
    }
    if (rc < 0) abort();
    seen = skip;
  }
  emb_record_t r;
  while ((rc = emb_source_next(s, &r, &err)) == 1) {
    if (!r.id || !r.id[0] || r.dim == 0 || r.index != seen) abort();
    if (o.level == EMB_LEVEL_PROTEIN && r.n_rows != 1) abort();
    volatile float acc = 0;
    for (size_t i = 0; i < (size_t)r.n_rows * r.dim; i++) acc += r.rows[i];
    (void)acc;
    seen++;
  }
  if (rc < 0) check_err(&err, rc, path);
  else if ((int64_t)seen != count) abort();
  emb_source_destroy(&s);
out:
  close(fd);
  return 0;
}
