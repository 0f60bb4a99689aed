// drop.c — the drop directory of the annotation service (drop.h).
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "drop.h"
#include "io.h"
#include "log.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const char *const fasta_ext[] = {".fasta.gz", ".fa.gz", ".fasta", ".fa", NULL};
static const char *const emb_ext[] = {".npy", ".safetensors", ".h5", NULL};
static const char *const all_ext[] = {".offsets.npy", ".fasta.gz", ".fa.gz", ".fasta", ".fa", ".npy",
                                      ".safetensors", ".h5", ".ids", ".ready", NULL};

static int exists(const char *p) { return access(p, F_OK) == 0; }

static int has_suffix(const char *s, const char *suf) {
  size_t l = strlen(s), k = strlen(suf);
  return l > k && !strcmp(s + l - k, suf);
}

// The stem of a drop-directory file, or 0 when it is not one of ours.
static int file_stem(const char *n, char *stem, size_t cap) {
  if (n[0] == '.') return 0;
  for (int i = 0; all_ext[i]; i++)
    if (has_suffix(n, all_ext[i])) {
      size_t l = strlen(n) - strlen(all_ext[i]);
      if (l >= cap) return 0;
      memcpy(stem, n, l);
      stem[l] = 0;
      return 1;
    }
  return 0;
}

static double age_of(const char *p) {
  struct stat st;
  if (stat(p, &st) != 0) return 1e30;
  return difftime(time(NULL), st.st_mtime);
}

static void describe(const char *dir, const char *name, drop_item_t *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  for (int i = 0; fasta_ext[i] && !p->has_fasta; i++) {
    snprintf(p->fasta, sizeof p->fasta, "%s/%s%s", dir, name, fasta_ext[i]);
    p->has_fasta = exists(p->fasta);
  }
  for (int i = 0; emb_ext[i] && !p->has_emb; i++) {
    snprintf(p->emb, sizeof p->emb, "%s/%s%s", dir, name, emb_ext[i]);
    p->has_emb = exists(p->emb);
  }
  snprintf(p->ids, sizeof p->ids, "%s/%s.ids", dir, name);
  p->has_ids = exists(p->ids);
  snprintf(p->offsets, sizeof p->offsets, "%s/%s.offsets.npy", dir, name);
  p->has_offsets = exists(p->offsets);
  snprintf(p->ready, sizeof p->ready, "%s/%s.ready", dir, name);
  p->has_ready = exists(p->ready);
  p->age_s = 1e30;
  const char *fs[4] = {p->has_fasta ? p->fasta : NULL, p->has_emb ? p->emb : NULL, p->has_ids ? p->ids : NULL,
                       p->has_offsets ? p->offsets : NULL};
  for (int k = 0; k < 4; k++)
    if (fs[k]) {
      double a = age_of(fs[k]);
      if (a < p->age_s) p->age_s = a;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int drop_list(const char *dir, drop_item_t **items, size_t *n_items, ps_err_t *err) {
  *items = NULL;
  *n_items = 0;
  DIR *dh = opendir(dir);
  if (!dh) return ps_err_set(err, -errno, "%s: cannot open the drop directory: %s", dir, strerror(errno));
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(dh))) {
    char stem[256], p[PATH_MAX * 2];
    if (!file_stem(de->d_name, stem, sizeof stem)) continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (n == cap) names = ps_xrealloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
    names[n++] = ps_xstrdup(stem);
  }
  closedir(dh);
  if (n) qsort(names, n, sizeof *names, cmp_str);
  drop_item_t *out = n ? ps_xmalloc(n * sizeof *out) : NULL;
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!i || strcmp(names[i], names[i - 1])) describe(dir, names[i], &out[m++]);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  *items = out;
  *n_items = m;
  return 0;
}

static int hash_file(const char *p, uint64_t *h, ps_err_t *err) {
  FILE *f = fopen(p, "rb");
  if (!f) return ps_err_set(err, -errno, "%s: cannot open: %s", p, strerror(errno));
  unsigned char *buf = ps_xmalloc(1 << 16);
  size_t n;
  uint64_t x = *h;
  while ((n = fread(buf, 1, 1 << 16, f)) > 0)
    for (size_t i = 0; i < n; i++) x = (x ^ buf[i]) * 1099511628211ULL;
  int bad = ferror(f);
  fclose(f);
  free(buf);
  if (bad) return ps_err_set(err, PS_EIO, "%s: read error", p);
  *h = (x ^ 0xff) * 1099511628211ULL;  // file separator
  return 0;
}

int drop_hash(const drop_item_t *p, uint64_t *h, ps_err_t *err) {
  *h = 1469598103934665603ULL;
  const char *in[4] = {p->has_fasta ? p->fasta : NULL, p->has_emb ? p->emb : NULL, p->has_ids ? p->ids : NULL,
                       p->has_offsets ? p->offsets : NULL};
  for (int i = 0; i < 4; i++)
    if (in[i] && hash_file(in[i], h, err) < 0) return err->code;
  return 0;
}

void drop_key(const drop_item_t *p, uint64_t h, char *key, size_t cap) {
  snprintf(key, cap, "%s.%016llx", p->name, (unsigned long long)h);
}

