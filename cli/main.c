// protsae — the front command: runs pipelines and tools. Each subcommand is one function
// (cli.h: user commands; dev/dev.h: developer tools, listed apart in the help).
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dev/dev.h"
#include "log.h"
#include "signals.h"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} command_t;

static const command_t user_commands[] = {
    {"demo", cli_demo, "end to end on the built-in planted dataset over real human proteins"},
    {"run", cli_run, "the same pipeline on your embeddings and settings: protsae run CONFIG"},
    {"train", cli_train, "step 2 alone: reader -> trainer with the demo's recipe and keys, the SAE into --out"},
    {"interpret", cli_interpret, "explain and score the units of an existing feature store (scorer <-> interpreters)"},
    {"synth", cli_synth, "generate embeddings with planted, known GO-term features"},
    {"embed", cli_embed, "native ESM2: FASTA + Hugging Face ESM2 checkpoint -> npy / safetensors representations"},
    {"enrich", cli_enrich, "GO enrichment of every SAE feature (and/or neuron) against the GO hierarchy"},
    {"features", cli_features, "the feature store's table: frequency, mean, max, dead / dense flags (sortable)"},
    {"feature", cli_feature, "one feature: statistics, top proteins with names, histogram"},
    {"annotate", cli_annotate,
     "continuous annotation: watch a drop directory of proteomes, write features, explanations, GO terms"},
    {"submit", cli_submit, "hand a proteome to a running annotation service (reader --requests): its key, or why not"},
    {"dump", cli_dump, "a feature store as text (statistics, codes, enrichment, explanations): cmp two runs"},
    {"export", cli_export,
     "a feature store's results as files: GO terms TSV, per-feature TSV, explanations JSONL, summaries"},
    {"report", cli_report, "one self-contained HTML report of a run (curves, features vs neurons, feature cards)"},
    {"status", cli_status, "every stage's progress from its metrics endpoint (rows, rate, ETA, loss, L0, dead %)"},
    {"enrich-store", cli_enrich_store, "GO enrichment of the features (and neurons) in feature stores, side by side"},
    {"keys", cli_keys, "a CURVE keypair for the stages' tcp:// sockets: DIR/NAME.key (secret) + NAME.pub"},
    {NULL, NULL, NULL},
};

static const command_t dev_commands[] = {
    {"consume", cli_consume, "a pipeline sink that checks and counts what arrives"},
    {"recovery", cli_recovery, "how many planted directions a trained SAE's decoder recovers (cosine)"},
    {"encode-check", cli_encode_check, "the feature store's codes against a direct in-process encode"},
    {"esm2-random", cli_esm2_random, "an ESM2 checkpoint with random weights of a given shape (benchmarks)"},
    {NULL, NULL, NULL},
};

static void list(FILE *f, const command_t *c) {
  for (; c->name; c++) fprintf(f, "  %-13s %s\n", c->name, c->help);
}

static void usage(FILE *f) {
  fprintf(f, "usage: protsae COMMAND [options]   (protsae COMMAND --help for its options)\ncommands:\n");
  list(f, user_commands);
  fprintf(f, "  %-13s %s\ndeveloper commands:\n", "version", "print the version");
  list(f, dev_commands);
}

static const command_t *find(const command_t *c, const char *name) {
  for (; c->name; c++)
    if (!strcmp(c->name, name)) return c;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  ps_log_init(cmd);
  ps_signals_install();
  if (!strcmp(cmd, "version")) {
    printf("protsae %s\n", PROTSAE_VERSION);
    return 0;
  }
  const command_t *c = find(user_commands, cmd);
  if (!c) c = find(dev_commands, cmd);
  if (c) return c->run(argc - 1, argv + 1);
  fprintf(stderr, "protsae: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
