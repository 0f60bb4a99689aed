#!/usr/bin/env bash
# Interpreter statistics vs SciPy: Pearson r and its p-value (scipy.stats.pearsonr) and the
# hypergeometric upper tail of the offline explainer (scipy.stats.hypergeom.sf). Skips (77)
# without /usr/bin/python3 + python3-scipy.
set -euo pipefail
drv=$1; py=$2
/usr/bin/python3 -c "import scipy.stats, numpy" 2>/dev/null || { echo "python3-scipy missing: skip"; exit 77; }
exec /usr/bin/python3 "$py" "$drv"
