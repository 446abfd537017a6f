// Weight arena planning and the file loader (weights.h).
#include "weights.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "half.h"

namespace eet {

namespace {

constexpr size_t kAlign = 256;
constexpr size_t kChunkBytes = size_t(8) << 20;  // source bytes read, converted and uploaded at a time

float to_f32(DType t, const uint8_t* p, size_t i) {
  switch (t) {
    case DType::F32: { float f; std::memcpy(&f, p + 4 * i, 4); return f; }
    case DType::F16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return f16_to_f32(h); }
    case DType::BF16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return bf16_to_f32(h); }
    default: return 0.0f;
  }
}

void from_f32(DType t, uint8_t* p, size_t i, float v) {
  switch (t) {
    case DType::F32: std::memcpy(p + 4 * i, &v, 4); break;
    case DType::F16: { uint16_t h = f32_to_f16(v); std::memcpy(p + 2 * i, &h, 2); break; }
    case DType::BF16: { uint16_t h = f32_to_bf16(v); std::memcpy(p + 2 * i, &h, 2); break; }
    default: break;
  }
}

// Reads exactly n bytes at offset, retrying short reads and EINTR.
void pread_all(int fd, const std::string& path, uint8_t* dst, size_t n, int64_t offset) {
  while (n > 0) {
    ssize_t r = ::pread(fd, dst, n, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_error(ErrorCode::ModelFormat, "cannot read " + path + ": " + std::strerror(errno));
    if (r == 0) throw_error(ErrorCode::ModelFormat, "unexpected end of file in " + path + " at byte " + std::to_string(offset));
    dst += r;
    n -= size_t(r);
    offset += r;
  }
}

struct Fd {
  int fd;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

size_t WeightArena::place(size_t bytes, bool align) {
  if (align) total_ = (total_ + kAlign - 1) / kAlign * kAlign;
  size_t at = total_;
  total_ += bytes;
  return at;
}

void WeightArena::plan_group(const std::vector<TensorSpec>& tensors, bool matrices) {
  bool q8 = matrices && !tensors.empty();
  for (const TensorSpec& t : tensors) {
    q8 = q8 && q8_names_.count(t.name) && t.shape.size() == 2 && t.shape[1] % 32 == 0;
  }
  bool first = true;
  for (const TensorSpec& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n = checked_mul(n, d, "weight size");
    Entry e;
    e.shape = t.shape;
    e.q8 = q8;
    e.bytes = size_t(q8 ? n : checked_mul(n, int64_t(dtype_size(dtype_)), "weight size"));
    e.offset = place(e.bytes, first);
    first = false;
    entries_[t.name] = e;
    order_.push_back(t.name);
  }
  if (!q8) return;
  first = true;  // the scales of the group's rows, back to back after its values
  for (const TensorSpec& t : tensors) {
    Entry& e = entries_[t.name];
    e.scale_offset = place(size_t(t.shape[0] * (t.shape[1] / 32) * 2), first);
    first = false;
  }
}

void WeightArena::check_q8_names() const {
  for (const std::string& name : q8_names_) {
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second.internal) {
      throw_error(ErrorCode::InvalidArg, "q8Weights names '" + name + "', which is not a tensor of this model");
    }
  }
}

void WeightArena::plan_internal(const std::string& name, int64_t f32_elems) {
  Entry e;
  e.shape = {f32_elems};
  e.bytes = size_t(checked_mul(f32_elems, 4, "internal buffer size"));
  e.offset = place(e.bytes, true);
  e.internal = true;
  entries_[name] = e;
}

void WeightArena::allocate(std::shared_ptr<Backend> backend) {
  backend_ = std::move(backend);
  arena_ = std::make_unique<DeviceBuffer>(backend_, total_);
}

void* WeightArena::ptr(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw_error(ErrorCode::Internal, "no weight named " + name);
  return static_cast<uint8_t*>(arena_->ptr()) + it->second.offset;
}

bool WeightArena::is_q8(const std::string& name) const {
  auto it = entries_.find(name);
  return it != entries_.end() && it->second.q8;
}

const uint16_t* WeightArena::scales(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.q8) throw_error(ErrorCode::Internal, "no Q8_0 weight named " + name);
  return reinterpret_cast<const uint16_t*>(static_cast<uint8_t*>(arena_->ptr()) + it->second.scale_offset);
}

std::vector<std::string> WeightArena::missing() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const std::string& name : order_) {
    if (!entries_.at(name).loaded) out.push_back(name);
  }
  return out;
}

