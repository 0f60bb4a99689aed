#!/usr/bin/env bash
# Integration: `protsae demo --level residue` end to end, small (150 residue-level proteins, d_sae
# 256, short training): synth --level residue -> reader --level residue -> trainer (an AA-level
# SAE); reader --level residue -> encoders -> scorer with --concepts (the planted motifs as
# residue concepts) and --residue-top, the neurons the same; the report's residue cards. Checks
# the closing key lines (residue_concept_found above 0.5 on the planted set, the concept F1
# shares of features and neurons), that the residue settings reached their stages, the cards,
# `protsae feature N` at residue level, `protsae run` at residue level on given embeddings and
# concepts, and that the protein-level demo keeps its defaults.
set -euo pipefail
B=${PROTSAE_BUILD:?}; SHARED=${PROTSAE_SHARED:?}
[ -f "$SHARED/data/human-swissprot/proteins.fasta.gz" ] || { echo "no shared data: skip"; exit 77; }
T=$(mktemp -d /tmp/protsae-demo-residue.XXXXXX); trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ANTHROPIC_API_KEY OPENAI_API_KEY
export PROTSAE_DATA=$SHARED/data/human-swissprot
P=$B/cli/protsae
# the protein level is the default and unchanged: the help says so, the level is checked
"$P" demo --help | grep -q -- '--level .*protein' || fail "demo --help: no --level (default protein)"
"$P" demo --help | grep -q -- '--d-sae .*2048' || fail "demo --help: the protein-level d-sae default changed"
if "$P" demo --workdir "$T/bad" --level atom >"$T/bad.out" 2>&1; then fail "--level atom accepted"; fi
grep -q "level atom" "$T/bad.out" || fail "--level atom: no message naming it"

"$P" demo --level residue --workdir "$T/w" --n-terms 100 --residue-proteins 150 --d-sae 256 --train-epochs 6 \
  --n-interpret 10 --residue-top 4 --encoders 1 --scorers 2 >"$T/out" 2>"$T/err" || { cat "$T/out"; tail -30 "$T/err"; fail "demo exit"; }
cat "$T/out"
kv() { awk -F': ' -v k="$1" '$1==k{v=$2} END{if (v=="") exit 1; print v}' "$T/out"; }
for pat in '^\[1/6\] generating the planted dataset at residue level' '^\[2/6\] training an AA-level SAE' \
           '^\[3/6\] encoding residues' '^\[4/6\]' '^\[5/6\]' '^\[6/6\] residue concepts' \
           'GO prediction on held-out proteins is protein-level only'; do
  grep -q "$pat" "$T/out" || fail "demo output lacks /$pat/"
done
# the closing lines: the three residue keys last, values sane
tail -3 "$T/out" | cut -d: -f1 | tr '\n' ' ' | grep -qx 'residue_concept_found features_concept_f1_frac neurons_concept_f1_frac ' \
  || fail "the demo does not end with the three residue key lines"
for k in residue_concept_found features_concept_f1_frac neurons_concept_f1_frac motif_recovery_cos09 \
         features_with_go_fraction; do
  v=$(kv $k) || fail "no '$k:' line"
  awk -v v="$v" 'BEGIN{exit !(v ~ /^[0-9.]+$/ && v >= 0 && v <= 1)}' || fail "$k = $v, not in [0, 1]"
done
awk -v v="$(kv residue_concept_features)" 'BEGIN{exit !(v >= 3)}' || fail "only $(kv residue_concept_features) motif features recovered"
awk -v v="$(kv residue_concept_found)" 'BEGIN{exit !(v > 0.5)}' || fail "residue_concept_found $(kv residue_concept_found) <= 0.5"
# the settings reached their stages (each stage's effective-configuration log lines)
grep -q "config level=residue origin=flag" "$T/w/logs/train-reader.log" || fail "the training reader is not at residue level"
grep -q "config k=16 origin=flag" "$T/w/logs/trainer.log" || fail "the trainer did not get the residue default k 16"
grep -q "config d-sae=256 origin=flag" "$T/w/logs/trainer.log" || fail "the trainer did not get --d-sae 256"
grep -q "config level=residue origin=flag" "$T/w/logs/features-reader.log" || fail "the encode reader is not at residue level"
grep -q "config residue-top=4 origin=flag" "$T/w/logs/features-scorer.log" || fail "the scorer did not get --residue-top 4"
grep -q "config concepts=.*motif_concepts.tsv origin=flag" "$T/w/logs/features-scorer.log" || fail "the scorer did not get --concepts"
# --scorers 2: each store a front and two shards (residue codes per shard, the concepts on the merged store)
for f in features-scorer-shard-0 features-scorer-shard-1 neurons-scorer-shard-1; do
  grep -q "config residue-top=4 origin=flag" "$T/w/logs/$f.log" || fail "scorers 2: $f did not run with --residue-top 4"
