#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#include "curve.h"
#include "io.h"

// Dead peers: no ZMTP PING/PONG. libzmq 4.3.4 (Debian 12; unchanged upstream) asserts
// `!_io_error` in stream_engine_base_t::out_event when the PING timer fires on a connection
// whose input was throttled at the receive high-water mark and whose peer then hung up (the
// engine marks the I/O error and keeps its timers): a busy consumer whose producer exits or is
// killed aborted (seen in the scorer during enrichment and in an encoder whose reader was killed).
// A peer that dies has its connection closed by the kernel, which the engine sees at once; TCP
// keepalives (probes after 60 s idle) cover a peer that vanishes without a close.
static int set_opts(void *s, int type, const wire_opts_t *o) {
  int hwm = o->hwm > 0 ? o->hwm : 16;
  int linger = o->linger_ms;
  int rc = 0;
  if (type == ZMQ_PUSH) rc |= zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
  else rc |= zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
  rc |= zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  int ka = 1, idle = 60, intvl = 10, cnt = 6;
  rc |= zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE, &ka, sizeof ka);
  rc |= zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_IDLE, &idle, sizeof idle);
  rc |= zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_INTVL, &intvl, sizeof intvl);
  rc |= zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_CNT, &cnt, sizeof cnt);
  if (type == ZMQ_PULL && o->max_msg > 0) {
    int64_t mx = o->max_msg;
    rc |= zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &mx, sizeof mx);
  }
  int buf = o->bufsize == 0 ? WIRE_BUFSIZE_DEFAULT : o->bufsize;
  if (buf > 0) {
    rc |= zmq_setsockopt(s, ZMQ_SNDBUF, &buf, sizeof buf);
    rc |= zmq_setsockopt(s, ZMQ_RCVBUF, &buf, sizeof buf);
  }
  return rc;
}

int64_t wire_max_embedding_msg(int64_t rows, int64_t width) {
  if (rows < 1) rows = 1;
  if (width < 1) width = 1;
  if (rows > ((int64_t)1 << 24) || width > ((int64_t)1 << 20)) return 0;  // no sensible bound: none
  return rows * width * 4 * 2 + ((int64_t)1 << 20);
}

struct wire_peers {
  void *sock;  // the watched socket (borrowed)
  void *mon;   // PAIR reading the socket's monitor events
  int live;    // connections up now
  int seen;    // connections made since the socket was opened
};

// ipc:// endpoints are protected by the file system: a bound socket file is made 0600, and a
// missing directory is created 0700 (an existing one is left as it is). The file exists between
// bind and chmod with the umask's mode for an instant; a 0700 directory closes that window.
// Abstract (ipc://@name) and wildcard (ipc://*) endpoints have no file.
static int ipc_path(const char *endpoint, char *path, size_t cap) {
  if (strncmp(endpoint, "ipc://", 6) != 0) return 0;
  const char *p = endpoint + 6;
  if (!*p || *p == '@' || !strcmp(p, "*") || strlen(p) >= cap) return 0;
  snprintf(path, cap, "%s", p);
  return 1;
}

static int ipc_before_bind(const char *endpoint, ps_err_t *err) {
  char path[4096];
  if (!ipc_path(endpoint, path, sizeof path)) return 0;
  char *slash = strrchr(path, '/');
  if (!slash || slash == path) return 0;
  *slash = 0;
  struct stat sb;
  if (stat(path, &sb) == 0) return 0;
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return ps_err_set(err, -errno, "%s: creating the socket directory %s: %s", endpoint, path, strerror(errno));
  return 0;
}

static int ipc_after_bind(const char *endpoint, ps_err_t *err) {
  char path[4096];
  if (!ipc_path(endpoint, path, sizeof path)) return 0;
  if (chmod(path, 0600) != 0) return ps_err_set(err, -errno, "%s: chmod 0600: %s", endpoint, strerror(errno));
  return 0;
}

