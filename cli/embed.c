// protsae embed — native ESM2 representations of a FASTA, written to disk.
//
//   protsae embed --model DIR --fasta F --out OUT [--layers 5,6] [--level protein|residue|both]
//
// OUT ending in .safetensors (or --format safetensors): one file with, per protein and layer K,
// "ID.layerK.mean" [D] and/or "ID.layerK.per_residue" [L, D] (and "ID.logits" [L+2, vocab] with
// --logits 1): protsae's layered layout, which the reader reads back (--emb OUT --layer K).
// Otherwise OUT is a directory of .npy files: layerK.npy (N x D means), layerK.residue.npy (rows)
// + layerK.residue.offsets.npy (N+1 int64), and ids.txt (one id a line, in the same order).
// Proteins come in the runner's order (length-sorted within --sort-window; 1 keeps the FASTA
// order). Files are written to a temporary name and renamed when complete.
// Memory: the model, one window of sequences and one batch (see common/esm2/esm2.h); outputs are
// streamed.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "blascore.h"
#include "cli.h"
#include "config.h"
#include "esm2.h"
#include "io.h"
#include "log.h"
#include "npy.h"
#include "safetensors.h"
#include "signals.h"

static const ps_config_entry_t table[] = {
    {"model", NULL, "Hugging Face ESM2 checkpoint directory (config.json + model.safetensors)"},
    {"fasta", NULL, "protein sequences (FASTA, plain or .gz)"},
    {"out", NULL, "OUT.safetensors, or a directory for .npy files"},
    {"format", NULL, "safetensors | npy (default: from --out)"},
    {"layers", "last", "layers: '5,6', 'last', 'all' (0 = embeddings)"},
    {"level", "protein", "protein (mean over residues, BOS/EOS excluded) | residue | both"},
    {"logits", "0", "also write the logits (safetensors only)"},
    {"dtype", "f32", "stored float type: f32 | f16"},
    {"tokens-per-batch", "4096", "token budget of one forward batch (BOS/EOS included)"},
    {"sort-window", "4096", "sequences read ahead and sorted by length (1 = FASTA order)"},
    {"max-residues", "1022", "longer sequences are truncated or an error (see --long)"},
    {"long", "truncate", "sequences over --max-residues: truncate (as ESM) | error"},
    {"unknown", "error", "letters outside the alphabet: error | unk (the <unk> token)"},
    {"threads", "1", "threads for the forward pass (projections, attention, element-wise)"},
    {"precision", "f32", "projections in f32 | bf16 (AVX-512 BF16 where the CPU has it, else f32)"},
    {NULL, NULL, NULL},
};

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcasecmp(s + a - b, suf);
}

