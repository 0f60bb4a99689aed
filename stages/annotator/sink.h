// sink.h — the annotation sink's logic (issue 17): FeatureBatches and EndOfStreams of proteome
// streams in, each proteome's annotations out once it is complete, exactly once.
//
// A proteome K ("NAME.HASH") is one stream: batches with seqs [0, n), then an EndOfStream whose
// source_next_seq (batches_sent when not relayed) is n. Each accepted batch is staged in the
// annotation store's staging family (stage.h) in one commit: its seq (the dedup key) and one
// record per protein keyed by its FASTA record number (source_index). A batch already staged is
// dropped and counted. Nothing of a proteome is held in memory: per proteome in flight a few
// counters (staged batches, highest seq, its end), rebuilt from the store at open.
//
// K complete (end known, every seq staged): its proteins are read back in FASTA order and written
// through the annotation engine (annot_protein) to OUT/.tmp/K.tsv, K.jsonl (+ K.eval.txt with a
// truth), fsynced, renamed to OUT/NAME.tsv, NAME.jsonl (NAME.eval.txt) and the directory fsynced;
// then the result (annstore.h) and the removal of K's staging are one synced commit; then
// `send(producer, K, finished=1)`. A kill at any point redoes at most the last step from the
// staged state, and the output depends on the staged codes only: the same bytes.
// An EndOfStream with reason "error: ..." records K as failed (its staging dropped) and acks it.
// K already has a result: its batches and ends are dropped (counted as duplicates) and the ack is
// sent again (on its EndOfStream and on its batch seq 0: a restarted reader re-streams what it had
// not seen acknowledged).
// Missing pieces: sink_poll, after resend_after_ms without progress on K: end known and seqs
// missing -> send(producer, K, the missing seqs (<= SINK_MAX_RESEND)); batches but no end ->
// send(producer, K, no seqs) (asks for the end again). Again every resend_after_ms.
//
// Nothing off the wire is trusted: a batch is checked (key syntax, CSR, feature ids < the
// model's, values finite and >= 0, one source_index a protein, seq < 2^32 and below a known end)
// before it changes anything; a rejected message returns PS_EPROTO and is counted.
#ifndef PS_ANNOTATOR_SINK_H
#define PS_ANNOTATOR_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "annot.h"
#include "err.h"
#include "protsae.pb-c.h"

#define SINK_MAX_RESEND 4096       // seqs asked for in one ResendRequest
#define SINK_MAX_IN_FLIGHT 4096    // proteomes staged at once (more is refused: a forged flood)
#define SINK_MAX_SEQ ((uint64_t)1 << 32)

typedef struct sink_opts {       // strings copied at open; model and truth borrowed
  const char *state;               // annotation store directory (annstore.h), created when missing
  const char *out;                 // output directory, created when missing
  annot_model_t *model;            // borrowed: the feature store's enrichment + explanations
  const go_annotations_t *truth;   // borrowed, NULL = no evaluation (NAME.eval.txt)
  int64_t resend_after_ms;         // 10000
  int sync;                        // fsync the WAL at each staged batch (results are always synced)
} sink_opts_t;

// Control messages go out through this: a ResendRequest{producer, proteome, seqs, finished}.
typedef void (*sink_send_fn)(void *ctx, const char *producer, const char *proteome, const uint64_t *seqs, size_t n,
                             int finished);

typedef struct sink_counts {
  uint64_t done, failed;           // proteomes committed since open
  uint64_t proteins, residues;     // annotated (done proteomes) since open
  uint64_t staged;                 // batches staged since open
  uint64_t duplicates;             // batches (and ends) dropped: already staged, or of a committed proteome
  uint64_t rejected;               // messages refused (PS_EPROTO)
  uint64_t resends;                // ResendRequests asking for pieces
  uint64_t acks;                   // finished acks sent (incl. again)
} sink_counts_t;

typedef struct sink sink_t;

int sink_open(sink_t **out, const sink_opts_t *o, sink_send_fn send, void *send_ctx, ps_err_t *err);
void sink_close(sink_t **s);
const sink_counts_t *sink_counts(const sink_t *s);
size_t sink_in_flight(const sink_t *s);

// One FeatureBatch (env_producer: the Envelope's, for messages). 1 = staged (and K finished when
// it completed it), 0 = dropped (duplicate / K committed), PS_EPROTO = rejected (err says why;
// nothing changed), other <0 = the store or the output failed (fatal: restart).
int sink_batch(sink_t *s, const Protsae__FeatureBatch *fb, int64_t now_ms, ps_err_t *err);
// One EndOfStream of a proteome. 1 = recorded (or K finished), 0 = dropped, <0 as sink_batch.
int sink_eos(sink_t *s, const Protsae__EndOfStream *e, const char *env_producer, int64_t now_ms, ps_err_t *err);
// Finish what is complete (after a restart: staged before a kill), ask for missing pieces.
// 0 or <0 (fatal).
int sink_poll(sink_t *s, int64_t now_ms, ps_err_t *err);

// K = NAME "." 16 lowercase hex digits, NAME [A-Za-z0-9_.-]{1,128} not starting with '.': 1 and
// NAME into name (cap >= 129), 0 otherwise.
int sink_key_name(const char *key, char *name, size_t cap);

#endif
