#!/usr/bin/env bash
# One lent GPU session's benchmarks as one prepared command (the device machine has no registry: the
# packages its image lacks travel as wheels, the brax hopper's dataset from the local cache).
#
# Prepare here (all four paths are gitignored):
#   .whl/                     wheels the image lacks (brax, mujoco(-core, -mjx), trimesh, jaxopt,
#                             ml_collections, tensorboardX, gymnax, gymnasium, farama-notifications,
#                             distrax, tfp-nightly, dm-tree, decorator, gast, tyro, docstring-parser,
#                             typeguard, evosax, dotmap), cp312 manylinux, --no-deps
#   .bench-venv-rejax-wheels/ rejax 0.1.3 + gymnax 0.0.9 (ppo_speed's peer, in a path of their own)
#   .stream-x-official/       the official stream-x code (stream_speed's peer)
#   .devdata/brax-cache/      datasets/brax-hopper/<key>/{manifest.json, medium.npz} from a generation
#                             cache (`--cache-dir`); only the medium level travels (64 MiB limit), the
#                             other four levels are filled with copies of it below: the gpu_* scales
#                             read the medium level alone
# then run it there with those four paths carried:
#   bash benchmarks/gpu_session.sh            # gpu_hopper, then the stream-x and PPO speed rows (590 s)
#   O2O=1 bash benchmarks/gpu_session.sh      # gpu_ro2o_hopper (570 s)
#   PROBE=1 bash benchmarks/gpu_session.sh    # small budgets: how fast each program runs there
#   SMOKE=1 bash benchmarks/gpu_session.sh    # on a CPU, with small budgets: checks the plumbing
# Everything lands in $OUT (results.tgz, log.txt). The first lease (2026-12-04, H200) learned the
# sizes the hard way: every job of a 550-s call ran past its limit (a hopper evaluation costs 6.7 s,
# each program 13-40 s to compile); the probe's rows are in benchmarks/results/gpu_probe-*.jsonl.
set -u
OUT=${OUT:-/tmp/gpu_session_out}
RES=/tmp/gpu_session_results
REPO=$(pwd)
mkdir -p "$OUT" "$RES"
LOG=$OUT/log.txt
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
# ppo_speed runs rejax in a second process beside ours: neither may take 75% of the card up front
export XLA_PYTHON_CLIENT_PREALLOCATE=false

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/rejax_site \
    .bench-venv-rejax-wheels/*.whl || exit 1
export PYTHONPATH=/tmp/site:$REPO
# rejax needs gymnax 0.0.9, jaxrl 1.0: ppo_speed's peer runs under an interpreter that sees 0.0.9 first
cat > /tmp/rejaxpy <<EOF
#!/bin/sh
PYTHONPATH=/tmp/rejax_site:/tmp/site:$REPO exec python3 "\$@"
EOF
chmod +x /tmp/rejaxpy
for d in .devdata/brax-cache/datasets/*/*/; do
    for lvl in random medium-replay medium-expert expert; do [ -e "$d/$lvl.npz" ] || cp "$d/medium.npz" "$d/$lvl.npz"; done
done

(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true)
python3 -c "import jax, jaxlib, flax, optax, brax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'brax', brax.__version__, jax.devices())"

# the results so far, packed every 15 s (a job stopped at its limit keeps what it wrote)
pack() { tar -czf "$OUT/results.tgz.tmp" -C "$RES" . && mv "$OUT/results.tgz.tmp" "$OUT/results.tgz"; }
(while sleep 15; do pack; done) &
PACKER=$!

job() {  # job SECONDS NAME COMMAND...: runs it under a time limit, logs its wall time and exit status
    local limit=$1 name=$2; shift 2
    local t0=$SECONDS
    echo "=== $name (limit ${limit}s)"
    timeout "$limit" "$@"
    echo "=== $name: exit $? after $((SECONDS - t0))s"
}

if [ -n "${PROBE:-}" ]; then  # small budgets that finish: ms per update and env step on this device
    job 140 gpu_probe python3 -m benchmarks.gpu_probe --cache-dir .devdata/brax-cache --out "$RES/gpu_probe.jsonl" \
        ${PROBE_ARGS:-}
    job 55 ppo_speed python3 -m benchmarks.ppo_speed --total-timesteps 50000 --seeds 1 64 --repeats 1 \
        --schedules constant --rejax-python /tmp/rejaxpy --out "$RES/ppo_speed.json"
    job 35 stream_speed python3 -m benchmarks.stream_speed --total-timesteps 2000 --seeds 1 256 --repeats 1 \
        --official-steps 2000 --out "$RES/stream_speed.json"
elif [ -n "${SMOKE:-}" ]; then
    job 900 offline_robust_ci python3 -m benchmarks.offline_robust --scale ci --out-dir "$RES" --cache-dir /tmp/gpu_smoke_cache
    job 300 ppo_speed python3 -m benchmarks.ppo_speed --total-timesteps 4096 --seeds 2 --repeats 1 --schedules constant \
        --rejax-python /tmp/rejaxpy --out "$RES/ppo_speed.json"
    job 300 stream_speed python3 -m benchmarks.stream_speed --total-timesteps 500 --seeds 1 4 --repeats 1 \
        --official-steps 500 --out "$RES/stream_speed.json"
elif [ -n "${O2O:-}" ]; then  # one call of its own: two programs of about 250 s
    job 570 gpu_ro2o_hopper python3 -m benchmarks.offline_robust --scale gpu_ro2o_hopper --out-dir "$RES" \
        --cache-dir .devdata/brax-cache
else  # gpu_hopper's two programs (about 150 s each, with the attacker's and the corruption's), the speed rows
    job 400 gpu_hopper python3 -m benchmarks.offline_robust --scale gpu_hopper --out-dir "$RES" \
        --cache-dir .devdata/brax-cache
    job 80 stream_speed python3 -m benchmarks.stream_speed --total-timesteps 2000 --seeds 1 256 --repeats 1 \
        --official-steps 2000 --out "$RES/stream_speed.json"
    job 90 ppo_speed python3 -m benchmarks.ppo_speed --total-timesteps 50000 --seeds 1 64 --repeats 1 \
        --schedules constant --rejax-python /tmp/rejaxpy --out "$RES/ppo_speed.json"
fi
kill $PACKER 2>/dev/null
pack
ls -la "$RES"
