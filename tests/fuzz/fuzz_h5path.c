// fuzz_h5path — our handling of HDF5 names, attributes and shapes, not libhdf5's file parser.
//
// libhdf5 is not hardened against damaged files (a flipped byte in an object header can crash
// it), so feeding it fuzzed bytes would only find libhdf5 bugs. Instead the input *describes* a
// file: this harness builds a valid HDF5 image in memory (core driver, no disk) whose dataset
// and group names, soft links, original_id attributes (variable and fixed-length strings,
// arbitrary bytes, empty, integer-typed), dtypes and shapes (rank 0-3, zero lengths, differing
// dims) come from the input, then reads it back through h5_source_open_image exactly as
// h5_source_open reads a file. Checked: no crash or leak; open and next either succeed or fill
// an error message naming the image; every record has an id, n_rows * dim values, and the
// count matches what open promised.
//
// Input layout: byte 0 = flags (bit0 residue level, bit1 track creation order, bit2 allow
// non-finite, bit3 create intermediate groups for names with '/', bit4 write some NaNs); then up
// to 24 objects, each:
//   kind, name_len, name bytes, then by type: shape byte per axis + attribute kind
//   [+ attr_len, attr bytes | int byte] (float dataset); target_len, target (soft link); one shape
//   byte (int dataset); nothing (group).
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emb.h"
#include "h5emb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const uint8_t *p;
  size_t n, i;
} rd_t;

static unsigned byte(rd_t *r) { return r->i < r->n ? r->p[r->i++] : 0; }

// Up to max bytes as a NUL-terminated string (stops at an embedded NUL, as C names do).
static void str(rd_t *r, char *buf, size_t max) {
  size_t len = byte(r);
  if (len > max) len = max;
  size_t k = 0;
  for (size_t j = 0; j < len && r->i < r->n; j++) buf[k++] = (char)r->p[r->i++];
  buf[k] = 0;
}

typedef struct {
  unsigned kind;   // 0 none, 1 variable-length string, 2 fixed-length string, 3 integer, 4 two strings
  char val[300];
  int ival;
} attr_t;

// Every field is read from the input before anything is created, so a refused name does not
// shift the meaning of the bytes that follow.
static void read_attr(rd_t *r, attr_t *a) {
  a->kind = byte(r) % 5;
  a->val[0] = 0;
  a->ival = 0;
  if (a->kind == 1 || a->kind == 2) str(r, a->val, 255);
  if (a->kind == 3) a->ival = (int)byte(r);
}

