#!/usr/bin/env bash
# The GPU kit: one command that checks every kernel on a lent GPU and measures the engine there.
#   On the GPU machine, from the carried tree (../shared/device/README.md; pack.sh first, carry [".gpu"]):
#     bash .gpu/remote.sh bash scripts/gpu-suite.sh
#   Here and in CI (the same steps on emu/cpu at small sizes; test/api/gpu-suite.test.ts runs it):
#     bash scripts/gpu-suite.sh --dry-run
# Steps (each with its own timeout, all inside one suite deadline; a failing step is recorded, never fatal):
#   addon      the addon loads; which devices it sees
#   tsc        compiles lib/ to dist/ when dist/ is missing or older than lib/ (dist/ does not travel)
#   ops        op tests `cuda vs cpu-ref` (dry run: a few `emu vs cpu-ref` cases)
#   models     model tests and the serving engine's tests on cuda (dry run: a few cpu/emu cases)
#   fixtures   scripts/make_hf_fixtures.py -> $OUT/hf-fixtures.tar.gz (skipped without torch)
#   memcheck   compute-sanitizer --tool memcheck over a short `eet generate` (dry run: the generate on cpu, no sanitizer)
#   racecheck  compute-sanitizer --tool racecheck over scripts/gpu-racecheck.js (norm, attention, shared_attention) (dry run: on emu)
#   bench      `eet bench --json`: the grid over the built-in shapes (GPT-2 included)
#   serving    `eet bench --no-grid --scenarios all --json`: concurrency, shared document, busy event loop, http, pid
#              (one document of 1000 tokens, S = 1, 16, 64 sub-tasks) on one model
#   hf-bench   scripts/hf_bench.py, HF eager and static-cache + torch.compile (skipped without torch)
#   llama-cpp  skipped: node-llama-cpp comes with the GGUF issue
# Output under $OUT (default ./gpu-suite-out; the device returns at most 8 files): report.md, report.json,
# logs.tar.gz (every step's full log), hf-fixtures.tar.gz when made.
# Environment: SUITE_STEPS=ops,bench (run only these), SUITE_DEADLINE_S (default 500, dry run 300),
# SUITE_BENCH_MODELS, SUITE_BENCH_DTYPE, SUITE_BENCH_BATCH, SUITE_BENCH_PROMPT, SUITE_BENCH_NEW, SUITE_SERVING_MODELS,
# SUITE_SERVING_SCENARIOS, SUITE_OPS_PATTERN, SUITE_MODELS_PATTERN.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
OUT=${OUT:-$root/gpu-suite-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/eet-suite.XXXXXX")
mkdir -p "$work/logs"
: > "$work/steps.tsv"
start=$(date +%s)
deadline=$((start + ${SUITE_DEADLINE_S:-$([ $dry = 1 ] && echo 300 || echo 500)}))
jest=node_modules/.bin/jest
story=$root/../shared/models/stories260K  # the nearest shared/models above the tree (as test/util/stories260k.ts)
for d in "$root" "$(dirname "$root")" "$(dirname "$(dirname "$root")")" "$(dirname "$(dirname "$(dirname "$root")")")"; do
  [ -f "$d/shared/models/stories260K/stories260K.bin" ] && { story=$d/shared/models/stories260K; break; }
done
export UV_THREADPOOL_SIZE=${UV_THREADPOOL_SIZE:-16}

if [ $dry = 1 ]; then
  dev=cpu
  ops_args=(test/ops/norm.test.ts -t "${SUITE_OPS_PATTERN:-emu vs cpu-ref: norm\(kind=rms, residual=no.*cols=(33|4096|12288)\)}")
  models_args=(test/models/stories260k.test.ts -t "${SUITE_MODELS_PATTERN:-cpu}")
  bench_args=(--model "${SUITE_BENCH_MODELS:-tiny,gpt2-124m}" --device cpu --batch "${SUITE_BENCH_BATCH:-1,2}"
    --prompt "${SUITE_BENCH_PROMPT:-8}" --new "${SUITE_BENCH_NEW:-4}" --dtype "${SUITE_BENCH_DTYPE:-float32}" --bandwidth-bytes 16777216)
  serving_args=(--model "${SUITE_SERVING_MODELS:-tiny}" --device cpu --dtype "${SUITE_BENCH_DTYPE:-float32}" --bandwidth-bytes 16777216)
  hf_args=(--device cpu --variants eager --budget 60)
else
  dev=cuda
  ops_args=(test/ops -t "${SUITE_OPS_PATTERN:-cuda vs cpu-ref}" --maxWorkers=4)
  # The serving engine's cuda cases (concurrency, prefix cache, forks, preemption) run with the model tests.
  models_args=(test/models test/api/serving.test.ts test/api/numeric.test.ts test/api/cuda-lost.test.ts -t "${SUITE_MODELS_PATTERN:-cuda}")
  bench_args=(--model "${SUITE_BENCH_MODELS:-tinyllama-1.1b,llama-7b,gpt3-layer-2l,gpt2-124m,gpt2-1.5b}" --device cuda
    --batch "${SUITE_BENCH_BATCH:-1,16}" --prompt "${SUITE_BENCH_PROMPT:-128,512}" --new "${SUITE_BENCH_NEW:-64}" --dtype "${SUITE_BENCH_DTYPE:-float16}" --repeat 3)
  serving_args=(--model "${SUITE_SERVING_MODELS:-tinyllama-1.1b}" --device cuda --dtype "${SUITE_BENCH_DTYPE:-float16}")
  hf_args=(--device cuda --variants eager,compiled --compiled-cells 2 --budget 200)
fi

log() { echo "gpu-suite: $*" >&2; }
selected() { [ -z "${SUITE_STEPS:-}" ] || [[ ",$SUITE_STEPS," == *",$1,"* ]]; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$work/steps.tsv"; log "$1: $2 ($4 s) $5"; }
skip() { record "$1" skipped - 0 "$2"; }

# step NAME TIMEOUT_S NOTE CMD... : runs CMD with its output in logs/NAME.log, within the suite deadline.
step() {
  local name=$1 limit=$2 note=$3
  shift 3
  if ! selected "$name"; then skip "$name" "not in SUITE_STEPS"; return 0; fi
  local left=$((deadline - $(date +%s) - 10))
  if [ $left -lt 15 ]; then skip "$name" "suite deadline reached"; return 0; fi
  [ "$limit" -gt $left ] && limit=$left
  local t0 rc status
  t0=$(date +%s)
  echo "\$ $*" > "$work/logs/$name.log"
  timeout -k 5 "$limit" "$@" >> "$work/logs/$name.log" 2>&1
  rc=$?
  status=pass
  [ $rc -ne 0 ] && status=fail
  { [ $rc -eq 124 ] || [ $rc -eq 137 ]; } && status=timeout && note="killed after $limit s${note:+; $note}"
  record "$name" "$status" "$rc" "$(($(date +%s) - t0))" "$note"
}

have_torch=0
python3 scripts/hf_bench.py --check > "$work/logs/python.log" 2>&1 && have_torch=1
have_sanitizer=0
[ $dry = 0 ] && command -v compute-sanitizer > /dev/null && have_sanitizer=1

step addon 60 "" node -e "
const b = require('node-gyp-build')('.'); const d = b.devices();
console.log(JSON.stringify(d));
if ('$dev' === 'cuda' && !d.cudaUsable) { console.error('no usable CUDA device: ' + d.reason); process.exit(1); }"

if [ ! -f dist/cli/main.js ] || [ -n "$(find lib -name '*.ts' -newer dist/cli/main.js | head -1)" ]; then
  step tsc 120 "" node_modules/.bin/tsc -p tsconfig.build.json
else
  record tsc pass 0 0 "dist/ up to date"
fi

step ops 300 "" "$jest" "${ops_args[@]}" --json --outputFile="$work/ops.json"
step models 150 "" "$jest" "${models_args[@]}" --json --outputFile="$work/models.json"

if [ $have_torch = 1 ]; then
  step fixtures 90 "" bash -c "python3 scripts/make_hf_fixtures.py --out '$work/fixtures' && tar -czf '$OUT/hf-fixtures.tar.gz' -C '$work' fixtures"
else
  skip fixtures "python3 has no torch/transformers here ($(tail -1 "$work/logs/python.log"))"
fi

gen=(node dist/cli/main.js generate "$story/stories260K.bin" "Once upon a time" -z "$story/tok512.bin" -n 40 -t 0 --no-progress)
if [ $have_sanitizer = 1 ]; then
  step memcheck 180 "" compute-sanitizer --tool memcheck --leak-check full --error-exitcode 99 --print-limit 20 "${gen[@]}" -d cuda
  step racecheck 180 "" compute-sanitizer --tool racecheck --racecheck-report hazard --error-exitcode 99 --print-limit 20 \
    node scripts/gpu-racecheck.js cuda
else
  why=$([ $dry = 1 ] && echo "dry run" || echo "compute-sanitizer not found")
  step memcheck 120 "$why: the generate ran on cpu without the sanitizer" "${gen[@]}" -d cpu
  step racecheck 120 "$why: the ops ran on emu without the sanitizer" node scripts/gpu-racecheck.js emu
fi

step bench 240 "" bash -c 'node dist/cli/main.js bench "$@" --json > "'"$work"'/bench.json"' bench "${bench_args[@]}"
step serving 180 "" bash -c 'node dist/cli/main.js bench "$@" --json > "'"$work"'/serving.json"' serving "${serving_args[@]}" \
  --no-grid --scenarios "${SUITE_SERVING_SCENARIOS:-all}" --pid-documents 1000 --pid-subtasks 1,16,64

grid_of() { node -p "const r = require('$work/bench.json'); $1" 2> /dev/null; }
if [ $have_torch = 0 ]; then
  skip hf-bench "python3 has no torch/transformers here"
elif ! hf_models=$(grid_of "r.models.filter((m) => m.arch === 'llama' && m.source === 'builtin').map((m) => m.model).join()") \
    || [ -z "$hf_models" ] || ! node dist/cli/main.js bench --list-shapes --json > "$work/shapes.json"; then
  skip hf-bench "no LLaMA shape in the bench results to compare with"
else
  step hf-bench 240 "" python3 scripts/hf_bench.py --shapes "$work/shapes.json" --models "$hf_models" \
    --batch "$(grid_of 'r.grid.batch.join()')" --prompt "$(grid_of 'r.grid.prompt.join()')" \
    --new "$(grid_of 'r.grid.newTokens.join()')" --dtype "$(grid_of 'r.dtype')" "${hf_args[@]}" --out "$work/hf.json"
fi
skip llama-cpp "node-llama-cpp (llama.cpp) is planned with the GGUF issue; no GGUF writer yet"

node scripts/gpu-report.js "$work" "$OUT" $([ $dry = 1 ] && echo --dry-run) || log "the report script failed; raw logs are in logs.tar.gz"
tar -czf "$OUT/logs.tar.gz" -C "$work" logs steps.tsv $(cd "$work" && ls ./*.json 2> /dev/null)
log "report: $OUT/report.md ($(($(date +%s) - start)) s)"
rm -rf "$work"
[ -f "$OUT/report.md" ]