void WeightArena::load(const std::string& name, const TensorSource& src) {
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.internal) {
    throw_error(ErrorCode::ModelFormat, "tensor '" + name + "' is not a tensor of this model");
  }
  const Entry& e = it->second;
  std::vector<int64_t> stored = e.shape;
  if (src.transpose) {
    if (e.shape.size() != 2) {
      throw_error(ErrorCode::InvalidArg, "tensor '" + name + "': transpose needs a 2-D tensor but its shape is " + shape_string(e.shape));
    }
    stored = {e.shape[1], e.shape[0]};
  }
  if (src.shape != stored) {
    throw_error(ErrorCode::ModelFormat, "tensor '" + name + "': expected shape " + shape_string(stored) +
                                            (src.transpose ? " (transposed)" : "") + " but received " + shape_string(src.shape));
  }
  if (src.random.enabled) {
    if (e.q8) throw_error(ErrorCode::Unsupported, "tensor '" + name + "' is planned as Q8_0; random sources are float only");
    fill_random(name, src.random);
    return;
  }
  if (!src.q8 && !is_float(src.dtype)) {
    throw_error(ErrorCode::Unsupported, "tensor '" + name + "': source dtype " + dtype_name(src.dtype) + " is not supported");
  }
  if (src.q8 && src.transpose) {
    throw_error(ErrorCode::Unsupported, "tensor '" + name + "': a q8_0 source cannot be transposed");
  }
  if (e.q8 && !src.q8) {
    throw_error(ErrorCode::Unsupported, "tensor '" + name + "' is listed in q8Weights but its source is " +
                                            dtype_name(src.dtype) + ", not q8_0");
  }
  int64_t numel = 1;
  for (int64_t d : e.shape) numel = checked_mul(numel, d, "tensor size");
  if (src.q8 && e.shape.back() % 32 != 0) {
    throw_error(ErrorCode::ModelFormat, "tensor '" + name + "': a q8_0 source needs an innermost dimension that is a multiple of 32, got " +
                                            shape_string(e.shape));
  }
  const int64_t src_size = int64_t(dtype_size(src.dtype));
  const int64_t want = src.q8 ? checked_mul(numel / 32, 34, "tensor size") : checked_mul(numel, src_size, "tensor size");
  if (src.bytes != want) {
    throw_error(ErrorCode::ModelFormat, "tensor '" + name + "': expected " + std::to_string(want) + " bytes (" +
                                            std::to_string(numel) + " " + (src.q8 ? "q8_0" : dtype_name(src.dtype)) +
                                            " values) but received " + std::to_string(src.bytes));
  }
  if (src.offset < 0) {
    throw_error(ErrorCode::InvalidArg, "tensor '" + name + "': expected offset >= 0 but received " + std::to_string(src.offset));
  }

  Fd f{::open(src.path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw_error(ErrorCode::InvalidArg, "tensor '" + name + "': cannot open " + src.path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) throw_error(ErrorCode::InvalidArg, "cannot stat " + src.path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw_error(ErrorCode::InvalidArg, "tensor '" + name + "': " + src.path + " is not a regular file");
  const int64_t end = checked_add(src.offset, src.bytes, "tensor extent");
  if (end > int64_t(st.st_size)) {
    throw_error(ErrorCode::ModelFormat, "tensor '" + name + "': bytes [" + std::to_string(src.offset) + ", " +
                                            std::to_string(end) + ") are past the end of " + src.path + " (" +
                                            std::to_string(int64_t(st.st_size)) + " bytes)");
  }
  if (src.q8) {
    load_q8(e, src, f.fd, numel);
  } else {
    // A transposed source is read whole and flipped on the host: stored (rows, cols) becomes (cols, rows).
    std::vector<uint8_t> flipped;
    if (src.transpose) {
      const size_t rows = size_t(src.shape[0]), cols = size_t(src.shape[1]), es = size_t(src_size);
      std::vector<uint8_t> whole(size_t(src.bytes));
      pread_all(f.fd, src.path, whole.data(), whole.size(), src.offset);
      flipped.resize(whole.size());
      for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) std::memcpy(&flipped[(c * rows + r) * es], &whole[(r * cols + c) * es], es);
      }
    }
    const size_t dst_size = dtype_size(dtype_);
    const size_t chunk_elems = kChunkBytes / size_t(src_size);
    std::vector<uint8_t> in(std::min<size_t>(size_t(numel), chunk_elems) * size_t(src_size));
    std::vector<uint8_t> out(src.dtype == dtype_ ? 0 : std::min<size_t>(size_t(numel), chunk_elems) * dst_size);
    uint8_t* dst = static_cast<uint8_t*>(arena_->ptr()) + e.offset;
    for (size_t done = 0; done < size_t(numel);) {
      const size_t n = std::min(chunk_elems, size_t(numel) - done);
      if (src.transpose) {
        std::memcpy(in.data(), flipped.data() + done * size_t(src_size), n * size_t(src_size));
      } else {
        pread_all(f.fd, src.path, in.data(), n * size_t(src_size), src.offset + int64_t(done) * src_size);
      }
      const uint8_t* host = in.data();
      if (src.dtype != dtype_) {
        for (size_t i = 0; i < n; ++i) from_f32(dtype_, out.data(), i, to_f32(src.dtype, in.data(), i));
        host = out.data();
      }
      std::lock_guard<FairMutex> lock(backend_->mutex());
      backend_->upload(dst + done * dst_size, host, n * dst_size);
      done += n;
    }
  }
  {
    std::lock_guard<FairMutex> lock(backend_->mutex());
    backend_->synchronize();
  }
  std::lock_guard<std::mutex> lock(mu_);
  entries_.at(name).loaded = true;
}

