// h5emb.c — HDF5 embedding source and writer. See h5emb.h.
#include "h5emb.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define H5EMB_MAX_ID ((size_t)1 << 16)  // longest original_id attribute accepted (bytes)

// ---- libhdf5 errors ----------------------------------------------------------------------------
void h5emb_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct h5_walk {
  char deep[384], top[256];
  unsigned n;
} h5_walk_t;

// H5E_WALK_UPWARD visits the most specific error first (n = 0) and the API call last. No libhdf5
// API call is made in here (it could reset the stack being walked).
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *ud) {
  h5_walk_t *w = ud;
  const char *d = e->desc && *e->desc ? e->desc : e->func_name ? e->func_name : "?";
  if (n == 0) snprintf(w->deep, sizeof w->deep, "%s", d);
  snprintf(w->top, sizeof w->top, "%s", d);
  w->n = n + 1;
  return 0;
}

const char *h5emb_last_error(char *buf, size_t cap) {
  h5_walk_t w;
  memset(&w, 0, sizeof w);
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
  if (!w.n) snprintf(buf, cap, "%s", "");
  else if (w.n == 1 || !strcmp(w.top, w.deep)) snprintf(buf, cap, "%s", w.deep);
  else snprintf(buf, cap, "%s: %s", w.top, w.deep);
  return buf;
}

// A name fit for a message: control and non-ASCII bytes escaped, long names shortened.
static const char *show(const char *s, char *buf, size_t cap) {
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < cap; p++) {
    if (*p >= 32 && *p < 127 && *p != '\\') buf[o++] = (char)*p;
    else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", *p);
    if (o + 8 >= cap && p[1]) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
  }
  buf[o] = 0;
  return buf;
}

// ---- source ------------------------------------------------------------------------------------
typedef struct h5_entry {
  char *name;       // link name at the root (malloc'ed)
  uint32_t n_rows;  // 1 for a 1-D dataset
} h5_entry_t;

typedef struct h5_source {
  emb_source_t base;
  char *path;          // for messages
  hid_t file, root;
  h5_entry_t *ents;    // records, in reading order
  size_t n_ents, cap_ents;
  uint64_t n_skipped;
  uint32_t dim;
  size_t pos;          // next entry
  float *rows;
  size_t rows_cap;     // floats
  char *id;            // original_id of the current record
  size_t id_cap;
} h5_source_t;

static void h5_destroy(emb_source_t *s) {
  h5_source_t *h = (h5_source_t *)s;
  if (h->root >= 0) H5Gclose(h->root);
  if (h->file >= 0) H5Fclose(h->file);
  for (size_t i = 0; i < h->n_ents; i++) free(h->ents[i].name);
  free(h->ents);
  free(h->rows);
  free(h->id);
  free(h->path);
  free(h);
}

static int64_t h5_count(emb_source_t *s) { return (int64_t)((h5_source_t *)s)->n_ents; }

static int h5_skip(emb_source_t *s, uint64_t n, ps_err_t *err) {
  h5_source_t *h = (h5_source_t *)s;
  if (n > h->n_ents - h->pos)
    return ps_err_set(err, PS_ETRUNC, "%s: cannot skip to record %llu: the file has %zu", h->path,
                      (unsigned long long)(h->pos + n), h->n_ents);
  h->pos += n;
  return 0;
}

// Reads the string attribute original_id of ds into h->id: 1 found (non-empty), 0 absent or
// empty, <0 error.
// Room for an id of n bytes and its NUL in h->id.
static void id_room(h5_source_t *h, size_t n) {
  if (n + 1 > h->id_cap) {
    h->id_cap = n + 1;
    h->id = ps_xrealloc(h->id, h->id_cap);
  }
}

