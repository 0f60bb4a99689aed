// synth_write.c — protsae synth's outputs: embeddings in every format, ground truth, summary.
//
// Every file is written under a temporary name ("NAME.tmp"), fsynced and renamed, so a reader
// never sees half a file; truth/meta.json is written last and removed first, so its presence
// means a complete dataset.
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emb.h"
#include "io.h"
#include "log.h"
#include "signals.h"
#include "synth.h"
#include "synth_out.h"

// ---- files -------------------------------------------------------------------------------
int synth_out_mkdir(const char *path, ps_err_t *err) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return ps_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
  for (char *s = buf + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return ps_err_set(err, -errno, "%s: cannot create: %s", buf, strerror(errno));
    *s = '/';
  }
  if (mkdir(buf, 0755) < 0 && errno != EEXIST) return ps_err_set(err, -errno, "%s: cannot create: %s", buf, strerror(errno));
  return 0;
}

// Paths are checked once (synth_generate refuses an output directory longer than
// PATH_MAX - 256), so these never truncate; a truncated path would only fail to open.
void synth_out_path(const synth_out_t *c, const char *rel, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "%s/%s", c->dir, rel);
  if (n < 0 || (size_t)n >= cap) buf[cap - 1] = 0;
}

void synth_out_tmp(const char *final, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "%s.tmp", final);
  if (n < 0 || (size_t)n >= cap) buf[cap - 1] = 0;
}

int synth_out_commit(synth_out_t *c, const char *tmp, const char *final, ps_err_t *err) {
  int fd = open(tmp, O_RDONLY);
  if (fd < 0) return ps_err_set(err, -errno, "%s: cannot reopen: %s", tmp, strerror(errno));
  struct stat st;
  int rc = 0;
  if (fsync(fd) < 0) rc = ps_err_set(err, -errno, "%s: fsync: %s", tmp, strerror(errno));
  if (!rc && fstat(fd, &st) == 0) c->bytes += (uint64_t)st.st_size;
  close(fd);
  if (!rc && rename(tmp, final) < 0) rc = ps_err_set(err, -errno, "%s: rename: %s", final, strerror(errno));
  if (!rc) c->n_files++;
  else unlink(tmp);
  return rc;
}

typedef struct tfile {
  FILE *f;
  char tmp[PATH_MAX + 8];
  char final[PATH_MAX];
} tfile_t;

static int tfile_open(synth_out_t *c, tfile_t *t, const char *rel, ps_err_t *err) {
  synth_out_path(c, rel, t->final, sizeof t->final);
  synth_out_tmp(t->final, t->tmp, sizeof t->tmp);
  t->f = fopen(t->tmp, "wb");
  if (!t->f) return ps_err_set(err, -errno, "%s: cannot create: %s", t->tmp, strerror(errno));
  return 0;
}

