// split.h — a FeatureBatch cut by feature range into one batch per shard (the front scorer's
// router, --shards N): shard k gets every row and every protein of the batch, with only the
// entries whose feature is in [lo_k, hi_k) (fs_shard_range), in their order; residue-level
// batches are cut in their residue codes and their pooled codes alike. Every other field is
// shared with the input (ids, offsets, seq, producer...), so a shard applies the batch exactly
// as one scorer would, restricted to its features.
// Memory: one copy of the batch's entries (indices + values + indptr) over all shards, reused
// from call to call.
#ifndef PS_SCORER_SPLIT_H
#define PS_SCORER_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "protsae.pb-c.h"

typedef struct fb_split fb_split_t;

fb_split_t *fb_split_new(uint32_t n_shards);
void fb_split_destroy(fb_split_t **s);
// Cut fb (checked by wire_check_feature_batch; residue batches carry pooled codes). The returned
// batches (n_shards of them) borrow from fb and from s: valid until the next call or destroy.
// <0 when an entry names a feature >= n_features or the pooled CSR is inconsistent (err says where).
int fb_split_run(fb_split_t *s, const Protsae__FeatureBatch *fb, Protsae__FeatureBatch **out, ps_err_t *err);

#endif
