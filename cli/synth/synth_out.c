// synth_out.c — protsae synth's embedding sinks over the common writers (npy.h, ...).
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5emb.h"
#include "npy.h"
#include "ptfile.h"
#include "safetensors.h"
#include "synth_out.h"

static void count_file(synth_out_t *c, const char *path);

struct synth_sinks {
  int residue;               // 0 protein level, 1 residue level
  unsigned fmts;
  npy_writer_t *npy, *npy16, *offs;
  h5emb_writer_t *h5;
  st_writer_t *st;
  char pt_dir[PATH_MAX];     // "" when no .pt files
  float *mean;               // dim floats (residue-level .pt mean_representations)
  int64_t next_off;
  char names[8][PATH_MAX];   // final paths of the files to count when closed
  int n_names;
};

static void remember(synth_sinks_t *s, const char *path) {
  if (s->n_names < 8) snprintf(s->names[s->n_names++], PATH_MAX, "%s", path);
}

static void count_file(synth_out_t *c, const char *path) {
  struct stat st;
  if (stat(path, &st) == 0) {
    c->n_files++;
    c->bytes += (uint64_t)st.st_size;
  }
}

// Remove the *.pt files (and stale *.pt.tmp) directly in dir.
static void remove_pt_files(const char *dir) {
  DIR *dh = opendir(dir);
  if (!dh) return;
  struct dirent *de;
  char p[PATH_MAX + 260];
  while ((de = readdir(dh))) {
    size_t l = strlen(de->d_name);
    if ((l > 3 && !strcmp(de->d_name + l - 3, ".pt")) || (l > 7 && !strcmp(de->d_name + l - 7, ".pt.tmp"))) {
      snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
      unlink(p);
    }
  }
  closedir(dh);
}

static int sinks_open(synth_out_t *c, synth_sinks_t **out, int residue, ps_err_t *err) {
  const synth_opts_t *o = &c->plan->opts;
  synth_sinks_t *s = ps_xcalloc(1, sizeof *s);
  *out = s;
  s->residue = residue;
  s->fmts = residue ? o->residue_formats : o->formats;
  const uint32_t dim = c->plan->dim;
  char path[PATH_MAX];
  int rc = 0;
  if (s->fmts & SYNTH_FMT_NPY) {
    synth_out_path(c, residue ? "residues.npy" : "emb.npy", path, sizeof path);
    if ((rc = npy_writer_open(&s->npy, path, NPY_F32, dim, err)) < 0) return rc;
    remember(s, path);
    if (residue) {
      synth_out_path(c, "residues.offsets.npy", path, sizeof path);
      if ((rc = npy_writer_open(&s->offs, path, NPY_I64, 0, err)) < 0) return rc;
      remember(s, path);
      int64_t zero = 0;
      if ((rc = npy_writer_append_i64(s->offs, &zero, 1, err)) < 0) return rc;
    }
  }
  if (!residue && o->f16) {
    synth_out_path(c, "emb.f16.npy", path, sizeof path);
    if ((rc = npy_writer_open(&s->npy16, path, NPY_F16, dim, err)) < 0) return rc;
    remember(s, path);
  }
  if (s->fmts & SYNTH_FMT_H5) {
    synth_out_path(c, residue ? "residues.h5" : "emb.h5", path, sizeof path);
    if ((rc = h5emb_writer_open(&s->h5, path, residue ? EMB_LEVEL_RESIDUE : EMB_LEVEL_PROTEIN, err)) < 0) return rc;
    remember(s, path);
  }
  if (s->fmts & SYNTH_FMT_SAFETENSORS) {  // one tensor per protein named by its accession
    synth_out_path(c, residue ? "residues.safetensors" : "emb.safetensors", path, sizeof path);
    if ((rc = st_writer_open(&s->st, path, err)) < 0) return rc;
    char v[32];
    snprintf(v, sizeof v, "%d", o->layer);
    if ((rc = st_writer_set_metadata(s->st, "generator", "protsae synth", err)) < 0 ||
        (rc = st_writer_set_metadata(s->st, "level", residue ? "residue" : "protein", err)) < 0 ||
        (rc = st_writer_set_metadata(s->st, "layer", v, err)) < 0)
      return rc;
    snprintf(v, sizeof v, "%llu", (unsigned long long)o->seed);
    if ((rc = st_writer_set_metadata(s->st, "seed", v, err)) < 0) return rc;
    remember(s, path);
  }
  if (s->fmts & SYNTH_FMT_PT) {  // a directory of ACCESSION.pt, as extract.py writes them
    synth_out_path(c, residue ? "residues_pt" : "pt", s->pt_dir, sizeof s->pt_dir);
    if ((rc = synth_out_mkdir(s->pt_dir, err)) < 0) return rc;
    remove_pt_files(s->pt_dir);  // a previous run's proteins must not linger
    s->mean = ps_xmalloc(dim * sizeof *s->mean);
  }
  return 0;
}

