// fuzz_encoder_msg — arbitrary bytes as what arrives on an encoder's input, through the stage's
// handler (encoder_handle) with a tiny SAE (d_in 8, 16 latents, TopK 4, written to a temporary
// directory once) and a neuron-mode encoder (max_dim 64). A decoded EmbeddingBatch is encoded or
// dropped with a reason; what is encoded must be a consistent FeatureBatch of the encoder's
// n_features that carries the batch's seq, producer and announced count.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encoder.h"
#include "sae.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static encoder_t *enc_sae, *enc_neur;
static char dir[64];

static void cleanup(void) {
  encoder_destroy(&enc_sae);
  encoder_destroy(&enc_neur);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (dir[0] && system(cmd) != 0) fprintf(stderr, "fuzz_encoder_msg: could not remove %s\n", dir);
}

static void setup(void) {
  strcpy(dir, "/tmp/protsae-fuzz-encoder.XXXXXX");
  if (!mkdtemp(dir)) abort();
  atexit(cleanup);
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.arch = SAE_TOPK;
  c.d_in = c.d_out = 8;
  c.d_sae = 16;
  c.k = 4;
  sae_t *s = NULL;
  ps_err_t err = {0};
  if (sae_new(&s, &c, &err) < 0) goto fail;
  for (size_t i = 0; i < s->n_params; i++) s->params[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
  if (sae_save(s, dir, 1.0f, 1.0f, &err) < 0) goto fail;
  sae_free(&s);
  encoder_opts_t eo = {0};
  eo.sae_dir = dir;
  eo.chunk_rows = 16;
  if (encoder_new(&enc_sae, &eo, &err) < 0) goto fail;
  return;
fail:
  fprintf(stderr, "fuzz_encoder_msg: setup: %s\n", err.msg);
  abort();
}

static void check(encoder_t *e, const Protsae__Envelope *env) {
  Protsae__FeatureBatch fb;
  enc_reject_t why = ENC_REJ_N;
  ps_err_t err = {0};
  int rc = encoder_handle(e, env, &fb, &why, &err);
  if (rc < 0) {
    if (why >= ENC_REJ_N || !err.msg[0]) abort();
    return;
  }
  if (rc != 0 || wire_check_feature_batch(&fb, NULL) != 0) abort();
  if (fb.n_features != encoder_n_features(e) || fb.source_seq != env->seq || fb.source_seq >= ENC_MAX_SEQ) abort();
  if (fb.stream_batches != env->embedding_batch->stream_batches) abort();
  if (fb.stream_batches && fb.source_seq >= fb.stream_batches) abort();
  if (fb.n_rows != env->embedding_batch->n_rows) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!enc_sae) setup();
  if (!enc_neur || (size && data[0] == 0x5a)) {  // now and then a fresh neuron encoder (its dim is the first batch's)
    encoder_destroy(&enc_neur);
    encoder_opts_t eo = {0};
    eo.neurons = 1;
    eo.max_dim = 64;
    ps_err_t err = {0};
    if (encoder_new(&enc_neur, &eo, &err) < 0) abort();
  }
  Protsae__Envelope *env = NULL;
  wire_stats_t st = {0};
  if (!wire_decode(data, size, &env, &st)) return 0;
  if (env->body_case == PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH) {
    check(enc_sae, env);
    check(enc_neur, env);
  }
  wire_free(&env);
  return 0;
}
