// curve.c — see curve.h.
#include "curve.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#include "log.h"

static struct {
  int on;
  char secret[CURVE_KEY_Z85 + 1], pub[CURVE_KEY_Z85 + 1], server[CURVE_KEY_Z85 + 1];
  uint8_t (*allowed)[32];
  size_t n_allowed;
} g;

static uint64_t refused;  // __atomic
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  // the handlers and the log rate limit

static const char z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

// A key in text: 40 Z85 characters. 0, or <0 with err naming where (what: "PATH" or "PATH:LINE").
static int key_parse(const char *s, size_t len, const char *what, char z85[CURVE_KEY_Z85 + 1], uint8_t bin[32],
                     ps_err_t *err) {
  while (len && isspace((unsigned char)*s)) s++, len--;
  while (len && isspace((unsigned char)s[len - 1])) len--;
  if (len != CURVE_KEY_Z85)
    return ps_err_set(err, PS_EFORMAT, "%s: expected a CURVE key of %d Z85 characters, found %zu characters", what,
                      CURVE_KEY_Z85, len);
  for (size_t i = 0; i < len; i++)
    if (!s[i] || !strchr(z85_chars, s[i]))
      return ps_err_set(err, PS_EFORMAT, "%s: not a Z85 key: byte 0x%02x at character %zu", what,
                        (unsigned char)s[i], i + 1);
  char buf[CURVE_KEY_Z85 + 1];
  memcpy(buf, s, CURVE_KEY_Z85);
  buf[CURVE_KEY_Z85] = 0;
  uint8_t b[32];
  if (!zmq_z85_decode(b, buf)) return ps_err_set(err, PS_EFORMAT, "%s: not a Z85 key (does not decode)", what);
  if (z85) memcpy(z85, buf, sizeof buf);
  if (bin) memcpy(bin, b, 32);
  return 0;
}

