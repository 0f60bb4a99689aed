// esm2_source.c — the ESM2 runner as an embedding source (emb.h), for the embedding dataset
// (common/dataset). See esm2.h.
#include <stdlib.h>
#include <string.h>

#include "esm2.h"

typedef struct esm2_source {
  emb_source_t base;
  esm2_runner_t *run;            // owned by the primary
  struct esm2_source *primary;   // NULL for the primary, else the source it follows
  int slot, residue, have;
  esm2_item_t it;
  int dim;
} esm2_source_t;

static int fill(esm2_source_t *s, const esm2_item_t *it, emb_record_t *rec) {
  rec->id = it->id;
  rec->src_index = it->fasta_index;  // items come sorted by length: the record number in the FASTA
  rec->reordered = 1;
  rec->dim = (uint32_t)s->dim;
  rec->n_rows = s->residue ? it->n_residues : 1;
  rec->rows = s->residue ? it->residue[s->slot] : it->mean[s->slot];
  return 1;
}

static int src_next(emb_source_t *b, emb_record_t *rec, ps_err_t *err) {
  esm2_source_t *s = (esm2_source_t *)b;
  if (s->primary) {
    if (!s->primary->have) return 0;
    return fill(s, &s->primary->it, rec);
  }
  int rc = esm2_runner_next(s->run, &s->it, err);
  s->have = rc > 0;
  if (rc <= 0) return rc;
  return fill(s, &s->it, rec);
}

static int src_skip(emb_source_t *b, uint64_t n, ps_err_t *err) {
  esm2_source_t *s = (esm2_source_t *)b;
  if (s->primary) return 0;
  s->have = 0;
  return esm2_runner_skip(s->run, n, err);
}

static void src_destroy(emb_source_t *b) {
  esm2_source_t *s = (esm2_source_t *)b;
  esm2_runner_destroy(&s->run);
  free(s);
}

uint64_t esm2_source_tokens(const emb_source_t *b) {
  const esm2_source_t *s = (const esm2_source_t *)b;
  if (s->primary) s = s->primary;
  return s->run ? esm2_runner_tokens(s->run) : 0;
}

static const emb_source_vt esm2_vt = {"esm2", src_next, src_skip, src_destroy, NULL};

int esm2_source_open(emb_source_t **src, emb_source_t **tgt, const esm2_model_t *m, const esm2_run_opts_t *o,
                     emb_level_t level, int allow_nonfinite, ps_err_t *err) {
  *src = NULL;
  if (tgt) *tgt = NULL;
  if (tgt && o->req.n_layers < 2) return ps_err_set(err, PS_ECONFIG, "esm2: a target needs two layers (L and L+1)");
  esm2_run_opts_t ro = *o;
  ro.req.residue = level == EMB_LEVEL_RESIDUE;
  ro.req.mean = level == EMB_LEVEL_PROTEIN;
  ro.req.logits = 0;
  esm2_source_t *s = ps_xcalloc(1, sizeof *s);
  int rc = esm2_runner_new(&s->run, m, &ro, err);
  if (rc < 0) {
    free(s);
    return rc;
  }
  s->base.vt = &esm2_vt;
  s->base.opts.path = o->fasta_path;
  s->base.opts.level = level;
  s->base.opts.layer = o->req.layers[0];
  s->base.opts.allow_nonfinite = allow_nonfinite;
  s->residue = level == EMB_LEVEL_RESIDUE;
  s->dim = esm2_config(m)->d_model;
  *src = &s->base;
  if (tgt) {
    esm2_source_t *t = ps_xcalloc(1, sizeof *t);
    *t = *s;
    t->run = NULL;
    t->primary = s;
    t->slot = 1;
    t->base.opts.layer = o->req.layers[1];
    *tgt = &t->base;
  }
  return 0;
}
