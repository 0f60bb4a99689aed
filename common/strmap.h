// strmap.h — string -> uint64 hash map (open addressing, FNV-1a, keys copied).
// Memory: about 2x the keys' bytes plus 24 bytes a slot. Not thread-safe.
#ifndef PS_STRMAP_H
#define PS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap strmap_t;

strmap_t *strmap_new(size_t expected);
void strmap_destroy(strmap_t **m);
// Insert or overwrite. Returns 1 when the key was new, 0 when it was replaced.
int strmap_put(strmap_t *m, const char *key, uint64_t value);
// 1 and *value when found, 0 otherwise. value may be NULL.
int strmap_get(const strmap_t *m, const char *key, uint64_t *value);
size_t strmap_size(const strmap_t *m);
uint64_t strmap_hash(const char *s);

#endif
