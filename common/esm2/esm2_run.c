// esm2_run.c — FASTA -> length-sorted, token-budgeted batches -> ESM2 forward. See esm2.h.
#include <stdlib.h>
#include <string.h>

#include "esm2.h"
#include "esm2_priv.h"
#include "fasta.h"
#include "log.h"

typedef struct win_seq {
  char *id;
  uint8_t *tok;          // token ids (vocab <= 64), BOS/EOS included
  int n_tok;
  uint32_t seq_len;
  uint64_t fasta_index;
} win_seq_t;

typedef struct order_ent {
  int n_tok;
  uint32_t i;            // index in the window
} order_ent_t;

struct esm2_runner {
  const esm2_model_t *m;
  esm2_run_opts_t o;
  int layers[64];
  fasta_reader_t *fa;
  int fasta_done;
  esm2_ws_t *ws;
  win_seq_t *win;
  order_ent_t *order;
  size_t n_win, win_pos;
  size_t batch_begin, batch_n, batch_cur;
  int batch_run;         // the current batch went through the model
  int32_t *btok;
  int *bnt;
  size_t cap_btok, cap_bnt;
  int32_t *tokbuf;       // max_residues + 2
  uint64_t index, skip_left, truncated, tokens;
  size_t skip_pos;       // next entry of o.skip_index
  uint64_t skipped;      // records left out by it
  const float *res_ptr[64], *mean_ptr[64];
};

static void free_window(esm2_runner_t *r) {
  for (size_t i = 0; i < r->n_win; i++) {
    free(r->win[i].id);
    free(r->win[i].tok);
  }
  r->n_win = r->win_pos = 0;
}

void esm2_runner_destroy(esm2_runner_t **rp) {
  if (!rp || !*rp) return;
  esm2_runner_t *r = *rp;
  free_window(r);
  free(r->win);
  free(r->order);
  free(r->btok);
  free(r->bnt);
  free(r->tokbuf);
  fasta_close(&r->fa);
  esm2_ws_destroy(&r->ws);
  free(r);
  *rp = NULL;
}

int esm2_runner_new(esm2_runner_t **out, const esm2_model_t *m, const esm2_run_opts_t *o, ps_err_t *err) {
  *out = NULL;
  const esm2_config_t *c = esm2_config(m);
  if (!o->fasta_path) return ps_err_set(err, PS_ECONFIG, "esm2: no FASTA given");
  if (o->req.n_layers < 1 || o->req.n_layers > 64)
    return ps_err_set(err, PS_ECONFIG, "esm2: between 1 and 64 layers, not %d", o->req.n_layers);
  if (o->req.logits && !c->has_lm_head)
    return ps_err_set(err, PS_ENOTFOUND, "esm2: logits asked but the checkpoint has no lm_head");
  for (int i = 0; i < o->req.n_layers; i++)
    if (o->req.layers[i] < 0 || o->req.layers[i] > c->n_layers)
      return ps_err_set(err, PS_ECONFIG, "esm2: layer %d is outside 0..%d", o->req.layers[i], c->n_layers);
  for (size_t i = 1; i < o->n_skip_index; i++)
    if (o->skip_index[i] <= o->skip_index[i - 1])
      return ps_err_set(err, PS_ECONFIG, "esm2: skip_index not strictly ascending at entry %zu (%llu after %llu)", i,
                        (unsigned long long)o->skip_index[i], (unsigned long long)o->skip_index[i - 1]);
  esm2_runner_t *r = ps_xcalloc(1, sizeof *r);
  r->m = m;
  r->o = *o;
  memcpy(r->layers, o->req.layers, (size_t)o->req.n_layers * sizeof(int));
  r->o.req.layers = r->layers;
  if (!r->o.tokens_per_batch) r->o.tokens_per_batch = 4096;
  if (!r->o.sort_window) r->o.sort_window = 4096;
  if (!r->o.max_residues) r->o.max_residues = 1022;
  if (!r->o.threads) r->o.threads = 1;
  r->win = ps_xcalloc(r->o.sort_window, sizeof *r->win);
  r->order = ps_xcalloc(r->o.sort_window, sizeof *r->order);
  r->tokbuf = ps_xmalloc(((size_t)r->o.max_residues + 2) * sizeof(int32_t));
  int rc = fasta_open(&r->fa, o->fasta_path, err);
  if (rc < 0) {
    esm2_runner_destroy(&r);
    return rc;
  }
  r->ws = esm2_ws_new(r->o.threads);
  esm2_ws_set_precision(r->ws, r->o.precision);
  *out = r;
  return 0;
}

