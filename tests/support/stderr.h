#pragma once
// Test support: `capture_stderr(f)` runs f with the process's stderr (fd 2)
// redirected to a temporary file and returns what was written, also when f
// throws (the exception goes on after stderr is restored).
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <unistd.h>

#include <catch2/catch.hpp>

namespace ember::test {

inline std::string capture_stderr(const std::function<void()>& f) {
  std::fflush(stderr);
  char path[] = "/tmp/ember_stderr_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const int saved = dup(2);
  dup2(fd, 2);
  auto restore = [&] {
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
  };
  try {
    f();
  } catch (...) {
    restore();
    std::remove(path);
    throw;
  }
  restore();
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path);
  return ss.str();
}

}  // namespace ember::test
