// report_residue.h — residue-level feature cards: a feature's top proteins with its activations
// along their sequences, from the store's top list (fs_feat_t) and residue codes (fs_rcode_get),
// the sequences from the FASTA the run used. As HTML (protsae report: coloured spans, the
// activation as background intensity, a title tooltip) and as text (protsae feature N).
#ifndef PS_CLI_REPORT_RESIDUE_H
#define PS_CLI_REPORT_RESIDUE_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "featstore.h"
#include "strmap.h"

// Sequences of some proteins (plain struct, the caller's: rr_seqs_free).
typedef struct rr_seqs {
  strmap_t *idx;  // id -> index
  char **seq;
  size_t n;
} rr_seqs_t;

// The sequences of the n ids (duplicates allowed) from the FASTA at path (plain or gzip),
// streamed: memory is the wanted sequences only. An id the FASTA lacks is left out. 0 or <0 with
// err naming the file.
int rr_seqs_load(rr_seqs_t *s, const char *fasta, const char *const *ids, size_t n, ps_err_t *err);
void rr_seqs_free(rr_seqs_t *s);
const char *rr_seq(const rr_seqs_t *s, const char *id);  // NULL when not loaded; borrowed

// HTML-escape s onto o.
void rr_html_esc(FILE *o, const char *s);
// seq with the residues at pos[0..n) (0-based) highlighted: one <span> a highlighted residue,
// background alpha from val / vmax, title "<aa><1-based pos>: <value>"; everything escaped.
void rr_sequence_html(FILE *o, const char *seq, const uint32_t *pos, const float *val, size_t n, float vmax);

// The residue part of feature's card: its first max_prot distinct top proteins (f: the loaded
// feature), each with its sequence highlighted from its residue code. html: as HTML (spans);
// else as text: per protein its highlighted residues (aa, 1-based position, value) and the
// sequence around the maximum with them in [brackets]. Proteins without a residue code or a
// sequence are said so. First the feature's best residue concept (fs_concept_get) when the store
// has one. 0 or <0 with err (a store read failed).
int rr_card(FILE *o, int html, fs_t *fs, uint32_t feature, const fs_feat_t *f, const rr_seqs_t *s, uint32_t max_prot,
            ps_err_t *err);

#endif
