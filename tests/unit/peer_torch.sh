#!/usr/bin/env bash
# Peer checkpoints vs PyTorch (meson test unit_sae_peer): peer_torch.sh PEER_TORCH PEER_TORCH_PY
# peer_torch.py (Debian's python3-torch) writes an InterPLM / dictionary_learning ae.pt and the
# reference study's Lightning .ckpt with random weights, rows and the modules' codes; peer_torch
# (C) loads each with sae_load and must encode the rows to the same codes, and must refuse the
# broken files naming the file and the tensor. Exit 77 (skip) when /usr/bin/python3 cannot import
# torch.
set -uo pipefail
drv=${1:?usage: peer_torch.sh PEER_TORCH PEER_TORCH_PY}
py=${2:?usage: peer_torch.sh PEER_TORCH PEER_TORCH_PY}
PY=/usr/bin/python3
if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "peer_torch.sh: skip: $PY cannot import torch and numpy (apt-get install python3-torch)"
  exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/protsae-peer.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
"$PY" "$py" "$T" || { echo "peer_torch.sh: FAIL: peer_torch.py exited $?"; exit 1; }
"$drv" "$T"
