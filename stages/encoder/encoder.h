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
  enc_pooling_t pooling;
  int threads;             // top-k selection threads (BLAS has its own)
  int64_t chunk_rows;      // rows encoded at a time (bounds the pre-activation buffer)
  uint32_t max_dim;        // neuron mode: largest dim the first batch may set (0 = 8192); it sets the dim
} encoder_opts_t;

// Why a received batch was dropped (encoder_handle; names for metrics and logs).
typedef enum {
  ENC_REJ_MALFORMED = 0,   // inconsistent batch (sizes of rows, ids, offsets)
  ENC_REJ_SEQ_RANGE,       // seq >= the announced stream_batches, or either >= 2^32
  ENC_REJ_DIM,             // dim not the SAE's d_in (neuron mode: not the first batch's, or over max_dim)
  ENC_REJ_VALUES,          // NaN or Inf in the rows
  ENC_REJ_N
} enc_reject_t;
const char *encoder_reject_name(enc_reject_t r);  // "malformed", "seq_out_of_range", "dim", "bad_values"
#define ENC_MAX_SEQ ((uint64_t)1 << 32)

typedef struct encoder encoder_t;

int encoder_new(encoder_t **out, const encoder_opts_t *o, ps_err_t *err);
void encoder_destroy(encoder_t **e);
uint32_t encoder_n_features(const encoder_t *e);  // 0 in neuron mode before the first batch
const sae_t *encoder_sae(const encoder_t *e);     // NULL in neuron mode

// Encode one batch into *fb (initialised here; its arrays belong to the encoder and stay valid
// until the next call). protein_ids, level, residue_offsets and layer are borrowed from eb.
// source_seq / source_producer are the caller's. Errors (dimension, NaN/Inf) name the row.
int encoder_encode(encoder_t *e, const Protsae__EmbeddingBatch *eb, Protsae__FeatureBatch *fb, ps_err_t *err);
// The stage's handling of a received envelope carrying an EmbeddingBatch: checks the stream bounds
// (seq against stream_batches and 2^32), encodes, and fills the FeatureBatch's source fields
// (source_seq, source_producer and stream_batches, borrowed from env). 0 = *fb ready to send,
// <0 = dropped, *why says why (err names the producer and seq). Nothing off the wire is trusted.
int encoder_handle(encoder_t *e, const Protsae__Envelope *env, Protsae__FeatureBatch *fb, enc_reject_t *why,
                   ps_err_t *err);

#endif
