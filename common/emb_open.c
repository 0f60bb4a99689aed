// emb_open.c — pick the format of an embedding source from opts.format or the path.
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "emb.h"

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcasecmp(s + a - b, suf);
}

int emb_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err) {
  *out = NULL;
  if (!opts || !opts->path) return ps_err_set(err, PS_ECONFIG, "embedding source: no path given");
  const char *f = opts->format;
  struct stat st;
  if (!f || !*f) {
    const char *p = opts->path;
    if (ends_with(p, ".npy")) f = "npy";
    else if (ends_with(p, ".safetensors")) f = "safetensors";
    else if (ends_with(p, ".h5") || ends_with(p, ".hdf5")) f = "h5";
    else if (ends_with(p, ".pt") || (stat(p, &st) == 0 && S_ISDIR(st.st_mode))) f = "pt";
    else
      return ps_err_set(err, PS_EUNSUPP,
                        "%s: cannot tell the embedding format from the name (use .npy, .safetensors, "
                        ".h5, .pt or a directory of .pt files, or set the format)", p);
  }
  int rc;
  if (!strcmp(f, "npy")) rc = npy_source_open(out, opts, err);
  else if (!strcmp(f, "safetensors")) rc = safetensors_source_open(out, opts, err);
  else if (!strcmp(f, "h5") || !strcmp(f, "hdf5")) rc = h5_source_open(out, opts, err);
  else if (!strcmp(f, "pt")) rc = pt_source_open(out, opts, err);
  else return ps_err_set(err, PS_EUNSUPP, "%s: unknown embedding format '%s'", opts->path, f);
  if (rc < 0) return rc;
  (*out)->opts = *opts;
  (*out)->next_index = 0;
  return 0;
}

emb_source_opts_t emb_source_opts_protein(const char *path, const char *ids_path) {
  emb_source_opts_t o;
  memset(&o, 0, sizeof o);
  o.path = path;
  o.ids_path = ids_path;
  o.level = EMB_LEVEL_PROTEIN;
  o.layer = -1;
  return o;
}
