#!/usr/bin/env bash
# The GPU checks of issue #7 as one prepared script, for a session lent the GPU machine (its image
# has CUDA 13, cuDNN 9, Python 3.12, torch and a CPU onnxruntime; no onnxruntime-gpu, no lark,
# networkx or onnx). Not yet run end to end: no session so far had the machine.
#
# Here, once (needs PyPI):
#   tools/gpu_check.sh prepare        # .ortgpu/1..K (onnxruntime-gpu in 50 MB parts) and .gpuwheels/
#
# Then device calls back to back while the machine stays warm (one part per call, 64 MiB each):
#   carry [".ortgpu/1"]   command: mkdir -p /tmp/ortgpu && cp .ortgpu/1/* /tmp/ortgpu/
#   carry [".ortgpu/2"]   command: cp .ortgpu/2/* /tmp/ortgpu/        ... up to .ortgpu/K
#   carry [".gpuwheels"]  command: bash tools/gpu_check.sh run        (timeout_s 420)
#
# `run` assembles and installs onnxruntime-gpu and the compiler's pure dependencies into
# /tmp/site, then writes to $OUT: providers.txt, the CUDA tests (pytest -rs: CPU/GPU loss parity
# over 20 digits-CNN steps, Trainer on CUDA, Session on CUDA, CUDA graphs, outputs kept on the
# device), and tools/bench.py --quick with its CUDA rows (bench.json, bench.txt).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

prepare() {
    set -e
    ../shared/tools/ortgpu-parts.sh
    grep -qxF '/.gpuwheels/' .git/info/exclude 2>/dev/null || echo '/.gpuwheels/' >> .git/info/exclude
    rm -rf .gpuwheels && mkdir -p .gpuwheels
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpuwheels lark networkx "onnx==1.23.2" ml_dtypes onnxscript onnx_ir typing_extensions \
        pytest pluggy iniconfig packaging pygments
    du -sh .ortgpu/* .gpuwheels
}

run() {
    out=${OUT:-/tmp/gpu_check_out}
    mkdir -p "$out" /tmp/site
    name=$(cat /tmp/ortgpu/NAME)
    cat /tmp/ortgpu/part-* > "/tmp/ortgpu/$name"
    python3 -m pip install -q --no-deps --target /tmp/site "/tmp/ortgpu/$name" 2>&1 | tail -3
    python3 -m pip install -q --no-deps --no-index --target /tmp/site .gpuwheels/*.whl 2>&1 | tail -3
    export PYTHONPATH="/tmp/site:$top"
    python3 -c "import onnxruntime as o; print(o.__version__, o.__file__, o.get_available_providers())" \
        | tee "$out/providers.txt"
    nvidia-smi --query-gpu=name,memory.total --format=csv >> "$out/providers.txt" 2>&1
    python3 -m pytest -p no:cacheprovider -q -rs -k "cuda" tests/training/test_trainer.py tests/runtime/test_stepper.py \
        tests/runtime/test_session.py 2>&1 | tail -40 | tee "$out/cuda_tests.txt"
    python3 tools/bench.py --quick --json "$out/bench.json" > "$out/bench.txt" 2> "$out/bench_err.txt"
    tail -30 "$out/bench.txt"
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: tools/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
