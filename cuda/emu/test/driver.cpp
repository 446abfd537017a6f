// Standalone driver for the emulator's self-test (cuda/emu/selftest.cu). Not part of the addon build; run.sh
// builds and runs it. Every case runs in both scheduling orders; the racy kernel must differ between them.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../../entry.h"
#include "../emu.h"

// engine/error.cpp belongs to the build owner; the driver supplies its own.
namespace eet {
const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidArg: return "ERR_INVALID_ARG";
    case ErrorCode::Kernel: return "ERR_KERNEL";
    case ErrorCode::Internal: return "ERR_INTERNAL";
    case ErrorCode::Oom: return "ERR_OOM";
    default: return "ERR_OTHER";
  }
}
void throw_error(ErrorCode code, const std::string& msg) { throw Error(code, msg); }
}  // namespace eet

namespace {

int failures = 0;

std::string run_case(const std::string& name) {
  try {
    return eet_emu::emu_selftest(name.c_str(), nullptr);
  } catch (const eet::Error& e) {
    ++failures;
    return std::string("FAIL [") + eet::error_code_name(e.code()) + "] " + e.what();
  }
}

void sentinel_handler(int) {}

// Another library's SIGSEGV handler must be back in place after launches (including a crashed one).
bool handler_restored() {
  struct sigaction now{};
  sigaction(SIGSEGV, nullptr, &now);
  return now.sa_handler == &sentinel_handler;
}

__global__ void empty_kernel(int* p) { (void)p; }

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3) {  // driver CASE N: run one case N times (profiling)
    for (int i = 0; i < std::atoi(argv[2]); ++i) std::printf("%s\n", run_case(argv[1]).c_str());
    return failures ? 1 : 0;
  }
  struct sigaction sa{};
  sa.sa_handler = &sentinel_handler;
  sigaction(SIGSEGV, &sa, nullptr);

  std::string race[2];
  for (int reverse = 0; reverse < 2; ++reverse) {
    eet_emu::set_reverse_order(reverse != 0);
    std::printf("== order: %s\n", reverse ? "reverse" : "forward");
    for (const auto& name : eet_emu::emu_selftest_cases()) {
      const std::string r = run_case(name);
      std::printf("  %-28s %s\n", name.c_str(), r.c_str());
      if (name == "race") race[reverse] = r;
    }
  }
  if (race[0] == race[1]) {
    ++failures;
    std::printf("FAIL race: forward and reverse orders agree (%s)\n", race[0].c_str());
  } else {
    std::printf("race differs between orders: forward %s / reverse %s\n", race[0].c_str(), race[1].c_str());
  }
  if (!handler_restored()) {
    ++failures;
    std::printf("FAIL: the previous SIGSEGV handler was not restored\n");
  }

  // Launches from several OS threads at once are serialised by the launch mutex.
  eet_emu::set_reverse_order(false);
  std::vector<std::thread> threads;
  int thread_failures[4] = {};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t, &thread_failures] {
      for (int i = 0; i < 10; ++i)
        for (const char* c : {"block_reduce", "shuffle", "atomics", "expect_null_store"}) {
          try {
            eet_emu::emu_selftest(c, nullptr);
          } catch (const eet::Error&) {
            ++thread_failures[t];
          }
        }
    });
  for (auto& th : threads) th.join();
  for (int f : thread_failures) failures += f;
  std::printf("concurrent launches from 4 threads: %s\n",
              thread_failures[0] + thread_failures[1] + thread_failures[2] + thread_failures[3] ? "FAIL" : "ok");

  // Launch overhead: an empty kernel, 1 block of 32 threads.
  const int n = 2000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) eet_emu::launch(empty_kernel, dim3(1), dim3(32), 0, nullptr, (int*)nullptr);
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
  std::printf("empty launch (1 x 32 threads): %.1f us\n", us);

  std::printf(failures ? "FAILED: %d\n" : "ALL OK\n", failures);
  return failures ? 1 : 0;
}
