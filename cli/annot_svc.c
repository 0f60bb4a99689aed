// annot_svc.c — see annot_svc.h.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "annot_svc.h"
#include "cli.h"
#include "hash.h"

static void extra(topo_t *t, size_t i, const char *const *args) {
  for (int k = 0; args && args[k] && args[k + 1]; k += 2) topo_arg(t, i, args[k], "%s", args[k + 1]);
}

int annot_svc_topo(topo_t *t, const annot_svc_t *a, size_t *reader, size_t *annotator) {
  char exe[PATH_MAX], absout[PATH_MAX], ep[96];
  if (!realpath(a->out, absout)) snprintf(absout, sizeof absout, "%s", a->out);
  snprintf(ep, sizeof ep, "ipc:///tmp/protsae-annotate-%016llx", (unsigned long long)ps_fnv1a64(absout));
  size_t r = topo_add(t, "reader", SV_SINK, 5, 0);
  if (!cli_stage_path("reader", exe, sizeof exe)) return -1;
  argv_push(t->argv[r], exe);
  topo_arg(t, r, "--watch", "%s", a->drop);
  topo_arg(t, r, "--state-dir", "%s", a->state);  // the ledger: STATE/ledger/NAME.HASH
  topo_arg(t, r, "--out", "@%s-rd", ep);
  topo_arg(t, r, "--control", "@%s-ctl", ep);
  topo_arg(t, r, "--dim", "%lld", (long long)a->d_in);
  topo_arg(t, r, "--linger-ms", "%d", 5000);
  topo_arg(t, r, "--batch-rows", "%s", a->batch_rows);
  if (a->metrics_port) topo_arg(t, r, "--metrics-port", "%lld", (long long)a->metrics_port);
  extra(t, r, a->reader_args);
  size_t s = topo_add(t, "annotator", SV_SERVICE, 5, 0);
  if (!cli_stage_path("annotator", exe, sizeof exe)) return -1;
  argv_push(t->argv[s], exe);
  topo_arg(t, s, "--in", "@%s-sink", ep);
  topo_arg(t, s, "--control", ">%s-ctl", ep);
  topo_arg(t, s, "--db", "%s", a->db);
  topo_arg(t, s, "--data", "%s", a->data);
  topo_arg(t, s, "--out", "%s", a->out);
  topo_arg(t, s, "--state", "%s/annotations.db", a->state);
  if (a->metrics_port) topo_arg(t, s, "--metrics-port", "%lld", (long long)a->metrics_port + 1);
  extra(t, s, a->annotator_args);
  for (int i = 0; i < a->n_enc; i++) {
    char name[32];
    snprintf(name, sizeof name, "encoder-%d", i + 1);
    size_t e = topo_add(t, name, SV_SERVICE, 5, 0);
    if (!cli_stage_path("encoder", exe, sizeof exe)) return -1;
    argv_push(t->argv[e], exe);
    topo_arg(t, e, "--sae", "%s", a->sae);
    topo_arg(t, e, "--in", ">%s-rd", ep);
    topo_arg(t, e, "--out", ">%s-sink", ep);
    topo_arg(t, e, "--producer", "%s", name);
    topo_arg(t, e, "--max-batch-rows", "%s", a->batch_rows);
    if (a->metrics_port) topo_arg(t, e, "--metrics-port", "%lld", (long long)(a->metrics_port + 2 + i));
  }
  *reader = r;
  *annotator = s;
  return 0;
}
