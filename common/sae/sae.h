// sae.h — a sparse autoencoder or transcoder: parameters, encoding, SAELens-compatible I/O.
//
// Model (d = d_in, n = d_sae, o = d_out; o = d for an SAE, a transcoder's target may differ):
//   x'   = (x - mean(x)) / std(x)               only with normalize_per_sample
//   pre  = (x' - b_dec) W_enc + b_enc           b_dec subtracted only with apply_b_dec_to_input
//   f    = act(pre)                             relu | topk (top k of pre, then ReLU) |
//                                               jumprelu (pre where pre > threshold_j, else 0)
//   y^   = f W_dec + b_dec                      (x std + mean undone by the caller, see sae_denorm)
// BatchTopK trains with a batch-wide top (k x batch) selection and encodes at inference as
// JumpReLU with the threshold it learnt, like SAELens.
//
// Storage: one flat float array, [W_encT (n x d) | b_enc (n) | W_dec (n x o) | b_dec (o)].
// W_enc is kept transposed (row j = latent j's encoder vector) so that sparse gradient updates
// touch contiguous memory; files hold SAELens' W_enc [d_in, d_sae].
//
// Files (sae_save / sae_load): a directory with cfg.json and sae_weights.safetensors holding
// W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_out], b_dec [d_out] and, for jumprelu /
// batchtopk, threshold [d_sae]; float32. cfg.json follows SAELens v6 (SAEConfig.to_dict): top
// level "architecture" (SAELens' registry names: "standard" = relu, "topk", "jumprelu" (also for
// batchtopk, which SAELens saves as JumpReLU for inference); a transcoder (d_out may differ):
// "transcoder" (relu), "jumprelu_transcoder", and "topk_transcoder" -- SAELens has no TopK
// transcoder class, so it refuses that one by name rather than encoding it as ReLU), d_in, d_sae,
// dtype, device, apply_b_dec_to_input, normalize_activations ("none" | "layer_norm"),
// reshape_activations, k (topk / batchtopk), for a transcoder d_out, hook_name_out,
// hook_layer_out, hook_head_index_out; and "metadata" (SAEMetadata: model_name, hook_name,
// hook_layer, hook_head_index, prepend_bos, context_size, dataset_path, ...,
// sae_lens_version = SAE_SAELENS_VERSION, whose being >= 6 makes SAELens take its current loader,
// not handle_pre_6_0_config). Hook names: ESM layer L >= 1 (representations[L], the output of
// block L-1) is "blocks.{L-1}.hook_resid_post" (hook_layer L-1), layer 0 "hook_embed", an
// unknown layer "protsae.layer_unknown" (hook_layer null). protsae's own fields (protsae_arch,
// protsae_layer / protsae_target_layer in ESM numbering, protsae_level, the folded scales, for a
// transcoder protsae_target "delta" | "raw", what its decoder predicts) sit at
// the top; SAELens ignores them. sae_load reads this layout, legacy SAELens directories
// ("standard"/"relu", "topk", "jumprelu", "batchtopk"; activation_fn_kwargs.k or k; hook_name /
// hook_layer at the top) and protsae directories written before (hook_layer in ESM numbering).
// Peer checkpoints (sae_load on a file, sae_peer.c): see sae_load_peer below.
// Memory: params (n (d + o + 1) + o floats); save/load add one W_enc-sized transposition buffer.
#ifndef PS_SAE_H
#define PS_SAE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "pool.h"

typedef enum { SAE_RELU = 0, SAE_TOPK, SAE_BATCHTOPK, SAE_JUMPRELU } sae_arch_t;

const char *sae_arch_name(sae_arch_t a);       // "relu", "topk", "batchtopk", "jumprelu"
int sae_arch_parse(const char *s, sae_arch_t *out);  // also "standard"; 0 or PS_ECONFIG

typedef struct sae_cfg {
  sae_arch_t arch;
  int64_t d_in, d_sae, d_out;     // d_out = d_in for an SAE
  int32_t k;                      // topk / batchtopk
  int apply_b_dec_to_input;       // SAE: 1; transcoder: 0
  int normalize_per_sample;       // (x - mean) / std on input; decoded output is in that space
  int transcoder;
  int32_t layer;                  // ESM2 layer the input comes from (-1 unknown)
  int32_t target_layer;           // transcoder target layer (-1)
  int target_delta;               // transcoder: 1 = trained on target - input (h_{L+1} - h_L, cfg.json
                                  // "protsae_target": "delta"), 0 = on the target rows ("raw")
  char level[16];                 // "protein" | "residue"
  char model_name[64];            // e.g. esm2_t12_35M_UR50D
} sae_cfg_t;

void sae_cfg_default(sae_cfg_t *c);

typedef struct sae {
  sae_cfg_t cfg;
  float *params;                  // flat, see above (64-byte aligned)
  size_t n_params;
  float *W_encT, *b_enc, *W_dec, *b_dec;   // views into params
  float *threshold;               // d_sae, jumprelu / batchtopk, else NULL
} sae_t;