static int read_original_id(h5_source_t *h, hid_t ds, const char *dname, ps_err_t *err) {
  char eb[512], nb[256];
  hid_t a = -1, t = -1, mt = -1, sp = -1;
  int rc = 0;
  htri_t ex = H5Aexists(ds, "original_id");
  if (ex < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): cannot list attributes: %s", h->path,
                    show(dname, nb, sizeof nb), h->pos, h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  if (ex == 0) goto out;
  if ((a = H5Aopen(ds, "original_id", H5P_DEFAULT)) < 0 || (t = H5Aget_type(a)) < 0 || (sp = H5Aget_space(a)) < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): cannot open attribute original_id: %s", h->path,
                    show(dname, nb, sizeof nb), h->pos, h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  if (H5Tget_class(t) != H5T_STRING || np != 1) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): attribute original_id is not one string", h->path,
                    show(dname, nb, sizeof nb), h->pos);
    goto out;
  }
  H5T_cset_t cset = H5Tget_cset(t);
  size_t len = 0;
  mt = H5Tcopy(H5T_C_S1);
  if (H5Tis_variable_str(t) > 0) {
    char *s = NULL;
    if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, cset) < 0 || H5Aread(a, mt, &s) < 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): cannot read attribute original_id: %s", h->path,
                      show(dname, nb, sizeof nb), h->pos, h5emb_last_error(eb, sizeof eb));
      goto out;
    }
    len = s ? strlen(s) : 0;
    if (len > H5EMB_MAX_ID) {
      H5free_memory(s);
      rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): attribute original_id is %zu bytes long", h->path,
                      show(dname, nb, sizeof nb), h->pos, len);
      goto out;
    }
    id_room(h, len);
    if (len) memcpy(h->id, s, len);
    h->id[len] = 0;
    if (s) H5free_memory(s);
  } else {
    size_t sz = H5Tget_size(t);
    if (sz == 0 || sz > H5EMB_MAX_ID) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): attribute original_id has size %zu", h->path,
                      show(dname, nb, sizeof nb), h->pos, sz);
      goto out;
    }
    id_room(h, sz);
    memset(h->id, 0, sz + 1);
    if (H5Tset_size(mt, sz) < 0 || H5Tset_strpad(mt, H5T_STR_NULLPAD) < 0 || H5Tset_cset(mt, cset) < 0 ||
        H5Aread(a, mt, h->id) < 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): cannot read attribute original_id: %s", h->path,
                      show(dname, nb, sizeof nb), h->pos, h5emb_last_error(eb, sizeof eb));
      goto out;
    }
    h->id[sz] = 0;
    len = strlen(h->id);
    while (len && h->id[len - 1] == ' ') h->id[--len] = 0;  // Fortran space padding
  }
  rc = len > 0;
out:
  if (mt >= 0) H5Tclose(mt);
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return rc;
}

static int h5_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err) {
  h5_source_t *h = (h5_source_t *)s;
  if (h->pos >= h->n_ents) return 0;
  h5_entry_t *e = &h->ents[h->pos];
  char eb[512], nb[256];
  int rc = 0;
  hid_t ds = -1, sp = -1;
  if ((ds = H5Dopen2(h->root, e->name, H5P_DEFAULT)) < 0 || (sp = H5Dget_space(ds)) < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): cannot open: %s", h->path,
                    show(e->name, nb, sizeof nb), h->pos, h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  size_t nv = (size_t)e->n_rows * h->dim;
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  if (np < 0 || (uint64_t)np != nv) {  // the file is opened read-only: the shape seen at open holds
    rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (record %zu): shape changed since the file was opened", h->path,
                    show(e->name, nb, sizeof nb), h->pos);
    goto out;
  }
  if (nv > h->rows_cap || !h->rows) {
    h->rows_cap = nv ? nv : 1;
    h->rows = ps_xrealloc(h->rows, h->rows_cap * sizeof(float));
  }
  if (nv && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, h->rows) < 0) {
    const char *m = h5emb_last_error(eb, sizeof eb);
    rc = ps_err_set(err, strstr(m, "truncated") || strstr(m, "overflow") || strstr(m, "past end") ? PS_ETRUNC : PS_EFORMAT,
                    "%s: dataset '%s' (record %zu): cannot read %zu values: %s", h->path, show(e->name, nb, sizeof nb),
                    h->pos, nv, m);
    goto out;
  }
  if ((rc = read_original_id(h, ds, e->name, err)) < 0) goto out;
  rec->id = rc ? h->id : e->name;
  rec->n_rows = e->n_rows;
  rec->dim = h->dim;
  rec->rows = h->rows;
  h->pos++;
  rc = 1;
