// synth.c — the planted-feature generator: random streams, motifs, inputs, plan, vectors.
// The writing of the outputs is in synth_write.c.
#include "synth.h"
#include "godata.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fasta.h"
#include "hash.h"
#include "log.h"
#include "proteins_tsv.h"
#include "strmap.h"

// ---- random numbers ----------------------------------------------------------------------
void synth_rng_init(synth_rng_t *r, uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t k = ps_mix64(seed + 0x9E3779B97F4A7C15ULL);
  k = ps_mix64(k ^ (stream * 0xD1B54A32D192ED03ULL + 0x2545F4914F6CDD1DULL));
  k = ps_mix64(k ^ (index * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL));
  for (int i = 0; i < 4; i++) r->s[i] = ps_splitmix64(&k);
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;  // never all zero
  r->has_spare = 0;
  r->spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t synth_rng_u64(synth_rng_t *r) {  // xoshiro256**
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double synth_rng_uniform(synth_rng_t *r) { return (double)(synth_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t synth_rng_below(synth_rng_t *r, uint64_t n) {  // Lemire, with rejection
  PS_ASSERT(n > 0);
  __uint128_t m = (__uint128_t)synth_rng_u64(r) * n;
  uint64_t lo = (uint64_t)m;
  if (lo < n) {
    uint64_t thr = -n % n;
    while (lo < thr) {
      m = (__uint128_t)synth_rng_u64(r) * n;
      lo = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

double synth_rng_normal(synth_rng_t *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1 = ((double)(synth_rng_u64(r) >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  double u2 = synth_rng_uniform(r);
  double rad = sqrt(-2.0 * log(u1));
  double th = 6.283185307179586476925 * u2;
  r->spare = rad * sin(th);
  r->has_spare = 1;
  return rad * cos(th);
}

// A random unit vector of dim floats from its own stream.
static void unit_vector(float *v, uint32_t dim, uint64_t seed, uint64_t stream, uint64_t index) {
  synth_rng_t r;
  synth_rng_init(&r, seed, stream, index);
  double n2 = 0;
  double *tmp = ps_xmalloc(dim * sizeof *tmp);
  for (uint32_t j = 0; j < dim; j++) {
    tmp[j] = synth_rng_normal(&r);
    n2 += tmp[j] * tmp[j];
  }
  double inv = 1.0 / sqrt(n2);
  for (uint32_t j = 0; j < dim; j++) v[j] = (float)(tmp[j] * inv);
  free(tmp);
}

// ---- motifs ------------------------------------------------------------------------------
const char synth_aa_letters[SYNTH_N_AA + 1] = "ACDEFGHIKLMNPQRSTVWY";

static const synth_motif_t motifs[SYNTH_N_MOTIFS] = {
    {"N_GLYCOSYLATION", "N-{P}-[ST]-{P}", "PROSITE PS00001 N-glycosylation site"},
    {"PKC_PHOSPHO", "[ST]-x-[RK]", "PROSITE PS00005 protein kinase C phosphorylation site"},
    {"CK2_PHOSPHO", "[ST]-x(2)-[DE]", "PROSITE PS00006 casein kinase II phosphorylation site"},
    {"ZINC_FINGER_C2H2", "C-x(2,4)-C-x(3)-[LIVMFYWC]-x(8)-H-x(3,5)-H",
     "PROSITE PS00028 zinc finger C2H2 type domain signature"},
    {"TM_HYDROPHOBIC", ">= 18 of [AILMFVW] within 24 residues",
     "transmembrane-like hydrophobic stretch: union of the 24-residue windows holding >= 18 of AILMFVW"},
};

const synth_motif_t *synth_motif(int m) {
  PS_ASSERT(m >= 0 && m < SYNTH_N_MOTIFS);
  return &motifs[m];
}

static inline int up(char c) { return toupper((unsigned char)c); }
static inline int is_st(char c) { return up(c) == 'S' || up(c) == 'T'; }
static inline int in_set(char c, const char *set) { return c && strchr(set, up(c)) != NULL; }

// Length of the C2H2 match starting at i, or 0.
static size_t c2h2_at(const char *s, size_t len, size_t i) {
  if (up(s[i]) != 'C') return 0;
  for (size_t g1 = 2; g1 <= 4; g1++) {
    size_t c2 = i + 1 + g1;
    size_t hyd = c2 + 4;
    size_t h1 = hyd + 9;
    if (h1 >= len) return 0;
    if (up(s[c2]) != 'C' || !in_set(s[hyd], "LIVMFYWC") || up(s[h1]) != 'H') continue;
    for (size_t g2 = 3; g2 <= 5; g2++) {
      size_t h2 = h1 + 1 + g2;
      if (h2 >= len) break;
      if (up(s[h2]) == 'H') return h2 + 1 - i;
    }
  }
  return 0;
}

static inline int is_hydrophobic(char c) { return in_set(c, "AILMFVW"); }

static size_t put_trimmed(const char *seq, size_t a, size_t b, synth_hit_t *hits, size_t cap, size_t n) {
  while (a < b && !is_hydrophobic(seq[a])) a++;
  while (b > a && !is_hydrophobic(seq[b - 1])) b--;
  if (n < cap) hits[n] = (synth_hit_t){(uint32_t)a, (uint32_t)b};
  return n + 1;
}

size_t synth_motif_scan(int m, const char *seq, size_t len, synth_hit_t *hits, size_t cap) {
  PS_ASSERT(m >= 0 && m < SYNTH_N_MOTIFS);
  size_t n = 0;
#define HIT(a, b)                                          \
  do {                                                     \
    if (n < cap) hits[n] = (synth_hit_t){(uint32_t)(a), (uint32_t)(b)}; \
    n++;                                                   \
  } while (0)
  switch (m) {
    case 0:  // N-{P}-[ST]-{P}
      for (size_t i = 0; i + 4 <= len; i++)
        if (up(seq[i]) == 'N' && up(seq[i + 1]) != 'P' && is_st(seq[i + 2]) && up(seq[i + 3]) != 'P')
          HIT(i, i + 4);
      break;
    case 1:  // [ST]-x-[RK]
      for (size_t i = 0; i + 3 <= len; i++)
        if (is_st(seq[i]) && (up(seq[i + 2]) == 'R' || up(seq[i + 2]) == 'K')) HIT(i, i + 3);
      break;
    case 2:  // [ST]-x(2)-[DE]
      for (size_t i = 0; i + 4 <= len; i++)
        if (is_st(seq[i]) && (up(seq[i + 3]) == 'D' || up(seq[i + 3]) == 'E')) HIT(i, i + 4);
      break;
    case 3:
      for (size_t i = 0; i < len; i++) {
        size_t l = c2h2_at(seq, len, i);
        if (l) HIT(i, i + l);
      }
      break;
    case 4: {  // windows of W (the whole sequence when shorter) with >= 18 hydrophobic residues;
               // overlapping windows merged, then trimmed to their first and last hydrophobic
      const size_t K = 18;
      if (len < K) break;
      size_t W = len < 24 ? len : 24, cnt = 0, hs = 0, he = 0;
      int open = 0;
      for (size_t i = 0; i < len; i++) {
        cnt += is_hydrophobic(seq[i]);
        if (i >= W) cnt -= is_hydrophobic(seq[i - W]);
        if (i + 1 < W || cnt < K) continue;
        size_t ws = i + 1 - W, we = i + 1;  // a qualifying window [ws, we)
        if (open && ws <= he) {
          he = we;
          continue;
        }
        if (open) n = put_trimmed(seq, hs, he, hits, cap, n);
        hs = ws;
        he = we;
        open = 1;
      }
      if (open) n = put_trimmed(seq, hs, he, hits, cap, n);
      break;
    }
  }
#undef HIT
  return n;
}

// ---- inputs ------------------------------------------------------------------------------
static int file_exists(const char *p) { return access(p, R_OK) == 0; }

static char *join_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *s = ps_xmalloc(n);
  snprintf(s, n, "%s/%s", dir, name);
  return s;
}

static char *first_existing(const char *dir, const char *const *names) {
  for (size_t i = 0; names[i]; i++) {
    char *p = join_path(dir, names[i]);
    if (file_exists(p)) return p;
    free(p);
  }
  return NULL;
}



// Append a protein (seq: malloc'd, taken) unless its accession is in seen already: a duplicate
// accession keeps the first and is counted in dropped_duplicates.
static void data_push(synth_data_t *d, size_t *cap, strmap_t *seen, const char *id, const char *desc, char *seq,
                      size_t len) {
  if (strmap_get(seen, id, NULL)) {
    free(seq);
    d->dropped_duplicates++;
    return;
  }
  strmap_put(seen, id, d->n_proteins);
  if (d->n_proteins == *cap) {
    *cap = *cap ? *cap * 2 : 1024;
    d->ids = ps_xrealloc(d->ids, *cap * sizeof *d->ids);
    d->descs = ps_xrealloc(d->descs, *cap * sizeof *d->descs);
    d->seqs = ps_xrealloc(d->seqs, *cap * sizeof *d->seqs);
    d->lens = ps_xrealloc(d->lens, *cap * sizeof *d->lens);
  }
  size_t i = d->n_proteins++;
  d->ids[i] = ps_xstrdup(id);
  d->descs[i] = ps_xstrdup(desc ? desc : "");
  d->seqs[i] = seq;
  d->lens[i] = (uint32_t)len;
}

static int load_fasta(synth_data_t *d, const char *path, ps_err_t *err) {
  fasta_reader_t *r = NULL;
  int rc = fasta_open(&r, path, err);
  if (rc < 0) return rc;
  strmap_t *seen = strmap_new(32768);
  size_t cap = 0;
  fasta_record_t rec;
  while ((rc = fasta_next(r, &rec, err)) == 1) {
    if (rec.len == 0) {
      d->dropped_empty++;
      continue;
    }
    if (rec.len > UINT32_MAX) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: sequence of %s too long", path,
                      (unsigned long long)rec.line, rec.id);
      break;
    }
    char *seq = ps_xmalloc(rec.len + 1);
    for (size_t i = 0; i < rec.len; i++) seq[i] = (char)up(rec.seq[i]);
    seq[rec.len] = 0;
    data_push(d, &cap, seen, rec.id, rec.desc, seq, rec.len);
  }
  strmap_destroy(&seen);
  fasta_close(&r);
  return rc < 0 ? rc : 0;
}

// Human proteome amino-acid background (percent, UniProt human reference proteome statistics),
// in synth_aa_letters order.
static const double aa_background[SYNTH_N_AA] = {7.02, 2.30, 4.74, 7.10, 3.65, 6.57, 2.63, 4.33, 5.73, 9.96,
                                                 2.13, 3.58, 6.31, 4.77, 5.64, 8.33, 5.36, 5.96, 1.22, 2.66};

// A random sequence: length given (>0) or lognormal (median 415, sigma 0.7, clamped to
// [30, 5000]: roughly the human proteome's length distribution); 'M' first, then residues
// drawn from the human background. Keyed by the accession only, so every seed sees the same
// sequences.
static char *random_sequence(const char *acc, uint32_t want_len, uint32_t *len_out) {
  synth_rng_t r;
  synth_rng_init(&r, 0x5EC5EC5EULL, SYNTH_STREAM_SEQUENCE, ps_fnv1a64(acc));
  uint32_t len = want_len;
  if (!len) {
    double l = exp(log(415.0) + 0.7 * synth_rng_normal(&r));
    len = (uint32_t)(l < 30 ? 30 : l > 5000 ? 5000 : l);
  }
  double cum[SYNTH_N_AA], tot = 0;
  for (int a = 0; a < SYNTH_N_AA; a++) cum[a] = (tot += aa_background[a]);
  char *s = ps_xmalloc((size_t)len + 1);
  s[0] = 'M';
  for (uint32_t i = 1; i < len; i++) {
    double u = synth_rng_uniform(&r) * tot;
    int a = 0;
    while (a < SYNTH_N_AA - 1 && u >= cum[a]) a++;
    s[i] = synth_aa_letters[a];
  }
  s[len] = 0;
  *len_out = len;
  return s;
}

typedef struct {
  synth_data_t *d;
  size_t pcap;
  strmap_t *seen;
  const char *path;
} tsv_load_t;

static int add_tsv_protein(void *ctx, const ps_protein_row_t *row, ps_err_t *err) {
  tsv_load_t *t = ctx;
  synth_data_t *d = t->d;
  uint32_t want = 0;
  if (*row->length) {
    char *end;
    unsigned long v = strtoul(row->length, &end, 10);
    if (*end || v == 0 || v > 100000)
      return ps_err_set(err, PS_EFORMAT, "%s: line %llu: bad length '%s'", t->path, (unsigned long long)row->line,
                        row->length);
    want = (uint32_t)v;
  }
  char desc[1024];
  snprintf(desc, sizeof desc, "%s%s%s", row->gene, *row->name ? " " : "", row->name);
  uint32_t len;
  char *seq = random_sequence(row->accession, want, &len);
  data_push(d, &t->pcap, t->seen, row->accession, desc, seq, len);
  return 0;
}

// proteins.tsv(.gz): accession, gene, name, pfam, length (common/proteins_tsv). Each unique
// accession becomes a protein with a random sequence (of the given length when the column has one).
static int load_protein_tsv(synth_data_t *d, const char *path, ps_err_t *err) {
  tsv_load_t t = {d, 0, strmap_new(32768), path};
  int rc = ps_proteins_tsv_each(path, add_tsv_protein, &t, err);
  strmap_destroy(&t.seen);
  return rc;
}

int synth_data_load(synth_data_t *d, const char *dir, ps_err_t *err) {
  memset(d, 0, sizeof *d);
  d->dir = ps_xstrdup(dir);
  static const char *const fasta_names[] = {"proteins.fasta.gz", "proteins.fasta", NULL};
  static const char *const tsv_names[] = {"proteins.tsv.gz", "proteins.tsv", NULL};
  int rc;
  struct stat st;
  if (stat(dir, &st) != 0) return ps_err_set(err, -errno, "%s: data directory: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return ps_err_set(err, PS_ENOTFOUND, "%s: data directory: not a directory", dir);
  ps_godata_t gd;
  ps_godata_find(dir, 0, &gd, NULL);
  d->obo_path = gd.obo[0] ? ps_xstrdup(gd.obo) : NULL;
  d->annot_path = gd.annotations[0] && !gd.annotations_gaf ? ps_xstrdup(gd.annotations) : NULL;
  d->proteins_path = first_existing(dir, fasta_names);
  if (!d->proteins_path) {
    d->proteins_path = first_existing(dir, tsv_names);
    d->random_sequences = 1;
  }
  if (!d->obo_path || !d->annot_path || !d->proteins_path)
    return ps_err_set(err, PS_ENOTFOUND,
                      "%s: missing %s (a data directory holds proteins.fasta.gz or proteins.tsv.gz, "
                      "go_annotations.tsv.gz and go.obo.gz / go-*.obo.gz)",
                      dir, !d->obo_path ? "the GO ontology" : !d->annot_path ? "go_annotations.tsv.gz" : "proteins.fasta.gz");
  rc = d->random_sequences ? load_protein_tsv(d, d->proteins_path, err) : load_fasta(d, d->proteins_path, err);
  if (rc < 0) return rc;
  if (d->n_proteins == 0) return ps_err_set(err, PS_EFORMAT, "%s: no proteins", d->proteins_path);
  rc = go_ontology_load(&d->onto, d->obo_path, NULL, err);
  if (rc < 0) return rc;
  d->annot = go_annotations_new();
  rc = go_annotations_load_tsv(d->annot, d->onto, d->annot_path, NULL, &d->report, err);
  if (rc < 0) return rc;
  go_annotations_propagate(d->annot, d->onto);
  d->annot_of = ps_xmalloc(d->n_proteins * sizeof *d->annot_of);
  for (size_t i = 0; i < d->n_proteins; i++) {
    d->annot_of[i] = go_annotations_find(d->annot, d->ids[i]);
    if (d->annot_of[i] >= 0 && d->annot->n_terms[d->annot_of[i]] > 0) d->n_annotated++;
  }
  d->n_input = d->n_proteins;
  return 0;
}

int synth_data_extend(synth_data_t *d, size_t n_total, uint64_t seed, ps_err_t *err) {
  if (n_total <= d->n_input || d->n_proteins != d->n_input)
    return ps_err_set(err, PS_ECONFIG, "--n-proteins %zu: must exceed the input's %zu proteins (fewer: --max-proteins)",
                      n_total, d->n_input);
  if (n_total > (size_t)UINT32_MAX) return ps_err_set(err, PS_ECONFIG, "--n-proteins %zu: too many", n_total);
  d->ids = ps_xrealloc(d->ids, n_total * sizeof *d->ids);
  d->descs = ps_xrealloc(d->descs, n_total * sizeof *d->descs);
  d->seqs = ps_xrealloc(d->seqs, n_total * sizeof *d->seqs);
  d->lens = ps_xrealloc(d->lens, n_total * sizeof *d->lens);
  d->annot_of = ps_xrealloc(d->annot_of, n_total * sizeof *d->annot_of);
  char id[256];
  for (size_t i = d->n_input; i < n_total; i++) {
    synth_rng_t r;
    synth_rng_init(&r, seed, SYNTH_STREAM_EXTRA, i);
    size_t src = (size_t)synth_rng_below(&r, d->n_input);
    snprintf(id, sizeof id, "%s_x%zu", d->ids[src], i);
    d->ids[i] = ps_xstrdup(id);
    d->descs[i] = d->descs[src];  // shared: freed with the source
    d->seqs[i] = d->seqs[src];
    d->lens[i] = d->lens[src];
    d->annot_of[i] = d->annot_of[src];
    if (d->annot_of[i] >= 0 && d->annot->n_terms[d->annot_of[i]] > 0) d->n_annotated++;
  }
  d->n_proteins = n_total;
  return 0;
}

void synth_data_free(synth_data_t *d) {
  if (!d) return;
  for (size_t i = 0; i < d->n_proteins; i++) {
    free(d->ids[i]);
    if (i >= d->n_input) continue;  // extra proteins share their source's strings
    free(d->descs[i]);
    free(d->seqs[i]);
  }
  free(d->ids);
  free(d->descs);
  free(d->seqs);
  free(d->lens);
  free(d->annot_of);
  go_annotations_destroy(&d->annot);
  go_ontology_destroy(&d->onto);
  free(d->dir);
  free(d->obo_path);
  free(d->annot_path);
  free(d->proteins_path);
  memset(d, 0, sizeof *d);
}

// ---- options -----------------------------------------------------------------------------
void synth_opts_default(synth_opts_t *o) {
  *o = (synth_opts_t){.seed = 1, .dim = 480, .n_terms = 1000, .min_size = 10, .max_size = 300,
                      .feature_scale = 1.0, .magnitude_spread = 0.5, .noise = 0.03, .mean_scale = 0.5,
                      .n_outliers = 3, .outlier_scale = 20.0, .outlier_jitter = 0.5,
                      .levels = SYNTH_LEVEL_PROTEIN, .residue_proteins = 500,
                      .aa_scale = 1.0, .motif_scale = 1.0, .residue_noise = 0.2,
                      .formats = SYNTH_FMT_NPY | SYNTH_FMT_SAFETENSORS | SYNTH_FMT_H5,
                      .residue_formats = SYNTH_FMT_NPY | SYNTH_FMT_PT, .layer = 12};
}

int synth_parse_formats(const char *s, unsigned *out, ps_err_t *err) {
  unsigned m = 0;
  if (!s) return ps_err_set(err, PS_ECONFIG, "formats: empty");
  const char *p = s;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 3 && !strncmp(p, "npy", 3)) m |= SYNTH_FMT_NPY;
    else if (n == 11 && !strncmp(p, "safetensors", 11)) m |= SYNTH_FMT_SAFETENSORS;
    else if ((n == 2 && !strncmp(p, "h5", 2)) || (n == 4 && !strncmp(p, "hdf5", 4))) m |= SYNTH_FMT_H5;
    else if (n == 2 && !strncmp(p, "pt", 2)) m |= SYNTH_FMT_PT;
    else if (n == 3 && !strncmp(p, "all", 3)) m |= SYNTH_FMT_NPY | SYNTH_FMT_SAFETENSORS | SYNTH_FMT_H5 | SYNTH_FMT_PT;
    else if (n == 4 && !strncmp(p, "none", 4)) { /* nothing */ }
    else if (n > 0)
      return ps_err_set(err, PS_ECONFIG, "formats: unknown format '%.*s' in '%s' (npy, safetensors, h5, pt, all, none)",
                        (int)n, p, s);
    p += n;
    if (*p == ',') p++;
  }
  *out = m;
  return 0;
}

// ---- the plan ----------------------------------------------------------------------------
static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int check_opts(const synth_opts_t *o, ps_err_t *err) {
  if (o->dim < 2 || o->dim > 65536) return ps_err_set(err, PS_ECONFIG, "dim: %u out of range [2, 65536]", o->dim);
  if (o->n_outliers >= o->dim)
    return ps_err_set(err, PS_ECONFIG, "n-outliers: %u must be below dim %u", o->n_outliers, o->dim);
  if (o->min_size < 1 || o->min_size > o->max_size)
    return ps_err_set(err, PS_ECONFIG, "min-size %u / max-size %u: need 1 <= min <= max", o->min_size, o->max_size);
  const double v[] = {o->feature_scale, o->magnitude_spread, o->noise, o->mean_scale, o->outlier_scale,
                      o->outlier_jitter, o->aa_scale, o->motif_scale, o->residue_noise};
  const char *nm[] = {"feature-scale", "magnitude-spread", "noise", "mean-scale", "outlier-scale",
                      "outlier-jitter", "aa-scale", "motif-scale", "residue-noise"};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    if (!(v[i] >= 0 && v[i] < 1e6)) return ps_err_set(err, PS_ECONFIG, "%s: %g must be in [0, 1e6)", nm[i], v[i]);
  if (!(o->levels & (SYNTH_LEVEL_PROTEIN | SYNTH_LEVEL_RESIDUE)))
    return ps_err_set(err, PS_ECONFIG, "level: none chosen");
  return 0;
}

// Partial Fisher-Yates: a[0..k) becomes a uniform random choice (in random order) of a[0..n).
static void shuffle_head(uint32_t *a, uint32_t n, uint32_t k, synth_rng_t *r) {
  for (uint32_t i = 0; i < k; i++) {
    uint32_t j = i + (uint32_t)synth_rng_below(r, n - i);
    uint32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

// GO:0008150 -> 8150 (a stable stream index for the term's direction).
static uint64_t go_number(const char *id) {
  const char *c = strchr(id, ':');
  return c ? strtoull(c + 1, NULL, 10) : ps_fnv1a64(id);
}

int synth_plan_build(synth_plan_t *p, const synth_data_t *d, const synth_opts_t *o, ps_err_t *err) {
  memset(p, 0, sizeof *p);
  int rc = check_opts(o, err);
  if (rc < 0) return rc;
  p->data = d;
  p->opts = *o;
  p->dim = o->dim;
  const uint32_t dim = o->dim;
  const size_t np = o->max_proteins && o->max_proteins < d->n_proteins ? o->max_proteins : d->n_proteins;
  p->n_proteins = np;
  size_t nt = go_n_terms(d->onto);

  // term sizes over the proteins we have (propagated annotations): which terms qualify is decided
  // over the input's proteins (nq), the planted sizes are counted over all of them
  const size_t nq = d->n_input && d->n_input < np ? d->n_input : np;
  uint32_t *count = ps_xcalloc(nt ? nt : 1, sizeof *count), *size = ps_xcalloc(nt ? nt : 1, sizeof *size);
  for (size_t i = 0; i < np; i++) {
    int64_t a = d->annot_of[i];
    if (a < 0) continue;
    for (uint32_t k = 0; k < d->annot->n_terms[a]; k++) {
      if (i < nq) count[d->annot->terms[a][k]]++;
      size[d->annot->terms[a][k]]++;
    }
  }
  int32_t *cand = ps_xmalloc((nt ? nt : 1) * sizeof *cand);
  uint32_t nc = 0;
  for (size_t t = 0; t < nt; t++) {
    const go_term_t *gt = go_term(d->onto, (int32_t)t);
    if (gt->obsolete || count[t] < o->min_size || count[t] > o->max_size) continue;
    cand[nc++] = (int32_t)t;
  }
  p->n_qualifying = nc;
  uint32_t nf = o->n_terms < nc ? o->n_terms : nc;
  synth_rng_t r;
  synth_rng_init(&r, o->seed, SYNTH_STREAM_TERMS, 0);
  shuffle_head((uint32_t *)cand, nc, nf, &r);
  qsort(cand, nf, sizeof *cand, cmp_i32);
  p->n_features = nf;
  p->feature_term = ps_xmalloc((nf ? nf : 1) * sizeof *p->feature_term);
  p->feature_size = ps_xmalloc((nf ? nf : 1) * sizeof *p->feature_size);
  int32_t *feat_of = ps_xmalloc((nt ? nt : 1) * sizeof *feat_of);
  for (size_t t = 0; t < nt; t++) feat_of[t] = -1;
  for (uint32_t f = 0; f < nf; f++) {
    p->feature_term[f] = cand[f];
    p->feature_size[f] = size[cand[f]];
    feat_of[cand[f]] = (int32_t)f;
  }
  free(cand);
  free(count);
  free(size);

  // each protein's features (ascending: terms are sorted and features follow term order)
  p->prot_off = ps_xcalloc(np + 1, sizeof *p->prot_off);
  size_t fcap = 1024, nnz = 0;
  p->prot_feat = ps_xmalloc(fcap * sizeof *p->prot_feat);
  for (size_t i = 0; i < np; i++) {
    int64_t a = d->annot_of[i];
    if (a >= 0)
      for (uint32_t k = 0; k < d->annot->n_terms[a]; k++) {
        int32_t f = feat_of[d->annot->terms[a][k]];
        if (f < 0) continue;
        if (nnz == fcap) p->prot_feat = ps_xrealloc(p->prot_feat, (fcap *= 2) * sizeof *p->prot_feat);
        p->prot_feat[nnz++] = (uint32_t)f;
      }
    p->prot_off[i + 1] = nnz;
  }
  free(feat_of);

  p->directions = ps_xmalloc((size_t)(nf ? nf : 1) * dim * sizeof *p->directions);
  for (uint32_t f = 0; f < nf; f++)
    unit_vector(p->directions + (size_t)f * dim, dim, o->seed, SYNTH_STREAM_DIRECTION,
                go_number(go_term(d->onto, p->feature_term[f])->id));

  p->mu = ps_xmalloc(dim * sizeof *p->mu);
  synth_rng_init(&r, o->seed, SYNTH_STREAM_MU, 0);
  for (uint32_t j = 0; j < dim; j++) p->mu[j] = (float)(o->mean_scale * synth_rng_normal(&r));

  uint32_t no = o->n_outliers;
  p->outlier_dims = ps_xmalloc((no ? no : 1) * sizeof *p->outlier_dims);
  p->outlier_values = ps_xmalloc((no ? no : 1) * sizeof *p->outlier_values);
  uint32_t *perm = ps_xmalloc(dim * sizeof *perm);
  for (uint32_t j = 0; j < dim; j++) perm[j] = j;
  synth_rng_init(&r, o->seed, SYNTH_STREAM_OUTLIERS, 0);
  shuffle_head(perm, dim, no, &r);
  memcpy(p->outlier_dims, perm, no * sizeof *perm);
  free(perm);
  qsort(p->outlier_dims, no, sizeof *p->outlier_dims, cmp_u32);
  for (uint32_t i = 0; i < no; i++) {
    double sign = synth_rng_uniform(&r) < 0.5 ? -1.0 : 1.0;
    p->outlier_values[i] = (float)(sign * o->outlier_scale * (0.75 + 0.5 * synth_rng_uniform(&r)));
  }

  p->aa_dirs = ps_xmalloc((size_t)SYNTH_N_AA * dim * sizeof *p->aa_dirs);
  for (int a = 0; a < SYNTH_N_AA; a++) unit_vector(p->aa_dirs + (size_t)a * dim, dim, o->seed, SYNTH_STREAM_AA, (uint64_t)a);
  p->motif_dirs = ps_xmalloc((size_t)SYNTH_N_MOTIFS * dim * sizeof *p->motif_dirs);
  for (int m = 0; m < SYNTH_N_MOTIFS; m++)
    unit_vector(p->motif_dirs + (size_t)m * dim, dim, o->seed, SYNTH_STREAM_MOTIF, (uint64_t)m);

  if (o->levels & SYNTH_LEVEL_RESIDUE) {
    uint32_t *el = ps_xmalloc((np ? np : 1) * sizeof *el);
    uint32_t ne = 0;
    for (size_t i = 0; i < np; i++)
      if (d->lens[i] > 0) el[ne++] = (uint32_t)i;
    uint32_t nr = o->residue_proteins < ne ? o->residue_proteins : ne;
    synth_rng_init(&r, o->seed, SYNTH_STREAM_RESIDUE_SET, 0);
    shuffle_head(el, ne, nr, &r);
    qsort(el, nr, sizeof *el, cmp_u32);
    p->n_residue = nr;
    p->residue_set = el;
  }
  return 0;
}

void synth_plan_free(synth_plan_t *p) {
  if (!p) return;
  free(p->feature_term);
  free(p->feature_size);
  free(p->directions);
  free(p->mu);
  free(p->outlier_dims);
  free(p->outlier_values);
  free(p->aa_dirs);
  free(p->motif_dirs);
  free(p->prot_off);
  free(p->prot_feat);
  free(p->residue_set);
  memset(p, 0, sizeof *p);
}

// ---- vectors -----------------------------------------------------------------------------
void synth_protein_vector(const synth_plan_t *p, size_t protein, float *x, float *mags, double *planted_sq,
                          double *noise_sq) {
  const synth_opts_t *o = &p->opts;
  const uint32_t dim = p->dim;
  synth_rng_t r;
  synth_rng_init(&r, o->seed, SYNTH_STREAM_PROTEIN, protein);
  memset(x, 0, dim * sizeof *x);
  // planted features: a = scale * exp(s z - s^2 / 2) (lognormal with mean `scale`)
  const double s = o->magnitude_spread;
  for (uint64_t k = p->prot_off[protein]; k < p->prot_off[protein + 1]; k++) {
    double a = o->feature_scale * exp(s * synth_rng_normal(&r) - 0.5 * s * s);
    if (mags) mags[k - p->prot_off[protein]] = (float)a;
    const float *u = p->directions + (size_t)p->prot_feat[k] * dim;
    for (uint32_t j = 0; j < dim; j++) x[j] += (float)a * u[j];
  }
  double psq = 0, nsq = 0;
  for (uint32_t j = 0; j < dim; j++) psq += (double)x[j] * x[j];
  for (uint32_t j = 0; j < dim; j++) {
    double n = o->noise * synth_rng_normal(&r);
    nsq += n * n;
    x[j] = (float)((double)x[j] + p->mu[j] + n);
  }
  for (uint32_t k = 0; k < o->n_outliers; k++) {
    uint32_t j = p->outlier_dims[k];
    x[j] = (float)((double)x[j] + p->outlier_values[k] + o->outlier_jitter * synth_rng_normal(&r));
  }
  if (planted_sq) *planted_sq = psq;
  if (noise_sq) *noise_sq = nsq;
}

static int aa_index(char c) {
  const char *q = strchr(synth_aa_letters, up(c));
  return q && c ? (int)(q - synth_aa_letters) : -1;
}

void synth_residue_rows(const synth_plan_t *p, size_t protein, const float *x, float *rows, uint8_t *mask) {
  const synth_opts_t *o = &p->opts;
  const uint32_t dim = p->dim;
  const char *seq = p->data->seqs[protein];
  const size_t len = p->data->lens[protein];
  uint8_t *own = NULL;
  if (!mask) mask = own = ps_xmalloc(len ? len : 1);
  memset(mask, 0, len);
  synth_hit_t *hits = ps_xmalloc((len ? len : 1) * sizeof *hits);
  for (int m = 0; m < SYNTH_N_MOTIFS; m++) {
    size_t n = synth_motif_scan(m, seq, len, hits, len);
    if (n > len) n = len;
    for (size_t h = 0; h < n; h++)
      for (uint32_t q = hits[h].start; q < hits[h].end; q++) mask[q] |= (uint8_t)(1u << m);
  }
  free(hits);
  synth_rng_t r;
  synth_rng_init(&r, o->seed, SYNTH_STREAM_RESIDUE, protein);
  for (size_t i = 0; i < len; i++) {
    float *row = rows + i * dim;
    int a = aa_index(seq[i]);
    const float *v = a >= 0 ? p->aa_dirs + (size_t)a * dim : NULL;
    for (uint32_t j = 0; j < dim; j++) {
      double h = (double)x[j] + o->residue_noise * synth_rng_normal(&r);
      if (v) h += o->aa_scale * v[j];
      row[j] = (float)h;
    }
    for (int m = 0; m < SYNTH_N_MOTIFS; m++) {
      if (!(mask[i] & (1u << m))) continue;
      const float *w = p->motif_dirs + (size_t)m * dim;
      for (uint32_t j = 0; j < dim; j++) row[j] = (float)((double)row[j] + o->motif_scale * w[j]);
    }
  }
  free(own);
}
