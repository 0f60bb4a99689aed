// demo_interp.h — the interpretation settings of `protsae demo` / `run` handed to the stages that
// use them: interp-explain-frac and interp-neuron-scaling to the scorer (it samples and splits
// the proteins) and to the interpreter (its effective configuration says them too);
// interp-go-by-namespace, pfam-names and uniprot-flat to the interpreter; interp-model as the
// interpreter's --model.
#ifndef PS_CLI_DEMO_INTERP_H
#define PS_CLI_DEMO_INTERP_H

#include <stddef.h>

#include "config.h"
#include "topo.h"

// The demo table's entries for these keys (for cli/demo.c's table).
#define DEMO_INTERP_ENTRIES                                                                                        \
  {"interp-explain-frac", "0.5", "share of a unit's sampled proteins shown to the interpreter for the explanation; " \
                                 "the rest are predicted (the reference study: 0.75)"},                             \
  {"interp-go-by-namespace", "1", "GO terms in the prompts per namespace (BP / MF / CC sections; 0 = one list)"},   \
  {"interp-neuron-scaling", "relu", "neuron activations: relu (ReLU, then min-max) | minmax (min-max of the raw "    \
                                    "values; the neuron store keeps positive values only, so equal to relu there)"},\
  {"interp-model", "claude-sonnet-4-5", "the interpreter's model (the reference study: claude-3-5-sonnet-20240620)"}, \
  {"pfam-names", NULL, "Pfam names table (PF00001<TAB>7tm_1): prompts show PF00001 (7tm_1)"},                       \
  {"uniprot-flat", "auto", "UniProt flat file(s) naming Pfam families ('DR   Pfam;' lines; auto = beside --data)"}

// Append the settings to the scorer's (sc; SIZE_MAX: none, another interpreter of the same
// scorer) and the interpreter's (ix) argv.
void demo_interp_args(topo_t *t, size_t sc, size_t ix, const ps_config_t *cfg);

#endif