out:
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  return rc;
}

static const emb_source_vt h5_vt = {"h5", h5_next, h5_skip, h5_destroy, h5_count};

uint64_t h5_source_n_skipped(const emb_source_t *s) {
  return s && s->vt == &h5_vt ? ((const h5_source_t *)s)->n_skipped : 0;
}

// H5Literate callback: keep the names of hard links; count the rest as skipped. Link names
// never contain '/' nor are "." (libhdf5 refuses to create them); should a damaged file hold one,
// it is skipped rather than interpreted as a path.
static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
  (void)g;
  h5_source_t *h = ud;
  if (info->type != H5L_TYPE_HARD || !name[0] || !strcmp(name, ".") || strchr(name, '/')) {
    h->n_skipped++;
    return 0;
  }
  if (h->n_ents == h->cap_ents) {
    h->cap_ents = h->cap_ents ? h->cap_ents * 2 : 64;
    h->ents = ps_xrealloc(h->ents, h->cap_ents * sizeof *h->ents);
  }
  h->ents[h->n_ents].name = ps_xstrdup(name);
  h->ents[h->n_ents].n_rows = 0;
  h->n_ents++;
  return 0;
}

static void clear_list(h5_source_t *h) {
  for (size_t i = 0; i < h->n_ents; i++) free(h->ents[i].name);
  h->n_ents = 0;
  h->n_skipped = 0;
}

