#!/usr/bin/env bash
# The CGN pipeline on a lent GPU: bench/cgn_mnist.py runs side by side on one device,
# their records and logs copied under $OUT (the device tool brings that folder back).
#
# The shared data does not travel, so copy it into the git-ignored device_carry/ first
# and name that folder in the run's carry:
#
#   mkdir -p device_carry && cp -r ../shared/data/{mnist,textures,cgn_official} device_carry/
#   bash bench/device_cgn.sh            # on the device, with carry=["device_carry"]
#   JOBS=wildlife SEEDS="1 2" bash bench/device_cgn.sh   # two more seeds of one run
#
# JOBS selects runs by name (default: all) and SEEDS their seeds (default 0; every job
# runs once per seed); each writes to runs/JOB-sSEED, which a rerun on the still-warm
# machine resumes. LIMIT caps each run's seconds, so that a run that outgrows the lease
# still leaves the others' records. A traceback in any log within the first FAILFAST
# seconds stops every run: a CUDA bug then costs a minute of device time, not the whole
# lease. What comes back: machine.txt, cgn_mnist.json (the results file with the new
# records at its end), runs.tgz (logs, results, tables, grids, CGN logs and samples)
# and weights.tgz (each CGN's generator and encoder, so that a run stopped at its cap
# can be finished on a CPU).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/runs/device_out}
LIMIT=${LIMIT:-460}
FAILFAST=${FAILFAST:-75}
DEVICE=${DEVICE:-cuda}
THREADS=${THREADS:-3}
JOBS=${JOBS:-ddp colored double wildlife wildlife_w32}
SEEDS=${SEEDS:-0}
LOGS=$OUT/logs
mkdir -p "$LOGS" runs
# bench/cgn_mnist.py reads ../shared/data; point it at the carried copy
if [ ! -e ../shared/data ]; then mkdir -p ../shared && ln -s "$PWD/device_carry" ../shared/data; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc; } > "$OUT/machine.txt"
cat "$OUT/machine.txt"

declare -A ARGS=(
  # the full preset, all six methods: the CPU figures' GPU twin
  [colored]="--variant colored"
  # the second variant's two CGN-heads rows, full preset: 3,000 CGN iterations
  # (CPU, seed 0 with the paper's CNN: cgn 88.4 % OOD; with the preset's cnn-cn: 96.4)
  [double]="--variant double-colored --methods cgn,original+cgn"
  # the full Wildlife preset: the paper's rendering and classifier protocol, 3,000 CGN
  # iterations, real backgrounds, colour masks (see docs/cgn_mnist.md, "Colour masks";
  # with the CGN's masks, CPU seeds 0-3: 89.2 +- 0.8 % OOD)
  [wildlife]="--variant wildlife --methods cgn"
  # the same at the official width (generated backgrounds then: H200, seed 0: 82.1 %;
  # CPU at 1,000 iterations: 63.8)
  [wildlife_w32]="--variant wildlife --methods cgn --cgn-ngf 32"
  # the Wildlife preset before 2026-12-04 (seed 0: 69.4 % on the CPU, 75.8 on an H200)
  [wildlife_i1000]="--variant wildlife --methods cgn --cgn-iterations 1000 --backgrounds generated --masks cgn"
  # the full preset under bfloat16 autocast (CPU with AMX, seeds 0-5 with colour masks:
  # 91.9 +- 0.8 %; seeds 0-4 with the CGN's masks: 87.8 +- 4.4)
  [wildlife_bf16]="--variant wildlife --methods cgn --precision bf16"
  # a seconds-long end-to-end check of the device path
  [smoke]="--variant colored --n-train 2000 --cgn-iterations 30 --n-generated 500 --steps 30 --methods original,cgn"
)
pids=()
names=()
for seed in $SEEDS; do for job in $JOBS; do
  name=$job-s$seed
  names+=("$name")
  if [ "$job" = ddp ]; then  # the training loop under torchrun: nccl on CUDA, gloo on CPU
    timeout "$LIMIT" torchrun --standalone --nproc_per_node 1 -m causalkit train --method erm \
      --data colored-mnist --rho 1 --source mnist:device_carry/mnist --n-train 4000 \
      --steps 200 --device "$DEVICE" --seed "$seed" --out "runs/$name" --json \
      > "$LOGS/$name.log" 2>&1 &
  else
    # shellcheck disable=SC2086
    timeout "$LIMIT" python bench/cgn_mnist.py --device "$DEVICE" --threads "$THREADS" \
      --seed "$seed" --out "runs/$name" ${ARGS[$job]} > "$LOGS/$name.log" 2>&1 &
  fi
  pids+=($!)
done; done

start=$SECONDS
while [ $((SECONDS - start)) -lt "$FAILFAST" ]; do
  if grep -l "Traceback" "$LOGS"/*.log 2>/dev/null; then
    echo "a run failed early; stopping all"; kill "${pids[@]}" 2>/dev/null; break
  fi
  alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ "$alive" = 1 ] || break
  sleep 5
done
for p in "${pids[@]}"; do wait "$p"; echo "pid $p exited $?"; done

for name in "${names[@]}"; do
  echo "== $name"; tr '\r' '\n' < "$LOGS/$name.log" | grep -v "it/s\|s/it" | tail -25
done
cp bench/results/cgn_mnist.json "$OUT/" 2>/dev/null
tar czf "$OUT/runs.tgz" --ignore-failed-read -C "$OUT" logs -C "$PWD" runs/*/results.json \
  runs/*/table.txt runs/*/*.png runs/*/cgn/log.jsonl runs/*/cgn/samples 2>/dev/null \
  && rm -r "$LOGS"  # at most 8 files come back: the logs travel inside the archive
tar czf "$OUT/weights.tgz" --ignore-failed-read runs/*/cgn/generator.pt runs/*/cgn/encoder.pt \
  2>/dev/null
ls -la "$OUT"
