// protsae recovery (developer tool) — how many planted directions (protsae synth
// truth/directions.npy, or any matrix of known directions) some decoder row of a trained SAE
// recovers: for each direction the best cosine over all decoder rows (recovery_measure,
// synth/recovery.c). Prints `key: value` lines: n_directions, d_sae, planted_recovery_cos09 (share
// with best cosine >= 0.9), planted_recovery_cos08, mean_best_cos.
#include <stdio.h>

#include "config.h"
#include "dev.h"
#include "synth.h"

static const ps_config_entry_t table[] = {
    {"sae", NULL, "SAE directory (cfg.json + sae_weights.safetensors), e.g. OUT/best"},
    {"truth", NULL, "directions (.npy, one row per planted feature), e.g. synth/truth/directions.npy"},
    {NULL, NULL, NULL},
};

int cli_recovery(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae recovery", argc, argv);
  if (crc >= 0) return crc;
  if (!ps_config_str(cfg, "sae") || !ps_config_str(cfg, "truth"))
    return ps_config_cli_bad(&cfg, table, "protsae recovery", "needs --sae and --truth");
  recovery_t r;
  int rc = recovery_measure(ps_config_str(cfg, "sae"), ps_config_str(cfg, "truth"), &r, &err);
  if (rc == 0)
    printf("n_directions: %lld\nd_sae: %lld\nplanted_recovery_cos09: %.4f\nplanted_recovery_cos08: %.4f\n"
           "mean_best_cos: %.4f\n", (long long)r.n_directions, (long long)r.d_sae, r.planted_recovery_cos09,
           r.planted_recovery_cos08, r.mean_best_cos);
  else
    fprintf(stderr, "protsae recovery: %s\n", err.msg);
  ps_config_destroy(&cfg);
  return rc == 0 ? 0 : 1;
}
