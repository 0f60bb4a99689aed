// protsae — the front command: runs pipelines and tools.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "signals.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: protsae COMMAND [options]   (protsae COMMAND --help for its options)\n"
          "commands:\n"
          "  demo      end to end on the built-in planted dataset over real human proteins\n"
          "  run       the same pipeline on your embeddings and settings: protsae run CONFIG\n"
          "  synth     generate embeddings with planted, known GO-term features\n"
          "  consume   a pipeline sink that checks and counts what arrives\n"
          "  recovery  how many planted directions a trained SAE's decoder recovers (cosine)\n"
          "  embed     native ESM2: FASTA + Hugging Face ESM2 checkpoint -> npy / safetensors representations\n"
          "  enrich    GO enrichment of every SAE feature (and/or neuron) against the GO hierarchy\n"
          "  features  the feature store's table: frequency, mean, max, dead / dense flags (sortable)\n"
          "  feature   one feature: statistics, top proteins with names, histogram\n"
          "  annotate  continuous annotation: watch a drop directory of proteomes, write features, explanations, GO terms\n"
          "  dump      a feature store as text (statistics, codes, enrichment, explanations): cmp two runs\n"
          "  export    a feature store's results as files: GO terms TSV, per-feature TSV, explanations JSONL, summaries\n"
          "  report    one self-contained HTML report of a run (curves, features vs neurons, feature cards)\n"
          "  status    every stage's progress from its metrics endpoint (rows, rate, ETA, loss, L0, dead %%)\n"
          "  enrich-store  GO enrichment of the features (and neurons) in feature stores, side by side\n"
          "  encode-check  the feature store's codes against a direct in-process encode\n"
          "  keys      a CURVE keypair for the stages' tcp:// sockets: DIR/NAME.key (secret) + NAME.pub\n"
          "  version   print the version\n");
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
  if (!strcmp(cmd, "synth")) return synth_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "consume")) return cli_consume(argc - 1, argv + 1);
  if (!strcmp(cmd, "demo")) return cli_demo(argc - 1, argv + 1);
  if (!strcmp(cmd, "run")) return cli_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "recovery")) return cli_recovery(argc - 1, argv + 1);
  if (!strcmp(cmd, "features")) return cli_features(argc - 1, argv + 1);
  if (!strcmp(cmd, "enrich-store")) return cli_enrich_store(argc - 1, argv + 1);
  if (!strcmp(cmd, "status")) return cli_status(argc - 1, argv + 1);
  if (!strcmp(cmd, "annotate")) return cli_annotate(argc - 1, argv + 1);
  if (!strcmp(cmd, "export")) return cli_export(argc - 1, argv + 1);
  if (!strcmp(cmd, "dump")) return cli_dump(argc - 1, argv + 1);
  if (!strcmp(cmd, "report")) return cli_report(argc - 1, argv + 1);
  if (!strcmp(cmd, "feature")) return cli_feature(argc - 1, argv + 1);
  if (!strcmp(cmd, "encode-check")) return cli_encode_check(argc - 1, argv + 1);
  if (!strcmp(cmd, "embed")) return cli_embed(argc - 1, argv + 1);
  if (!strcmp(cmd, "enrich")) return cli_enrich(argc - 1, argv + 1);
  if (!strcmp(cmd, "keys")) return cli_keys(argc - 1, argv + 1);
  fprintf(stderr, "protsae: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
