// io.h — the one place for the small I/O jobs every program does: clocks, fsync of a directory,
// write-a-file-atomically, and a line reader over plain or gzip text (file, stdin or memory).
//
// Line reader memory: a 64 KiB input buffer and the current line (grown on demand, capped by the
// max_line given at open): never the whole file. Errors name the input and the line: a truncated
// or corrupt gzip stream (PS_ETRUNC / PS_EFORMAT), a read error (-errno), a line over the cap.
#ifndef PS_IO_H
#define PS_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

// Seconds on the monotonic clock (intervals, rates, timeouts) and on the wall clock (timestamps).
double ps_mono_s(void);
double ps_wall_s(void);
// Milliseconds on the monotonic clock.
int64_t ps_mono_ms(void);

// fsync a directory so a rename or create inside it survives a crash. 0 or -errno (some file
// systems refuse fsync on directories: callers that only want best effort ignore the result).
int ps_fsync_dir(const char *dir);
// fsync the directory that holds path ("." when path has no slash).
int ps_fsync_parent(const char *path);
// Close an output file after flushing and fsyncing it: 0, or -errno of the first failure (an
// earlier write error, seen by ferror, counts as one: -EIO when errno says nothing). f is closed
// in every case.
int ps_fclose_synced(FILE *f);
// Write len bytes to path atomically: path.tmp written, fsynced, renamed over path, directory
// fsynced. A crash leaves the old file or the new one, never a torn one. 0 or <0 with err.
int ps_write_file_atomic(const char *path, const void *data, size_t len, ps_err_t *err);

// ---- text lines from a plain or gzip file, stdin ("-") or a memory buffer ----------------------
typedef struct ps_lines ps_lines_t;

// Open path ("-" = stdin, which stays open after close). max_line: the longest line accepted, in
// bytes without its newline (0 = 256 MiB); a longer one is PS_EFORMAT "NAME: line N: longer than
// 256 MiB (not a text file?)". 0 or <0 with err naming the path.
int ps_lines_open(ps_lines_t **out, const char *path, size_t max_line, ps_err_t *err);
// Read from memory (buf borrowed until close); name is used in messages.
ps_lines_t *ps_lines_open_mem(const void *buf, size_t len, const char *name, size_t max_line);
// Next line: 1 = a line in *line / *len (no newline, no trailing '\r', NUL-terminated, borrowed
// until the next call; it may contain NUL bytes: check *len), 0 = end, <0 = error (with err).
// After an error the reader stays failed.
int ps_lines_next(ps_lines_t *r, char **line, size_t *len, ps_err_t *err);
// 1-based number of the line last returned (0 before the first).
uint64_t ps_lines_lineno(const ps_lines_t *r);
// The name given at open (the path, "stdin" for "-", or the memory name).
const char *ps_lines_name(const ps_lines_t *r);
// Close and free; accepts NULL and *r == NULL; sets *r to NULL.
void ps_lines_close(ps_lines_t **r);

#endif
