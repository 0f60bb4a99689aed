// front.h — the front of a sharded feature store (protsae-scorer --shards N): it receives what one
// scorer would (FeatureBatches and EndOfStreams from every encoder), cuts each batch by feature
// range (split.h) and sends shard k its part on the k-th shard endpoint (PUSH, bound; shard k's
// scorer connects there), and every EndOfStream to every shard. Each shard scorer applies its part
// exactly once into DIR/shard-k and asks the reader itself for what it misses. The front knows the
// stream is whole when every shard store holds every batch of `sources` ended streams
// (front_poll, reading the shards' committed state); the scorer's main then runs the enrichment
// and the interpretation over the merged store (featstore.h, "Sharded stores").
// A send to a shard waits while that shard is away (killed, restarting: back-pressure, never a
// drop), except for a shard whose store is already complete: it has every batch, and what it
// would get is a replay asked for by another shard.
// Memory: the cut batches of one message (split.h) and a socket queue (hwm) a shard.
#ifndef PS_SCORER_FRONT_H
#define PS_SCORER_FRONT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "protsae.pb-c.h"
#include "wire.h"

typedef struct front front_t;

// The k-th shard endpoint of base: tcp: the port plus k ("@tcp://*:5570" -> 5570 + k); ipc and
// inproc: the address with ".k" appended. <0 when base is not one of those.
int front_shard_endpoint(const char *base, uint32_t k, char *out, size_t cap, ps_err_t *err);

// dir: the sharded store (its layout file is created, or checked to say n); shard_out: the base
// endpoint the n shard sockets bind (front_shard_endpoint).
int front_open(front_t **out, void *zctx, const char *dir, uint32_t n, const char *shard_out, const wire_opts_t *wo,
               ps_err_t *err);
void front_close(front_t **f);
uint32_t front_shards(const front_t *f);
// Route one received envelope: a FeatureBatch is cut and its parts sent, an EndOfStream is sent to
// every shard (the envelope as received). 1 routed, 0 not a routed kind (the caller handles it),
// PS_EINTR on *stop while waiting for a shard, <0 on errors (a batch that cannot be cut: err says
// why; nothing is sent for it).
int front_route(front_t *f, Protsae__Envelope *env, volatile sig_atomic_t *stop, ps_err_t *err);
// Read each shard's committed state (at most once a second): 1 when every shard holds every batch
// of at least `sources` ended streams, 0 when not yet (a shard not yet created counts as not),
// <0 on a store error.
int front_poll(front_t *f, size_t sources, ps_err_t *err);
// Batches routed since open (replays included), and the batches of the upstream streams whose end
// it has routed (for progress: metrics).
uint64_t front_batches(const front_t *f);
uint64_t front_stream_batches(const front_t *f);

#endif
