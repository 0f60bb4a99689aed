// protsae keys — a CURVE keypair for the stages' tcp:// sockets (common/curve.h): DIR/NAME.key
// (the secret, mode 0600) and DIR/NAME.pub (the public key), each 40 Z85 characters and a newline.
// Existing files are never overwritten. The deployment default is one such "cluster" keypair
// given to every stage (--curve-secret DIR/NAME.key).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"
#include "config.h"

static const ps_config_entry_t table[] = {
    {"out", NULL, "directory for the key files (created 0700 when missing)"},
    {"name", "protsae", "file names: NAME.key (secret, 0600) and NAME.pub (public)"},
    {NULL, NULL, NULL},
};

// Create path exclusively with mode and write text + newline. 0 or <0 (err names the file).
static int write_new(const char *path, int mode, const char *text, ps_err_t *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return ps_err_set(err, -errno, "%s: %s", path, errno == EEXIST ? "exists (not overwritten)" : strerror(errno));
  char line[64];
  int n = snprintf(line, sizeof line, "%s\n", text);
  int rc = 0;
  if (fchmod(fd, (mode_t)mode) != 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0)
    rc = ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
  if (close(fd) != 0 && rc == 0) rc = ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
  if (rc < 0) unlink(path);
  return rc;
}

int cli_keys(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae keys", argc, argv);
  if (crc >= 0) return crc;
  const char *dir = ps_config_str(cfg, "out"), *name = ps_config_str(cfg, "name");
  if (!dir) return ps_config_cli_bad(&cfg, table, "protsae keys", "--out is required");
  if (!name || !*name || strchr(name, '/') || name[0] == '.')
    return ps_config_cli_bad(&cfg, table, "protsae keys", "--name must be a plain file name");
  ps_err_t err = {0};
  int status = 1;
  char key[4096], pub[4096], z_pub[41], z_sec[41];
  snprintf(key, sizeof key, "%s/%s.key", dir, name);
  snprintf(pub, sizeof pub, "%s/%s.pub", dir, name);
  struct stat sb;
  if (!zmq_has("curve")) {
    ps_err_set(&err, PS_EUNSUPP, "this libzmq was built without CURVE (libsodium)");
    goto out;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    ps_err_set(&err, -errno, "%s: %s", dir, strerror(errno));
    goto out;
  }
  if (stat(key, &sb) == 0 || stat(pub, &sb) == 0) {
    ps_err_set(&err, -EEXIST, "%s: exists (not overwritten)", stat(key, &sb) == 0 ? key : pub);
    goto out;
  }
  if (zmq_curve_keypair(z_pub, z_sec) != 0) {
    ps_err_set(&err, -errno, "zmq_curve_keypair: %s", zmq_strerror(errno));
    goto out;
  }
  if (write_new(key, 0600, z_sec, &err) < 0) goto out;
  if (write_new(pub, 0644, z_pub, &err) < 0) {
    unlink(key);
    goto out;
  }
  memset(z_sec, 0, sizeof z_sec);
  printf("secret key: %s\npublic key: %s (%s)\n", key, pub, z_pub);
  status = 0;
out:
  if (status) fprintf(stderr, "protsae keys: %s\n", err.msg);
  ps_config_destroy(&cfg);
  return status;
}
