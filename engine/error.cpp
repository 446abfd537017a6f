#include "error.h"

namespace eet {

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidArg: return "ERR_INVALID_ARG";
    case ErrorCode::ModelFormat: return "ERR_MODEL_FORMAT";
    case ErrorCode::Unsupported: return "ERR_UNSUPPORTED";
    case ErrorCode::Cuda: return "ERR_CUDA";
    case ErrorCode::Oom: return "ERR_OOM";
    case ErrorCode::Disposed: return "ERR_DISPOSED";
    case ErrorCode::Aborted: return "ERR_ABORTED";
    case ErrorCode::Busy: return "ERR_BUSY";
    case ErrorCode::Numeric: return "ERR_NUMERIC";
    case ErrorCode::Kernel: return "ERR_KERNEL";
    case ErrorCode::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

void throw_error(ErrorCode code, const std::string& msg) { throw Error(code, msg); }

}  // namespace eet
