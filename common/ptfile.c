// ptfile.c — torch.save zip files of ESM extract.py: reader, pickle interpreter, source, writer.
// See ptfile.h.
#include "ptfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK ((size_t)64 << 10)  // streaming buffer (a multiple of every element size)
#define MAX_DIR_DEPTH 32

// ---- little helpers --------------------------------------------------------------------------
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

// A byte string fit for a message: printable ASCII kept, the rest escaped, long ones shortened.
static const char *show(const char *s, size_t len, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len && o + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 32 && c < 127 && c != '\\') buf[o++] = (char)c;
    else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    if (o + 8 >= cap && i + 1 < len) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
  }
  buf[o] = 0;
  return buf;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off) {
  uint8_t *p = buf;
  while (n) {
    ssize_t r = pread(fd, p, n, (off_t)off);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return PS_ETRUNC;
    p += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static int ends_with_pt(const char *s) {
  size_t n = strlen(s);
  return n > 3 && !strcasecmp(s + n - 3, ".pt");
}

const char *pt_repr_name(pt_repr_t which) {
  return which == PT_REPR_MEAN ? "mean_representations" : "representations";
}

const char *pt_label_id(const char *label, char *buf, size_t cap) {
  size_t i = 0;
  while (*label && isspace((unsigned char)*label)) label++;
  while (label[i] && !isspace((unsigned char)label[i]) && i + 1 < cap) {
    buf[i] = label[i];
    i++;
  }
  if (cap) buf[i] = 0;
  return buf;
}

// ---- pickle values ---------------------------------------------------------------------------
typedef enum {
  PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES, PV_TUPLE, PV_LIST, PV_DICT,
  PV_GLOBAL, PV_STORAGE, PV_TENSOR, PV_OPAQUE,
} pv_kind_t;

typedef enum {
  G_OTHER, G_REBUILD_V2, G_REBUILD, G_REBUILD_PARAM, G_ORDERED_DICT, G_STORAGE_TYPE,
} g_kind_t;

typedef struct pv pv_t;
struct pv {
  pv_t *chain;          // every value of a file, for freeing
  pv_kind_t kind;
  size_t pos;           // byte offset in data.pkl of the opcode that made it
  int64_t i;            // INT, BOOL
  double f;             // FLOAT
  const char *s;        // STR/BYTES (into data.pkl), GLOBAL module, STORAGE key
  size_t len;
  const char *s2;       // GLOBAL name, STORAGE type name
  size_t len2;
  pv_t **items;         // TUPLE/LIST; DICT as key, value, key, value...
  size_t n, cap;        // items used / allocated
  g_kind_t g;           // GLOBAL
  pt_dtype_t dtype;     // GLOBAL storage type, STORAGE
  const char *dtype_name;
  size_t esize;         // bytes an element (0: unknown storage type)
  uint64_t numel;       // STORAGE
  pv_t *storage;        // TENSOR
  int64_t offset;
  int ndim;
  int64_t *size, *stride;  // TENSOR: ndim each, one allocation (size)
};

static const char *kind_name(pv_kind_t k) {
  static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list",
                                      "dict", "global", "storage", "tensor", "opaque object"};
  return names[k];
}

// ---- the file ----------------------------------------------------------------------------------
typedef struct zent {
  char *name;
  uint16_t method, flags;
  uint32_t crc;
  uint64_t csize, usize, lho;  // compressed / uncompressed sizes, local header offset
  uint64_t data;               // data offset once located (0: not yet)
  uint64_t cd_pos;             // byte offset of its central directory record
} zent_t;

typedef struct layer_ref {
  int layer;
  size_t seq;  // position in the dict (a repeated key: the last one wins, as in Python)
  pv_t *t;
} layer_ref_t;

struct pt_file {
  char *path;
  int fd;
  uint64_t size;
  uint64_t cd_off, cd_end;   // central directory [cd_off, cd_end)
  zent_t *ents;              // sorted by name
  size_t n_ents;
  char *archive;
  char *pkl_name;
  uint8_t *pkl;
  size_t pkl_len;
  pv_t *values;              // chain of every value
  size_t n_values;
  char *label;
  int has[2];
  layer_ref_t *refs[2];
  int *layers[2];
  size_t n_layers[2];
};

static void free_values(pt_file_t *f) {
  pv_t *v = f->values;
  while (v) {
    pv_t *nx = v->chain;
    free(v->items);
    free(v->size);
    free(v);
    v = nx;
  }
  f->values = NULL;
}

void pt_file_destroy(pt_file_t **fp) {
  if (!fp || !*fp) return;
  pt_file_t *f = *fp;
  if (f->fd >= 0) close(f->fd);
  for (size_t i = 0; i < f->n_ents; i++) free(f->ents[i].name);
  free(f->ents);
  free(f->archive);
  free(f->pkl_name);
  free(f->pkl);
  free_values(f);
  free(f->label);
  for (int w = 0; w < 2; w++) {
    free(f->refs[w]);
    free(f->layers[w]);
  }
  free(f->path);
  free(f);
  *fp = NULL;
}

const char *pt_file_label(const pt_file_t *f) { return f->label; }
const char *pt_file_archive_name(const pt_file_t *f) { return f->archive; }
int pt_file_has(const pt_file_t *f, pt_repr_t which) { return f->has[which == PT_REPR_MEAN]; }
size_t pt_file_layers(const pt_file_t *f, pt_repr_t which, const int **layers) {
  int w = which == PT_REPR_MEAN;
  if (layers) *layers = f->layers[w];
  return f->n_layers[w];
}

// ---- zip ----------------------------------------------------------------------------------------
static int ent_cmp(const void *a, const void *b) {
  return strcmp(((const zent_t *)a)->name, ((const zent_t *)b)->name);
}

static zent_t *find_entry(pt_file_t *f, const char *name) {
  zent_t key;
  key.name = (char *)name;
  return bsearch(&key, f->ents, f->n_ents, sizeof *f->ents, ent_cmp);
}

// Find the end-of-central-directory record (and the zip64 one) and fill cd_off/cd_end and the
// entry count.
static int zip_find_cdir(pt_file_t *f, uint64_t *n_entries, ps_err_t *err) {
  const char *P = f->path;
  uint8_t magic[4];
  if (f->size < 4 || pread_full(f->fd, magic, 4, 0) < 0)
    return ps_err_set(err, PS_ETRUNC, "%s: %llu bytes: too short for a torch .pt file (a zip archive)", P,
                      (unsigned long long)f->size);
  if (memcmp(magic, "PK\x03\x04", 4)) {
    if (magic[0] == 0x80 && magic[1] <= 5)
      return ps_err_set(err, PS_EUNSUPP,
                        "%s: byte 0: a bare pickle (torch < 1.6 legacy serialization) is not supported; "
                        "re-save it with torch >= 1.6 (torch.save(torch.load(f), f))", P);
    return ps_err_set(err, PS_EFORMAT,
                      "%s: byte 0: bad magic %02x %02x %02x %02x: not a zip archive (torch.save writes one)", P,
                      magic[0], magic[1], magic[2], magic[3]);
  }
  if (f->size < 22) return ps_err_set(err, PS_ETRUNC, "%s: %llu bytes: truncated zip archive (no end record)", P,
                                      (unsigned long long)f->size);
  size_t tail = f->size < 22 + 65535 ? (size_t)f->size : 22 + 65535;
  uint8_t *buf = ps_xmalloc(tail);
  uint64_t base = f->size - tail;
  int rc = pread_full(f->fd, buf, tail, base);
  if (rc < 0) {
    free(buf);
    return ps_err_set(err, rc, "%s: reading the last %zu bytes: %s", P, tail, ps_strerror(rc));
  }
  long at = -1;
  for (long i = (long)tail - 22; i >= 0; i--) {
    if (buf[i] == 'P' && buf[i + 1] == 'K' && buf[i + 2] == 5 && buf[i + 3] == 6 &&
        (size_t)i + 22 + rd16(buf + i + 20) <= tail) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    free(buf);
    return ps_err_set(err, PS_ETRUNC,
                      "%s: no zip end-of-central-directory record in the last %zu bytes: truncated or not a zip", P,
                      tail);
  }
  uint64_t eocd = base + (uint64_t)at;
  const uint8_t *e = buf + at;
  uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
  uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10), cd_size = rd32(e + 12), cd_off = rd32(e + 16);
  uint64_t cd_limit = eocd;  // the central directory ends before this
  int z64 = 0;
  if (eocd >= 20) {
    uint8_t loc[20];
    if (at >= 20) memcpy(loc, e - 20, 20);
    else if (pread_full(f->fd, loc, 20, eocd - 20) < 0) memset(loc, 0, 20);
    if (!memcmp(loc, "PK\x06\x07", 4)) {
      uint64_t z_off = rd64(loc + 8);
      uint32_t z_disks = rd32(loc + 16);
      uint8_t z[56];
      if (z_disks > 1 || rd32(loc + 4) != 0) {
        free(buf);
        return ps_err_set(err, PS_EUNSUPP, "%s: byte %llu: multi-disk zip64 archive", P,
                          (unsigned long long)(eocd - 20));
      }
      if (z_off > eocd - 20 || eocd - 20 - z_off < 56 || pread_full(f->fd, z, 56, z_off) < 0 ||
          memcmp(z, "PK\x06\x06", 4)) {
        free(buf);
        return ps_err_set(err, PS_EFORMAT, "%s: byte %llu: zip64 locator points to %llu, where no zip64 end record is",
                          P, (unsigned long long)(eocd - 20), (unsigned long long)z_off);
      }
      if (rd32(z + 16) != 0 || rd32(z + 20) != 0) {
        free(buf);
        return ps_err_set(err, PS_EUNSUPP, "%s: byte %llu: multi-disk zip64 archive", P, (unsigned long long)z_off);
      }
      n_disk = rd64(z + 24);
      n_total = rd64(z + 32);
      cd_size = rd64(z + 40);
      cd_off = rd64(z + 48);
      cd_limit = z_off;
      z64 = 1;
    }
  }
  free(buf);
  if (!z64 && (disk != 0 || cd_disk != 0))
    return ps_err_set(err, PS_EUNSUPP, "%s: byte %llu: multi-disk zip archive", P, (unsigned long long)eocd);
  if (n_disk != n_total)
    return ps_err_set(err, PS_EUNSUPP, "%s: byte %llu: multi-disk zip archive (%llu of %llu entries on this disk)", P,
                      (unsigned long long)eocd, (unsigned long long)n_disk, (unsigned long long)n_total);
  if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
    return ps_err_set(err, PS_ETRUNC,
                      "%s: byte %llu: central directory [%llu, +%llu) lies outside the file (%llu bytes): truncated?",
                      P, (unsigned long long)eocd, (unsigned long long)cd_off, (unsigned long long)cd_size,
                      (unsigned long long)f->size);
  if (cd_size > PT_MAX_CDIR_BYTES || n_total > PT_MAX_ENTRIES)
    return ps_err_set(err, PS_EUNSUPP, "%s: byte %llu: central directory too large (%llu entries, %llu bytes)", P,
                      (unsigned long long)eocd, (unsigned long long)n_total, (unsigned long long)cd_size);
  if (n_total == 0) return ps_err_set(err, PS_EFORMAT, "%s: byte %llu: the zip archive is empty", P,
                                      (unsigned long long)eocd);
  if (n_total * 46 > cd_size)
    return ps_err_set(err, PS_EFORMAT, "%s: byte %llu: %llu entries cannot fit a %llu-byte central directory", P,
                      (unsigned long long)eocd, (unsigned long long)n_total, (unsigned long long)cd_size);
  f->cd_off = cd_off;
  f->cd_end = cd_off + cd_size;
  *n_entries = n_total;
  return 0;
}

