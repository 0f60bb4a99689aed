// zip.c — a torch.save archive through libzip: open with its consistency checks, find entries,
// stream an entry's bytes with bounds, size and CRC-32 checks. See internal.h.
//
// What libzip checks at open (ZIP_CHECKCONS): the end records (zip64 too) and the central
// directory lie inside the file and agree with each other, every local header matches its
// central directory record, every entry's data ends before the central directory, no bytes
// follow the end record. What is checked here: the magic (a legacy bare pickle is named), the
// entry count, duplicate names, the archive folder; per entry: encryption, the method (stored or
// deflate), stored sizes that agree, a deflate ratio deflate can reach (~1032:1, so a small
// entry cannot claim gigabytes), and on a whole read our own CRC-32 and libzip's end-of-entry
// checks. libzip reads the file through a pread source over the size fstat gave at open (one
// descriptor, O_CLOEXEC). Memory: libzip keeps the central directory (~3x its size, and it lies
// inside the file); data is streamed through one 64 KiB buffer.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include "internal.h"

typedef struct zname {
  const char *name;  // libzip's raw bytes, valid while the archive is open
  int64_t idx;
} zname_t;

struct pt_zip {
  char *path;
  zip_t *za;
  zname_t *names;    // sorted by name
  size_t n;
  char *archive;
};

static int name_cmp(const void *a, const void *b) { return strcmp(((const zname_t *)a)->name, ((const zname_t *)b)->name); }

void ptz_close(pt_zip_t **zp) {
  if (!zp || !*zp) return;
  pt_zip_t *z = *zp;
  if (z->za) zip_discard(z->za);
  free(z->names);
  free(z->archive);
  free(z->path);
  free(z);
  *zp = NULL;
}

const char *ptz_archive(const pt_zip_t *z) { return z->archive; }

int64_t ptz_find(const pt_zip_t *z, const char *name) {
  zname_t key = {name, 0};
  const zname_t *e = bsearch(&key, z->names, z->n, sizeof *z->names, name_cmp);
  return e ? e->idx : -1;
}

uint64_t ptz_size(const pt_zip_t *z, int64_t idx) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(z->za, (zip_uint64_t)idx, 0, &st) < 0 || !(st.valid & ZIP_STAT_SIZE)) return 0;
  return st.size;
}

// libzip's open error as ours, naming the file.
static int open_error(const char *P, zip_error_t *ze, ps_err_t *err) {
  const char *why = zip_error_strerror(ze);
  switch (zip_error_code_zip(ze)) {
  case ZIP_ER_NOZIP:
    return ps_err_set(err, PS_ETRUNC,
                      "%s: no zip end-of-central-directory record, or an entry outside the data area (libzip: %s): "
                      "truncated or not a zip", P, why);
  case ZIP_ER_INCONS:
    return ps_err_set(err, PS_EFORMAT,
                      "%s: inconsistent zip archive (libzip: %s): its directory disagrees with a local header or "
                      "with the file's size: truncated or damaged?", P, why);
  case ZIP_ER_MULTIDISK: return ps_err_set(err, PS_EUNSUPP, "%s: multi-disk zip archive", P);
  case ZIP_ER_MEMORY: return ps_err_set(err, PS_ENOMEM, "%s: out of memory reading the zip directory", P);
  case ZIP_ER_READ:
  case ZIP_ER_SEEK: {
    int e = zip_error_code_system(ze);
    return ps_err_set(err, e > 0 ? -e : PS_EFORMAT, "%s: reading the zip directory: %s", P, why);
  }
  default: return ps_err_set(err, PS_EFORMAT, "%s: not a readable zip archive (libzip: %s)", P, why);
  }
}