// Classify entry i (its object header only): 1 = a record (n_rows set, dim checked), 0 = skip,
// <0 = error. `first` is the index of the first record so far (for messages).
static int classify(h5_source_t *h, size_t i, size_t rec, const char *first, emb_level_t level, ps_err_t *err) {
  h5_entry_t *e = &h->ents[i];
  char eb[512], nb[256], fb[256];
  int rc = 0;
  hid_t obj = -1, t = -1, sp = -1;
  if ((obj = H5Oopen(h->root, e->name, H5P_DEFAULT)) < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: object '%s' (link %zu): cannot open: %s", h->path, show(e->name, nb, sizeof nb),
                    i, h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  if (H5Iget_type(obj) != H5I_DATASET) goto out;
  if ((t = H5Dget_type(obj)) < 0 || (sp = H5Dget_space(obj)) < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (link %zu): cannot read its type or shape: %s", h->path,
                    show(e->name, nb, sizeof nb), i, h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  if (H5Tget_class(t) != H5T_FLOAT) goto out;
  H5S_class_t sc = H5Sget_simple_extent_type(sp);
  if (sc != H5S_SIMPLE) goto out;  // scalar or null dataspace: not an embedding
  int rank = H5Sget_simple_extent_ndims(sp);
  hsize_t dims[H5S_MAX_RANK];
  if (rank < 1 || rank > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: dataset '%s' (link %zu): cannot read its shape: %s", h->path,
                    show(e->name, nb, sizeof nb), i, h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  if (rank > 2) {
    rc = ps_err_set(err, PS_EDIM, "%s: dataset '%s' (record %zu) has %d dimensions; expected [d] or [L, d]", h->path,
                    show(e->name, nb, sizeof nb), rec, rank);
    goto out;
  }
  if (rank == 1 && level == EMB_LEVEL_RESIDUE) {
    rc = ps_err_set(err, PS_EDIM,
                    "%s: dataset '%s' (record %zu) is 1-D [%llu] (one vector per protein); residue level needs [L, d]",
                    h->path, show(e->name, nb, sizeof nb), rec, (unsigned long long)dims[0]);
    goto out;
  }
  uint64_t d = dims[rank - 1], nr = rank == 2 ? dims[0] : 1;
  if (d == 0 || d > UINT32_MAX) {
    rc = ps_err_set(err, PS_EDIM, "%s: dataset '%s' (record %zu): embedding dimension %llu", h->path,
                    show(e->name, nb, sizeof nb), rec, (unsigned long long)d);
    goto out;
  }
  if (nr > UINT32_MAX || (nr && d > H5EMB_MAX_RECORD_FLOATS / nr)) {
    rc = ps_err_set(err, PS_EDIM, "%s: dataset '%s' (record %zu): shape [%llu, %llu] is larger than the %llu values a record may hold",
                    h->path, show(e->name, nb, sizeof nb), rec, (unsigned long long)nr, (unsigned long long)d,
                    (unsigned long long)H5EMB_MAX_RECORD_FLOATS);
    goto out;
  }
  if (h->dim == 0) {
    h->dim = (uint32_t)d;
  } else if (d != h->dim) {
    rc = ps_err_set(err, PS_EDIM, "%s: dataset '%s' (record %zu) has dimension %llu but dataset '%s' (record 0) has %u",
                    h->path, show(e->name, nb, sizeof nb), rec, (unsigned long long)d, show(first, fb, sizeof fb), h->dim);
    goto out;
  }
  e->n_rows = (uint32_t)nr;
  rc = 1;
out:
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (obj >= 0) H5Oclose(obj);
  return rc;
}

// List and classify the root group of h->file.
static int list_root(h5_source_t *h, emb_level_t level, ps_err_t *err) {
  char eb[512];
  if ((h->root = H5Gopen2(h->file, "/", H5P_DEFAULT)) < 0)
    return ps_err_set(err, PS_EFORMAT, "%s: cannot open the root group: %s", h->path, h5emb_last_error(eb, sizeof eb));
  unsigned crt = 0;
  hid_t gcpl = H5Gget_create_plist(h->root);
  if (gcpl >= 0) {
    if (H5Pget_link_creation_order(gcpl, &crt) < 0) crt = 0;
    H5Pclose(gcpl);
  }
  herr_t st = -1;
  if (crt & H5P_CRT_ORDER_TRACKED) {
    hsize_t idx = 0;
    st = H5Literate(h->root, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, list_cb, h);
    if (st < 0) clear_list(h);  // tracked but not indexed: fall back to name order
  }
  if (st < 0) {
    hsize_t idx = 0;
    if (H5Literate(h->root, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, h) < 0)
      return ps_err_set(err, PS_EFORMAT, "%s: cannot list the root group (after %zu links): %s", h->path, h->n_ents,
                        h5emb_last_error(eb, sizeof eb));
  }
  size_t keep = 0;
  for (size_t i = 0; i < h->n_ents; i++) {
    int rc = classify(h, i, keep, keep ? h->ents[0].name : "", level, err);
    if (rc < 0) return rc;
    if (rc == 0) {
      free(h->ents[i].name);
      h->ents[i].name = NULL;
      h->n_skipped++;
      continue;
    }
    if (keep != i) {  // compact; the moved name is owned once (destroy frees every slot)
      h->ents[keep] = h->ents[i];
      h->ents[i].name = NULL;
    }
    keep++;
  }
  h->n_ents = keep;
  return 0;
}

static hid_t make_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return fapl;
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);  // closing the file closes whatever is still open
#if H5_VERSION_GE(1, 10, 7)
  H5Pset_file_locking(fapl, 1, 1);  // lock, but do not fail on file systems without locks
#endif
  return fapl;
}

// The HDF5 signature sits at byte 0, 512, 1024, 2048, ... (after a user block).
static int has_signature(const char *path, uint64_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;  // let libhdf5's message stand
  int found = 0;
  for (uint64_t off = 0; off + 8 <= size && !found; off = off ? off * 2 : 512) {
    unsigned char b[8];
    if (pread(fd, b, 8, (off_t)off) != 8) break;
    found = !memcmp(b, "\x89HDF\r\n\x1a\n", 8);
  }
  close(fd);
  return found;
}

static h5_source_t *source_new(const emb_source_opts_t *o) {
  h5_source_t *h = ps_xcalloc(1, sizeof *h);
  h->base.vt = &h5_vt;
  h->base.opts = *o;
  h->file = h->root = -1;
  h->path = ps_xstrdup(o->path);
  return h;
}

// The end of both opens: the file access list closed, then the source handed out (rc 0) or
// destroyed (rc < 0). Returns rc.
static int open_finish(emb_source_t **out, h5_source_t *h, hid_t fapl, int rc) {
  if (fapl >= 0) H5Pclose(fapl);
  if (rc < 0) {
    h5_destroy(&h->base);
    return rc;
  }
  *out = &h->base;
  return 0;
}

int h5_source_open(emb_source_t **out, const emb_source_opts_t *o, ps_err_t *err) {
  *out = NULL;
  h5emb_quiet();
  char eb[512];
  int rc;
  struct stat st;
  if (stat(o->path, &st) != 0) return ps_err_set(err, -errno, "%s: cannot open: %s", o->path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return ps_err_set(err, -EISDIR, "%s: is a directory, not an HDF5 file", o->path);
  h5_source_t *h = source_new(o);
  hid_t fapl = make_fapl();
  h->file = H5Fopen(o->path, H5F_ACC_RDONLY, fapl);
  if (h->file < 0) {
    const char *m = h5emb_last_error(eb, sizeof eb);
    if (!has_signature(o->path, (uint64_t)st.st_size)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: not an HDF5 file (no HDF5 signature at byte 0, 512, 1024, ...)", o->path);
    } else {
      rc = ps_err_set(err, strstr(m, "truncated") ? PS_ETRUNC : PS_EFORMAT, "%s: damaged HDF5 file: %s", o->path, m);
    }
    goto fail;
  }
  rc = list_root(h, o->level, err);
fail:
  return open_finish(out, h, fapl, rc);
}

int h5_source_open_image(emb_source_t **out, const emb_source_opts_t *o, const void *buf, size_t len, ps_err_t *err) {
  *out = NULL;
  h5emb_quiet();
  const char *name = o->path ? o->path : "image";
  if (!buf || len < 8 || memcmp(buf, "\x89HDF\r\n\x1a\n", 8) != 0)
    return ps_err_set(err, PS_EFORMAT, "%s: not an HDF5 file image (no HDF5 signature at byte 0)", name);
  char eb[512];
  int rc;
  emb_source_opts_t oo = *o;
  oo.path = name;
  h5_source_t *h = source_new(&oo);
  hid_t fapl = make_fapl();
  if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, (void *)buf, len) < 0) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: cannot set up an in-memory HDF5 file: %s", name, h5emb_last_error(eb, sizeof eb));
    goto fail;
  }
  h->file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
  if (h->file < 0) {
    const char *m = h5emb_last_error(eb, sizeof eb);
    rc = ps_err_set(err, strstr(m, "truncated") ? PS_ETRUNC : PS_EFORMAT, "%s: damaged HDF5 file: %s", name, m);
    goto fail;
  }
  rc = list_root(h, o->level, err);