// The monitor sends each event with a blocking send from libzmq's I/O thread, so the reading
// end takes any number of events (RCVHWM 0) and is connected before the socket makes its first
// connection; it is stopped before it is closed (wire_peers_destroy).
// A CURVE server socket's monitor also reports failed handshakes (counted by curve.c).
static wire_peers_t *peers_attach(void *zctx, void *s, int curve_server, ps_err_t *err) {
  char ep[64];
  snprintf(ep, sizeof ep, "inproc://protsae-wire-peers-%p", s);
  int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;
  if (curve_server) events |= curve_monitor_events();
  void *mon;
  if (curve_monitor_open(&mon, zctx, s, ep, events, err) < 0) return NULL;
  wire_peers_t *p = ps_xmalloc(sizeof *p);
  p->sock = s;
  p->mon = mon;
  p->live = p->seen = 0;
  return p;
}

static void *socket_open(void *zctx, int type, const char *endpoint, const wire_opts_t *opts, wire_peers_t **peers,
                         ps_err_t *err) {
  wire_opts_t def = WIRE_OPTS_DEFAULT;
  if (!opts) opts = &def;
  if (peers) *peers = NULL;
  if (!endpoint || !*endpoint) {
    ps_err_set(err, PS_ECONFIG, "no endpoint given");
    return NULL;
  }
  int bind = (type == ZMQ_PULL);
  if (endpoint[0] == '@') bind = 1, endpoint++;
  else if (endpoint[0] == '>') bind = 0, endpoint++;
  void *s = zmq_socket(zctx, type);
  if (!s) {
    ps_err_set(err, -errno, "zmq_socket: %s", zmq_strerror(errno));
    return NULL;
  }
  if (set_opts(s, type, opts) != 0) {
    ps_err_set(err, -errno, "%s: setting socket options: %s", endpoint, zmq_strerror(errno));
    zmq_close(s);
    return NULL;
  }
  // tcp:// with CURVE configured (curve.h): server or client keys; a server's failed
  // handshakes are counted from its monitor (the caller's, else one curve.c reads).
  int tcp = !strncmp(endpoint, "tcp://", 6), curve_server = tcp && bind && curve_enabled();
  if (tcp && curve_socket_setup(zctx, s, bind, err) < 0) {
    ps_err_prefix(err, "%s: ", endpoint);
    zmq_close(s);
    return NULL;
  }
  wire_peers_t *p = NULL;
  if (peers && !(p = peers_attach(zctx, s, curve_server, err))) {
    zmq_close(s);
    return NULL;
  }
  if (curve_server && !peers && curve_socket_watch(zctx, s, err) < 0) {
    zmq_close(s);
    return NULL;
  }
  if (bind && ipc_before_bind(endpoint, err) < 0) {
    wire_peers_destroy(&p);
    zmq_close(s);
    return NULL;
  }
  int rc = bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint);
  if (rc != 0) {
    ps_err_set(err, -errno, "%s %s: %s", bind ? "bind" : "connect", endpoint, zmq_strerror(errno));
    wire_peers_destroy(&p);
    zmq_close(s);
    return NULL;
  }
  if (bind && ipc_after_bind(endpoint, err) < 0) {
    wire_peers_destroy(&p);
    zmq_close(s);
    return NULL;
  }
  if (peers) *peers = p;
  return s;
}

void *wire_socket(void *zctx, int type, const char *endpoint, const wire_opts_t *opts, ps_err_t *err) {
  return socket_open(zctx, type, endpoint, opts, NULL, err);
}

void *wire_socket_watched(void *zctx, int type, const char *endpoint, const wire_opts_t *opts,
                          wire_peers_t **peers, ps_err_t *err) {
  PS_ASSERT(peers);
  return socket_open(zctx, type, endpoint, opts, peers, err);
}

void wire_close(void **sock) {
  if (!sock || !*sock) return;
  zmq_close(*sock);
  *sock = NULL;
}