// The magic: torch.save's zip, or a legacy pickle (named), or neither.
static int check_magic(int fd, const char *P, uint64_t size, ps_err_t *err) {
  uint8_t m[4];
  if (size < 4 || pread(fd, m, 4, 0) != 4)
    return ps_err_set(err, PS_ETRUNC, "%s: %llu bytes: too short for a torch .pt file (a zip archive)", P,
                      (unsigned long long)size);
  if (memcmp(m, "PK\x03\x04", 4)) {
    if (m[0] == 0x80 && m[1] <= 5)
      return ps_err_set(err, PS_EUNSUPP,
                        "%s: byte 0: a bare pickle (torch < 1.6 legacy serialization) is not supported; "
                        "re-save it with torch >= 1.6 (torch.save(torch.load(f), f))", P);
    return ps_err_set(err, PS_EFORMAT,
                      "%s: byte 0: bad magic %02x %02x %02x %02x: not a zip archive (torch.save writes one)", P, m[0],
                      m[1], m[2], m[3]);
  }
  if (size < 22)
    return ps_err_set(err, PS_ETRUNC, "%s: %llu bytes: truncated zip archive (no end record)", P,
                      (unsigned long long)size);
  return 0;
}

// Names: sorted, none twice; the first entry's folder is the archive name.
static int index_names(pt_zip_t *z, ps_err_t *err) {
  const char *P = z->path;
  zip_int64_t n = zip_get_num_entries(z->za, 0);
  if (n <= 0) return ps_err_set(err, PS_EFORMAT, "%s: the zip archive is empty", P);
  if ((uint64_t)n > PT_MAX_ENTRIES)
    return ps_err_set(err, PS_EUNSUPP, "%s: %lld zip entries (at most %llu)", P, (long long)n,
                      (unsigned long long)PT_MAX_ENTRIES);
  z->names = ps_xcalloc((size_t)n, sizeof *z->names);
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zip_get_name(z->za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
    if (!name) return ps_err_set(err, PS_EFORMAT, "%s: zip entry %lld has no name", P, (long long)i);
    z->names[i].name = name;
    z->names[i].idx = i;
  }
  z->n = (size_t)n;
  char nb[160];
  const char *first = z->names[0].name, *slash = strchr(first, '/');
  if (!slash || slash == first)  // torch: every record lives in the folder of the first one
    return ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s' is not in a folder: not a torch.save archive", P,
                      pt_show(first, strlen(first), nb, sizeof nb));
  z->archive = ps_xmalloc((size_t)(slash - first) + 1);
  memcpy(z->archive, first, (size_t)(slash - first));
  z->archive[slash - first] = 0;
  qsort(z->names, z->n, sizeof *z->names, name_cmp);
  for (size_t i = 1; i < z->n; i++)
    if (!strcmp(z->names[i - 1].name, z->names[i].name))
      return ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s' appears twice", P,
                        pt_show(z->names[i].name, strlen(z->names[i].name), nb, sizeof nb));
  return 0;
}

// The file as a libzip source: pread at our own position over the size fstat gave at open (no
// stdio buffer, no fstat or lseek per call). Owns the descriptor.
typedef struct fd_src {
  int fd;
  uint64_t size, pos;
  zip_error_t error;
} fd_src_t;

static zip_int64_t fd_src_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd) {
  fd_src_t *s = ud;
  switch (cmd) {
  case ZIP_SOURCE_OPEN: s->pos = 0; return 0;
  case ZIP_SOURCE_CLOSE: return 0;
  case ZIP_SOURCE_READ: {
    if (s->pos >= s->size) return 0;
    size_t n = len < s->size - s->pos ? (size_t)len : (size_t)(s->size - s->pos);
    ssize_t r;
    while ((r = pread(s->fd, data, n, (off_t)s->pos)) < 0 && errno == EINTR) {}
    if (r < 0) {
      zip_error_set(&s->error, ZIP_ER_READ, errno);
      return -1;
    }
    s->pos += (uint64_t)r;
    return r;
  }
  case ZIP_SOURCE_SEEK: {
    zip_int64_t np = zip_source_seek_compute_offset(s->pos, s->size, data, len, &s->error);
    if (np < 0) return -1;
    s->pos = (uint64_t)np;
    return 0;
  }
  case ZIP_SOURCE_TELL: return (zip_int64_t)s->pos;
  case ZIP_SOURCE_STAT: {
    zip_stat_t *st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len, &s->error);
    if (!st) return -1;
    zip_stat_init(st);
    st->size = s->size;
    st->valid |= ZIP_STAT_SIZE;
    return sizeof *st;
  }
  case ZIP_SOURCE_ERROR: return zip_error_to_data(&s->error, data, len);
  case ZIP_SOURCE_FREE:
    close(s->fd);
    zip_error_fini(&s->error);
    free(s);
    return 0;
  case ZIP_SOURCE_SUPPORTS:
    return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
                                          ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL,
                                          ZIP_SOURCE_SUPPORTS, -1);
  default:
    zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
    return -1;
  }
}