static int zip_read_cdir(pt_file_t *f, ps_err_t *err) {
  const char *P = f->path;
  uint64_t n_total = 0;
  int rc = zip_find_cdir(f, &n_total, err);
  if (rc < 0) return rc;
  size_t cd_size = (size_t)(f->cd_end - f->cd_off);
  uint8_t *cd = ps_xmalloc(cd_size ? cd_size : 1);
  char *first = NULL;
  if ((rc = pread_full(f->fd, cd, cd_size, f->cd_off)) < 0) {
    rc = ps_err_set(err, rc, "%s: reading the central directory at byte %llu: %s", P,
                    (unsigned long long)f->cd_off, ps_strerror(rc));
    goto fail;
  }
  f->ents = ps_xcalloc((size_t)n_total, sizeof *f->ents);
  size_t p = 0;
  for (uint64_t k = 0; k < n_total; k++) {
    uint64_t at = f->cd_off + p;
    if (cd_size - p < 46 || memcmp(cd + p, "PK\x01\x02", 4)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: byte %llu: zip central directory entry %llu: bad signature or truncated",
                      P, (unsigned long long)at, (unsigned long long)k);
      goto fail;
    }
    const uint8_t *h = cd + p;
    size_t nl = rd16(h + 28), el = rd16(h + 30), cl = rd16(h + 32);
    if (cd_size - p - 46 < nl + el + cl) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: byte %llu: zip central directory entry %llu runs past the directory", P,
                      (unsigned long long)at, (unsigned long long)k);
      goto fail;
    }
    zent_t *z = &f->ents[f->n_ents];
    z->flags = rd16(h + 8);
    z->method = rd16(h + 10);
    z->crc = rd32(h + 16);
    z->csize = rd32(h + 20);
    z->usize = rd32(h + 24);
    z->lho = rd32(h + 42);
    z->cd_pos = at;
    const uint8_t *name = h + 46, *ex = name + nl;
    if (memchr(name, 0, nl)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: byte %llu: zip entry %llu: name holds a NUL byte", P,
                      (unsigned long long)at, (unsigned long long)k);
      goto fail;
    }
    z->name = ps_xmalloc(nl + 1);
    memcpy(z->name, name, nl);
    z->name[nl] = 0;
    f->n_ents++;
    if (k == 0) first = ps_xstrdup(z->name);
    // zip64 extra field: the 64-bit values of the fields saturated at 0xffffffff, in order
    for (size_t q = 0; q + 4 <= el;) {
      uint16_t id = rd16(ex + q), sz = rd16(ex + q + 2);
      if (q + 4 + sz > el) break;
      if (id == 1) {
        const uint8_t *v = ex + q + 4;
        size_t left = sz;
        uint64_t *fields[3] = {&z->usize, &z->csize, &z->lho};
        for (int j = 0; j < 3; j++) {
          if (*fields[j] != 0xffffffffu) continue;
          if (left < 8) {
            rc = ps_err_set(err, PS_EFORMAT, "%s: byte %llu: zip entry '%s': zip64 extra field too short", P,
                            (unsigned long long)at, z->name);
            goto fail;
          }
          *fields[j] = rd64(v);
          v += 8;
          left -= 8;
        }
      }
      q += 4 + (size_t)sz;
    }
    p += 46 + nl + el + cl;
  }
  qsort(f->ents, f->n_ents, sizeof *f->ents, ent_cmp);
  for (size_t i = 1; i < f->n_ents; i++) {
    if (!strcmp(f->ents[i - 1].name, f->ents[i].name)) {
      char nb[160];
      rc = ps_err_set(err, PS_EFORMAT, "%s: byte %llu: zip entry '%s' appears twice", P,
                      (unsigned long long)f->ents[i].cd_pos,
                      show(f->ents[i].name, strlen(f->ents[i].name), nb, sizeof nb));
      goto fail;
    }
  }
  // torch: every record lives in the folder of the first one
  char *slash = strchr(first, '/');
  if (!slash || slash == first) {
    char nb[160];
    rc = ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s' is not in a folder: not a torch.save archive", P,
                    show(first, strlen(first), nb, sizeof nb));
    goto fail;
  }
  *slash = 0;
  f->archive = first;
  first = NULL;
  free(cd);
  return 0;
fail:
  free(first);
  free(cd);
  return rc;
}

// Validate an entry's local header and compute its data offset.
static int zip_locate(pt_file_t *f, zent_t *z, ps_err_t *err) {
  if (z->data) return 0;
  const char *P = f->path;
  char nb[160];
  const char *N = show(z->name, strlen(z->name), nb, sizeof nb);
  uint8_t h[30];
  if (z->flags & 1) return ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s' is encrypted", P, N);
  if (z->method != 0 && z->method != 8)
    return ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s': compression method %u (only stored and deflate)", P, N,
                      z->method);
  if (z->lho > f->cd_off || f->cd_off - z->lho < 30 || pread_full(f->fd, h, 30, z->lho) < 0)
    return ps_err_set(err, PS_ETRUNC, "%s: byte %llu: local header of zip entry '%s' lies outside the file", P,
                      (unsigned long long)z->lho, N);
  if (memcmp(h, "PK\x03\x04", 4))
    return ps_err_set(err, PS_EFORMAT, "%s: byte %llu: bad local header signature for zip entry '%s'", P,
                      (unsigned long long)z->lho, N);
  size_t nl = rd16(h + 26), el = rd16(h + 28);
  uint64_t data = z->lho + 30 + nl + el;
  size_t cn = strlen(z->name);
  char lname[256];
  int name_ok = nl == cn;
  if (name_ok && data <= f->cd_off) {
    for (size_t o = 0; o < nl && name_ok; o += sizeof lname) {
      size_t k = nl - o < sizeof lname ? nl - o : sizeof lname;
      if (pread_full(f->fd, lname, k, z->lho + 30 + o) < 0 || memcmp(lname, z->name + o, k)) name_ok = 0;
    }
  }
  if (!name_ok)
    return ps_err_set(err, PS_EFORMAT, "%s: byte %llu: local header name differs from the central directory's '%s'", P,
                      (unsigned long long)z->lho, N);
  if (data > f->cd_off || z->csize > f->cd_off - data)
    return ps_err_set(err, PS_ETRUNC,
                      "%s: byte %llu: zip entry '%s' (%llu bytes) runs past the data area (ends at byte %llu): "
                      "truncated?", P, (unsigned long long)data, N, (unsigned long long)z->csize,
                      (unsigned long long)f->cd_off);
  if (z->method == 0 && z->csize != z->usize)
    return ps_err_set(err, PS_EFORMAT, "%s: byte %llu: stored zip entry '%s' has sizes %llu and %llu", P,
                      (unsigned long long)z->cd_pos, N, (unsigned long long)z->csize, (unsigned long long)z->usize);
  if (z->method == 8 && z->usize / 1032 > z->csize + 1)  // deflate cannot compress more than ~1032:1
    return ps_err_set(err, PS_EFORMAT, "%s: byte %llu: deflated zip entry '%s' claims %llu bytes from %llu", P,
                      (unsigned long long)z->cd_pos, N, (unsigned long long)z->usize, (unsigned long long)z->csize);
  z->data = data;
  return 0;
}

// Stream bytes [off, off + n) of an entry's uncompressed data to sink in chunks whose sizes are
// multiples of 8 (but the last). The CRC is checked when the whole entry is read.
typedef int (*sink_fn)(void *ctx, const uint8_t *p, size_t n);

static int zip_stream(pt_file_t *f, zent_t *z, uint64_t off, uint64_t n, sink_fn sink, void *ctx, ps_err_t *err) {
  const char *P = f->path;
  char nb[160];
  int rc = zip_locate(f, z, err);
  if (rc < 0) return rc;
  const char *N = show(z->name, strlen(z->name), nb, sizeof nb);
  if (off > z->usize || n > z->usize - off)
    return ps_err_set(err, PS_ETRUNC, "%s: zip entry '%s' holds %llu bytes; bytes [%llu, %llu) were asked for", P, N,
                      (unsigned long long)z->usize, (unsigned long long)off, (unsigned long long)(off + n));
  int whole = off == 0 && n == z->usize;
  uLong crc = crc32(0L, Z_NULL, 0);
  uint8_t *buf = ps_xmalloc(CHUNK);
  uint8_t *in = NULL;
  z_stream zs;
  int zinit = 0;
  if (z->method == 0) {
    uint64_t done = 0;
    while (done < n) {
      size_t k = n - done < CHUNK ? (size_t)(n - done) : CHUNK;
      if ((rc = pread_full(f->fd, buf, k, z->data + off + done)) < 0) {
        rc = ps_err_set(err, rc, "%s: byte %llu: reading zip entry '%s': %s", P,
                        (unsigned long long)(z->data + off + done), N, ps_strerror(rc));
        goto out;
      }
      if (whole) crc = crc32(crc, buf, (uInt)k);
      if ((rc = sink(ctx, buf, k)) < 0) goto out;
      done += k;
    }
  } else {
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) {
      rc = ps_err_set(err, PS_ENOMEM, "%s: zlib inflateInit failed", P);
      goto out;
    }
    zinit = 1;
    in = ps_xmalloc(CHUNK);
    uint64_t in_pos = 0, out_pos = 0;  // compressed bytes fed, uncompressed bytes produced
    int zr = Z_OK;
    while (out_pos < off + n) {
      uint64_t want = off + n - out_pos;
      size_t room = want < CHUNK ? (size_t)want : CHUNK;
      zs.next_out = buf;
      zs.avail_out = (uInt)room;
      while (zs.avail_out) {
        if (zs.avail_in == 0 && in_pos < z->csize) {
          size_t k = z->csize - in_pos < CHUNK ? (size_t)(z->csize - in_pos) : CHUNK;
          if ((rc = pread_full(f->fd, in, k, z->data + in_pos)) < 0) {
            rc = ps_err_set(err, rc, "%s: byte %llu: reading zip entry '%s': %s", P,
                            (unsigned long long)(z->data + in_pos), N, ps_strerror(rc));
            goto out;
          }
          zs.next_in = in;
          zs.avail_in = (uInt)k;
          in_pos += k;
        }
        uInt before_in = zs.avail_in, before_out = zs.avail_out;
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
          rc = ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s': corrupt deflate data near compressed byte %llu (%s)", P,
                          N, (unsigned long long)(in_pos - zs.avail_in), zs.msg ? zs.msg : "zlib error");
          goto out;
        }
        if (zs.avail_in == before_in && zs.avail_out == before_out && in_pos >= z->csize) break;  // starved
      }
      size_t got = room - zs.avail_out;
      if (got == 0) {
        rc = ps_err_set(err, PS_ETRUNC, "%s: zip entry '%s': deflate data ends after %llu of %llu bytes", P, N,
                        (unsigned long long)out_pos, (unsigned long long)z->usize);
        goto out;
      }
      if (whole) crc = crc32(crc, buf, (uInt)got);
      // hand over the part at or after `off`
      uint64_t s = out_pos < off ? off - out_pos : 0;
      if (s < got && (rc = sink(ctx, buf + s, got - (size_t)s)) < 0) goto out;
      out_pos += got;
      if (zr == Z_STREAM_END && out_pos < off + n) {
        rc = ps_err_set(err, PS_ETRUNC, "%s: zip entry '%s': deflate data ends after %llu of %llu bytes", P, N,
                        (unsigned long long)out_pos, (unsigned long long)z->usize);
        goto out;
      }
    }
  }
  if (whole && (uint32_t)crc != z->crc) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s' (data at byte %llu): CRC-32 %08x, the directory says %08x", P,
                    N, (unsigned long long)z->data, (unsigned)crc, (unsigned)z->crc);
    goto out;
  }
  rc = 0;
