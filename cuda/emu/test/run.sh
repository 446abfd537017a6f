#!/bin/sh
# Builds and runs the emulator's standalone self-test: optimised, AddressSanitizer, and the ucontext fallback.
#   cuda/emu/test/run.sh [--nvcc]     (from anywhere; --nvcc also checks that selftest.cu compiles for sm_90)
# One compile at a time: the machine is shared.
set -eu
cd "$(dirname "$0")/../../.."
out=${TMPDIR:-/tmp}/eet-emu-test
mkdir -p "$out"
warn="-Wall -Wextra -Werror -Wno-unknown-pragmas -fno-strict-aliasing"
src="cuda/emu/emu.cpp cuda/emu/warp.cpp cuda/emu/fiber.cpp cuda/emu/test/driver.cpp"

build() {  # build NAME EXTRA_FLAGS...
  name=$1; shift
  echo "-- build $name"
  g++ -std=c++17 $warn -fstack-clash-protection "$@" -c -x c++ cuda/emu/selftest.cu -o "$out/selftest-$name.o"
  g++ -std=c++17 $warn -fstack-clash-protection "$@" $src "$out/selftest-$name.o" -o "$out/driver-$name" -pthread
}

build release -O2
echo "-- run release"
timeout 120 "$out/driver-release"

build asan -O1 -g -fsanitize=address -fno-omit-frame-pointer
echo "-- run asan"
ASAN_OPTIONS=detect_leaks=0 timeout 300 "$out/driver-asan"

build ucontext -O2 -DEET_EMU_UCONTEXT
echo "-- run ucontext fallback"
timeout 300 "$out/driver-ucontext"

if [ "${1:-}" = "--nvcc" ]; then
  echo "-- nvcc -arch=sm_90"
  nvcc -std=c++17 -arch=sm_90 -c cuda/emu/selftest.cu -I. -o "$out/selftest-cuda.o"
fi
echo "-- all builds passed"
