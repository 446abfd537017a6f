#!/bin/sh
# Builds and runs the emulator's standalone self-test: optimised, AddressSanitizer, and the ucontext fallback.
#   cuda/emu/test/run.sh [--nvcc]     (from anywhere; --nvcc also checks that cuda/emu/selftest*.cu compile for sm_90)
# One compile at a time: the machine is shared.
set -eu
cd "$(dirname "$0")/../../.."
out=${TMPDIR:-/tmp}/eet-emu-test
mkdir -p "$out"
warn="-Wall -Wextra -Werror -Wno-unknown-pragmas -fno-strict-aliasing"
src="cuda/emu/emu.cpp cuda/emu/warp.cpp cuda/emu/fiber.cpp cuda/emu/ptx.cpp cuda/emu/test/driver.cpp"
cases=$(ls cuda/emu/selftest*.cu)  # the registry (selftest.cu) and one file per family of cases

# shellcheck disable=SC2086 # $warn, $src and $objs are lists of words
build() {  # build NAME EXTRA_FLAGS...
  name=$1; shift
  echo "-- build $name"
  objs=""
  for f in $cases; do
    o="$out/$(basename "$f" .cu)-$name.o"
    g++ -std=c++17 $warn -fstack-clash-protection "$@" -c -x c++ "$f" -o "$o"
    objs="$objs $o"
  done
  g++ -std=c++17 $warn -fstack-clash-protection "$@" $src $objs -o "$out/driver-$name" -pthread
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
  for f in $cases; do nvcc -std=c++17 -arch=sm_90 -c "$f" -I. -o "$out/$(basename "$f" .cu)-cuda.o"; done
fi
echo "-- all builds passed"
