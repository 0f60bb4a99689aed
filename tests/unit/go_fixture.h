// go_fixture.h — what the two Gene Ontology tests share (test_go_ontology.c, test_go_annot.c):
// the real-data paths, the hand-made ontology k_small, ancestor helpers, a timed loader and the
// independent Python implementation (/usr/bin/python3, stdlib only) they are cross-checked
// against. Include after cmocka.h. Header-only (static inline), like fixture.h.
#ifndef PS_TEST_GO_FIXTURE_H
#define PS_TEST_GO_FIXTURE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fixture.h"
#include "go.h"
#include "io.h"

static char g_obo22[PATH_MAX + 64], g_obo13[PATH_MAX + 64], g_tsv[PATH_MAX + 64];

// 1 when ../shared holds the two OBO files and the annotation TSV (their paths then in g_*).
static inline int go_find_shared(void) {
  if (!fx_find_shared("data/human-swissprot/go-2022-07-01.obo.gz")) return 0;
  snprintf(g_obo22, sizeof g_obo22, "%s/data/human-swissprot/go-2022-07-01.obo.gz", fx_shared_dir);
  snprintf(g_obo13, sizeof g_obo13, "%s/data/ontology/go-2013-07-13.obo.gz", fx_shared_dir);
  snprintf(g_tsv, sizeof g_tsv, "%s/data/human-swissprot/go_annotations.tsv.gz", fx_shared_dir);
  return access(g_obo13, R_OK) == 0 && access(g_tsv, R_OK) == 0;
}

#define assert_msg_has(err, s)                                                                    \
  do {                                                                                            \
    if (!strstr((err)->msg, (s))) fail_msg("message '%s' does not contain '%s'", (err)->msg, (s)); \
  } while (0)

static inline int32_t idx_of(const go_ontology_t *o, const char *id) {
  int32_t i = go_lookup(o, id);
  if (i < 0) fail_msg("%s not found", id);
  return i;
}

// Ancestors of a term as a malloc'd array (*n entries).
static inline int32_t *ancestors(const go_ontology_t *o, int32_t t, size_t *n) {
  size_t c = go_ancestors(o, t, NULL, 0);
  int32_t *v = malloc((c ? c : 1) * sizeof *v);
  assert_int_equal(go_ancestors(o, t, v, c), c);
  *n = c;
  return v;
}

// Ancestor ids of a term, space-separated in index order ("" when none).
static inline void anc_ids(const go_ontology_t *o, int32_t t, char *buf, size_t cap) {
  size_t n;
  int32_t *v = ancestors(o, t, &n);
  buf[0] = 0;
  size_t l = 0;
  for (size_t i = 0; i < n && l < cap; i++) l += (size_t)snprintf(buf + l, cap - l, "%s%s", i ? " " : "", go_term(o, v[i])->id);
  free(v);
}

static inline int have_python(void) {
  return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import gzip, zlib' >/dev/null 2>&1") == 0;
}

static const go_annot_opts_t k_all = {NULL, NULL, -1};