// The whole of a small text file (caller frees). 0 or <0 naming the file.
static int slurp(const char *path, char **out, size_t *len, ps_err_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *b = ps_xmalloc(cap + 1);
  for (;;) {
    size_t r = fread(b + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    if (cap >= ((size_t)1 << 24)) {
      fclose(f);
      free(b);
      return ps_err_set(err, PS_EFORMAT, "%s: larger than 16 MiB: not a key file", path);
    }
    cap *= 2;
    b = ps_xrealloc(b, cap + 1);
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(b);
    return ps_err_set(err, PS_EIO, "%s: read error", path);
  }
  b[n] = 0;
  *out = b;
  *len = n;
  return 0;
}

int curve_key_read(const char *path, char z85[CURVE_KEY_Z85 + 1], uint8_t bin[32], ps_err_t *err) {
  char *b = NULL;
  size_t n = 0;
  int rc = slurp(path, &b, &n, err);
  if (rc < 0) return rc;
  rc = key_parse(b, n, path, z85, bin, err);
  free(b);
  return rc;
}

static void keys_push(uint8_t (**keys)[32], size_t *n, const uint8_t k[32]) {
  *keys = ps_xrealloc(*keys, (*n + 1) * sizeof **keys);
  memcpy((*keys)[*n], k, 32);
  (*n)++;
}

static int pub_name(const struct dirent *d) {
  size_t l = strlen(d->d_name);
  return d->d_name[0] != '.' && l > 4 && !strcmp(d->d_name + l - 4, ".pub");
}

int curve_allowed_read(const char *path, uint8_t (**keys)[32], size_t *n, ps_err_t *err) {
  *keys = NULL;
  *n = 0;
  struct stat sb;
  if (stat(path, &sb) != 0) return ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
  int rc = 0;
  if (S_ISDIR(sb.st_mode)) {
    struct dirent **list = NULL;
    int m = scandir(path, &list, pub_name, alphasort);
    if (m < 0) return ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
    for (int i = 0; i < m; i++) {
      char p[4096];
      uint8_t k[32];
      snprintf(p, sizeof p, "%s/%s", path, list[i]->d_name);
      if (rc == 0 && (rc = curve_key_read(p, NULL, k, err)) == 0) keys_push(keys, n, k);
      free(list[i]);
    }
    free(list);
  } else {
    char *b = NULL;
    size_t len = 0;
    if ((rc = slurp(path, &b, &len, err)) < 0) return rc;
    int line = 0;
    for (char *s = b, *e; rc == 0 && s < b + len; s = e + 1) {
      line++;
      e = strchr(s, '\n');
      if (!e) e = b + len;
      char *t = s;
      while (t < e && isspace((unsigned char)*t)) t++;
      if (t == e || *t == '#') continue;
      char what[4200];
      snprintf(what, sizeof what, "%s:%d", path, line);
      uint8_t k[32];
      if ((rc = key_parse(t, (size_t)(e - t), what, NULL, k, err)) == 0) keys_push(keys, n, k);
    }
    free(b);
  }
  if (rc == 0 && *n == 0) rc = ps_err_set(err, PS_EFORMAT, "%s: no public key in it", path);
  if (rc < 0) {
    free(*keys);
    *keys = NULL;
    *n = 0;
  }
  return rc;
}

int curve_configure(const char *secret, const char *pub, const char *server_public, const char *allowed,
                    ps_err_t *err) {
  if (!secret) {
    if (pub || server_public || allowed)
      return ps_err_set(err, PS_ECONFIG, "curve-public, curve-server-public and curve-allowed need curve-secret");
    return 0;
  }
  if (!zmq_has("curve"))
    return ps_err_set(err, PS_EUNSUPP, "this libzmq was built without CURVE (libsodium)");
  int rc = curve_key_read(secret, g.secret, NULL, err);
  if (rc < 0) return rc;
  char derived[CURVE_KEY_Z85 + 1];
  if (zmq_curve_public(derived, g.secret) != 0)
    return ps_err_set(err, -errno, "%s: cannot derive the public key: %s", secret, zmq_strerror(errno));
  if (pub) {
    if ((rc = curve_key_read(pub, g.pub, NULL, err)) < 0) return rc;
    if (strcmp(g.pub, derived) != 0)
      return ps_err_set(err, PS_EMISMATCH, "%s is not the public key of the secret key %s", pub, secret);
  } else {
    memcpy(g.pub, derived, sizeof derived);
  }
  if (server_public) {
    if ((rc = curve_key_read(server_public, g.server, NULL, err)) < 0) return rc;
  } else {
    memcpy(g.server, g.pub, sizeof g.pub);
  }
  free(g.allowed);
  g.allowed = NULL;
  g.n_allowed = 0;
  if (allowed) {
    if ((rc = curve_allowed_read(allowed, &g.allowed, &g.n_allowed, err)) < 0) return rc;
  } else {
    uint8_t k[32];
    zmq_z85_decode(k, g.pub);
    keys_push(&g.allowed, &g.n_allowed, k);
  }
  g.on = 1;
  return 0;
}

int curve_from_config(const ps_config_t *c, ps_err_t *err) {
  int rc = curve_configure(ps_config_str(c, "curve-secret"), ps_config_str(c, "curve-public"),
                           ps_config_str(c, "curve-server-public"), ps_config_str(c, "curve-allowed"), err);
  if (rc < 0) return rc;
  if (g.on) PS_INFO("tcp:// sockets use CURVE: public key %s, %zu allowed client key(s)", g.pub, g.n_allowed);
  else PS_INFO("tcp:// sockets are not authenticated (no --curve-secret)");
  return 0;
}

int curve_enabled(void) { return g.on; }

uint64_t curve_refused_total(void) { return __atomic_load_n(&refused, __ATOMIC_RELAXED); }

static double refused_read(void) { return (double)curve_refused_total(); }

void curve_metrics(ps_metrics_t *m) {
  ps_metrics_add_read(m, "auth_refused_total", PS_COUNTER,
                      "tcp:// connection attempts refused: client key not allowed, no CURVE, failed handshake",
                      refused_read);
}

// Count a refusal and log it: the first 5, then at most one line per 10 s with the count.
static void refusal(const char *fmt, const char *a, const char *b) {
  uint64_t n = __atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
  static double last;
  static uint64_t last_n;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
  pthread_mutex_lock(&mu);
  int log = n <= 5 || now - last >= 10.0;
  uint64_t since = n - last_n;
  if (log) last = now, last_n = n;
  pthread_mutex_unlock(&mu);
  if (!log) return;
  char msg[512];
  snprintf(msg, sizeof msg, fmt, a, b);
  if (n <= 5) PS_WARN("refused %s refused_total=%llu%s", msg, (unsigned long long)n, n == 5 ? " (further ones: one line per 10 s)" : "");
  else PS_WARN("refused %s refused_total=%llu (%llu since the last line)", msg, (unsigned long long)n, (unsigned long long)since);
}

// --- the ZAP handler: one thread per context, which also reads the monitors of server sockets
// that have none of their own. It ends when the context is terminated (ETERM), closing its
// sockets so zmq_ctx_term can finish.
#define MAX_HANDLERS 8
#define MAX_MONITORS 32

typedef struct zap {
  void *ctx;
  void *rep;                   // inproc://zeromq.zap.01 (owned by the thread once it runs)
  void *pending[MAX_MONITORS]; // monitor readers handed over, not yet picked up (under mu)
  int n_pending;
  int n_watch;                 // monitors attached (names of their endpoints)
} zap_t;

static zap_t handlers[MAX_HANDLERS];
static int n_handlers;

static int recv_frame(void *s, char *buf, size_t cap, size_t *len, int *more) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, s, 0) < 0) {
    int e = errno;
    zmq_msg_close(&m);
    return -e;
  }
  size_t n = zmq_msg_size(&m);
  if (len) *len = n;
  if (buf && cap) {
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(buf, zmq_msg_data(&m), c);
    buf[c] = 0;
  }
  *more = zmq_msg_more(&m);
  zmq_msg_close(&m);
  return 0;
}