fail:
  return open_finish(out, h, fapl, rc);
}

// ---- writer ------------------------------------------------------------------------------------
struct h5emb_writer {
  char *path, *tmp;
  hid_t file, lcpl, dcpl;
  emb_level_t level;
  uint64_t n;
  uint32_t dim;  // of the first record; every record must match
};

uint64_t h5emb_writer_count(const h5emb_writer_t *w) { return w ? w->n : 0; }

static void writer_free(h5emb_writer_t *w) {
  if (w->lcpl >= 0) H5Pclose(w->lcpl);
  if (w->dcpl >= 0) H5Pclose(w->dcpl);
  free(w->path);
  free(w->tmp);
  free(w);
}

int h5emb_writer_open(h5emb_writer_t **out, const char *path, emb_level_t level, ps_err_t *err) {
  *out = NULL;
  h5emb_quiet();
  char eb[512];
  int rc = 0;
  h5emb_writer_t *w = ps_xcalloc(1, sizeof *w);
  w->file = w->lcpl = w->dcpl = -1;
  w->level = level;
  w->path = ps_xstrdup(path);
  w->tmp = ps_xmalloc(strlen(path) + 5);
  sprintf(w->tmp, "%s.tmp", path);
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
  w->lcpl = H5Pcreate(H5P_LINK_CREATE);
  w->dcpl = H5Pcreate(H5P_DATASET_CREATE);
  // Deterministic output: identical input gives a byte-identical file. Object headers carry no
  // access/modification/change/birth times (the file creation list covers the root group, the
  // dataset creation list every record).
  if (fcpl < 0 || fapl < 0 || w->lcpl < 0 || w->dcpl < 0 ||
      H5Pset_obj_track_times(fcpl, 0) < 0 || H5Pset_obj_track_times(w->dcpl, 0) < 0 ||
      H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
      H5Pset_char_encoding(w->lcpl, H5T_CSET_UTF8) < 0 ||
#if H5_VERSION_GE(1, 10, 2)
      H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0
#else
      H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST) < 0
#endif
  ) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: cannot set up HDF5 properties: %s", w->tmp, h5emb_last_error(eb, sizeof eb));
    goto fail;
  }
