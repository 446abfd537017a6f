// Shared base for the two backends whose memory is host memory (cpu and emu): allocation, copies, fill.
#pragma once
#include <cstring>

#include "backend.h"

namespace eet {

class HostMemoryBackend : public Backend {
 public:
  void upload(void* dst, const void* src, size_t n) override { if (n) std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { if (n) std::memcpy(dst, src, n); }
  void copy(void* dst, const void* src, size_t n) override { if (n) std::memmove(dst, src, n); }
  void fill(void* dst, uint8_t byte, size_t n) override { if (n) std::memset(dst, byte, n); }
  void synchronize() override {}
  size_t free_memory() const override;
};

}  // namespace eet
