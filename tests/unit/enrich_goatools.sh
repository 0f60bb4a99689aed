#!/usr/bin/env bash
# GO enrichment with the reference study's goatools settings (is_a-only propagation, Bonferroni per
# namespace, is_a depth; population annotated and analysed) through `protsae enrich`, against an
# independent scipy computation on the real human data (tests/unit/enrich_goatools.py).
# Exit 77 (skip) without Debian's python3-scipy or without the human data.
set -euo pipefail
cli=$1; py=$2
/usr/bin/python3 -c "import scipy.stats, numpy" 2>/dev/null || { echo "python3-scipy missing: skip"; exit 77; }
d=${PROTSAE_SHARED:-${PROTSAE_SRC:-.}/../shared}/data/human-swissprot
[ -r "$d/go_annotations.tsv.gz" ] && [ -r "$d/go-2022-07-01.obo.gz" ] || { echo "no human data at $d: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-enrich-goatools.XXXXXX); trap 'rm -rf "$T"' EXIT
/usr/bin/python3 "$py" "$cli" "$d/go-2022-07-01.obo.gz" "$d/go_annotations.tsv.gz" "$d" "$T"
