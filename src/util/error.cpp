#include "util/expected.h"

namespace edgellm {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kIo: return "i/o error";
    case ErrorCode::kFormat: return "format error";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kOutOfMemory: return "out of memory";
    case ErrorCode::kContextFull: return "context full";
    case ErrorCode::kAborted: return "aborted";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

}  // namespace edgellm
