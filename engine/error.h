// Errors raised anywhere in native code. Every failure becomes an eet::Error with a stable code;
// the N-API glue (native/) turns it into a JS EetError subclass. Nothing in native code exits or aborts.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace eet {

enum class ErrorCode {
  InvalidArg,   // ERR_INVALID_ARG
  ModelFormat,  // ERR_MODEL_FORMAT
  Unsupported,  // ERR_UNSUPPORTED
  Cuda,         // ERR_CUDA
  Oom,          // ERR_OOM
  Disposed,     // ERR_DISPOSED
  Aborted,      // ERR_ABORTED
  Kernel,       // ERR_KERNEL: the emu detected a kernel bug (divergent barrier, crash in a kernel)
  Busy,         // ERR_BUSY: a context's request queue is full (maxQueued); try again later
  Numeric,      // ERR_NUMERIC: the model produced non-finite logits (NaN or infinity) for a request
  Internal,     // ERR_INTERNAL
};

const char* error_code_name(ErrorCode c);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void throw_error(ErrorCode code, const std::string& msg);

// Checked size arithmetic for anything derived from untrusted input (model headers, request sizes).
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) throw_error(ErrorCode::InvalidArg, std::string("size overflow in ") + what);
  return r;
}
inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) throw_error(ErrorCode::InvalidArg, std::string("size overflow in ") + what);
  return r;
}

}  // namespace eet

#define EET_REQUIRE(cond, code, msg)                 \
  do {                                               \
    if (!(cond)) ::eet::throw_error((code), (msg));  \
  } while (0)
