// protsae run CONFIG — the demo's pipeline on a user's own data and settings.
//
// CONFIG is a text file of `key = value` lines ('#' starts a comment; blank lines ignored); the
// keys are those of `protsae demo --help` (workdir, emb, fasta, ids, data; the training recipe:
// arch, d-sae, k, train-rows, train-epochs, train-batch, lr, lr-decay, tie-coeff, init-from-data,
// ...; encoders, n-interpret, mode, ...). Flags after CONFIG override the file, PROTSAE_* environment
// variables override both (as for every command). A key the pipeline does not know, a line
// without '=', or a key given twice is an error naming the file and line. A CONFIG that is a
// directory, or that gives no `emb` (an empty file: nothing of the user's to run; the planted
// demo is `protsae demo`), is refused naming the path.
//
// Example:
//   workdir = my-run
//   emb = proteome.npy          # any format the reader takes (npy, safetensors, h5, pt)
//   fasta = proteome.fasta.gz
//   data = /path/to/annotations # proteins.tsv.gz, go_annotations.tsv.gz, go-*.obo.gz
//   d-sae = 4096
//   k = 16
//   train-rows = 3000000        # the row budget: epochs = floor(3M / proteins)
//
// `preset = NAME` (or --preset NAME) starts from a preset of cli/presets/ (conf.h): the file's own
// keys and the flags override the preset's.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "err.h"

int cli_run(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: protsae run CONFIG [--key value ...]\n"
                    "  CONFIG: 'key = value' lines with the keys of `protsae demo --help`\n"
                    "  (emb, fasta, ids, data select your own embeddings and annotations;\n"
                    "  preset = NAME starts from a shipped preset, e.g. study-protein)\n");
    return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
  }
  const char *path = argv[1];
  conf_argv_t a = {0};
  ps_err_t err = {0};
  int status = 2;
  conf_argv_push(&a, "run", 0);
  if (conf_read(path, demo_has_option, &a, &err) < 0) {
    fprintf(stderr, "protsae run: %s\n", err.msg);
    goto out;
  }
  size_t n_file = a.n - 1;
  for (int i = 2; i < argc; i++) conf_argv_push(&a, argv[i], 0);  // flags after CONFIG: later occurrences win
  // Without emb the demo would run on its planted data: never what a CONFIG meant.
  int have_emb = getenv("PROTSAE_EMB") && *getenv("PROTSAE_EMB");
  for (size_t i = 1; i < a.n && !have_emb; i++)
    have_emb = !strncmp(a.av[i], "--emb=", 6) || (!strcmp(a.av[i], "--emb") && i + 1 < a.n);
  if (!have_emb) {
    fprintf(stderr, "protsae run: %s: no 'emb' (the embeddings to run on; %s). For the planted demo use "
                    "`protsae demo`\n", path, n_file ? "add 'emb = FILE'" : "the file is empty");
    goto out;
  }
  printf("protsae run: %s\n", path);
  status = cli_demo((int)a.n, a.av);
out:
  conf_argv_free(&a);
  return status;
}
