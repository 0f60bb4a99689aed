// fuzz_concept — arbitrary bytes as residue concept annotations (common/concept/concept.h): the
// first byte picks the UniProt flat-file parser (even) or the TSV parser (odd), the rest is the
// file. A parse must succeed or fail with an error naming the input, never crash; what it keeps
// must be well formed (1-based positions turned 0-based, spans ascending, names non-empty) and
// every protein's annotations then go through the concept F1 accumulator on a 40-residue code
// (annotations past it dropped) without a crash.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "concept.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  concept_set_t *s = concept_set_new();
  ps_lines_t *r = ps_lines_open_mem(data + 1, size - 1, "fuzz-input", 1 << 16);
  ps_err_t err = {0};
  concept_load_stats_t st = {0};
  int rc = data[0] & 1 ? concept_tsv_read(s, r, &st, &err) : concept_flat_read(s, r, &st, &err);
  ps_lines_close(&r);
  if (rc < 0 && !strstr(err.msg, "fuzz-input")) abort();
  if (rc == 0 && st.kept != concept_set_n_annotations(s)) abort();
  uint32_t feat[40], pos[40];
  float val[40], fmax[2] = {1.0f, 0.0f};
  for (uint32_t i = 0; i < 40; i++) feat[i] = 0, pos[i] = i, val[i] = (float)(i % 7) / 6.0f;
  concept_f1_opts_t o;
  concept_f1_opts_default(&o);
  o.min_instances = 1;
  concept_f1_t *acc = concept_f1_new(s, 2, fmax, &o);
  for (uint32_t p = 0; p < concept_set_n_proteins(s); p++) {
    size_t n;
    const concept_ann_t *a = concept_set_anns(s, p, &n);
    for (size_t i = 0; i < n; i++) {
      const char *nm = concept_set_name(s, a[i].concept);
      if (!nm || !nm[0] || (!a[i].pair && a[i].a > a[i].b) || (a[i].pair && a[i].a >= a[i].b)) abort();
    }
    fs_rcode_t rc40 = {40, 40, feat, pos, val};
    if (concept_f1_add(acc, concept_set_protein_id(s, p), &rc40, &err) != 1) abort();
  }
  concept_f1_best_t *best = NULL;
  size_t nb = 0;
  concept_f1_summary_t sum;
  concept_f1_finish(acc, &best, &nb, &sum);
  for (size_t i = 0; i < nb; i++)
    if (!(best[i].f1 >= 0 && best[i].f1 <= 1) || !(best[i].precision > 0 && best[i].precision <= 1)) abort();
  free(best);
  concept_f1_destroy(&acc);
  concept_set_destroy(&s);
  return 0;
}
