// fuzz_scorer_msg — arbitrary bytes as what arrives on the scorer's input, through the stage's
// handler on a real temporary RocksDB store: the input is a sequence of messages, each a 2-byte
// little-endian length and that many bytes; every one is decoded (wire_decode) and a FeatureBatch
// goes to scorer_apply_why, an EndOfStream to scorer_note_eos (relayed or direct, as main.c does),
// then the pending work is committed. Nothing may crash, hang or allocate by an unchecked value;
// afterwards the store's feature count is within the bound, every recorded end is consistent, and
// the missing seqs are listed in time independent of their values. Every decoded FeatureBatch is
// also cut for 3 shards as the front does (split.h): a cut that succeeds keeps every entry once, in
// its shard's range. The store persists across
// inputs (opening RocksDB per input would be too slow) and is recreated every 2000 inputs.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "featstore.h"
#include "scorer.h"
#include "split.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_FEATURES 4096

static char dir[64];
static scorer_t *sc;
static unsigned long runs;

// At exit only the directory goes: closing RocksDB from an atexit handler crashes (its static
// logger is gone by then); the process is ending anyway.
static void cleanup(void) {
  if (dir[0]) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_scorer_msg: could not remove %s\n", dir);
  }
}

static void open_store(void) {
  if (!dir[0]) {
    strcpy(dir, "/tmp/protsae-fuzz-scorer.XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(cleanup);
  }
  scorer_close(&sc);
  char cmd[128], db[96];
  snprintf(cmd, sizeof cmd, "rm -rf '%s/db'", dir);
  if (system(cmd) != 0) abort();
  snprintf(db, sizeof db, "%s/db", dir);
  scorer_opts_t o = {db, 4, 0, FUZZ_MAX_FEATURES, 0, 0, 0};
  ps_err_t err = {0};
  if (scorer_open(&sc, &o, &err) < 0) {
    fprintf(stderr, "fuzz_scorer_msg: %s\n", err.msg);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!sc || ++runs % 2000 == 0) open_store();
  wire_stats_t st = {0};
  size_t off = 0;
  while (off + 2 <= size) {
    size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
    off += 2;
    if (n > size - off) n = size - off;
    Protsae__Envelope *env = NULL;
    if (wire_decode(data + off, n, &env, &st)) {
      ps_err_t err = {0};
      if (env->body_case == PROTSAE__ENVELOPE__BODY_FEATURE_BATCH) {
        static fb_split_t *cut;
        if (!cut) cut = fb_split_new(3);
        Protsae__FeatureBatch *parts[3];
        const Protsae__FeatureBatch *fb = env->feature_batch;
        if (fb_split_run(cut, fb, parts, &err) == 0) {
          size_t total = 0;
          for (uint32_t k = 0; k < 3; k++) {
            uint32_t lo, hi;
            fs_shard_range(k, 3, fb->n_features, &lo, &hi);
            for (size_t j = 0; j < parts[k]->n_indices; j++)
              if (parts[k]->indices[j] < lo || parts[k]->indices[j] >= hi) abort();
            if (parts[k]->n_rows != fb->n_rows || parts[k]->indptr[fb->n_rows] != parts[k]->n_indices) abort();
            total += parts[k]->n_indices;
          }
          if (total != fb->n_indices) abort();
        } else if (!err.msg[0]) {
          abort();  // a refused cut says why
        }
        err.msg[0] = 0;
        scorer_reject_t why = SCORER_REJ_N;
        int rc = scorer_apply_why(sc, env->feature_batch, &why, &err);
        if (rc < 0 && (why >= SCORER_REJ_N || !err.msg[0])) abort();  // a rejection names its reason
        if (rc > 1) abort();
      } else if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM) {
        const Protsae__EndOfStream *e = env->end_of_stream;
        int relayed = e->source_producer && e->source_producer[0];
        const char *src = relayed ? e->source_producer : env->producer;
        uint64_t next = relayed ? e->source_next_seq : env->seq;
        int rc = scorer_note_eos(sc, src, next, e->rows_sent, e->proteins_sent, &err);
        if (rc < 0 && (rc != PS_EPROTO || !err.msg[0])) abort();
        if (rc == 0 && next > SCORER_MAX_SEQ) abort();  // an end past the bound is never recorded
      }
      wire_free(&env);
    }
    off += n;
  }
  ps_err_t err = {0};
  if (scorer_commit(sc, &err) < 0) {
    fprintf(stderr, "fuzz_scorer_msg: commit: %s\n", err.msg);
    abort();
  }
  if (scorer_meta(sc)->n_features > FUZZ_MAX_FEATURES) abort();
  size_t known = scorer_streams_known(sc);
  if (scorer_streams_complete(sc) > known) abort();
  for (size_t i = 0; i < known; i++) {
    uint64_t seqs[8];
    const char *p = NULL;
    size_t miss = scorer_missing(sc, i, &p, seqs, 8);
    if (!p) abort();
    for (size_t j = 0; j + 1 < (miss < 8 ? miss : 8); j++)
      if (seqs[j] >= seqs[j + 1] || seqs[j + 1] >= SCORER_MAX_SEQ) abort();
  }
  if (scorer_stream_batches(sc) > (uint64_t)scorer_streams_known(sc) * SCORER_MAX_SEQ) abort();
  return 0;
}
