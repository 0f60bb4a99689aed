// protsae synth — command-line wiring of the planted-feature generator (synth.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

#include "cli.h"
#include "config.h"
#include "io.h"
#include "log.h"
#include "synth.h"

static const ps_config_entry_t table[] = {
    {"data", NULL, "data directory (proteins.fasta.gz or proteins.tsv.gz, go_annotations.tsv.gz, GO OBO); "
                   "default ../shared/data/human-swissprot"},
    {"out", "synth", "output directory (created)"},
    {"seed", "1", "random seed: the same seed gives byte-identical outputs"},
    {"dim", "480", "embedding dimension d (480 = ESM2-35M, 320 = 8M, 1280 = 650M)"},
    {"n-terms", "1000", "planted GO terms (a seeded choice among those qualifying; all when fewer)"},
    {"min-size", "10", "smallest term (proteins after propagation) that may be planted"},
    {"max-size", "300", "largest term that may be planted"},
    {"feature-scale", "1.0", "mean magnitude of a planted feature"},
    {"magnitude-spread", "0.5", "sigma of the lognormal feature magnitudes"},
    {"noise", "0.03", "Gaussian noise sd per dimension (protein level)"},
    {"mean-scale", "0.5", "sd per dimension of the random mean vector"},
    {"n-outliers", "3", "dimensions with a large dense offset (ESM2's massive activations)"},
    {"outlier-scale", "20", "size of the outlier offsets (+-, times U[0.75,1.25])"},
    {"outlier-jitter", "0.5", "per-protein sd of the outlier dimensions"},
    {"level", "protein", "protein | residue | both"},
    {"residue-proteins", "500", "proteins (seeded choice) written at residue level"},
    {"aa-scale", "1.0", "magnitude of the amino-acid identity directions (residue level)"},
    {"motif-scale", "1.0", "magnitude of the sequence-motif directions (residue level)"},
    {"residue-noise", "0.2", "Gaussian noise sd per dimension (residue level)"},
    {"formats", "npy,safetensors,h5", "protein-level formats: npy, safetensors, h5, pt (pt/: one .pt a protein)"},
    {"residue-formats", "npy,pt", "residue-level formats: npy, safetensors, h5, pt"},
    {"f16", "0", "also write emb.f16.npy"},
    {"layer", "12", "layer number recorded in the .pt files, safetensors metadata and meta.json"},
    {"max-proteins", "0", "0 = every protein; else only the first N of the input (quick tries)"},
    {"n-proteins", "0", "0 = the input's proteins; more: add extra proteins, each with the GO terms and sequence of a "
                        "random input protein and its own magnitudes and noise (planted sets of any size)"},
    {"quiet", "0", "no summary on stdout"},
    {NULL, NULL, NULL},
};

static int fill_opts(ps_config_t *c, synth_opts_t *o, ps_err_t *err) {
  int64_t seed = 1, layer = 12;
  int rc = ps_config_i64(c, "seed", &seed, err);
  if (rc < 0) return rc;
  o->seed = (uint64_t)seed;
  struct {
    const char *name;
    uint32_t *dst;
  } u32[] = {{"dim", &o->dim},
             {"n-terms", &o->n_terms},
             {"min-size", &o->min_size},
             {"max-size", &o->max_size},
             {"n-outliers", &o->n_outliers},
             {"residue-proteins", &o->residue_proteins},
             {"max-proteins", &o->max_proteins},
             {"n-proteins", &o->n_proteins}};
  for (size_t i = 0; i < sizeof u32 / sizeof *u32; i++) {
    int64_t v = *u32[i].dst;
    if ((rc = ps_config_i64(c, u32[i].name, &v, err)) < 0) return rc;
    if (v < 0 || v > UINT32_MAX) return ps_err_set(err, PS_ECONFIG, "%s: %lld out of range", u32[i].name, (long long)v);
    *u32[i].dst = (uint32_t)v;
  }
  const ps_config_bind_t dbl[] = {PS_CFG_F64("feature-scale", &o->feature_scale),
                                  PS_CFG_F64("magnitude-spread", &o->magnitude_spread),
                                  PS_CFG_F64("noise", &o->noise),
                                  PS_CFG_F64("mean-scale", &o->mean_scale),
                                  PS_CFG_F64("outlier-scale", &o->outlier_scale),
                                  PS_CFG_F64("outlier-jitter", &o->outlier_jitter),
                                  PS_CFG_F64("aa-scale", &o->aa_scale),
                                  PS_CFG_F64("motif-scale", &o->motif_scale),
                                  PS_CFG_F64("residue-noise", &o->residue_noise),
                                  {0}};
  if ((rc = ps_config_read(c, dbl, err)) < 0) return rc;
  const char *lvl = ps_config_str(c, "level");
  if (!strcmp(lvl, "protein")) o->levels = SYNTH_LEVEL_PROTEIN;
  else if (!strcmp(lvl, "residue")) o->levels = SYNTH_LEVEL_RESIDUE;
  else if (!strcmp(lvl, "both")) o->levels = SYNTH_LEVEL_PROTEIN | SYNTH_LEVEL_RESIDUE;
  else return ps_err_set(err, PS_ECONFIG, "level: '%s' is not protein, residue or both", lvl);
  if ((rc = synth_parse_formats(ps_config_str(c, "formats"), &o->formats, err)) < 0) return rc;
  if ((rc = synth_parse_formats(ps_config_str(c, "residue-formats"), &o->residue_formats, err)) < 0) return rc;
  const ps_config_bind_t rest[] = {PS_CFG_BOOL("f16", &o->f16), PS_CFG_BOOL("quiet", &o->quiet),
                                   PS_CFG_I64("layer", &layer), {0}};
  if ((rc = ps_config_read(c, rest, err)) < 0) return rc;
  if (layer < 0 || layer > 1000) return ps_err_set(err, PS_ECONFIG, "layer: %lld out of range", (long long)layer);
  o->layer = (int)layer;
  o->out_dir = ps_config_str(c, "out");
  return 0;
}

