// esm2.h — native ESM2 forward pass (float32, OpenBLAS) from a Hugging Face checkpoint directory.
//
// The ESM2 engine (common/esm2): protein language model embeddings computed in-process, without
// PyTorch. Users: `protsae embed` (cli/embed.c: FASTA -> embedding files), the embedding dataset
// (common/dataset: the reader stage's and the trainer's native-ESM2 mode, through the emb_source
// below), the unit tests and bench_esm2. Files: esm2_model.c (parameter layout, random weights,
// save, tokens, layer lists), esm2_load.c (config.json + safetensors), esm2_forward.c (the
// forward pass), esm2_kern.c (its -O3 -ffast-math softmax / GELU / LayerNorm loops), esm2_gemm.c
// + esm2_gemm_bf16.c (bf16 weight packing and the AVX-512 BF16 projection kernel), esm2_attn.c +
// esm2_attn_avx512.c (the AVX-512F attention products), esm2_run.c (the FASTA runner),
// esm2_source.c (the runner as an emb_source).
//
// Model (esm2_load): DIR/config.json (EsmConfig: hidden_size, num_hidden_layers,
// num_attention_heads, intermediate_size, vocab_size, layer_norm_eps, token_dropout,
// mask_token_id, pad_token_id, position_embedding_type = "rotary", emb_layer_norm_before,
// hidden_act = "gelu", vocab_list) and DIR/model.safetensors, or the shards named by
// DIR/model.safetensors.index.json. Tensors under the names of EsmForMaskedLM ("esm." prefix,
// or none as in EsmModel): embeddings.word_embeddings.weight, encoder.layer.N.attention.self.
// {query,key,value}.{weight,bias}, ...rotary_embeddings.inv_freq (used as stored),
// attention.output.dense, attention.LayerNorm, intermediate.dense, output.dense, LayerNorm,
// encoder.emb_layer_norm_after; lm_head.* is optional (logits only when present; the decoder
// falls back to the tied word embeddings). F32, F16, BF16 (and F64) weights are converted to
// float32 at load into one slab. Errors name the file and the tensor (missing, wrong shape,
// bad header, truncated file) or the config key.
// Memory: the weights as float32 (4 bytes a parameter: 35M -> 140 MB, 3B -> 11 GB).
//
// Forward (esm2_forward): a batch of sequences packed without padding (N = total tokens).
// All projections are one matrix product over the N tokens (split in row blocks across threads):
// cblas_sgemm in float32; in bfloat16 (esm2_request_t.precision) the AVX-512 BF16 kernel of
// esm2_gemm_bf16.c on weights converted to bf16 once, activations rounded to bf16, float32
// accumulation (esm2_ws_set_precision, esm2_run_opts_t.precision). Attention runs per (sequence, head, block of 64 queries) with two sgemms and a
// fused softmax (esm2_kern.c), tasks handed out longest sequence first, so a sequence's result
// does not depend on its batch.
//   embed (+ token-dropout scaling (1 - 0.15*0.8) / (1 - masked/T), masked rows zeroed)
//   -> layers: h += Wo attn(rope(LN1 h)); h += W2 gelu(W1 LN2 h)   (exact erf GELU)
//   -> emb_layer_norm_after on the last layer; logits = lm_head(h).
// Representation of layer k: 0 = embeddings, k = output of block k, the last = after the final
// LayerNorm (as fair-esm and Hugging Face). Per residue excludes BOS/EOS; mean = their average.
// Memory of a workspace: O(N (3 D + F + 4 D)) floats (the last D: keys transposed for the
// AVX-512 attention) + per thread 64 x T (T: the longest sequence) and in bf16 a 96 x F/2
// scratch + the requested outputs (residues x D per layer, N x vocab for logits).
#ifndef PS_ESM2_H
#define PS_ESM2_H

#include <stddef.h>
#include <stdint.h>

#include "emb.h"
#include "err.h"

#define ESM2_MAX_VOCAB 64

typedef struct esm2_config {
  int n_layers, d_model, n_heads, d_head, d_ff, vocab;
  float ln_eps;
  int token_dropout, emb_ln_before;
  int cls_id, pad_id, eos_id, unk_id, mask_id;
  int max_positions;                    // max_position_embeddings (1026 in ESM2)
  int has_lm_head;
  int8_t letter_id[256];                // single-letter tokens of vocab_list, -1 otherwise
} esm2_config_t;

typedef struct esm2_model esm2_model_t;

