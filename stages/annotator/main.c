// protsae-annotator — the annotation service's sink: FeatureBatches of proteome streams in (PULL,
// from N encoders), each proteome's annotations out once complete (OUT/NAME.tsv, NAME.jsonl,
// NAME.eval.txt), its result in the annotation store (common/annstore.h), the finished ack and
// the requests for missing pieces to the reader (--control, PUSH). Wiring only: the logic is in
// sink.c / sink_write.c, the staging records in stage.c, the GO prediction in common/annot.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "annot.h"
#include "config.h"
#include "curve.h"
#include "godata.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"
#include "sink.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    {"in", "@ipc:///tmp/protsae-annotator.ipc", "input endpoint (PULL; @ binds): FeatureBatches from the encoders"},
    {"control", "", "reader control endpoint for ResendRequests and finished acks (PUSH; e.g. >ipc:///tmp/protsae-reader-ctl.ipc)"},
    {"db", NULL, "the SAE's feature store with complete GO enrichment (and explanations), opened read-only"},
    {"data", NULL, "data directory: go*.obo[.gz] (and go_annotations.tsv[.gz] or a GAF for --evaluate); default the shared human data"},
    {"out", "protsae-annotated", "output directory: NAME.tsv, NAME.jsonl (NAME.eval.txt)"},
    {"state", "protsae-annotator.db", "the annotation store (RocksDB): staging of proteomes in flight and every result"},
    {"resend-after-ms", "10000", "time without progress on a proteome before its missing pieces are asked for again"},
    {"min-score", "0.01", "GO terms scoring below are not written"},
    {"max-terms", "100", "at most this many GO terms a protein, best first (0 = all)"},
    {"scale-activation", "1", "1: score = min(1, activation / the feature's max) x confidence; 0: confidence alone"},
    {"confidence", "precision", "confidence of a feature -> term pair: precision (k/n of the enrichment) | f1 | 1-q"},
    {"evaluate", "0", "1: Fmax of each proteome's predictions against the data's GO annotations (NAME.eval.txt)"},
    {"max-message-mb", "128", "largest message accepted on --in, MiB"},
    {"sync", "0", "fsync the write-ahead log at each staged batch (results are always synced)"},
    {"hwm", "16", "messages queued per peer"},
    {"run-id", "run", "run id stamped on control messages"},
    {"producer", "annotator-0", "producer name stamped on control messages"},
    {"metrics-port", "0", "serve Prometheus /metrics and /healthz on this port (0 = off)"},
    {"metrics-bind", "127.0.0.1", "address of the metrics endpoint (0.0.0.0 in containers)"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

typedef struct ctl {
  void *sock;
  const char *run_id, *producer;
  uint64_t seq;
} ctl_t;

static void send_control(void *c, const char *producer, const char *proteome, const uint64_t *seqs, size_t n,
                         int finished) {
  ctl_t *x = c;
  if (!x->sock) return;
  Protsae__Envelope env;
  Protsae__ResendRequest rq = PROTSAE__RESEND_REQUEST__INIT;
  wire_envelope_init(&env, x->run_id, x->producer, x->seq++);
  rq.producer = (char *)producer;
  rq.proteome = (char *)proteome;
  rq.n_seqs = n;
  rq.seqs = (uint64_t *)seqs;
  rq.finished = finished;
  env.body_case = PROTSAE__ENVELOPE__BODY_RESEND_REQUEST;
  env.resend_request = &rq;
  ps_err_t e = {0};
  if (wire_send_timeout(x->sock, &env, 200, &e) < 0) PS_WARN("control message not sent: %s", e.msg);
}

int main(int argc, char **argv) {
  ps_log_init("annotator");
  ps_signals_install();
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  annot_model_t *model = NULL;
  go_annotations_t *truth = NULL;
  sink_t *sk = NULL;
  void *zctx = NULL, *in = NULL;
  ps_metrics_t *mx = NULL;
  ctl_t ctl = {0};
  int status = 1;
  int crc = ps_config_main(&cfg, table, "protsae-annotator", argc, argv);
  if (crc >= 0) return crc;
  int64_t resend_ms, max_terms, hwm, mport, max_mb;
  double min_score;
  int scale_act, evaluate, sync;
  const ps_config_bind_t opts[] = {
      PS_CFG_I64("resend-after-ms", &resend_ms), PS_CFG_I64("max-terms", &max_terms),
      PS_CFG_I64("hwm", &hwm),                   PS_CFG_I64("metrics-port", &mport),
      PS_CFG_I64("max-message-mb", &max_mb),     PS_CFG_F64("min-score", &min_score),
      PS_CFG_BOOL("scale-activation", &scale_act), PS_CFG_BOOL("evaluate", &evaluate),
      PS_CFG_BOOL("sync", &sync),                {0},
  };
  if (ps_config_read(cfg, opts, &err) < 0) goto fail;
  annot_opts_t ao = {.sae_dir = NULL, .db = ps_config_str(cfg, "db"), .min_score = min_score,
                     .max_terms = max_terms < 0 ? 0 : max_terms, .no_scaling = !scale_act};
  const char *conf = ps_config_str(cfg, "confidence");
  if (!strcmp(conf, "f1")) ao.conf = ANNOT_CONF_F1;
  else if (!strcmp(conf, "precision")) ao.conf = ANNOT_CONF_PRECISION;
  else if (!strcmp(conf, "1-q")) ao.conf = ANNOT_CONF_ONE_MINUS_Q;
  else {
    ps_err_set(&err, PS_ECONFIG, "--confidence must be f1, precision or 1-q (got '%s')", conf);
    goto fail;
  }
  if (!ao.db || resend_ms < 1 || min_score < 0 || min_score > 1 || max_mb < 1 || max_mb > (1 << 20)) {
    ps_err_set(&err, PS_ECONFIG, "--db is required; resend-after-ms >= 1, min-score in [0, 1], max-message-mb in 1..2^20");
    goto fail;
  }
  char dd[4096];
  const char *data = ps_config_str(cfg, "data");
  if (!data && !(data = ps_godata_default_dir(dd, sizeof dd))) {
    ps_err_set(&err, PS_ENOTFOUND, "no GO ontology: --data DIR with go*.obo[.gz] (or PROTSAE_DATA)");
    goto fail;
  }
  ps_godata_t gd;
  if (ps_godata_find(data, PS_GODATA_NEED_ONTOLOGY | (evaluate ? PS_GODATA_NEED_ANNOTATIONS : 0), &gd, &err) < 0)
    goto fail;
  ao.obo = gd.obo;
  ps_config_print(cfg);
  if (annot_model_load(&model, &ao, &err) < 0) goto fail;
  if (evaluate && annot_truth_load(&truth, annot_model_onto(model), gd.annotations, gd.annotations_gaf, &err) < 0)
    goto fail;
  ctl.run_id = ps_config_str(cfg, "run-id");
  ctl.producer = ps_config_str(cfg, "producer");
  wire_opts_t wo = {(int)hwm, 1000, 0, max_mb << 20};
  if (curve_from_config(cfg, &err) < 0) goto fail;
  zctx = zmq_ctx_new();
  if (!(in = wire_socket(zctx, ZMQ_PULL, ps_config_str(cfg, "in"), &wo, &err))) goto fail;
  wo.max_msg = 0;
  const char *cep = ps_config_str(cfg, "control");
  if (cep && cep[0] && !(ctl.sock = wire_socket(zctx, ZMQ_PUSH, cep, &wo, &err))) goto fail;
  sink_opts_t so = {ps_config_str(cfg, "state"), ps_config_str(cfg, "out"), model, truth, resend_ms, sync};
  if (sink_open(&sk, &so, send_control, &ctl, &err) < 0) goto fail;
  PS_INFO("annotator ready features=%lld features_with_go=%lld in_flight=%zu state=%s out=%s",
          (long long)annot_model_n_features(model), (long long)annot_model_n_with_terms(model), sink_in_flight(sk),
          so.state, so.out);

  if (ps_metrics_start(&mx, "annotator", ctl.producer, ps_config_str(cfg, "metrics-bind"), (int)mport, &err) < 0)
    goto fail;
  curve_metrics(mx);
  int m_done = ps_metrics_add(mx, "proteomes_done_total", PS_COUNTER, "proteomes annotated and committed");
  int m_failed = ps_metrics_add(mx, "proteomes_failed_total", PS_COUNTER, "proteomes recorded as failed");
  int m_flight = ps_metrics_add(mx, "proteomes_in_flight", PS_GAUGE, "proteomes staged, not complete yet");
  int m_prot = ps_metrics_add(mx, "proteins_annotated_total", PS_COUNTER, "proteins written (done proteomes)");
  int m_res = ps_metrics_add(mx, "residues_annotated_total", PS_COUNTER, "residues of the proteins written");
  int m_dup = ps_metrics_add(mx, "duplicate_batches_total", PS_COUNTER, "batches and ends dropped: already staged or committed");
  int m_resend = ps_metrics_add(mx, "resend_requests_total", PS_COUNTER, "ResendRequests asking for missing pieces");
  int m_rej = ps_metrics_add(mx, "messages_rejected_total", PS_COUNTER, "messages refused (malformed, out of bounds)");
  int m_wdrop = ps_metrics_add(mx, "wire_dropped_total", PS_COUNTER, "messages dropped by the wire (malformed, version)");
  wire_stats_t st = {0};
  uint64_t logged_rej = 0;
  for (;;) {
    ps_metrics_alive(mx);
    Protsae__Envelope *env = NULL;
    int rc = wire_recv(in, &env, 100, &ps_stop_flag, &st, &err);
    if (rc == PS_EINTR) break;
    if (rc < 0) goto fail;
    int64_t t = ps_mono_ms();
    if (rc == 1) {
      ps_err_t me = {0};
      int hr = 0;
      if (env->body_case == PROTSAE__ENVELOPE__BODY_FEATURE_BATCH) hr = sink_batch(sk, env->feature_batch, t, &me);
      else if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM)
        hr = sink_eos(sk, env->end_of_stream, env->producer, t, &me);
      if (hr == PS_EPROTO) {
        if (logged_rej++ < 100) PS_ERROR("rejected from %s: %s", env->producer ? env->producer : "?", me.msg);
      } else if (hr < 0) {
        err = me;
        wire_free(&env);
        goto fail;
      }
      wire_free(&env);
    }
    if (sink_poll(sk, t, &err) < 0) goto fail;
    if (mx) {
      const sink_counts_t *c = sink_counts(sk);
      ps_metrics_set(mx, m_done, (double)c->done);
      ps_metrics_set(mx, m_failed, (double)c->failed);
      ps_metrics_set(mx, m_flight, (double)sink_in_flight(sk));
      ps_metrics_set(mx, m_prot, (double)c->proteins);
      ps_metrics_set(mx, m_res, (double)c->residues);
      ps_metrics_set(mx, m_dup, (double)c->duplicates);
      ps_metrics_set(mx, m_resend, (double)c->resends);
      ps_metrics_set(mx, m_rej, (double)c->rejected);
      ps_metrics_set(mx, m_wdrop, (double)(st.dropped_malformed + st.dropped_version + st.dropped_empty));
    }
  }
  {
    const sink_counts_t *c = sink_counts(sk);
    PS_INFO("finished done=%" PRIu64 " failed=%" PRIu64 " in_flight=%zu proteins=%" PRIu64 " duplicates=%" PRIu64
            " rejected=%" PRIu64 " resends=%" PRIu64,
            c->done, c->failed, sink_in_flight(sk), c->proteins, c->duplicates, c->rejected, c->resends);
  }
  status = 0;
fail:
  if (status) PS_ERROR("%s", err.msg[0] ? err.msg : ps_strerror(err.code));
  ps_metrics_stop(&mx);
  sink_close(&sk);
  wire_close(&in);
  wire_close(&ctl.sock);
  if (zctx) zmq_ctx_term(zctx);
  go_annotations_destroy(&truth);
  annot_model_free(&model);
  ps_config_destroy(&cfg);
  return status;
}
