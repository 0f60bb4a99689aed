// encoder.h — the encoder stage's logic: EmbeddingBatch in, FeatureBatch (sparse codes) out.
//
// SAE mode: a checkpoint (protsae's or a SAELens directory) encodes every row (common/sae.h).
// Neuron mode (baseline): the raw dimensions are the features, value = max(x, 0).
// Residue level: one code per residue, plus each protein's pooled code (mean over its residues
// by default, max as an option), both in the FeatureBatch.
// Stateless between batches: any number of encoders may share a stream.
// Memory: the SAE (d_in x d_sae x 2 floats) + one batch's pre-activations (chunk_rows x d_sae)
// + the batch's codes; the pooling scratch is n_features floats.
#ifndef PS_ENCODER_H
#define PS_ENCODER_H

#include <stdint.h>

#include "err.h"
#include "protsae.pb-c.h"
#include "sae.h"

typedef enum { ENC_POOL_MEAN = 0, ENC_POOL_MAX = 1 } enc_pooling_t;

typedef struct encoder_opts {
  const char *sae_dir;     // SAE mode; NULL with neurons = 1
  int neurons;             // raw dimensions, ReLU
  uint32_t neuron_dim;     // neuron mode: expected dim (0 = take the first batch's)
  enc_pooling_t pooling;
  int threads;             // top-k selection threads (BLAS has its own)
  int64_t chunk_rows;      // rows encoded at a time (bounds the pre-activation buffer)
} encoder_opts_t;

typedef struct encoder encoder_t;

int encoder_new(encoder_t **out, const encoder_opts_t *o, ps_err_t *err);
void encoder_destroy(encoder_t **e);
uint32_t encoder_n_features(const encoder_t *e);  // 0 in neuron mode before the first batch
const sae_t *encoder_sae(const encoder_t *e);     // NULL in neuron mode

// Encode one batch into *fb (initialised here; its arrays belong to the encoder and stay valid
// until the next call). protein_ids, level, residue_offsets and layer are borrowed from eb.
// source_seq / source_producer are the caller's. Errors (dimension, NaN/Inf) name the row.
int encoder_encode(encoder_t *e, const Protsae__EmbeddingBatch *eb, Protsae__FeatureBatch *fb, ps_err_t *err);

#endif