static void add_attr(hid_t obj, const attr_t *at) {
  if (at->kind == 0) return;
  hid_t t = -1, sp = H5Screate(H5S_SCALAR), a = -1;
  if (at->kind == 1 || at->kind == 2) {
    size_t n = strlen(at->val);
    t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, at->kind == 1 ? H5T_VARIABLE : (n ? n : 1));
    if (at->kind == 1) H5Tset_cset(t, H5T_CSET_UTF8);
    if ((a = H5Acreate2(obj, "original_id", t, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0) {
      const char *p = at->val;
      H5Awrite(a, t, at->kind == 1 ? (const void *)&p : (const void *)at->val);
    }
  } else if (at->kind == 3) {  // wrong type
    if ((a = H5Acreate2(obj, "original_id", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
      H5Awrite(a, H5T_NATIVE_INT, &at->ival);
  } else {  // a string array of 2: not "one string"
    hsize_t two = 2;
    H5Sclose(sp);
    sp = H5Screate_simple(1, &two, NULL);
    t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 4);
    if ((a = H5Acreate2(obj, "original_id", t, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0) H5Awrite(a, t, "abcdefgh");
  }
  if (a >= 0) H5Aclose(a);
  if (t >= 0) H5Tclose(t);
  H5Sclose(sp);
}

// kind byte: bits 0-2 object type (0-3, 7 float dataset, 4 group, 5 soft link, 6 int16 dataset),
// bits 3-4 rank (0-3), bits 5-6 file dtype (f32le, f64be, native double).
static void add_object(rd_t *r, hid_t f, hid_t lcpl, unsigned serial, int nan) {
  unsigned kind = byte(r), type = kind & 7;
  char name[300], target[300];
  str(r, name, 255);
  attr_t at;
  switch (type) {
  case 4: {  // group
    hid_t g = H5Gcreate2(f, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g >= 0) H5Gclose(g);
    break;
  }
  case 5:  // soft link to another name from the input
    str(r, target, 255);
    H5Lcreate_soft(target, f, name, lcpl, H5P_DEFAULT);
    break;
  case 6: {  // integer dataset
    hsize_t d = 1 + byte(r) % 5;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_STD_I16LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    break;
  }
  default: {  // float dataset, rank 0-3; the last axis 1-9, the others 0-6
    int rank = (int)((kind >> 3) & 3);
    hsize_t dims[3];
    for (int k = 0; k < rank; k++) dims[k] = k == rank - 1 ? 1 + byte(r) % 9 : byte(r) % 7;
    read_attr(r, &at);
    unsigned tk = ((kind >> 5) & 3) % 3;
    hid_t ft = tk == 0 ? H5T_IEEE_F32LE : tk == 1 ? H5T_IEEE_F64BE : H5T_NATIVE_DOUBLE;
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(f, name, ft, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0) {
      hssize_t np = H5Sget_simple_extent_npoints(sp);
      if (np > 0) {
        float *x = malloc((size_t)np * sizeof(float));
        for (hssize_t k = 0; k < np; k++) x[k] = (float)(serial * 1000 + (unsigned)k) * 0.5f;
        if (nan && np > 1) x[np - 1] = NAN;
        H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        free(x);
      }
      add_attr(ds, &at);
      H5Dclose(ds);
    }
    H5Sclose(sp);
    break;
  }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  h5emb_quiet();
  rd_t r = {data, size, 0};
  unsigned flags = byte(&r);
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS), lcpl = H5Pcreate(H5P_LINK_CREATE);
  if (flags & 2) H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  if (flags & 8) H5Pset_create_intermediate_group(lcpl, 1);
  H5Pset_fapl_core(fapl, 4096, 0);
  hid_t f = H5Fcreate("fuzz-h5path-build", H5F_ACC_TRUNC, fcpl, fapl);
  if (f < 0) abort();
  for (unsigned k = 0; k < 24 && r.i < r.n; k++) add_object(&r, f, lcpl, k, (flags & 16) && k % 5 == 4);
  H5Fflush(f, H5F_SCOPE_GLOBAL);
  ssize_t len = H5Fget_file_image(f, NULL, 0);
  if (len <= 0) abort();
  void *img = malloc((size_t)len);
  if (H5Fget_file_image(f, img, (size_t)len) != len) abort();
  H5Fclose(f);
  H5Pclose(fcpl);
  H5Pclose(fapl);
  H5Pclose(lcpl);

  emb_source_opts_t o = {.path = "fuzz-image", .level = (flags & 1) ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN,
                         .layer = -1, .allow_nonfinite = (flags & 4) != 0};
  emb_source_t *s = NULL;
  ps_err_t err = {0, {0}};
  int rc = h5_source_open_image(&s, &o, img, (size_t)len, &err);
  free(img);
#ifdef FUZZ_H5PATH_VERBOSE  // -DFUZZ_H5PATH_VERBOSE: print what each input did
  fprintf(stderr, "open rc=%d %s\n", rc, rc < 0 ? err.msg : "");
#endif
  if (rc < 0) {
    if (s || err.code != rc || strncmp(err.msg, "fuzz-image: ", 12)) abort();
    return 0;
  }
  int64_t count = emb_source_count(s);
  emb_record_t rec;
  int64_t got = 0;
  while ((rc = emb_source_next(s, &rec, &err)) > 0) {
    if (!rec.id || !rec.rows || rec.dim == 0) abort();
    if (o.level == EMB_LEVEL_PROTEIN && rec.n_rows != 1) abort();
    volatile float acc = 0;
    for (size_t k = 0; k < (size_t)rec.n_rows * rec.dim; k++) acc += rec.rows[k];
    (void)acc;
#ifdef FUZZ_H5PATH_VERBOSE
    fprintf(stderr, "  record %lld id '%s' %u x %u\n", (long long)got, rec.id, rec.n_rows, rec.dim);
#endif
    got++;
  }
#ifdef FUZZ_H5PATH_VERBOSE
  fprintf(stderr, "  next rc=%d %s (count %lld, skipped %llu)\n", rc, rc < 0 ? err.msg : "", (long long)count,
          (unsigned long long)h5_source_n_skipped(s));
#endif
  if (rc < 0 && (err.code != rc || strncmp(err.msg, "fuzz-image: ", 12))) abort();
  if (rc == 0 && got != count) abort();
  emb_source_destroy(&s);
  return 0;
}
