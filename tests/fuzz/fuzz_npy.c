// fuzz_npy — arbitrary bytes as an .npy embeddings file (plus, when the flags say so, an offsets
// .npy and an ids file) through npy_parse_header and npy_source_open / next / skip, exactly as
// a reader stage opens a file from disk (the parts are written to memfds and opened by their
// /proc/self/fd path). Checked: no crash or leak; every failure fills an error message naming
// the input; every record has an id, dim > 0, n_rows * dim readable values, and the record count
// matches what count() promised.
//
// Input layout: byte 0 = flags (bit0 residue level, bit1 offsets part present, bit2 ids part
// present, bit3 allow non-finite, bits 4-7 records to skip first); then for each present part
// (offsets, then ids) a 2-byte little-endian length and its bytes; the rest is the data file.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emb.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// A memfd holding buf; its path in `path`. -1 on failure.
static int memfile(const uint8_t *buf, size_t n, const char *name, char *path, size_t cap) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, buf + done, n - done);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    done += (size_t)w;
  }
  snprintf(path, cap, "/proc/self/fd/%d", fd);
  return fd;
}

static size_t take_part(const uint8_t **p, size_t *left) {
  if (*left < 2) {
    *left = 0;
    return 0;
  }
  size_t n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
  *p += 2;
  *left -= 2;
  return n > *left ? *left : n;
}

static void check_err(const ps_err_t *err, int rc, const char *name) {
  if (rc >= 0 || err->code != rc || !err->msg[0]) abort();
  if (name && !strstr(err->msg, name) && !strstr(err->msg, "ids:")) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned flags = data[0];
  const uint8_t *p = data + 1;
  size_t left = size - 1;
  const uint8_t *offs = NULL, *ids = NULL;
  size_t n_offs = 0, n_ids = 0;
  if (flags & 2) {
    n_offs = take_part(&p, &left);
    offs = p;
    p += n_offs;
    left -= n_offs;
  }
  if (flags & 4) {
    n_ids = take_part(&p, &left);
    ids = p;
    p += n_ids;
    left -= n_ids;
  }
  ps_err_t err = {0, {0}};
  npy_header_t h;
  int rc = npy_parse_header(p, left, "fuzz.npy", &h, &err);
  if (rc < 0) check_err(&err, rc, "fuzz.npy");
  else if (h.ndim < 1 || h.ndim > 2 || h.data_offset > left || h.esize == 0) abort();

  char dpath[64], opath[64], ipath[64];
  int fd_d = memfile(p, left, "data.npy", dpath, sizeof dpath);
  int fd_o = offs ? memfile(offs, n_offs, "offsets.npy", opath, sizeof opath) : -1;
  int fd_i = ids ? memfile(ids, n_ids, "ids.txt", ipath, sizeof ipath) : -1;
  if (fd_d < 0 || (offs && fd_o < 0) || (ids && fd_i < 0)) goto out;
  emb_source_opts_t o = {.path = dpath,
                         .format = "npy",
                         .level = (flags & 1) ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN,
                         .layer = -1,
                         .offsets_path = offs ? opath : NULL,
                         .ids_path = ids ? ipath : NULL,
                         .allow_nonfinite = (flags & 8) != 0};
  emb_source_t *s = NULL;
  rc = npy_source_open(&s, &o, &err);
  if (rc < 0) {
    if (s) abort();
    check_err(&err, rc, NULL);
    goto out;
  }
  int64_t count = emb_source_count(s);
  if (count < 0) abort();
  uint64_t skip = flags >> 4, seen = 0;
  if (skip) {
    rc = emb_source_skip(s, skip, &err);
    if ((int64_t)skip > count) {  // must refuse, naming the file
      if (rc != PS_ETRUNC) abort();
      check_err(&err, rc, dpath);
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
  if (rc < 0) check_err(&err, rc, NULL);
  else if ((int64_t)seen != count) abort();
  emb_source_destroy(&s);
out:
  if (fd_d >= 0) close(fd_d);
  if (fd_o >= 0) close(fd_o);
  if (fd_i >= 0) close(fd_i);
  return 0;
}