out:
  if (zinit) inflateEnd(&zs);
  free(in);
  free(buf);
  return rc;
}

typedef struct {
  uint8_t *p;
  size_t n;
} mem_sink_t;

static int mem_sink(void *ctx, const uint8_t *p, size_t n) {
  mem_sink_t *m = ctx;
  memcpy(m->p + m->n, p, n);
  m->n += n;
  return 0;
}

// Read a small entry whole into a malloc'ed NUL-terminated buffer (caller frees).
static int zip_read_all(pt_file_t *f, zent_t *z, uint64_t max, uint8_t **out, size_t *len, ps_err_t *err) {
  *out = NULL;
  if (z->usize > max) {
    char nb[160];
    return ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s' is %llu bytes (at most %llu accepted)", f->path,
                      show(z->name, strlen(z->name), nb, sizeof nb), (unsigned long long)z->usize,
                      (unsigned long long)max);
  }
  mem_sink_t m = {ps_xmalloc((size_t)z->usize + 1), 0};
  int rc = zip_stream(f, z, 0, z->usize, mem_sink, &m, err);
  if (rc < 0) {
    free(m.p);
    return rc;
  }
  m.p[m.n] = 0;
  *out = m.p;
  *len = m.n;
  return 0;
}

// ---- the pickle interpreter ----------------------------------------------------------------------
typedef struct vm {
  pt_file_t *f;
  ps_err_t *err;
  const uint8_t *p;
  size_t n, pos, op;      // buffer, length, read position, offset of the current opcode
  pv_t **st;              // value stack
  size_t sn, scap;
  size_t *mk;             // mark stack: stack heights
  size_t mn, mcap;
  pv_t **memo;
  size_t memo_cap, memo_count;
} vm_t;

#define VM_ERR(vm, code, ...) vm_err(vm, code, __VA_ARGS__)

__attribute__((format(printf, 3, 4))) static int vm_err(vm_t *vm, int code, const char *fmt, ...) {
  char m[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  return ps_err_set(vm->err, code, "%s: %s byte %zu: %s", vm->f->path, vm->f->pkl_name, vm->op, m);
}

static pv_t *pv_new(vm_t *vm, pv_kind_t kind) {
  if (vm->f->n_values >= PT_MAX_PICKLE_NODES) {
    VM_ERR(vm, PS_EUNSUPP, "more than %zu pickled values", PT_MAX_PICKLE_NODES);
    return NULL;
  }
  pv_t *v = ps_xcalloc(1, sizeof *v);
  v->kind = kind;
  v->pos = vm->op;
  v->chain = vm->f->values;
  vm->f->values = v;
  vm->f->n_values++;
  return v;
}

static void pv_append(pv_t *c, pv_t *x) {
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 4;
    c->items = ps_xrealloc(c->items, c->cap * sizeof *c->items);
  }
  c->items[c->n++] = x;
}

static int push(vm_t *vm, pv_t *v) {
  if (!v) return vm->err ? vm->err->code : PS_EUNSUPP;
  if (vm->sn == vm->scap) {
    vm->scap = vm->scap ? vm->scap * 2 : 64;
    vm->st = ps_xrealloc(vm->st, vm->scap * sizeof *vm->st);
  }
  vm->st[vm->sn++] = v;
  return 0;
}

static size_t stack_base(const vm_t *vm) { return vm->mn ? vm->mk[vm->mn - 1] : 0; }

static pv_t *pop(vm_t *vm) {
  if (vm->sn <= stack_base(vm)) {
    VM_ERR(vm, PS_EFORMAT, "pickle stack underflow");
    return NULL;
  }
  return vm->st[--vm->sn];
}

static pv_t *top(vm_t *vm) {
  if (vm->sn <= stack_base(vm)) {
    VM_ERR(vm, PS_EFORMAT, "pickle stack underflow");
    return NULL;
  }
  return vm->st[vm->sn - 1];
}

// Pop to the last MARK: *first = index of the first item, *count items (still in vm->st).
static int pop_mark(vm_t *vm, size_t *first, size_t *count) {
  if (!vm->mn) return VM_ERR(vm, PS_EFORMAT, "no MARK on the pickle stack");
  size_t b = vm->mk[--vm->mn];
  *first = b;
  *count = vm->sn - b;
  vm->sn = b;
  return 0;
}

static int need(vm_t *vm, size_t k) {
  if (vm->n - vm->pos < k) {
    vm->op = vm->pos;
    return VM_ERR(vm, PS_ETRUNC, "pickle ends inside an opcode argument (%zu more bytes needed)", k);
  }
  return 0;
}

static int memo_put(vm_t *vm, uint64_t idx) {
  pv_t *v = top(vm);
  if (!v) return vm->err->code;
  if (idx >= PT_MAX_PICKLE_NODES) return VM_ERR(vm, PS_EUNSUPP, "memo key %llu too large", (unsigned long long)idx);
  if (idx >= vm->memo_cap) {
    size_t nc = vm->memo_cap ? vm->memo_cap : 64;
    while (nc <= idx) nc *= 2;
    vm->memo = ps_xrealloc(vm->memo, nc * sizeof *vm->memo);
    memset(vm->memo + vm->memo_cap, 0, (nc - vm->memo_cap) * sizeof *vm->memo);
    vm->memo_cap = nc;
  }
  if (!vm->memo[idx]) vm->memo_count++;
  vm->memo[idx] = v;
  return 0;
}

static int memo_get(vm_t *vm, uint64_t idx) {
  if (idx >= vm->memo_cap || !vm->memo[idx])
    return VM_ERR(vm, PS_EFORMAT, "memo key %llu used before it was set", (unsigned long long)idx);
  return push(vm, vm->memo[idx]);
}

static int push_str(vm_t *vm, pv_kind_t kind, uint64_t len) {
  if (len > vm->n - vm->pos) return VM_ERR(vm, PS_ETRUNC, "string of %llu bytes runs past the pickle's end",
                                           (unsigned long long)len);
  pv_t *v = pv_new(vm, kind);
  if (!v) return vm->err->code;
  v->s = (const char *)vm->p + vm->pos;
  v->len = (size_t)len;
  vm->pos += (size_t)len;
  return push(vm, v);
}

static int push_int(vm_t *vm, int64_t x) {
  pv_t *v = pv_new(vm, PV_INT);
  if (!v) return vm->err->code;
  v->i = x;
  return push(vm, v);
}

static int str_is(const pv_t *v, const char *s) {
  size_t n = strlen(s);
  return v && v->kind == PV_STR && v->len == n && !memcmp(v->s, s, n);
}

static int mem_is(const char *p, size_t n, const char *s) { return strlen(s) == n && !memcmp(p, s, n); }

static const struct {
  const char *name;
  pt_dtype_t dtype;
  const char *dtype_name;
  size_t esize;
} storage_types[] = {
    {"FloatStorage", PT_DTYPE_F32, "float32", 4},   {"HalfStorage", PT_DTYPE_F16, "float16", 2},
    {"BFloat16Storage", PT_DTYPE_BF16, "bfloat16", 2}, {"DoubleStorage", PT_DTYPE_F64, "float64", 8},
    {"LongStorage", PT_DTYPE_OTHER, "int64", 8},    {"IntStorage", PT_DTYPE_OTHER, "int32", 4},
    {"ShortStorage", PT_DTYPE_OTHER, "int16", 2},   {"CharStorage", PT_DTYPE_OTHER, "int8", 1},
    {"ByteStorage", PT_DTYPE_OTHER, "uint8", 1},    {"BoolStorage", PT_DTYPE_OTHER, "bool", 1},
    {"ComplexFloatStorage", PT_DTYPE_OTHER, "complex64", 8},
    {"ComplexDoubleStorage", PT_DTYPE_OTHER, "complex128", 16},
};

static int make_global(vm_t *vm, const char *mod, size_t ml, const char *name, size_t nl) {
  pv_t *g = pv_new(vm, PV_GLOBAL);
  if (!g) return vm->err->code;
  g->s = mod;
  g->len = ml;
  g->s2 = name;
  g->len2 = nl;
  g->g = G_OTHER;
  if (mem_is(mod, ml, "torch._utils")) {
    if (mem_is(name, nl, "_rebuild_tensor_v2")) g->g = G_REBUILD_V2;
    else if (mem_is(name, nl, "_rebuild_tensor")) g->g = G_REBUILD;
    else if (mem_is(name, nl, "_rebuild_parameter")) g->g = G_REBUILD_PARAM;
  } else if (mem_is(mod, ml, "collections") && mem_is(name, nl, "OrderedDict")) {
    g->g = G_ORDERED_DICT;
  } else if (mem_is(mod, ml, "torch")) {
    for (size_t k = 0; k < sizeof storage_types / sizeof *storage_types; k++) {
      if (mem_is(name, nl, storage_types[k].name)) {
        g->g = G_STORAGE_TYPE;
        g->dtype = storage_types[k].dtype;
        g->dtype_name = storage_types[k].dtype_name;
        g->esize = storage_types[k].esize;
      }
    }
  }
  return push(vm, g);
}

