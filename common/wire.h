// wire.h — ZeroMQ PUSH/PULL pipelines carrying protobuf-c Envelopes.
//
// Endpoints follow CZMQ's convention: "@tcp://*:5555" binds, ">ipc:///tmp/x" connects; without
// a prefix PUSH connects and PULL binds (the zguide pipeline: downstream binds PULL, upstream
// connects PUSH). Every socket gets an explicit high-water mark, LINGER and ZMTP heartbeats.
// Sending blocks when the peer's queue is full (back-pressure, never dropping), but polls the
// stop flag so SIGTERM can end a blocked send.
//
// Receiving: a message that does not unpack, or whose schema major version differs, is dropped
// and counted in wire_stats_t; the receiver never crashes on it.
#ifndef PS_WIRE_H
#define PS_WIRE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "protsae.pb-c.h"

#define PS_SCHEMA_MAJOR 1
#define PS_SCHEMA_MINOR 0
#define PS_SCHEMA_VERSION (PS_SCHEMA_MAJOR * 1000 + PS_SCHEMA_MINOR)

typedef struct wire_opts {
  int hwm;              // messages queued per peer before send blocks (default 16)
  int linger_ms;        // how long close waits for unsent messages (default 30000)
  int heartbeat_ms;     // ZMTP heartbeat interval (default 1000; timeout 5x)
  int bufsize;          // kernel SO_SNDBUF/RCVBUF bytes, 0 = OS default
} wire_opts_t;

#define WIRE_OPTS_DEFAULT {16, 30000, 1000, 0}

typedef struct wire_stats {
  uint64_t received;        // envelopes accepted
  uint64_t dropped_malformed;
  uint64_t dropped_version;
  uint64_t dropped_empty;   // unpacked but no body this build knows (a newer oneof member)
  uint64_t bytes;
} wire_stats_t;

// Create a socket of type ZMQ_PUSH / ZMQ_PULL on the endpoint. Returns the socket or NULL with
// err filled. Close with wire_close (zmq_close).
void *wire_socket(void *zctx, int type, const char *endpoint, const wire_opts_t *opts, ps_err_t *err);
void wire_close(void **sock);

// Fill the header fields (schema_version, run_id, producer, seq). Strings are borrowed.
void wire_envelope_init(Protsae__Envelope *env, const char *run_id, const char *producer, uint64_t seq);

// Pack and send; blocks under back-pressure. Returns 0, PS_EINTR when *stop became set while
// blocked (the message was not sent), or <0. stop may be NULL.
int wire_send(void *sock, const Protsae__Envelope *env, volatile sig_atomic_t *stop, ps_err_t *err);
// Same, giving up with -ETIMEDOUT after timeout_ms of back-pressure (the stop flag is not
// consulted: used for the last EndOfStream after a stop request).
int wire_send_timeout(void *sock, const Protsae__Envelope *env, int timeout_ms, ps_err_t *err);

// Receive one envelope: 1 = *out set (free with wire_free), 0 = timeout (timeout_ms, -1 = wait
// until a message or *stop), PS_EINTR on stop, <0 on a socket error. Malformed or foreign-version
// messages are dropped (counted in st) and the wait continues.
int wire_recv(void *sock, Protsae__Envelope **out, int timeout_ms, volatile sig_atomic_t *stop,
              wire_stats_t *st, ps_err_t *err);

// Decode bytes (also used by the fuzz harness): 1 = *out set, 0 = dropped (counted), never crashes.
int wire_decode(const uint8_t *buf, size_t len, Protsae__Envelope **out, wire_stats_t *st);
void wire_free(Protsae__Envelope **env);

// Validate an EmbeddingBatch's internal consistency (sizes of rows, offsets, targets).
int wire_check_embedding_batch(const Protsae__EmbeddingBatch *b, ps_err_t *err);
// Validate a FeatureBatch's CSR structure (indptr monotone, spans indices/values, ids < n_features).
int wire_check_feature_batch(const Protsae__FeatureBatch *b, ps_err_t *err);

#endif
