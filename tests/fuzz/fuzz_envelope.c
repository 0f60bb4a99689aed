// fuzz_envelope — arbitrary bytes as a wire message: wire_decode must drop (and count) what it
// cannot read and never crash; what it accepts must pass the batch consistency checks.
#include <stdint.h>
#include <stdlib.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wire_stats_t st = {0};
  Protsae__Envelope *env = NULL;
  int got = wire_decode(data, size, &env, &st);
  if (got) {
    if (env->body_case == PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH &&
        wire_check_embedding_batch(env->embedding_batch, NULL) != 0)
      abort();
    if (env->body_case == PROTSAE__ENVELOPE__BODY_FEATURE_BATCH &&
        wire_check_feature_batch(env->feature_batch, NULL) != 0)
      abort();
    if (env->body_case == PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH) {  // touch every row byte
      volatile uint8_t acc = 0;
      const Protsae__EmbeddingBatch *b = env->embedding_batch;
      for (size_t i = 0; i < b->rows.len; i++) acc ^= b->rows.data[i];
      (void)acc;
    }
    wire_free(&env);
  } else if (st.dropped_malformed + st.dropped_version + st.dropped_empty != 1) {
    abort();
  }
  return 0;
}
