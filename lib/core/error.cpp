#include <ember/error.h>

#include <fmt/format.h>

namespace ember::detail {

void throw_internal(const char* file, int line, const char* cond) {
  throw InternalError(fmt::format("internal error at {}:{}: {} does not hold (a bug in ember)",
                                  file, line, cond));
}

}  // namespace ember::detail
