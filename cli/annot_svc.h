// annot_svc.h — the annotation service's topology (reader --watch -> N encoders -> annotator),
// built by `protsae annotate` and by the demo's held-out annotation step: the same processes.
#ifndef PS_CLI_ANNOT_SVC_H
#define PS_CLI_ANNOT_SVC_H

#include <stdint.h>

#include "topo.h"

typedef struct annot_svc {
  const char *drop, *out, *state;   // drop directory, outputs, state (ledger/, annotations.db, logs/)
  const char *sae, *db, *data;      // the SAE, its feature store, the data directory (ontology, truth)
  int64_t d_in;                     // the SAE's input dimension (precomputed embeddings are checked)
  int n_enc;
  int64_t metrics_port;             // reader, annotator, encoders from here (0 = off)
  const char *batch_rows;
  const char *const *reader_args;   // extra "--flag", "value" pairs for the reader, NULL-terminated
  const char *const *annotator_args;
} annot_svc_t;

// Appends the stages to t (the reader is the topology's sink: it exits when --once is done). The
// endpoints are ipc:// paths named after the output directory. 0, or -1 when a stage executable
// is missing. *reader / *annotator: their indexes in t.
int annot_svc_topo(topo_t *t, const annot_svc_t *a, size_t *reader, size_t *annotator);

#endif