int cli_embed(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae embed", argc, argv);
  if (crc >= 0) return crc;
  if (!ps_config_str(cfg, "model") || !ps_config_str(cfg, "fasta") || !ps_config_str(cfg, "out"))
    return ps_config_cli_bad(&cfg, table, "protsae embed", "needs --model, --fasta and --out");
  ps_config_print(cfg);
  ps_blas_core_check();
  int status = 1, *layers = NULL, n_layers = 0, logits = 0;
  esm2_model_t *m = NULL;
  esm2_runner_t *run = NULL;
  st_writer_t *st = NULL;
  npy_writer_t **mean_w = NULL, **res_w = NULL, **off_w = NULL;
  FILE *ids = NULL;
  char idtmp[4200] = "", idpath[4200] = "";
  const char *out = ps_config_str(cfg, "out"), *fmt = ps_config_str(cfg, "format");
  const char *level = ps_config_str(cfg, "level"), *lp = ps_config_str(cfg, "long"), *up = ps_config_str(cfg, "unknown");
  const char *dts = ps_config_str(cfg, "dtype");
  int64_t tpb, win, maxres, threads;
  if (ps_config_i64(cfg, "tokens-per-batch", &tpb, &err) < 0 || ps_config_i64(cfg, "sort-window", &win, &err) < 0 ||
      ps_config_i64(cfg, "max-residues", &maxres, &err) < 0 || ps_config_i64(cfg, "threads", &threads, &err) < 0 ||
      ps_config_bool(cfg, "logits", &logits, &err) < 0)
    goto out;
  if (tpb < 3 || win < 1 || win > (1 << 24) || maxres < 1 || maxres > (1 << 20) || threads < 1 || threads > 256) {
    ps_err_set(&err, PS_ECONFIG, "tokens-per-batch >= 3, sort-window >= 1, max-residues >= 1, threads 1..256");
    goto out;
  }
  int want_mean = !strcmp(level, "protein") || !strcmp(level, "both");
  int want_res = !strcmp(level, "residue") || !strcmp(level, "both");
  if (!want_mean && !want_res) {
    ps_err_set(&err, PS_ECONFIG, "--level must be protein, residue or both, not '%s'", level);
    goto out;
  }
  if ((strcmp(lp, "truncate") && strcmp(lp, "error")) || (strcmp(up, "error") && strcmp(up, "unk")) ||
      (strcmp(dts, "f32") && strcmp(dts, "f16"))) {
    ps_err_set(&err, PS_ECONFIG, "--long truncate|error, --unknown error|unk, --dtype f32|f16");
    goto out;
  }
  int f16 = !strcmp(dts, "f16");
  int use_st = fmt ? !strcmp(fmt, "safetensors") : ends_with(out, ".safetensors");
  if (fmt && strcmp(fmt, "safetensors") && strcmp(fmt, "npy")) {
    ps_err_set(&err, PS_ECONFIG, "--format must be safetensors or npy, not '%s'", fmt);
    goto out;
  }
  if (logits && !use_st) {
    ps_err_set(&err, PS_ECONFIG, "--logits needs safetensors output");
    goto out;
  }
  double t_load = ps_mono_s();
  if (esm2_load(&m, ps_config_str(cfg, "model"), &err) < 0) goto out;
  const esm2_config_t *c = esm2_config(m);
  PS_INFO("model loaded layers=%d d=%d heads=%d params=%llu seconds=%.2f", c->n_layers, c->d_model, c->n_heads,
          (unsigned long long)esm2_n_params(m), ps_mono_s() - t_load);
  if (esm2_parse_layers(ps_config_str(cfg, "layers"), c->n_layers, &layers, &n_layers, &err) < 0) goto out;
  esm2_run_opts_t o = {0};
  o.fasta_path = ps_config_str(cfg, "fasta");
  o.req = (esm2_request_t){layers, n_layers, want_res, want_mean, logits};
  o.tokens_per_batch = (uint32_t)tpb;
  o.sort_window = (uint32_t)win;
  o.max_residues = (uint32_t)maxres;
  o.long_policy = !strcmp(lp, "error") ? ESM2_LONG_ERROR : ESM2_LONG_TRUNCATE;
  o.unknown = !strcmp(up, "unk") ? ESM2_UNKNOWN_UNK : ESM2_UNKNOWN_ERROR;
  o.threads = (int)threads;
  const char *prec = ps_config_str(cfg, "precision");
  if (!prec || (strcmp(prec, "f32") && strcmp(prec, "bf16"))) {
    fprintf(stderr, "protsae embed: --precision must be f32 or bf16\n");
    goto out;
  }
  o.precision = !strcmp(prec, "bf16") ? ESM2_PREC_BF16 : ESM2_PREC_F32;
  if (esm2_runner_new(&run, m, &o, &err) < 0) goto out;

  char path[4200];
  if (use_st) {
    if (st_writer_open(&st, out, &err) < 0) goto out;
    st_writer_set_metadata(st, "format", "protsae-esm2", &err);
    st_writer_set_metadata(st, "model", ps_config_str(cfg, "model"), &err);
    st_writer_set_metadata(st, "layers", ps_config_str(cfg, "layers"), &err);
  } else {
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
      ps_err_set(&err, -errno, "%s: %s", out, strerror(errno));
      goto out;
    }
    mean_w = ps_xcalloc((size_t)n_layers, sizeof *mean_w);
    res_w = ps_xcalloc((size_t)n_layers, sizeof *res_w);
    off_w = ps_xcalloc((size_t)n_layers, sizeof *off_w);
    npy_dtype_t dt = f16 ? NPY_F16 : NPY_F32;
    for (int s = 0; s < n_layers; s++) {
      if (want_mean) {
        snprintf(path, sizeof path, "%s/layer%d.npy", out, layers[s]);
        if (npy_writer_open(&mean_w[s], path, dt, (uint64_t)c->d_model, &err) < 0) goto out;
      }
      if (want_res) {
        snprintf(path, sizeof path, "%s/layer%d.residue.npy", out, layers[s]);
        if (npy_writer_open(&res_w[s], path, dt, (uint64_t)c->d_model, &err) < 0) goto out;
        snprintf(path, sizeof path, "%s/layer%d.residue.offsets.npy", out, layers[s]);
        if (npy_writer_open(&off_w[s], path, NPY_I64, 0, &err) < 0) goto out;
        int64_t zero = 0;
        if (npy_writer_append_i64(off_w[s], &zero, 1, &err) < 0) goto out;
      }
    }
    snprintf(idpath, sizeof idpath, "%s/ids.txt", out);
    snprintf(idtmp, sizeof idtmp, "%s/ids.txt.tmp", out);
    if (!(ids = fopen(idtmp, "w"))) {
      ps_err_set(&err, -errno, "%s: %s", idtmp, strerror(errno));
      goto out;
    }
  }
  double t0 = ps_mono_s();
  uint64_t n = 0, rows = 0;
  esm2_item_t it;
  int rc;
  char name[1024];
  st_dtype_t sdt = f16 ? ST_F16 : ST_F32;
  while ((rc = esm2_runner_next(run, &it, &err)) > 0) {
    uint64_t D = (uint64_t)c->d_model;
    for (int s = 0; s < n_layers; s++) {
      if (st) {
        if (want_mean) {
          snprintf(name, sizeof name, "%s.layer%d.mean", it.id, layers[s]);
          if (st_writer_add_f32(st, name, sdt, &D, 1, it.mean[s], &err) < 0) goto out;
        }
        if (want_res) {
          uint64_t sh[2] = {it.n_residues, D};
          snprintf(name, sizeof name, "%s.layer%d.per_residue", it.id, layers[s]);
          if (st_writer_add_f32(st, name, sdt, sh, 2, it.residue[s], &err) < 0) goto out;
        }
      } else {
        if (want_mean && npy_writer_append_f32(mean_w[s], it.mean[s], 1, &err) < 0) goto out;
        if (want_res) {
          if (npy_writer_append_f32(res_w[s], it.residue[s], it.n_residues, &err) < 0) goto out;
          int64_t end = (int64_t)(rows + it.n_residues);
          if (npy_writer_append_i64(off_w[s], &end, 1, &err) < 0) goto out;
        }
      }
    }
    if (st && logits) {
      uint64_t sh[2] = {(uint64_t)it.n_residues + 2, (uint64_t)c->vocab};
      snprintf(name, sizeof name, "%s.logits", it.id);
      if (st_writer_add_f32(st, name, sdt, sh, 2, it.logits, &err) < 0) goto out;
    }
    if (ids) fprintf(ids, "%s\n", it.id);
    rows += it.n_residues;
    n++;
    if (ps_signals_stop_requested()) {
      ps_err_set(&err, PS_EINTR, "stopped by a signal after %llu proteins (nothing written)", (unsigned long long)n);
      goto out;
    }
  }
  if (rc < 0) goto out;
  if (!n) {
    ps_err_set(&err, PS_EFORMAT, "%s: no sequences", o.fasta_path);
    goto out;
  }
  double secs = ps_mono_s() - t0;
  uint64_t tokens = esm2_runner_tokens(run);
  if (st && st_writer_close(&st, &err) < 0) goto out;
  for (int s = 0; mean_w && s < n_layers; s++) {
    if (mean_w[s] && npy_writer_close(&mean_w[s], &err) < 0) goto out;
    if (res_w[s] && npy_writer_close(&res_w[s], &err) < 0) goto out;
    if (off_w[s] && npy_writer_close(&off_w[s], &err) < 0) goto out;
  }
  if (ids) {
    int bad = fflush(ids) != 0 || fclose(ids) != 0;
    ids = NULL;
    if (bad || rename(idtmp, idpath) != 0) {
      ps_err_set(&err, PS_EIO, "%s: could not write", idpath);
      goto out;
    }
    idtmp[0] = 0;
  }
  PS_INFO("embedded proteins=%llu residues=%llu tokens=%llu truncated=%llu seconds=%.2f tokens_per_s=%.0f out=%s",
          (unsigned long long)n, (unsigned long long)rows, (unsigned long long)tokens,
          (unsigned long long)esm2_runner_truncated(run), secs, tokens / (secs > 0 ? secs : 1e-9), out);
  status = 0;
out:
  if (status) PS_ERROR("%s", err.msg[0] ? err.msg : ps_strerror(err.code));
  st_writer_abort(&st);
  for (int s = 0; mean_w && s < n_layers; s++) {
    npy_writer_abort(&mean_w[s]);
    npy_writer_abort(&res_w[s]);
    npy_writer_abort(&off_w[s]);
  }
  free(mean_w);
  free(res_w);
  free(off_w);
  if (ids) fclose(ids);
  if (idtmp[0]) remove(idtmp);
  esm2_runner_destroy(&run);
  esm2_destroy(&m);
  free(layers);
  ps_config_destroy(&cfg);
  return status;
}
