// protsae-interpreter — LLM-written explanations of SAE features (and of ESM2 neurons, the
// baseline), scored by predicting activations on held-out proteins. Wiring only: configuration,
// sources, the client and its cache, output. The protocol lives in protocol.c.
//
// Two ways to run:
//  - a pipeline stage (--in): InterpretRequests from a scorer (PULL), InterpretResults back to it
//    (--results, PUSH); any number of interpreters share one scorer's queue; the scorer stores
//    the results exactly once. Exits 0 on the scorer's EndOfStream (or SIGTERM, after the batch).
//  - on files (--features / --neurons .npy matrices with --ids): the whole protocol in-process,
//    results in --out (features.jsonl, neurons.jsonl, summary.json).
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "cache.h"
#include "config.h"
#include "curve.h"
#include "db.h"
#include "llm.h"
#include "log.h"
#include "metrics.h"
#include "npysrc.h"
#include "pfam.h"
#include "service.h"
#include "wire.h"
#include "protocol.h"
#include "signals.h"

static const ps_config_entry_t table[] = {
    {"in", NULL, "pipeline mode: endpoint of a scorer's InterpretRequests (PULL; e.g. >tcp://scorer:5558)"},
    {"results", NULL, "pipeline mode: where InterpretResults go (PUSH; the scorer's --in, e.g. >tcp://scorer:5557)"},
    {"hwm", "4", "pipeline mode: requests queued per peer"},
    {"features", NULL, "file mode: SAE feature activations, a .npy (proteins x features) with --ids"},
    {"neurons", NULL, "file mode: neuron baseline, a .npy of the embeddings (proteins x d; scaled as "
                      "--interp-neuron-scaling says) with --ids"},
    {"ids", NULL, "accession of each row of the .npy inputs, one a line (stores carry their ids)"},
    {"data", "../shared/data/human-swissprot", "data dir: proteins.tsv.gz, go_annotations.tsv.gz, go-*.obo.gz"},
    {"out", "protsae-interp", "output dir: features.jsonl, neurons.jsonl, summary.json (file mode); the default cache"},
    {"n-features", "200", "file mode: random features to analyse (0 = all eligible)"},
    {"n-neurons", "200", "file mode: random neurons to analyse (0 = all eligible)"},
    {"seed", "1", "file mode: unit choice, sampling and split seed; also the seed of the retry jitter"},
    {"bins", "6,3,3,3,2", "file mode: active proteins per activation bin, top first (pipeline mode: the scorer's "
                          "--interp-* options sample)"},
    {"n-inactive", "15", "file mode: inactive proteins per unit"},
    {"min-active", "34", "file mode: skip units with fewer active proteins"},
    {"active-threshold", "0", "file mode: active = activation > this"},
    {"go-terms", "12", "GO term names per protein in prompts (per namespace with --interp-go-by-namespace 1)"},
    {"interp-go-by-namespace", "1", "GO terms in prompts in biological process / molecular function / cellular "
                                    "component sections (1, as the reference study lists them) or one list (0)"},
    {"interp-explain-frac", "0.5", "file mode: share of a unit's sampled proteins shown for the explanation, the "
                                   "rest predicted (the reference study: 0.75; pipeline mode: the scorer's option)"},
    {"interp-neuron-scaling", "relu", "file mode: neuron activations: relu (ReLU, then min-max to [0, 1]) | minmax "
                                      "(min-max over the raw values, no ReLU: the reference study's); pipeline "
                                      "mode: the scorer's option"},
    {"pfam-names", NULL, "Pfam names table (TSV: PF00001<TAB>7tm_1[<TAB>description]): prompts show PF00001 (7tm_1)"},
    {"uniprot-flat", "auto", "UniProt flat file(s) (.dat[.gz], a file or a directory) whose 'DR   Pfam;' lines name "
                             "the families; auto = those in DATA, DATA/uniprot-flat, DATA/../uniprot-flat; '' = none"},
    {"with-sequence", "0", "show sequences in prompts (reads proteins.fasta.gz)"},
    {"mode", "auto", "auto (anthropic when a key is set, else offline) | anthropic | openai | offline"},
    {"model", "claude-sonnet-4-5", "model name (Anthropic alias; for --mode openai, the local server's model)"},
    {"base-url", NULL, "API base URL (anthropic: https://api.anthropic.com; openai: http://127.0.0.1:8080/v1)"},
    {"key-file", NULL, "file holding the API key (else ANTHROPIC_API_KEY / OPENAI_API_KEY)"},
    {"anthropic-version", "2023-06-01", "anthropic-version header"},
    {"temperature", "0", "sampling temperature"},
    {"max-tokens", "512", "max_tokens per answer"},
    {"parallel", "4", "requests in flight (pipeline mode: also the requests taken from the queue at once)"},
    {"rpm", "50", "requests per minute (0 = unlimited)"},
    {"tpm", "0", "estimated tokens per minute (0 = unlimited)"},
    {"timeout-ms", "60000", "per-request timeout"},
    {"max-retries", "5", "retries on 429 / 5xx / timeouts"},
    {"backoff-ms", "1000", "first retry delay (doubles, with jitter)"},
    {"cache", NULL, "RocksDB response cache (default OUT/llm-cache)"},
    {"cache-per-host", "auto", "keep the cache in CACHE/HOSTNAME (each replica of a scaled service its own; RocksDB "
                               "allows one process per cache): auto = in pipeline mode, 1, 0"},
    {"metrics-port", "0", "serve Prometheus /metrics and /healthz on this port (0 = off)"},
    {"metrics-bind", "127.0.0.1", "address of the metrics endpoint (0.0.0.0 in containers)"},
    {"producer", "interpreter-0", "name in the metrics labels and, in pipeline mode, on the InterpretResults"},
    {"health-stall-s", "150", "pipeline mode: /healthz answers 503 when the loop and the LLM calls have not progressed "
                              "for this long (0 = off; above the request timeout, as one call may take that long)"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

// monitoring: the LLM client's counters, updated each time a call is done
typedef struct interp_mx {
  ps_metrics_t *m;
  int req, retries, hits, answered, failed, in_tok, out_tok;
  int live;  // pipeline mode: LLM calls count as liveness (ps_metrics_alive)
} interp_mx_t;

static void on_llm_progress(void *ctx, const llm_stats_t *st) {
  interp_mx_t *x = ctx;
  if (x->live) ps_metrics_alive(x->m);  // a finished call is progress, even during a long batch
  ps_metrics_set(x->m, x->req, (double)st->requests);
  ps_metrics_set(x->m, x->retries, (double)st->retries);
  ps_metrics_set(x->m, x->hits, (double)st->cache_hits);
  ps_metrics_set(x->m, x->answered, (double)st->answered);
  ps_metrics_set(x->m, x->failed, (double)st->failed);
  ps_metrics_set(x->m, x->in_tok, (double)st->input_tokens);
  ps_metrics_set(x->m, x->out_tok, (double)st->output_tokens);
}

static json_t *summary_json(const interp_summary_t *s) {
  json_t *j = json_object();
  json_object_set_new(j, "units", json_integer((json_int_t)s->n_units));
  json_object_set_new(j, "checked", json_integer((json_int_t)s->n_checked));
  json_object_set_new(j, "skipped_too_few_active", json_integer((json_int_t)s->n_too_few));
  json_object_set_new(j, "skipped_constant", json_integer((json_int_t)s->n_constant));
  json_object_set_new(j, "analysed", json_integer((json_int_t)s->n_selected));
  json_object_set_new(j, "scored", json_integer((json_int_t)s->n_scored));
  json_object_set_new(j, "failed", json_integer((json_int_t)s->n_failed));
  json_object_set_new(j, "constant_predictions", json_integer((json_int_t)s->n_constant_pred));
  json_object_set_new(j, "mean_r", isfinite(s->mean_r) ? json_real(s->mean_r) : json_null());
  json_object_set_new(j, "median_r", isfinite(s->median_r) ? json_real(s->median_r) : json_null());
  json_object_set_new(j, "frac_p_lt_0.05", isfinite(s->frac_p05) ? json_real(s->frac_p05) : json_null());
  return j;
}

static int run_kind(const char *npy, const char *ids, const char *kind, int relu, size_t n_units, interp_opts_t *o,
                    const interp_db_t *db, const interp_run_opts_t *ro, const char *out_dir, const char *mode,
                    interp_summary_t *sum, ps_err_t *err) {
  interp_source_t src;
  interp_npysrc_t *ns = NULL;
  struct stat sb;
  int rc = stat(npy, &sb) == 0 && S_ISDIR(sb.st_mode)
               ? ps_err_set(err, PS_ECONFIG, "%s: a feature store is interpreted through its scorer (protsae-scorer "
                                             "--interp-out, protsae-interpreter --in), not read here", npy)
           : !ids ? ps_err_set(err, PS_ECONFIG, "%s: a .npy input needs --ids", npy)
                  : interp_npysrc_open(&ns, npy, ids, &src, err);
  if (rc < 0) return rc;
  o->unit_kind = kind;
  o->sample.relu = relu;
  o->n_units = n_units;
  PS_INFO("interpreter start kind=%s proteins=%zu units=%zu analyse=%zu mode=%s", kind, src.n_proteins, src.n_units,
          n_units, mode);
  interp_result_t *res = NULL;
  size_t nres = 0;
  rc = interp_run(&src, db, o, ro, &res, &nres, sum, err);
  if (rc == 0) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%ss.jsonl", out_dir, kind);
    rc = interp_write_jsonl(path, o, &src, res, nres, mode, ro->offline, err);
    if (rc == 0)
      PS_INFO("interpreter done kind=%s analysed=%zu scored=%zu failed=%zu mean_r=%.4f out=%s", kind, sum->n_selected,
              sum->n_scored, sum->n_failed, sum->mean_r, path);
  }
  interp_results_free(res, nres);
  interp_npysrc_destroy(&ns);
  return rc;
}

// Pipeline mode: batches of up to `parallel` requests (the LLM client keeps that many in flight).
static int run_service(const char *in_ep, const char *out_ep, int64_t hwm, int parallel, const interp_service_t *sv,
                       const char *producer, interp_mx_t *mx, int m_units, ps_err_t *err) {
  void *zctx = zmq_ctx_new(), *in = NULL, *out = NULL;
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  wo.hwm = (int)hwm;
  wo.max_msg = WIRE_MAX_CONTROL_MSG;  // InterpretRequests (ids, activations, terms): kilobytes
  int rc = 0, ended = 0;
  size_t cap = parallel > 0 ? (size_t)parallel : 1, done = 0;
  Protsae__Envelope **envs = ps_xcalloc(cap, sizeof *envs);
  Protsae__InterpretRequest **reqs = ps_xcalloc(cap, sizeof *reqs);
  Protsae__InterpretResult *res = ps_xcalloc(cap, sizeof *res);
  wire_stats_t st = {0};
  uint64_t seq = 0;
  if (!(in = wire_socket(zctx, ZMQ_PULL, in_ep, &wo, err)) || !(out = wire_socket(zctx, ZMQ_PUSH, out_ep, &wo, err))) {
    rc = err->code ? err->code : PS_EIO;
    goto out;
  }
  PS_INFO("interpreter serving in=%s results=%s mode=%s", in_ep, out_ep, sv->mode);
  while (!ended && !ps_stop_flag) {
    ps_metrics_alive(mx->m);
    size_t n = 0;
    Protsae__Envelope *env = NULL;
    rc = wire_recv(in, &env, 200, &ps_stop_flag, &st, err);
    if (rc == PS_EINTR) {
      rc = 0;
      break;
    }
    if (rc < 0) goto out;
    while (rc == 1) {  // this message, then whatever else is already queued, up to the batch size
      if (env->body_case == PROTSAE__ENVELOPE__BODY_INTERPRET_REQUEST) {
        envs[n] = env;
        reqs[n++] = env->interpret_request;
      } else {
        if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM) ended = 1;
        else PS_WARN("unexpected message from %s on the request socket: dropped", env->producer);
        wire_free(&env);
      }
      if (n == cap || ended) break;
      env = NULL;
      rc = wire_recv(in, &env, 0, NULL, &st, err);
      if (rc < 0) goto out;
    }
    rc = 0;
    if (!n) continue;
    int arc = interp_service_answer(sv, reqs, n, res, err);
    for (size_t i = 0; i < n; i++) {
      Protsae__Envelope o;
      wire_envelope_init(&o, envs[i]->run_id ? envs[i]->run_id : "run", producer, seq++);
      o.body_case = PROTSAE__ENVELOPE__BODY_INTERPRET_RESULT;
      o.interpret_result = &res[i];
      if (arc == 0 && (rc = wire_send(out, &o, &ps_stop_flag, err)) < 0 && rc != PS_EINTR) goto out;
      if (res[i].failure && res[i].failure[0]) PS_WARN("unit %u: %s", res[i].unit, res[i].failure);
      interp_service_result_free(&res[i]);
      wire_free(&envs[i]);
      done++;
    }
    rc = 0;
    if (mx->m) ps_metrics_set(mx->m, m_units, (double)done);
    if (arc == PS_EINTR) break;
    if (arc < 0) {
      rc = arc;
      goto out;
    }
  }
  PS_INFO("interpreter finished answered=%zu end_of_stream=%d dropped=%llu", done, ended,
          (unsigned long long)(st.dropped_malformed + st.dropped_version + st.dropped_empty));
out:
  for (size_t i = 0; i < cap; i++) wire_free(&envs[i]);
  free(envs);
  free(reqs);
  free(res);
  wire_close(&in);
  wire_close(&out);
  zmq_ctx_term(zctx);
  return rc;
}