static int sinks_add(synth_out_t *c, synth_sinks_t *s, size_t protein, const float *rows, uint32_t n_rows,
                     ps_err_t *err) {
  int rc;
  if (s->npy && (rc = npy_writer_append_f32(s->npy, rows, n_rows, err)) < 0) return rc;
  if (s->npy16 && (rc = npy_writer_append_f32(s->npy16, rows, n_rows, err)) < 0) return rc;
  const char *id = c->plan->data->ids[protein];
  if (s->h5 && (rc = h5emb_writer_add(s->h5, id, rows, n_rows, c->plan->dim, err)) < 0) return rc;
  if (s->st) {
    uint64_t shape[2] = {n_rows, c->plan->dim};
    if ((rc = s->residue ? st_writer_add_f32(s->st, id, ST_F32, shape, 2, rows, err)
                         : st_writer_add_f32(s->st, id, ST_F32, shape + 1, 1, rows, err)) < 0)
      return rc;
  }
  if (s->pt_dir[0]) {
    char path[PATH_MAX + 8];
    const uint32_t dim = c->plan->dim;
    if (strchr(id, '/') || snprintf(path, sizeof path, "%s/%s.pt", s->pt_dir, id) >= (int)sizeof path)
      return ps_err_set(err, PS_EUNSUPP, "%s: id %s cannot name a .pt file", s->pt_dir, id);
    const int layer = c->plan->opts.layer;
    const float *mean = rows, *per_residue = NULL;
    if (s->residue) {  // mean_representations: the mean of the rows, as extract.py computes it
      for (uint32_t j = 0; j < dim; j++) {
        double acc = 0;
        for (uint32_t r = 0; r < n_rows; r++) acc += rows[(size_t)r * dim + j];
        s->mean[j] = n_rows ? (float)(acc / n_rows) : 0.0f;
      }
      mean = s->mean;
      per_residue = rows;
    }
    uint32_t L = s->residue ? n_rows : c->plan->data->lens[protein];
    if ((rc = pt_write_extract(path, id, &layer, 1, per_residue ? &per_residue : NULL, &mean, L, dim, err)) < 0)
      return rc;
    count_file(c, path);
  }
  if (s->offs) {
    s->next_off += n_rows;
    if ((rc = npy_writer_append_i64(s->offs, &s->next_off, 1, err)) < 0) return rc;
  }
  return 0;
}

static void sinks_abort(synth_sinks_t **sp) {
  synth_sinks_t *s = *sp;
  if (!s) return;
  npy_writer_abort(&s->npy);
  npy_writer_abort(&s->npy16);
  npy_writer_abort(&s->offs);
  h5emb_writer_abort(&s->h5);
  st_writer_abort(&s->st);
  free(s->mean);
  free(s);
  *sp = NULL;
}

static int sinks_close(synth_out_t *c, synth_sinks_t **sp, ps_err_t *err) {
  synth_sinks_t *s = *sp;
  int rc = 0;
  if (s->npy && (rc = npy_writer_close(&s->npy, err)) < 0) goto out;
  if (s->npy16 && (rc = npy_writer_close(&s->npy16, err)) < 0) goto out;
  if (s->offs && (rc = npy_writer_close(&s->offs, err)) < 0) goto out;
  if (s->h5 && (rc = h5emb_writer_close(&s->h5, err)) < 0) goto out;
  if (s->st && (rc = st_writer_close(&s->st, err)) < 0) goto out;
  for (int i = 0; i < s->n_names; i++) count_file(c, s->names[i]);
out:
  sinks_abort(sp);
  return rc;
}

int synth_out_protein_begin(synth_out_t *c, ps_err_t *err) { return sinks_open(c, &c->protein, 0, err); }

int synth_out_protein_add(synth_out_t *c, size_t protein, const float *x, ps_err_t *err) {
  return sinks_add(c, c->protein, protein, x, 1, err);
}

int synth_out_protein_end(synth_out_t *c, ps_err_t *err) { return sinks_close(c, &c->protein, err); }

int synth_out_residue_begin(synth_out_t *c, ps_err_t *err) { return sinks_open(c, &c->residue, 1, err); }

int synth_out_residue_add(synth_out_t *c, size_t protein, const float *rows, uint32_t n_rows, ps_err_t *err) {
  return sinks_add(c, c->residue, protein, rows, n_rows, err);
}

int synth_out_residue_end(synth_out_t *c, ps_err_t *err) { return sinks_close(c, &c->residue, err); }

int synth_out_matrix(synth_out_t *c, const char *rel, const float *m, size_t rows, size_t cols, ps_err_t *err) {
  char path[PATH_MAX];
  synth_out_path(c, rel, path, sizeof path);
  npy_writer_t *w = NULL;
  int rc = npy_writer_open(&w, path, NPY_F32, cols, err);
  if (rc < 0) return rc;
  if (rows && (rc = npy_writer_append_f32(w, m, rows, err)) < 0) {
    npy_writer_abort(&w);
    return rc;
  }
  if ((rc = npy_writer_close(&w, err)) < 0) return rc;
  count_file(c, path);
  return 0;
}

void synth_out_abort(synth_out_t *c) {
  sinks_abort(&c->protein);
  sinks_abort(&c->residue);
}