// Load DIR (see above). Caller destroys.
int esm2_load(esm2_model_t **out, const char *dir, ps_err_t *err);
void esm2_destroy(esm2_model_t **m);   // accepts NULL
const esm2_config_t *esm2_config(const esm2_model_t *m);
uint64_t esm2_n_params(const esm2_model_t *m);
// Random weights of a given shape (benchmarks): N(0, std) projections, LayerNorm 1/0, inv_freq
// as ESM2 computes it (1 / 10000^(2i/d_head)) rounded through float16. No lm_head.
esm2_model_t *esm2_new_random(int n_layers, int d_model, int n_heads, int d_ff, uint64_t seed);
// Write the weights of m to path as float32 safetensors under Hugging Face names (benchmarks:
// the PyTorch reference reads the same weights). 0 or <0.
int esm2_save(const esm2_model_t *m, const char *path, ps_err_t *err);
// The same as a checkpoint directory esm2_load reads: dir/config.json + dir/model.safetensors.
int esm2_save_dir(const esm2_model_t *m, const char *dir, ps_err_t *err);

// ---- tokens --------------------------------------------------------------------------------
typedef enum { ESM2_UNKNOWN_ERROR = 0, ESM2_UNKNOWN_UNK = 1 } esm2_unknown_t;
// Letters outside the alphabet (J, lowercase, digits, '*'): ESM2_UNKNOWN_ERROR fails naming the
// sequence and the 1-based position; ESM2_UNKNOWN_UNK maps them to <unk> as the Hugging Face
// tokenizer does. tokens gets BOS, min(len, max_residues) residues, EOS (room: max_residues + 2).
// Returns the number of tokens or <0.
int esm2_tokenize(const esm2_config_t *c, const char *id, const char *seq, size_t len, size_t max_residues,
                  esm2_unknown_t unk, int32_t *tokens, ps_err_t *err);

// ---- forward -------------------------------------------------------------------------------
// Precision of the projections (Q/K/V, output, feed-forward; a workspace's setting): float32 (cblas_sgemm), or bfloat16
// weights and activations with float32 accumulation and float32 everywhere else (LayerNorm,
// softmax, residual stream). BF16 needs AVX512_BF16 (esm2_bf16_supported); elsewhere it runs as
// float32. Accuracy of BF16 on esm2-tiny and the 35M shape: docs/benchmarks.md (ESM2).
typedef enum { ESM2_PREC_F32 = 0, ESM2_PREC_BF16 = 1 } esm2_prec_t;
int esm2_bf16_supported(void);   // 1 when BF16 runs as such on this CPU
// Make the weights precision needs (BF16: bf16 copies of the projection weights, +2 bytes a
// parameter) now, e.g. right after esm2_load; else the first forward in that precision does it.
// Thread-safe. No-op for F32 or without AVX512_BF16. 0 or PS_ENOMEM.
int esm2_prepare(const esm2_model_t *m, esm2_prec_t precision, ps_err_t *err);

typedef struct esm2_request {
  const int *layers;   // representation layers wanted, 0 .. n_layers (any order, no duplicates)
  int n_layers;
  int residue;         // per-residue rows
  int mean;            // mean over residues
  int logits;          // N x vocab (BOS/EOS included); needs lm_head
} esm2_request_t;

typedef struct esm2_ws esm2_ws_t;
// A workspace: buffers grow to the largest batch seen; nthreads (<= 0: 1) pool threads run
// everything: the projections as row blocks of single-threaded sgemms, the attention as
// (sequence, head) tasks, the element-wise work as row ranges. Sets OpenBLAS to one thread
// (process-wide) so it never competes with the pool. Results do not depend on nthreads in
// practice (each row is computed by the same kernels), but that is not guaranteed.
esm2_ws_t *esm2_ws_new(int nthreads);
void esm2_ws_destroy(esm2_ws_t **ws);   // accepts NULL
// Precision of the workspace's forwards (default ESM2_PREC_F32); BF16 runs as F32 without
// AVX512_BF16.
void esm2_ws_set_precision(esm2_ws_t *ws, esm2_prec_t precision);

// tokens: n_seqs sequences packed back to back, n_tokens[b] each (BOS ... EOS, >= 2).
// Stops after the deepest layer needed (all layers for logits). 0 or <0.
int esm2_forward(const esm2_model_t *m, esm2_ws_t *ws, const int32_t *tokens, const int *n_tokens, int n_seqs,
                 const esm2_request_t *req, ps_err_t *err);
// Seconds the workspace's forwards spent in each phase so far (benchmarks): ESM2_PHASE_N values,
// named by esm2_phase_name.
enum {
  ESM2_PHASE_EMBED, ESM2_PHASE_LAYERNORM, ESM2_PHASE_QKV, ESM2_PHASE_ROTARY, ESM2_PHASE_ATTENTION, ESM2_PHASE_OUT,
  ESM2_PHASE_FF1, ESM2_PHASE_GELU, ESM2_PHASE_FF2, ESM2_PHASE_CAPTURE, ESM2_PHASE_N
};
const double *esm2_ws_phase_seconds(const esm2_ws_t *ws);
const char *esm2_phase_name(int phase);
// Results of the last forward, borrowed until the next one (NULL when not requested).
// Sequence b, request layer slot i (index into req->layers): residue rows ((n_tokens[b]-2) x D),
// mean (D), logits (n_tokens[b] x vocab).
const float *esm2_out_residue(const esm2_ws_t *ws, int slot, int b);
const float *esm2_out_mean(const esm2_ws_t *ws, int slot, int b);
const float *esm2_out_logits(const esm2_ws_t *ws, int b);

