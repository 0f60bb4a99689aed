// protsae dump — the whole feature store as text (fs_dump: meta, streams, statistics, codes,
// enrichment, explanations, settings): equal stores give byte-identical dumps, so runs can be
// compared with cmp. Opens read-only (works while the scorer runs; shows its last commit).
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "featstore.h"

static const ps_config_entry_t table[] = {
    {"db", NULL, "feature store directory (protsae-scorer --db)"},
    {"out", "-", "output file (- = stdout)"},
    {NULL, NULL, NULL},
};

int cli_dump(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae dump", argc, argv);
  if (crc >= 0) return crc;
  ps_err_t err = {0};
  fs_t *fs = NULL;
  int status = 1;
  const char *db = ps_config_str(cfg, "db"), *out = ps_config_str(cfg, "out");
  FILE *f = NULL;
  if (!db) {
    fprintf(stderr, "protsae dump: --db is required\n");
    ps_config_destroy(&cfg);
    return 2;
  }
  if (fs_open(&fs, db, FS_OPEN_READONLY, &err) < 0) goto out;
  f = !out || !strcmp(out, "-") ? stdout : fopen(out, "w");
  if (!f) {
    ps_err_set(&err, PS_EIO, "%s: cannot write", out);
    goto out;
  }
  if (fs_dump(fs, f, &err) < 0) goto out;
  if (fflush(f) != 0) {
    ps_err_set(&err, PS_EIO, "%s: write failed", out);
    goto out;
  }
  status = 0;
out:
  if (f && f != stdout) fclose(f);
  if (status) fprintf(stderr, "protsae dump: %s\n", err.msg);
  fs_close(&fs);
  ps_config_destroy(&cfg);
  return status;
}