// Zeroed parameters. Checks dimensions (positive, k in [1, d_sae]).
int sae_new(sae_t **out, const sae_cfg_t *cfg, ps_err_t *err);
void sae_free(sae_t **s);
int sae_copy(sae_t **out, const sae_t *src, ps_err_t *err);

// Write dir/cfg.json and dir/sae_weights.safetensors (each via tmp + fsync + rename). dir must
// exist. Scales != 1 fold a dataset normalisation (x' = in_scale x, y' = out_scale y; equal for
// an SAE) into the saved weights (W_enc * in_scale, W_dec / out_scale, b_dec / out_scale) so the
// files apply to raw inputs.
int sae_save(const sae_t *s, const char *dir, float in_scale, float out_scale, ps_err_t *err);
// path: an SAE directory, or a file given to sae_load_peer.
int sae_load(sae_t **out, const char *path, ps_err_t *err);

#define SAE_SAELENS_VERSION "6.0.0"  // written as metadata.sae_lens_version
#define SAE_K_ENV "PROTSAE_SAE_K"     // k of a TopK peer checkpoint that does not record it

// A peer's torch.save file (ptfile.h: pt_state_*), recognised by its tensor names, each
// optionally behind one prefix ending in '.' ("model.", "sae.", "ae."...):
//   dictionary_learning / InterPLM ae.pt: encoder.weight [d_sae, d_in], encoder.bias [d_sae],
//     decoder.weight [d_out, d_sae], and bias (or b_dec) [d_out]: ReLU, b_dec subtracted from
//     the input (apply_b_dec_to_input = 1 when d_out = d_in); with a one-element "k" buffer
//     (dictionary_learning's AutoEncoderTopK) TopK with that k (its scalar "threshold" is unused);
//   the reference study's Lightning module (Gujral et al. 2025, LitLit with model = TopKAuto):
//     model.weights.0 = W_enc [d_in, d_sae], .1 = W_dec [d_sae, d_out], .2 = b_enc, .3 = b_dec:
//     TopK then ReLU on the per-sample layer-normalised input minus b_dec
//     (normalize_per_sample = 1; the study divides by sqrt(var + 1e-5), protsae by the std
//     floored at 1e-6: equal to ~5e-6 relative for rows of unit variance);
//   SAELens-like: W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_out], b_dec, threshold (jumprelu).
// A Lightning .ckpt ({"state_dict": ..., "hyper_parameters": ...}) may hold any of these.
// hyper_parameters.k (int; else the "k" buffer) makes it TopK (the study's layout is always TopK); when a TopK
// checkpoint has no k, the environment variable SAE_K_ENV gives it, else PS_ECONFIG saying so.
// hyper_parameters.architecture ("relu", "topk", "jumprelu", "batchtopk", "standard") overrides
// the layout's default. Errors name the file and the tensor missing or mis-shaped.
int sae_load_peer(sae_t **out, const char *path, ps_err_t *err);

// ---- encoding ------------------------------------------------------------------------------
// Sparse codes in CSR: row r has values[indptr[r] .. indptr[r+1]) at latents indices[...],
// indices ascending, values > 0.
typedef struct sae_codes {
  int64_t n_rows;
  int64_t *indptr;                // n_rows + 1
  int32_t *indices;
  float *values;
  int64_t cap_rows, cap_nnz;
} sae_codes_t;
void sae_codes_free(sae_codes_t *c);

typedef struct sae_enc sae_enc_t;
// Workspace for encoding up to chunk_rows rows at a time (pre-activations: chunk_rows x d_sae
// floats). pool may be NULL (one thread); BLAS uses its own threads.
int sae_enc_new(sae_enc_t **out, const sae_t *s, ps_pool_t *pool, int64_t chunk_rows, ps_err_t *err);
void sae_enc_free(sae_enc_t **e);
// Encode n rows of x (n x d_in) into codes (replaced). Non-finite inputs are an error naming the
// row. Memory: the codes grow with n x (active latents per row).
int sae_enc_run(sae_enc_t *e, const float *x, int64_t n, sae_codes_t *codes, ps_err_t *err);
// Decode codes into y (n x d_out), in the model's (normalised) space.
void sae_decode(const sae_t *s, const sae_codes_t *codes, float *y);

// ---- kernels shared with the trainer -------------------------------------------------------
// In place: row <- (row - mean) / std (std floored at 1e-6); mean and std out (may be NULL).
void sae_normalize_row(float *row, int64_t d, float *mean, float *stdev);
// The k largest of v[0..n) with v > 0 (TopK then ReLU): writes up to k (index, value) pairs,
// indices ascending; returns how many. idx/val need room for k. Ties: lower index first.
int sae_topk_relu(const float *v, int64_t n, int k, int32_t *idx, float *val);
// The same on v[i] + b[i] (the encoder adds b_enc here instead of before the product).
int sae_topk_relu_bias(const float *v, const float *b, int64_t n, int k, int32_t *idx, float *val);
// The same over the positions cand[0..m) only (AuxK: the dead latents); heap order, not sorted.
int sae_topk_subset(const float *v, const int32_t *cand, int64_t m, int k, int32_t *idx, float *val);

#endif
