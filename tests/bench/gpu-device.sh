#!/usr/bin/env bash
# Grove's WebGPU bench on a lent GPU machine, in one call (tests/bench/webgpu-device.ts does
# the measuring). Three modes:
#
#   bash tests/bench/gpu-device.sh prepare   # here: fills .gpu-bench/ (ignored by git) with
#                                            # an xz'd Deno, the one npm package the bench
#                                            # imports, and the Vulkan loader's .debs
#   bash tests/bench/gpu-device.sh run       # there: the device tool's command, with
#                                            # carry [".gpu-bench"]; the report lands in $OUT
#   bash tests/bench/gpu-device.sh dry-run   # here: the same steps on llvmpipe, small sizes
#
# The device machine has no network and starts bare: Deno, the npm package, the vocabulary
# fixture and the Vulkan loader travel in .gpu-bench (~32 MB), the project's files as the
# working tree (~7 MB). The model is generated there (tests/bench/models.ts: the bench's
# 1.1 B Q4_0, ~480 MB, too big to carry; GPU_BENCH_ARGS="--model stories ..." skips that).
# Suggested device call (15 minutes of device time per session; this takes ~5-8):
#   run(command="bash tests/bench/gpu-device.sh run", carry=[".gpu-bench"], timeout_s=540)
set -euo pipefail

mode="${1:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
pack="$root/.gpu-bench"

prepare() {
  grep -qx '/.gpu-bench/' .git/info/exclude 2>/dev/null || echo '/.gpu-bench/' >>.git/info/exclude
  mkdir -p "$pack/node_modules/@huggingface" "$pack/debs"
  local deno_bin
  deno_bin="$(node -e 'console.log(require.resolve("deno/deno"))' 2>/dev/null || true)"
  [ -x "$deno_bin" ] || deno_bin="$root/node_modules/deno/deno"
  echo "compressing $deno_bin ($("$deno_bin" --version | head -1))"
  xz -T0 -6 -c "$deno_bin" >"$pack/deno.xz"
  # the bench's import graph reaches one npm package (inference/chat-template.ts)
  rm -rf "$pack/node_modules/@huggingface/jinja"
  cp -r node_modules/@huggingface/jinja "$pack/node_modules/@huggingface/"
  # the vocabulary the generated bench model takes (a fixture outside the repository)
  mkdir -p "$pack/models/vocab"
  cp "$(npx deno eval 'import { fixturePath } from "./tests/support/fixtures.ts";
    console.log(fixturePath("vocab/ggml-vocab-llama-spm.gguf"))')" "$pack/models/vocab/"
  # the Vulkan loader (wgpu's way to the NVIDIA driver); /work/.library/device/README.md
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  mkdir -p /tmp/amd64/partial
  apt-get "${o[@]}" update >/dev/null
  (cd "$pack/debs" && apt-get "${o[@]}" download libvulkan1 >/dev/null)
  du -sh "$pack"/* | sed 's/^/  /'
}

# Vulkan loader and NVIDIA's ICD on the device; nothing to do on a machine that has them.
vulkan_env() {
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in "$pack"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
}

bench() { # deno binary, out dir, extra args...
  local deno="$1" out="$2"
  shift 2
  export NO_COLOR=1 GROVE_HOME="${GROVE_HOME:-/tmp/grove-gpu-bench}" XDG_RUNTIME_DIR=/tmp/xdg-gpu
  mkdir -p -m 700 "$XDG_RUNTIME_DIR" "$GROVE_HOME" "$out"
  echo "== device"
  nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv 2>/dev/null ||
    echo "(no nvidia-smi)"
  # the card's own copy rate through CUDA, where PyTorch is at hand, beside WebGPU's below
  python3 - <<'EOF' 2>/dev/null || echo "(no CUDA copy measurement)"
import torch, time
x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): y.copy_(x)
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 20
print(f"CUDA device-to-device copy: {2 * x.numel() / dt / 1e9:.0f} GB/s (read + write), {torch.cuda.get_device_name()}")
EOF
  echo "== webgpu bench"
  "$deno" run -A tests/bench/webgpu-device.ts --json "$out/webgpu-device.json" "$@" 2>&1 |
    tee "$out/webgpu-device.log"
}

case "$mode" in
prepare)
  prepare
  ;;
run)
  [ -f "$pack/deno.xz" ] || { echo "no $pack/deno.xz: run 'prepare' here first, carry .gpu-bench" >&2; exit 2; }
  vulkan_env
  xz -dc "$pack/deno.xz" >/tmp/deno && chmod +x /tmp/deno
  rm -rf node_modules && mkdir -p node_modules && cp -r "$pack/node_modules/." node_modules/
  export GROVE_MODEL_PATH="$pack/models"
  # GPU_BENCH_ARGS: other webgpu-device.ts arguments (a smaller model, say)
  # shellcheck disable=SC2086
  bench /tmp/deno "${OUT:-/tmp/gpu-bench-out}" ${GPU_BENCH_ARGS:---model big --decode 128 --prompt 64}
  ;;
dry-run)
  deno_bin="$root/node_modules/deno/deno"
  bench "$deno_bin" "${OUT:-/tmp/gpu-bench-dry}" --model stories --decode 16 --prompt 8 --quick
  ;;
*)
  echo "usage: bash tests/bench/gpu-device.sh prepare|run|dry-run" >&2
  exit 2
  ;;
esac