// Apply the monitor events that have arrived: [uint16 event, uint32 value] + endpoint frame.
static int peers_update(wire_peers_t *p, ps_err_t *err) {
  for (;;) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, p->mon, ZMQ_DONTWAIT) < 0) {
      int e = errno;
      zmq_msg_close(&m);
      if (e == EAGAIN) return 0;
      if (e == EINTR) continue;
      return ps_err_set(err, -e, "socket monitor: %s", zmq_strerror(e));
    }
    uint16_t ev = 0;
    uint32_t val = 0;
    if (zmq_msg_size(&m) >= sizeof ev) memcpy(&ev, zmq_msg_data(&m), sizeof ev);
    if (zmq_msg_size(&m) >= sizeof ev + sizeof val) memcpy(&val, (const char *)zmq_msg_data(&m) + sizeof ev, sizeof val);
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    char ep[256] = "";
    while (more) {  // the endpoint frame
      zmq_msg_init(&m);
      int r;
      while ((r = zmq_msg_recv(&m, p->mon, 0)) < 0 && errno == EINTR) {
      }
      if (r < 0) {
        int e = errno;
        zmq_msg_close(&m);
        return ps_err_set(err, -e, "socket monitor: %s", zmq_strerror(e));
      }
      if (!ep[0]) {
        size_t n = zmq_msg_size(&m) < sizeof ep - 1 ? zmq_msg_size(&m) : sizeof ep - 1;
        memcpy(ep, zmq_msg_data(&m), n);
        ep[n] = 0;
      }
      more = zmq_msg_more(&m);
      zmq_msg_close(&m);
    }
    curve_note_event(ev, val, ep);  // failed handshakes of a CURVE server; others are ignored
    if (ev == ZMQ_EVENT_CONNECTED || ev == ZMQ_EVENT_ACCEPTED) {
      p->live++;
      p->seen++;
    } else if (ev == ZMQ_EVENT_DISCONNECTED && p->live > 0) {
      p->live--;
    }
  }
}

int wire_peers_live(wire_peers_t *p) {
  peers_update(p, NULL);
  return p->live;
}

int wire_peers_wait_hangup(wire_peers_t *p, int timeout_ms, ps_err_t *err) {
  int64_t deadline = timeout_ms >= 0 ? ps_mono_ms() + timeout_ms : -1;
  for (;;) {
    int rc = peers_update(p, err);
    if (rc < 0) return rc;
    if (p->seen && !p->live) return 0;
    int slice = 100;
    if (deadline >= 0) {
      int64_t left = deadline - ps_mono_ms();
      if (left <= 0) {
        if (!p->seen)
          return ps_err_set(err, -ETIMEDOUT, "no consumer connected within %d ms", timeout_ms);
        return ps_err_set(err, -ETIMEDOUT, "%d consumer(s) still connected after %d ms (a consumer closes its "
                          "socket after its last EndOfStream)", p->live, timeout_ms);
      }
      if (left < slice) slice = (int)left;
    }
    zmq_pollitem_t it = {p->mon, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, slice) < 0 && errno != EINTR)
      return ps_err_set(err, -errno, "poll: %s", zmq_strerror(errno));
  }
}

void wire_peers_destroy(wire_peers_t **pp) {
  if (!pp || !*pp) return;
  wire_peers_t *p = *pp;
  zmq_socket_monitor(p->sock, NULL, 0);  // stop the events before their reader goes
  zmq_close(p->mon);
  free(p);
  *pp = NULL;
}

void wire_envelope_init(Protsae__Envelope *env, const char *run_id, const char *producer, uint64_t seq) {
  protsae__envelope__init(env);
  env->schema_version = PS_SCHEMA_VERSION;
  env->run_id = (char *)(run_id ? run_id : "");
  env->producer = (char *)(producer ? producer : "");
  env->seq = seq;
}

static void free_buf(void *data, void *hint) {
  (void)hint;
  free(data);
}

static int send_impl(void *sock, const Protsae__Envelope *env, volatile sig_atomic_t *stop, int timeout_ms,
                     ps_err_t *err) {
  size_t n = protsae__envelope__get_packed_size(env);
  uint8_t *buf = ps_xmalloc(n);
  protsae__envelope__pack(env, buf);
  zmq_msg_t msg;
  zmq_msg_init_data(&msg, buf, n, free_buf, NULL);  // zero-copy: zmq frees buf
  int waited = 0;
  for (;;) {
    if (zmq_msg_send(&msg, sock, ZMQ_DONTWAIT) >= 0) return 0;
    if (errno != EAGAIN && errno != EINTR) {
      int e = errno;
      zmq_msg_close(&msg);
      return ps_err_set(err, -e, "send: %s", zmq_strerror(e));
    }
    if (stop && *stop) {
      zmq_msg_close(&msg);
      return ps_err_set(err, PS_EINTR, "send interrupted by a stop request");
    }
    if (timeout_ms >= 0) {
      if (waited >= timeout_ms) {
        zmq_msg_close(&msg);
        return ps_err_set(err, -ETIMEDOUT, "send: no room for %d ms (is the consumer running?)", timeout_ms);
      }
      waited += 100;
    }
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLOUT, 0};
    zmq_poll(&it, 1, 100);  // back-pressure: wait for room, wake to check the stop flag
  }
}