// ---- hand-made ontology ------------------------------------------------------------------
// file order (index): T:4=0 T:0=1 T:1=2 T:2=3 T:3=4 T:5=5 T:6=6 T:7=7 MF:root=8
static const char k_small[] =
    "format-version: 1.2\n"
    "default-namespace: biological_process\n"
    "! a comment line\n"
    "\n"
    "[Term]\n"
    "id: T:0000004 ! D, defined before its parents\n"
    "name: dee\n"
    "is_a: T:0000002 ! B\n"
    "relationship: part_of T:0000001 ! A\n"
    "is_a: T:0000002 {source=\"dup\"} ! the same edge twice\n"
    "intersection_of: T:0000000\n"
    "intersection_of: part_of T:0000001\n"
    "\n"
    "[Term]\n"
    "id: T:0000000\n"
    "name: root\n"
    "namespace: biological_process\n"
    "synonym: \"wurzel\" EXACT []\n"
    "\n"
    "[Term]\n"
    "id: T:0000001\n"
    "name: A\n"
    "is_a: T:0000000\n"
    "\n"
    "[Term]\n"
    "id: T:0000002\n"
    "name: B\n"
    "alt_id: T:0000012\n"
    "relationship: part_of T:0000001 {source=\"x\"} ! A\n"
    "relationship: has_part T:0000099 ! kinds not followed may name anything\n"
    "\n"
    "[Term]\n"
    "id: T:0000003\n"
    "name: C\n"
    "relationship: negatively_regulates T:0000002\n"
    "\n"
    "[Term]\n"
    "id: T:0000005\n"
    "name: obsolete E\n"
    "is_a: T:0000000\n"
    "is_obsolete: true\n"
    "replaced_by: T:0000006\n"
    "consider: T:0000003\n"
    "\n"
    "[Term]\n"
    "id: T:0000006\n"
    "name: obsolete F\n"
    "is_obsolete: true\n"
    "replaced_by: T:0000012\n"
    "\n"
    "[Term]\n"
    "id: T:0000007\n"
    "name: obsolete G\n"
    "is_obsolete: true\n"
    "consider: T:0000098\n"
    "\n"
    "[Term]\n"
    "id: MF:root\n"
    "namespace: molecular_function\n"
    "\n"
    "[Typedef]\n"
    "id: part_of\n"
    "is_a: T:9999999\n"
    "is_transitive: true\n";

static inline go_ontology_t *parse_small(unsigned rels) {
  go_load_opts_t op = {rels};
  go_ontology_t *o = NULL;
  ps_err_t err = {0};
  int rc = go_ontology_parse(&o, k_small, strlen(k_small), "small.obo", &op, &err);
  if (rc) fail_msg("small.obo: %s", err.msg);
  assert_non_null(o);
  return o;
}


static inline go_ontology_t *load_timed(const char *path, unsigned rels, const char *what) {
  go_load_opts_t op = {rels};
  go_ontology_t *o = NULL;
  ps_err_t err = {0};
  double t0 = ps_mono_s();
  int rc = go_ontology_load(&o, path, &op, &err);
  double t1 = ps_mono_s();
  if (rc) fail_msg("%s: %s", path, err.msg);
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  printf("  %s: %zu terms (%zu obsolete, %zu alt_ids), edges is_a %zu part_of %zu regulates %zu, roots %zu, "
         "max depth %d, loaded in %.3f s\n",
         what, in.n_terms, in.n_obsolete, in.n_alt_ids, in.n_is_a, in.n_part_of, in.n_regulates, in.n_roots,
         in.max_depth, t1 - t0);
  return o;
}


