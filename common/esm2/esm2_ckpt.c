// esm2_ckpt.c — writing a model as a Hugging Face checkpoint directory (config.json +
// model.safetensors) that esm2_load reads back: random models of a real shape for benchmarks
// (scripts/bench annotate runs the annotation service on one).
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "esm2.h"
#include "io.h"

int esm2_save_dir(const esm2_model_t *m, const char *dir, ps_err_t *err) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return ps_err_set(err, -errno, "%s: cannot create: %s", dir, strerror(errno));
  const esm2_config_t *c = esm2_config(m);
  char path[PATH_MAX + 32], text[1024];
  int n = snprintf(text, sizeof text,
                   "{\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                   "\"intermediate_size\": %d, \"vocab_size\": %d, \"token_dropout\": %s, \"mask_token_id\": %d, "
                   "\"pad_token_id\": %d, \"layer_norm_eps\": %g, \"position_embedding_type\": \"rotary\", "
                   "\"emb_layer_norm_before\": %s, \"hidden_act\": \"gelu\"}\n",
                   c->d_model, c->n_layers, c->n_heads, c->d_ff, c->vocab, c->token_dropout ? "true" : "false",
                   c->mask_id, c->pad_id, (double)c->ln_eps, c->emb_ln_before ? "true" : "false");
  snprintf(path, sizeof path, "%s/config.json", dir);
  int rc = ps_write_file_atomic(path, text, (size_t)n, err);
  if (rc < 0) return rc;
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  return esm2_save(m, path, err);
}
