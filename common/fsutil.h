// fsutil.h — small file-system helpers the front command needs without a shell: remove a tree
// (rm -rf), print the last lines of a file (tail -n).
#ifndef PS_FSUTIL_H
#define PS_FSUTIL_H

#include <stdio.h>

#include "err.h"

// Remove path and everything below it (symbolic links are removed, never followed). 0 when it is
// gone (also when it never existed), else -errno of the first failure (the walk goes on).
int ps_rm_rf(const char *path);
// Write the last n lines of path to out (at most the last 64 KiB are read). 0, or -errno when the
// file cannot be read.
int ps_file_tail(const char *path, int n, FILE *out);
// Free space of the file system holding path (statvfs, bytes available to this user): 0 when at
// least need bytes are free, PS_EIO naming the path and both sizes when not, -errno when statvfs
// fails. Stages call it before they commit, so a full disk stops them with a clear error before a
// library hits ENOSPC half-way through a write.
int ps_disk_free_check(const char *path, unsigned long long need, ps_err_t *err);

#endif
