#!/usr/bin/env bash
# Trainer vs PyTorch parity (meson test unit_torch_parity): parity_torch.sh PARITY_TORCH PARITY_TORCH_PY
# For each of topk (AuxK active, its top-k_aux cut reached), relu (L1 with warm-up; dense and
# sparse paths, and a step mixing them), batchtopk (AuxK with n_dead < k_aux in some steps), a
# topk transcoder (with per-sample normalisation), a single-threaded one-chunk topk run with
# k_aux > n_dead, and jumprelu (SAELens' defaults: bandwidth and initial threshold 0.001, L0
# coefficient 1 with warm-up, dense and sparse paths; and a wider window with per-sample
# normalisation on the sparse path; both with pre-activations inside the STE window above and
# below theta), Matryoshka topk and batchtopk (nested prefixes: the mean of the prefixes'
# reconstruction errors), the C
# trainer (parity_torch) and the PyTorch reference (parity_torch.py) train
# the same initial model on the same 20 batches: every step's losses and gradient (at the C
# side's parameters) and PyTorch's own run (losses, final parameters, Adam state) must agree,
# tolerances in parity_torch.py. Then negative controls: the reference with a deliberately wrong
# setting (aux coefficient, undetached AuxK residual, L1 coefficient, ...) must fail the
# comparison, so the test can see such a difference.
# Exit 77 (skip) when /usr/bin/python3 cannot import torch.
set -uo pipefail
drv=${1:?usage: parity_torch.sh PARITY_TORCH PARITY_TORCH_PY}
py=${2:?usage: parity_torch.sh PARITY_TORCH PARITY_TORCH_PY}
PY=/usr/bin/python3
if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "parity_torch.sh: skip: $PY cannot import torch and numpy (apt-get install python3-torch)"
  exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/protsae-parity.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
fail=0
run() {  # name arch k requirements [driver options]
  local name=$1 arch=$2 k=$3 req=$4
  shift 4
  if ! "$drv" "$arch" "$k" "$T/$name" "$@"; then
    echo "parity_torch.sh: FAIL: parity_torch $arch $k $* exited with an error"
    fail=1
    return
  fi
  "$PY" "$py" "$T/$name" --require "$req"
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "parity_torch.sh: FAIL: $name: parity_torch.py exited $rc"
    fail=1
  fi
}
run topk topk 8 aux,aux_trunc
run relu relu 8 dense,sparse,mixed
run batchtopk batchtopk 8 aux,aux_scale
run transcoder transcoder 8 aux --norm 1
run topk_kaux48 topk 8 aux,aux_scale --threads 1 --chunk 1024 --seed 2 --k-aux 48
run jumprelu jumprelu 0 dense,sparse,mixed,window
run matryoshka topk 8 aux --matryoshka 5,13,30
run matryoshka_btk batchtopk 8 aux --matryoshka 10,40 --seed 5
run jumprelu_wide jumprelu 0 sparse,window --dense-threshold 2 --norm 1 --bandwidth 0.05 --init-threshold 0.01 --l0 0.2 --seed 3
# negative controls: the same C results against a wrong reference must not pass
neg() {  # name perturbation
  local out rc
  [ -d "$T/$1" ] || return
  out=$("$PY" "$py" "$T/$1" --perturb "$2" 2>&1)
  rc=$?
  if [ $rc -ne 1 ]; then
    echo "$out"
    echo "parity_torch.sh: FAIL: negative control $1 --perturb $2 exited $rc, expected 1 (mismatch): the test cannot see it"
    fail=1
  else
    echo "negative control $1 --perturb $2: detected"
  fi
}
for p in aux_coeff no_detach unit_norm dead_steps k_aux clip lr beta2; do neg topk $p; done
for p in l1_coeff l1_warmup; do neg relu $p; done
for p in ema k_aux; do neg batchtopk $p; done
neg transcoder aux_coeff
neg topk_kaux48 k_aux
for p in l0_coeff bandwidth no_theta_ste l1_warmup clip; do neg jumprelu $p; done
for p in l0_coeff no_theta_ste; do neg jumprelu_wide $p; done
for p in matryoshka_sum matryoshka_prefix aux_coeff; do neg matryoshka $p; done
for p in matryoshka_sum matryoshka_prefix; do neg matryoshka_btk $p; done
[ $fail -eq 0 ] && echo "parity_torch.sh: all architectures match PyTorch"
exit $fail
