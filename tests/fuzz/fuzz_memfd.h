// fuzz_memfd.h — for harnesses of parsers that take a path: the input bytes in an anonymous
// in-memory file (memfd), named by its /proc/self/fd path. Header-only, shared by the harnesses.
#ifndef PS_FUZZ_MEMFD_H
#define PS_FUZZ_MEMFD_H

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

// Writes data into a new memfd and its path into path; returns the fd (close it), or -1.
static inline int fuzz_memfd(const uint8_t *data, size_t size, const char *name, char *path, size_t cap) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -1;
  if (size && write(fd, data, size) != (ssize_t)size) {
    close(fd);
    return -1;
  }
  snprintf(path, cap, "/proc/self/fd/%d", fd);
  return fd;
}

#endif
