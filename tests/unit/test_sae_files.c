// sae_save's cfg.json against what SAELens v6 reads (sae_lens/saes/sae.py SAEConfig / SAEMetadata,
// topk_sae.py, transcoder.py; loading/pretrained_sae_loaders.py handle_config_defaulting, which
// takes the current path only when metadata.sae_lens_version >= 6): the top-level config fields,
// the "metadata" object, architecture names (transcoders as SAELens transcoders with
// hook_name_out), ESM hook names without negative indices; and the round trip through sae_load,
// also of protsae directories written before (hook_name "layers.N").
#include <jansson.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fixture.h"
#include "sae.h"
#include "sae_fixture.h"

// Save s into a fresh scratch subdirectory NAME; returns cfg.json parsed (and its text in txt).
static json_t *save_cfg(const sae_t *s, const char *name, char *dir, size_t cap, char **txt) {
  ps_err_t err = {0};
  assert_int_equal(mkdir(fx_path(dir, cap, name), 0755), 0);
  assert_int_equal(sae_save(s, dir, 1.0f, 1.0f, &err), 0);
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/cfg.json", dir);
  json_error_t je;
  json_t *j = json_load_file(p, 0, &je);
  assert_non_null(j);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  *txt = calloc(1, 65536);
  size_t nr = fread(*txt, 1, 65535, f);
  (*txt)[nr] = 0;
  fclose(f);
  return j;
}

static const char *str_of(json_t *j, const char *k) {
  json_t *v = json_object_get(j, k);
  assert_true(json_is_string(v));
  return json_string_value(v);
}

// The fields every SAELens v6 config carries (SAEConfig) and the metadata block.
static void check_common(json_t *j, int64_t d, int64_t n, const char *hook, int64_t hook_layer) {
  assert_int_equal(json_integer_value(json_object_get(j, "d_in")), d);
  assert_int_equal(json_integer_value(json_object_get(j, "d_sae")), n);
  assert_string_equal(str_of(j, "dtype"), "float32");
  assert_string_equal(str_of(j, "device"), "cpu");
  assert_true(json_is_boolean(json_object_get(j, "apply_b_dec_to_input")));
  assert_string_equal(str_of(j, "normalize_activations"), "none");
  assert_string_equal(str_of(j, "reshape_activations"), "none");
  // SAELens v6 moved these into metadata; at the top they would look like a pre-6 config
  assert_null(json_object_get(j, "hook_name"));
  assert_null(json_object_get(j, "model_name"));
  assert_null(json_object_get(j, "activation_fn"));
  json_t *m = json_object_get(j, "metadata");
  assert_true(json_is_object(m));
  int major = 0;
  assert_int_equal(sscanf(str_of(m, "sae_lens_version"), "%d.", &major), 1);
  assert_true(major >= 6);
  assert_string_equal(str_of(m, "model_name"), "esm2_t6_8M_UR50D");
  assert_string_equal(str_of(m, "hook_name"), hook);
  if (hook_layer >= 0) assert_int_equal(json_integer_value(json_object_get(m, "hook_layer")), hook_layer);
  else assert_true(json_is_null(json_object_get(m, "hook_layer")));
  const char *keys[] = {"hook_head_index", "prepend_bos", "context_size", "dataset_path", "model_from_pretrained_kwargs",
                        "sae_lens_training_version"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) assert_non_null(json_object_get(m, keys[i]));
  assert_true(json_is_true(json_object_get(m, "prepend_bos")));
}

static void test_v6_sae_fields(void **st) {
  (void)st;
  ps_err_t err = {0};
  sae_t *s = make_sae(SAE_TOPK, 8, 24, 8, 5, 0);
  s->cfg.layer = 6;
  snprintf(s->cfg.model_name, sizeof s->cfg.model_name, "esm2_t6_8M_UR50D");
  char dir[PATH_MAX], *txt;
  json_t *j = save_cfg(s, "topk", dir, sizeof dir, &txt);
  assert_string_equal(str_of(j, "architecture"), "topk");
  assert_int_equal(json_integer_value(json_object_get(j, "k")), 5);
  assert_true(json_is_true(json_object_get(j, "apply_b_dec_to_input")));
  check_common(j, 8, 24, "blocks.5.hook_resid_post", 5);
  assert_null(strstr(txt, "layers."));
  json_decref(j);
  free(txt);
  sae_t *l = NULL;
  assert_int_equal(sae_load(&l, dir, &err), 0);
  assert_int_equal(l->cfg.arch, SAE_TOPK);
  assert_int_equal(l->cfg.k, 5);
  assert_int_equal(l->cfg.layer, 6);
  assert_false(l->cfg.transcoder);
  assert_memory_equal(l->params, s->params, s->n_params * sizeof(float));
  sae_free(&l);
  // relu -> "standard", jumprelu and batchtopk -> "jumprelu"; layer 0 = the embedding; unknown
  struct { sae_arch_t a; const char *name; int32_t layer; const char *hook; int64_t hl; } cases[] = {
      {SAE_RELU, "standard", 0, "hook_embed", -1},
      {SAE_JUMPRELU, "jumprelu", 12, "blocks.11.hook_resid_post", 11},
      {SAE_BATCHTOPK, "jumprelu", -1, "protsae.layer_unknown", -1}};
  for (int i = 0; i < 3; i++) {
    sae_t *r = make_sae(cases[i].a, 8, 24, 8, cases[i].a == SAE_BATCHTOPK ? 4 : 0, 0);
    if (r->threshold)
      for (int q = 0; q < 24; q++) r->threshold[q] = 0.01f * (float)q;
    r->cfg.layer = cases[i].layer;
    snprintf(r->cfg.model_name, sizeof r->cfg.model_name, "esm2_t6_8M_UR50D");
    char name[16];
    snprintf(name, sizeof name, "a%d", i);
    j = save_cfg(r, name, dir, sizeof dir, &txt);
    assert_string_equal(str_of(j, "architecture"), cases[i].name);
    check_common(j, 8, 24, cases[i].hook, cases[i].hl);
    assert_null(strstr(txt, "layers."));
    assert_null(strstr(txt, ".-1"));
    json_decref(j);
    free(txt);
    assert_int_equal(sae_load(&l, dir, &err), 0);
    assert_int_equal(l->cfg.arch, cases[i].a);
    assert_int_equal(l->cfg.layer, cases[i].layer);
    sae_free(&l);
    sae_free(&r);
  }
  sae_free(&s);
}

