// wire.h — ZeroMQ PUSH/PULL pipelines carrying protobuf-c Envelopes.
//
// Endpoints follow CZMQ's convention: "@tcp://*:5555" binds, ">ipc:///tmp/x" connects; without
// a prefix PUSH connects and PULL binds (the zguide pipeline: downstream binds PULL, upstream
// connects PUSH). Every socket gets an explicit high-water mark, LINGER and TCP keepalives (no
// ZMTP PING/PONG: wire.c says why).
// Sending blocks when the peer's queue is full (back-pressure, never dropping), but polls the
// stop flag so SIGTERM can end a blocked send.
//
// Security: tcp:// sockets use CURVE when the process configured it (curve.h: curve_from_config;
// a process-wide setting, off by default). A bound ipc:// socket file is made mode 0600, and its
// directory is created 0700 when missing; inproc:// needs nothing.
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
#define PS_SCHEMA_MINOR 4  // 2: stream_batches (EmbeddingBatch 13, FeatureBatch 17); 3: Envelope 13 removed;
                           // 4: the annotation service (proteome fields, ProteomeRequest/Reply)
#define PS_SCHEMA_VERSION (PS_SCHEMA_MAJOR * 1000 + PS_SCHEMA_MINOR)

typedef struct wire_opts {
  int hwm;              // messages queued per peer before send blocks (default 16)
  int linger_ms;        // how long close waits for unsent messages (default 30000)
  int bufsize;          // kernel SO_SNDBUF/RCVBUF bytes: 0 = WIRE_BUFSIZE_DEFAULT, < 0 = the OS default
  int64_t max_msg;      // receiving sockets: largest message accepted (ZMQ_MAXMSGSIZE), 0 = no limit
} wire_opts_t;

// 4 MiB socket buffers: a batch of 1024 x 480 floats (2 MB) then crosses ipc:// or tcp:// in one
// or two system calls instead of ~10 with context switches between the processes (measured:
// reader -> consumer over ipc:// 0.41 -> 0.51 of in-process parsing). The kernel clamps the value
// to net.core.wmem_max / rmem_max (often 208 KiB, 4 MiB here); memory: up to 8 MiB per connection.
#define WIRE_BUFSIZE_DEFAULT (4 << 20)
#define WIRE_OPTS_DEFAULT {16, 30000, 0, 0}

// Message size limits. A message over max_msg is never buffered: libzmq's decoder sees its size
// in the frame header, stops reading and closes that peer's connection (the sender reconnects;
// the message and whatever else was in flight on that connection are lost, so a genuine
// producer's lost batch is re-sent like any other: ResendRequest). Without a limit a receiver
// buffers any size whole before it can drop it (measured: a 200 MB message took the scorer to
// 844 MB RSS). Each stage derives its limit from what it expects, with a factor 2 margin:
//   EmbeddingBatch: rows x (dim + target_dim) x 4 bytes, the ids, offsets and flags (< 1 MiB for
//     any batch of up to 64Ki proteins with ids of < 16 bytes)
//     -> wire_max_embedding_msg(rows, dim + target_dim) = rows x (dim + target_dim) x 4 x 2 + 1 MiB
//     (residue level: a batch exceeds batch_rows by less than one protein; the factor 2 covers
//     proteins of up to batch_rows residues).
//   FeatureBatch: per stored entry a packed varint index (<= 5 bytes) and a float: <= 9 bytes;
//     its size depends on the SAE's sparsity, so the scorer takes a configured limit.
//   Control messages (ResendRequest, InterpretRequest/Result, EndOfStream): WIRE_MAX_CONTROL_MSG.
#define WIRE_MAX_CONTROL_MSG ((int64_t)16 << 20)
int64_t wire_max_embedding_msg(int64_t rows, int64_t width);

typedef struct wire_stats {
  uint64_t received;        // envelopes accepted
  uint64_t dropped_malformed;  // not a protobuf Envelope, or an inconsistent batch
  uint64_t dropped_version;
  uint64_t dropped_empty;   // unpacked but no body this build knows (a newer or a removed oneof member)
  uint64_t bytes;
} wire_stats_t;

// Create a socket of type ZMQ_PUSH / ZMQ_PULL on the endpoint. Returns the socket or NULL with
// err filled. Close with wire_close (zmq_close).
void *wire_socket(void *zctx, int type, const char *endpoint, const wire_opts_t *opts, ps_err_t *err);
void wire_close(void **sock);

// Ending a stream. LINGER only covers handing the last messages to the kernel: libzmq (4.3)
// drops a connection without reading what is still in the kernel buffer when the peer hangs up
// while the receiver is held at its receive high-water mark, so a producer that exits right
// after its EndOfStream loses the tail of its stream (and the EndOfStream) whenever the
// consumer lags. A producer therefore keeps its connections open until the consumers hang up.
// The rule on the other side: a consumer closes its socket once it has every EndOfStream it
// expects (protsae consume does).
//
// wire_peers_t counts a socket's live connections (a ZMQ monitor attached before the bind or
// connect, so none is missed). Opaque; free with wire_peers_destroy BEFORE wire_close of its
// socket.
typedef struct wire_peers wire_peers_t;
// wire_socket that also watches the socket's connections: *peers is set (caller frees).
void *wire_socket_watched(void *zctx, int type, const char *endpoint, const wire_opts_t *opts,
                          wire_peers_t **peers, ps_err_t *err);
// Connections up now (monitor events are applied first).
int wire_peers_live(wire_peers_t *p);
// After the last message: wait until a peer has connected and every peer has hung up, i.e. the
// consumers have read the whole stream. 0 when they have, -ETIMEDOUT after timeout_ms (-1 =
// no limit), <0 on a socket error. Not interrupted by the stop flag: it runs after a stop
// request too, for the final EndOfStream; a second signal exits the process.
int wire_peers_wait_hangup(wire_peers_t *p, int timeout_ms, ps_err_t *err);
void wire_peers_destroy(wire_peers_t **p);

// Fill the header fields (schema_version, run_id, producer, seq). Strings are borrowed.
void wire_envelope_init(Protsae__Envelope *env, const char *run_id, const char *producer, uint64_t seq);

// Pack and send; blocks under back-pressure. Returns 0, PS_EINTR when *stop became set while
// blocked (the message was not sent), or <0. stop may be NULL.
int wire_send(void *sock, const Protsae__Envelope *env, volatile sig_atomic_t *stop, ps_err_t *err);
// Same, giving up with -ETIMEDOUT after timeout_ms of back-pressure (the stop flag is not
// consulted: used for the last EndOfStream after a stop request).
int wire_send_timeout(void *sock, const Protsae__Envelope *env, int timeout_ms, ps_err_t *err);

// Receive one envelope: 1 = *out set (free with wire_free), 0 = timeout (timeout_ms; 0 = only what is
// queued now; -1 = wait until a message or *stop), PS_EINTR on stop, <0 on a socket error. Malformed or foreign-version
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
