// Expected<T>: a value or an Error, our small stand-in for C++23 std::expected.
// Fallible functions return it; messages name the file, tensor, key or offset and show expected vs got.
#pragma once

#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace edgellm {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // bad parameter or request from the caller
  kIo,               // open/read/write/mmap failed
  kFormat,           // a file is malformed: wrong magic, truncated, bad offsets, bad JSON
  kUnsupported,      // well-formed but not something edgellm can run (architecture, dtype, version)
  kNotFound,         // a required key, tensor or file is missing
  kOutOfMemory,      // an allocation or a memory budget check failed
  kContextFull,      // the KV cache cannot hold the request
  kAborted,          // stopped on request
  kBusy,             // a queue or a resource is full right now: the same request may succeed later
  kInternal,         // a bug: should never reach users
};

const char* error_code_name(ErrorCode code);

struct Error {
  Error() = default;
  // A constructor rather than C++20's parenthesized aggregate initialization, which clang only has from 16.
  Error(ErrorCode code_, std::string message_) : code(code_), message(std::move(message_)) {}
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Expected(Error error) : storage_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return storage_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { check_value(); return std::get<0>(storage_); }
  const T& value() const& { check_value(); return std::get<0>(storage_); }
  T&& value() && { check_value(); return std::get<0>(std::move(storage_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(storage_); }
  Error&& take_error() { return std::get<1>(std::move(storage_)); }

 private:
  void check_value() const {
    if (!ok()) std::abort();  // programmer error: value() on an Error
  }
  std::variant<T, Error> storage_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  Error&& take_error() { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Expected<void>;

}  // namespace edgellm

#define EDGELLM_CONCAT_INNER(a, b) a##b
#define EDGELLM_CONCAT(a, b) EDGELLM_CONCAT_INNER(a, b)

// Propagates the error of an Expected expression out of the calling function.
#define EDGELLM_TRY(expr)                                        \
  do {                                                           \
    auto edgellm_try_result_ = (expr);                           \
    if (!edgellm_try_result_.ok()) return edgellm_try_result_.take_error(); \
  } while (0)

// `EDGELLM_ASSIGN_OR_RETURN(auto x, f());` declares x from f()'s value or returns its error.
#define EDGELLM_ASSIGN_OR_RETURN(decl, expr) \
  EDGELLM_ASSIGN_OR_RETURN_IMPL(EDGELLM_CONCAT(edgellm_tmp_, __LINE__), decl, expr)
#define EDGELLM_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.take_error();              \
  decl = std::move(tmp).value()