// Pfam family names for the prompts (pfam.h): the table, then the flat files.
static int pfam_setup(interp_db_t *db, const ps_config_t *cfg, ps_err_t *err) {
  char flat[8192];
  size_t named = 0;
  const char *tsv = ps_config_str(cfg, "pfam-names");
  int rc = interp_pfam_find_flat(ps_config_str(cfg, "uniprot-flat"), ps_config_str(cfg, "data"), flat, sizeof flat, err);
  if (rc == 0) rc = interp_pfam_load(db, tsv, flat, &named, err);
  if (rc == 0)
    PS_INFO("pfam names: %zu of %zu families named (pfam-names=%s uniprot-flat=%s)", named, db->n_pfam_names,
            tsv && tsv[0] ? tsv : "-", flat[0] ? flat : "-");
  return rc;
}

static void print_row(const char *key, const char *fmt, double a, double b, int have_a, int have_b) {
  char x[64] = "-", y[64] = "-";
  if (have_a) snprintf(x, sizeof x, fmt, a);
  if (have_b) snprintf(y, sizeof y, fmt, b);
  printf("%-22s %12s %12s\n", key, x, y);
}

int main(int argc, char **argv) {
  ps_log_init("interpreter");
  ps_err_t err = {0, {0}};
  ps_config_t *cfg = NULL;
  llm_cache_t *cache = NULL;
  llm_client_t *llm = NULL;
  interp_db_t *db = NULL;
  interp_mx_t mx = {0};
  char *key = NULL;
  int status = 1;
  int crc = ps_config_main(&cfg, table, "protsae-interpreter", argc, argv);
  if (crc >= 0) return crc;
  ps_signals_install();
  const char *features = ps_config_str(cfg, "features"), *neurons = ps_config_str(cfg, "neurons");
  const char *ids = ps_config_str(cfg, "ids"), *out_dir = ps_config_str(cfg, "out");
  const char *in_ep = ps_config_str(cfg, "in"), *res_ep = ps_config_str(cfg, "results");
  int service = in_ep && in_ep[0];
  if (service && !(res_ep && res_ep[0])) {
    fprintf(stderr, "protsae-interpreter: --in needs --results (where the answers go)\n");
    ps_config_destroy(&cfg);
    return 2;
  }
  if (!service && !features && !neurons) {
    fprintf(stderr, "protsae-interpreter: --in (pipeline mode) or one of --features / --neurons (files) is required\n");
    ps_config_destroy(&cfg);
    return 2;
  }
  interp_opts_t o;
  interp_opts_default(&o);
  llm_opts_t lo;
  llm_opts_default(&lo);
  int64_t nf, nn, seed, ninact, minact, goterms, withseq, maxtok, par, timeout, retries, backoff, mport, hwm, stall;
  int64_t byns;
  double thr, temp, rpm, tpm, efrac;
  const ps_config_bind_t opts[] = {
      PS_CFG_I64("n-features", &nf),      PS_CFG_I64("n-neurons", &nn),         PS_CFG_I64("seed", &seed),
      PS_CFG_I64("n-inactive", &ninact),  PS_CFG_I64("min-active", &minact),    PS_CFG_I64("go-terms", &goterms),
      PS_CFG_I64("with-sequence", &withseq), PS_CFG_I64("max-tokens", &maxtok), PS_CFG_I64("parallel", &par),
      PS_CFG_I64("timeout-ms", &timeout), PS_CFG_I64("max-retries", &retries),  PS_CFG_I64("backoff-ms", &backoff),
      PS_CFG_I64("metrics-port", &mport), PS_CFG_I64("hwm", &hwm),              PS_CFG_I64("health-stall-s", &stall),
      PS_CFG_F64("active-threshold", &thr), PS_CFG_F64("temperature", &temp),  PS_CFG_F64("rpm", &rpm),
      PS_CFG_F64("tpm", &tpm),            PS_CFG_F64("interp-explain-frac", &efrac),
      PS_CFG_I64("interp-go-by-namespace", &byns),
      {0},
  };
  if (ps_config_read(cfg, opts, &err) < 0) goto fail;
  if (nf < 0 || nn < 0 || ninact < 0 || minact < 1 || goterms < 0) {
    ps_err_set(&err, PS_ECONFIG, "n-features, n-neurons, n-inactive, go-terms must be >= 0, min-active >= 1");
    goto fail;
  }
  if (ps_sample_parse_bins(ps_config_str(cfg, "bins"), o.sample.bins) < 0) {
    ps_err_set(&err, PS_ECONFIG, "--bins '%s': five comma-separated counts expected", ps_config_str(cfg, "bins"));
    goto fail;
  }
  o.sample.seed = (uint64_t)seed;
  o.sample.n_inactive = (int)ninact;
  o.sample.min_active = (int)minact;
  o.sample.active_threshold = thr;
  const char *nscale = ps_config_str(cfg, "interp-neuron-scaling");
  if (!(efrac > 0 && efrac < 1) || (byns != 0 && byns != 1) || (strcmp(nscale, "relu") && strcmp(nscale, "minmax"))) {
    ps_err_set(&err, PS_ECONFIG, "--interp-explain-frac %g: between 0 and 1 (exclusive); --interp-go-by-namespace: 0 "
                                 "or 1; --interp-neuron-scaling '%s': relu or minmax", efrac, nscale);
    goto fail;
  }
  o.sample.explain_frac = efrac;
  o.go_by_namespace = (int)byns;
  int neuron_relu = !strcmp(nscale, "relu");
  o.max_go_terms = (int)goterms;
  o.with_sequence = (int)withseq;
  // mode and key
  const char *mode_s = ps_config_str(cfg, "mode");
  const char *key_file = ps_config_str(cfg, "key-file");
  int offline = 0;
  if (!strcmp(mode_s, "offline")) {
    offline = 1;
  } else {
    int ok = 1;
    if (!strcmp(mode_s, "auto")) lo.api = LLM_API_ANTHROPIC;
    else lo.api = llm_api_parse(mode_s, &ok);
    if (!ok) {
      ps_err_set(&err, PS_ECONFIG, "--mode '%s': auto, anthropic, openai or offline expected", mode_s);
      goto fail;
    }
    if (key_file) {
      if (llm_read_key_file(key_file, &key, &err) < 0) goto fail;
    } else {
      const char *env = getenv(lo.api == LLM_API_ANTHROPIC ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY");
      if (env && *env) key = ps_xstrdup(env);
    }
    if (!strcmp(mode_s, "auto") && !key) {
      offline = 1;
      PS_WARN("no API key (ANTHROPIC_API_KEY or --key-file): running OFFLINE (explanations from the shown proteins' annotations, no LLM)");
    }
  }
  if (ps_metrics_start(&mx.m, "interpreter", ps_config_str(cfg, "producer"), ps_config_str(cfg, "metrics-bind"),
                       (int)mport, &err) < 0)
    goto fail;
  mx.req = ps_metrics_add(mx.m, "llm_requests_total", PS_COUNTER, "HTTP requests sent (retries included)");
  mx.retries = ps_metrics_add(mx.m, "llm_retries_total", PS_COUNTER, "retries after 429 / 5xx / timeouts");
  mx.hits = ps_metrics_add(mx.m, "llm_cache_hits_total", PS_COUNTER, "answers taken from the cache (not paid)");
  mx.answered = ps_metrics_add(mx.m, "llm_answered_total", PS_COUNTER, "calls answered");
  mx.failed = ps_metrics_add(mx.m, "llm_failed_total", PS_COUNTER, "calls failed after all retries");
  mx.in_tok = ps_metrics_add(mx.m, "llm_input_tokens_total", PS_COUNTER, "input tokens (server usage)");
  mx.out_tok = ps_metrics_add(mx.m, "llm_output_tokens_total", PS_COUNTER, "output tokens (server usage)");
  int m_units = ps_metrics_add(mx.m, "units_done", PS_GAUGE, "features and neurons interpreted");
  if (service) {
    if (curve_from_config(cfg, &err) < 0) goto fail;
    curve_metrics(mx.m);
  }
  if ((!service || !offline) && mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    ps_err_set(&err, -errno, "%s: cannot create: %s", out_dir, strerror(errno));
    goto fail;
  }
  char mode[512];
  if (offline) {
    snprintf(mode, sizeof mode, "offline");
  } else {
    lo.model = ps_config_str(cfg, "model");
    lo.base_url = ps_config_str(cfg, "base-url");
    lo.api_key = key;
    lo.anthropic_version = ps_config_str(cfg, "anthropic-version");
    lo.temperature = temp;
    lo.max_tokens = (int)maxtok;
    lo.parallel = (int)par;
    lo.requests_per_min = rpm;
    lo.tokens_per_min = tpm;
    lo.timeout_ms = timeout;
    lo.max_retries = (int)retries;
    lo.backoff_base_ms = backoff;
    lo.seed = (uint64_t)seed;
    lo.stop = &ps_stop_flag;
    lo.progress = mx.m ? on_llm_progress : NULL;
    lo.progress_ctx = &mx;
    char cpath[4096];
    const char *cp = ps_config_str(cfg, "cache");
    if (!cp) {
      snprintf(cpath, sizeof cpath, "%s/llm-cache", out_dir);
      cp = cpath;
    }
    const char *ph = ps_config_str(cfg, "cache-per-host");
    if (!strcmp(ph, "1") || (!strcmp(ph, "auto") && service)) {
      char host[64] = "host", base[3800];
      gethostname(host, sizeof host - 1);
      host[sizeof host - 1] = 0;
      if (strlen(cp) >= sizeof base) {
        ps_err_set(&err, PS_ECONFIG, "--cache: path longer than %zu bytes", sizeof base - 1);
        goto fail;
      }
      memcpy(base, cp, strlen(cp) + 1);
      if (mkdir(base, 0755) != 0 && errno != EEXIST) {
        ps_err_set(&err, -errno, "%s: cannot create the cache directory: %s", base, strerror(errno));
        goto fail;
      }
      snprintf(cpath, sizeof cpath, "%s/%s", base, host);
      cp = cpath;
    }
    if (llm_cache_open(&cache, cp, &err) < 0) goto fail;
    if (llm_client_new(&llm, &lo, cache, &err) < 0) goto fail;
    snprintf(mode, sizeof mode, "%s:%s", lo.api == LLM_API_ANTHROPIC ? "anthropic" : "openai", lo.model);
    PS_INFO("llm endpoint=%s model=%s key=%s cache=%s", llm_endpoint(llm), lo.model, key ? "set" : "none", cp);
  }
  if (interp_db_load(&db, ps_config_str(cfg, "data"), o.with_sequence, &err) < 0) goto fail;
  if (pfam_setup(db, cfg, &err) < 0) goto fail;
  if (service) {
    if (!db->go) {
      ps_err_set(&err, PS_ENOTFOUND, "%s: no GO ontology in the data directory (go*.obo[.gz])", ps_config_str(cfg, "data"));
      goto fail;
    }
    interp_service_t sv = {db, offline ? NULL : llm, &o, mode};
    ps_metrics_set_stall(mx.m, (double)stall);
    mx.live = 1;
    if (run_service(in_ep, res_ep, hwm < 1 ? 1 : hwm, (int)par, &sv, ps_config_str(cfg, "producer"), &mx, m_units,
                    &err) < 0)
      goto fail;
    status = 0;
    goto fail;
  }
  interp_run_opts_t ro = {llm, offline};
  interp_summary_t sf = {0}, sn = {0};
  int have_f = 0, have_n = 0;
  if (features) {
    if (run_kind(features, ids, "feature", 0, (size_t)nf, &o, db, &ro, out_dir, mode, &sf, &err) < 0) goto fail;
    have_f = 1;
    ps_metrics_set(mx.m, m_units, (double)sf.n_selected);
  }
  if (neurons) {
    if (run_kind(neurons, ids, "neuron", neuron_relu, (size_t)nn, &o, db, &ro, out_dir, mode, &sn, &err) < 0) goto fail;
    have_n = 1;
    ps_metrics_set(mx.m, m_units, (double)(sf.n_selected * (size_t)have_f + sn.n_selected));
  }
  // summary
  json_t *j = json_object();
  json_object_set_new(j, "offline", json_boolean(offline));
  json_object_set_new(j, "mode", json_string(mode));
  if (offline)
    json_object_set_new(j, "note", json_string("OFFLINE: no LLM; explanations from the annotations over-represented "
                                               "among the shown proteins, graded predictions from annotation matches"));
  if (have_f) json_object_set_new(j, "features", summary_json(&sf));
  if (have_n) json_object_set_new(j, "neurons", summary_json(&sn));
  if (llm) {
    llm_stats_t st;
    llm_get_stats(llm, &st);
    json_t *s = json_object();
    json_object_set_new(s, "requests", json_integer((json_int_t)st.requests));
    json_object_set_new(s, "retries", json_integer((json_int_t)st.retries));
    json_object_set_new(s, "cache_hits", json_integer((json_int_t)st.cache_hits));
    json_object_set_new(s, "failed", json_integer((json_int_t)st.failed));
    json_object_set_new(s, "input_tokens", json_integer((json_int_t)st.input_tokens));
    json_object_set_new(s, "output_tokens", json_integer((json_int_t)st.output_tokens));
    json_object_set_new(j, "llm", s);
  }
  char spath[4096], stmp[4200];
  snprintf(spath, sizeof spath, "%s/summary.json", out_dir);
  snprintf(stmp, sizeof stmp, "%s.tmp", spath);
  int wrc = json_dump_file(j, stmp, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
  json_decref(j);
  if (wrc != 0 || rename(stmp, spath) != 0) {
    ps_err_set(&err, PS_EIO, "%s: cannot write", spath);
    goto fail;
  }
  printf("mode: %s%s\n", mode, offline ? " (OFFLINE: no LLM, explanations from the shown proteins' annotations)" : "");
  printf("%-22s %12s %12s\n", "", "features", "neurons");
  print_row("analysed", "%.0f", (double)sf.n_selected, (double)sn.n_selected, have_f, have_n);
  print_row("scored", "%.0f", (double)sf.n_scored, (double)sn.n_scored, have_f, have_n);
  print_row("failed", "%.0f", (double)sf.n_failed, (double)sn.n_failed, have_f, have_n);
  print_row("skipped_too_few", "%.0f", (double)sf.n_too_few, (double)sn.n_too_few, have_f, have_n);
  print_row("mean_r", "%.4f", sf.mean_r, sn.mean_r, have_f, have_n);
  print_row("median_r", "%.4f", sf.median_r, sn.median_r, have_f, have_n);
  print_row("frac_p_lt_0.05", "%.4f", sf.frac_p05, sn.frac_p05, have_f, have_n);
  printf("summary: %s\n", spath);
  status = 0;
fail:
  if (status) {
    PS_ERROR("interpreter failed: %s", err.msg);
    if (err.code == PS_EINTR) status = 0;
  }
  llm_client_destroy(&llm);
  ps_metrics_stop(&mx.m);
  llm_cache_destroy(&cache);
  interp_db_destroy(&db);
  if (key) {
    memset(key, 0, strlen(key));
    free(key);
  }
  ps_config_destroy(&cfg);
  return status;
}