// GLOBAL's argument: "module\nname\n".
static int op_global(vm_t *vm) {
  const uint8_t *a = vm->p + vm->pos, *end = vm->p + vm->n;
  const uint8_t *nl1 = memchr(a, '\n', (size_t)(end - a));
  const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
  if (!nl2) return VM_ERR(vm, PS_ETRUNC, "GLOBAL without its two newline-terminated names");
  vm->pos = (size_t)(nl2 + 1 - vm->p);
  return make_global(vm, (const char *)a, (size_t)(nl1 - a), (const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static int int_tuple(const pv_t *t, int64_t *out, int *n) {
  if (!t || t->kind != PV_TUPLE || t->n > PT_MAX_DIMS) return -1;
  for (size_t k = 0; k < t->n; k++) {
    if (t->items[k]->kind != PV_INT) return -1;
    out[k] = t->items[k]->i;
  }
  *n = (int)t->n;
  return 0;
}

static int op_reduce(vm_t *vm) {
  pv_t *args = pop(vm);
  pv_t *fn = args ? pop(vm) : NULL;
  if (!fn) return vm->err->code;
  if (fn->kind != PV_GLOBAL)
    return VM_ERR(vm, PS_EFORMAT, "REDUCE calls a %s, not a global", kind_name(fn->kind));
  if (args->kind != PV_TUPLE)
    return VM_ERR(vm, PS_EFORMAT, "REDUCE arguments are a %s, not a tuple", kind_name(args->kind));
  pv_t *r = NULL;
  switch (fn->g) {
  case G_REBUILD_V2:
  case G_REBUILD: {
    const char *what = fn->g == G_REBUILD_V2 ? "_rebuild_tensor_v2" : "_rebuild_tensor";
    if (args->n < 4) return VM_ERR(vm, PS_EFORMAT, "%s with %zu arguments", what, args->n);
    pv_t *st = args->items[0], *off = args->items[1];
    if (st->kind != PV_STORAGE)
      return VM_ERR(vm, PS_EFORMAT, "%s: argument 1 is a %s, not a storage", what, kind_name(st->kind));
    if (off->kind != PV_INT || off->i < 0)
      return VM_ERR(vm, PS_EFORMAT, "%s: storage offset is not a non-negative int", what);
    if (!(r = pv_new(vm, PV_TENSOR))) return vm->err->code;
    r->size = ps_xcalloc(2 * PT_MAX_DIMS, sizeof *r->size);
    r->stride = r->size + PT_MAX_DIMS;
    int nd1 = 0, nd2 = 0;
    if (int_tuple(args->items[2], r->size, &nd1) < 0 || int_tuple(args->items[3], r->stride, &nd2) < 0 || nd1 != nd2)
      return VM_ERR(vm, PS_EFORMAT, "%s: size and stride are not two int tuples of one length <= %d", what,
                    PT_MAX_DIMS);
    for (int k = 0; k < nd1; k++)
      if (r->size[k] < 0) return VM_ERR(vm, PS_EFORMAT, "%s: negative size %lld", what, (long long)r->size[k]);
    r->storage = st;
    r->offset = off->i;
    r->ndim = nd1;
    break;
  }
  case G_REBUILD_PARAM:
    if (args->n < 1 || args->items[0]->kind != PV_TENSOR)
      return VM_ERR(vm, PS_EFORMAT, "_rebuild_parameter without a tensor");
    r = args->items[0];
    break;
  case G_ORDERED_DICT:
    if (!(r = pv_new(vm, args->n == 0 ? PV_DICT : PV_OPAQUE))) return vm->err->code;
    break;
  default:
    if (!(r = pv_new(vm, PV_OPAQUE))) return vm->err->code;  // never executed; fails only if used
    r->s = fn->s;
    r->len = fn->len;
    r->s2 = fn->s2;
    r->len2 = fn->len2;
    break;
  }
  return push(vm, r);
}

static int op_persid(vm_t *vm) {
  pv_t *pid = pop(vm);
  if (!pid) return vm->err->code;
  if (pid->kind != PV_TUPLE || pid->n < 5 || !str_is(pid->items[0], "storage"))
    return VM_ERR(vm, PS_EUNSUPP, "persistent id is not ('storage', type, key, location, numel)");
  pv_t *ty = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
  if (ty->kind != PV_GLOBAL || ty->g != G_STORAGE_TYPE) {
    char mb[80], nb[80];
    if (ty->kind == PV_GLOBAL)
      return VM_ERR(vm, PS_EUNSUPP, "storage type %s.%s is not a known torch storage", show(ty->s, ty->len, mb, sizeof mb),
                    show(ty->s2, ty->len2, nb, sizeof nb));
    return VM_ERR(vm, PS_EFORMAT, "storage type is a %s", kind_name(ty->kind));
  }
  if (key->kind != PV_STR || key->len == 0 || memchr(key->s, 0, key->len))
    return VM_ERR(vm, PS_EFORMAT, "storage key is not a non-empty string");
  if (numel->kind != PV_INT || numel->i < 0) return VM_ERR(vm, PS_EFORMAT, "storage size is not a non-negative int");
  pv_t *s = pv_new(vm, PV_STORAGE);
  if (!s) return vm->err->code;
  s->s = key->s;
  s->len = key->len;
  s->s2 = ty->s2;
  s->len2 = ty->len2;
  s->dtype = ty->dtype;
  s->dtype_name = ty->dtype_name;
  s->esize = ty->esize;
  s->numel = (uint64_t)numel->i;
  return push(vm, s);
}

static int run_pickle(pt_file_t *f, pv_t **result, ps_err_t *err) {
  vm_t vm;
  memset(&vm, 0, sizeof vm);
  vm.f = f;
  vm.err = err;
  vm.p = f->pkl;
  vm.n = f->pkl_len;
  int rc = 0;
  size_t first = 0, cnt = 0;
  pv_t *v, *w, *c;
  *result = NULL;
  for (;;) {
    vm.op = vm.pos;
    if (vm.pos >= vm.n) {
      rc = VM_ERR(&vm, PS_ETRUNC, "pickle ends without STOP");
      goto out;
    }
    uint8_t op = vm.p[vm.pos++];
    switch (op) {
    case 0x80:  // PROTO
      if ((rc = need(&vm, 1)) < 0) goto out;
      if (vm.p[vm.pos] > 5) {
        rc = VM_ERR(&vm, PS_EUNSUPP, "pickle protocol %u", vm.p[vm.pos]);
        goto out;
      }
      vm.pos++;
      break;
    case 0x95:  // FRAME
      if ((rc = need(&vm, 8)) < 0) goto out;
      vm.pos += 8;
      break;
    case '.':  // STOP
      if (!(v = pop(&vm))) {
        rc = err->code;
        goto out;
      }
      *result = v;
      rc = 0;
      goto out;
    case '}':
      rc = push(&vm, pv_new(&vm, PV_DICT));
      break;
    case ']':
      rc = push(&vm, pv_new(&vm, PV_LIST));
      break;
    case ')':
      rc = push(&vm, pv_new(&vm, PV_TUPLE));
      break;
    case 'N':
      rc = push(&vm, pv_new(&vm, PV_NONE));
      break;
    case 0x88:
    case 0x89:
      if ((v = pv_new(&vm, PV_BOOL))) v->i = op == 0x88;
      rc = push(&vm, v);
      break;
    case '(':  // MARK
      if (vm.mn == vm.mcap) {
        vm.mcap = vm.mcap ? vm.mcap * 2 : 16;
        vm.mk = ps_xrealloc(vm.mk, vm.mcap * sizeof *vm.mk);
      }
      if (vm.mn >= PT_MAX_PICKLE_NODES) {
        rc = VM_ERR(&vm, PS_EUNSUPP, "too many nested MARKs");
        goto out;
      }
      vm.mk[vm.mn++] = vm.sn;
      break;
    case 'q':  // BINPUT
      if ((rc = need(&vm, 1)) < 0) goto out;
      rc = memo_put(&vm, vm.p[vm.pos++]);
      break;
    case 'r':  // LONG_BINPUT
      if ((rc = need(&vm, 4)) < 0) goto out;
      rc = memo_put(&vm, rd32(vm.p + vm.pos));
      vm.pos += 4;
      break;
    case 0x94:  // MEMOIZE
      rc = memo_put(&vm, vm.memo_count);
      break;
    case 'h':  // BINGET
      if ((rc = need(&vm, 1)) < 0) goto out;
      rc = memo_get(&vm, vm.p[vm.pos++]);
      break;
    case 'j':  // LONG_BINGET
      if ((rc = need(&vm, 4)) < 0) goto out;
      rc = memo_get(&vm, rd32(vm.p + vm.pos));
      vm.pos += 4;
      break;
    case 'X':  // BINUNICODE
    case 'B':  // BINBYTES
      if ((rc = need(&vm, 4)) < 0) goto out;
      vm.pos += 4;
      rc = push_str(&vm, op == 'X' ? PV_STR : PV_BYTES, rd32(vm.p + vm.pos - 4));
      break;
    case 'T':  // BINSTRING (signed length)
      if ((rc = need(&vm, 4)) < 0) goto out;
      vm.pos += 4;
      if (rd32(vm.p + vm.pos - 4) & 0x80000000u) {
        rc = VM_ERR(&vm, PS_EFORMAT, "negative BINSTRING length");
        goto out;
      }
      rc = push_str(&vm, PV_STR, rd32(vm.p + vm.pos - 4));
      break;
    case 0x8c:  // SHORT_BINUNICODE
    case 'U':   // SHORT_BINSTRING
    case 'C':   // SHORT_BINBYTES
      if ((rc = need(&vm, 1)) < 0) goto out;
      vm.pos++;
      rc = push_str(&vm, op == 'C' ? PV_BYTES : PV_STR, vm.p[vm.pos - 1]);
      break;
    case 0x8d:  // BINUNICODE8
    case 0x8e:  // BINBYTES8
      if ((rc = need(&vm, 8)) < 0) goto out;
      vm.pos += 8;
      rc = push_str(&vm, op == 0x8d ? PV_STR : PV_BYTES, rd64(vm.p + vm.pos - 8));
      break;
    case 'J':  // BININT
      if ((rc = need(&vm, 4)) < 0) goto out;
      rc = push_int(&vm, (int32_t)rd32(vm.p + vm.pos));
      vm.pos += 4;
      break;
    case 'K':  // BININT1
      if ((rc = need(&vm, 1)) < 0) goto out;
      rc = push_int(&vm, vm.p[vm.pos++]);
      break;
    case 'M':  // BININT2
      if ((rc = need(&vm, 2)) < 0) goto out;
      rc = push_int(&vm, rd16(vm.p + vm.pos));
      vm.pos += 2;
      break;
    case 0x8a:    // LONG1
    case 0x8b: {  // LONG4
      uint64_t nb;
      if (op == 0x8a) {
        if ((rc = need(&vm, 1)) < 0) goto out;
        nb = vm.p[vm.pos++];
      } else {
        if ((rc = need(&vm, 4)) < 0) goto out;
        nb = rd32(vm.p + vm.pos);
        vm.pos += 4;
      }
      if ((rc = need(&vm, nb)) < 0) goto out;
      if (nb > 8) {
        rc = VM_ERR(&vm, PS_EUNSUPP, "integer of %llu bytes", (unsigned long long)nb);
        goto out;
      }
      uint64_t x = 0;
      for (uint64_t k = 0; k < nb; k++) x |= (uint64_t)vm.p[vm.pos + k] << (8 * k);
      if (nb && nb < 8 && (vm.p[vm.pos + nb - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * nb);  // sign-extend
      vm.pos += nb;
      rc = push_int(&vm, (int64_t)x);
      break;
    }
    case 'G': {  // BINFLOAT, big-endian
      if ((rc = need(&vm, 8)) < 0) goto out;
      uint64_t b = 0;
      for (int k = 0; k < 8; k++) b = b << 8 | vm.p[vm.pos + k];
      vm.pos += 8;
      if ((v = pv_new(&vm, PV_FLOAT))) memcpy(&v->f, &b, 8);
      rc = push(&vm, v);
      break;
    }
    case 'c':
      rc = op_global(&vm);
      break;
    case 0x93:  // STACK_GLOBAL
      if (!(w = pop(&vm)) || !(v = pop(&vm))) {
        rc = err->code;
        goto out;
      }
      if (v->kind != PV_STR || w->kind != PV_STR) {
        rc = VM_ERR(&vm, PS_EFORMAT, "STACK_GLOBAL on a %s and a %s", kind_name(v->kind), kind_name(w->kind));
        goto out;
      }
      rc = make_global(&vm, v->s, v->len, w->s, w->len);
      break;
    case 'Q':
      rc = op_persid(&vm);
      break;
    case 't':  // TUPLE
    case 'l':  // LIST
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (!(v = pv_new(&vm, op == 't' ? PV_TUPLE : PV_LIST))) {
        rc = err->code;
        goto out;
      }
      for (size_t k = 0; k < cnt; k++) pv_append(v, vm.st[first + k]);
      rc = push(&vm, v);
      break;
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1/2/3
      size_t k = (size_t)(op - 0x84);
      if (vm.sn - stack_base(&vm) < k) {
        rc = VM_ERR(&vm, PS_EFORMAT, "pickle stack underflow");
        goto out;
      }
      if (!(v = pv_new(&vm, PV_TUPLE))) {
        rc = err->code;
        goto out;
      }
      for (size_t j = 0; j < k; j++) pv_append(v, vm.st[vm.sn - k + j]);
      vm.sn -= k;
      rc = push(&vm, v);
      break;
    }
    case 'd':  // DICT
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (cnt % 2) {
        rc = VM_ERR(&vm, PS_EFORMAT, "DICT with an odd number of items");
        goto out;
      }
      if (!(v = pv_new(&vm, PV_DICT))) {
        rc = err->code;
        goto out;
      }
      for (size_t k = 0; k < cnt; k++) pv_append(v, vm.st[first + k]);
      rc = push(&vm, v);
      break;
    case 'a':  // APPEND
      if (!(w = pop(&vm)) || !(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_LIST) pv_append(c, w);
      else if (c->kind != PV_OPAQUE) rc = VM_ERR(&vm, PS_EFORMAT, "APPEND to a %s", kind_name(c->kind));
      break;
    case 'e':  // APPENDS
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (!(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_LIST)
        for (size_t k = 0; k < cnt; k++) pv_append(c, vm.st[first + k]);
      else if (c->kind != PV_OPAQUE) rc = VM_ERR(&vm, PS_EFORMAT, "APPENDS to a %s", kind_name(c->kind));
      break;
    case 's':  // SETITEM
      if (!(w = pop(&vm)) || !(v = pop(&vm)) || !(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_DICT) {
        pv_append(c, v);
        pv_append(c, w);
      } else if (c->kind != PV_OPAQUE) {
        rc = VM_ERR(&vm, PS_EFORMAT, "SETITEM on a %s", kind_name(c->kind));
      }
      break;
    case 'u':  // SETITEMS
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (cnt % 2) {
        rc = VM_ERR(&vm, PS_EFORMAT, "SETITEMS with an odd number of items");
        goto out;
      }
      if (!(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_DICT)
        for (size_t k = 0; k < cnt; k++) pv_append(c, vm.st[first + k]);
      else if (c->kind != PV_OPAQUE) rc = VM_ERR(&vm, PS_EFORMAT, "SETITEMS on a %s", kind_name(c->kind));
      break;
    case 'R':
      rc = op_reduce(&vm);
      break;
    case 'b':  // BUILD: state is dropped (tensors and dicts need none here)
      if (!(w = pop(&vm)) || !top(&vm)) rc = err->code;
      break;
    case 0x81:  // NEWOBJ cls args -> opaque
      if (!(w = pop(&vm)) || !(v = pop(&vm))) {
        rc = err->code;
        goto out;
      }
      rc = push(&vm, pv_new(&vm, PV_OPAQUE));
      break;
    case '0':  // POP
      if (vm.sn > stack_base(&vm)) vm.sn--;
      else rc = pop_mark(&vm, &first, &cnt);
      break;
    case '1':  // POP_MARK
      rc = pop_mark(&vm, &first, &cnt);
      break;
    case '2':  // DUP
      if (!(v = top(&vm))) rc = err->code;
      else rc = push(&vm, v);
      break;
    default:
      rc = VM_ERR(&vm, PS_EUNSUPP, "unknown or unsupported pickle opcode 0x%02x ('%c')", op,
                  op >= 32 && op < 127 ? op : '?');
      break;
    }
    if (rc < 0) goto out;
  }
out:
  free(vm.st);
  free(vm.mk);
  free(vm.memo);
  return rc;
}

// ---- extract.py structure ---------------------------------------------------------------------
static pv_t *dict_get(const pv_t *d, const char *key) {
  for (size_t k = d->n; k >= 2; k -= 2)  // last assignment wins, as in Python
    if (str_is(d->items[k - 2], key)) return d->items[k - 1];
  return NULL;
}

static int layer_cmp(const void *a, const void *b) {
  const layer_ref_t *x = a, *y = b;
  if (x->layer != y->layer) return (x->layer > y->layer) - (x->layer < y->layer);
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static int collect_layers(pt_file_t *f, const pv_t *root, pt_repr_t which, ps_err_t *err) {
  int w = which == PT_REPR_MEAN;
  const char *name = pt_repr_name(which);
  pv_t *d = dict_get(root, name);
  if (!d || d->kind == PV_NONE) return 0;
  if (d->kind != PV_DICT)
    return ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: \"%s\" is a %s, not a dict", f->path, f->pkl_name, d->pos,
                      name, kind_name(d->kind));
  f->has[w] = 1;
  size_t n = d->n / 2;
  layer_ref_t *r = ps_xcalloc(n ? n : 1, sizeof *r);
  size_t m = 0;
  for (size_t k = 0; k < n; k++) {
    pv_t *key = d->items[2 * k], *val = d->items[2 * k + 1];
    if (key->kind != PV_INT || key->i < INT_MIN || key->i > INT_MAX) {
      free(r);
      return ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: a key of \"%s\" is a %s, not an int layer", f->path,
                        f->pkl_name, key->pos, name, kind_name(key->kind));
    }
    if (val->kind != PV_TENSOR) {
      char mb[80], gb[80];
      free(r);
      if (val->kind == PV_OPAQUE && val->s)
        return ps_err_set(err, PS_EUNSUPP, "%s: %s byte %zu: %s[%lld] is made by %s.%s, not a tensor this reader knows",
                          f->path, f->pkl_name, val->pos, name, (long long)key->i, show(val->s, val->len, mb, sizeof mb),
                          show(val->s2, val->len2, gb, sizeof gb));
      return ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: %s[%lld] is a %s, not a tensor", f->path, f->pkl_name,
                        val->pos, name, (long long)key->i, kind_name(val->kind));
    }
    r[k].layer = (int)key->i;
    r[k].seq = k;
    r[k].t = val;
  }
  qsort(r, n, sizeof *r, layer_cmp);
  for (size_t k = 0; k < n; k++) {  // keep the last of each run of equal layers
    if (m && r[m - 1].layer == r[k].layer) m--;
    r[m++] = r[k];
  }
  f->refs[w] = r;
  f->n_layers[w] = m;
  f->layers[w] = ps_xcalloc(m ? m : 1, sizeof(int));
  for (size_t j = 0; j < m; j++) f->layers[w][j] = r[j].layer;
  return 0;
}

int pt_file_open(pt_file_t **out, const char *path, ps_err_t *err) {
  ps_err_t local;
  if (!err) err = &local;  // the interpreter reads err->code
  *out = NULL;
  pt_file_t *f = ps_xcalloc(1, sizeof *f);
  f->fd = -1;
  f->path = ps_xstrdup(path);
  int rc;
  char nb[200];
  struct stat st;
  if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = ps_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: not a regular file", path);
    goto fail;
  }
  f->size = (uint64_t)st.st_size;
  if ((rc = zip_read_cdir(f, err)) < 0) goto fail;
  size_t al = strlen(f->archive);
  f->pkl_name = ps_xmalloc(al + 16);
  snprintf(f->pkl_name, al + 16, "%s/data.pkl", f->archive);
  char *ename = ps_xmalloc(al + 32);
  snprintf(ename, al + 32, "%s/byteorder", f->archive);
  zent_t *bo = find_entry(f, ename);
  free(ename);
  if (bo) {
    uint8_t *b = NULL;
    size_t bl = 0;
    if ((rc = zip_read_all(f, bo, 64, &b, &bl, err)) < 0) goto fail;
    int little = !strcmp((char *)b, "little");
    free(b);
    if (!little) {
      rc = ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s/byteorder': only little-endian files are supported", path,
                      show(f->archive, al, nb, sizeof nb));
      goto fail;
    }
  }
  zent_t *pk = find_entry(f, f->pkl_name);
  if (!pk) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: no zip entry '%s': not a torch.save archive", path,
                    show(f->pkl_name, strlen(f->pkl_name), nb, sizeof nb));
    goto fail;
  }
  if ((rc = zip_read_all(f, pk, PT_MAX_PICKLE_BYTES, &f->pkl, &f->pkl_len, err)) < 0) goto fail;
  pv_t *root = NULL;
  if ((rc = run_pickle(f, &root, err)) < 0) goto fail;
  if (root->kind != PV_DICT) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s: the saved object is a %s, not extract.py's dict", path, f->pkl_name,
                    kind_name(root->kind));
    goto fail;
  }
  pv_t *label = dict_get(root, "label");
  if (!label || label->kind != PV_STR) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s: no \"label\" string (not an extract.py file)", path, f->pkl_name);
    goto fail;
  }
  if (label->len == 0 || memchr(label->s, 0, label->len)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: \"label\" is empty or holds a NUL byte", path, f->pkl_name,
                    label->pos);
    goto fail;
  }
  f->label = ps_xmalloc(label->len + 1);
  memcpy(f->label, label->s, label->len);
  f->label[label->len] = 0;
  if ((rc = collect_layers(f, root, PT_REPR_PER_RESIDUE, err)) < 0) goto fail;
  if ((rc = collect_layers(f, root, PT_REPR_MEAN, err)) < 0) goto fail;
  *out = f;
  return 0;