int cli_synth(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  synth_data_t data = {0};
  int status = 1;
  if (ps_config_parse(&cfg, table, argc, argv, &err) < 0) {
    fprintf(stderr, "protsae synth: %s\n", err.msg);
    return 2;
  }
  if (ps_config_help_requested(cfg)) {
    ps_config_usage(table, "protsae synth", stdout);
    printf("\nWrites into --out: proteins.ids, proteins.fasta, emb.npy / emb.safetensors / emb.h5 / pt/ "
           "(protein level),\nresidues.npy + residues.offsets.npy + residues.ids / residues.safetensors / "
           "residues.h5 / residues_pt/\n(residue level), and the ground truth in truth/ (directions.npy, "
           "terms.tsv, members.tsv, mu.npy,\noutliers.tsv, aa_directions.npy, motifs.tsv, motif_directions.npy, "
           "motif_hits.tsv, motif_concepts.tsv, meta.json).\n");
    ps_config_destroy(&cfg);
    return 0;
  }
  if (ps_config_n_positional(cfg) > 0) {
    fprintf(stderr, "protsae synth: unexpected argument '%s' (options are --name value)\n", ps_config_positional(cfg, 0));
    ps_config_destroy(&cfg);
    return 2;
  }
  synth_opts_t o;
  synth_opts_default(&o);
  if (fill_opts(cfg, &o, &err) < 0) {
    fprintf(stderr, "protsae synth: %s\n", err.msg);
    ps_config_destroy(&cfg);
    return 2;
  }
  char dbuf[PATH_MAX];
  const char *dir = ps_config_str(cfg, "data");
  if (dir) {
    snprintf(dbuf, sizeof dbuf, "%s", dir);
    dir = dbuf;
  } else {
    dir = cli_data_dir(dbuf, sizeof dbuf);
    if (dir) ps_config_set(cfg, "data", dir);  // dbuf, not the config's own storage
  }
  if (!dir) {
    fprintf(stderr, "protsae synth: no data directory: pass --data DIR or set PROTSAE_DATA (a directory with "
                    "proteins.fasta.gz or proteins.tsv.gz, go_annotations.tsv.gz and the GO OBO: "
                    "../shared/data/human-swissprot, or make one with scripts/fetch-annotations DIR)\n");
    ps_config_destroy(&cfg);
    return 2;
  }
  ps_config_print(cfg);
  double t0 = ps_mono_s(), t1;
  if (synth_data_load(&data, dir, &err) < 0) {
    fprintf(stderr, "protsae synth: %s\n", err.msg);
    goto out;
  }
  PS_INFO("loaded proteins=%zu annotated=%zu go_terms=%zu random_sequences=%d", data.n_proteins,
          data.n_annotated, go_n_terms(data.onto), data.random_sequences);
  if (o.n_proteins && o.max_proteins) {
    fprintf(stderr, "protsae synth: --n-proteins and --max-proteins exclude each other\n");
    goto out;
  }
  if (o.n_proteins && synth_data_extend(&data, o.n_proteins, o.seed, &err) < 0) {
    fprintf(stderr, "protsae synth: %s\n", err.msg);
    goto out;
  }
  t1 = ps_mono_s();
  synth_summary_t sum;
  if (synth_generate(&data, &o, &sum, &err) < 0) {
    fprintf(stderr, "protsae synth: %s\n", err.msg);
    goto out;
  }
  sum.load_seconds = t1 - t0;
  if (!o.quiet) synth_summary_print(&sum, &o, stdout);
  status = 0;
out:
  synth_data_free(&data);
  ps_config_destroy(&cfg);
  return status;
}
