// front.c — see front.h.
#include "front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "featstore.h"
#include "io.h"
#include "log.h"
#include "split.h"
#include "strmap.h"

struct front {
  char *dir;
  uint32_t n;
  void **sock;
  uint8_t *done;        // shard k's store holds every batch of `sources` ended streams
  size_t sources_seen;  // the `sources` of the last poll
  fb_split_t *split;
  Protsae__FeatureBatch **parts;
  int64_t last_poll;
  uint64_t batches;
  strmap_t *ends;       // upstream producer -> its batch count (from the EndOfStreams routed)
  uint64_t stream_batches;
};

int front_shard_endpoint(const char *base, uint32_t k, char *out, size_t cap, ps_err_t *err) {
  const char *addr = base[0] == '@' || base[0] == '>' ? base + 1 : base;
  if (!strncmp(addr, "tcp://", 6)) {
    const char *colon = strrchr(addr, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon < addr + 6 || !end || *end || port < 1 || port + (long)k > 65535)
      return ps_err_set(err, PS_ECONFIG, "%s: a tcp shard endpoint needs a port (the k-th shard uses port + k)", base);
    snprintf(out, cap, "%.*s%ld", (int)(colon + 1 - base), base, port + (long)k);
    return 0;
  }
  if (!strncmp(addr, "ipc://", 6) || !strncmp(addr, "inproc://", 9)) {
    snprintf(out, cap, "%s.%u", base, k);
    return 0;
  }
  return ps_err_set(err, PS_ECONFIG, "%s: shard endpoints are tcp://, ipc:// or inproc://", base);
}

int front_open(front_t **out, void *zctx, const char *dir, uint32_t n, const char *shard_out, const wire_opts_t *wo,
               ps_err_t *err) {
  *out = NULL;
  int rc = fs_shards_init(dir, n, err);
  if (rc < 0) return rc;
  front_t *f = ps_xcalloc(1, sizeof *f);
  f->dir = ps_xstrdup(dir);
  f->n = n;
  f->sock = ps_xcalloc(n, sizeof *f->sock);
  f->done = ps_xcalloc(n, 1);
  f->parts = ps_xcalloc(n, sizeof *f->parts);
  f->split = fb_split_new(n);
  f->ends = strmap_new(8);
  for (uint32_t k = 0; k < n; k++) {
    char ep[1024];
    if ((rc = front_shard_endpoint(shard_out, k, ep, sizeof ep, err)) < 0 ||
        !(f->sock[k] = wire_socket(zctx, ZMQ_PUSH, ep, wo, err))) {
      front_close(&f);
      return rc < 0 ? rc : err->code ? err->code : PS_EIO;
    }
  }
  *out = f;
  return 0;
}

void front_close(front_t **fp) {
  front_t *f = *fp;
  if (!f) return;
  for (uint32_t k = 0; k < f->n; k++) wire_close(&f->sock[k]);
  free(f->sock);
  free(f->done);
  free(f->parts);
  fb_split_destroy(&f->split);
  strmap_destroy(&f->ends);
  free(f->dir);
  free(f);
  *fp = NULL;
}

uint32_t front_shards(const front_t *f) { return f->n; }
uint64_t front_batches(const front_t *f) { return f->batches; }
uint64_t front_stream_batches(const front_t *f) { return f->stream_batches; }

// Shard k's committed state: 1 complete, 0 not (or not created yet), <0 error.
static int shard_complete(front_t *f, uint32_t k, size_t sources, ps_err_t *err) {
  char p[4096];
  fs_shard_path(f->dir, k, p, sizeof p);
  fs_t *s = NULL;
  ps_err_t oe = {0};
  if (fs_open(&s, p, FS_OPEN_READONLY, &oe) < 0) return 0;  // not created yet: its scorer has not started
  size_t complete = 0, known = 0;
  int rc = fs_streams_complete(s, &complete, &known, err);
  fs_close(&s);
  if (rc < 0) return rc;
  return complete >= sources;
}

int front_poll(front_t *f, size_t sources, ps_err_t *err) {
  int64_t t = ps_mono_ms();
  f->sources_seen = sources;
  if (f->last_poll && t - f->last_poll < 1000) {
    for (uint32_t k = 0; k < f->n; k++)
      if (!f->done[k]) return 0;
    return 1;
  }
  f->last_poll = t;
  int all = 1;
  for (uint32_t k = 0; k < f->n; k++) {
    if (f->done[k]) continue;
    int rc = shard_complete(f, k, sources, err);
    if (rc < 0) return rc;
    f->done[k] = (uint8_t)rc;
    all &= rc;
  }
  return all;
}

// Send env to shard k; while it does not take it, wait, unless its store turns out complete.
static int send_to(front_t *f, uint32_t k, const Protsae__Envelope *env, volatile sig_atomic_t *stop, ps_err_t *err) {
  int64_t t0 = ps_mono_ms();
  int warned = 0;
  for (;;) {
    if (f->done[k]) return 0;  // it has every batch: this is a replay another shard asked for
    ps_err_t se = {0};
    int rc = wire_send_timeout(f->sock[k], env, 1000, &se);
    if (rc == 0) return 0;
    if (rc != -ETIMEDOUT) return ps_err_set(err, rc, "shard %u: %s", k, se.msg);
    if (stop && *stop) return ps_err_set(err, PS_EINTR, "stopped while shard %u did not take a batch", k);
    if (f->sources_seen) {
      int c = shard_complete(f, k, f->sources_seen, err);
      if (c < 0) return c;
      f->done[k] = (uint8_t)c;
    }
    if (!warned && ps_mono_ms() - t0 >= 10000) {
      PS_WARN("shard %u has taken nothing for 10 s (is its scorer running?): waiting", k);
      warned = 1;
    }
  }
}

int front_route(front_t *f, Protsae__Envelope *env, volatile sig_atomic_t *stop, ps_err_t *err) {
  if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM) {
    const Protsae__EndOfStream *e = env->end_of_stream;
    const char *src = e->source_producer && e->source_producer[0] ? e->source_producer : env->producer;
    uint64_t next = e->source_producer && e->source_producer[0] ? e->source_next_seq : env->seq, old = 0;
    if (src && strmap_size(f->ends) < 4096 && (!strmap_get(f->ends, src, &old) || old != next)) {
      f->stream_batches = f->stream_batches - old + next;  // for progress only: the shards check the ends
      strmap_put(f->ends, src, next);
    }
    for (uint32_t k = 0; k < f->n; k++) {
      int rc = send_to(f, k, env, stop, err);
      if (rc < 0) return rc;
    }
    return 1;
  }
  if (env->body_case != PROTSAE__ENVELOPE__BODY_FEATURE_BATCH) return 0;
  Protsae__FeatureBatch *whole = env->feature_batch;
  int rc = fb_split_run(f->split, whole, f->parts, err);
  if (rc < 0) return rc;
  for (uint32_t k = 0; k < f->n && rc >= 0; k++) {
    env->feature_batch = f->parts[k];
    rc = send_to(f, k, env, stop, err);
  }
  env->feature_batch = whole;  // freed by the caller as received
  if (rc < 0) return rc;
  f->batches++;
  return 1;
}