int ptz_open(pt_zip_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ps_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  int rc;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ps_err_set(err, PS_EFORMAT, "%s: not a regular file", path);
  }
  if ((rc = check_magic(fd, path, (uint64_t)st.st_size, err)) < 0) {
    close(fd);
    return rc;
  }
  fd_src_t *fs = ps_xcalloc(1, sizeof *fs);
  fs->fd = fd;
  fs->size = (uint64_t)st.st_size;
  zip_error_init(&fs->error);
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_function_create(fd_src_cb, fs, &ze);  // owns fs (and fd) from here on
  zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
  if (!za) {
    if (src) zip_source_free(src);
    else fd_src_cb(fs, NULL, 0, ZIP_SOURCE_FREE);
    rc = open_error(path, &ze, err);
    zip_error_fini(&ze);
    return rc;
  }
  zip_error_fini(&ze);
  pt_zip_t *z = ps_xcalloc(1, sizeof *z);
  z->path = ps_xstrdup(path);
  z->za = za;
  if ((rc = index_names(z, err)) < 0) {
    ptz_close(&z);
    return rc;
  }
  *out = z;
  return 0;
}

// A libzip error while reading an entry as ours: the file, the entry, what libzip saw.
static int entry_error(ps_err_t *err, const char *P, const char *N, zip_error_t *ze, uint64_t done, uint64_t size) {
  const char *why = zip_error_strerror(ze);
  switch (zip_error_code_zip(ze)) {
  case ZIP_ER_EOF:
    return ps_err_set(err, PS_ETRUNC, "%s: zip entry '%s': data ends after %llu of %llu bytes (libzip: %s): truncated?",
                      P, N, (unsigned long long)done, (unsigned long long)size, why);
  case ZIP_ER_CRC: return ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s': CRC-32 mismatch (libzip: %s)", P, N, why);
  case ZIP_ER_ZLIB:
  case ZIP_ER_COMPRESSED_DATA:
    return ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s': corrupt deflate data after %llu bytes (libzip: %s)", P, N,
                      (unsigned long long)done, why);
  case ZIP_ER_MEMORY: return ps_err_set(err, PS_ENOMEM, "%s: zip entry '%s': out of memory", P, N);
  case ZIP_ER_READ:
  case ZIP_ER_SEEK: {
    int e = zip_error_code_system(ze);
    return ps_err_set(err, e > 0 ? -e : PS_EFORMAT, "%s: reading zip entry '%s': %s", P, N, why);
  }
  default: return ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s': %s", P, N, why);
  }
}

// The entry's own claims, before a byte is read.
static int check_entry(const char *P, const char *N, const zip_stat_t *st, ps_err_t *err) {
  if ((st->valid & ZIP_STAT_ENCRYPTION_METHOD) && st->encryption_method != ZIP_EM_NONE)
    return ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s' is encrypted", P, N);
  if (st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE)
    return ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s': compression method %u (only stored and deflate)", P, N,
                      (unsigned)st->comp_method);
  if (st->comp_method == ZIP_CM_STORE && st->comp_size != st->size)
    return ps_err_set(err, PS_EFORMAT, "%s: stored zip entry '%s' has sizes %llu and %llu", P, N,
                      (unsigned long long)st->comp_size, (unsigned long long)st->size);
  if (st->comp_method == ZIP_CM_DEFLATE && st->size / 1032 > st->comp_size + 1)  // deflate's limit is ~1032:1
    return ps_err_set(err, PS_EFORMAT, "%s: deflated zip entry '%s' claims %llu bytes from %llu", P, N,
                      (unsigned long long)st->size, (unsigned long long)st->comp_size);
  return 0;
}