fail:
  pt_file_destroy(&f);
  return rc;
}

// ---- tensors -------------------------------------------------------------------------------------
static void list_layers(const pt_file_t *f, int w, char *buf, size_t cap) {
  size_t o = 0;
  buf[0] = 0;
  if (!f->n_layers[w]) {
    snprintf(buf, cap, "%s", f->has[w] ? "none (the dict is empty)" : "none (no such dict)");
    return;
  }
  for (size_t j = 0; j < f->n_layers[w] && o + 16 < cap; j++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%d", j ? ", " : "", f->layers[w][j]);
}

static int find_tensor(const pt_file_t *f, pt_repr_t which, int layer, pv_t **t, ps_err_t *err) {
  int w = which == PT_REPR_MEAN;
  for (size_t j = 0; j < f->n_layers[w]; j++) {
    if (f->refs[w][j].layer == layer) {
      *t = f->refs[w][j].t;
      return 0;
    }
  }
  char lb[256];
  list_layers(f, w, lb, sizeof lb);
  return ps_err_set(err, PS_ENOTFOUND, "%s: layer %d not in %s; layers present: %s", f->path, layer,
                    pt_repr_name(which), lb);
}

static void fill_info(const pv_t *t, pt_tensor_info_t *info) {
  memset(info, 0, sizeof *info);
  info->dtype = t->storage->dtype;
  info->dtype_name = t->storage->dtype_name;
  if (!info->dtype_name) info->dtype_name = "unknown";
  info->ndim = t->ndim;
  uint64_t n = 1;
  for (int k = 0; k < t->ndim; k++) {
    info->shape[k] = (uint64_t)t->size[k];
    if (n && info->shape[k] > UINT64_MAX / n) n = UINT64_MAX;  // saturate: caught by the size checks
    else n *= info->shape[k];
  }
  info->numel = n;
}

int pt_file_tensor_info(const pt_file_t *f, pt_repr_t which, int layer, pt_tensor_info_t *info, ps_err_t *err) {
  pv_t *t;
  int rc = find_tensor(f, which, layer, &t, err);
  if (rc < 0) return rc;
  fill_info(t, info);
  return 0;
}

typedef struct {
  float *out;
  size_t done;
  pt_dtype_t dtype;
} conv_sink_t;

static int conv_sink(void *ctx, const uint8_t *p, size_t n) {
  conv_sink_t *c = ctx;
  float *o = c->out + c->done;
  size_t k;
  switch (c->dtype) {
  case PT_DTYPE_F32:
    for (k = 0; k < n / 4; k++) {
      uint32_t b = rd32(p + 4 * k);
      memcpy(&o[k], &b, 4);
    }
    break;
  case PT_DTYPE_F16:
    for (k = 0; k < n / 2; k++) o[k] = emb_half_to_float(rd16(p + 2 * k));
    break;
  case PT_DTYPE_BF16:
    for (k = 0; k < n / 2; k++) o[k] = emb_bf16_to_float(rd16(p + 2 * k));
    break;
  default:
    for (k = 0; k < n / 8; k++) {
      uint64_t b = rd64(p + 8 * k);
      double d;
      memcpy(&d, &b, 8);
      o[k] = (float)d;
    }
    break;
  }
  c->done += k;
  return 0;
}

int pt_file_read_tensor(pt_file_t *f, pt_repr_t which, int layer, float *out, size_t cap, ps_err_t *err) {
  pv_t *t;
  int rc = find_tensor(f, which, layer, &t, err);
  if (rc < 0) return rc;
  const char *P = f->path, *W = pt_repr_name(which);
  const pv_t *s = t->storage;
  char kb[80];
  const char *K = show(s->s, s->len, kb, sizeof kb);
  pt_tensor_info_t info;
  fill_info(t, &info);
  if (s->dtype == PT_DTYPE_OTHER)
    return ps_err_set(err, PS_EUNSUPP, "%s: %s[%d] (%s byte %zu) has dtype %s; a float tensor is expected", P, W, layer,
                      f->pkl_name, t->pos, info.dtype_name);
  if (info.numel > PT_MAX_TENSOR_FLOATS)
    return ps_err_set(err, PS_EUNSUPP, "%s: %s[%d] (%s byte %zu) has %llu elements (at most %llu)", P, W, layer,
                      f->pkl_name, t->pos, (unsigned long long)info.numel, (unsigned long long)PT_MAX_TENSOR_FLOATS);
  if (info.numel == 0) return 0;
  int64_t expect = 1;  // row-major strides; axes of length 1 may have any stride
  for (int k = t->ndim - 1; k >= 0; k--) {
    if (t->size[k] != 1 && t->stride[k] != expect) {
      char sb[200];
      size_t o = 0;
      for (int j = 0; j < t->ndim && o + 24 < sizeof sb; j++)
        o += (size_t)snprintf(sb + o, sizeof sb - o, "%s%lld", j ? ", " : "", (long long)t->stride[j]);
      return ps_err_set(err, PS_EUNSUPP,
                        "%s: %s[%d] (%s byte %zu) is not contiguous (stride (%s)); save a .contiguous() copy", P, W,
                        layer, f->pkl_name, t->pos, sb);
    }
    expect *= t->size[k];
  }
  if ((uint64_t)t->offset > s->numel || info.numel > s->numel - (uint64_t)t->offset)
    return ps_err_set(err, PS_ETRUNC,
                      "%s: %s[%d] (%s byte %zu) needs elements [%lld, %llu) of storage '%s', which holds %llu", P, W,
                      layer, f->pkl_name, t->pos, (long long)t->offset,
                      (unsigned long long)((uint64_t)t->offset + info.numel), K, (unsigned long long)s->numel);
  size_t al = strlen(f->archive);
  char *ename = ps_xmalloc(al + s->len + 8);
  memcpy(ename, f->archive, al);
  memcpy(ename + al, "/data/", 6);
  memcpy(ename + al + 6, s->s, s->len);
  ename[al + 6 + s->len] = 0;
  zent_t *z = find_entry(f, ename);
  free(ename);
  if (!z)
    return ps_err_set(err, PS_ENOTFOUND, "%s: %s[%d] (%s byte %zu): storage '%s' (zip entry '%s/data/%s') is missing",
                      P, W, layer, f->pkl_name, t->pos, K, f->archive, K);
  if (s->numel > UINT64_MAX / s->esize || z->usize < s->numel * s->esize)
    return ps_err_set(err, PS_ETRUNC,
                      "%s: %s[%d]: storage '%s' declares %llu %s elements but its zip entry holds %llu bytes", P, W,
                      layer, K, (unsigned long long)s->numel, info.dtype_name, (unsigned long long)z->usize);
  if (info.numel > cap)  // after the file's own checks: cap = 0 validates without reading
    return ps_err_set(err, PS_EDIM, "%s: %s[%d] has %llu elements; room for %zu given", P, W, layer,
                      (unsigned long long)info.numel, cap);
  conv_sink_t cs = {out, 0, s->dtype};
  uint64_t off = (uint64_t)t->offset * s->esize, n = info.numel * s->esize;
  // read the whole entry when the tensor covers it (so its CRC is checked)
  if (off == 0 && n == z->usize) return zip_stream(f, z, 0, n, conv_sink, &cs, err);
  return zip_stream(f, z, off, n, conv_sink, &cs, err);
}

// ---- the embedding source ---------------------------------------------------------------------
typedef struct pt_source {
  emb_source_t base;
  char *root;         // opts.path
  int is_dir;
  char **files;       // full paths, sorted by the part below root
  size_t n_files, cap_files, pos;
  size_t rel;         // files[i] + rel = path below root (or the base name of a single file)
  int layer;          // resolved
  uint32_t dim;       // of the first record, 0 before
  float *rows;
  size_t rows_cap;
  char *id;
  size_t id_cap;
} pt_source_t;

static void pt_destroy(emb_source_t *s) {
  pt_source_t *p = (pt_source_t *)s;
  for (size_t i = 0; i < p->n_files; i++) free(p->files[i]);
  free(p->files);
  free(p->rows);
  free(p->id);
  free(p->root);
  free(p);
}

static int64_t pt_count(emb_source_t *s) { return (int64_t)((pt_source_t *)s)->n_files; }

static int pt_skip(emb_source_t *s, uint64_t n, ps_err_t *err) {
  pt_source_t *p = (pt_source_t *)s;
  if (n > p->n_files - p->pos)
    return ps_err_set(err, PS_ETRUNC, "%s: cannot skip to record %llu: %zu .pt files", p->root,
                      (unsigned long long)(p->pos + n), p->n_files);
  p->pos += (size_t)n;
  return 0;
}

// Which dict holds this file's record at the source's level.
static pt_repr_t pick_repr(const pt_source_t *p, const pt_file_t *f, int layer) {
  if (p->base.opts.level == EMB_LEVEL_RESIDUE) return PT_REPR_PER_RESIDUE;
  const int *ls;
  size_t n = pt_file_layers(f, PT_REPR_MEAN, &ls);
  for (size_t j = 0; j < n; j++)
    if (ls[j] == layer) return PT_REPR_MEAN;
  return PT_REPR_PER_RESIDUE;
}

static int check_label(const pt_source_t *p, const char *path, const pt_file_t *f, char *id, size_t id_cap,
                       ps_err_t *err) {
  const char *label = pt_file_label(f);
  pt_label_id(label, id, id_cap);
  if (!*id) return ps_err_set(err, PS_EFORMAT, "%s: the label is blank", path);
  if (!p->is_dir && !ends_with_pt(path)) return 0;
  const char *rel = path + p->rel;
  size_t sl = strlen(rel) - 3;  // without ".pt"
  if ((strlen(label) == sl && !memcmp(rel, label, sl)) || (strlen(id) == sl && !memcmp(rel, id, sl))) return 0;
  char lb[200], sb[200];
  return ps_err_set(err, PS_EMISMATCH,
                    "%s: label '%s' does not match the file name '%s' (extract.py names each file LABEL.pt)", path,
                    show(label, strlen(label), lb, sizeof lb), show(rel, sl, sb, sizeof sb));
}

static int pt_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err) {
  pt_source_t *p = (pt_source_t *)s;
  if (p->pos >= p->n_files) return 0;
  const char *path = p->files[p->pos];
  pt_file_t *f = NULL;
  char idb[1024];
  int rc = pt_file_open(&f, path, err);
  if (rc < 0) return rc;
  if ((rc = check_label(p, path, f, idb, sizeof idb, err)) < 0) goto out;
  pt_repr_t which = pick_repr(p, f, p->layer);
  pt_tensor_info_t info;
  if ((rc = pt_file_tensor_info(f, which, p->layer, &info, err)) < 0) goto out;
  uint32_t n_rows, dim;
  if (which == PT_REPR_MEAN) {
    if (info.ndim != 1) {
      rc = ps_err_set(err, PS_EDIM, "%s: mean_representations[%d] has %d dimensions; [d] expected", path, p->layer,
                      info.ndim);
      goto out;
    }
    n_rows = 1;
    dim = info.shape[0] > UINT32_MAX ? 0 : (uint32_t)info.shape[0];
  } else {
    if (info.ndim != 2) {
      rc = ps_err_set(err, PS_EDIM, "%s: representations[%d] has %d dimensions; [L, d] expected", path, p->layer,
                      info.ndim);
      goto out;
    }
    if (info.shape[0] > UINT32_MAX || info.shape[1] > UINT32_MAX) {
      rc = ps_err_set(err, PS_EDIM, "%s: representations[%d] is too large", path, p->layer);
      goto out;
    }
    n_rows = (uint32_t)info.shape[0];
    dim = (uint32_t)info.shape[1];
  }
  if (dim == 0) {
    rc = ps_err_set(err, PS_EDIM, "%s: %s[%d]: dimension 0", path, pt_repr_name(which), p->layer);
    goto out;
  }
  if (n_rows == 0 && p->base.opts.level == EMB_LEVEL_PROTEIN) {
    rc = ps_err_set(err, PS_EDIM, "%s: representations[%d] has no rows to pool (and no mean_representations[%d])",
                    path, p->layer, p->layer);
    goto out;
  }
  if (p->dim && dim != p->dim) {
    rc = ps_err_set(err, PS_EDIM, "%s: %s[%d] has dimension %u; the first file's is %u", path, pt_repr_name(which),
                    p->layer, dim, p->dim);
    goto out;
  }
  size_t nv = (size_t)n_rows * dim;
  if (nv > PT_MAX_TENSOR_FLOATS) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: %s[%d] has %zu elements (at most %llu)", path, pt_repr_name(which), p->layer,
                    nv, (unsigned long long)PT_MAX_TENSOR_FLOATS);
    goto out;
  }
  if (nv) {  // validate against the file before allocating what its pickle claims
    rc = pt_file_read_tensor(f, which, p->layer, NULL, 0, err);
    if (rc != PS_EDIM) {
      if (rc == 0) rc = ps_err_set(err, PS_ESTATE, "%s: %s[%d]: internal size mismatch", path, pt_repr_name(which), p->layer);
      goto out;
    }
    ps_err_clear(err);
  }
  if (nv > p->rows_cap) {
    free(p->rows);
    p->rows = ps_xmalloc(nv * sizeof(float));
    p->rows_cap = nv;
  }
  if (nv && (rc = pt_file_read_tensor(f, which, p->layer, p->rows, p->rows_cap, err)) < 0) goto out;
  if (!p->base.opts.allow_nonfinite) {
    for (size_t k = 0; k < nv; k++) {
      if (!isfinite(p->rows[k])) {
        rc = ps_err_set(err, PS_ENAN, "%s: %s[%d]: %s at row %zu, column %zu (record %zu, id %s)", path,
                        pt_repr_name(which), p->layer, isnan(p->rows[k]) ? "NaN" : "Inf", k / dim, k % dim, p->pos,
                        idb);
        goto out;
      }
    }
  }
  size_t il = strlen(idb) + 1;
  if (il > p->id_cap) {
    p->id = ps_xrealloc(p->id, il);
    p->id_cap = il;
  }
  memcpy(p->id, idb, il);
  p->dim = dim;
  p->pos++;
  rec->id = p->id;
  rec->n_rows = n_rows;
  rec->dim = dim;
  rec->rows = p->rows;
  rc = 1;
