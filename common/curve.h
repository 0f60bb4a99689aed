// curve.h — who may talk to a stage: ZeroMQ CURVE for tcp:// endpoints.
//
// The setting is process-wide: a stage calls curve_from_config() once after parsing its options,
// and from then on every tcp:// socket wire.c opens uses CURVE (ipc:// and inproc:// never do:
// ipc:// sockets are protected by file permissions, see wire.h):
//   - a binding socket (@) is a CURVE server with the stage's secret key; a ZAP handler (a thread
//     per ZeroMQ context, bound at inproc://zeromq.zap.01 before the first such socket) accepts
//     only client public keys on the allowed list;
//   - a connecting socket (>) is a CURVE client with the stage's keypair and the server's public
//     key, so it talks only to a server holding the matching secret.
// Refused peers (a key not on the list, a peer without CURVE, a failed handshake) are counted
// (curve_refused_total, on /metrics as protsae_auth_refused_total) and logged, the first few and
// then at most one line per 10 s. They never get a message through: libzmq drops the connection
// before any message is delivered.
//
// Keys are Z85 text files of 40 characters (`protsae keys` writes them: NAME.key secret, mode
// 0600; NAME.pub public). The deployment default is one cluster keypair shared by every stage:
// only --curve-secret is needed, the public key is derived from it, and the server key and the
// allowed list default to that same public key. Per-stage keys work the same way with
// --curve-server-public naming the binding stage's public key and a longer --curve-allowed list.
#ifndef PS_CURVE_H
#define PS_CURVE_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "metrics.h"

// The stage options, shared by every stage that opens tcp:// sockets (put in its config table).
#define PS_WIRE_SECURITY_ENTRIES                                                                                      \
  {"curve-secret", NULL, "tcp:// security: this stage's CURVE secret key file (Z85, `protsae keys`); unset = no "    \
                         "CURVE"},                                                                                    \
  {"curve-public", NULL, "tcp:// security: this stage's public key file (default: derived from the secret; checked " \
                         "against it when given)"},                                                                   \
  {"curve-server-public", NULL, "tcp:// security: public key file of the stages this one connects to (default: its " \
                                "own public key, the shared cluster keypair)"},                                       \
  {"curve-allowed", NULL, "tcp:// security: client public keys accepted by binding sockets: a file of Z85 keys, one " \
                          "a line (# comments), or a directory of *.pub files (default: its own public key)"}

#define CURVE_KEY_Z85 40  // characters of a key in Z85 (32 bytes)

// Read a key file: 40 Z85 characters, optional surrounding white space. z85 gets the text
// (NUL-terminated), bin (may be NULL) the 32 bytes. 0, or <0 with err naming the file.
int curve_key_read(const char *path, char z85[CURVE_KEY_Z85 + 1], uint8_t bin[32], ps_err_t *err);
// Read an allowed-keys file or directory (see PS_WIRE_SECURITY_ENTRIES). *keys (caller frees) gets
// *n keys of 32 bytes. At least one key is required. 0, or <0 with err naming the file and line.
int curve_allowed_read(const char *path, uint8_t (**keys)[32], size_t *n, ps_err_t *err);

// Turn CURVE on for this process (paths as the options above; server_public and allowed may be
// NULL: the own public key). secret NULL with all others NULL: CURVE stays off, returns 0.
// Call once, before the first socket. 0, or <0 with err naming the file.
int curve_configure(const char *secret, const char *pub, const char *server_public, const char *allowed,
                    ps_err_t *err);
// The same from a stage's options (PS_WIRE_SECURITY_ENTRIES); logs whether CURVE is on.
int curve_from_config(const ps_config_t *c, ps_err_t *err);
int curve_enabled(void);
// Refused connection attempts so far (all contexts, thread-safe).
uint64_t curve_refused_total(void);
// Register protsae_auth_refused_total on a stage's metrics (read at render time; m may be NULL).
void curve_metrics(ps_metrics_t *m);

// --- used by wire.c
// Before bind/connect of a tcp:// socket: set the CURVE options (server or client) and, for a
// server, start the context's ZAP handler. No-op when CURVE is off. 0 or <0 (err filled).
int curve_socket_setup(void *zctx, void *sock, int bind, ps_err_t *err);
// Monitor events a CURVE server socket must report (handshake failures).
int curve_monitor_events(void);
// Start a monitor of socket s on inproc endpoint ep for events and open the PAIR socket that
// reads it (RCVHWM 0: no event dropped; LINGER 0; connected before s makes a connection).
// 0 with the PAIR socket in *mon, or <0 with err (the monitor stopped again).
int curve_monitor_open(void **mon, void *zctx, void *s, const char *ep, int events, ps_err_t *err);
// A server socket without a monitor of its own: attach one that the ZAP thread reads. 0 or <0.
int curve_socket_watch(void *zctx, void *sock, ps_err_t *err);
// A monitor event of a server socket (wire.c's own monitors pass theirs): counts refusals.
void curve_note_event(uint16_t event, uint32_t value, const char *endpoint);

#endif
