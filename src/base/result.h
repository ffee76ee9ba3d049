// Errors as values: Result<T> holds a T or an Error (a message). The
// allocation paths never throw; fallible set-up paths (boot, config parsing)
// return a Result the caller must look at.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace mmkit {

struct Error {
  std::string message;
  uint32_t line = 0;  // the config line the error is about, when known
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}      // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(std::move(e)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace mmkit