uint64_t esm2_runner_truncated(const esm2_runner_t *r) { return r->truncated; }
uint64_t esm2_runner_skipped(const esm2_runner_t *r) { return r->skipped; }

void esm2_default_alphabet(int8_t letter_id[256]) {
  esm2_config_t c = {0};
  esm2_set_vocab(&c, esm2_default_vocab, 33);
  memcpy(letter_id, c.letter_id, sizeof c.letter_id);
}

// 1 when record `index` is in o.skip_index (records come in file order: a cursor suffices).
static int skip_record(esm2_runner_t *r, uint64_t index) {
  while (r->skip_pos < r->o.n_skip_index && r->o.skip_index[r->skip_pos] < index) r->skip_pos++;
  if (r->skip_pos < r->o.n_skip_index && r->o.skip_index[r->skip_pos] == index) {
    r->skipped++;
    return 1;
  }
  return 0;
}
uint64_t esm2_runner_tokens(const esm2_runner_t *r) { return r->tokens; }

static int cmp_order(const void *a, const void *b) {
  const order_ent_t *x = a, *y = b;
  if (x->n_tok != y->n_tok) return x->n_tok < y->n_tok ? -1 : 1;
  return x->i < y->i ? -1 : (x->i > y->i);
}

// Read the next window: 1, 0 at the end of the FASTA, <0.
static int fill_window(esm2_runner_t *r, ps_err_t *err) {
  free_window(r);
  if (r->fasta_done) return 0;
  const esm2_config_t *c = esm2_config(r->m);
  fasta_record_t rec;
  int rc = 0;
  while (r->n_win < r->o.sort_window && (rc = fasta_next(r->fa, &rec, err)) > 0) {
    if (skip_record(r, rec.index)) continue;
    if (rec.len == 0)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: sequence '%s' is empty", r->o.fasta_path,
                        (unsigned long long)rec.line, rec.id);
    if (rec.len > r->o.max_residues) {
      if (r->o.long_policy == ESM2_LONG_ERROR)
        return ps_err_set(err, PS_EDIM,
                          "%s: line %llu: sequence '%s' has %zu residues, more than max-residues %u "
                          "(set long=truncate to keep the first %u as ESM does)",
                          r->o.fasta_path, (unsigned long long)rec.line, rec.id, rec.len, r->o.max_residues,
                          r->o.max_residues);
      if (r->truncated++ < 5)
        PS_WARN("esm2: sequence '%s' truncated from %zu to %u residues", rec.id, rec.len, r->o.max_residues);
    }
    int n = esm2_tokenize(c, rec.id, rec.seq, rec.len, r->o.max_residues, r->o.unknown, r->tokbuf, err);
    if (n < 0) return ps_err_prefix(err, "%s: line %llu: ", r->o.fasta_path, (unsigned long long)rec.line);
    win_seq_t *w = &r->win[r->n_win];
    w->id = ps_xstrdup(rec.id);
    w->tok = ps_xmalloc((size_t)n);
    for (int i = 0; i < n; i++) w->tok[i] = (uint8_t)r->tokbuf[i];
    w->n_tok = n;
    w->seq_len = (uint32_t)rec.len;
    w->fasta_index = rec.index;
    r->order[r->n_win].n_tok = n;
    r->order[r->n_win].i = (uint32_t)r->n_win;
    r->n_win++;
  }
  if (rc < 0) return rc;
  if (r->n_win < r->o.sort_window) r->fasta_done = 1;
  if (!r->n_win) return 0;
  qsort(r->order, r->n_win, sizeof *r->order, cmp_order);
  r->win_pos = 0;
  return 1;
}

