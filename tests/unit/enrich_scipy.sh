#!/usr/bin/env bash
# GO enrichment p-values vs scipy (tests/unit/enrich_scipy.py); the engine part runs on the real
# human annotations when ../shared/data is there. Exit 77 (skip) without Debian's python3-scipy.
set -euo pipefail
drv=$1; py=$2
/usr/bin/python3 -c "import scipy.stats, numpy" 2>/dev/null || { echo "python3-scipy missing: skip"; exit 77; }
d=${PROTSAE_SHARED:-${PROTSAE_SRC:-.}/../shared}/data/human-swissprot
if [ -r "$d/go_annotations.tsv.gz" ] && [ -r "$d/go-2022-07-01.obo.gz" ]; then
  exec /usr/bin/python3 "$py" "$drv" "$d/go-2022-07-01.obo.gz" "$d/go_annotations.tsv.gz"
fi
exec /usr/bin/python3 "$py" "$drv"
