// service.c — the reader's service mode: the annotation service's head (service.h).
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "drop.h"
#include "fasta_check.h"
#include "io.h"
#include "log.h"
#include "replay.h"
#include "send.h"
#include "service.h"
#include "signals.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

typedef struct pm {             // a proteome in flight
  drop_item_t it;
  char key[320];
  reader_opts_t o;
  reader_t *rd;                 // while streaming
  replay_t *rp;
  send_ctx_t sc;
  reader_pos_t pos;             // where the next batch starts
  fasta_check_result_t chk;     // the FASTA's check: the records skipped (borrowed by o)
  uint64_t rows, proteins, residues, tokens;
  int streaming;                // 1: batches still to send; 0: sent, waiting for the acknowledgement
  int64_t t0, t_eos, t_log;
  struct pm *next;
} pm_t;

typedef struct svc {
  const service_opts_t *o;
  const service_io_t *io;
  char ledger[PATH_MAX];
  pm_t *head;
  int n_inflight, n_queued;
  uint64_t n_done, n_failed, n_dup, n_proteins, n_residues, n_tokens, n_batches;
  double busy_s;                // time spent streaming (rates)
  int m_queued, m_inflight, m_done, m_failed, m_dup, m_prot, m_res, m_tok, m_res_rate, m_tok_rate, m_batches;
} svc_t;


static void metrics(svc_t *s) {
  ps_metrics_t *mx = s->io->mx;
  if (!mx) return;
  ps_metrics_set(mx, s->m_queued, s->n_queued);
  ps_metrics_set(mx, s->m_inflight, s->n_inflight);
  ps_metrics_set(mx, s->m_done, (double)s->n_done);
  ps_metrics_set(mx, s->m_failed, (double)s->n_failed);
  ps_metrics_set(mx, s->m_dup, (double)s->n_dup);
  ps_metrics_set(mx, s->m_prot, (double)s->n_proteins);
  ps_metrics_set(mx, s->m_res, (double)s->n_residues);
  ps_metrics_set(mx, s->m_tok, (double)s->n_tokens);
  ps_metrics_set(mx, s->m_batches, (double)s->n_batches);
  double b = s->busy_s > 1e-3 ? s->busy_s : 1e-3;
  ps_metrics_set(mx, s->m_res_rate, (double)s->n_residues / b);
  ps_metrics_set(mx, s->m_tok_rate, (double)s->n_tokens / b);
  ps_metrics_alive(mx);
}

static pm_t *find(svc_t *s, const char *key) {
  for (pm_t *p = s->head; p; p = p->next)
    if (!strcmp(p->key, key)) return p;
  return NULL;
}
static int in_flight_name(svc_t *s, const char *name) {
  for (pm_t *p = s->head; p; p = p->next)
    if (!strcmp(p->it.name, name)) return 1;
  return 0;
}

static void pm_free(svc_t *s, pm_t *p) {
  for (pm_t **q = &s->head; *q; q = &(*q)->next)
    if (*q == p) {
      *q = p->next;
      break;
    }
  reader_destroy(&p->rd);
  replay_destroy(&p->rp);
  fasta_check_result_free(&p->chk);
  free(p);
  s->n_inflight--;
}

static send_ctx_t ctx_for(svc_t *s, const char *key) {
  send_ctx_t c = {s->io->out, s->o->run_id, s->o->producer, 0, s->o->layer, 0, key};
  return c;
}

// The proteome's EndOfStream: "done" with its counts, or "error: msg" (nothing of it was sent).
static int send_end(svc_t *s, pm_t *p, const char *key, const char *error) {
  send_ctx_t c = ctx_for(s, key);
  char reason[1100];
  send_eos_info_t e = {0};
  if (error) {
    snprintf(reason, sizeof reason, "error: %s", error);
    e.reason = reason;
  } else {
    e = (send_eos_info_t){p->pos.seq, p->rows, p->pos.seq, p->proteins, p->chk.n_skipped, p->residues, "done"};
  }
  ps_err_t err = {0};
  int rc = send_eos(&c, &e, 10000, &err);
  if (rc < 0) PS_WARN("proteome %s: EndOfStream not sent: %s", key, err.msg);
  return rc;
}