int wire_send(void *sock, const Protsae__Envelope *env, volatile sig_atomic_t *stop, ps_err_t *err) {
  return send_impl(sock, env, stop, -1, err);
}

int wire_send_timeout(void *sock, const Protsae__Envelope *env, int timeout_ms, ps_err_t *err) {
  return send_impl(sock, env, NULL, timeout_ms, err);
}

int wire_decode(const uint8_t *buf, size_t len, Protsae__Envelope **out, wire_stats_t *st) {
  *out = NULL;
  Protsae__Envelope *env = protsae__envelope__unpack(NULL, len, buf);
  if (!env) {
    if (st) st->dropped_malformed++;
    return 0;
  }
  if (env->schema_version / 1000 != PS_SCHEMA_MAJOR) {
    if (st) st->dropped_version++;
    protsae__envelope__free_unpacked(env, NULL);
    return 0;
  }
  if (env->body_case == PROTSAE__ENVELOPE__BODY__NOT_SET) {
    if (st) st->dropped_empty++;
    protsae__envelope__free_unpacked(env, NULL);
    return 0;
  }
  if (env->body_case == PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH &&
      wire_check_embedding_batch(env->embedding_batch, NULL) < 0) {
    if (st) st->dropped_malformed++;
    protsae__envelope__free_unpacked(env, NULL);
    return 0;
  }
  if (env->body_case == PROTSAE__ENVELOPE__BODY_FEATURE_BATCH &&
      wire_check_feature_batch(env->feature_batch, NULL) < 0) {
    if (st) st->dropped_malformed++;
    protsae__envelope__free_unpacked(env, NULL);
    return 0;
  }
  if (st) {
    st->received++;
    st->bytes += len;
  }
  *out = env;
  return 1;
}

int wire_recv(void *sock, Protsae__Envelope **out, int timeout_ms, volatile sig_atomic_t *stop,
              wire_stats_t *st, ps_err_t *err) {
  *out = NULL;
  int waited = 0, polled = 0;  // timeout 0: one poll without waiting (what is there already)
  for (;;) {
    if (stop && *stop) return ps_err_set(err, PS_EINTR, "receive interrupted by a stop request");
    int slice = 100;
    if (timeout_ms >= 0) {
      if (waited >= timeout_ms && polled) return 0;
      if (timeout_ms - waited < slice) slice = timeout_ms - waited;
    }
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&it, 1, slice);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ps_err_set(err, -errno, "poll: %s", zmq_strerror(errno));
    }
    polled = 1;
    if (rc == 0) {
      waited += slice;
      continue;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
      int e = errno;
      zmq_msg_close(&msg);
      if (e == EAGAIN || e == EINTR) continue;
      return ps_err_set(err, -e, "recv: %s", zmq_strerror(e));
    }
    int got = wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), out, st);
    zmq_msg_close(&msg);
    if (got) return 1;
  }
}

void wire_free(Protsae__Envelope **env) {
  if (!env || !*env) return;
  protsae__envelope__free_unpacked(*env, NULL);
  *env = NULL;
}

int wire_check_embedding_batch(const Protsae__EmbeddingBatch *b, ps_err_t *err) {
  uint64_t want = (uint64_t)b->n_rows * b->dim * 4;
  if (b->dim == 0 && b->n_rows > 0) return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: dim 0 with %u rows", b->n_rows);
  if (b->rows.len != want)
    return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: rows hold %zu bytes, expected %u x %u x 4 = %llu",
                      b->rows.len, b->n_rows, b->dim, (unsigned long long)want);
  if (b->target_dim) {
    uint64_t tw = (uint64_t)b->n_rows * b->target_dim * 4;
    if (b->target_rows.len != tw)
      return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: target rows hold %zu bytes, expected %llu",
                        b->target_rows.len, (unsigned long long)tw);
  } else if (b->target_rows.len) {
    return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: target rows without target_dim");
  }
  if (b->level == PROTSAE__LEVEL__LEVEL_RESIDUE) {
    if (b->n_residue_offsets != b->n_protein_ids + 1)
      return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: %zu residue offsets for %zu proteins",
                        b->n_residue_offsets, b->n_protein_ids);
    if (b->residue_offsets[0] != 0 || b->residue_offsets[b->n_residue_offsets - 1] != b->n_rows)
      return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: residue offsets do not span the %u rows", b->n_rows);
    for (size_t i = 1; i < b->n_residue_offsets; i++)
      if (b->residue_offsets[i] < b->residue_offsets[i - 1])
        return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: residue offsets decrease at %zu", i);
  } else if (b->n_protein_ids != b->n_rows) {
    return ps_err_set(err, PS_EPROTO, "EmbeddingBatch: %zu ids for %u protein-level rows", b->n_protein_ids,
                      b->n_rows);
  }
  return 0;
}

