#!/usr/bin/env bash
# Trainer vs PyTorch: same initial weights, same batches, 20 Adam steps; every architecture.
set -euo pipefail
drv=$1; py=$2
/usr/bin/python3 -c "import torch, numpy" 2>/dev/null || { echo "python3-torch missing: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-parity.XXXXXX); trap 'rm -rf "$T"' EXIT
for a in topk relu batchtopk transcoder; do
  "$drv" "$a" "$T/$a" >/dev/null
  /usr/bin/python3 "$py" "$a" "$T/$a"
done
