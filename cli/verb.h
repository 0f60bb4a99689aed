// verb.h — what the single-step verbs (`protsae train`, `protsae interpret`) share: a command
// table made of the demo's entries for the keys the verb takes plus its own, and a topology run
// under the supervisor with a progress line.
#ifndef PS_CLI_VERB_H
#define PS_CLI_VERB_H

#include <stddef.h>

#include "config.h"
#include "topo.h"

#define VERB_MAX_KEYS 64

// own (ending with {NULL}) then the demo's entries (demo_option) for keys (NULL-terminated),
// into table (VERB_MAX_KEYS + 1 entries). A key the demo does not have is a programmer error.
void verb_table(ps_config_entry_t *table, const ps_config_entry_t *own, const char *const *keys);
// The verb's options: `protsae PROG CONFIG [--key value ...]` (cli_config_argv: `key = value`
// lines) or `protsae PROG --key value ...`, against the table verb_table builds in table. -1 with
// *cfg set (the caller destroys it), or the exit status (--help: 0; a bad option or file: 2).
int verb_parse(const char *prog, ps_config_entry_t *table, const ps_config_entry_t *own, const char *const *keys,
               int argc, char **argv, ps_config_t **cfg);

// Run t under the supervisor, a progress line from port (train_port: a trainer's too; 0 = none).
// 0, 130 when a signal stopped it, 1 when a stage failed (the supervisor printed its log's tail;
// prog and logs name it).
int verb_topo_run(topo_t *t, const char *prog, const char *label, const char *logs, int port, int train_port);

#endif
