// report_residue.c — residue-level feature cards (report_residue.h): a feature's top proteins
// with its activations along their sequences, as HTML spans (protsae report) and as text
// (protsae feature N). The activations come from the store's residue codes: per protein and
// active feature its top residues (the scorer's --residue-top), so a card shows those residues;
// the rest of the sequence is plain. Above them, the feature's best residue concept when the
// scorer's concept analysis stored one.
#include <stdlib.h>
#include <string.h>

#include "fasta.h"
#include "report_residue.h"

int rr_seqs_load(rr_seqs_t *s, const char *fasta, const char *const *ids, size_t n, ps_err_t *err) {
  memset(s, 0, sizeof *s);
  s->idx = strmap_new(n * 2 + 1);
  strmap_t *want = strmap_new(n * 2 + 1);
  for (size_t i = 0; i < n; i++) strmap_put(want, ids[i], 0);
  s->seq = ps_xcalloc(strmap_size(want) + 1, sizeof *s->seq);
  fasta_reader_t *fr = NULL;
  fasta_record_t r;
  int rc = fasta_open(&fr, fasta, err);
  while (rc >= 0 && s->n < strmap_size(want) && (rc = fasta_next(fr, &r, err)) > 0)
    if (strmap_get(want, r.id, NULL) && strmap_put(s->idx, r.id, s->n) == 1) s->seq[s->n++] = ps_xstrdup(r.seq);
  fasta_close(&fr);
  strmap_destroy(&want);
  return rc < 0 ? rc : 0;
}

void rr_seqs_free(rr_seqs_t *s) {
  for (size_t i = 0; i < s->n; i++) free(s->seq[i]);
  free(s->seq);
  strmap_destroy(&s->idx);
  memset(s, 0, sizeof *s);
}

const char *rr_seq(const rr_seqs_t *s, const char *id) {
  uint64_t i;
  return s->idx && strmap_get(s->idx, id, &i) ? s->seq[i] : NULL;
}

void rr_html_esc(FILE *o, const char *s) {
  for (; s && *s; s++) {
    if (*s == '<') fputs("&lt;", o);
    else if (*s == '>') fputs("&gt;", o);
    else if (*s == '&') fputs("&amp;", o);
    else if (*s == '"') fputs("&quot;", o);
    else if (*s == '\'') fputs("&#39;", o);
    else fputc(*s, o);
  }
}

void rr_sequence_html(FILE *o, const char *seq, const uint32_t *pos, const float *val, size_t n, float vmax) {
  size_t len = strlen(seq), k = 0;
  char aa[2] = {0, 0};
  for (size_t r = 0; r < len; r++) {
    aa[0] = seq[r];
    while (k < n && pos[k] < r) k++;  // pos ascends
    if (k < n && pos[k] == r && val[k] > 0) {
      double a = vmax > 0 ? 0.15 + 0.85 * (double)val[k] / (double)vmax : 1.0;
      fprintf(o, "<span class=hl style='background:rgba(208,88,42,%.2f)' title='", a > 1 ? 1.0 : a);
      rr_html_esc(o, aa);
      fprintf(o, "%zu: %.3g'>", r + 1, (double)val[k]);
      rr_html_esc(o, aa);
      fputs("</span>", o);
    } else {
      rr_html_esc(o, aa);
    }
  }
}

// The entries of feature in rc: [*lo, *hi) (entries sorted by feature, then position).
static void feature_range(const fs_rcode_t *rc, uint32_t feature, uint32_t *lo, uint32_t *hi) {
  uint32_t a = 0, b = rc->n;
  while (a < b) {
    uint32_t m = a + (b - a) / 2;
    if (rc->feat[m] < feature) a = m + 1;
    else b = m;
  }
  *lo = a;
  while (a < rc->n && rc->feat[a] == feature) a++;
  *hi = a;
}

typedef int (*rr_emit_fn)(FILE *o, const char *id, const char *seq, const fs_top_t *t, const uint32_t *pos,
                          const float *val, size_t n, float vmax);

