// pickle.c — a strict pickle interpreter for torch.save's data.pkl: executes nothing, knows the
// opcodes torch.save emits and the callables that rebuild tensors; any other global called
// yields an opaque value (an error only if that value is then needed). See ptfile.h for the list
// and internal.h for the values it builds.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *pt_kind_name(pv_kind_t k) {
  static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list",
                                      "dict", "global", "storage", "tensor", "opaque object"};
  return names[k];
}

void pt_values_free(pt_values_t *vals) {
  pv_t *v = vals->head;
  while (v) {
    pv_t *nx = v->chain;
    free(v->items);
    free(v->size);
    free(v);
    v = nx;
  }
  vals->head = NULL;
  vals->n = 0;
}

pv_t *pt_dict_get(const pv_t *d, const char *key) {
  for (size_t k = d->n; k >= 2; k -= 2)  // last assignment wins, as in Python
    if (pt_str_is(d->items[k - 2], key)) return d->items[k - 1];
  return NULL;
}

typedef struct vm {
  const char *path, *name;  // for messages: the file and its data.pkl entry
  pt_values_t *vals;
  ps_err_t *err;
  const uint8_t *p;
  size_t n, pos, op;      // buffer, length, read position, offset of the current opcode
  pv_t **st;              // value stack
  size_t sn, scap;
  size_t *mk;             // mark stack: stack heights
  size_t mn, mcap;
  pv_t **memo;
  size_t memo_cap, memo_count;
} vm_t;

#define VM_ERR(vm, code, ...) vm_err(vm, code, __VA_ARGS__)

__attribute__((format(printf, 3, 4))) static int vm_err(vm_t *vm, int code, const char *fmt, ...) {
  char m[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  return ps_err_set(vm->err, code, "%s: %s byte %zu: %s", vm->path, vm->name, vm->op, m);
}

static pv_t *pv_new(vm_t *vm, pv_kind_t kind) {
  if (vm->vals->n >= PT_MAX_PICKLE_NODES) {
    VM_ERR(vm, PS_EUNSUPP, "more than %zu pickled values", PT_MAX_PICKLE_NODES);
    return NULL;
  }
  pv_t *v = ps_xcalloc(1, sizeof *v);
  v->kind = kind;
  v->pos = vm->op;
  v->chain = vm->vals->head;
  vm->vals->head = v;
  vm->vals->n++;
  return v;
}

static void pv_append(pv_t *c, pv_t *x) {
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 4;
    c->items = ps_xrealloc(c->items, c->cap * sizeof *c->items);
  }
  c->items[c->n++] = x;
}

static int push(vm_t *vm, pv_t *v) {
  if (!v) return vm->err ? vm->err->code : PS_EUNSUPP;
  if (vm->sn == vm->scap) {
    vm->scap = vm->scap ? vm->scap * 2 : 64;
    vm->st = ps_xrealloc(vm->st, vm->scap * sizeof *vm->st);
  }
  vm->st[vm->sn++] = v;
  return 0;
}

static size_t stack_base(const vm_t *vm) { return vm->mn ? vm->mk[vm->mn - 1] : 0; }

static pv_t *pop(vm_t *vm) {
  if (vm->sn <= stack_base(vm)) {
    VM_ERR(vm, PS_EFORMAT, "pickle stack underflow");
    return NULL;
  }
  return vm->st[--vm->sn];
}

static pv_t *top(vm_t *vm) {
  if (vm->sn <= stack_base(vm)) {
    VM_ERR(vm, PS_EFORMAT, "pickle stack underflow");
    return NULL;
  }
  return vm->st[vm->sn - 1];
}

// Pop to the last MARK: *first = index of the first item, *count items (still in vm->st).
static int pop_mark(vm_t *vm, size_t *first, size_t *count) {
  if (!vm->mn) return VM_ERR(vm, PS_EFORMAT, "no MARK on the pickle stack");
  size_t b = vm->mk[--vm->mn];
  *first = b;
  *count = vm->sn - b;
  vm->sn = b;
  return 0;
}

static int need(vm_t *vm, size_t k) {
  if (vm->n - vm->pos < k) {
    vm->op = vm->pos;
    return VM_ERR(vm, PS_ETRUNC, "pickle ends inside an opcode argument (%zu more bytes needed)", k);
  }
  return 0;
}