static int run_batch(esm2_runner_t *r, ps_err_t *err) {
  size_t ntok = 0;
  for (size_t k = 0; k < r->batch_n; k++) ntok += (size_t)r->order[r->batch_begin + k].n_tok;
  if (ntok > r->cap_btok) {
    r->btok = ps_xrealloc(r->btok, ntok * sizeof(int32_t));
    r->cap_btok = ntok;
  }
  if (r->batch_n > r->cap_bnt) {
    r->bnt = ps_xrealloc(r->bnt, r->batch_n * sizeof(int));
    r->cap_bnt = r->batch_n;
  }
  size_t p = 0;
  for (size_t k = 0; k < r->batch_n; k++) {
    const win_seq_t *w = &r->win[r->order[r->batch_begin + k].i];
    for (int t = 0; t < w->n_tok; t++) r->btok[p++] = w->tok[t];
    r->bnt[k] = w->n_tok;
  }
  int rc = esm2_forward(r->m, r->ws, r->btok, r->bnt, (int)r->batch_n, &r->o.req, err);
  if (rc < 0) return rc;
  r->tokens += ntok;
  return 0;
}

int esm2_runner_next(esm2_runner_t *r, esm2_item_t *it, ps_err_t *err) {
  for (;;) {
    if (r->batch_cur < r->batch_n) {
      if (!r->batch_run) {
        int rc = run_batch(r, err);
        if (rc < 0) return rc;
        r->batch_run = 1;
      }
      if (r->skip_left) {
        uint64_t k = r->batch_n - r->batch_cur;
        if (k > r->skip_left) k = r->skip_left;
        r->batch_cur += k;
        r->index += k;
        r->skip_left -= k;
        continue;
      }
      size_t k = r->batch_cur;
      const win_seq_t *w = &r->win[r->order[r->batch_begin + k].i];
      memset(it, 0, sizeof *it);
      it->id = w->id;
      it->index = r->index;
      it->fasta_index = w->fasta_index;
      it->n_residues = (uint32_t)w->n_tok - 2;
      it->seq_len = w->seq_len;
      for (int s = 0; s < r->o.req.n_layers; s++) {
        r->res_ptr[s] = esm2_out_residue(r->ws, s, (int)k);
        r->mean_ptr[s] = esm2_out_mean(r->ws, s, (int)k);
      }
      it->residue = r->res_ptr;
      it->mean = r->mean_ptr;
      it->logits = esm2_out_logits(r->ws, (int)k);
      r->batch_cur++;
      r->index++;
      return 1;
    }
    if (r->win_pos >= r->n_win) {
      int rc = fill_window(r, err);
      if (rc <= 0) return rc;
    }
    // next batch: sorted sequences while the token budget holds (a longer one goes alone)
    size_t start = r->win_pos, tok = 0;
    while (r->win_pos < r->n_win &&
           (r->win_pos == start || tok + (size_t)r->order[r->win_pos].n_tok <= r->o.tokens_per_batch)) {
      tok += (size_t)r->order[r->win_pos].n_tok;
      r->win_pos++;
    }
    r->batch_begin = start;
    r->batch_n = r->win_pos - start;
    r->batch_cur = 0;
    r->batch_run = 0;
    if (r->skip_left >= r->batch_n) {  // skipped whole: no forward
      r->skip_left -= r->batch_n;
      r->index += r->batch_n;
      r->batch_cur = r->batch_n;
    }
  }
}

int esm2_runner_skip(esm2_runner_t *r, uint64_t n, ps_err_t *err) {
  r->skip_left += n;
  return 0;
}