// Each of the first max_prot distinct top proteins of f: its residue code's entries for feature, to emit.
static int each_protein(FILE *o, fs_t *fs, uint32_t feature, const fs_feat_t *f, const rr_seqs_t *s, uint32_t max_prot,
                        rr_emit_fn emit, ps_err_t *err) {
  uint32_t shown = 0;
  float vmax = f->res_max > 0 ? f->res_max : f->max;
  for (uint32_t i = 0; i < f->n_top && shown < max_prot; i++) {
    int seen = 0;
    for (uint32_t j = 0; j < i && !seen; j++) seen = !strcmp(f->top[j].id, f->top[i].id);
    if (seen) continue;
    shown++;
    fs_rcode_t rc;
    void *owned = NULL;
    int got = fs_rcode_get(fs, f->top[i].id, &rc, &owned, err);
    if (got < 0) return got;
    uint32_t lo = 0, hi = 0;
    if (got) feature_range(&rc, feature, &lo, &hi);
    emit(o, f->top[i].id, rr_seq(s, f->top[i].id), &f->top[i], got ? rc.pos + lo : NULL, got ? rc.val + lo : NULL,
         hi - lo, vmax);
    free(owned);
  }
  return 0;
}

static int emit_html(FILE *o, const char *id, const char *seq, const fs_top_t *t, const uint32_t *pos, const float *val,
                     size_t n, float vmax) {
  fputs("<div class=rseq><b>", o);
  rr_html_esc(o, id);
  fprintf(o, "</b> <span class=muted>max %.3g", (double)t->value);
  if (t->pos != FS_POS_NONE) fprintf(o, " at residue %u", t->pos + 1);
  fprintf(o, "; %zu residue%s highlighted</span><br>", n, n == 1 ? "" : "s");
  if (!seq) fputs("<span class=muted>(sequence not in the FASTA)</span>", o);
  else if (!pos) fputs("<span class=muted>(no residue code in the store)</span>", o);
  else rr_sequence_html(o, seq, pos, val, n, vmax);
  fputs("</div>", o);
  return 0;
}

static int emit_text(FILE *o, const char *id, const char *seq, const fs_top_t *t, const uint32_t *pos, const float *val,
                     size_t n, float vmax) {
  (void)vmax;
  size_t len = seq ? strlen(seq) : 0;
  fprintf(o, "  %-12s", id);
  if (!pos) {
    fputs(" (no residue code in the store)\n", o);
    return 0;
  }
  for (size_t k = 0; k < n; k++)
    fprintf(o, " %c%u %.3g", pos[k] < len ? seq[pos[k]] : '?', pos[k] + 1, (double)val[k]);
  fputc('\n', o);
  if (!seq) {
    fputs("               (sequence not in the FASTA)\n", o);
    return 0;
  }
  size_t c = t->pos != FS_POS_NONE && t->pos < len ? t->pos : n ? pos[0] : 0;
  size_t a = c > 20 ? c - 20 : 0, b = c + 21 < len ? c + 21 : len, k = 0;
  fprintf(o, "               %zu %s", a + 1, a ? "..." : "");
  for (size_t r = a; r < b; r++) {
    while (k < n && pos[k] < r) k++;
    if (k < n && pos[k] == r) fprintf(o, "[%c]", seq[r]);
    else fputc(seq[r], o);
  }
  fprintf(o, "%s %zu\n", b < len ? "..." : "", b);
  return 0;
}

int rr_card(FILE *o, int html, fs_t *fs, uint32_t feature, const fs_feat_t *f, const rr_seqs_t *s, uint32_t max_prot,
            ps_err_t *err) {
  fs_concept_t c;
  int got = fs_concept_get(fs, feature, &c, err);
  if (got < 0) return got;
  if (got) {  // the concept analysis' best for this feature
    fputs(html ? "<p>best residue concept: <b>" : "\n  best residue concept: ", o);
    if (html) rr_html_esc(o, c.concept);
    else fputs(c.concept ? c.concept : "", o);
    fprintf(o, "%s F1 %.3f (precision %.3f, recall %.3f, at %.2f of the feature's max; %u of %u instances)%s",
            html ? "</b>" : "", c.f1, c.precision, c.recall, c.threshold, c.found, c.instances, html ? "</p>" : "\n");
    fs_concept_free(&c);
  }
  fputs(html ? "<p class=muted>Activations along the top proteins' sequences (their top residues; darker = stronger; "
               "hover for position and value).</p>"
             : "\n  activations along the top proteins (their top residues: aa, 1-based position, value; [x] in "
               "the sequence)\n", o);
  return each_protein(o, fs, feature, f, s, max_prot, html ? emit_html : emit_text, err);
}