static int memo_put(vm_t *vm, uint64_t idx) {
  pv_t *v = top(vm);
  if (!v) return vm->err->code;
  if (idx >= PT_MAX_PICKLE_NODES) return VM_ERR(vm, PS_EUNSUPP, "memo key %llu too large", (unsigned long long)idx);
  if (idx >= vm->memo_cap) {
    size_t nc = vm->memo_cap ? vm->memo_cap : 64;
    while (nc <= idx) nc *= 2;
    vm->memo = ps_xrealloc(vm->memo, nc * sizeof *vm->memo);
    memset(vm->memo + vm->memo_cap, 0, (nc - vm->memo_cap) * sizeof *vm->memo);
    vm->memo_cap = nc;
  }
  if (!vm->memo[idx]) vm->memo_count++;
  vm->memo[idx] = v;
  return 0;
}

static int memo_get(vm_t *vm, uint64_t idx) {
  if (idx >= vm->memo_cap || !vm->memo[idx])
    return VM_ERR(vm, PS_EFORMAT, "memo key %llu used before it was set", (unsigned long long)idx);
  return push(vm, vm->memo[idx]);
}

static int push_str(vm_t *vm, pv_kind_t kind, uint64_t len) {
  if (len > vm->n - vm->pos) return VM_ERR(vm, PS_ETRUNC, "string of %llu bytes runs past the pickle's end",
                                           (unsigned long long)len);
  pv_t *v = pv_new(vm, kind);
  if (!v) return vm->err->code;
  v->s = (const char *)vm->p + vm->pos;
  v->len = (size_t)len;
  vm->pos += (size_t)len;
  return push(vm, v);
}

static int push_int(vm_t *vm, int64_t x) {
  pv_t *v = pv_new(vm, PV_INT);
  if (!v) return vm->err->code;
  v->i = x;
  return push(vm, v);
}

int pt_str_is(const pv_t *v, const char *s) {
  size_t n = strlen(s);
  return v && v->kind == PV_STR && v->len == n && !memcmp(v->s, s, n);
}

static int mem_is(const char *p, size_t n, const char *s) { return strlen(s) == n && !memcmp(p, s, n); }

static const struct {
  const char *name;
  pt_dtype_t dtype;
  const char *dtype_name;
  size_t esize;
} storage_types[] = {
    {"FloatStorage", PT_DTYPE_F32, "float32", 4},   {"HalfStorage", PT_DTYPE_F16, "float16", 2},
    {"BFloat16Storage", PT_DTYPE_BF16, "bfloat16", 2}, {"DoubleStorage", PT_DTYPE_F64, "float64", 8},
    {"LongStorage", PT_DTYPE_OTHER, "int64", 8},    {"IntStorage", PT_DTYPE_OTHER, "int32", 4},
    {"ShortStorage", PT_DTYPE_OTHER, "int16", 2},   {"CharStorage", PT_DTYPE_OTHER, "int8", 1},
    {"ByteStorage", PT_DTYPE_OTHER, "uint8", 1},    {"BoolStorage", PT_DTYPE_OTHER, "bool", 1},
    {"ComplexFloatStorage", PT_DTYPE_OTHER, "complex64", 8},
    {"ComplexDoubleStorage", PT_DTYPE_OTHER, "complex128", 16},
};

static int make_global(vm_t *vm, const char *mod, size_t ml, const char *name, size_t nl) {
  pv_t *g = pv_new(vm, PV_GLOBAL);
  if (!g) return vm->err->code;
  g->s = mod;
  g->len = ml;
  g->s2 = name;
  g->len2 = nl;
  g->g = G_OTHER;
  if (mem_is(mod, ml, "torch._utils")) {
    if (mem_is(name, nl, "_rebuild_tensor_v2")) g->g = G_REBUILD_V2;
    else if (mem_is(name, nl, "_rebuild_tensor")) g->g = G_REBUILD;
    else if (mem_is(name, nl, "_rebuild_parameter")) g->g = G_REBUILD_PARAM;
  } else if (mem_is(mod, ml, "collections") && mem_is(name, nl, "OrderedDict")) {
    g->g = G_ORDERED_DICT;
  } else if (mem_is(mod, ml, "torch")) {
    for (size_t k = 0; k < sizeof storage_types / sizeof *storage_types; k++) {
      if (mem_is(name, nl, storage_types[k].name)) {
        g->g = G_STORAGE_TYPE;
        g->dtype = storage_types[k].dtype;
        g->dtype_name = storage_types[k].dtype_name;
        g->esize = storage_types[k].esize;
      }
    }
  }
  return push(vm, g);
}