// One ZAP request: version, request id, domain, address, routing id, mechanism, credentials...
// Reply: version, request id, status code, status text, user id, metadata.
static int zap_answer(void *rep) {
  char f[7][64];
  size_t len[7] = {0};
  int more = 1, n = 0, rc;
  while (more) {
    char tmp[64];
    size_t l = 0;
    if ((rc = recv_frame(rep, tmp, sizeof tmp, &l, &more)) < 0) return rc;
    if (n < 7) {
      memcpy(f[n], tmp, sizeof tmp);
      len[n] = l;
    }
    n++;
  }
  int ok = 0;
  char who[64] = "?", key[CURVE_KEY_Z85 + 1] = "?";
  if (n >= 7 && !strcmp(f[0], "1.0") && !strcmp(f[5], "CURVE") && len[6] == 32) {
    snprintf(who, sizeof who, "%s", f[3]);
    zmq_z85_encode(key, (const uint8_t *)f[6], 32);
    for (size_t i = 0; i < g.n_allowed && !ok; i++) ok = !memcmp(g.allowed[i], f[6], 32);
  }
  if (!ok) refusal("client key %s from %s: not on the allowed list", key, who);
  const char *rid = n >= 2 ? f[1] : "";
  size_t rid_len = n >= 2 ? len[1] : 0;
  if (rid_len > 63) rid_len = 63;
  zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
  zmq_send(rep, rid, rid_len, ZMQ_SNDMORE);
  zmq_send(rep, ok ? "200" : "400", 3, ZMQ_SNDMORE);
  zmq_send(rep, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
  zmq_send(rep, ok ? key : "", ok ? CURVE_KEY_Z85 : 0, ZMQ_SNDMORE);
  zmq_send(rep, "", 0, 0);
  return 0;
}

void curve_note_event(uint16_t event, uint32_t value, const char *endpoint) {
  (void)value;
  // HANDSHAKE_FAILED_AUTH is the ZAP handler's own refusal, counted there
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
    refusal("a peer on %s: %s", endpoint && *endpoint ? endpoint : "?",
            event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "no CURVE or a bad handshake (protocol error)"
                                                          : "handshake failed");
}

// Monitor message: [uint16 event, uint32 value] + endpoint frame.
static int monitor_read(void *mon) {
  char head[8] = {0}, ep[256] = "";
  size_t l = 0;
  int more = 0, rc;
  if ((rc = recv_frame(mon, head, sizeof head, &l, &more)) < 0) return rc;
  uint16_t ev = 0;
  uint32_t val = 0;
  if (l >= 6) {
    memcpy(&ev, head, 2);
    memcpy(&val, head + 2, 4);
  }
  int frame = 1;
  while (more) {
    if ((rc = recv_frame(mon, frame == 1 ? ep : NULL, frame == 1 ? sizeof ep : 0, NULL, &more)) < 0) return rc;
    frame++;
  }
  curve_note_event(ev, val, ep);
  return 0;
}

static void *zap_main(void *arg) {
  zap_t *z = arg;
  zmq_pollitem_t it[1 + MAX_MONITORS];
  void *mons[MAX_MONITORS];
  int n_mons = 0;
  for (;;) {
    pthread_mutex_lock(&mu);
    while (z->n_pending > 0 && n_mons < MAX_MONITORS) mons[n_mons++] = z->pending[--z->n_pending];
    pthread_mutex_unlock(&mu);
    it[0] = (zmq_pollitem_t){z->rep, 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < n_mons; i++) it[1 + i] = (zmq_pollitem_t){mons[i], 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(it, 1 + n_mons, 100);
    if (rc < 0 && errno == ETERM) break;
    if (rc <= 0) continue;
    if ((it[0].revents & ZMQ_POLLIN) && zap_answer(z->rep) == -ETERM) break;
    int term = 0;
    for (int i = 0; i < n_mons && !term; i++)
      if (it[1 + i].revents & ZMQ_POLLIN) term = monitor_read(mons[i]) == -ETERM;
    if (term) break;
  }
  zmq_close(z->rep);
  for (int i = 0; i < n_mons; i++) zmq_close(mons[i]);
  pthread_mutex_lock(&mu);
  while (z->n_pending > 0) zmq_close(z->pending[--z->n_pending]);
  z->ctx = NULL;  // the slot may serve a new context
  pthread_mutex_unlock(&mu);
  return NULL;
}

// The context's handler, started on first use (under mu). NULL with err on failure.
static zap_t *zap_get(void *zctx, ps_err_t *err) {
  for (int i = 0; i < n_handlers; i++)
    if (handlers[i].ctx == zctx) return &handlers[i];
  zap_t *z = NULL;
  for (int i = 0; i < n_handlers && !z; i++)
    if (!handlers[i].ctx) z = &handlers[i];
  if (!z && n_handlers < MAX_HANDLERS) z = &handlers[n_handlers++];
  if (!z) {
    ps_err_set(err, PS_ESTATE, "CURVE: more than %d ZeroMQ contexts with server sockets", MAX_HANDLERS);
    return NULL;
  }
  memset(z, 0, sizeof *z);
  void *rep = zmq_socket(zctx, ZMQ_REP);
  int zero = 0;
  if (!rep || zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero) != 0 || zmq_bind(rep, "inproc://zeromq.zap.01") != 0) {
    ps_err_set(err, -errno, "CURVE: ZAP handler inproc://zeromq.zap.01: %s", zmq_strerror(errno));
    if (rep) zmq_close(rep);
    return NULL;
  }
  z->ctx = zctx;
  z->rep = rep;
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&t, &at, zap_main, z);  // a full barrier: the thread owns rep from here
  pthread_attr_destroy(&at);
  if (e != 0) {
    zmq_close(rep);
    z->ctx = NULL;
    ps_err_set(err, -e, "CURVE: ZAP handler thread: %s", strerror(e));
    return NULL;
  }
  return z;
}

