#pragma once
#include <stdexcept>
#include <string>

namespace ember {

/// Base of every error ember throws; `what()` is one line that starts with the op's name.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Shapes that cannot be combined, or a shape argument that makes no sense.
class ShapeError : public Error {
 public:
  using Error::Error;
};
/// A dtype an op does not accept, or a cast that would lose meaning.
class DTypeError : public Error {
 public:
  using Error::Error;
};
/// A device that is missing, or tensors on different devices.
class DeviceError : public Error {
 public:
  using Error::Error;
};
/// An index or axis out of range.
class IndexError : public Error {
 public:
  using Error::Error;
};
/// A bad value: a negative size, a malformed file, a non-scalar `item()`.
class ValueError : public Error {
 public:
  using Error::Error;
};
/// An allocation the device could not satisfy.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};
/// A broken invariant inside ember (a bug): carries file:line.
class InternalError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_internal(const char* file, int line, const char* cond);
}  // namespace detail

}  // namespace ember

/// Checks an internal invariant in every build type (not only debug builds).
#define EMBER_CHECK_INTERNAL(cond)                                           \
  do {                                                                       \
    if (!(cond)) [[unlikely]]                                                \
      ::ember::detail::throw_internal(__FILE__, __LINE__, #cond);            \
  } while (0)