static int tfile_close(synth_out_t *c, tfile_t *t, ps_err_t *err) {
  if (!t->f) return 0;
  int bad = ferror(t->f) || fflush(t->f) != 0;
  int e = errno;
  if (fclose(t->f) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  t->f = NULL;
  if (bad) {
    unlink(t->tmp);
    return ps_err_set(err, e ? -e : PS_EIO, "%s: write failed: %s", t->tmp, strerror(e));
  }
  return synth_out_commit(c, t->tmp, t->final, err);
}

static void tfile_abort(tfile_t *t) {
  if (!t->f) return;
  fclose(t->f);
  t->f = NULL;
  unlink(t->tmp);
}

// ---- text outputs ------------------------------------------------------------------------
static int write_ids(synth_out_t *c, const char *rel, const synth_data_t *d, const uint32_t *which, size_t n,
                     ps_err_t *err) {
  tfile_t t;
  int rc = tfile_open(c, &t, rel, err);
  if (rc < 0) return rc;
  for (size_t i = 0; i < n; i++) fprintf(t.f, "%s\n", d->ids[which ? which[i] : i]);
  return tfile_close(c, &t, err);
}

static int write_fasta(synth_out_t *c, const synth_data_t *d, size_t np, ps_err_t *err) {
  tfile_t t;
  int rc = tfile_open(c, &t, "proteins.fasta", err);
  if (rc < 0) return rc;
  for (size_t i = 0; i < np; i++) {
    fprintf(t.f, ">%s%s%s\n", d->ids[i], d->descs[i][0] ? " " : "", d->descs[i]);
    for (size_t k = 0; k < d->lens[i]; k += 60) {
      size_t n = d->lens[i] - k < 60 ? d->lens[i] - k : 60;
      fwrite(d->seqs[i] + k, 1, n, t.f);
      fputc('\n', t.f);
    }
  }
  return tfile_close(c, &t, err);
}

// Text field without tabs/newlines.
static void put_field(FILE *f, const char *s) {
  for (; s && *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static int write_terms(synth_out_t *c, const synth_plan_t *p, ps_err_t *err) {
  tfile_t t;
  int rc = tfile_open(c, &t, "truth/terms.tsv", err);
  if (rc < 0) return rc;
  fprintf(t.f, "feature_index\tgo_id\tnamespace\tname\tn_proteins\tdepth\n");
  for (uint32_t f = 0; f < p->n_features; f++) {
    const go_term_t *gt = go_term(p->data->onto, p->feature_term[f]);
    fprintf(t.f, "%u\t%s\t%s\t", f, gt->id, go_namespace_name(gt->ns));
    put_field(t.f, gt->name);
    fprintf(t.f, "\t%u\t%d\n", p->feature_size[f], gt->depth);
  }
  return tfile_close(c, &t, err);
}

// members.tsv sorted by feature, then protein.
static int write_members(synth_out_t *c, const synth_plan_t *p, const float *mags, ps_err_t *err) {
  const synth_data_t *d = p->data;
  uint64_t nnz = p->prot_off[p->n_proteins];
  uint64_t *start = ps_xcalloc(p->n_features + 1, sizeof *start);
  for (uint64_t k = 0; k < nnz; k++) start[p->prot_feat[k] + 1]++;
  for (uint32_t f = 0; f < p->n_features; f++) start[f + 1] += start[f];
  uint32_t *prot = ps_xmalloc((nnz ? nnz : 1) * sizeof *prot);
  float *mag = ps_xmalloc((nnz ? nnz : 1) * sizeof *mag);
  uint64_t *fill = ps_xmalloc((p->n_features + 1) * sizeof *fill);
  memcpy(fill, start, (p->n_features + 1) * sizeof *fill);
  for (size_t i = 0; i < p->n_proteins; i++)
    for (uint64_t k = p->prot_off[i]; k < p->prot_off[i + 1]; k++) {
      uint64_t at = fill[p->prot_feat[k]]++;
      prot[at] = (uint32_t)i;
      mag[at] = mags[k];
    }
  tfile_t t;
  int rc = tfile_open(c, &t, "truth/members.tsv", err);
  if (rc == 0) {
    fprintf(t.f, "feature_index\taccession\tmagnitude\n");
    for (uint32_t f = 0; f < p->n_features; f++)
      for (uint64_t k = start[f]; k < start[f + 1]; k++) fprintf(t.f, "%u\t%s\t%.9g\n", f, d->ids[prot[k]], mag[k]);
    rc = tfile_close(c, &t, err);
  }
  free(start);
  free(prot);
  free(mag);
  free(fill);
  return rc;
}

static int write_outliers(synth_out_t *c, const synth_plan_t *p, ps_err_t *err) {
  tfile_t t;
  int rc = tfile_open(c, &t, "truth/outliers.tsv", err);
  if (rc < 0) return rc;
  fprintf(t.f, "dim\toffset\tjitter_sd\n");
  for (uint32_t k = 0; k < p->opts.n_outliers; k++)
    fprintf(t.f, "%u\t%.9g\t%.9g\n", p->outlier_dims[k], p->outlier_values[k], p->opts.outlier_jitter);
  return tfile_close(c, &t, err);
}

static int write_motifs(synth_out_t *c, const uint64_t *hits_all, const uint64_t *hits_res, const uint64_t *res_res,
                        ps_err_t *err) {
  tfile_t t;
  int rc = tfile_open(c, &t, "truth/motifs.tsv", err);
  if (rc < 0) return rc;
  fprintf(t.f, "motif_index\tname\tpattern\tdescription\thits_all_proteins\thits_residue_set\tresidues_residue_set\n");
  for (int m = 0; m < SYNTH_N_MOTIFS; m++) {
    const synth_motif_t *mo = synth_motif(m);
    fprintf(t.f, "%d\t%s\t%s\t%s\t%llu\t%llu\t%llu\n", m, mo->name, mo->pattern, mo->description,
            (unsigned long long)hits_all[m], (unsigned long long)hits_res[m], (unsigned long long)res_res[m]);
  }
  return tfile_close(c, &t, err);
}

static int write_aa(synth_out_t *c, ps_err_t *err) {
  tfile_t t;
  int rc = tfile_open(c, &t, "truth/aa.tsv", err);
  if (rc < 0) return rc;
  fprintf(t.f, "aa_index\tletter\n");
  for (int a = 0; a < SYNTH_N_AA; a++) fprintf(t.f, "%d\t%c\n", a, synth_aa_letters[a]);
  return tfile_close(c, &t, err);
}

// ---- meta.json ---------------------------------------------------------------------------
static const char *fmt_list(unsigned m, char *buf, size_t cap) {
  buf[0] = 0;
  const char *n[] = {"npy", "safetensors", "h5", "pt"};
  for (int i = 0; i < 4; i++)
    if (m & (1u << i)) {
      if (buf[0]) strncat(buf, ",", cap - strlen(buf) - 1);
      strncat(buf, n[i], cap - strlen(buf) - 1);
    }
  return buf;
}

static int write_meta(synth_out_t *c, const synth_plan_t *p, const synth_summary_t *s, const uint64_t *hits_all,
                      ps_err_t *err) {
  const synth_opts_t *o = &p->opts;
  const synth_data_t *d = p->data;
  char f1[64], f2[64];
  json_t *params = json_object();
  json_object_set_new(params, "seed", json_integer((json_int_t)o->seed));
  json_object_set_new(params, "dim", json_integer(o->dim));
  json_object_set_new(params, "n_terms", json_integer(o->n_terms));
  json_object_set_new(params, "min_size", json_integer(o->min_size));
  json_object_set_new(params, "max_size", json_integer(o->max_size));
  json_object_set_new(params, "feature_scale", json_real(o->feature_scale));
  json_object_set_new(params, "magnitude_spread", json_real(o->magnitude_spread));
  json_object_set_new(params, "noise", json_real(o->noise));
  json_object_set_new(params, "mean_scale", json_real(o->mean_scale));
  json_object_set_new(params, "n_outliers", json_integer(o->n_outliers));
  json_object_set_new(params, "outlier_scale", json_real(o->outlier_scale));
  json_object_set_new(params, "outlier_jitter", json_real(o->outlier_jitter));
  json_object_set_new(params, "level", json_string(o->levels == 3 ? "both" : o->levels == 2 ? "residue" : "protein"));
  json_object_set_new(params, "residue_proteins", json_integer(o->residue_proteins));
  json_object_set_new(params, "aa_scale", json_real(o->aa_scale));
  json_object_set_new(params, "motif_scale", json_real(o->motif_scale));
  json_object_set_new(params, "residue_noise", json_real(o->residue_noise));
  json_object_set_new(params, "formats", json_string(fmt_list(o->formats, f1, sizeof f1)));
  json_object_set_new(params, "residue_formats", json_string(fmt_list(o->residue_formats, f2, sizeof f2)));
  json_object_set_new(params, "f16", json_boolean(o->f16));
  json_object_set_new(params, "layer", json_integer(o->layer));
  json_object_set_new(params, "max_proteins", json_integer(o->max_proteins));
  json_object_set_new(params, "n_proteins", json_integer(o->n_proteins));

  json_t *counts = json_object();
  json_object_set_new(counts, "proteins", json_integer((json_int_t)p->n_proteins));
  json_object_set_new(counts, "proteins_in_input", json_integer((json_int_t)d->n_input));
  json_object_set_new(counts, "proteins_extra", json_integer((json_int_t)(d->n_proteins - d->n_input)));
  json_object_set_new(counts, "proteins_annotated", json_integer((json_int_t)d->n_annotated));
  json_object_set_new(counts, "proteins_with_features", json_integer((json_int_t)s->n_with_features));
  json_object_set_new(counts, "dropped_duplicate_ids", json_integer((json_int_t)d->dropped_duplicates));
  json_object_set_new(counts, "dropped_empty_sequences", json_integer((json_int_t)d->dropped_empty));
  json_object_set_new(counts, "terms_qualifying", json_integer(p->n_qualifying));
  json_object_set_new(counts, "features", json_integer(p->n_features));
  json_object_set_new(counts, "memberships", json_integer((json_int_t)p->prot_off[p->n_proteins]));
  json_object_set_new(counts, "mean_terms_per_protein", json_real(s->mean_terms_per_protein));
  json_object_set_new(counts, "residue_proteins", json_integer(p->n_residue));
  json_object_set_new(counts, "residue_rows", json_integer((json_int_t)s->residue_rows));
  json_t *ns = json_object();
  uint32_t nsc[4] = {0};
  for (uint32_t f = 0; f < p->n_features; f++) nsc[go_term(d->onto, p->feature_term[f])->ns]++;
  for (int k = 0; k < 3; k++) json_object_set_new(ns, go_namespace_name((go_namespace_t)k), json_integer(nsc[k]));
  json_object_set_new(counts, "features_by_namespace", ns);
  json_t *mh = json_object();
  for (int m = 0; m < SYNTH_N_MOTIFS; m++) json_object_set_new(mh, synth_motif(m)->name, json_integer((json_int_t)hits_all[m]));
  json_object_set_new(counts, "motif_hits_all_proteins", mh);
  json_t *rep = json_object();
  json_object_set_new(rep, "lines", json_integer((json_int_t)d->report.lines));
  json_object_set_new(rep, "used", json_integer((json_int_t)d->report.used));
  json_object_set_new(rep, "unknown_ids", json_integer((json_int_t)d->report.unknown_ids));
  json_object_set_new(rep, "obsolete_mapped", json_integer((json_int_t)d->report.obsolete_mapped));
  json_object_set_new(rep, "obsolete_skipped", json_integer((json_int_t)d->report.obsolete_skipped));
  json_object_set_new(rep, "alt_ids_mapped", json_integer((json_int_t)d->report.alt_ids_mapped));
  json_object_set_new(counts, "annotations", rep);

  json_t *snr = json_object();
  json_object_set_new(snr, "projection", json_real(s->snr_projection));
  json_object_set_new(snr, "energy_ratio", json_real(s->energy_ratio));
  json_object_set_new(snr, "note",
                      json_string("projection = feature_scale / noise: a member's mean magnitude along its "
                                  "term's direction over the noise sd along any direction; energy_ratio = "
                                  "sum over proteins of |sum_t a_t u_t|^2 / |noise|^2, measured"));

  json_t *inputs = json_object();
  json_object_set_new(inputs, "proteins", json_string(d->proteins_path));
  json_object_set_new(inputs, "annotations", json_string(d->annot_path));
  json_object_set_new(inputs, "ontology", json_string(d->obo_path));
  json_object_set_new(inputs, "random_sequences", json_boolean(d->random_sequences));
  json_object_set_new(inputs, "propagation", json_string("is_a + part_of"));

  json_t *outliers = json_array();
  for (uint32_t k = 0; k < o->n_outliers; k++) {
    json_t *e = json_object();
    json_object_set_new(e, "dim", json_integer(p->outlier_dims[k]));
    json_object_set_new(e, "offset", json_real(p->outlier_values[k]));
    json_array_append_new(outliers, e);
  }

  json_t *model = json_object();
  json_object_set_new(model, "protein",
                      json_string("x = mu + sum_t a_t u_t + noise * z + sum_k (offset_k + outlier_jitter * z_k) "
                                  "e_dim_k; a_t = feature_scale * exp(s z - s^2/2), s = magnitude_spread"));
  json_object_set_new(model, "residue",
                      json_string("h_r = x + aa_scale * v_aa(r) + motif_scale * sum_{motifs m covering r} w_m + "
                                  "residue_noise * z_r"));
  json_object_set_new(model, "aa_order", json_string(synth_aa_letters));
  json_object_set_new(model, "motif_hits", json_string("truth/motif_hits.tsv: start/end are 0-based residue rows, end exclusive"));
  json_object_set_new(model, "motif_concepts",
                      json_string("truth/motif_concepts.tsv: the same hits as residue concepts (accession, start, end, "
                                  "motif; 1-based, end inclusive, no header): protsae-scorer --concepts"));
  json_object_set_new(model, "streams",
                      json_string("xoshiro256** seeded by splitmix64 over (seed, stream kind, index); normals by "
                                  "Box-Muller"));

  json_t *files = json_object();
  json_object_set_new(files, "ids", json_string("proteins.ids"));
  json_object_set_new(files, "fasta", json_string("proteins.fasta"));
  if (o->levels & SYNTH_LEVEL_PROTEIN) {
    if (o->formats & SYNTH_FMT_NPY) json_object_set_new(files, "npy", json_string("emb.npy"));
    if (o->f16) json_object_set_new(files, "npy_f16", json_string("emb.f16.npy"));
    if (o->formats & SYNTH_FMT_SAFETENSORS) json_object_set_new(files, "safetensors", json_string("emb.safetensors"));
    if (o->formats & SYNTH_FMT_H5) json_object_set_new(files, "h5", json_string("emb.h5"));
    if (o->formats & SYNTH_FMT_PT) json_object_set_new(files, "pt", json_string("pt"));
  }
  if ((o->levels & SYNTH_LEVEL_RESIDUE) && p->n_residue) {
    json_object_set_new(files, "residue_ids", json_string("residues.ids"));
    if (o->residue_formats & SYNTH_FMT_NPY) {
      json_object_set_new(files, "residue_npy", json_string("residues.npy"));
      json_object_set_new(files, "residue_offsets", json_string("residues.offsets.npy"));
    }
    if (o->residue_formats & SYNTH_FMT_SAFETENSORS)
      json_object_set_new(files, "residue_safetensors", json_string("residues.safetensors"));
    if (o->residue_formats & SYNTH_FMT_H5) json_object_set_new(files, "residue_h5", json_string("residues.h5"));
    if (o->residue_formats & SYNTH_FMT_PT) json_object_set_new(files, "residue_pt", json_string("residues_pt"));
  }

  json_t *root = json_object();
  json_object_set_new(root, "generator", json_string("protsae synth"));
  json_object_set_new(root, "format_version", json_integer(1));
  json_object_set_new(root, "parameters", params);
  json_object_set_new(root, "inputs", inputs);
  json_object_set_new(root, "counts", counts);
  json_object_set_new(root, "snr", snr);
  json_object_set_new(root, "outliers", outliers);
  json_object_set_new(root, "model", model);
  json_object_set_new(root, "files", files);
  char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(root);
  if (!txt) return ps_err_set(err, PS_ENOMEM, "meta.json: cannot encode");
  tfile_t t;
  int rc = tfile_open(c, &t, "truth/meta.json", err);
  if (rc == 0) {
    fputs(txt, t.f);
    fputc('\n', t.f);
    rc = tfile_close(c, &t, err);
  }
  free(txt);
  return rc;
}

// ---- the run -----------------------------------------------------------------------------
int synth_generate(const synth_data_t *d, const synth_opts_t *o, synth_summary_t *sum_out, ps_err_t *err) {
  double t0 = ps_mono_s();
  synth_plan_t plan;
  synth_out_t c;
  memset(&c, 0, sizeof c);
  synth_summary_t s;
  memset(&s, 0, sizeof s);
  float *x = NULL, *mags = NULL, *rows = NULL;
  uint8_t *mask = NULL;
  synth_hit_t *hits = NULL;
  tfile_t th = {0}, tc = {0};
  uint64_t hits_all[SYNTH_N_MOTIFS] = {0}, hits_res[SYNTH_N_MOTIFS] = {0}, res_res[SYNTH_N_MOTIFS] = {0};
  int rc = synth_plan_build(&plan, d, o, err);
  if (rc < 0) goto out;
  if (!o->out_dir || !*o->out_dir) {
    rc = ps_err_set(err, PS_ECONFIG, "out: no output directory");
    goto out;
  }
  if (strlen(o->out_dir) > PATH_MAX - 256) {
    rc = ps_err_set(err, -ENAMETOOLONG, "out: %s: path too long", o->out_dir);
    goto out;
  }
  snprintf(c.dir, sizeof c.dir, "%s", o->out_dir);
  c.plan = &plan;
  char path[PATH_MAX];
  if ((rc = synth_out_mkdir(c.dir, err)) < 0) goto out;
  synth_out_path(&c, "truth", path, sizeof path);
  if ((rc = synth_out_mkdir(path, err)) < 0) goto out;
  synth_out_path(&c, "truth/meta.json", path, sizeof path);
  unlink(path);  // present only when the dataset is complete

  const uint32_t dim = plan.dim;
  const size_t np = plan.n_proteins;
  if ((rc = write_ids(&c, "proteins.ids", d, NULL, np, err)) < 0) goto out;
  if ((rc = write_fasta(&c, d, np, err)) < 0) goto out;

  // protein level
  x = ps_xmalloc(dim * sizeof *x);
  mags = ps_xmalloc((plan.prot_off[np] ? plan.prot_off[np] : 1) * sizeof *mags);
  if (o->levels & SYNTH_LEVEL_PROTEIN) {
    if ((rc = synth_out_protein_begin(&c, err)) < 0) goto out;
  }
  double psq_sum = 0, nsq_sum = 0;
  for (size_t i = 0; i < np; i++) {
    double psq, nsq;
    synth_protein_vector(&plan, i, x, mags + plan.prot_off[i], &psq, &nsq);
    psq_sum += psq;
    nsq_sum += nsq;
    if (plan.prot_off[i + 1] > plan.prot_off[i]) s.n_with_features++;
    if ((i & 255) == 0 && ps_signals_stop_requested()) {
      rc = ps_err_set(err, PS_EINTR, "stopped by a signal at protein %zu of %zu; %s is incomplete", i, np, c.dir);
      goto out;
    }
    if (o->levels & SYNTH_LEVEL_PROTEIN) {
      if ((rc = synth_out_protein_add(&c, i, x, err)) < 0) goto out;
    }
  }
  if (o->levels & SYNTH_LEVEL_PROTEIN) {
    if ((rc = synth_out_protein_end(&c, err)) < 0) goto out;
  }
  if ((rc = write_members(&c, &plan, mags, err)) < 0) goto out;

  // motif hits over every protein (counts for the ground truth)
  size_t maxlen = 1;
  for (size_t i = 0; i < np; i++)
    if (d->lens[i] > maxlen) maxlen = d->lens[i];
  hits = ps_xmalloc(maxlen * sizeof *hits);
  for (size_t i = 0; i < np; i++)
    for (int m = 0; m < SYNTH_N_MOTIFS; m++) hits_all[m] += synth_motif_scan(m, d->seqs[i], d->lens[i], hits, 0);

  // residue level
  if ((o->levels & SYNTH_LEVEL_RESIDUE) && plan.n_residue) {
    size_t rmax = 1;
    for (uint32_t k = 0; k < plan.n_residue; k++)
      if (d->lens[plan.residue_set[k]] > rmax) rmax = d->lens[plan.residue_set[k]];
    rows = ps_xmalloc(rmax * dim * sizeof *rows);
    mask = ps_xmalloc(rmax);
    if ((rc = write_ids(&c, "residues.ids", d, plan.residue_set, plan.n_residue, err)) < 0) goto out;
    if ((rc = tfile_open(&c, &th, "truth/motif_hits.tsv", err)) < 0) goto out;
    fprintf(th.f, "accession\tmotif\tstart\tend\n");
    // the same hits as residue concepts (the scorer's --concepts TSV: 1-based, end inclusive, no header)
    if ((rc = tfile_open(&c, &tc, "truth/motif_concepts.tsv", err)) < 0) goto out;
    if ((rc = synth_out_residue_begin(&c, err)) < 0) goto out;
    for (uint32_t k = 0; k < plan.n_residue; k++) {
      size_t i = plan.residue_set[k];
      if (ps_signals_stop_requested()) {
        rc = ps_err_set(err, PS_EINTR, "stopped by a signal at residue protein %u of %u; %s is incomplete", k,
                        plan.n_residue, c.dir);
        goto out;
      }
      synth_protein_vector(&plan, i, x, NULL, NULL, NULL);
      synth_residue_rows(&plan, i, x, rows, mask);
      s.residue_rows += d->lens[i];
      for (int m = 0; m < SYNTH_N_MOTIFS; m++) {
        size_t n = synth_motif_scan(m, d->seqs[i], d->lens[i], hits, maxlen);
        hits_res[m] += n;
        for (size_t h = 0; h < n; h++) {
          fprintf(th.f, "%s\t%s\t%u\t%u\n", d->ids[i], synth_motif(m)->name, hits[h].start, hits[h].end);
          fprintf(tc.f, "%s\t%u\t%u\t%s\n", d->ids[i], hits[h].start + 1, hits[h].end, synth_motif(m)->name);
        }
        for (size_t r = 0; r < d->lens[i]; r++) res_res[m] += (mask[r] >> m) & 1u;
      }
      if ((rc = synth_out_residue_add(&c, i, rows, d->lens[i], err)) < 0) goto out;
    }
    if ((rc = synth_out_residue_end(&c, err)) < 0) goto out;
    if ((rc = tfile_close(&c, &th, err)) < 0) goto out;
    if ((rc = tfile_close(&c, &tc, err)) < 0) goto out;
  }

  // ground truth
  if ((rc = synth_out_matrix(&c, "truth/directions.npy", plan.directions, plan.n_features, dim, err)) < 0) goto out;
  if ((rc = synth_out_matrix(&c, "truth/mu.npy", plan.mu, 1, dim, err)) < 0) goto out;
  if ((rc = synth_out_matrix(&c, "truth/aa_directions.npy", plan.aa_dirs, SYNTH_N_AA, dim, err)) < 0) goto out;
  if ((rc = synth_out_matrix(&c, "truth/motif_directions.npy", plan.motif_dirs, SYNTH_N_MOTIFS, dim, err)) < 0) goto out;
  if ((rc = write_terms(&c, &plan, err)) < 0) goto out;
  if ((rc = write_outliers(&c, &plan, err)) < 0) goto out;
  if ((rc = write_motifs(&c, hits_all, hits_res, res_res, err)) < 0) goto out;
  if ((rc = write_aa(&c, err)) < 0) goto out;

  s.n_features = plan.n_features;
  s.n_qualifying = plan.n_qualifying;
  s.n_proteins = np;
  s.mean_terms_per_protein = np ? (double)plan.prot_off[np] / (double)np : 0;
  s.snr_projection = o->noise > 0 ? o->feature_scale / o->noise : INFINITY;
  s.energy_ratio = nsq_sum > 0 ? psq_sum / nsq_sum : INFINITY;
  if ((rc = write_meta(&c, &plan, &s, hits_all, err)) < 0) goto out;
  synth_out_path(&c, "truth", path, sizeof path);
  ps_fsync_dir(path);
  ps_fsync_dir(c.dir);
  s.n_files = c.n_files;
  s.bytes = c.bytes;
  s.seconds = ps_mono_s() - t0;
  if (sum_out) *sum_out = s;
out:
  if (rc < 0) synth_out_abort(&c);
  tfile_abort(&th);
  tfile_abort(&tc);
  free(x);
  free(mags);
  free(rows);
  free(mask);
  free(hits);
  synth_plan_free(&plan);
  return rc;
}

void synth_summary_print(const synth_summary_t *s, const synth_opts_t *o, FILE *f) {
  fprintf(f, "protsae synth: planted %u GO-term features (of %u qualifying, %u-%u proteins) in d=%u\n",
          s->n_features, s->n_qualifying, o->min_size, o->max_size, o->dim);
  fprintf(f, "  proteins: %zu (%zu carry >= 1 planted term), mean planted terms per protein: %.2f\n", s->n_proteins,
          s->n_with_features, s->mean_terms_per_protein);
  fprintf(f, "  snr: projection %.1f (feature-scale / noise), energy ratio %.3f (planted / noise)\n", s->snr_projection,
          s->energy_ratio);
  if (s->residue_rows) fprintf(f, "  residue rows: %llu\n", (unsigned long long)s->residue_rows);
  fprintf(f, "  files written: %u, %.1f MB, into %s\n", s->n_files, (double)s->bytes / 1e6, o->out_dir);
  if (s->load_seconds > 0)
    fprintf(f, "  seconds: %.2f (reading the inputs %.2f, generating and writing %.2f)\n", s->load_seconds + s->seconds,
            s->load_seconds, s->seconds);
  else
    fprintf(f, "  seconds: %.2f (generating and writing)\n", s->seconds);
}