#if H5_VERSION_GE(1, 10, 7)
  H5Pset_file_locking(fapl, 1, 1);
#endif
  errno = 0;
  if ((w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
    int e = errno;
    const char *m = h5emb_last_error(eb, sizeof eb);
    if (e) rc = ps_err_set(err, -e, "%s: cannot create: %s (%s)", w->tmp, strerror(e), m);
    else rc = ps_err_set(err, PS_EIO, "%s: cannot create: %s", w->tmp, m);
    goto fail;
  }
  H5Pclose(fcpl);
  H5Pclose(fapl);
  *out = w;
  return 0;
fail:
  if (fcpl >= 0) H5Pclose(fcpl);
  if (fapl >= 0) H5Pclose(fapl);
  writer_free(w);
  return rc;
}

static int write_original_id(h5emb_writer_t *w, hid_t ds, const char *id, ps_err_t *err) {
  char eb[512], nb[256];
  int rc = 0;
  hid_t st = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a = -1;
  if (st < 0 || sp < 0 || H5Tset_size(st, H5T_VARIABLE) < 0 || H5Tset_cset(st, H5T_CSET_UTF8) < 0 ||
      (a = H5Acreate2(ds, "original_id", st, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 || H5Awrite(a, st, &id) < 0)
    rc = ps_err_set(err, PS_EIO, "%s: record %llu (id '%s'): cannot write attribute original_id: %s", w->tmp,
                    (unsigned long long)w->n, show(id, nb, sizeof nb), h5emb_last_error(eb, sizeof eb));
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  if (st >= 0) H5Tclose(st);
  return rc;
}

int h5emb_writer_add(h5emb_writer_t *w, const char *id, const float *rows, uint32_t n_rows, uint32_t dim,
                     ps_err_t *err) {
  char eb[512], nb[256], name[48];
  const unsigned long long recno = (unsigned long long)w->n;
  if (!id || !*id) return ps_err_set(err, PS_EFORMAT, "%s: record %llu: empty id", w->path, recno);
  if (dim == 0) return ps_err_set(err, PS_EDIM, "%s: record %llu (id '%s'): dimension 0", w->path, recno, show(id, nb, sizeof nb));
  if (w->level == EMB_LEVEL_PROTEIN && n_rows != 1)
    return ps_err_set(err, PS_EDIM, "%s: record %llu (id '%s'): a protein-level file takes 1 row, not %u", w->path, recno,
                      show(id, nb, sizeof nb), n_rows);
  if ((uint64_t)n_rows * dim > H5EMB_MAX_RECORD_FLOATS)
    return ps_err_set(err, PS_EDIM, "%s: record %llu (id '%s'): %u x %u values is more than a record may hold", w->path,
                      recno, show(id, nb, sizeof nb), n_rows, dim);
  if (w->n && dim != w->dim)
    return ps_err_set(err, PS_EDIM, "%s: record %llu (id '%s'): dimension %u, but the file's records have %u", w->path,
                      recno, show(id, nb, sizeof nb), dim, w->dim);
  const int renamed = !strcmp(id, ".") || strchr(id, '/') != NULL;
  const char *dname = id;
  if (renamed) {
    snprintf(name, sizeof name, "record_%llu", recno);
    dname = name;
  }
  int rc = 0;
  hsize_t dims[2] = {n_rows, dim};
  hid_t sp = w->level == EMB_LEVEL_PROTEIN ? H5Screate_simple(1, dims + 1, NULL) : H5Screate_simple(2, dims, NULL);
  hid_t ds = -1;
  if (sp < 0) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: record %llu: cannot make a dataspace: %s", w->tmp, recno,
                    h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  if ((ds = H5Dcreate2(w->file, dname, H5T_IEEE_F32LE, sp, w->lcpl, w->dcpl, H5P_DEFAULT)) < 0) {
    const char *m = h5emb_last_error(eb, sizeof eb);
    if (H5Lexists(w->file, dname, H5P_DEFAULT) > 0)
      rc = ps_err_set(err, PS_EFORMAT, "%s: record %llu: duplicate id '%s'", w->path, recno, show(dname, nb, sizeof nb));
    else
      rc = ps_err_set(err, PS_EIO, "%s: record %llu (id '%s'): cannot create the dataset: %s", w->tmp, recno,
                      show(id, nb, sizeof nb), m);
    goto out;
  }
  if ((uint64_t)n_rows * dim != 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
    rc = ps_err_set(err, PS_EIO, "%s: record %llu (id '%s'): cannot write: %s", w->tmp, recno, show(id, nb, sizeof nb),
                    h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  if (renamed && (rc = write_original_id(w, ds, id, err)) < 0) goto out;
  w->dim = dim;
  w->n++;
out:
  if (ds >= 0) H5Dclose(ds);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static int fsync_path(const char *p, int dir) {
  int fd = open(p, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) != 0 && errno != EINVAL ? -errno : 0;  // some file systems refuse fsync on dirs
  close(fd);
  return rc;
}

int h5emb_writer_close(h5emb_writer_t **wp, ps_err_t *err) {
  if (!wp || !*wp) return 0;
  h5emb_writer_t *w = *wp;
  *wp = NULL;
  char eb[512];
  int rc = 0;
  herr_t st = H5Fclose(w->file);
  w->file = -1;
  if (st < 0) {
    rc = ps_err_set(err, PS_EIO, "%s: cannot finish the HDF5 file: %s", w->tmp, h5emb_last_error(eb, sizeof eb));
    goto out;
  }
  if ((rc = fsync_path(w->tmp, 0)) < 0) {
    rc = ps_err_set(err, rc, "%s: fsync: %s", w->tmp, strerror(-rc));
    goto out;
  }
  if (rename(w->tmp, w->path) != 0) {
    rc = ps_err_set(err, -errno, "%s: rename from %s: %s", w->path, w->tmp, strerror(errno));
    goto out;
  }
  char *dir = ps_xstrdup(w->path), *slash = strrchr(dir, '/');
  if (slash) *(slash == dir ? slash + 1 : slash) = 0;
  fsync_path(slash ? dir : ".", 1);  // best effort: the file itself is durable
  free(dir);
out:
  if (rc < 0) unlink(w->tmp);
  writer_free(w);
  return rc;
}

void h5emb_writer_abort(h5emb_writer_t **wp) {
  if (!wp || !*wp) return;
  h5emb_writer_t *w = *wp;
  *wp = NULL;
  if (w->file >= 0) H5Fclose(w->file);
  unlink(w->tmp);
  writer_free(w);
}