// ---- cross-check against Python ------------------------------------------------------------
// argv: obo rels(comma list) stride tsv|- [accessions...]
// prints  T id depth level anc...   for every stride-th term (file order)
//         C key value               counts
//         P acc anc...              propagated terms of the named proteins
static const char k_py[] =
    "import gzip, sys, zlib\n"
    "obo, rels, stride, tsv = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3]), sys.argv[4]\n"
    "accs = sys.argv[5:]\n"
    "terms, order, alt, cur = {}, [], {}, None\n"
    "for line in gzip.open(obo, 'rt'):\n"
    "    line = line.strip()\n"
    "    if line.startswith('['):\n"
    "        cur = {'par': [], 'obs': False, 'rb': None, 'alt': []} if line == '[Term]' else None\n"
    "        continue\n"
    "    if cur is None or ':' not in line:\n"
    "        continue\n"
    "    tag, val = line.split(':', 1)\n"
    "    val = val.split('!')[0].strip()\n"
    "    if tag == 'id':\n"
    "        terms[val] = cur; order.append(val)\n"
    "    elif tag == 'alt_id': cur['alt'].append(val)\n"
    "    elif tag == 'is_obsolete': cur['obs'] = val == 'true'\n"
    "    elif tag == 'replaced_by' and cur['rb'] is None: cur['rb'] = val\n"
    "    elif tag == 'is_a' and 'is_a' in rels: cur['par'].append(val.split()[0])\n"
    "    elif tag == 'relationship':\n"
    "        r, t = val.split()[:2]\n"
    "        if r in rels: cur['par'].append(t)\n"
    "for k, c in terms.items():\n"
    "    for a in c['alt']: alt[a] = k\n"
    "def prim(t): return alt.get(t, t)\n"
    "memo, dmemo = {}, {}\n"
    "def anc(t):\n"
    "    if t not in memo:\n"
    "        s = {t}\n"
    "        if not terms[t]['obs']:\n"
    "            for p in terms[t]['par']: s |= anc(prim(p))\n"
    "        memo[t] = frozenset(s)\n"
    "    return memo[t]\n"
    "def dl(t):\n"
    "    if terms[t]['obs']: return (-1, -1)\n"
    "    if t not in dmemo:\n"
    "        ps = [dl(prim(p)) for p in terms[t]['par']]\n"
    "        dmemo[t] = (1 + max(p[0] for p in ps), 1 + min(p[1] for p in ps)) if ps else (0, 0)\n"
    "    return dmemo[t]\n"
    "sys.setrecursionlimit(100000)\n"
    "print('C terms', len(terms)); print('C obsolete', sum(c['obs'] for c in terms.values()))\n"
    "print('C alt_ids', len(alt))\n"
    "for t in order[::stride]:\n"
    "    d, l = dl(t)\n"
    "    print('T', t, d, l, ' '.join(sorted(anc(t))))\n"
    "if tsv == '-': sys.exit(0)\n"
    "def resolve(t):\n"
    "    for _ in range(len(terms) + 1):\n"
    "        if not terms[t]['obs']: return t\n"
    "        r = terms[t]['rb']\n"
    "        if r is None or prim(r) not in terms: return None\n"
    "        t = prim(r)\n"
    "    return None\n"
    "for noiea in (0, 1):\n"
    "    n = {'lines': 0, 'unknown': 0, 'alt': 0, 'obs_map': 0, 'obs_skip': 0, 'ev': 0, 'used': 0}\n"
    "    prot = {}\n"
    "    f = gzip.open(tsv, 'rt'); next(f)\n"
    "    for line in f:\n"
    "        a, g, ev = line.rstrip('\\n').split('\\t')[:3]\n"
    "        n['lines'] += 1\n"
    "        if g in terms: t = g\n"
    "        elif g in alt: t = alt[g]; n['alt'] += 1\n"
    "        else: n['unknown'] += 1; continue\n"
    "        if terms[t]['obs']:\n"
    "            t = resolve(t)\n"
    "            if t is None: n['obs_skip'] += 1; continue\n"
    "            n['obs_map'] += 1\n"
    "        if noiea and ev == 'IEA': n['ev'] += 1; continue\n"
    "        n['used'] += 1\n"
    "        prot.setdefault(a, set()).add(t)\n"
    "    sfx = '_noiea' if noiea else ''\n"
    "    for k, v in n.items(): print('C ' + k + sfx, v)\n"
    "    print('C proteins' + sfx, len(prot))\n"
    "    pairs, crc = 0, 0\n"
    "    for a, ts in prot.items():\n"
    "        full = set()\n"
    "        for t in ts: full |= anc(t)\n"
    "        pairs += len(full)\n"
    "        for t in full: crc = (crc + zlib.crc32((a + ' ' + t).encode())) % (1 << 64)\n"
    "        if not noiea and a in accs: print('P', a, ' '.join(sorted(full)))\n"
    "    print('C pairs' + sfx, pairs); print('C crc' + sfx, crc)\n";

typedef struct pycheck {
  long long terms, obsolete, alt;
  size_t n_t, n_p;
  // annotation counts (all, no IEA)
  long long lines[2], unknown[2], altm[2], obs_map[2], obs_skip[2], ev[2], used[2], proteins[2], pairs[2];
  unsigned long long crc[2];
} pycheck_t;

// Sorted ids of a term list, space separated (ids sort like python's sorted()).
static inline int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static inline void ids_sorted(const go_ontology_t *o, const int32_t *v, size_t n, char *buf, size_t cap) {
  const char **s = malloc((n ? n : 1) * sizeof *s);
  for (size_t i = 0; i < n; i++) s[i] = go_term(o, v[i])->id;
  qsort(s, n, sizeof *s, cmp_str);
  size_t l = 0;
  buf[0] = 0;
  for (size_t i = 0; i < n && l < cap; i++) l += (size_t)snprintf(buf + l, cap - l, "%s%s", i ? " " : "", s[i]);
  free(s);
}

