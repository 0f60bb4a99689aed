// protsae-scorer — FeatureBatches in, per-feature statistics and per-protein codes in RocksDB.
// Wiring only; logic in scorer.c.
//
// Completion and recovery: encoders relay each upstream EndOfStream with the upstream's batch
// count. When nothing has arrived for --resend-after-ms and a known stream still misses batches
// (lost in a killed encoder's queue, or in this process's queue before a kill -9), the scorer
// sends a ResendRequest for them on --control (the reader re-sends them, then its EndOfStream);
// while no EndOfStream is known, an empty request asks for it. Once --sources streams are complete
// it commits and sends `finished`.
//
// Then, on the complete store (analysis.c): with --data, the GO enrichment of every feature is
// written into the store (an EnrichRequest on --in runs it on a running store too); with
// --interp-out, InterpretRequests go out to any number of protsae-interpreter processes (PULL
// there), whose InterpretResults come back on --in and are stored exactly once. When all of that
// is done it sends each connected interpreter an EndOfStream and exits 0 (--exit-when-complete).
//
// Sharded (--shards N, featstore.h "Sharded stores"): N scorer processes with --shard K (or auto)
// each own a feature range in DIR/shard-K, and one without --shard is the front (front.h): it takes
// the encoders' messages, cuts each batch per shard, and once every shard is complete runs the
// enrichment and the interpretation over the merged store, then tells the reader it may go. The
// shards ask the reader for what they miss themselves; they neither enrich nor interpret.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "analysis.h"
#include "concepts.h"
#include "config.h"
#include "curve.h"
#include "front.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "scorer.h"
#include "signals.h"
#include "strmap.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    {"db", "protsae-features.db", "feature store directory (RocksDB), created when missing"},
    {"in", "@ipc:///tmp/protsae-scorer.ipc", "input endpoint (PULL; @ binds)"},
    {"control", "", "reader control endpoint for ResendRequests (PUSH; e.g. >ipc:///tmp/protsae-reader-ctl.ipc)"},
    {"sources", "1", "upstream streams (readers) that make the whole input"},
    {"shards", "0", "N >= 1: the store --db is split by feature range over N scorer processes; without --shard this "
                    "process is their front (cuts the batches per shard, enriches and interprets the merged store)"},
    {"shard", "", "with --shards: this process is the scorer of shard K (0..N-1) of --db, or 'auto' (the first shard "
                  "no running scorer holds); it takes its part from the K-th endpoint of --in (tcp: port + K, ipc: "
                  "address + '.K')"},
    {"shard-out", "@ipc:///tmp/protsae-scorer-shard.ipc", "front: base endpoint of the shard sockets (PUSH, bound; "
                                                          "the K-th: tcp port + K, ipc address + '.K')"},
    {"top-n", "20", "top proteins kept per feature (fixed when the store is created)"},
    {"residue-top", "8", "residue level: top residues kept per (protein, active feature) in the store's residue codes "
                         "(0 = none; fixed when the store is created)"},
    {"max-features", "1048576", "largest dictionary (n_features) a batch may set; batches over it are rejected"},
    {"max-message-mb", "128", "largest message accepted on --in, MiB (ZMQ_MAXMSGSIZE; a FeatureBatch of R rows with "
                              "K active units a row is ~R x K x 9 bytes: 8192 rows x 1280 neurons = 94 MB). A larger "
                              "one closes the sender's connection unread"},
    {"commit-batches", "16", "commit after this many applied batches"},
    {"commit-ms", "1000", "... or after this long with pending work"},
    {"resend-after-ms", "3000", "idle time before missing batches are requested again"},
    {"exit-when-complete", "1", "exit once every source stream is complete (and enriched and interpreted)"},
    {"data", "", "annotation data directory (go*.obo[.gz], go_annotations.tsv[.gz]): GO enrichment of the complete "
                 "store into the store ('' = none)"},
    {"concepts", "", "residue level: residue concept annotations, comma-separated UniProt flat files (.dat/.txt) and/or "
                     "TSVs (accession, start, end, concept), gzip or plain: InterPLM's concept F1 of every feature "
                     "into the store after the enrichment ('' = none)"},
    {"concept-min-instances", "10", "concepts with fewer annotation instances in the evaluated proteins are not tested"},
    {"enrich-exclude", "", "ids left out of the enrichment (not in the population, activations dropped), one a line"},
    {"enrich-threads", "2", "enrichment threads"},
    {"enrich-alpha", "0.05", "significance level of a kept term"},
    ENRICH_CONFIG_ENTRIES("fdr"),
    {"enrich-min-size", "5", "population proteins a GO term needs to be tested"},
    {"interp-out", "", "endpoint for InterpretRequests (PUSH; e.g. @tcp://*:5558; '' = no interpretation)"},
    {"n-interpret", "200", "units to explain and score (0 = every eligible one)"},
    {"interp-seed", "1", "seed of the unit choice and of the sampling"},
    {"interp-bins", "6,3,3,3,2", "active proteins sampled per activation bin, top first"},
    {"interp-inactive", "15", "inactive proteins sampled per unit"},
    {"interp-min-active", "34", "units with fewer active proteins are not interpreted"},
    {"interp-inflight", "8", "requests out at once"},
    {"interp-timeout-ms", "600000", "ask again when a request has no answer after this long"},
    {"interp-backoff-ms", "5000", "first delay before asking again after a failed answer (doubles)"},
    {"interp-attempts", "4", "attempts before a unit is stored as failed"},
    {"interp-explain-frac", "0.5", "share of a unit's sampled proteins shown for the explanation; the rest are "
                                   "predicted (the reference study: 0.75)"},
    {"interp-neuron-scaling", "relu", "neuron activations before sampling: relu (ReLU, then min-max to [0, 1]) | "
                                      "minmax (min-max over the raw values, no ReLU: the reference study's)"},
    {"min-free-mb", "64", "stop with an error (nothing half-written) when the store's disk has less free than this "
                          "before a commit (0 = no check)"},
    {"sync", "0", "fsync the write-ahead log at each commit (survives a machine crash, slower)"},
    {"dump", NULL, "at completion, write the full store as text to this file"},
    {"hwm", "16", "messages queued per peer"},
    {"run-id", "run", "run id stamped on control messages; InterpretResults must carry it back (the store name)"},
    {"producer", "scorer-0", "producer name stamped on control messages"},
    {"metrics-port", "0", "serve Prometheus /metrics and /healthz on this port (0 = off)"},
    {"metrics-bind", "127.0.0.1", "address of the metrics endpoint (0.0.0.0 in containers)"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

#define MAX_RESEND 4096     // seqs asked for in one ResendRequest
#define STATUS_LOG_MS 10000 // the periodic status line

static void send_resend(void *ctl, const char *run_id, const char *producer, uint64_t *cseq, const char *stream,
                        uint64_t *seqs, size_t n, int finished) {
  Protsae__Envelope env;
  Protsae__ResendRequest rq = PROTSAE__RESEND_REQUEST__INIT;
  wire_envelope_init(&env, run_id, producer, (*cseq)++);
  rq.producer = (char *)(stream ? stream : "");
  rq.n_seqs = n;
  rq.seqs = seqs;
  rq.finished = finished;
  env.body_case = PROTSAE__ENVELOPE__BODY_RESEND_REQUEST;
  env.resend_request = &rq;
  ps_err_t e = {0};
  if (wire_send_timeout(ctl, &env, 200, &e) < 0) PS_WARN("control message not sent: %s", e.msg);
}

// A rejection is logged the first time a sender gets it for a reason; later ones are only counted
// (metrics, the periodic status line), so a flood of bad messages cannot flood the log.
static void log_reject(strmap_t *logged, const char *sender, scorer_reject_t why, const char *msg) {
  char key[512];
  snprintf(key, sizeof key, "%s\x1f%s", sender ? sender : "", scorer_reject_name(why));
  uint64_t v;
  if (strmap_get(logged, key, &v) || strmap_size(logged) >= 1024) return;  // bounded: senders' names are forgeable too
  strmap_put(logged, key, 1);
  PS_ERROR("rejected from %s (%s; further ones from it are only counted): %s", sender ? sender : "?",
           scorer_reject_name(why), msg);
}

int main(int argc, char **argv) {
  ps_log_init("scorer");
  ps_signals_install();
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  scorer_t *sc = NULL;
  void *zctx = NULL, *in = NULL, *ctl = NULL, *isock = NULL;
  wire_peers_t *ipeers = NULL;
  scorer_enrich_t *enr = NULL;
  scorer_concepts_t *conc = NULL;
  scorer_interp_t *si = NULL;
  front_t *fr = NULL;
  fs_t *merged = NULL;  // the front's view of every shard (opened once they are complete)
  const scorer_counts_t zero_counts = {0};
  const fs_meta_t zero_meta = {0};
  fs_wb_t *iwb = NULL;
  uint64_t *seqs = NULL;
  ps_metrics_t *mx = NULL;
  strmap_t *logged = NULL;
  int status = 1;
  int crc = ps_config_main(&cfg, table, "protsae-scorer", argc, argv);
  if (crc >= 0) return crc;
  int64_t sources, top_n, commit_batches, commit_ms, resend_ms, hwm, mport, max_feat, max_mb, min_free_mb, shards,
      residue_top;
  int exit_done, sync;
  const ps_config_bind_t opts[] = {
      PS_CFG_I64("sources", &sources),           PS_CFG_I64("top-n", &top_n),
      PS_CFG_I64("commit-batches", &commit_batches), PS_CFG_I64("commit-ms", &commit_ms),
      PS_CFG_I64("resend-after-ms", &resend_ms), PS_CFG_I64("hwm", &hwm),
      PS_CFG_I64("max-features", &max_feat),     PS_CFG_I64("max-message-mb", &max_mb),
      PS_CFG_I64("min-free-mb", &min_free_mb),   PS_CFG_I64("metrics-port", &mport),
      PS_CFG_I64("shards", &shards),            PS_CFG_I64("residue-top", &residue_top),
      PS_CFG_BOOL("exit-when-complete", &exit_done), PS_CFG_BOOL("sync", &sync),
      {0},
  };
  if (ps_config_read(cfg, opts, &err) < 0) goto fail;
  if (sources < 1 || top_n < 1 || top_n > 100000 || commit_batches < 1 || commit_ms < 1 || resend_ms < 1) {
    ps_err_set(&err, PS_ECONFIG, "sources, top-n (<= 100000), commit-batches, commit-ms, resend-after-ms must be >= 1");
    goto fail;
  }
  if (max_feat < 1 || max_feat > UINT32_MAX || max_mb < 1 || max_mb > (1 << 20)) {
    ps_err_set(&err, PS_ECONFIG, "max-features must be in 1..2^32-1, max-message-mb in 1..2^20");
    goto fail;
  }
  if (residue_top < 0 || residue_top > 65536) {
    ps_err_set(&err, PS_ECONFIG, "residue-top must be in 0..65536");
    goto fail;
  }
  if (shards < 0 || shards > FS_MAX_SHARDS) {
    ps_err_set(&err, PS_ECONFIG, "shards must be in 0..%d", FS_MAX_SHARDS);
    goto fail;
  }
  const char *shard_opt = ps_config_str(cfg, "shard"), *db = ps_config_str(cfg, "db");
  if (shards == 0 && shard_opt && shard_opt[0]) {  // compose's shard service while the store is not sharded
    PS_INFO("--shard %s without --shards: the store %s is not sharded, nothing to do here", shard_opt, db);
    status = 0;
    goto fail;
  }
  int worker = shards > 0 && shard_opt && shard_opt[0], is_front = shards > 0 && !worker;
  scorer_opts_t so = {db, (uint32_t)top_n, sync, (uint32_t)max_feat, 0, 0, (uint32_t)residue_top};
  char shard_db[4096], in_ep[1024];
  snprintf(in_ep, sizeof in_ep, "%s", ps_config_str(cfg, "in"));
  if (worker) {
    if ((ps_config_str(cfg, "data") && ps_config_str(cfg, "data")[0]) ||
        (ps_config_str(cfg, "interp-out") && ps_config_str(cfg, "interp-out")[0])) {
      ps_err_set(&err, PS_ECONFIG, "--data and --interp-out belong to the front (--shards without --shard), not to "
                                   "shard %s", shard_opt);
      goto fail;
    }
    if (fs_shards_init(db, (uint32_t)shards, &err) < 0) goto fail;
    int is_auto = !strcmp(shard_opt, "auto");
    char *end = NULL;
    long k0 = is_auto ? 0 : strtol(shard_opt, &end, 10);
    if (!is_auto && (!end || *end || k0 < 0 || k0 >= shards)) {
      ps_err_set(&err, PS_ECONFIG, "shard '%s': want 0..%lld or auto", shard_opt, (long long)shards - 1);
      goto fail;
    }
    so.shards = (uint32_t)shards;
    so.db_path = shard_db;
    for (long k = k0; k < (is_auto ? shards : k0 + 1); k++) {  // auto: the first shard whose store is free
      so.shard = (uint32_t)k;
      fs_shard_path(db, so.shard, shard_db, sizeof shard_db);
      ps_err_t oe = {0};
      if (scorer_open(&sc, &so, &oe) == 0) break;
      if (!is_auto || !strcasestr(oe.msg, "lock")) {
        err = oe;
        goto fail;
      }
      PS_INFO("shard %ld of %s is held by another scorer: trying the next", k, db);
    }
    if (!sc) {
      ps_err_set(&err, PS_ESTATE, "%s: all %lld shards are held by running scorers", db, (long long)shards);
      goto fail;
    }
    if (front_shard_endpoint(ps_config_str(cfg, "in"), so.shard, in_ep, sizeof in_ep, &err) < 0) goto fail;
    PS_INFO("shard %u of %lld of %s: input %s", so.shard, (long long)shards, db, in_ep);
  } else if (!is_front && scorer_open(&sc, &so, &err) < 0) {
    goto fail;
  }
  if (sc) fs_set_min_free(scorer_store(sc), min_free_mb > 0 ? (unsigned long long)min_free_mb << 20 : 0);
  if (sc) {
    const fs_meta_t *m = scorer_meta(sc);
    PS_INFO("store %s: %u features, %" PRIu64 " batches and %" PRIu64 " proteins applied so far", so.db_path,
            m->n_features, m->batches, m->proteins);
    if (scorer_counts(sc)->ignored_at_open)
      PS_WARN("store %s: %" PRIu64 " stored stream ends or applied seqs out of bounds ignored (written by a version "
              "that trusted the wire)", so.db_path, scorer_counts(sc)->ignored_at_open);
  }
  const char *run_id = ps_config_str(cfg, "run-id"), *producer = ps_config_str(cfg, "producer");
  // enrichment: the data directory is checked (and loaded) now, not after the stream
  const char *data = ps_config_str(cfg, "data");
  if (data && data[0]) {
    scorer_enrich_cfg_t ec = {data, ps_config_str(cfg, "enrich-exclude"), 2, {0}, GO_REL_IS_A | GO_REL_PART_OF};
    int64_t th, ms;
    enrich_opts_default(&ec.opts);
    const ps_config_bind_t eopts[] = {PS_CFG_I64("enrich-threads", &th), PS_CFG_F64("enrich-alpha", &ec.opts.alpha),
                                      PS_CFG_I64("enrich-min-size", &ms), {0}};
    if (ps_config_read(cfg, eopts, &err) < 0 || enrich_opts_config(cfg, &ec.opts, &ec.rels, &err) < 0) goto fail;
    if (th < 1 || ms < 1 || !(ec.opts.alpha > 0 && ec.opts.alpha <= 1)) {
      ps_err_set(&err, PS_ECONFIG, "enrich-threads, enrich-min-size >= 1, enrich-alpha in (0, 1]");
      goto fail;
    }
    ec.threads = (int)th;
    ec.opts.min_size = (uint32_t)ms;
    if (scorer_enrich_new(&enr, &ec, &err) < 0) goto fail;
  }
  const char *cfiles = ps_config_str(cfg, "concepts");
  if (cfiles && cfiles[0]) {  // loaded now: a bad file fails at start, not after the stream
    scorer_concepts_cfg_t cc = {cfiles, {0}};
    int64_t cmin;
    concept_f1_opts_default(&cc.opts);
    const ps_config_bind_t copts[] = {PS_CFG_I64("concept-min-instances", &cmin), {0}};
    if (ps_config_read(cfg, copts, &err) < 0) goto fail;
    if (cmin < 1 || cmin > UINT32_MAX) {
      ps_err_set(&err, PS_ECONFIG, "concept-min-instances must be >= 1");
      goto fail;
    }
    cc.opts.min_instances = (uint32_t)cmin;
    if (worker) {
      ps_err_set(&err, PS_ECONFIG, "--concepts belongs to the front (--shards without --shard), not to shard %s", shard_opt);
      goto fail;
    }
    if (scorer_concepts_new(&conc, &cc, &err) < 0) goto fail;
  }
  scorer_interp_cfg_t icfg;
  memset(&icfg, 0, sizeof icfg);
  icfg.store_name = run_id;
  icfg.max_terms = 20;
  const char *iep = ps_config_str(cfg, "interp-out");
  if (iep && iep[0]) {
    int64_t nu, seed, inact, mina, infl, to, bo, att;
    double efrac;
    ps_sample_opts_default(&icfg.sample);
    const ps_config_bind_t iopts[] = {
        PS_CFG_I64("n-interpret", &nu),         PS_CFG_I64("interp-seed", &seed),
        PS_CFG_I64("interp-inactive", &inact),  PS_CFG_I64("interp-min-active", &mina),
        PS_CFG_I64("interp-inflight", &infl),   PS_CFG_I64("interp-timeout-ms", &to),
        PS_CFG_I64("interp-backoff-ms", &bo),   PS_CFG_I64("interp-attempts", &att),
        PS_CFG_F64("interp-explain-frac", &efrac),
        {0},
    };
    if (ps_config_read(cfg, iopts, &err) < 0) goto fail;
    if (ps_sample_parse_bins(ps_config_str(cfg, "interp-bins"), icfg.sample.bins) < 0 || nu < 0 || inact < 0 ||
        mina < 1 || infl < 1 || to < 1 || bo < 0 || att < 1) {
      ps_err_set(&err, PS_ECONFIG, "interp-bins (five counts), n-interpret >= 0, interp-inactive >= 0, interp-min-active, "
                                   "interp-inflight, interp-timeout-ms, interp-attempts >= 1");
      goto fail;
    }
    const char *nscale = ps_config_str(cfg, "interp-neuron-scaling");
    if (!(efrac > 0 && efrac < 1) || (strcmp(nscale, "relu") && strcmp(nscale, "minmax"))) {
      ps_err_set(&err, PS_ECONFIG, "--interp-explain-frac %g: between 0 and 1 (exclusive); --interp-neuron-scaling "
                                   "'%s': relu or minmax", efrac, nscale);
      goto fail;
    }
    icfg.sample.explain_frac = efrac;
    icfg.neuron_minmax = !strcmp(nscale, "minmax");
    icfg.n_units = (size_t)nu;
    icfg.sample.seed = (uint64_t)seed;
    icfg.sample.n_inactive = (int)inact;
    icfg.sample.min_active = (int)mina;
    icfg.inflight = (int)infl;
    icfg.timeout_ms = to;
    icfg.backoff_ms = bo;
    icfg.max_attempts = (uint32_t)att;
  }
  wire_opts_t wo = {(int)hwm, 1000, 0, max_mb << 20};
  if (curve_from_config(cfg, &err) < 0) goto fail;
  zctx = zmq_ctx_new();
  if (!(in = wire_socket(zctx, ZMQ_PULL, in_ep, &wo, &err))) goto fail;
  wo.max_msg = 0;  // the sockets below only send
  if (is_front && front_open(&fr, zctx, db, (uint32_t)shards, ps_config_str(cfg, "shard-out"), &wo, &err) < 0) goto fail;
  const char *cep = ps_config_str(cfg, "control");
  if (cep && cep[0] && !(ctl = wire_socket(zctx, ZMQ_PUSH, cep, &wo, &err))) goto fail;
  if (iep && iep[0] && !(isock = wire_socket_watched(zctx, ZMQ_PUSH, iep, &wo, &ipeers, &err))) goto fail;
  seqs = ps_xmalloc(MAX_RESEND * sizeof *seqs);

  // a shard's figures are its own (stage "scorer-shard"); the front's are the store's (what `protsae
  // status` counts as applied: batches routed)
  if (ps_metrics_start(&mx, worker ? "scorer-shard" : "scorer", producer, ps_config_str(cfg, "metrics-bind"), (int)mport, &err) < 0) goto fail;
  curve_metrics(mx);
  int m_applied = ps_metrics_add(mx, "batches_applied_total", PS_COUNTER, "batches applied (exactly once)");
  int m_dup = ps_metrics_add(mx, "batches_duplicate_total", PS_COUNTER, "replayed batches ignored");
  int m_rej = ps_metrics_add(mx, "batches_rejected_total", PS_COUNTER, "batches rejected (malformed, NaN, mismatch)");
  // one counter per reason (the metrics module has no label API): protsae_messages_rejected_<reason>_total
  int m_rej_by[SCORER_REJ_N];
  for (int r = 0; r < SCORER_REJ_N; r++) {
    char name[96], help[160];
    snprintf(name, sizeof name, "messages_rejected_%s_total", scorer_reject_name((scorer_reject_t)r));
    snprintf(help, sizeof help, "messages rejected as %s (out of the stream's bounds or inconsistent)",
             scorer_reject_name((scorer_reject_t)r));
    m_rej_by[r] = ps_metrics_add(mx, name, PS_COUNTER, help);
  }
  int m_reopen = ps_metrics_add(mx, "eos_reopened_total", PS_COUNTER, "recorded stream ends undone by a later batch");
  int m_wdrop = ps_metrics_add(mx, "wire_dropped_malformed_total", PS_COUNTER,
                               "messages dropped by the wire: not an Envelope or an inconsistent batch");
  int m_wver = ps_metrics_add(mx, "wire_dropped_version_total", PS_COUNTER, "messages of another schema major version");
  logged = strmap_new(8);  // (sender, reason) pairs already logged: one line each
  int m_rows = ps_metrics_add(mx, "rows_total", PS_COUNTER, "rows applied since start");
  int m_prot = ps_metrics_add(mx, "store_proteins", PS_GAUGE, "proteins in the feature store");
  int m_rate = ps_metrics_add(mx, "rows_per_second", PS_GAUGE, "rows applied per second since start");
  int m_known = ps_metrics_add(mx, "streams_ended", PS_GAUGE, "upstream streams whose end is known");
  int m_done = ps_metrics_add(mx, "streams_complete", PS_GAUGE, "upstream streams with every batch applied");
  int m_total = ps_metrics_add(mx, "stream_batches", PS_GAUGE, "batches in the ended upstream streams");
  int m_enr = ps_metrics_add(mx, "enrichment_complete", PS_GAUGE, "1 when the store holds a complete GO enrichment");
  int m_enr_s = ps_metrics_add(mx, "enrichment_seconds", PS_GAUGE, "seconds of the last enrichment run");
  int m_iplan = ps_metrics_add(mx, "interp_planned", PS_GAUGE, "units planned for interpretation");
  int m_istored = ps_metrics_add(mx, "interp_stored", PS_GAUGE, "units whose explanation is stored");
  int m_isent = ps_metrics_add(mx, "interp_requests_total", PS_COUNTER, "interpretation requests sent (incl. re-sends)");
  int m_ifail = ps_metrics_add(mx, "interp_failures_total", PS_COUNTER, "failed answers (asked again later)");
  int m_irej = ps_metrics_add(mx, "interp_rejected_total", PS_COUNTER, "answers rejected (malformed, unknown unit)");
  wire_stats_t st = {0};
  int64_t t0 = ps_mono_ms(), last_msg = t0, last_commit = t0, last_resend = 0, last_log = t0;
  uint64_t cseq = 0, rows0 = 0;
  int complete = 0, enriched = enr == NULL, interpreted = isock == NULL, enrich_asked = 0, enrich_force = 0;
  int concepts_done = conc == NULL;
  double enrich_secs = 0;
  iwb = fs_wb_new();
  ps_metrics_set_stall(mx, 600);  // one enrichment of a large store runs between two rounds
  for (;;) {
    ps_metrics_alive(mx);
    if (!complete && sc && scorer_streams_complete(sc) >= (size_t)sources) {
      complete = 1;
      if (scorer_commit(sc, &err) < 0) goto fail;
      // the reader may go; a shard leaves that to the front, which knows when every shard is complete
      if (ctl && !worker) send_resend(ctl, run_id, producer, &cseq, NULL, NULL, 0, 1);
    }
    if (!complete && fr) {
      int pr = front_poll(fr, (size_t)sources, &err);
      if (pr < 0) goto fail;
      if (pr == 1) {
        if (fs_open_sharded(&merged, db, FS_OPEN_CREATE, &err) < 0) goto fail;
        fs_set_min_free(merged, min_free_mb > 0 ? (unsigned long long)min_free_mb << 20 : 0);
        PS_INFO("every shard of %s is complete (%" PRIu64 " batches routed): the store is whole", db,
                front_batches(fr));
        complete = 1;
        if (ctl) send_resend(ctl, run_id, producer, &cseq, NULL, NULL, 0, 1);
      }
    }
    fs_t *store = sc ? scorer_store(sc) : merged;
    if (enr && store && ((complete && !enriched) || enrich_asked)) {
      int ran = 0;
      if (sc && scorer_commit(sc, &err) < 0) goto fail;
      if (scorer_enrich_run(enr, store, enrich_force, &ran, &enrich_secs, &err) < 0) goto fail;
      if (complete) enriched = 1;
      enrich_asked = enrich_force = 0;
      if (mx) {
        ps_metrics_set(mx, m_enr, 1);
        ps_metrics_set(mx, m_enr_s, enrich_secs);
      }
      if (ran) PS_INFO("enrichment written into the store seconds=%.2f", enrich_secs);
    }
    if (conc && store && complete && enriched && !concepts_done) {  // after the enrichment
      int ran = 0;
      if (sc && scorer_commit(sc, &err) < 0) goto fail;
      if (scorer_concepts_run(conc, store, 0, &ran, &err) < 0) goto fail;
      concepts_done = 1;
    }
    if (complete && enriched && isock && !si && !interpreted) {
      if (scorer_interp_new(&si, &icfg, store, &err) < 0) goto fail;
    }
    if (si && !interpreted) {
      uint64_t tn = (uint64_t)ps_mono_ms();
      const Protsae__InterpretRequest *rq;
      while ((rq = scorer_interp_next(si, tn))) {
        Protsae__Envelope env;
        wire_envelope_init(&env, run_id, producer, cseq);
        env.body_case = PROTSAE__ENVELOPE__BODY_INTERPRET_REQUEST;
        env.interpret_request = (Protsae__InterpretRequest *)rq;
        ps_err_t se = {0};
        if (wire_send_timeout(isock, &env, 0, &se) < 0) break;  // no interpreter has room: later
        cseq++;
        scorer_interp_sent(si, rq, tn);
      }
      if (scorer_interp_done(si)) {
        if (scorer_interp_finish(si, store, iwb, &err) < 0 || fs_commit(store, iwb, 1, &err) < 0)
          goto fail;
        interpreted = 1;
      }
    }
    if (complete && enriched && concepts_done && interpreted && exit_done) break;
    Protsae__Envelope *env = NULL;
    int rc = wire_recv(in, &env, 100, &ps_stop_flag, &st, &err);
    if (rc == PS_EINTR) break;
    if (rc < 0) goto fail;
    int64_t t = ps_mono_ms();
    if (rc == 1) {
      last_msg = t;
      int routed = 0;
      if (fr) {
        ps_err_t re = {0};
        routed = front_route(fr, env, &ps_stop_flag, &re);
        if (routed == PS_EINTR) {
          wire_free(&env);
          break;
        }
        if (routed < 0) {
          log_reject(logged, env->producer, SCORER_REJ_MALFORMED, re.msg);
          routed = 1;
        }
      }
      if (routed) {
        // sent on to the shards
      } else if (env->body_case == PROTSAE__ENVELOPE__BODY_FEATURE_BATCH) {
        ps_err_t be = {0};
        scorer_reject_t why = SCORER_REJ_MALFORMED;
        if (sc && scorer_apply_why(sc, env->feature_batch, &why, &be) < 0) log_reject(logged, env->producer, why, be.msg);
      } else if (env->body_case == PROTSAE__ENVELOPE__BODY_INTERPRET_RESULT) {
        ps_err_t be = {0};
        if (!si) {
          PS_WARN("an InterpretResult from %s while no interpretation runs: dropped", env->producer);
        } else {
          int ar = scorer_interp_apply(si, store, iwb, env->interpret_result, (uint64_t)t, &be);
          if (ar < 0) PS_ERROR("answer from %s: %s", env->producer, be.msg);
          else if (ar == 1 && fs_commit(store, iwb, 0, &err) < 0) goto fail;
        }
      } else if (env->body_case == PROTSAE__ENVELOPE__BODY_ENRICH_REQUEST) {
        if (!enr) PS_WARN("an EnrichRequest from %s, but no --data: ignored", env->producer);
        else {
          PS_INFO("enrichment requested by %s%s", env->producer, env->enrich_request->force ? " (forced)" : "");
          enrich_asked = 1;
          enrich_force = env->enrich_request->force;
        }
      } else if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM) {
        const Protsae__EndOfStream *e = env->end_of_stream;
        const char *src = e->source_producer && e->source_producer[0] ? e->source_producer : env->producer;
        uint64_t next = e->source_producer && e->source_producer[0] ? e->source_next_seq : env->seq;
        ps_err_t be = {0};
        if (sc && scorer_note_eos(sc, src, next, e->rows_sent, e->proteins_sent, &be) < 0)
          log_reject(logged, env->producer, SCORER_REJ_EOS, be.msg);
      }
      wire_free(&env);
    }
    const scorer_counts_t *c = sc ? scorer_counts(sc) : &zero_counts;
    if (sc && (c->pending >= (uint64_t)commit_batches || (c->pending && t - last_commit >= commit_ms) ||
               (rc == 0 && t - last_commit >= commit_ms))) {
      if (scorer_commit(sc, &err) < 0) goto fail;
      last_commit = t;
    }
    if (sc && ctl && t - last_msg >= resend_ms && t - last_resend >= resend_ms) {
      last_resend = t;
      size_t known = scorer_streams_known(sc);
      for (size_t i = 0; i < known; i++) {
        const char *sp;
        size_t n = scorer_missing(sc, i, &sp, seqs, MAX_RESEND);
        if (!n) continue;
        PS_WARN("%s: %zu batches missing after %lld ms idle: asking for them again (first seq %" PRIu64 ")", sp, n,
                (long long)resend_ms, seqs[0]);
        send_resend(ctl, run_id, producer, &cseq, sp, seqs, n < MAX_RESEND ? n : MAX_RESEND, 0);
      }
      if (known < (size_t)sources) {
        PS_INFO("%zu of %lld source streams have ended: asking for EndOfStream again", known, (long long)sources);
        send_resend(ctl, run_id, producer, &cseq, NULL, NULL, 0, 0);
      }
    }
    if (mx && si) {
      const scorer_interp_counts_t *ic = scorer_interp_counts(si);
      ps_metrics_set(mx, m_iplan, (double)ic->planned);
      ps_metrics_set(mx, m_istored, (double)ic->stored);
      ps_metrics_set(mx, m_isent, (double)ic->sent);
      ps_metrics_set(mx, m_ifail, (double)ic->failures);
      ps_metrics_set(mx, m_irej, (double)ic->rejected);
    }
    if (mx) {
      if (fr) {
        uint64_t tot = front_stream_batches(fr), routed = front_batches(fr);
        ps_metrics_set(mx, m_applied, (double)(complete || (tot && routed > tot) ? tot : routed));
        ps_metrics_set(mx, m_total, (double)tot);
        ps_metrics_set(mx, m_done, complete ? (double)sources : 0);
      } else {
        ps_metrics_set(mx, m_applied, (double)c->applied);
      }
      ps_metrics_set(mx, m_dup, (double)c->duplicates);
      ps_metrics_set(mx, m_rej, (double)c->rejected);
      for (int r = 0; r < SCORER_REJ_N; r++) ps_metrics_set(mx, m_rej_by[r], (double)c->rejected_by[r]);
      ps_metrics_set(mx, m_reopen, (double)c->eos_reopened);
      ps_metrics_set(mx, m_wdrop, (double)st.dropped_malformed);
      ps_metrics_set(mx, m_wver, (double)st.dropped_version);
      ps_metrics_set(mx, m_rows, (double)c->rows);
      ps_metrics_set(mx, m_prot, (double)(sc ? scorer_meta(sc) : &zero_meta)->proteins);
      ps_metrics_set(mx, m_rate, (double)c->rows * 1000.0 / (double)(t - t0 + 1));
      if (sc) {
        ps_metrics_set(mx, m_known, (double)scorer_streams_known(sc));
        ps_metrics_set(mx, m_done, (double)scorer_streams_complete(sc));
        ps_metrics_set(mx, m_total, (double)scorer_stream_batches(sc));
      }
    }
    if (t - last_log >= STATUS_LOG_MS) {
      PS_INFO("applied=%" PRIu64 " duplicates=%" PRIu64 " rejected=%" PRIu64 " proteins=%" PRIu64 " rows_per_s=%.0f",
              c->applied, c->duplicates, c->rejected, c->proteins, (c->rows - rows0) * 1000.0 / (double)(t - last_log));
      rows0 = c->rows;
      last_log = t;
    }
  }
  if (sc && scorer_commit(sc, &err) < 0) goto fail;
  if (isock) {  // every connected interpreter gets an EndOfStream: they exit
    Protsae__EndOfStream eos = PROTSAE__END_OF_STREAM__INIT;
    eos.reason = (char *)(complete ? "done" : "signal");
    int64_t te = ps_mono_ms(), last = 0;
    while (wire_peers_live(ipeers) > 0 && ps_mono_ms() - te < 10000) {
      if (!last || ps_mono_ms() - last >= 2000) {  // one each, again to any still connected after 2 s
        int n = wire_peers_live(ipeers);
        for (int k = 0; k < n; k++) {
          Protsae__Envelope env;
          wire_envelope_init(&env, run_id, producer, cseq++);
          env.body_case = PROTSAE__ENVELOPE__BODY_END_OF_STREAM;
          env.end_of_stream = &eos;
          ps_err_t se = {0};
          wire_send_timeout(isock, &env, 100, &se);
        }
        last = ps_mono_ms();
      }
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  if (complete) {
    const char *dump = ps_config_str(cfg, "dump");
    if (dump) {
      FILE *f = fopen(dump, "w");
      if (!f) {
        ps_err_set(&err, -errno, "%s: cannot write the dump", dump);
        goto fail;
      }
      int rc = fs_dump(sc ? scorer_store(sc) : merged, f, &err);
      if (fclose(f) != 0 && rc >= 0) rc = ps_err_set(&err, PS_EIO, "%s: write failed", dump);
      if (rc < 0) goto fail;
    }
  }
  {
    const scorer_counts_t *c = sc ? scorer_counts(sc) : &zero_counts;
    fs_meta_t mm = zero_meta;
    if (merged && fs_meta_get(merged, &mm, &err) < 0) goto fail;
    const fs_meta_t *m = sc ? scorer_meta(sc) : &mm;
    double secs = (double)(ps_mono_ms() - t0) / 1000.0;
    PS_INFO("finished complete=%d applied=%" PRIu64 " duplicates=%" PRIu64 " rejected=%" PRIu64 " dropped=%" PRIu64
            " store_batches=%" PRIu64 " store_proteins=%" PRIu64 " seconds=%.2f",
            complete, c->applied, c->duplicates, c->rejected, st.dropped_malformed + st.dropped_version + st.dropped_empty,
            m->batches, m->proteins, secs);
  }
  status = 0;
fail:
  if (status) PS_ERROR("%s", err.msg[0] ? err.msg : ps_strerror(err.code));
  free(seqs);
  strmap_destroy(&logged);
  ps_metrics_stop(&mx);
  scorer_interp_destroy(&si);
  scorer_enrich_destroy(&enr);
  scorer_concepts_destroy(&conc);
  fs_wb_free(&iwb);
  wire_peers_destroy(&ipeers);
  wire_close(&isock);
  wire_close(&in);
  wire_close(&ctl);
  front_close(&fr);  // its sockets, before the context
  if (zctx) zmq_ctx_term(zctx);
  fs_close(&merged);
  scorer_close(&sc);
  ps_config_destroy(&cfg);
  return status;
}