// GGUF Q8_0 blocks (f16 d, int8 q[32]), block i = values [32 i, 32 i + 32) of the row-major tensor: into a Q8_0
// entry, q goes to values + 32 i and d to scales + i (gemm_q8's layout); into a float entry, d * q in the arena dtype.
void WeightArena::load_q8(const Entry& e, const TensorSource& src, int fd, int64_t numel) {
  const size_t blocks = size_t(numel / 32);
  const size_t chunk_blocks = kChunkBytes / 34;
  const size_t dst_size = dtype_size(dtype_);
  std::vector<uint8_t> in(std::min(blocks, chunk_blocks) * 34);
  std::vector<uint8_t> vals(e.q8 ? in.size() / 34 * 32 : in.size() / 34 * 32 * dst_size);
  std::vector<uint16_t> scl(e.q8 ? in.size() / 34 : 0);
  uint8_t* base = static_cast<uint8_t*>(arena_->ptr());
  for (size_t done = 0; done < blocks;) {
    const size_t n = std::min(chunk_blocks, blocks - done);
    pread_all(fd, src.path, in.data(), n * 34, src.offset + int64_t(done) * 34);
    for (size_t b = 0; b < n; ++b) {
      const uint8_t* blk = in.data() + b * 34;
      uint16_t d;
      std::memcpy(&d, blk, 2);
      if (e.q8) {
        scl[b] = d;
        std::memcpy(vals.data() + b * 32, blk + 2, 32);
      } else {
        const float df = f16_to_f32(d);
        for (size_t i = 0; i < 32; ++i) {
          from_f32(dtype_, vals.data(), b * 32 + i, df * float(int8_t(blk[2 + i])));
        }
      }
    }
    std::lock_guard<FairMutex> lock(backend_->mutex());
    if (e.q8) {
      backend_->upload(base + e.offset + done * 32, vals.data(), n * 32);
      backend_->upload(base + e.scale_offset + done * 2, scl.data(), n * 2);
    } else {
      backend_->upload(base + e.offset + done * 32 * dst_size, vals.data(), n * 32 * dst_size);
    }
    done += n;
  }
}

void WeightArena::fill_random(const std::string& name, const RandomFill& r) {
  const Entry& e = entries_.at(name);
  const size_t elem = dtype_size(dtype_);
  const size_t numel = e.bytes / elem;
  const size_t chunk_elems = kChunkBytes / elem;
  std::vector<uint8_t> out(std::min(numel, chunk_elems) * elem);
  const float scale = r.std * 1.7320508f;  // uniform on [-√3, √3) has unit variance
  uint8_t* dst = static_cast<uint8_t*>(arena_->ptr()) + e.offset;
  for (size_t done = 0; done < numel;) {
    const size_t n = std::min(chunk_elems, numel - done);
    for (size_t i = 0; i < n; ++i) {
      uint64_t z = r.seed + (uint64_t(done + i) + 1) * 0x9E3779B97F4A7C15ull;  // splitmix64 of the index
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      const float u = float(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [-1, 1)
      from_f32(dtype_, out.data(), i, r.mean + scale * u);
    }
    std::lock_guard<FairMutex> lock(backend_->mutex());
    backend_->upload(dst + done * elem, out.data(), n * elem);
    done += n;
  }
  {
    std::lock_guard<FairMutex> lock(backend_->mutex());
    backend_->synchronize();
  }
  std::lock_guard<std::mutex> lock(mu_);
  entries_.at(name).loaded = true;
}

}  // namespace eet
