// protsae esm2-random — an ESM2 checkpoint directory with random weights of a given shape
// (default the esm2_t12_35M shape): the model of the benchmarks that run ESM2 where the real
// weights cannot be downloaded (scripts/bench annotate). Not a trained model.
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "dev.h"
#include "esm2.h"

static const ps_config_entry_t table[] = {
    {"out", NULL, "checkpoint directory to write (config.json + model.safetensors)"},
    {"layers", "12", "transformer layers"},
    {"dim", "480", "hidden size"},
    {"heads", "20", "attention heads"},
    {"ffn", "1920", "intermediate size"},
    {"seed", "1234", "weights seed"},
    {NULL, NULL, NULL},
};

int cli_esm2_random(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae esm2-random", argc, argv);
  if (crc >= 0) return crc;
  ps_err_t err = {0};
  int64_t layers, dim, heads, ffn, seed;
  const ps_config_bind_t binds[] = {PS_CFG_I64("layers", &layers), PS_CFG_I64("dim", &dim), PS_CFG_I64("heads", &heads),
                                    PS_CFG_I64("ffn", &ffn), PS_CFG_I64("seed", &seed), {0}};
  int status = 2;
  const char *out = ps_config_str(cfg, "out");
  if (ps_config_read(cfg, binds, &err) < 0 || !out || layers < 1 || layers > 64 || heads < 1 || dim < heads ||
      dim % heads || dim > 8192 || ffn < 1 || ffn > 65536) {
    fprintf(stderr, "protsae esm2-random: %s\n", err.msg[0] ? err.msg : "--out required; dim a multiple of heads");
    goto out;
  }
  esm2_model_t *m = esm2_new_random((int)layers, (int)dim, (int)heads, (int)ffn, (uint64_t)seed);
  status = esm2_save_dir(m, out, &err) < 0 ? 1 : 0;
  if (status) fprintf(stderr, "protsae esm2-random: %s\n", err.msg);
  else printf("%s: random ESM2 (%lld layers, d %lld, %lld heads, ffn %lld, %llu parameters)\n", out, (long long)layers,
              (long long)dim, (long long)heads, (long long)ffn, (unsigned long long)esm2_n_params(m));
  esm2_destroy(&m);
out:
  ps_config_destroy(&cfg);
  return status;
}