int curve_socket_setup(void *zctx, void *s, int bind, ps_err_t *err) {
  if (!g.on) return 0;
  int rc = 0;
  if (bind) {
    pthread_mutex_lock(&mu);
    zap_t *z = zap_get(zctx, err);
    pthread_mutex_unlock(&mu);
    if (!z) return err && err->code ? err->code : PS_ESTATE;
    int one = 1;
    rc |= zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
    rc |= zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, g.secret, CURVE_KEY_Z85 + 1);
    rc |= zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "protsae", 7);
  } else {
    rc |= zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, g.server, CURVE_KEY_Z85 + 1);
    rc |= zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, g.pub, CURVE_KEY_Z85 + 1);
    rc |= zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, g.secret, CURVE_KEY_Z85 + 1);
  }
  if (rc != 0) return ps_err_set(err, -errno, "CURVE socket options: %s", zmq_strerror(errno));
  return 0;
}

int curve_monitor_open(void **out, void *zctx, void *s, const char *ep, int events, ps_err_t *err) {
  *out = NULL;
  if (zmq_socket_monitor(s, ep, events) != 0)
    return ps_err_set(err, -errno, "zmq_socket_monitor: %s", zmq_strerror(errno));
  void *mon = zmq_socket(zctx, ZMQ_PAIR);
  int zero = 0;
  if (!mon || zmq_setsockopt(mon, ZMQ_RCVHWM, &zero, sizeof zero) != 0 ||
      zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero) != 0 || zmq_connect(mon, ep) != 0) {
    int e = errno;
    if (mon) zmq_close(mon);
    zmq_socket_monitor(s, NULL, 0);
    return ps_err_set(err, -e, "%s: %s", ep, zmq_strerror(e));
  }
  *out = mon;
  return 0;
}

int curve_monitor_events(void) {
  return ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
}

int curve_socket_watch(void *zctx, void *s, ps_err_t *err) {
  if (!g.on) return 0;
  pthread_mutex_lock(&mu);
  zap_t *z = zap_get(zctx, err);
  int full = z && z->n_pending >= MAX_MONITORS;
  int idx = z ? z->n_watch++ : 0;
  pthread_mutex_unlock(&mu);
  if (!z) return err && err->code ? err->code : PS_ESTATE;
  if (full) return ps_err_set(err, PS_ESTATE, "CURVE: more than %d server sockets", MAX_MONITORS);
  char ep[80];
  snprintf(ep, sizeof ep, "inproc://protsae-curve-mon-%p-%d", s, idx);
  void *mon;
  int rc = curve_monitor_open(&mon, zctx, s, ep, curve_monitor_events(), err);
  if (rc < 0) return rc;
  pthread_mutex_lock(&mu);
  z->pending[z->n_pending++] = mon;  // the thread picks it up within 100 ms
  pthread_mutex_unlock(&mu);
  return 0;
}