out:
  pt_file_destroy(&f);
  return rc;
}

static const emb_source_vt pt_vt = {"pt", pt_next, pt_skip, pt_destroy, pt_count};

// Every path is root + "/" + relative path: comparing whole paths orders the relative parts.
static int file_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void add_file(pt_source_t *p, const char *path) {
  if (p->n_files == p->cap_files) {
    p->cap_files = p->cap_files ? p->cap_files * 2 : 64;
    p->files = ps_xrealloc(p->files, p->cap_files * sizeof *p->files);
  }
  p->files[p->n_files++] = ps_xstrdup(path);
}

static int scan_dir(pt_source_t *p, const char *dir, int depth, ps_err_t *err) {
  DIR *d = opendir(dir);
  if (!d) return ps_err_set(err, -errno, "%s: cannot list: %s", dir, strerror(errno));
  int rc = 0;
  struct dirent *e;
  size_t dl = strlen(dir);
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t nl = strlen(e->d_name);
    char *full = ps_xmalloc(dl + nl + 2);
    memcpy(full, dir, dl);
    full[dl] = '/';
    memcpy(full + dl + 1, e->d_name, nl + 1);
    struct stat ls, st;
    if (lstat(full, &ls) == 0) {
      if (S_ISDIR(ls.st_mode)) {
        if (depth >= MAX_DIR_DEPTH) rc = ps_err_set(err, PS_EUNSUPP, "%s: directories nested too deeply", full);
        else rc = scan_dir(p, full, depth + 1, err);
      } else if (ends_with_pt(e->d_name) && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
        add_file(p, full);
      }
    }
    free(full);
    if (rc < 0) break;
  }
  closedir(d);
  return rc;
}