int ptz_stream(pt_zip_t *z, int64_t idx, uint64_t off, uint64_t n, pt_sink_fn sink, void *ctx, ps_err_t *err) {
  const char *P = z->path;
  char nb[160];
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(z->za, (zip_uint64_t)idx, ZIP_FL_ENC_RAW, &st) < 0)
    return ps_err_set(err, PS_EFORMAT, "%s: zip entry %lld: %s", P, (long long)idx, zip_strerror(z->za));
  const char *N = pt_show(st.name, strlen(st.name), nb, sizeof nb);
  int rc = check_entry(P, N, &st, err);
  if (rc < 0) return rc;
  if (off > st.size || n > st.size - off)
    return ps_err_set(err, PS_ETRUNC, "%s: zip entry '%s' holds %llu bytes; bytes [%llu, %llu) were asked for", P, N,
                      (unsigned long long)st.size, (unsigned long long)off, (unsigned long long)(off + n));
  const int whole = off == 0 && n == st.size;
  zip_file_t *zf = zip_fopen_index(z->za, (zip_uint64_t)idx, 0);
  if (!zf) return entry_error(err, P, N, zip_get_error(z->za), 0, st.size);
  uint8_t *buf = ps_xmalloc(PT_CHUNK);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t pos = 0;  // uncompressed bytes read so far
  if (off && st.comp_method == ZIP_CM_STORE && zip_fseek(zf, (zip_int64_t)off, SEEK_SET) == 0) pos = off;
  while (pos < off + n) {
    uint64_t want = off + n - pos;
    if (pos < off) want = off - pos;  // skipping (deflated, or a seek that failed)
    size_t k = want < PT_CHUNK ? (size_t)want : PT_CHUNK;
    zip_int64_t got = zip_fread(zf, buf, k);
    if (got < 0) {
      rc = entry_error(err, P, N, zip_file_get_error(zf), pos, st.size);
      goto out;
    }
    if (got == 0) {
      rc = ps_err_set(err, PS_ETRUNC, "%s: zip entry '%s': data ends after %llu of %llu bytes", P, N,
                      (unsigned long long)pos, (unsigned long long)st.size);
      goto out;
    }
    if (whole) crc = crc32(crc, buf, (uInt)got);
    if (pos >= off && (rc = sink(ctx, buf, (size_t)got)) < 0) goto out;
    pos += (uint64_t)got;
  }
  if (whole) {
    if ((st.valid & ZIP_STAT_CRC) && (uint32_t)crc != st.crc) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s': CRC-32 %08x, the directory says %08x", P, N, (unsigned)crc,
                      (unsigned)st.crc);
      goto out;
    }
    zip_int64_t more = zip_fread(zf, buf, 1);  // the end: libzip checks its CRC and length here
    if (more < 0) {
      rc = entry_error(err, P, N, zip_file_get_error(zf), pos, st.size);
      goto out;
    }
    if (more > 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: zip entry '%s' holds more than the %llu bytes its directory says", P, N,
                      (unsigned long long)st.size);
      goto out;
    }
  }
  rc = 0;
out:
  zip_fclose(zf);
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

int ptz_read_all(pt_zip_t *z, int64_t idx, uint64_t max, uint8_t **out, size_t *len, ps_err_t *err) {
  *out = NULL;
  uint64_t size = ptz_size(z, idx);
  if (size > max) {
    char nb[160];
    const char *name = zip_get_name(z->za, (zip_uint64_t)idx, ZIP_FL_ENC_RAW);
    return ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s' is %llu bytes (at most %llu accepted)", z->path,
                      pt_show(name, strlen(name), nb, sizeof nb), (unsigned long long)size, (unsigned long long)max);
  }
  mem_sink_t m = {ps_xmalloc((size_t)size + 1), 0};
  int rc = ptz_stream(z, idx, 0, size, mem_sink, &m, err);
  if (rc < 0) {
    free(m.p);
    return rc;
  }
  m.p[m.n] = 0;
  *out = m.p;
  *len = m.n;
  return 0;
}
