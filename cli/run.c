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
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "err.h"

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
  return s;
}

int cli_config_argv(const char *prog, const char *path, int (*known)(const char *), int argc, char **argv,
                    cli_argv_t *out) {
  memset(out, 0, sizeof *out);
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    fprintf(stderr, "protsae %s: %s: is a directory, not a CONFIG file ('key = value' lines)\n", prog, path);
    return 2;
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return 2;
  }
  size_t cap = 64, n = 0;
  char **av = ps_xmalloc(cap * sizeof *av);
  av[n++] = (char *)prog;
  char line[8192];
  int lineno = 0, status = 2;
  size_t n_owned = 1;  // av[1..n_owned) are ours
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      fprintf(stderr, "protsae %s: %s line %d: longer than %zu bytes\n", prog, path, lineno, sizeof line - 2);
      goto out;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = trim(line);
    if (!*s) continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "protsae %s: %s line %d: 'key = value' expected, got '%s'\n", prog, path, lineno, s);
      goto out;
    }
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(key)) {
      fprintf(stderr, "protsae %s: %s line %d: bad key '%s' (lower-case words joined by '-')\n", prog, path, lineno,
              key);
      goto out;
    }
    if (!known(key)) {
      fprintf(stderr, "protsae %s: %s line %d: unknown key '%s' (see protsae %s --help)\n", prog, path, lineno, key,
              !strcmp(prog, "run") ? "demo" : prog);
      goto out;
    }
    size_t kl = strlen(key);
    for (size_t i = 1; i < n; i++)
      if (!strncmp(av[i] + 2, key, kl) && av[i][2 + kl] == '=') {
        fprintf(stderr, "protsae %s: %s line %d: '%s' given twice\n", prog, path, lineno, key);
        goto out;
      }
    if (n + 2 >= cap) av = ps_xrealloc(av, (cap *= 2) * sizeof *av);
    size_t vl = strlen(val);
    char *arg = ps_xmalloc(kl + vl + 4);  // --key=value: a value may start with '-'
    snprintf(arg, kl + vl + 4, "--%s=%s", key, val);
    av[n++] = arg;
    n_owned = n;
  }
  if (ferror(f)) {
    fprintf(stderr, "protsae %s: %s: read error: %s\n", prog, path, strerror(errno));
    goto out;
  }
  // flags after CONFIG: later occurrences win in the option parser
  for (int i = 2; i < argc; i++) {
    if (n + 2 >= cap) av = ps_xrealloc(av, (cap *= 2) * sizeof *av);
    av[n++] = argv[i];
  }
  av[n] = NULL;
  status = 0;
out:
  fclose(f);
  out->argv = av, out->argc = (int)n, out->n_owned = n_owned, out->lines = lineno;
  if (status) cli_argv_free(out);
  return status;
}

void cli_argv_free(cli_argv_t *a) {
  for (size_t i = 1; i < a->n_owned; i++) free(a->argv[i]);  // the option parser copies values
  free(a->argv);
  memset(a, 0, sizeof *a);
}

int cli_run(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: protsae run CONFIG [--key value ...]\n"
                    "  CONFIG: 'key = value' lines with the keys of `protsae demo --help`\n"
                    "  (emb, fasta, ids, data select your own embeddings and annotations)\n");
    return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
  }
  const char *path = argv[1];
  cli_argv_t a;
  int status = cli_config_argv("run", path, demo_has_option, argc, argv, &a);
  if (status) return status;
  // Without emb the demo would run on its planted data: never what a CONFIG meant.
  int have_emb = getenv("PROTSAE_EMB") && *getenv("PROTSAE_EMB");
  for (int i = 1; i < a.argc && !have_emb; i++)
    have_emb = !strncmp(a.argv[i], "--emb=", 6) || (!strcmp(a.argv[i], "--emb") && i + 1 < a.argc);
  if (!have_emb) {
    fprintf(stderr, "protsae run: %s: no 'emb' (the embeddings to run on; %s). For the planted demo use "
                    "`protsae demo`\n", path, a.lines ? "add 'emb = FILE'" : "the file is empty");
    cli_argv_free(&a);
    return 2;
  }
  printf("protsae run: %s\n", path);
  status = cli_demo(a.argc, a.argv);
  cli_argv_free(&a);
  return status;
}
