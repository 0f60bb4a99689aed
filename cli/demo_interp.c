// demo_interp.c — see demo_interp.h.
#include "demo_interp.h"

#include <stdint.h>
#include <stdio.h>

void demo_interp_args(topo_t *t, size_t sc, size_t ix, const ps_config_t *cfg) {
  static const char *const both[] = {"interp-explain-frac", "interp-neuron-scaling"};
  static const char *const interp_only[] = {"interp-go-by-namespace", "pfam-names", "uniprot-flat"};
  char flag[64];
  for (size_t i = 0; i < sizeof both / sizeof *both; i++) {
    snprintf(flag, sizeof flag, "--%s", both[i]);
    if (sc != SIZE_MAX) topo_arg(t, sc, flag, "%s", ps_config_str(cfg, both[i]));
    topo_arg(t, ix, flag, "%s", ps_config_str(cfg, both[i]));
  }
  for (size_t i = 0; i < sizeof interp_only / sizeof *interp_only; i++) {
    const char *v = ps_config_str(cfg, interp_only[i]);
    if (!v) continue;  // unset path
    snprintf(flag, sizeof flag, "--%s", interp_only[i]);
    topo_arg(t, ix, flag, "%s", v);
  }
  topo_arg(t, ix, "--model", "%s", ps_config_str(cfg, "interp-model"));
}
