#!/usr/bin/env bash
# Validates gpuscope on a machine with an NVIDIA GPU, a driver and Python 3 (CI has none; nothing
# depends on this script). It builds gpuscope, installs PyTorch and NVIDIA's NVML bindings from
# PyPI into .venv-gpu, then, against the real driver:
#   1. the agent on the real NVML: its signals, NVML calls per second, batched vs single field reads;
#   2. CUPTI overhead: median step time of a GEMM loop and of a short-kernel loop (>= 10k
#      launches/s) without injection, with the injection library idle (launch counting only) and
#      windowed, as ratios to the run without injection;
#   3. findings through agent -> OTLP -> collector: fp32 vs bf16-autocast training loops
#      (no-tensor-cores and fp32-gemm-kernels for fp32 only), a pin_memory=False loader
#      (pageable-memcpy), a CUDA graph replay (graph kernels counted in gpuscope profile).
# Everything it prints also lands in $GPUSCOPE_VALIDATE_OUT (default: a new temporary folder).
# Takes about 10 minutes on one GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${GPUSCOPE_VALIDATE_OUT:-$(mktemp -d)}
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/report.txt"; }
command -v nvidia-smi >/dev/null || { echo "gpu-validate: no NVIDIA driver here (nvidia-smi is missing)" >&2; exit 2; }

log "building gpuscope (release)"
cargo build --release --workspace --locked >"$out/build.log" 2>&1 || { tail -20 "$out/build.log"; exit 1; }
bin=target/release/gpuscope
inject=$PWD/target/release/libgpuscope_cupti_inject.so

if [ ! -x .venv-gpu/bin/python ]; then python3 -m venv .venv-gpu; fi
py=.venv-gpu/bin/python
$py -m pip install --quiet --disable-pip-version-check torch nvidia-ml-py >"$out/pip.log" 2>&1 \
  || { tail -20 "$out/pip.log"; echo "gpu-validate: pip install torch nvidia-ml-py failed" >&2; exit 1; }
# PyTorch's wheels bring CUPTI (nvidia-cuda-cupti-cu12); the injection library finds libcupti.so.12 there.
cupti_dir=$($py -c "import nvidia.cuda_cupti, os; print(os.path.join(list(nvidia.cuda_cupti.__path__)[0], 'lib'))")
nvidia-smi -L | tee -a "$out/report.txt"

ports=(19466 14317 14318 18480)
sock=$out/cupti.sock
$bin collector --grpc 127.0.0.1:${ports[1]} --http 127.0.0.1:${ports[2]} --api 127.0.0.1:${ports[3]} >"$out/collector.log" 2>&1 &
collector=$!
$bin agent --listen 127.0.0.1:${ports[0]} --interval-ms 1000 --cupti-enabled true --cupti-socket "$sock" \
  --otlp-endpoint http://127.0.0.1:${ports[2]} --otlp-interval-ms 1000 >"$out/agent.log" 2>&1 &
agent=$!
trap 'kill $agent $collector 2>/dev/null || true' EXIT
sleep 5
metrics() { curl -fsS "http://127.0.0.1:${ports[0]}/metrics"; }
api() { curl -fsS "http://127.0.0.1:${ports[3]}$1"; }

