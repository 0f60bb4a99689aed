#include "fsutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_rm_err;  // first failure of the current walk (nftw passes no context)

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  int rc = (type == FTW_DP || type == FTW_D) ? rmdir(p) : unlink(p);
  if (rc != 0 && errno != ENOENT && !g_rm_err) g_rm_err = -errno;
  return 0;  // go on: remove what can be removed
}

int ps_rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
  g_rm_err = 0;
  if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0 && !g_rm_err) g_rm_err = errno ? -errno : -EIO;
  return g_rm_err;
}

int ps_file_tail(const char *path, int n, FILE *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return -errno;
  enum { CAP = 64 * 1024 };
  char *buf = malloc(CAP + 1);
  if (!buf) {
    fclose(f);
    return -ENOMEM;
  }
  long off = 0;
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    off = size > CAP ? size - CAP : 0;
  }
  fseek(f, off, SEEK_SET);
  size_t len = fread(buf, 1, CAP, f);
  fclose(f);
  buf[len] = 0;
  // walk back over n line ends (a final newline does not start an empty line)
  size_t end = len, start = len;
  if (end > 0 && buf[end - 1] == '\n') end--;
  int lines = 0;
  start = end;
  while (start > 0 && lines < n) {
    start--;
    if (buf[start] == '\n' && ++lines == n) {
      start++;
      break;
    }
  }
  if (start == 0 && off > 0) {  // the window begins mid-line: skip the partial line
    char *nl = memchr(buf, '\n', end);
    if (nl) start = (size_t)(nl - buf) + 1;
  }
  if (end > start) {
    fwrite(buf + start, 1, end - start, out);
    fputc('\n', out);
  }
  free(buf);
  return 0;
}

int ps_disk_free_check(const char *path, unsigned long long need, ps_err_t *err) {
  struct statvfs v;
  if (statvfs(path, &v) != 0) return ps_err_set(err, -errno, "%s: statvfs: %s", path, strerror(errno));
  unsigned long long avail = (unsigned long long)v.f_bavail * (unsigned long long)v.f_frsize;
  if (avail >= need) return 0;
  return ps_err_set(err, PS_EIO, "%s: disk nearly full: %llu KiB free, %llu KiB needed to commit safely (free some "
                                 "space and restart: nothing half-written)", path, avail >> 10, need >> 10);
}
