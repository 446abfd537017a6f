// Model weights: one arena allocation on the backend holding every named tensor, and the loader that fills it
// from a file (read off the JS thread in chunks, converted on the host to the model dtype, uploaded).
//
// Placement: tensors are placed at 256-byte aligned offsets, in the order they were planned. A *group* of
// tensors that share their input dimension is placed back to back (only the group starts aligned), so the
// projections that read the same activations run as one GEMM over the concatenated rows: q|k|v and gate|up.
//
// Q8_0 matrices (gemm_q8's device layout, ops.h GemmQ8Args): a matrix group whose every tensor is named in the
// q8 set (and whose input dimension is a multiple of 32) is planned as two regions: the int8 values of the
// group's rows back to back (N_total, K), then their float16 scales back to back (N_total, K / 32), so the group
// still runs as one GEMM. Sources in GGUF's Q8_0 blocks (f16 d, int8 q[32]; 34 bytes) are repacked on the host
// into that layout; a Q8_0 source for a tensor planned in the float dtype (embeddings, norms, mixed groups) is
// dequantized on the host (d * q) to the arena dtype.
#pragma once
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"

namespace eet {

// Device memory owned by a backend, freed with it.
class DeviceBuffer {
 public:
  DeviceBuffer(std::shared_ptr<Backend> backend, size_t bytes)
      : backend_(std::move(backend)), ptr_(backend_->alloc(bytes)), bytes_(bytes) {}
  ~DeviceBuffer() { backend_->free(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* ptr() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<Backend> backend_;
  void* ptr_;
  size_t bytes_;
};

// Values made on the host instead of read: mean + std * U, U uniform with unit variance (range ±√3), from a
// counter-based generator of (seed, element index), so the values do not depend on the chunking.
struct RandomFill {
  bool enabled = false;
  uint64_t seed = 0;
  float mean = 0.0f, std = 0.0f;
};

// Where a tensor's bytes are: a range of a file, or random values (lib/binding.ts AddonTensorSource).
struct TensorSource {
  RandomFill random;  // when enabled, path/offset/bytes/dtype are unused
  std::string path;
  int64_t offset = 0;
  int64_t bytes = 0;
  DType dtype = DType::F32;  // float dtypes only; unused when q8
  bool q8 = false;           // the bytes are GGUF Q8_0 blocks along the innermost dimension
  std::vector<int64_t> shape;  // of the bytes as stored (the planned shape reversed when transpose)
  bool transpose = false;      // a 2-D (in, out) matrix stored transposed (Hugging Face Conv1D): flipped on load
};

std::string shape_string(const std::vector<int64_t>& shape);

class WeightArena {
 public:
  struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;
  };

  explicit WeightArena(DType dtype, std::set<std::string> q8_names = {})
      : dtype_(dtype), q8_names_(std::move(q8_names)) {}

  // Planning (before allocate): a group of loadable tensors placed back to back, or an internal f32 buffer
  // the model fills itself (not loadable, not required). A `matrices` group (2-D weights read only by GEMMs) is
  // planned in Q8_0 when all its tensors are in the q8 set and their input dimension is a multiple of 32.
  void plan_group(const std::vector<TensorSpec>& tensors, bool matrices = false);
  // Every name of the q8 set must be a planned tensor (after planning; InvalidArg otherwise).
  void check_q8_names() const;
  void plan_internal(const std::string& name, int64_t f32_elems);
  void allocate(std::shared_ptr<Backend> backend);
  void release() { arena_.reset(); }  // frees the device memory (the caller holds the backend mutex)

  // Validates the source against the planned tensor (name, shape, byte count, file extent), then reads,
  // converts and uploads it. Thread-safe; takes the backend mutex only around each upload.
  void load(const std::string& name, const TensorSource& src);
  // The random source: generated in host chunks in the arena dtype, uploaded chunk by chunk.
  void fill_random(const std::string& name, const RandomFill& r);

  void* ptr(const std::string& name) const;  // a Q8_0 tensor's int8 values
  bool is_q8(const std::string& name) const;
  const uint16_t* scales(const std::string& name) const;  // a Q8_0 tensor's float16 scales
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> missing() const;  // loadable tensors not loaded yet, in plan order
  size_t bytes() const { return total_; }
  DType dtype() const { return dtype_; }

 private:
  struct Entry {
    std::vector<int64_t> shape;
    size_t offset = 0;
    size_t bytes = 0;
    bool internal = false;
    bool loaded = false;
    bool q8 = false;
    size_t scale_offset = 0;  // q8: the scales' offset; bytes counts the int8 values only
  };
  size_t place(size_t bytes, bool align);
  void load_q8(const Entry& e, const TensorSource& src, int fd, int64_t numel);

  DType dtype_;
  std::set<std::string> q8_names_;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> order_;
  size_t total_ = 0;
  std::shared_ptr<Backend> backend_;
  std::unique_ptr<DeviceBuffer> arena_;
  mutable std::mutex mu_;  // guards Entry::loaded
};

}  // namespace eet