log "1. the agent on the real driver"
metrics >"$out/metrics-1.txt"
grep -c '^gpuscope_gpu_' "$out/metrics-1.txt" | sed 's/^/GPU series: /' | tee -a "$out/report.txt"
grep -E '^gpuscope_gpu_(sm_active_ratio|tensor_active_ratio|performance_state|power_watts|temperature_celsius)\{' "$out/metrics-1.txt" | head -20 | tee -a "$out/report.txt"
grep -E '^gpuscope_agent_(unsupported_gpus|nvml_errors_total)' "$out/metrics-1.txt" | tee -a "$out/report.txt" || true
sleep 10
metrics >"$out/metrics-2.txt"
$py - "$out/metrics-1.txt" "$out/metrics-2.txt" <<'PY' | tee -a "$out/report.txt"
import re, sys
def calls(path):
    total = 0.0
    for line in open(path):
        if line.startswith("gpuscope_agent_nvml_calls_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total
print(f"NVML calls per second over 10 s: {(calls(sys.argv[2]) - calls(sys.argv[1])) / 10:.1f}")
PY
$py scripts/gpu-validate/fields.py | tee "$out/fields.json" >>"$out/report.txt"
$bin query --json --nvml-lib "" >"$out/query.json" 2>>"$out/report.txt" || true

run() { # name mode [extra env...]: one workload; prints its JSON line
  local name=$1 mode=$2; shift 2
  case $mode in
    none) env "$@" $py scripts/gpu-validate/workloads.py "$name" ;;
    idle) env CUDA_INJECTION64_PATH="$inject" LD_LIBRARY_PATH="$cupti_dir" GPUSCOPE_CUPTI_SOCKET="$sock" \
            GPUSCOPE_CUPTI_PERIOD_MS=3600000 "$@" $py scripts/gpu-validate/workloads.py "$name" ;;
    windowed) env CUDA_INJECTION64_PATH="$inject" LD_LIBRARY_PATH="$cupti_dir" GPUSCOPE_CUPTI_SOCKET="$sock" \
            GPUSCOPE_CUPTI_WINDOW_MS=500 GPUSCOPE_CUPTI_PERIOD_MS=2000 "$@" $py scripts/gpu-validate/workloads.py "$name" ;;
  esac
}

log "2. CUPTI overhead (median step time, ratio to no injection; windows of 0.5 s every 2 s, 15x the default duty)"
for w in gemm short; do
  for m in none idle windowed none2 idle2 windowed2; do
    run "$w" "${m%2}" --steps 100 >"$out/overhead-$w-$m.json"
  done
  $py - "$out" "$w" <<'PY' | tee -a "$out/report.txt"
import json, sys
out, w = sys.argv[1:]
t = {m: json.load(open(f"{out}/overhead-{w}-{m}.json"))["median_step_s"] for m in ("none", "idle", "windowed", "none2", "idle2", "windowed2")}
base = (t["none"] + t["none2"]) / 2
print(f"{w}: no injection {base*1e3:.3f} ms/step; idle {((t['idle']+t['idle2'])/2)/base:.4f}x; windowed {((t['windowed']+t['windowed2'])/2)/base:.4f}x")
PY
done

log "3. findings through the collector (each workload held 150 s with windows of 0.5 s every 5 s)"
for w in train-fp32 train-bf16 loader-pageable graph; do
  run "$w" windowed GPUSCOPE_CUPTI_PERIOD_MS=5000 --steps 20 --hold-s 150 >"$out/finding-$w.json" &
  pid=$!
  sleep 60
  $bin profile --pid "$pid" --duration 1s --listen 127.0.0.1:${ports[0]} >"$out/profile-$w.txt" 2>&1 || true
  sleep 80
  api "/api/v1/findings" >"$out/findings-$w.json" || echo "[]" >"$out/findings-$w.json"
  wait $pid || true
  $py - "$out" "$w" "$pid" <<'PY' | tee -a "$out/report.txt"
import json, sys
out, w, pid = sys.argv[1:]
f = json.load(open(f"{out}/findings-{w}.json"))
open_now = sorted({x.get("rule") for x in f if x.get("closed_ms") is None})
mine = sorted({x.get("rule") for x in f if pid in json.dumps(x)})
print(f"{w} (pid {pid}): open findings {open_now}; naming this process {mine}")
PY
  grep -iE "graph|top kernels|tensor|simt|pageable" "$out/profile-$w.txt" | head -8 | tee -a "$out/report.txt" || true
done
log "expected: no-tensor-cores and fp32-gemm-kernels for train-fp32 only; pageable-memcpy for loader-pageable; graph kernels > 0 for graph"
log "report: $out/report.txt"
