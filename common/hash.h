// hash.h — the project's one mixer and seeded streams: splitmix64 (Steele, Lea, Flood 2014) and
// the held-out / validation split by id that every program must agree on.
#ifndef PS_HASH_H
#define PS_HASH_H

#include <stdint.h>

// FNV-1a 64 of a NUL-terminated string (the strmap hash).
static inline uint64_t ps_fnv1a64(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 1099511628211ull;
  }
  return h;
}

// splitmix64 finaliser: a bijection of 64-bit words with full avalanche.
static inline uint64_t ps_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The next value of a splitmix64 stream whose state is *x.
static inline uint64_t ps_splitmix64(uint64_t *x) {
  *x += 0x9E3779B97F4A7C15ull;
  return ps_mix64(*x);
}

// A uniform double in [0, 1) from 64 random bits (the top 53).
static inline double ps_unit53(uint64_t z) { return (double)(z >> 11) * 0x1.0p-53; }

// 1 when the protein id falls in the seeded fraction frac of all ids (the held-out / validation
// split): mix64(FNV-1a(id) ^ seed * golden) below frac. Stable across programs, runs and machines.
static inline int ps_id_in_fraction(const char *id, uint64_t seed, double frac) {
  if (frac <= 0) return 0;
  if (frac >= 1) return 1;
  return ps_unit53(ps_mix64(ps_fnv1a64(id) ^ (seed * 0x9E3779B97F4A7C15ull))) < frac;
}

#endif
