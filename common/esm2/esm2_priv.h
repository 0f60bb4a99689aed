// esm2_priv.h — the ESM2 engine's internals shared by its files (not for users of esm2.h): the
// parameter layout of a model (one float32 slab, per-layer pointers into it; filled by
// esm2_load.c or esm2_model.c, read by esm2_forward.c) and the helpers the loader and the
// random-weights maker both need, and the bf16 weight copies (esm2_forward.c).
#ifndef PS_ESM2_PRIV_H
#define PS_ESM2_PRIV_H

#include <stdatomic.h>

#include "esm2.h"
#include "esm2_gemm.h"

typedef struct esm2_layer {
  float *ln1_w, *ln1_b;   // (D)
  float *w_qkv, *b_qkv;   // (3D, D) rows: query, key, value (out, in); (3D)
  float *w_o, *b_o;       // (D, D), (D)
  float *ln2_w, *ln2_b;   // (D)
  float *w_1, *b_1;       // (F, D), (F)
  float *w_2, *b_2;       // (D, F), (D)
  float *inv_freq;        // (d_head / 2)
} esm2_layer_t;

struct esm2_model {
  esm2_config_t cfg;
  float *slab;
  uint64_t n_params;
  float *embed;           // (V, D)
  float *lnf_w, *lnf_b;   // emb_layer_norm_after (D)
  float *lm_dense_w, *lm_dense_b, *lm_ln_w, *lm_ln_b, *lm_dec_w, *lm_bias;
  esm2_layer_t *layers;
  // bfloat16 copies of the layers' projection weights (esm2_prepare; 4 a layer: qkv, o, 1, 2),
  // made once, on the first bf16 forward at the latest; packed_ready is set after they are.
  esm2_packed_t *packed;
  atomic_int packed_ready;
};

// The ESM-1b alphabet (33 tokens), used when config.json has no vocab_list.
extern const char *const esm2_default_vocab[33];
// Point the parameter tensors into one slab (allocated here, zeroed). 0 or PS_ENOMEM.
int esm2_model_alloc(esm2_model_t *m);
// Token ids of the special tokens and single letters from a vocabulary list.
void esm2_set_vocab(esm2_config_t *c, const char *const *toks, int n);

#endif
