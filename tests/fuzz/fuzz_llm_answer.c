// fuzz_llm_answer — arbitrary bytes as an LLM answer through the interpreter's parsers: the
// prediction parser (first byte: number of proteins 1..32 and whether accessions are known), the
// explanation parser, and the Anthropic / OpenAI response-body parser. Each must return a result or
// a recorded failure with a reason, never crash or hang; accepted predictions are finite and in
// [0, 1]; an accepted explanation is non-empty, at most 1000 bytes, one line.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t m = (size_t)(data[0] & 31) + 1;
  int with_acc = data[0] & 32;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  static const char *const acc[32] = {"P00001", "P00002", "P00003", "Q9Y6K9", "O00001", "A0A183", "P12345", "Q00001",
                                      "P00009", "P00010", "P00011", "P00012", "P00013", "P00014", "P00015", "P00016",
                                      "P00017", "P00018", "P00019", "P00020", "P00021", "P00022", "P00023", "P00024",
                                      "P00025", "P00026", "P00027", "P00028", "P00029", "P00030", "P00031", "P00032"};
  double out[32];
  char why[200];
  why[0] = 0;
  int rc = interp_parse_predictions(text, len, m, with_acc ? acc : NULL, out, why, sizeof why);
  if (rc == 0) {
    for (size_t i = 0; i < m; i++)
      if (!isfinite(out[i]) || out[i] < 0 || out[i] > 1) abort();
  } else if (rc != PS_EFORMAT || !why[0]) {
    abort();
  }
  char *s = malloc(len + 1);
  memcpy(s, text, len);
  s[len] = 0;
  char *e = NULL;
  why[0] = 0;
  rc = interp_parse_explanation(s, &e, why, sizeof why);
  if (rc == 0) {
    size_t l = strlen(e);
    if (!l || l > 1000 || strchr(e, '\n') || strchr(e, '\r')) abort();
    free(e);
  } else if (e || !why[0]) {
    abort();
  }
  free(s);
  for (int api = 0; api < 2; api++) {
    char *t = NULL;
    uint64_t in = 0, ou = 0;
    why[0] = 0;
    rc = llm_parse_response((llm_api_t)api, text, len, &t, &in, &ou, why, sizeof why);
    if (rc == 0) {
      if (!t) abort();
      free(t);
    } else if (t || !why[0]) {
      abort();
    }
  }
  return 0;
}
