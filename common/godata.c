// godata.c — see godata.h.
#include "godata.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

static int readable(const char *dir, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", dir, name);
  return access(out, R_OK) == 0;
}

static int first_of(const char *dir, const char *const *names, char *out, size_t cap) {
  for (int i = 0; names[i]; i++)
    if (readable(dir, names[i], out, cap)) return 1;
  out[0] = 0;
  return 0;
}

int ps_godata_find(const char *dir, int need, ps_godata_t *g, ps_err_t *err) {
  memset(g, 0, sizeof *g);
  snprintf(g->dir, sizeof g->dir, "%s", dir);
  DIR *dh = opendir(dir);
  if (!dh) return ps_err_set(err, -errno, "%s: cannot open the data directory: %s", dir, strerror(errno));
  char best_obo[256] = "", gaf[256] = "";
  struct dirent *de;
  while ((de = readdir(dh))) {
    const char *n = de->d_name;
    if (strlen(n) >= sizeof best_obo) continue;
    if (!strncmp(n, "go", 2) && (has_suffix(n, ".obo") || has_suffix(n, ".obo.gz")) && strcmp(n, best_obo) > 0)
      snprintf(best_obo, sizeof best_obo, "%s", n);
    if ((has_suffix(n, ".gaf") || has_suffix(n, ".gaf.gz")) && (!gaf[0] || strcmp(n, gaf) < 0))
      snprintf(gaf, sizeof gaf, "%s", n);
  }
  closedir(dh);
  if (best_obo[0]) snprintf(g->obo, sizeof g->obo, "%s/%s", dir, best_obo);
  static const char *const ann[] = {"go_annotations.tsv.gz", "go_annotations.tsv", NULL};
  static const char *const prot[] = {"proteins.tsv.gz", "proteins.tsv", NULL};
  static const char *const fa[] = {"proteins.fasta.gz", "proteins.fasta", NULL};
  if (!first_of(dir, ann, g->annotations, sizeof g->annotations) && gaf[0]) {
    snprintf(g->annotations, sizeof g->annotations, "%s/%s", dir, gaf);
    g->annotations_gaf = 1;
  }
  first_of(dir, prot, g->proteins, sizeof g->proteins);
  first_of(dir, fa, g->fasta, sizeof g->fasta);
  if ((need & PS_GODATA_NEED_ONTOLOGY) && !g->obo[0])
    return ps_err_set(err, PS_ENOTFOUND, "%s: no GO ontology in the data directory (go*.obo or go*.obo.gz)", dir);
  if ((need & PS_GODATA_NEED_ANNOTATIONS) && !g->annotations[0])
    return ps_err_set(err, PS_ENOTFOUND,
                      "%s: no GO annotations in the data directory (go_annotations.tsv[.gz] or *.gaf[.gz])", dir);
  if ((need & PS_GODATA_NEED_PROTEINS) && !g->proteins[0])
    return ps_err_set(err, PS_ENOTFOUND, "%s: no proteins.tsv[.gz] in the data directory", dir);
  if ((need & PS_GODATA_NEED_FASTA) && !g->fasta[0])
    return ps_err_set(err, PS_ENOTFOUND, "%s: no proteins.fasta[.gz] in the data directory", dir);
  return 0;
}

static int is_data_dir(const char *dir) {
  ps_godata_t g;
  return ps_godata_find(dir, PS_GODATA_NEED_ONTOLOGY, &g, NULL) == 0;
}

const char *ps_godata_default_dir(char *buf, size_t cap) {
  const char *env = getenv("PROTSAE_DATA");
  if (env && env[0]) {
    if (!is_data_dir(env)) return NULL;  // an explicit choice is never replaced by a guess
    snprintf(buf, cap, "%s", env);
    return buf;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    char *s = strrchr(self, '/');
    if (s) *s = 0;
    // build tree: <src>/build/cli/protsae -> <src>/../shared; install: <prefix>/bin
    static const char *const up[] = {"%s/../../../shared/data/human-swissprot", "%s/../../shared/data/human-swissprot",
                                      "%s/../shared/data/human-swissprot"};
    for (size_t i = 0; i < sizeof up / sizeof *up; i++) {
      snprintf(buf, cap, up[i], self);
      if (is_data_dir(buf)) return buf;
    }
  }
  static const char *const rel[] = {"../shared/data/human-swissprot", "shared/data/human-swissprot",
                                    "data/human-swissprot"};
  for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
    snprintf(buf, cap, "%s", rel[i]);
    if (is_data_dir(buf)) return buf;
  }
  return NULL;
}