// Transcoders: SAELens' transcoder architectures, d_out and hook_name_out at the top level.
static void test_v6_transcoder_fields(void **st) {
  (void)st;
  ps_err_t err = {0};
  struct { sae_arch_t a; const char *name; } cases[] = {
      {SAE_RELU, "transcoder"}, {SAE_JUMPRELU, "jumprelu_transcoder"}, {SAE_TOPK, "topk_transcoder"}};
  for (int i = 0; i < 3; i++) {
    sae_t *s = make_sae(cases[i].a, 8, 24, 6, cases[i].a == SAE_TOPK ? 3 : 0, 0);
    s->cfg.layer = 4;
    s->cfg.target_layer = 5;
    snprintf(s->cfg.model_name, sizeof s->cfg.model_name, "esm2_t6_8M_UR50D");
    char dir[PATH_MAX], name[16], *txt;
    snprintf(name, sizeof name, "t%d", i);
    json_t *j = save_cfg(s, name, dir, sizeof dir, &txt);
    assert_string_equal(str_of(j, "architecture"), cases[i].name);
    check_common(j, 8, 24, "blocks.3.hook_resid_post", 3);
    assert_int_equal(json_integer_value(json_object_get(j, "d_out")), 6);
    assert_string_equal(str_of(j, "hook_name_out"), "blocks.4.hook_resid_post");
    assert_int_equal(json_integer_value(json_object_get(j, "hook_layer_out")), 4);
    assert_true(json_is_null(json_object_get(j, "hook_head_index_out")));
    assert_true(json_is_false(json_object_get(j, "apply_b_dec_to_input")));
    json_decref(j);
    // SAELens' own transcoder dir (no protsae fields) loads as a transcoder with its layers
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/cfg.json", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"architecture\": \"%s\", \"d_in\": 8, \"d_sae\": 24, \"d_out\": 6, \"dtype\": \"float32\", "
               "\"apply_b_dec_to_input\": false, \"normalize_activations\": \"none\", %s"
               "\"hook_name_out\": \"blocks.4.hook_resid_post\", \"metadata\": {\"hook_name\": "
               "\"blocks.3.hook_resid_post\", \"model_name\": \"m\", \"sae_lens_version\": \"6.5.1\"}}",
            cases[i].name, cases[i].a == SAE_TOPK ? "\"k\": 3, " : "");
    fclose(f);
    sae_t *l = NULL;
    assert_int_equal(sae_load(&l, dir, &err), 0);
    assert_true(l->cfg.transcoder);
    assert_int_equal(l->cfg.arch, cases[i].a);
    assert_int_equal(l->cfg.d_out, 6);
    assert_int_equal(l->cfg.layer, 4);
    assert_int_equal(l->cfg.target_layer, 5);
    assert_string_equal(l->cfg.model_name, "m");
    assert_memory_equal(l->params, s->params, s->n_params * sizeof(float));
    free(txt);
    sae_free(&l);
    sae_free(&s);
  }
}

// cfg.json as protsae wrote it before the v6 layout ("layers.N" hooks, hook_layer in ESM numbering).
static void test_old_protsae_dir(void **st) {
  (void)st;
  ps_err_t err = {0};
  sae_t *s = make_sae(SAE_TOPK, 8, 24, 8, 5, 0);
  char dir[PATH_MAX], *txt;
  json_decref(save_cfg(s, "old", dir, sizeof dir, &txt));
  free(txt);
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/cfg.json", dir);
  FILE *f = fopen(p, "w");
  fputs("{\"architecture\": \"topk\", \"d_in\": 8, \"d_sae\": 24, \"d_out\": 8, \"dtype\": \"float32\", "
        "\"apply_b_dec_to_input\": true, \"normalize_activations\": \"none\", \"activation_fn\": \"topk\", "
        "\"activation_fn_kwargs\": {\"k\": 5}, \"k\": 5, \"model_name\": \"esm2\", \"hook_name\": \"layers.3\", "
        "\"hook_layer\": 3, \"is_transcoder\": false, \"protsae_arch\": \"topk\", \"protsae_level\": \"residue\", "
        "\"protsae_target_layer\": -1}",
        f);
  fclose(f);
  sae_t *l = NULL;
  assert_int_equal(sae_load(&l, dir, &err), 0);
  assert_int_equal(l->cfg.arch, SAE_TOPK);
  assert_int_equal(l->cfg.k, 5);
  assert_int_equal(l->cfg.layer, 3);
  assert_string_equal(l->cfg.level, "residue");
  sae_free(&l);
  sae_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_v6_sae_fields), cmocka_unit_test(test_v6_transcoder_fields),
                                     cmocka_unit_test(test_old_protsae_dir)};
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
