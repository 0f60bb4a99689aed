// demo_keys.c — the keys of `protsae demo` / `protsae run` (and of a run CONFIG or a preset):
// names, defaults and help, in one table that demo.c parses, the single-step verbs (verb.h)
// borrow entries from and the presets are checked against.
#include <string.h>

#include "cli.h"
#include "config.h"
#include "demo_interp.h"
#include "enrich.h"

const ps_config_entry_t demo_keys[] = {
    {"workdir", "protsae-demo", "where the dataset, state and results go"},
    {"preset", NULL, "start from a shipped preset's settings (cli/presets/NAME.conf: study-protein, study-residue, "
                     "interplm, recipe; or a path); the other keys override it"},
    {"seed", "1", "seed of the planted dataset, of the held-out proteins and of the validation split"},
    {"dim", "480", "embedding dimension (480 = ESM2-35M)"},
    {"n-terms", "1000", "planted GO-term features"},
    {"batch-rows", "1024", "rows per batch the readers send (a training step's rows: --train-batch)"},
    {"regenerate", "0", "regenerate the dataset even when the work directory has one"},
    // the SAE training recipe (cli/demo_train.c; docs/experiments/2026-12-06-recipe-budget.md)
    {"arch", "batchtopk", "SAE architecture: topk | batchtopk | relu | jumprelu"},
    {"d-sae", "2048", "SAE dictionary size"},
    {"k", "10", "topk: active latents per protein; batchtopk: their mean over a batch"},
    {"train-rows", "1500000", "training budget in rows (proteins x epochs): sets the epochs when --train-epochs is 0"},
    {"train-epochs", "0", "passes over the data (0 = max(1, floor(train-rows / proteins)))"},
    {"train-batch", "64", "rows per training step"},
    {"lr", "1.5e-3", "learning rate (Adam)"},
    {"lr-decay", "0.333", "share of the steps, at the end, over which the learning rate decays linearly to 0"},
    {"lr-warmup", "0", "share of the steps, at the start, over which the learning rate ramps up linearly from 0"},
    {"tie-coeff", "3e-4", "weight of the tie between encoder columns and decoder rows"},
    {"init-from-data", "1", "decoder rows start at training rows (minus b_dec); 0 = random"},
    {"normalize-per-sample", "0", "(x - mean) / std on every row before the SAE"},
    {"aux-coeff", "0.03125", "AuxK loss weight (topk, batchtopk)"},
    {"dead-steps", "100", "steps without firing after which a latent is dead (AuxK's latents; the dead % logged)"},
    {"l1", "5", "relu: L1 coefficient (decoder-norm weighted; rows scaled to E||x|| = sqrt(d))"},
    {"l1-warmup", "0", "relu / jumprelu: share of the steps, at the start, over which the sparsity penalty ramps up"},
    {"k-aux", "-1", "AuxK latents (-1 = d_in / 2; 0 = off)"},
    {"val-fraction", "0", "share of proteins the training reader flags as validation (seeded by --seed), never trained on"},
    {"save-best", "0", "1: the SAE of the lowest validation MSE (sae/best) is the one used; needs --val-fraction > 0"},
    {"target", NULL, "transcoder: the paired target embeddings (layer L+1 of --emb's proteins)"},
    {"target-ids", NULL, "ids of --target's rows (default: --emb's)"},
    {"target-mode", "delta", "transcoder target: delta = target - input (the study's) | raw = the target rows"},
    {"train-threads", "1", "trainer threads (BLAS and sparse kernels; 0 = all CPUs)"},
    {"ckpt-every", "0", "trainer checkpoint interval (steps; 0 = about 256,000 rows): a restarted trainer resumes "
                        "from the last one"},
    {"encoders", "2", "encoder processes"},
    {"scorers", "1", "scorer processes the feature store is sharded over by feature range (> 1: a front scorer and "
                     "N shard scorers, protsae-scorer --shards)"},
    {"retrain", "1", "0: reuse the SAE already trained in the work directory (sae/latest) when there is one"},
    {"n-interpret", "200", "features and neurons explained and scored (each)"},
    {"holdout", "0.1", "share of proteins held out of the GO enrichment and annotated in step 6 (seeded by --seed)"},
    ENRICH_CONFIG_ENTRIES("fdr"),  // the scorer's flags of the same names (enrich.h)
    {"mode", "auto", "interpreter: auto (Claude when ANTHROPIC_API_KEY is set, else offline) | offline | anthropic"},
    DEMO_INTERP_ENTRIES,
    {"emb", NULL, "your own protein-level embeddings (npy, safetensors, h5, pt) instead of the planted dataset "
                  "(protsae run CONFIG); needs --fasta"},
    {"fasta", NULL, "the FASTA of --emb (ids are checked against it)"},
    {"ids", NULL, "ids of --emb's rows when it is a single matrix (default for .npy: the FASTA's order)"},
    {"level", "protein", "protein | residue: an AA-level SAE on residue embeddings, residue concepts; residue "
                               "defaults d-sae 1024, k 16, train-rows 1000000, n-interpret 100"},
    {"residue-proteins", "500", "residue level: planted proteins written at residue level (protsae synth)"},
    {"data", NULL, "annotation directory (proteins.tsv.gz, go_annotations.tsv.gz, go-*.obo.gz; default "
                   "$PROTSAE_DATA or ../shared/data/human-swissprot)"},
    {"residue-top", "8", "residue level: top residues kept per (protein, feature) in the store (protsae-scorer)"},
    {"concepts", "", "residue level: UniProt flat files / TSVs of residue concepts for InterPLM's concept F1 "
                     "(protsae-scorer --concepts; '' = none)"},
    {"concept-min-instances", "10", "concepts with fewer instances are not tested (protsae-scorer)"},
    {NULL, NULL, NULL},
};

const ps_config_entry_t *demo_option(const char *name) {
  for (const ps_config_entry_t *e = demo_keys; e->name; e++)
    if (!strcmp(e->name, name)) return e;
  return NULL;
}

int demo_has_option(const char *name) { return demo_option(name) != NULL; }