// GLOBAL's argument: "module\nname\n".
static int op_global(vm_t *vm) {
  const uint8_t *a = vm->p + vm->pos, *end = vm->p + vm->n;
  const uint8_t *nl1 = memchr(a, '\n', (size_t)(end - a));
  const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
  if (!nl2) return VM_ERR(vm, PS_ETRUNC, "GLOBAL without its two newline-terminated names");
  vm->pos = (size_t)(nl2 + 1 - vm->p);
  return make_global(vm, (const char *)a, (size_t)(nl1 - a), (const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static int int_tuple(const pv_t *t, int64_t *out, int *n) {
  if (!t || t->kind != PV_TUPLE || t->n > PT_MAX_DIMS) return -1;
  for (size_t k = 0; k < t->n; k++) {
    if (t->items[k]->kind != PV_INT) return -1;
    out[k] = t->items[k]->i;
  }
  *n = (int)t->n;
  return 0;
}

static int op_reduce(vm_t *vm) {
  pv_t *args = pop(vm);
  pv_t *fn = args ? pop(vm) : NULL;
  if (!fn) return vm->err->code;
  if (fn->kind != PV_GLOBAL)
    return VM_ERR(vm, PS_EFORMAT, "REDUCE calls a %s, not a global", pt_kind_name(fn->kind));
  if (args->kind != PV_TUPLE)
    return VM_ERR(vm, PS_EFORMAT, "REDUCE arguments are a %s, not a tuple", pt_kind_name(args->kind));
  pv_t *r = NULL;
  switch (fn->g) {
  case G_REBUILD_V2:
  case G_REBUILD: {
    const char *what = fn->g == G_REBUILD_V2 ? "_rebuild_tensor_v2" : "_rebuild_tensor";
    if (args->n < 4) return VM_ERR(vm, PS_EFORMAT, "%s with %zu arguments", what, args->n);
    pv_t *st = args->items[0], *off = args->items[1];
    if (st->kind != PV_STORAGE)
      return VM_ERR(vm, PS_EFORMAT, "%s: argument 1 is a %s, not a storage", what, pt_kind_name(st->kind));
    if (off->kind != PV_INT || off->i < 0)
      return VM_ERR(vm, PS_EFORMAT, "%s: storage offset is not a non-negative int", what);
    if (!(r = pv_new(vm, PV_TENSOR))) return vm->err->code;
    r->size = ps_xcalloc(2 * PT_MAX_DIMS, sizeof *r->size);
    r->stride = r->size + PT_MAX_DIMS;
    int nd1 = 0, nd2 = 0;
    if (int_tuple(args->items[2], r->size, &nd1) < 0 || int_tuple(args->items[3], r->stride, &nd2) < 0 || nd1 != nd2)
      return VM_ERR(vm, PS_EFORMAT, "%s: size and stride are not two int tuples of one length <= %d", what,
                    PT_MAX_DIMS);
    for (int k = 0; k < nd1; k++)
      if (r->size[k] < 0) return VM_ERR(vm, PS_EFORMAT, "%s: negative size %lld", what, (long long)r->size[k]);
    r->storage = st;
    r->offset = off->i;
    r->ndim = nd1;
    break;
  }
  case G_REBUILD_PARAM:
    if (args->n < 1 || args->items[0]->kind != PV_TENSOR)
      return VM_ERR(vm, PS_EFORMAT, "_rebuild_parameter without a tensor");
    r = args->items[0];
    break;
  case G_ORDERED_DICT:
    if (!(r = pv_new(vm, args->n == 0 ? PV_DICT : PV_OPAQUE))) return vm->err->code;
    break;
  default:
    if (!(r = pv_new(vm, PV_OPAQUE))) return vm->err->code;  // never executed; fails only if used
    r->s = fn->s;
    r->len = fn->len;
    r->s2 = fn->s2;
    r->len2 = fn->len2;
    break;
  }
  return push(vm, r);
}

static int op_persid(vm_t *vm) {
  pv_t *pid = pop(vm);
  if (!pid) return vm->err->code;
  if (pid->kind != PV_TUPLE || pid->n < 5 || !pt_str_is(pid->items[0], "storage"))
    return VM_ERR(vm, PS_EUNSUPP, "persistent id is not ('storage', type, key, location, numel)");
  pv_t *ty = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
  if (ty->kind != PV_GLOBAL || ty->g != G_STORAGE_TYPE) {
    char mb[80], nb[80];
    if (ty->kind == PV_GLOBAL)
      return VM_ERR(vm, PS_EUNSUPP, "storage type %s.%s is not a known torch storage", pt_show(ty->s, ty->len, mb, sizeof mb),
                    pt_show(ty->s2, ty->len2, nb, sizeof nb));
    return VM_ERR(vm, PS_EFORMAT, "storage type is a %s", pt_kind_name(ty->kind));
  }
  if (key->kind != PV_STR || key->len == 0 || memchr(key->s, 0, key->len))
    return VM_ERR(vm, PS_EFORMAT, "storage key is not a non-empty string");
  if (numel->kind != PV_INT || numel->i < 0) return VM_ERR(vm, PS_EFORMAT, "storage size is not a non-negative int");
  pv_t *s = pv_new(vm, PV_STORAGE);
  if (!s) return vm->err->code;
  s->s = key->s;
  s->len = key->len;
  s->s2 = ty->s2;
  s->len2 = ty->len2;
  s->dtype = ty->dtype;
  s->dtype_name = ty->dtype_name;
  s->esize = ty->esize;
  s->numel = (uint64_t)numel->i;
  return push(vm, s);
}

int pt_pickle_run(const uint8_t *p, size_t n, const char *path, const char *name, pt_values_t *vals, pv_t **result,
                  ps_err_t *err) {
  vm_t vm;
  memset(&vm, 0, sizeof vm);
  vm.path = path;
  vm.name = name;
  vm.vals = vals;
  vm.err = err;
  vm.p = p;
  vm.n = n;
  int rc = 0;
  size_t first = 0, cnt = 0;
  pv_t *v, *w, *c;
  *result = NULL;
  for (;;) {
    vm.op = vm.pos;
    if (vm.pos >= vm.n) {
      rc = VM_ERR(&vm, PS_ETRUNC, "pickle ends without STOP");
      goto out;
    }
    uint8_t op = vm.p[vm.pos++];
    switch (op) {
    case 0x80:  // PROTO
      if ((rc = need(&vm, 1)) < 0) goto out;
      if (vm.p[vm.pos] > 5) {
        rc = VM_ERR(&vm, PS_EUNSUPP, "pickle protocol %u", vm.p[vm.pos]);
        goto out;
      }
      vm.pos++;
      break;
    case 0x95:  // FRAME
      if ((rc = need(&vm, 8)) < 0) goto out;
      vm.pos += 8;
      break;
    case '.':  // STOP
      if (!(v = pop(&vm))) {
        rc = err->code;
        goto out;
      }
      *result = v;
      rc = 0;
      goto out;
    case '}':
      rc = push(&vm, pv_new(&vm, PV_DICT));
      break;
    case ']':
      rc = push(&vm, pv_new(&vm, PV_LIST));
      break;
    case ')':
      rc = push(&vm, pv_new(&vm, PV_TUPLE));
      break;
    case 'N':
      rc = push(&vm, pv_new(&vm, PV_NONE));
      break;
    case 0x88:
    case 0x89:
      if ((v = pv_new(&vm, PV_BOOL))) v->i = op == 0x88;
      rc = push(&vm, v);
      break;
    case '(':  // MARK
      if (vm.mn == vm.mcap) {
        vm.mcap = vm.mcap ? vm.mcap * 2 : 16;
        vm.mk = ps_xrealloc(vm.mk, vm.mcap * sizeof *vm.mk);
      }
      if (vm.mn >= PT_MAX_PICKLE_NODES) {
        rc = VM_ERR(&vm, PS_EUNSUPP, "too many nested MARKs");
        goto out;
      }
      vm.mk[vm.mn++] = vm.sn;
      break;
    case 'q':  // BINPUT
      if ((rc = need(&vm, 1)) < 0) goto out;
      rc = memo_put(&vm, vm.p[vm.pos++]);
      break;
    case 'r':  // LONG_BINPUT
      if ((rc = need(&vm, 4)) < 0) goto out;
      rc = memo_put(&vm, pt_rd32(vm.p + vm.pos));
      vm.pos += 4;
      break;
    case 0x94:  // MEMOIZE
      rc = memo_put(&vm, vm.memo_count);
      break;
    case 'h':  // BINGET
      if ((rc = need(&vm, 1)) < 0) goto out;
      rc = memo_get(&vm, vm.p[vm.pos++]);
      break;
    case 'j':  // LONG_BINGET
      if ((rc = need(&vm, 4)) < 0) goto out;
      rc = memo_get(&vm, pt_rd32(vm.p + vm.pos));
      vm.pos += 4;
      break;
    case 'X':  // BINUNICODE
    case 'B':  // BINBYTES
      if ((rc = need(&vm, 4)) < 0) goto out;
      vm.pos += 4;
      rc = push_str(&vm, op == 'X' ? PV_STR : PV_BYTES, pt_rd32(vm.p + vm.pos - 4));
      break;
    case 'T':  // BINSTRING (signed length)
      if ((rc = need(&vm, 4)) < 0) goto out;
      vm.pos += 4;
      if (pt_rd32(vm.p + vm.pos - 4) & 0x80000000u) {
        rc = VM_ERR(&vm, PS_EFORMAT, "negative BINSTRING length");
        goto out;
      }
      rc = push_str(&vm, PV_STR, pt_rd32(vm.p + vm.pos - 4));
      break;
    case 0x8c:  // SHORT_BINUNICODE
    case 'U':   // SHORT_BINSTRING
    case 'C':   // SHORT_BINBYTES
      if ((rc = need(&vm, 1)) < 0) goto out;
      vm.pos++;
      rc = push_str(&vm, op == 'C' ? PV_BYTES : PV_STR, vm.p[vm.pos - 1]);
      break;
    case 0x8d:  // BINUNICODE8
    case 0x8e:  // BINBYTES8
      if ((rc = need(&vm, 8)) < 0) goto out;
      vm.pos += 8;
      rc = push_str(&vm, op == 0x8d ? PV_STR : PV_BYTES, pt_rd64(vm.p + vm.pos - 8));
      break;
    case 'J':  // BININT
      if ((rc = need(&vm, 4)) < 0) goto out;
      rc = push_int(&vm, (int32_t)pt_rd32(vm.p + vm.pos));
      vm.pos += 4;
      break;
    case 'K':  // BININT1
      if ((rc = need(&vm, 1)) < 0) goto out;
      rc = push_int(&vm, vm.p[vm.pos++]);
      break;
    case 'M':  // BININT2
      if ((rc = need(&vm, 2)) < 0) goto out;
      rc = push_int(&vm, pt_rd16(vm.p + vm.pos));
      vm.pos += 2;
      break;
    case 0x8a:    // LONG1
    case 0x8b: {  // LONG4
      uint64_t nb;
      if (op == 0x8a) {
        if ((rc = need(&vm, 1)) < 0) goto out;
        nb = vm.p[vm.pos++];
      } else {
        if ((rc = need(&vm, 4)) < 0) goto out;
        nb = pt_rd32(vm.p + vm.pos);
        vm.pos += 4;
      }
      if ((rc = need(&vm, nb)) < 0) goto out;
      if (nb > 8) {
        rc = VM_ERR(&vm, PS_EUNSUPP, "integer of %llu bytes", (unsigned long long)nb);
        goto out;
      }
      uint64_t x = 0;
      for (uint64_t k = 0; k < nb; k++) x |= (uint64_t)vm.p[vm.pos + k] << (8 * k);
      if (nb && nb < 8 && (vm.p[vm.pos + nb - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * nb);  // sign-extend
      vm.pos += nb;
      rc = push_int(&vm, (int64_t)x);
      break;
    }
    case 'G': {  // BINFLOAT, big-endian
      if ((rc = need(&vm, 8)) < 0) goto out;
      uint64_t b = 0;
      for (int k = 0; k < 8; k++) b = b << 8 | vm.p[vm.pos + k];
      vm.pos += 8;
      if ((v = pv_new(&vm, PV_FLOAT))) memcpy(&v->f, &b, 8);
      rc = push(&vm, v);
      break;
    }
    case 'c':
      rc = op_global(&vm);
      break;
    case 0x93:  // STACK_GLOBAL
      if (!(w = pop(&vm)) || !(v = pop(&vm))) {
        rc = err->code;
        goto out;
      }
      if (v->kind != PV_STR || w->kind != PV_STR) {
        rc = VM_ERR(&vm, PS_EFORMAT, "STACK_GLOBAL on a %s and a %s", pt_kind_name(v->kind), pt_kind_name(w->kind));
        goto out;
      }
      rc = make_global(&vm, v->s, v->len, w->s, w->len);
      break;
    case 'Q':
      rc = op_persid(&vm);
      break;
    case 't':  // TUPLE
    case 'l':  // LIST
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (!(v = pv_new(&vm, op == 't' ? PV_TUPLE : PV_LIST))) {
        rc = err->code;
        goto out;
      }
      for (size_t k = 0; k < cnt; k++) pv_append(v, vm.st[first + k]);
      rc = push(&vm, v);
      break;
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1/2/3
      size_t k = (size_t)(op - 0x84);
      if (vm.sn - stack_base(&vm) < k) {
        rc = VM_ERR(&vm, PS_EFORMAT, "pickle stack underflow");
        goto out;
      }
      if (!(v = pv_new(&vm, PV_TUPLE))) {
        rc = err->code;
        goto out;
      }
      for (size_t j = 0; j < k; j++) pv_append(v, vm.st[vm.sn - k + j]);
      vm.sn -= k;
      rc = push(&vm, v);
      break;
    }
    case 'd':  // DICT
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (cnt % 2) {
        rc = VM_ERR(&vm, PS_EFORMAT, "DICT with an odd number of items");
        goto out;
      }
      if (!(v = pv_new(&vm, PV_DICT))) {
        rc = err->code;
        goto out;
      }
      for (size_t k = 0; k < cnt; k++) pv_append(v, vm.st[first + k]);
      rc = push(&vm, v);
      break;
    case 'a':  // APPEND
      if (!(w = pop(&vm)) || !(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_LIST) pv_append(c, w);
      else if (c->kind != PV_OPAQUE) rc = VM_ERR(&vm, PS_EFORMAT, "APPEND to a %s", pt_kind_name(c->kind));
      break;
    case 'e':  // APPENDS
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (!(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_LIST)
        for (size_t k = 0; k < cnt; k++) pv_append(c, vm.st[first + k]);
      else if (c->kind != PV_OPAQUE) rc = VM_ERR(&vm, PS_EFORMAT, "APPENDS to a %s", pt_kind_name(c->kind));
      break;
    case 's':  // SETITEM
      if (!(w = pop(&vm)) || !(v = pop(&vm)) || !(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_DICT) {
        pv_append(c, v);
        pv_append(c, w);
      } else if (c->kind != PV_OPAQUE) {
        rc = VM_ERR(&vm, PS_EFORMAT, "SETITEM on a %s", pt_kind_name(c->kind));
      }
      break;
    case 'u':  // SETITEMS
      if ((rc = pop_mark(&vm, &first, &cnt)) < 0) goto out;
      if (cnt % 2) {
        rc = VM_ERR(&vm, PS_EFORMAT, "SETITEMS with an odd number of items");
        goto out;
      }
      if (!(c = top(&vm))) {
        rc = err->code;
        goto out;
      }
      if (c->kind == PV_DICT)
        for (size_t k = 0; k < cnt; k++) pv_append(c, vm.st[first + k]);
      else if (c->kind != PV_OPAQUE) rc = VM_ERR(&vm, PS_EFORMAT, "SETITEMS on a %s", pt_kind_name(c->kind));
      break;
    case 'R':
      rc = op_reduce(&vm);
      break;
    case 'b':  // BUILD: state is dropped (tensors and dicts need none here)
      if (!(w = pop(&vm)) || !top(&vm)) rc = err->code;
      break;
    case 0x81:  // NEWOBJ cls args -> opaque
      if (!(w = pop(&vm)) || !(v = pop(&vm))) {
        rc = err->code;
        goto out;
      }
      rc = push(&vm, pv_new(&vm, PV_OPAQUE));
      break;
    case '0':  // POP
      if (vm.sn > stack_base(&vm)) vm.sn--;
      else rc = pop_mark(&vm, &first, &cnt);
      break;
    case '1':  // POP_MARK
      rc = pop_mark(&vm, &first, &cnt);
      break;
    case '2':  // DUP
      if (!(v = top(&vm))) rc = err->code;
      else rc = push(&vm, v);
      break;
    default:
      rc = VM_ERR(&vm, PS_EUNSUPP, "unknown or unsupported pickle opcode 0x%02x ('%c')", op,
                  op >= 32 && op < 127 ? op : '?');
      break;
    }
    if (rc < 0) goto out;
  }
out:
  free(vm.st);
  free(vm.mk);
  free(vm.memo);
  return rc;
}