int pt_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err) {
  *out = NULL;
  if (!opts || !opts->path) return ps_err_set(err, PS_ECONFIG, "pt source: no path given");
  pt_source_t *p = ps_xcalloc(1, sizeof *p);
  p->base.vt = &pt_vt;
  p->base.opts = *opts;
  p->root = ps_xstrdup(opts->path);
  pt_file_t *f = NULL;
  int rc;
  struct stat st;
  if (stat(p->root, &st) < 0) {
    rc = ps_err_set(err, -errno, "%s: %s", p->root, strerror(errno));
    goto fail;
  }
  if (S_ISDIR(st.st_mode)) {
    p->is_dir = 1;
    size_t rl = strlen(p->root);
    while (rl > 1 && p->root[rl - 1] == '/') p->root[--rl] = 0;
    p->rel = rl + 1;
    if ((rc = scan_dir(p, p->root, 0, err)) < 0) goto fail;
    if (!p->n_files) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: no .pt files in this directory", p->root);
      goto fail;
    }
    qsort(p->files, p->n_files, sizeof *p->files, file_cmp);
  } else {
    add_file(p, p->root);
    const char *slash = strrchr(p->root, '/');
    p->rel = slash ? (size_t)(slash - p->root) + 1 : 0;
  }
  // the first file fixes the layer (and fails early when unreadable)
  if ((rc = pt_file_open(&f, p->files[0], err)) < 0) goto fail;
  int want = opts->layer;
  if (want < 0) {
    const int *ls;
    size_t n = pt_file_layers(f, PT_REPR_PER_RESIDUE, &ls);
    int best = INT_MIN;
    for (size_t j = 0; j < n; j++) best = ls[j] > best ? ls[j] : best;
    if (opts->level == EMB_LEVEL_PROTEIN) {
      n = pt_file_layers(f, PT_REPR_MEAN, &ls);
      for (size_t j = 0; j < n; j++) best = ls[j] > best ? ls[j] : best;
    }
    if (best == INT_MIN) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: no layers in %s", p->files[0],
                      opts->level == EMB_LEVEL_PROTEIN ? "representations or mean_representations"
                                                       : "representations (residue level needs extract.py "
                                                         "--include per_tok)");
      goto fail;
    }
    want = best;
  }
  p->layer = want;
  pt_tensor_info_t info;
  if ((rc = pt_file_tensor_info(f, pick_repr(p, f, want), want, &info, err)) < 0) goto fail;
  pt_file_destroy(&f);
  *out = &p->base;
  return 0;
fail:
  pt_file_destroy(&f);
  pt_destroy(&p->base);
  return rc;
}

// ---- writer ---------------------------------------------------------------------------------------
typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf_t;

static void b_put(buf_t *b, const void *x, size_t n) {
  if (b->n + n > b->cap) {
    while (b->n + n > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
    b->p = ps_xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, x, n);
  b->n += n;
}
static void b_u8(buf_t *b, uint8_t x) { b_put(b, &x, 1); }
static void b_u16(buf_t *b, uint16_t x) {
  uint8_t t[2] = {(uint8_t)x, (uint8_t)(x >> 8)};
  b_put(b, t, 2);
}
static void b_u32(buf_t *b, uint32_t x) {
  uint8_t t[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
  b_put(b, t, 4);
}
static void b_u64(buf_t *b, uint64_t x) {
  b_u32(b, (uint32_t)x);
  b_u32(b, (uint32_t)(x >> 32));
}

// The pickle, as CPython's C pickler (protocol 2) writes torch.save's objects.
typedef struct pkw {
  buf_t b;
  uint32_t memo;  // next memo index
  int64_t m_rebuild, m_storage, m_type, m_cpu, m_od;
} pkw_t;

static void pk_put(pkw_t *w) {
  if (w->memo < 256) {
    b_u8(&w->b, 'q');
    b_u8(&w->b, (uint8_t)w->memo);
  } else {
    b_u8(&w->b, 'r');
    b_u32(&w->b, w->memo);
  }
  w->memo++;
}
static void pk_get(pkw_t *w, int64_t idx) {
  if (idx < 256) {
    b_u8(&w->b, 'h');
    b_u8(&w->b, (uint8_t)idx);
  } else {
    b_u8(&w->b, 'j');
    b_u32(&w->b, (uint32_t)idx);
  }
}
static void pk_int(pkw_t *w, int64_t x) {
  if (x >= 0 && x <= 0xff) {
    b_u8(&w->b, 'K');
    b_u8(&w->b, (uint8_t)x);
  } else if (x >= 0 && x <= 0xffff) {
    b_u8(&w->b, 'M');
    b_u16(&w->b, (uint16_t)x);
  } else if (x >= INT32_MIN && x <= INT32_MAX) {
    b_u8(&w->b, 'J');
    b_u32(&w->b, (uint32_t)(int32_t)x);
  } else {  // LONG1: minimal two's complement
    uint8_t t[8];
    int n = 8;
    for (int k = 0; k < 8; k++) t[k] = (uint8_t)((uint64_t)x >> (8 * k));
    while (n > 1 && ((t[n - 1] == 0 && !(t[n - 2] & 0x80)) || (t[n - 1] == 0xff && (t[n - 2] & 0x80)))) n--;
    b_u8(&w->b, 0x8a);
    b_u8(&w->b, (uint8_t)n);
    b_put(&w->b, t, (size_t)n);
  }
}
static void pk_str(pkw_t *w, const char *s) {  // BINUNICODE + BINPUT
  size_t n = strlen(s);
  b_u8(&w->b, 'X');
  b_u32(&w->b, (uint32_t)n);
  b_put(&w->b, s, n);
  pk_put(w);
}
static void pk_str_once(pkw_t *w, const char *s, int64_t *memo) {
  if (*memo >= 0) {
    pk_get(w, *memo);
    return;
  }
  *memo = w->memo;
  pk_str(w, s);
}
static void pk_global_once(pkw_t *w, const char *mod, const char *name, int64_t *memo) {
  if (*memo >= 0) {
    pk_get(w, *memo);
    return;
  }
  b_u8(&w->b, 'c');
  b_put(&w->b, mod, strlen(mod));
  b_u8(&w->b, '\n');
  b_put(&w->b, name, strlen(name));
  b_u8(&w->b, '\n');
  *memo = w->memo;
  pk_put(w);
}
static void pk_tuple_ints(pkw_t *w, const int64_t *v, int n) {
  if (n == 0) {
    b_u8(&w->b, ')');
    return;
  }
  if (n > 3) b_u8(&w->b, '(');
  for (int k = 0; k < n; k++) pk_int(w, v[k]);
  b_u8(&w->b, n > 3 ? 't' : (uint8_t)(0x84 + n));
  pk_put(w);
}

// torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())
static void pk_tensor(pkw_t *w, const char *storage_type, uint64_t key, uint64_t numel, const int64_t *size, int ndim) {
  int64_t stride[2];
  int64_t acc = 1;
  for (int k = ndim - 1; k >= 0; k--) {
    stride[k] = acc;
    acc *= size[k];
  }
  char ks[24];
  snprintf(ks, sizeof ks, "%llu", (unsigned long long)key);
  pk_global_once(w, "torch._utils", "_rebuild_tensor_v2", &w->m_rebuild);
  b_u8(&w->b, '(');
  b_u8(&w->b, '(');
  pk_str_once(w, "storage", &w->m_storage);
  pk_global_once(w, "torch", storage_type, &w->m_type);
  pk_str(w, ks);
  pk_str_once(w, "cpu", &w->m_cpu);
  pk_int(w, (int64_t)numel);
  b_u8(&w->b, 't');
  pk_put(w);
  b_u8(&w->b, 'Q');
  pk_int(w, 0);
  pk_tuple_ints(w, size, ndim);
  pk_tuple_ints(w, stride, ndim);
  b_u8(&w->b, 0x89);
  pk_global_once(w, "collections", "OrderedDict", &w->m_od);
  b_u8(&w->b, ')');
  b_u8(&w->b, 'R');
  pk_put(w);
  b_u8(&w->b, 't');
  pk_put(w);
  b_u8(&w->b, 'R');
  pk_put(w);
}

// {layer: tensor} in batches of 1000 as the pickler does; storage keys from *key on.
static void pk_layer_dict(pkw_t *w, const char *storage_type, const int *layers, size_t n, uint64_t *key,
                          uint64_t numel, const int64_t *size, int ndim) {
  b_u8(&w->b, '}');
  pk_put(w);
  for (size_t s = 0; s < n; s += 1000) {
    size_t m = n - s < 1000 ? n - s : 1000;
    if (m > 1) b_u8(&w->b, '(');
    for (size_t k = s; k < s + m; k++) {
      pk_int(w, layers[k]);
      pk_tensor(w, storage_type, (*key)++, numel, size, ndim);
    }
    b_u8(&w->b, m > 1 ? 'u' : 's');
  }
}

static int utf8_ok(const unsigned char *s) {
  while (*s) {
    unsigned c = *s;
    int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0 || (n == 1 && c < 0xc2) || (c == 0xf0 && n == 3 && (s[1] & 0xf0) == 0x80) ||
        (c == 0xe0 && n == 2 && s[1] < 0xa0) || c > 0xf4)
      return 0;
    for (int k = 1; k <= n; k++)
      if ((s[k] & 0xc0) != 0x80) return 0;
    s += n + 1;
  }
  return 1;
}

typedef struct zw {
  FILE *fp;
  uint64_t pos;
  int failed;
} zw_t;

static void zw_put(zw_t *z, const void *p, size_t n) {
  if (z->failed) return;
  if (n && fwrite(p, 1, n, z->fp) != n) z->failed = errno ? errno : EIO;
  z->pos += n;
}

typedef struct zrec {
  char *name;
  uint32_t crc, size;
  uint64_t lho;
} zrec_t;

// Local header with torch's "FB" padding field so the data starts at a multiple of 64.
static void zw_local(zw_t *z, zrec_t *r) {
  buf_t b = {0};
  size_t nl = strlen(r->name);
  size_t pad = (64 - (size_t)((z->pos + 30 + nl + 4) % 64)) % 64;
  r->lho = z->pos;
  b_u32(&b, 0x04034b50);
  b_u16(&b, 0);       // version needed
  b_u16(&b, 0x0808);  // data descriptor follows, UTF-8 names
  b_u16(&b, 0);       // stored
  b_u16(&b, 0);       // time
  b_u16(&b, 0);       // date
  b_u32(&b, 0);
  b_u32(&b, 0);
  b_u32(&b, 0);
  b_u16(&b, (uint16_t)nl);
  b_u16(&b, (uint16_t)(4 + pad));
  b_put(&b, r->name, nl);
  b_put(&b, "FB", 2);
  b_u16(&b, (uint16_t)pad);
  for (size_t k = 0; k < pad; k++) b_u8(&b, 'Z');
  zw_put(z, b.p, b.n);
  free(b.p);
}

static void zw_descriptor(zw_t *z, const zrec_t *r) {
  buf_t b = {0};
  b_u32(&b, 0x08074b50);
  b_u32(&b, r->crc);
  b_u32(&b, r->size);
  b_u32(&b, r->size);
  zw_put(z, b.p, b.n);
  free(b.p);
}

static void zw_entry_mem(zw_t *z, zrec_t *r, const void *data, size_t n) {
  zw_local(z, r);
  r->size = (uint32_t)n;
  r->crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)n);
  zw_put(z, data, n);
  zw_descriptor(z, r);
}

