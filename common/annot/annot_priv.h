// annot_priv.h — what the annotation engine's files share (annot_model.c: the model and its
// loading, annot_write.c: one protein's output, annot_eval.c: Fmax and the naive baseline,
// annot.c: the in-process proteome path). Not an API: callers use annot.h.
#ifndef PS_ANNOT_PRIV_H
#define PS_ANNOT_PRIV_H

#include "annot.h"

typedef struct scored {
  int32_t id;
  float v;
} scored_t;

struct annot_model {
  annot_opts_t o;
  sae_t *sae;             // NULL when loaded without an SAE (codes come from elsewhere)
  sae_enc_t *enc;
  go_ontology_t *onto;
  int64_t n_features;
  float *max_act;         // per feature (0: unknown / dead)
  int64_t *t_ptr;         // per feature CSR of closed terms
  int32_t *t_go;
  float *t_conf;
  char **expl;            // per feature explanation or NULL
  double *expl_r;         // its score (NAN when none)
  int32_t roots[3];
  // scratch
  float *score;           // per ontology term
  int32_t *touched;
  size_t n_touched;
  scored_t *sbuf;         // one protein's features, then its terms
  uint8_t *cbuf;
  size_t scap;
};

int annot_cmp_i32(const void *a, const void *b);
static inline int annot_is_root(const int32_t roots[3], int32_t t) {
  return t == roots[0] || t == roots[1] || t == roots[2];
}
// One protein into fm[0] (all namespaces) and fm[1 + ns] (BP, MF, CC): predictions pr[0..np)
// (term, score), true terms tt (sorted, propagated). sc / cor: scratch of np entries.
void annot_fmax_add_ns(annot_fmax_t *fm, const go_ontology_t *o, const int32_t roots[3], const scored_t *pr, size_t np,
                       const int32_t *tt, uint32_t ntt, float *sc, uint8_t *cor);

#endif
