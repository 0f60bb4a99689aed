// `protsae submit`: hands one proteome to a running annotation service (protsae-reader --watch
// ... --requests EP) as a ProteomeRequest and prints its ProteomeReply: the proteome's key
// (NAME.HASH) and whether it was accepted or is already annotated, or the service's refusal.
//  --fasta FILE: the FASTA's bytes travel in the request (plain or gzip; the service writes them
//    into its drop directory); --path FILE: the service reads FILE from its own file system (a
//    relative path that exists here is made absolute first).
// Exit status: 0 accepted or duplicate, 1 refused or no answer within --timeout-ms, 2 usage.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"
#include "config.h"
#include "curve.h"
#include "io.h"
#include "signals.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    {"to", NULL, "the service's request endpoint (the reader's --requests), e.g. tcp://annotate-reader:5572 or "
                 "ipc:///tmp/protsae-requests.ipc"},
    {"name", NULL, "proteome name: 1-128 of [A-Za-z0-9_.+-], not starting with '.' (outputs are NAME.tsv, NAME.jsonl)"},
    {"fasta", NULL, "FASTA file (plain or .gz) whose bytes are sent"},
    {"path", NULL, "FASTA path the service reads itself (with NAME.npy etc. beside it when precomputed)"},
    {"timeout-ms", "30000", "give up when the service has not answered after this long"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

// The whole file into *buf (caller frees). 0 or <0 with err naming the file.
static int read_whole(const char *path, uint8_t **buf, size_t *n, ps_err_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return ps_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, len = 0, k;
  uint8_t *b = ps_xmalloc(cap);
  while ((k = fread(b + len, 1, cap - len, f)) > 0)
    if ((len += k) == cap) b = ps_xrealloc(b, cap *= 2);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(b);
    return ps_err_set(err, PS_EIO, "%s: read error", path);
  }
  if (!len) {
    free(b);
    return ps_err_set(err, PS_EFORMAT, "%s: empty file", path);
  }
  *buf = b;
  *n = len;
  return 0;
}

// Send the request, wait for the reply (*out, caller frees). 0, or <0 with err (-ETIMEDOUT: no answer).
static int ask(const char *ep, const Protsae__ProteomeRequest *rq, int64_t timeout_ms, Protsae__Envelope **out,
               ps_err_t *err) {
  void *ctx = zmq_ctx_new();
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  wo.linger_ms = 0;  // nothing to deliver after an answer, or after giving up
  wo.max_msg = WIRE_MAX_CONTROL_MSG;
  void *s = wire_socket(ctx, ZMQ_REQ, ep, &wo, err);
  int rc = s ? 0 : (err->code ? err->code : PS_EIO);
  if (rc == 0) {
    Protsae__Envelope env;
    wire_envelope_init(&env, "run", "protsae-submit", 0);
    env.body_case = PROTSAE__ENVELOPE__BODY_PROTEOME_REQUEST;
    env.proteome_request = (Protsae__ProteomeRequest *)rq;
    int64_t t0 = ps_mono_ms();
    rc = wire_send_timeout(s, &env, (int)timeout_ms, err);
    int64_t left = timeout_ms - (ps_mono_ms() - t0);
    if (rc == 0) {
      rc = wire_recv(s, out, (int)(left > 0 ? left : 0), &ps_stop_flag, NULL, err);
      if (rc == 0) rc = -ETIMEDOUT;
      else if (rc == 1) rc = 0;
    }
    if (rc == -ETIMEDOUT)
      ps_err_set(err, -ETIMEDOUT, "no answer within %lld ms (is a protsae-reader --watch ... --requests running there?%s)",
                 (long long)timeout_ms,
                 strstr(ep, "tcp://") && !curve_enabled() ? " a service using CURVE answers only --curve-secret holders" : "");
  }
  wire_close(&s);
  zmq_ctx_term(ctx);
  return rc;
}

int cli_submit(int argc, char **argv) {
  static const char prog[] = "protsae submit";
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, prog, argc, argv);
  if (crc >= 0) return crc;
  const char *ep = ps_config_str(cfg, "to"), *name = ps_config_str(cfg, "name");
  const char *fasta = ps_config_str(cfg, "fasta"), *path = ps_config_str(cfg, "path");
  if (!ep || !name || !!fasta == !!path)
    return ps_config_cli_bad(&cfg, table, prog, "needs --to, --name and one of --fasta FILE or --path FILE");
  ps_err_t err = {0};
  int64_t tmo = 30000;
  uint8_t *bytes = NULL;
  size_t n = 0;
  char abs[PATH_MAX];
  Protsae__ProteomeRequest rq = PROTSAE__PROTEOME_REQUEST__INIT;
  Protsae__Envelope *rep = NULL;
  int status = 1;
  rq.name = (char *)name;
  int tcp = strstr(ep, "tcp://") != NULL;  // CURVE is for tcp:// only
  if (ps_config_i64(cfg, "timeout-ms", &tmo, &err) < 0 || (tcp && curve_from_config(cfg, &err) < 0)) goto out;
  if (tmo < 1) {
    ps_err_set(&err, PS_ECONFIG, "--timeout-ms must be >= 1, not %lld", (long long)tmo);
    goto out;
  }
  if (fasta) {
    if (read_whole(fasta, &bytes, &n, &err) < 0) goto out;
    rq.fasta.data = bytes;
    rq.fasta.len = n;
  } else {
    rq.path = (char *)(path[0] != '/' && realpath(path, abs) ? abs : path);
  }
  if (ask(ep, &rq, tmo, &rep, &err) < 0) {
    ps_err_prefix(&err, "%s: ", ep);
    goto out;
  }
  if (rep->body_case != PROTSAE__ENVELOPE__BODY_PROTEOME_REPLY) {
    ps_err_set(&err, PS_EFORMAT, "%s: answered with message body %d, not a ProteomeReply", ep, (int)rep->body_case);
    goto out;
  }
  const Protsae__ProteomeReply *r = rep->proteome_reply;
  if (r->error && r->error[0]) {
    ps_err_set(&err, PS_ECONFIG, "%s: refused proteome '%s': %s", ep, name, r->error);
    goto out;
  }
  printf("key: %s\nstatus: %s\n", r->key, r->duplicate ? "duplicate" : "accepted");
  if (r->duplicate) printf("%s is already annotated (same name and content): nothing to do\n", name);
  status = 0;
out:
  if (status) fprintf(stderr, "%s: %s\n", prog, err.msg);
  wire_free(&rep);
  free(bytes);
  ps_config_destroy(&cfg);
  return status;
}