int wire_check_feature_batch(const Protsae__FeatureBatch *b, ps_err_t *err) {
  if (b->n_indptr != (size_t)b->n_rows + 1)
    return ps_err_set(err, PS_EPROTO, "FeatureBatch: %zu indptr entries for %u rows", b->n_indptr, b->n_rows);
  if (b->n_indices != b->n_values)
    return ps_err_set(err, PS_EPROTO, "FeatureBatch: %zu indices but %zu values", b->n_indices, b->n_values);
  if (b->indptr[0] != 0 || b->indptr[b->n_rows] != b->n_indices)
    return ps_err_set(err, PS_EPROTO, "FeatureBatch: indptr does not span the %zu entries", b->n_indices);
  for (uint32_t r = 0; r < b->n_rows; r++)
    if (b->indptr[r + 1] < b->indptr[r])
      return ps_err_set(err, PS_EPROTO, "FeatureBatch: indptr decreases at row %u", r);
  if (b->n_features)
    for (size_t i = 0; i < b->n_indices; i++)
      if (b->indices[i] >= b->n_features)
        return ps_err_set(err, PS_EPROTO, "FeatureBatch: feature %u at entry %zu >= n_features %u", b->indices[i], i,
                          b->n_features);
  if (b->level == PROTSAE__LEVEL__LEVEL_RESIDUE) {
    if (b->n_residue_offsets != b->n_protein_ids + 1 || b->residue_offsets[0] != 0 ||
        b->residue_offsets[b->n_protein_ids] != b->n_rows)
      return ps_err_set(err, PS_EPROTO, "FeatureBatch: residue offsets do not span the %u rows", b->n_rows);
    for (size_t i = 1; i < b->n_residue_offsets; i++)
      if (b->residue_offsets[i] < b->residue_offsets[i - 1])
        return ps_err_set(err, PS_EPROTO, "FeatureBatch: residue offsets decrease at %zu", i);
    if (b->n_pooled_indptr) {
      if (b->n_pooled_indptr != b->n_protein_ids + 1 || b->n_pooled_indices != b->n_pooled_values ||
          b->pooled_indptr[0] != 0 || b->pooled_indptr[b->n_protein_ids] != b->n_pooled_indices)
        return ps_err_set(err, PS_EPROTO, "FeatureBatch: pooled codes do not span %zu proteins", b->n_protein_ids);
      for (size_t i = 1; i < b->n_pooled_indptr; i++)
        if (b->pooled_indptr[i] < b->pooled_indptr[i - 1])
          return ps_err_set(err, PS_EPROTO, "FeatureBatch: pooled indptr decreases at %zu", i);
      if (b->n_features)
        for (size_t i = 0; i < b->n_pooled_indices; i++)
          if (b->pooled_indices[i] >= b->n_features)
            return ps_err_set(err, PS_EPROTO, "FeatureBatch: pooled feature %u at entry %zu >= n_features %u",
                              b->pooled_indices[i], i, b->n_features);
    }
  } else if (b->n_pooled_indptr || b->n_pooled_indices) {
    return ps_err_set(err, PS_EPROTO, "FeatureBatch: pooled codes at protein level");
  } else if (b->n_protein_ids != b->n_rows) {
    return ps_err_set(err, PS_EPROTO, "FeatureBatch: %zu ids for %u protein-level rows", b->n_protein_ids, b->n_rows);
  }
  return 0;
}
