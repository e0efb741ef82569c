#!/usr/bin/env bash
# GPU check of the embedded backend, in about 5 minutes: the decode benchmark on CUDA, the
# batch check and the local demo, then the figures. Run from anywhere in a checkout:
# `bash eval/gpu_check.sh`.
# Needs a CUDA build of torch in .venv (`make install` is run if .venv is missing; on a GPU
# machine PyPI's torch wheel is a CUDA build). Not part of CI, which has no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-eval/out/gpu_check}"
PY="${PY:-.venv/bin/python}"
CLI="${CLI:-.venv/bin/sgl-conveyor}"
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE

if [ ! -x "$PY" ]; then
    echo "== .venv missing: make install" >&2
    make install
fi

echo "== device"
"$PY" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    print(f"no CUDA device visible to torch {torch.__version__}: install a CUDA build of torch", file=sys.stderr)
    sys.exit(2)
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0),
      f"bf16={torch.cuda.is_bf16_supported()}")
PY

echo "== model (converted once into the user cache; ~30 s the first time)"
timeout 120 "$PY" -c "from sgl_conveyor.backends.local import model_store as m; print(m.ensure_converted())"

echo "== decode benchmark on CUDA (bench_local: decode, 8 streams vs 1, cached second-turn TTFT)"
timeout 150 "$PY" -m sgl_conveyor.eval.bench_local --device cuda --only decode,concurrency,ttft \
    --tokens 128 --repeats 3 --out "$OUT/bench_local_cuda.json" > "$OUT/bench_local_cuda.log" 2>&1 \
    || { tail -20 "$OUT/bench_local_cuda.log"; exit 1; }

echo "== batched decoding on CUDA (a request joining behind another; 4 partial-tool programs at once)"
timeout 90 "$PY" -m sgl_conveyor.eval.batch_check --device cuda > "$OUT/batch_check.log" 2>&1 \
    || { tail -20 "$OUT/batch_check.log"; exit 1; }
grep -v -i warn "$OUT/batch_check.log"

echo "== demo on the local backend"
timeout 120 "$CLI" demo --backend local --json > "$OUT/demo_local.json" 2> "$OUT/demo_local.log" \
    || { tail -20 "$OUT/demo_local.log"; exit 1; }

echo "== figures"
"$PY" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
b = json.load(open(f"{out}/bench_local_cuda.json"))
print(f"device            {b['machine']['cuda']}  dtype {b['model']['dtype']}")
d, c, t = b["decode"], b["concurrency"], b["ttft"]
print(f"decode tok/s      backend {d['backend_stream_tok_s']}  generate {d['generate_tok_s']}"
      f"  ratio {d['backend_vs_generate']}")
print(f"8 streams vs 1    {c['concurrent_tok_s']} vs {c['one_stream_tok_s']} tok/s"
      f"  ratio {c['throughput_ratio']}")
print(f"2nd-turn TTFT ms  cold {t['ttft_cold_ms']}  cached {t['ttft_warm_ms']}  speedup {t['speedup']}"
      f"  cached {t['cached_tokens_warm']}/{t['prompt_tokens']}")
try:
    demo = json.load(open(f"{out}/demo_local.json"))
except json.JSONDecodeError:
    print("demo              (output is not one JSON object; see demo_local.json)")
else:
    print("demo              " + json.dumps(demo)[:2000])
PY
echo "== sgl-conveyor serve on CUDA, and the demo and a short eval against it over HTTP"
PORT="${PORT:-30123}"
"$CLI" serve --port "$PORT" > "$OUT/serve.log" 2>&1 &
SERVE_PID=$!
trap 'kill $SERVE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.5
done
head -c 400 "$OUT/serve.log" | grep "listening" || { tail -20 "$OUT/serve.log"; exit 1; }
timeout 90 "$CLI" demo --backend "http://127.0.0.1:$PORT" --json > "$OUT/demo_serve.json" \
    2> "$OUT/demo_serve.log" || { tail -20 "$OUT/demo_serve.log"; exit 1; }
timeout 150 "$CLI" eval --workload search,codegen --backend "http://127.0.0.1:$PORT" \
    --tasks 3 --repeats 1 --out "$OUT/eval_serve" > "$OUT/eval_serve.log" 2>&1 \
    || { tail -20 "$OUT/eval_serve.log"; exit 1; }
"$PY" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
d = json.load(open(f"{out}/demo_serve.json"))
print(f"demo over HTTP    partial {d['latency_s']} s  sequential {d['sequential_latency_s']} s"
      f"  follow-up cached {d['cached_tokens']}/{d['prompt_tokens']}")
s = json.load(open(f"{out}/eval_serve/summary.json"))
for name, w in s.get("workloads", {}).items():
    print(f"eval {name:12} speedup vs sequential {w.get('speedup_vs_sequential')}"
          f"  overlap captured {w.get('overlap_captured')}")
PY
kill $SERVE_PID 2>/dev/null || true
echo "== files in $OUT"
