// replay.h — re-sending batches by seq number, for a ResendRequest from the last stage.
//
// The reader's batches are a pure function of the stream position (reader.h), so a batch is
// re-made by seeking a second reader to the position it started at. replay_note records that
// position for each batch sent (16 bytes a batch: 16 MB for a million batches); replay_batch
// re-reads one. Batches sent by an earlier process (before a --resume) are not known here.
#ifndef PS_REPLAY_H
#define PS_REPLAY_H

#include <stdint.h>

#include "reader.h"

typedef struct replay replay_t;

// opts is borrowed (must outlive the replay). first_seq: seq of the first batch this process sends.
replay_t *replay_new(const reader_opts_t *opts, uint64_t first_seq);
void replay_destroy(replay_t **r);
// Batch `seq` starts at *pos.
void replay_note(replay_t *r, uint64_t seq, const reader_pos_t *pos);
// Re-read batch seq into *b (borrowed until the next call): 1 = done, 0 = seq unknown here, <0 error.
int replay_batch(replay_t *r, uint64_t seq, reader_batch_t *b, ps_err_t *err);

#endif