// ---- FASTA runner ---------------------------------------------------------------------------
// Reads a FASTA, tokenizes, sorts by length within windows of `sort_window` sequences (ties: file
// order), cuts batches of at most `tokens_per_batch` tokens (a longer sequence goes alone) and
// runs the forward. Items come in that (deterministic) order: shortest first within a window.
// Sequences longer than max_residues (default 1022) are truncated to their first max_residues
// residues (as ESM's extract.py) and counted, or are an error naming the sequence.
// Memory: one window of sequences + one batch (workspace above).
typedef enum { ESM2_LONG_TRUNCATE = 0, ESM2_LONG_ERROR = 1 } esm2_long_t;

typedef struct esm2_run_opts {
  const char *fasta_path;
  esm2_request_t req;
  uint32_t tokens_per_batch;   // default 4096
  uint32_t sort_window;        // default 4096 sequences; 1 keeps the file order
  uint32_t max_residues;       // default 1022
  esm2_long_t long_policy;
  esm2_unknown_t unknown;
  int threads;                 // default 1
  // Records left out (fasta_check.h's skip_index): strictly ascending 0-based FASTA record
  // indexes, borrowed for the runner's life; NULL = none. They are never tokenized nor checked
  // (an empty or over-long one costs nothing); items keep their real fasta_index.
  const uint64_t *skip_index;
  size_t n_skip_index;
  esm2_prec_t precision;       // default ESM2_PREC_F32 (esm2_ws_set_precision)
} esm2_run_opts_t;

typedef struct esm2_item {
  const char *id;              // borrowed until the next call
  uint64_t index;              // position in the output order
  uint64_t fasta_index;        // record number in the FASTA
  uint32_t n_residues;         // rows (after truncation)
  uint32_t seq_len;            // residues in the FASTA
  const float *const *residue; // [slot] -> n_residues x D, or NULL entries
  const float *const *mean;    // [slot] -> D
  const float *logits;         // (n_residues + 2) x vocab, or NULL
} esm2_item_t;

typedef struct esm2_runner esm2_runner_t;
// m is borrowed for the runner's life. Caller destroys.
int esm2_runner_new(esm2_runner_t **out, const esm2_model_t *m, const esm2_run_opts_t *o, ps_err_t *err);
void esm2_runner_destroy(esm2_runner_t **r);   // accepts NULL
// 1 = item, 0 = end, <0 = error (names the FASTA and the sequence).
int esm2_runner_next(esm2_runner_t *r, esm2_item_t *it, ps_err_t *err);
// Skip n items without running the model for whole batches that are skipped. 0 or <0.
int esm2_runner_skip(esm2_runner_t *r, uint64_t n, ps_err_t *err);
uint64_t esm2_runner_truncated(const esm2_runner_t *r);
uint64_t esm2_runner_skipped(const esm2_runner_t *r);  // records left out by skip_index so far
uint64_t esm2_runner_tokens(const esm2_runner_t *r);   // tokens run through the model so far

// The alphabet of a checkpoint without vocab_list (the ESM-1b one, ESM2's): letter_id[byte] is
// the token of a single-letter token, -1 otherwise (as esm2_config(m)->letter_id). For
// fasta_check.h without a model (precomputed embeddings).
void esm2_default_alphabet(int8_t letter_id[256]);

// Parse "5,6" / "all" / "last" / "-1" into layers (caller frees *out). 0 or PS_ECONFIG.
int esm2_parse_layers(const char *s, int n_layers, int **out, int *n, ps_err_t *err);

// ---- embedding source (reader) -------------------------------------------------------------
// An emb_source (emb.h) over a runner: records in the runner's order, rows of request layer
// slot 0 (per residue, or the mean at protein level). With want_target, *tgt is a second source
// yielding slot 1 of the same records (transcoders: layers L and L+1 from one forward); it must
// be read right after *src for each record and destroyed with or after it (skip on it is a
// no-op: the shared runner moves with *src). o->req gets residue / mean set from level.
// m is borrowed. Caller destroys both.
int esm2_source_open(emb_source_t **src, emb_source_t **tgt, const esm2_model_t *m, const esm2_run_opts_t *o,
                     emb_level_t level, int allow_nonfinite, ps_err_t *err);
// Tokens the source's runner has run through the model (esm2_runner_tokens); src from esm2_source_open.
uint64_t esm2_source_tokens(const emb_source_t *src);

#endif