void drop_move(const char *dir, const drop_item_t *p, const char *sub) {
  char d[PATH_MAX + 16], to[PATH_MAX * 2];
  snprintf(d, sizeof d, "%s/%s", dir, sub);
  mkdir(d, 0755);
  const char *files[5] = {p->has_fasta ? p->fasta : NULL, p->has_emb ? p->emb : NULL, p->has_ids ? p->ids : NULL,
                          p->has_offsets ? p->offsets : NULL, p->has_ready ? p->ready : NULL};
  for (int i = 0; i < 5; i++) {
    if (!files[i]) continue;
    const char *b = strrchr(files[i], '/');
    snprintf(to, sizeof to, "%s/%s", d, b ? b + 1 : files[i]);
    if (rename(files[i], to) != 0 && errno != ENOENT)
      PS_WARN("cannot move file=%s to=%s: %s", files[i], to, strerror(errno));
  }
  ps_fsync_dir(d);
  ps_fsync_dir(dir);
}

void drop_fail(const char *dir, const drop_item_t *p, const char *msg) {
  drop_move(dir, p, "failed");
  char path[PATH_MAX * 2], txt[4200];
  snprintf(path, sizeof path, "%s/failed/%s.error", dir, p->name);
  int n = snprintf(txt, sizeof txt, "%s\n", msg);
  ps_err_t e = {0};
  if (ps_write_file_atomic(path, txt, (size_t)(n < (int)sizeof txt ? n : (int)sizeof txt - 1), &e) < 0)
    PS_WARN("%s", e.msg);
}

int drop_ledger_has(const char *ledger, const char *key) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/%s", ledger, key);
  return exists(p);
}

int drop_ledger_put(const char *ledger, const char *key, const char *text, ps_err_t *err) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/%s", ledger, key);
  return ps_write_file_atomic(p, text, strlen(text), err);
}

int drop_name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > 128 || s[0] == '.') return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '-' || c == '+'))
      return 0;
  }
  return 1;
}

static int put_ready(const char *dir, const char *name, ps_err_t *err) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/%s.ready", dir, name);
  return ps_write_file_atomic(p, "", 0, err);
}

int drop_put_bytes(const char *dir, const char *name, const void *bytes, size_t n, ps_err_t *err) {
  const unsigned char *b = bytes;
  int gz = n >= 2 && b[0] == 0x1f && b[1] == 0x8b;
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/%s%s", dir, name, gz ? ".fasta.gz" : ".fasta");
  int rc = ps_write_file_atomic(p, bytes, n, err);
  return rc < 0 ? rc : put_ready(dir, name, err);
}

// Copy src to dst atomically (dst's hidden temporary, fsync, rename, fsync of the directory).
static int copy_file(const char *src, const char *dir, const char *dst_name, ps_err_t *err) {
  char tmp[PATH_MAX * 2], dst[PATH_MAX * 2];
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, dst_name);
  snprintf(dst, sizeof dst, "%s/%s", dir, dst_name);
  FILE *in = fopen(src, "rb");
  if (!in) return ps_err_set(err, -errno, "%s: cannot open: %s", src, strerror(errno));
  FILE *out = fopen(tmp, "wb");
  if (!out) {
    fclose(in);
    return ps_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
  }
  char *buf = ps_xmalloc(1 << 16);
  size_t k;
  int bad = 0;
  while (!bad && (k = fread(buf, 1, 1 << 16, in)) > 0) bad = fwrite(buf, 1, k, out) != k;
  bad |= ferror(in);
  free(buf);
  fclose(in);
  bad |= fflush(out) != 0 || fsync(fileno(out)) != 0;
  bad |= fclose(out) != 0;
  if (bad || rename(tmp, dst) != 0) {
    unlink(tmp);
    return ps_err_set(err, PS_EIO, "%s: cannot copy to %s: %s", src, dst, strerror(errno ? errno : EIO));
  }
  return ps_fsync_dir(dir) < 0 ? ps_err_set(err, PS_EIO, "%s: fsync: %s", dir, strerror(errno)) : 0;
}

int drop_put_path(const char *dir, const char *name, const char *path, ps_err_t *err) {
  const char *ext = NULL;
  for (int i = 0; fasta_ext[i] && !ext; i++)
    if (has_suffix(path, fasta_ext[i])) ext = fasta_ext[i];
  if (!ext) return ps_err_set(err, PS_ECONFIG, "%s: not a FASTA (.fasta, .fa, .fasta.gz, .fa.gz)", path);
  char stem[PATH_MAX], nm[400], side[PATH_MAX * 2];
  size_t l = strlen(path) - strlen(ext);
  if (l >= sizeof stem) return ps_err_set(err, PS_ECONFIG, "%s: path too long", path);
  memcpy(stem, path, l);
  stem[l] = 0;
  static const char *const side_ext[] = {".npy", ".safetensors", ".h5", ".ids", ".offsets.npy", NULL};
  for (int i = 0; side_ext[i]; i++) {  // the embeddings first: a FASTA alone may be taken at once
    snprintf(side, sizeof side, "%s%s", stem, side_ext[i]);
    if (!exists(side)) continue;
    snprintf(nm, sizeof nm, "%s%s", name, side_ext[i]);
    int rc = copy_file(side, dir, nm, err);
    if (rc < 0) return rc;
  }
  snprintf(nm, sizeof nm, "%s%s", name, ext);
  int rc = copy_file(path, dir, nm, err);
  return rc < 0 ? rc : put_ready(dir, name, err);
}