done
[ -d "$T/w/features.db/shard-1" ] || fail "scorers 2: features.db is not sharded"
# the planted motifs as a concept TSV: 1-based, inclusive, the hits of truth/motif_hits.tsv
S=$T/w/synth-residue/truth
[ "$(wc -l <"$S/motif_concepts.tsv")" -eq "$(($(wc -l <"$S/motif_hits.tsv") - 1))" ] || fail "motif_concepts.tsv lines"
paste <(tail -n +2 "$S/motif_hits.tsv") "$S/motif_concepts.tsv" | awk -F'\t' '!($1==$5 && $3+1==$6 && $4==$7 && $2==$8){bad++} END{exit bad>0}' \
  || fail "motif_concepts.tsv does not match motif_hits.tsv"
# the report's residue cards: highlighted residues along sequences, escaped
R=$T/w/report.html
[ -f "$R" ] || fail "no report"
grep -q "class=rseq" "$R" || fail "no residue card in the report"
grep -q "<span class=hl style='background:rgba(208,88,42,[0-9.]*)' title='[A-Z][0-9]*: [0-9.e+-]*'>[A-Z]</span>" "$R" \
  || fail "no highlighted residue in the report"
grep -q "best residue concept: <b>\(N_GLYCOSYLATION\|PKC_PHOSPHO\|CK2_PHOSPHO\|ZINC_FINGER_C2H2\|TM_HYDROPHOBIC\)</b> F1 0\.[5-9]" "$R" \
  || fail "no card of a planted-motif feature with its concept"
# protsae feature N at residue level: the first card (the best concept F1) with its top residues along its sequences
f=$(awk '/^<div class=card id=f/{sub(/.*id=f/, ""); sub(/>.*/, ""); print; exit}' "$R")
[ -n "$f" ] || fail "no card"
"$P" feature "$f" --db "$T/w/features.db" --fasta "$T/w/synth-residue/proteins.fasta" >"$T/feat" || fail "feature $f"
grep -q "activations along the top proteins" "$T/feat" || fail "feature $f: no residue card"
grep -q '\[[A-Z]\]' "$T/feat" || fail "feature $f: no marked residue"
grep -q "best residue concept: [A-Z_0-9]* F1 0\.[5-9]" "$T/feat" || fail "feature $f: the first card's feature has no concept at F1 > 0.5"
# protsae run CONFIG at residue level on "user" embeddings (the planted npy + offsets, no truth),
# reusing the SAE: the user's concept file reaches the scorer, the concept lines come back
cat >"$T/run.cfg" <<CFG
workdir = $T/w
level = residue
emb = $T/w/synth-residue/residues.npy
fasta = $T/w/synth-residue/proteins.fasta
ids = $T/w/synth-residue/residues.ids
concepts = $S/motif_concepts.tsv
retrain = 0
n-interpret = 5
encoders = 1
CFG
"$P" run "$T/run.cfg" >"$T/run.out" 2>"$T/run.err" || { cat "$T/run.out"; tail -30 "$T/run.err"; fail "run exit"; }
grep -q '^\[1/6\] your residue-level data' "$T/run.out" || fail "run: not the user's data"
grep -q '^\[2/6\] reusing the SAE' "$T/run.out" || fail "run: the SAE was not reused"
grep -q '^residue_concept_found: nan' "$T/run.out" || fail "run: residue_concept_found without planted truth"
awk -F': ' '$1=="features_concept_f1_frac"{ok = $2 > 0} END{exit !ok}' "$T/run.out" || fail "run: no feature with a concept"
[ "$(grep -c "config concepts=$S/motif_concepts.tsv origin=flag" "$T/w/logs/features-scorer.log")" -eq 2 ] \
  || fail "run: --concepts did not reach the scorer (the log has the demo's and the run's scorer)"
echo "demo_residue: ok ($(kv seconds) s)"