static inline void set_count(pycheck_t *c, char *key, long long v) {
  if (!strcmp(key, "terms")) c->terms = v;
  else if (!strcmp(key, "obsolete")) c->obsolete = v;
  else if (!strcmp(key, "alt_ids")) c->alt = v;
  else {
    size_t kl = strlen(key);
    int w = 0;
    if (kl > 6 && !strcmp(key + kl - 6, "_noiea")) {
      w = 1;
      key[kl - 6] = 0;
    }
    static const char *const names[] = {"lines", "unknown", "alt", "obs_map", "obs_skip", "ev", "used", "proteins", "pairs"};
    long long *dst[] = {c->lines, c->unknown, c->altm, c->obs_map, c->obs_skip, c->ev, c->used, c->proteins, c->pairs};
    if (!strcmp(key, "crc")) c->crc[w] = (unsigned long long)v;
    for (int k = 0; k < 9; k++)
      if (!strcmp(key, names[k])) dst[k][w] = v;
  }
}

// Runs the script and checks every T and P line against the ontology / annotations.
static inline void run_python(const go_ontology_t *o, const char *obo, const char *rels, int stride, const char *tsv,
                              const go_annotations_t *prop, const char *accs, pycheck_t *c) {
  char script[PATH_MAX], cmd[4 * PATH_MAX];
  fx_path(script, sizeof script, "go_ref.py");
  fx_write_text(script, k_py);
  int cl = snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %s %d '%s' %s", script, obo, rels, stride,
                    tsv ? tsv : "-", accs ? accs : "");
  assert_true(cl > 0 && (size_t)cl < sizeof cmd);
  memset(c, 0, sizeof *c);
  double t0 = ps_mono_s();
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t cap = 1 << 20;
  char *line = malloc(cap), *mine = malloc(cap);
  size_t n_terms = go_n_terms(o);
  int32_t *v = malloc(n_terms * sizeof *v);
  while (fgets(line, (int)cap, p)) {
    line[strcspn(line, "\n")] = 0;
    if (line[0] == 'C') {
      char key[64];
      unsigned long long val;
      assert_int_equal(sscanf(line, "C %63s %llu", key, &val), 2);
      set_count(c, key, (long long)val);
    } else if (line[0] == 'T') {
      char id[64];
      int d, l, off = 0;
      assert_int_equal(sscanf(line, "T %63s %d %d %n", id, &d, &l, &off), 3);
      int32_t t = idx_of(o, id);
      const go_term_t *gt = go_term(o, t);
      if (gt->depth != d || gt->level != l)
        fail_msg("%s: depth/level %d/%d, python %d/%d", id, gt->depth, gt->level, d, l);
      size_t n = go_ancestors(o, t, v, n_terms);
      ids_sorted(o, v, n, mine, cap);
      if (strcmp(mine, line + off)) fail_msg("%s ancestors differ:\n  ours   %s\n  python %s", id, mine, line + off);
      c->n_t++;
    } else if (line[0] == 'P') {
      char acc[64];
      int off = 0;
      assert_int_equal(sscanf(line, "P %63s %n", acc, &off), 1);
      int64_t i = go_annotations_find(prop, acc);
      if (i < 0) fail_msg("%s: not among our proteins", acc);
      ids_sorted(o, prop->terms[i], prop->n_terms[i], mine, cap);
      if (strcmp(mine, line + off)) fail_msg("%s propagated terms differ:\n  ours   %s\n  python %s", acc, mine, line + off);
      c->n_p++;
    }
  }
  int st = pclose(p);
  free(line);
  free(mine);
  free(v);
  if (st != 0) fail_msg("python failed (%d): %s", st, cmd);
  printf("  python reference (%s, %s): %zu term ancestor sets and %zu proteins compared, %.1f s\n", obo, rels, c->n_t,
         c->n_p, ps_mono_s() - t0);
  go_ontology_info_t in;
  go_ontology_info(o, &in);
  assert_int_equal(c->terms, (long long)in.n_terms);
  assert_int_equal(c->obsolete, (long long)in.n_obsolete);
  assert_int_equal(c->alt, (long long)in.n_alt_ids);
  assert_true(c->n_t > 0);
}


#endif