static void fail_item(svc_t *s, const drop_item_t *it, const char *key, const char *msg) {
  printf("%s: FAILED: %s\n", it->name, msg);
  fflush(stdout);
  PS_ERROR("proteome failed name=%s key=%s error=\"%s\"", it->name, key ? key : "-", msg);
  drop_fail(s->o->drop, it, msg);
  if (key) send_end(s, NULL, key, msg);
  s->n_failed++;
}

// ---- checks before streaming ----------------------------------------------------------------
// Precomputed embeddings are read once in a forked child before anything is sent: a bad file
// (wrong dimension, NaN, an id not in the FASTA, a truncated file) fails the proteome with the
// file and record named, and a parser that aborts the process on a corrupt file (libhdf5 does)
// takes only the child with it.
static int probe_isolated(const reader_opts_t *ro, int64_t expect_dim, char *msg, size_t cap) {
  int pfd[2];
  if (pipe(pfd) != 0) return snprintf(msg, cap, "pipe: %s", strerror(errno)), -1;
  fflush(stdout), fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]), close(pfd[1]);
    return snprintf(msg, cap, "fork: %s", strerror(errno)), -1;
  }
  if (pid == 0) {
    close(pfd[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    ps_err_t e = {0};
    reader_t *rd = NULL;
    reader_batch_t b;
    int rc = reader_new(&rd, ro, &e);
    while (rc >= 0 && (rc = reader_next_batch(rd, &b, &e)) > 0)
      if (expect_dim && b.dim != (uint32_t)expect_dim) {
        rc = ps_err_set(&e, PS_EDIM, "%s: record %llu (%s): dimension %u but the SAE expects %lld", ro->src.path,
                        (unsigned long long)b.first_record, b.n_proteins ? b.ids[0] : "?", b.dim, (long long)expect_dim);
        break;
      }
    if (rc < 0 && write(pfd[1], e.msg, strlen(e.msg)) < 0) _exit(3);
    _exit(rc < 0 ? 1 : 0);
  }
  close(pfd[1]);
  size_t n = 0;
  ssize_t k;
  while (n + 1 < cap && ((k = read(pfd[0], msg + n, cap - 1 - n)) > 0 || (k < 0 && errno == EINTR)))
    if (k > 0) n += (size_t)k;
  msg[n] = 0;
  close(pfd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(st)) {
    snprintf(msg, cap, "reading the proteome crashed (signal %s): inputs %s, %s - a corrupt file?",
             strsignal(WTERMSIG(st)), ro->src.path, ro->fasta_path);
    return -1;
  }
  return WEXITSTATUS(st) == 0 ? 0 : -1;
}

// ---- starting, streaming, retiring ---------------------------------------------------------
static void retire_dup(svc_t *s, const drop_item_t *it, const char *key) {
  printf("%s: skipped: already annotated (ledger %s)\n", it->name, key);
  fflush(stdout);
  PS_INFO("proteome skipped name=%s ledger=%s", it->name, key);
  drop_move(s->o->drop, it, "done");
  s->n_dup++;
}

// The FASTA's check (fasta_check.h) before anything of it is sent: a bad record fails the
// proteome, or (--bad-records skip) is left out of the stream and counted. With precomputed
// embeddings the letters and lengths do not matter (the model does not read them).
static int check_fasta(svc_t *s, pm_t *p, ps_err_t *err) {
  int8_t alpha[256];
  int esm2 = !p->it.has_emb && s->o->esm2;
  if (esm2) memcpy(alpha, esm2_config(s->o->esm2)->letter_id, sizeof alpha);
  fasta_check_opts_t co = {s->o->skip_bad ? FASTA_CHECK_SKIP : FASTA_CHECK_FAIL,
                           s->o->base.esm2.max_residues,
                           esm2 ? (fasta_long_t)s->o->base.esm2.long_policy : FASTA_LONG_TRUNCATE,
                           (fasta_unknown_t)s->o->base.esm2.unknown, esm2 ? alpha : NULL};
  int rc = fasta_check(p->it.fasta, &co, &p->chk, err);
  if (rc < 0) return rc;
  if (p->chk.n_skipped) {
    if (esm2) {
      p->o.esm2.skip_index = p->chk.skip_index;
      p->o.esm2.n_skip_index = (size_t)p->chk.n_skipped;
    } else {
      p->o.skip_ids = (const char *const *)p->chk.skip_id;
      p->o.n_skip_ids = (size_t)p->chk.n_skipped;
    }
    printf("%s: skipped %" PRIu64 " bad record%s of %" PRIu64 " (", p->it.name, p->chk.n_skipped,
           p->chk.n_skipped == 1 ? "" : "s", p->chk.records);
    const char *sep = "";
    for (int k = 0; k < FASTA_PROBLEM_KINDS; k++)
      if (p->chk.skipped[k]) {
        printf("%s%s %" PRIu64, sep, fasta_problem_name(k), p->chk.skipped[k]);
        sep = ", ";
      }
    printf("); first: %s\n", p->chk.skip_msg[0]);
    fflush(stdout);
  }
  return 0;
}

// 1 started, 0 retired at once (duplicate or failed).
static int start(svc_t *s, const drop_item_t *it) {
  ps_err_t err = {0};
  uint64_t h;
  if (drop_hash(it, &h, &err) < 0) {
    fail_item(s, it, NULL, err.msg);
    return 0;
  }
  char key[320];
  drop_key(it, h, key, sizeof key);
  if (drop_ledger_has(s->ledger, key)) {
    retire_dup(s, it, key);
    return 0;
  }
  pm_t *p = ps_xcalloc(1, sizeof *p);
  p->it = *it;
  snprintf(p->key, sizeof p->key, "%s", key);
  p->o = s->o->base;
  p->o.fasta_path = p->it.fasta;
  if (check_fasta(s, p, &err) < 0) {
    fail_item(s, it, key, err.msg);
    fasta_check_result_free(&p->chk);
    free(p);
    return 0;
  }
  if (p->it.has_emb) {  // precomputed embeddings win over the model
    p->o.esm2_dir = NULL;
    p->o.esm2_model = NULL;
    p->o.src.path = p->it.emb;
    p->o.src.ids_path = p->it.has_ids ? p->it.ids : NULL;
    p->o.src.offsets_path = p->it.has_offsets ? p->it.offsets : NULL;
    char msg[4096];
    if (probe_isolated(&p->o, s->o->expect_dim, msg, sizeof msg) < 0) {
      fail_item(s, it, key, msg[0] ? msg : "cannot read the embeddings");
      fasta_check_result_free(&p->chk);
      free(p);
      return 0;
    }
  } else {
    p->o.esm2_model = s->o->esm2;
    p->o.src.path = NULL;
  }
  p->o.split = READER_SPLIT_ALL;
  p->o.epochs = 1;
  if (reader_new(&p->rd, &p->o, &err) < 0) {
    fail_item(s, it, key, err.msg);
    fasta_check_result_free(&p->chk);
    free(p);
    return 0;
  }
  p->rp = replay_new(&p->o, 0);
  p->sc = ctx_for(s, p->key);
  p->sc.proteome = p->key;  // points into p: stable for its life
  p->streaming = 1;
  p->t0 = p->t_log = ps_mono_ms();
  p->next = s->head;
  s->head = p;
  s->n_inflight++;
  printf("%s: started (%s, %s)\n", it->name, key, p->it.has_emb ? p->it.emb : "native ESM2");
  fflush(stdout);
  PS_INFO("proteome start name=%s key=%s fasta=%s embeddings=%s", it->name, key, it->fasta,
          it->has_emb ? it->emb : "esm2");
  return 1;
}

// Send the next batch of p (or its end). 0, or <0 on a stop request.
static int stream_step(svc_t *s, pm_t *p) {
  ps_err_t err = {0};
  reader_batch_t b;
  int64_t t = ps_mono_ms();
  uint64_t tok0 = reader_esm2_tokens(p->rd);
  int rc = reader_next_batch(p->rd, &b, &err);
  if (rc == PS_EINTR) return rc;
  if (rc < 0) {  // the input went bad part-way (caught by the checks in most cases)
    drop_item_t it = p->it;
    char key[320];
    snprintf(key, sizeof key, "%s", p->key);
    pm_free(s, p);
    fail_item(s, &it, key, err.msg);
    return 0;
  }
  uint64_t dtok = reader_esm2_tokens(p->rd) - tok0;
  if (rc == 0) {
    send_end(s, p, p->key, NULL);
    p->streaming = 0;
    p->t_eos = ps_mono_ms();
    reader_destroy(&p->rd);  // the workspace goes; re-sends open their own reader
    double secs = (double)(p->t_eos - p->t0) / 1000.0;
    printf("%s: sent %" PRIu64 " proteins in %" PRIu64 " batches (%.1f s)\n", p->it.name, p->proteins, p->pos.seq, secs);
    fflush(stdout);
    PS_INFO("proteome sent name=%s key=%s proteins=%" PRIu64 " batches=%" PRIu64 " residues=%" PRIu64 " seconds=%.2f",
            p->it.name, p->key, p->proteins, p->pos.seq, p->residues, secs);
    return 0;
  }
  if ((rc = send_batch(&p->sc, &b, &err)) < 0) return rc == PS_EINTR ? rc : (PS_ERROR("send: %s", err.msg), rc);
  replay_note(p->rp, b.seq, &p->pos);
  p->pos = b.next;
  p->rows += b.n_rows;
  p->proteins += b.n_proteins;
  uint64_t res = dtok >= 2ull * b.n_proteins ? dtok - 2ull * b.n_proteins : 0;
  p->residues += res;
  p->tokens += dtok;
  s->n_proteins += b.n_proteins;
  s->n_residues += res;
  s->n_tokens += dtok;
  s->n_batches++;
  int64_t t1 = ps_mono_ms();
  s->busy_s += (double)(t1 - t) / 1000.0;
  if (s->o->pace_ms > 0) usleep((useconds_t)(s->o->pace_ms * 1000));
  if (t1 - p->t_log >= 5000) {
    p->t_log = t1;
    double secs = (double)(t1 - p->t0) / 1000.0;
    printf("%s: %" PRIu64 " proteins sent, %.0f residues/s, %.0f ESM2 tokens/s\n", p->it.name, p->proteins,
           (double)p->residues / secs, (double)p->tokens / secs);
    fflush(stdout);
  }
  return 0;
}

static void retire_done(svc_t *s, pm_t *p) {
  char text[PATH_MAX * 3];
  snprintf(text, sizeof text, "name\t%s\nfasta\t%s\nembeddings\t%s\nproteins\t%" PRIu64 "\nresidues\t%" PRIu64 "\n",
           p->it.name, p->it.fasta, p->it.has_emb ? p->it.emb : "esm2", p->proteins, p->residues);
  ps_err_t err = {0};
  if (drop_ledger_put(s->ledger, p->key, text, &err) < 0) PS_ERROR("ledger: %s", err.msg);
  drop_move(s->o->drop, &p->it, "done");
  double secs = (double)(ps_mono_ms() - p->t0) / 1000.0;
  printf("%s: annotated (%s): %" PRIu64 " proteins, %.1f s\n", p->it.name, p->key, p->proteins, secs);
  fflush(stdout);
  PS_INFO("proteome done name=%s key=%s proteins=%" PRIu64 " seconds=%.2f", p->it.name, p->key, p->proteins, secs);
  s->n_done++;
  pm_free(s, p);
}

// ---- the control socket (the sink) and the request socket ------------------------------------
static void on_control(svc_t *s, const Protsae__ResendRequest *rq) {
  if (!rq->proteome || !rq->proteome[0]) return;
  pm_t *p = find(s, rq->proteome);
  // Not in flight: an acknowledgement of a proteome failed here (its end carried the error), or
  // one this process has not streamed (sent before a restart). Nothing to do: a proteome still in
  // the drop directory is streamed again and the sink, which has its result, acknowledges it at
  // its first batch.
  if (!p) return;
  if (rq->finished) {
    retire_done(s, p);
    return;
  }
  size_t sent = 0;
  for (size_t i = 0; i < rq->n_seqs && !ps_signals_stop_requested(); i++) {
    if (p->streaming && rq->seqs[i] >= p->pos.seq) continue;
    reader_batch_t b;
    ps_err_t err = {0};
    int got = replay_batch(p->rp, rq->seqs[i], &b, &err);
    if (got < 0) {
      PS_ERROR("proteome %s: re-send of seq %" PRIu64 ": %s", p->key, rq->seqs[i], err.msg);
      break;
    }
    if (got == 0 || send_batch(&p->sc, &b, &err) < 0) continue;
    sent++;
  }
  if (rq->n_seqs) PS_INFO("proteome %s: re-sent %zu of %zu requested batches", p->key, sent, rq->n_seqs);
  if (!p->streaming) {
    send_end(s, p, p->key, NULL);
    p->t_eos = ps_mono_ms();
  }
}

static void reply(svc_t *s, const char *name, const char *key, int dup, const char *error) {
  Protsae__Envelope env;
  Protsae__ProteomeReply r = PROTSAE__PROTEOME_REPLY__INIT;
  wire_envelope_init(&env, s->o->run_id, s->o->producer, 0);
  r.name = (char *)(name ? name : "");
  r.key = (char *)(key ? key : "");
  r.duplicate = dup;
  r.error = (char *)(error ? error : "");
  env.body_case = PROTSAE__ENVELOPE__BODY_PROTEOME_REPLY;
  env.proteome_reply = &r;
  ps_err_t err = {0};
  if (wire_send_timeout(s->io->req, &env, 5000, &err) < 0) PS_WARN("request reply: %s", err.msg);
}

static void on_request(svc_t *s, const Protsae__Envelope *env) {
  if (env->body_case != PROTSAE__ENVELOPE__BODY_PROTEOME_REQUEST) {
    reply(s, NULL, NULL, 0, "expected a ProteomeRequest");
    return;
  }
  const Protsae__ProteomeRequest *rq = env->proteome_request;
  char msg[1200];
  ps_err_t err = {0};
  if (!drop_name_ok(rq->name)) {
    snprintf(msg, sizeof msg, "proteome name '%.200s': use 1-128 of [A-Za-z0-9_.+-], not starting with '.'",
             rq->name ? rq->name : "");
    reply(s, rq->name, NULL, 0, msg);
    return;
  }
  if (in_flight_name(s, rq->name)) {
    snprintf(msg, sizeof msg, "proteome %s is being annotated now: send it again when it is done", rq->name);
    reply(s, rq->name, NULL, 0, msg);
    return;
  }
  int have_bytes = rq->fasta.len > 0, have_path = rq->path && rq->path[0];
  if (have_bytes == have_path) {
    reply(s, rq->name, NULL, 0, "give either the FASTA's bytes or its path");
    return;
  }
  int rc = have_bytes ? drop_put_bytes(s->o->drop, rq->name, rq->fasta.data, rq->fasta.len, &err)
                      : drop_put_path(s->o->drop, rq->name, rq->path, &err);
  if (rc < 0) {
    reply(s, rq->name, NULL, 0, err.msg);
    return;
  }
  drop_item_t *items = NULL;
  size_t n = 0;
  const drop_item_t *it = NULL;
  if (drop_list(s->o->drop, &items, &n, &err) == 0)
    for (size_t i = 0; i < n && !it; i++)
      if (!strcmp(items[i].name, rq->name)) it = &items[i];
  uint64_t h = 0;
  char key[320] = "";
  if (it && drop_hash(it, &h, &err) == 0) drop_key(it, h, key, sizeof key);
  int dup = key[0] && drop_ledger_has(s->ledger, key);
  PS_INFO("request accepted name=%s key=%s duplicate=%d", rq->name, key, dup);
  reply(s, rq->name, key, dup, key[0] ? NULL : err.msg);
  free(items);
}

// Serve what the sockets hold, waiting up to timeout_ms for the first message.
static void serve_sockets(svc_t *s, int timeout_ms) {
  zmq_pollitem_t items[2] = {{s->io->ctl, 0, ZMQ_POLLIN, 0}, {s->io->req, 0, ZMQ_POLLIN, 0}};
  int n = s->io->req ? 2 : 1;
  if (zmq_poll(items, n, timeout_ms) <= 0) return;
  for (int k = 0; k < n; k++) {
    for (int i = 0; i < 64; i++) {
      Protsae__Envelope *env = NULL;
      ps_err_t err = {0};
      int rc = wire_recv(k ? s->io->req : s->io->ctl, &env, 0, &ps_stop_flag, NULL, &err);
      if (rc <= 0) break;
      if (k) on_request(s, env);
      else if (env->body_case == PROTSAE__ENVELOPE__BODY_RESEND_REQUEST) on_control(s, env->resend_request);
      wire_free(&env);
    }
  }
}

// ---- the drop directory ------------------------------------------------------------------------
// One pass: retire what is bad or already done, start what is ready while there is room.
// Returns the proteomes still waiting (queued, or not settled).
static int scan(svc_t *s) {
  drop_item_t *items = NULL;
  size_t n = 0;
  ps_err_t err = {0};
  if (drop_list(s->o->drop, &items, &n, &err) < 0) {
    PS_ERROR("%s", err.msg);
    return 0;
  }
  int waiting = 0, started = 0;
  for (size_t i = 0; i < n && !ps_signals_stop_requested(); i++) {
    drop_item_t *it = &items[i];
    if (in_flight_name(s, it->name)) continue;
    int late = s->o->once || it->has_ready || it->age_s >= (double)s->o->missing_after_s;
    if (!it->has_fasta || (!it->has_emb && !s->o->esm2)) {
      if (!late) {
        waiting++;
        continue;
      }
      char msg[PATH_MAX + 256];
      if (!it->has_fasta && !it->has_emb) snprintf(msg, sizeof msg, "%s/%s.*: neither a FASTA nor embeddings", s->o->drop, it->name);
      else if (!it->has_emb)
        snprintf(msg, sizeof msg, "%s: missing embeddings (%s.npy, %s.safetensors or %s.h5 beside it; or run with --esm2)",
                 it->fasta, it->name, it->name, it->name);
      else snprintf(msg, sizeof msg, "%s: missing FASTA (%s.fasta[.gz] or %s.fa[.gz] beside it)", it->emb, it->name, it->name);
      fail_item(s, it, NULL, msg);
      continue;
    }
    if (!s->o->once && !it->has_ready && it->age_s * 1000.0 < (double)s->o->settle_ms) {
      waiting++;  // still arriving
      continue;
    }
    if (started || s->n_inflight >= s->o->max_in_flight) {
      waiting++;  // one at a time: the one started is streamed before the next is taken
      continue;
    }
    started = start(s, it);
  }
  free(items);
  return waiting;
}

static pm_t *streaming(svc_t *s) {
  for (pm_t *p = s->head; p; p = p->next)
    if (p->streaming) return p;
  return NULL;
}

int service_run(const service_opts_t *o, const service_io_t *io, ps_err_t *err) {
  svc_t s = {.o = o, .io = io};
  char defstate[PATH_MAX];
  const char *state = o->state;
  if (!state) {
    snprintf(defstate, sizeof defstate, "%s/.reader", o->drop);
    state = defstate;
  }
  snprintf(s.ledger, sizeof s.ledger, "%s/ledger", state);
  if ((mkdir(state, 0755) != 0 && errno != EEXIST) || (mkdir(s.ledger, 0755) != 0 && errno != EEXIST))
    return ps_err_set(err, -errno, "%s: cannot create: %s", s.ledger, strerror(errno));
  struct stat sd;
  if (stat(o->drop, &sd) != 0 || !S_ISDIR(sd.st_mode)) return ps_err_set(err, PS_ECONFIG, "%s: not a directory", o->drop);
  ps_metrics_t *mx = io->mx;
  if (mx) {
    s.m_queued = ps_metrics_add(mx, "proteomes_queued", PS_GAUGE, "proteomes waiting in the drop directory");
    s.m_inflight = ps_metrics_add(mx, "proteomes_in_flight", PS_GAUGE, "proteomes streamed or being streamed, not yet acknowledged");
    s.m_done = ps_metrics_add(mx, "proteomes_done_total", PS_COUNTER, "proteomes annotated (acknowledged by the sink)");
    s.m_failed = ps_metrics_add(mx, "proteomes_failed_total", PS_COUNTER, "proteomes failed (bad input)");
    s.m_dup = ps_metrics_add(mx, "proteomes_duplicate_total", PS_COUNTER, "proteomes dropped again (already annotated)");
    s.m_prot = ps_metrics_add(mx, "proteins_total", PS_COUNTER, "proteins sent");
    s.m_res = ps_metrics_add(mx, "residues_total", PS_COUNTER, "residues run through ESM2");
    s.m_tok = ps_metrics_add(mx, "esm2_tokens_total", PS_COUNTER, "tokens run through ESM2 (BOS/EOS included)");
    s.m_batches = ps_metrics_add(mx, "batches_total", PS_COUNTER, "batches sent");
    s.m_res_rate = ps_metrics_add(mx, "residues_per_second", PS_GAUGE, "residues per second while streaming");
    s.m_tok_rate = ps_metrics_add(mx, "esm2_tokens_per_second", PS_GAUGE, "ESM2 tokens per second while streaming");
    ps_metrics_set_stall(mx, 600);
  }
  PS_INFO("service: watching %s (ledger %s, %s, at most %d proteomes in flight)", o->drop, s.ledger,
          o->esm2 ? "native ESM2" : "precomputed embeddings only", o->max_in_flight);
  int64_t last_scan = -1000000;
  for (;;) {
    if (ps_signals_stop_requested()) break;
    pm_t *a = streaming(&s);
    serve_sockets(&s, a ? 0 : 50);
    a = streaming(&s);
    if (a) {
      if (stream_step(&s, a) == PS_EINTR) break;
      metrics(&s);
      continue;
    }
    int64_t t = ps_mono_ms();
    for (pm_t *p = s.head; p; p = p->next)  // an EndOfStream lost with a killed encoder: again
      if (!p->streaming && t - p->t_eos >= o->ack_timeout_ms) {
        PS_INFO("proteome %s: no acknowledgement after %lld ms: EndOfStream again", p->key, (long long)o->ack_timeout_ms);
        send_end(&s, p, p->key, NULL);
        p->t_eos = t;
      }
    // the directory is looked at every interval, and at once (50 ms) when there is room for a
    // proteome that is waiting
    int room = s.n_queued > 0 && s.n_inflight < o->max_in_flight && t - last_scan >= 50;
    if (t - last_scan >= o->interval_ms || room || (!s.n_inflight && o->once)) {
      uint64_t before = s.n_done + s.n_failed + s.n_dup + (uint64_t)s.n_inflight;
      s.n_queued = scan(&s);
      last_scan = t;
      metrics(&s);
      int progressed = s.n_done + s.n_failed + s.n_dup + (uint64_t)s.n_inflight != before;
      if (o->once && !s.n_inflight && !s.n_queued && !progressed) break;
    }
  }
  metrics(&s);
  printf("annotated: %" PRIu64 ", skipped: %" PRIu64 ", failed: %" PRIu64 "%s\n", s.n_done, s.n_dup, s.n_failed,
         s.n_inflight ? " (stopped with proteomes in flight: they are redone at the next start)" : "");
  fflush(stdout);
  // failed proteomes are counted in the line above (and on /metrics), not in the exit status: a
  // supervisor would take a non-zero exit for a crash and start the reader again
  while (s.head) pm_free(&s, s.head);
  return 0;
}
