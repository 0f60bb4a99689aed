// protsae consume (developer tool) — a pipeline sink: pulls Envelopes, checks EmbeddingBatches,
// counts rows and proteins per producer, and stops when every expected producer's EndOfStream has
// arrived and its counts are matched. Used by the integration tests of the reader (--dump writes
// one line per protein: producer seq id rows checksum validation).
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "curve.h"
#include "dev.h"
#include "io.h"
#include "log.h"
#include "signals.h"
#include "wire.h"

static const ps_config_entry_t table[] = {
    {"in", "@ipc:///tmp/protsae-reader.ipc", "endpoint (@ binds, > connects)"},
    {"producers", "1", "producers feeding this endpoint: stop after all their EndOfStreams"},
    {"hwm", "16", "receive high-water mark"},
    {"timeout-ms", "-1", "give up after this long without a message (-1 = never)"},
    {"dump", NULL, "write 'producer seq id n_rows checksum val' per protein to this file (checksum: of its rows)"},
    {"quiet", "0", "no summary on stdout"},
    {"delay-ms", "0", "sleep this long after each batch (tests: a slow consumer)"},
    PS_WIRE_SECURITY_ENTRIES,
    {NULL, NULL, NULL},
};

typedef struct prod {
  char name[64];
  uint64_t rows, batches, proteins;
  int eos;
  uint64_t eos_rows, eos_batches, eos_proteins;
} prod_t;

static prod_t *find_prod(prod_t *p, int *n, const char *name) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(p[i].name, name)) return &p[i];
  if (*n >= 64) return NULL;
  prod_t *q = &p[(*n)++];
  memset(q, 0, sizeof *q);
  snprintf(q->name, sizeof q->name, "%s", name);
  return q;
}

int cli_consume(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  void *zctx = NULL, *sock = NULL;
  FILE *dump = NULL;
  int status = 1;
  int crc = ps_config_cli(&cfg, table, "protsae consume", argc, argv);
  if (crc >= 0) return crc;
  int64_t nprod = 1, hwm = 16, timeout = -1, delay = 0;
  int quiet = 0;
  const ps_config_bind_t opts[] = {PS_CFG_I64("producers", &nprod), PS_CFG_I64("hwm", &hwm),
                                   PS_CFG_I64("timeout-ms", &timeout), PS_CFG_I64("delay-ms", &delay),
                                   PS_CFG_BOOL("quiet", &quiet), {0}};
  if (ps_config_read(cfg, opts, &err) < 0) goto out;
  const char *dp = ps_config_str(cfg, "dump");
  if (dp && !(dump = fopen(dp, "w"))) {
    ps_err_set(&err, PS_EIO, "%s: cannot write", dp);
    goto out;
  }
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  wo.hwm = (int)hwm;
  if (curve_from_config(cfg, &err) < 0) goto out;
  zctx = zmq_ctx_new();
  if (!(sock = wire_socket(zctx, ZMQ_PULL, ps_config_str(cfg, "in"), &wo, &err))) goto out;
  prod_t prods[64];
  int np = 0, eos_count = 0;
  wire_stats_t st = {0};
  uint64_t rows = 0, prots = 0, val = 0, bad = 0;
  uint32_t dim = 0;
  double t0 = 0, t_last = 0;
  while (eos_count < nprod) {
    Protsae__Envelope *env = NULL;
    int rc = wire_recv(sock, &env, (int)timeout, &ps_stop_flag, &st, &err);
    if (rc == 0) {
      ps_err_set(&err, PS_ETRUNC, "no message for %lld ms (%d of %lld producers finished)", (long long)timeout,
                 eos_count, (long long)nprod);
      goto out;
    }
    if (rc < 0) goto out;
    if (t0 == 0) t0 = ps_mono_s();
    prod_t *p = find_prod(prods, &np, env->producer);
    if (!p) {
      wire_free(&env);
      continue;
    }
    switch (env->body_case) {
    case PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH: {
      Protsae__EmbeddingBatch *b = env->embedding_batch;
      p->rows += b->n_rows;
      p->batches++;
      p->proteins += b->n_protein_ids;
      rows += b->n_rows;
      prots += b->n_protein_ids;
      dim = b->dim;
      const float *x = (const float *)b->rows.data;
      for (size_t i = 0; i < b->n_protein_ids; i++) {
        int v = i < b->n_is_validation && b->is_validation[i];
        val += v;
        if (!dump) continue;
        size_t r0 = b->level == PROTSAE__LEVEL__LEVEL_RESIDUE ? b->residue_offsets[i] : i;
        size_t r1 = b->level == PROTSAE__LEVEL__LEVEL_RESIDUE ? b->residue_offsets[i + 1] : i + 1;
        double sum = 0;  // the protein's rows alone: the same whatever its place in the batch
        for (size_t k = r0 * b->dim; k < r1 * b->dim; k++) sum += x[k] * (double)(((k - r0 * b->dim) % 7) + 1);
        fprintf(dump, "%s %" PRIu64 " %s %zu %.9g %d\n", env->producer, env->seq, b->protein_ids[i], r1 - r0, sum, v);
      }
      t_last = ps_mono_s();
      if (delay > 0) usleep((useconds_t)delay * 1000);
      break;
    }
    case PROTSAE__ENVELOPE__BODY_END_OF_STREAM:
      if (!p->eos) eos_count++;
      p->eos = 1;
      p->eos_rows = env->end_of_stream->rows_sent;
      p->eos_batches = env->end_of_stream->batches_sent;
      p->eos_proteins = env->end_of_stream->proteins_sent;
      break;
    default:
      bad++;
      break;
    }
    wire_free(&env);
  }
  // Every EndOfStream is in: hang up now. Producers keep their connections open until their
  // consumers hang up (wire.h: closing earlier can lose the tail of a stream), so they wait on us.
  wire_close(&sock);
  int ok = 1;
  for (int i = 0; i < np; i++) {
    if (!prods[i].eos) continue;
    if (prods[i].rows != prods[i].eos_rows || prods[i].batches != prods[i].eos_batches ||
        prods[i].proteins != prods[i].eos_proteins) {
      ok = 0;
      fprintf(stderr, "protsae consume: producer %s sent %" PRIu64 " rows / %" PRIu64 " batches but %" PRIu64
                      " / %" PRIu64 " arrived\n", prods[i].name, prods[i].eos_rows, prods[i].eos_batches,
              prods[i].rows, prods[i].batches);
    }
  }
  double secs = t_last > t0 ? t_last - t0 : 0;
  if (!quiet) {
    printf("rows: %" PRIu64 "\nproteins: %" PRIu64 "\nvalidation_proteins: %" PRIu64 "\ndim: %u\n", rows, prots, val, dim);
    printf("producers: %d\ndropped_malformed: %" PRIu64 "\ndropped_version: %" PRIu64 "\n", np, st.dropped_malformed,
           st.dropped_version);
    printf("counts_match: %s\n", ok ? "yes" : "NO");
    if (secs > 0) printf("rows_per_s: %.0f\nmb_per_s: %.1f\n", rows / secs, st.bytes / secs / 1e6);
  }
  status = ok ? 0 : 1;
  if (!ok) ps_err_set(&err, PS_EMISMATCH, "EndOfStream counts do not match what arrived");
out:
  if (status && err.msg[0]) fprintf(stderr, "protsae consume: %s\n", err.msg);
  if (dump) fclose(dump);
  wire_close(&sock);
  if (zctx) zmq_ctx_term(zctx);
  ps_config_destroy(&cfg);
  return status;
}