static uint16_t float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

static void zw_entry_floats(zw_t *z, zrec_t *r, const float *v, size_t n, pt_dtype_t dt) {
  uint8_t tmp[CHUNK];
  size_t es = dt == PT_DTYPE_F32 ? 4 : 2, per = CHUNK / es;
  uLong crc = crc32(0L, Z_NULL, 0);
  zw_local(z, r);
  for (size_t s = 0; s < n; s += per) {
    size_t m = n - s < per ? n - s : per;
    for (size_t k = 0; k < m; k++) {
      uint32_t x;
      if (dt == PT_DTYPE_F32) {
        memcpy(&x, &v[s + k], 4);
        tmp[4 * k] = (uint8_t)x;
        tmp[4 * k + 1] = (uint8_t)(x >> 8);
        tmp[4 * k + 2] = (uint8_t)(x >> 16);
        tmp[4 * k + 3] = (uint8_t)(x >> 24);
      } else {
        x = dt == PT_DTYPE_F16 ? emb_float_to_half(v[s + k]) : float_to_bf16(v[s + k]);
        tmp[2 * k] = (uint8_t)x;
        tmp[2 * k + 1] = (uint8_t)(x >> 8);
      }
    }
    crc = crc32(crc, tmp, (uInt)(m * es));
    zw_put(z, tmp, m * es);
  }
  r->crc = (uint32_t)crc;
  r->size = (uint32_t)(n * es);
  zw_descriptor(z, r);
}

static void fsync_dir_of(const char *path) {
  char *d = ps_xstrdup(path);
  char *slash = strrchr(d, '/');
  if (slash == d) slash[1] = 0;
  else if (slash) *slash = 0;
  else strcpy(d, ".");
  int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(d);
}

int pt_write_extract_dtype(const char *path, const char *label, const int *layers, size_t n_layers,
                           const float *const *per_residue, const float *const *mean, uint32_t L, uint32_t d,
                           pt_dtype_t dtype, ps_err_t *err) {
  if (!path || !*path) return ps_err_set(err, PS_ECONFIG, "pt writer: no path");
  if (!label || !*label) return ps_err_set(err, PS_ECONFIG, "%s: empty label", path);
  if (!utf8_ok((const unsigned char *)label)) return ps_err_set(err, PS_EFORMAT, "%s: the label is not valid UTF-8", path);
  if (!per_residue && !mean) return ps_err_set(err, PS_ECONFIG, "%s: neither per-residue nor mean tensors given", path);
  if (n_layers == 0 || !layers || d == 0) return ps_err_set(err, PS_ECONFIG, "%s: no layers or dimension 0", path);
  if (dtype != PT_DTYPE_F32 && dtype != PT_DTYPE_F16 && dtype != PT_DTYPE_BF16)
    return ps_err_set(err, PS_EUNSUPP, "%s: the writer stores float32, float16 or bfloat16", path);
  for (size_t i = 0; i < n_layers; i++) {
    for (size_t j = 0; j < i; j++)
      if (layers[i] == layers[j]) return ps_err_set(err, PS_ECONFIG, "%s: layer %d given twice", path, layers[i]);
    if ((per_residue && !per_residue[i]) || (mean && !mean[i]))
      return ps_err_set(err, PS_ECONFIG, "%s: no tensor for layer %d", path, layers[i]);
  }
  size_t es = dtype == PT_DTYPE_F32 ? 4 : 2;
  if ((uint64_t)L * d > UINT32_MAX || n_layers > ((size_t)1 << 20))
    return ps_err_set(err, PS_EUNSUPP, "%s: %zu layers of %u x %u: too large to write", path, n_layers, L, d);
  uint64_t total = 4096 + (uint64_t)n_layers * (512 + 256 + 2 * 64);
  if (per_residue) total += (uint64_t)n_layers * L * d * es;
  if (mean) total += (uint64_t)n_layers * d * es;
  if (total >= UINT32_MAX) return ps_err_set(err, PS_EUNSUPP, "%s: %llu bytes: files of 4 GiB or more are not written", path,
                                             (unsigned long long)total);
  const char *stype = dtype == PT_DTYPE_F32 ? "FloatStorage" : dtype == PT_DTYPE_F16 ? "HalfStorage" : "BFloat16Storage";

  // the archive folder: the file's base name without its extension (as torch 1.x does)
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *bs = strrchr(base, '\\');
  char *arch = ps_xstrdup(bs ? bs + 1 : base);
  char *dot = strrchr(arch, '.');
  if (dot) *dot = 0;
  if (!*arch) {
    free(arch);
    arch = ps_xstrdup("archive");
  }

  // pickle
  pkw_t w;
  memset(&w, 0, sizeof w);
  w.m_rebuild = w.m_storage = w.m_type = w.m_cpu = w.m_od = -1;
  b_u8(&w.b, 0x80);
  b_u8(&w.b, 2);
  b_u8(&w.b, '}');
  pk_put(&w);
  b_u8(&w.b, '(');
  pk_str(&w, "label");
  pk_str(&w, label);
  uint64_t key = 0;
  if (per_residue) {
    int64_t size[2] = {L, d};
    pk_str(&w, "representations");
    pk_layer_dict(&w, stype, layers, n_layers, &key, (uint64_t)L * d, size, 2);
  }
  if (mean) {
    int64_t size[1] = {d};
    pk_str(&w, "mean_representations");
    pk_layer_dict(&w, stype, layers, n_layers, &key, d, size, 1);
  }
  b_u8(&w.b, 'u');
  b_u8(&w.b, '.');

  size_t n_rec = 2 + (size_t)key, al = strlen(arch);
  zrec_t *recs = ps_xcalloc(n_rec, sizeof *recs);
  for (size_t k = 0; k < n_rec; k++) {
    recs[k].name = ps_xmalloc(al + 32);
    if (k == 0) snprintf(recs[k].name, al + 32, "%s/data.pkl", arch);
    else if (k == n_rec - 1) snprintf(recs[k].name, al + 32, "%s/version", arch);
    else snprintf(recs[k].name, al + 32, "%s/data/%zu", arch, k - 1);
  }
  size_t pl = strlen(path);
  char *tmp = ps_xmalloc(pl + 5);
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp", 5);
  int rc = 0;
  zw_t z = {NULL, 0, 0};
  buf_t cd = {0};
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || !(z.fp = fdopen(fd, "wb"))) {
    rc = ps_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
    if (fd >= 0) close(fd);
    goto out;
  }
  zw_entry_mem(&z, &recs[0], w.b.p, w.b.n);
  size_t r = 1;
  if (per_residue)
    for (size_t i = 0; i < n_layers; i++) zw_entry_floats(&z, &recs[r++], per_residue[i], (size_t)L * d, dtype);
  if (mean)
    for (size_t i = 0; i < n_layers; i++) zw_entry_floats(&z, &recs[r++], mean[i], d, dtype);
  zw_entry_mem(&z, &recs[r], "3\n", 2);
  // central directory, zip64 end record and locator, end record
  uint64_t cd_off = z.pos;
  for (size_t k = 0; k < n_rec; k++) {
    size_t nl = strlen(recs[k].name);
    b_u32(&cd, 0x02014b50);
    b_u16(&cd, 0);
    b_u16(&cd, 0);
    b_u16(&cd, 0x0808);
    b_u16(&cd, 0);
    b_u16(&cd, 0);
    b_u16(&cd, 0);
    b_u32(&cd, recs[k].crc);
    b_u32(&cd, recs[k].size);
    b_u32(&cd, recs[k].size);
    b_u16(&cd, (uint16_t)nl);
    b_u16(&cd, 0);
    b_u16(&cd, 0);
    b_u16(&cd, 0);
    b_u16(&cd, 0);
    b_u32(&cd, 0);
    b_u32(&cd, (uint32_t)recs[k].lho);
    b_put(&cd, recs[k].name, nl);
  }
  uint64_t cd_size = cd.n, z64 = cd_off + cd_size;
  b_u32(&cd, 0x06064b50);
  b_u64(&cd, 44);
  b_u16(&cd, 0x031e);
  b_u16(&cd, 0x2d);
  b_u32(&cd, 0);
  b_u32(&cd, 0);
  b_u64(&cd, n_rec);
  b_u64(&cd, n_rec);
  b_u64(&cd, cd_size);
  b_u64(&cd, cd_off);
  b_u32(&cd, 0x07064b50);
  b_u32(&cd, 0);
  b_u64(&cd, z64);
  b_u32(&cd, 1);
  b_u32(&cd, 0x06054b50);
  b_u16(&cd, 0);
  b_u16(&cd, 0);
  b_u16(&cd, (uint16_t)(n_rec > 0xffff ? 0xffff : n_rec));
  b_u16(&cd, (uint16_t)(n_rec > 0xffff ? 0xffff : n_rec));
  b_u32(&cd, (uint32_t)cd_size);
  b_u32(&cd, (uint32_t)cd_off);
  b_u16(&cd, 0);
  zw_put(&z, cd.p, cd.n);
  if (!z.failed && fflush(z.fp) != 0) z.failed = errno;
  if (!z.failed && fsync(fileno(z.fp)) != 0) z.failed = errno;
  if (fclose(z.fp) != 0 && !z.failed) z.failed = errno;
  z.fp = NULL;
  if (z.failed) {
    rc = ps_err_set(err, -z.failed, "%s: write failed at byte %llu: %s", tmp, (unsigned long long)z.pos,
                    strerror(z.failed));
    goto out;
  }
  if (rename(tmp, path) != 0) {
    rc = ps_err_set(err, -errno, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    goto out;
  }
  fsync_dir_of(path);
out:
  if (rc < 0) unlink(tmp);
  for (size_t k = 0; k < n_rec; k++) free(recs[k].name);
  free(recs);
  free(cd.p);
  free(w.b.p);
  free(tmp);
  free(arch);
  return rc;
}

int pt_write_extract(const char *path, const char *label, const int *layers, size_t n_layers,
                     const float *const *per_residue, const float *const *mean, uint32_t L, uint32_t d,
                     ps_err_t *err) {
  return pt_write_extract_dtype(path, label, layers, n_layers, per_residue, mean, L, d, PT_DTYPE_F32, err);
}
