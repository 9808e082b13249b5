// Helpers for tests: temporary directories and paths of reference data.
#pragma once

#include <string>

namespace edgellm::test {

// A fresh directory under $TMPDIR, removed (recursively) when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The reference data (EDGELLM_SHARED: tests/data/reference unpacked by CMake) joined with `relative`, or "" if that file or directory does not exist.
// Tests call GTEST_SKIP() with a message naming the path when this is empty.
std::string shared_data_path(const std::string& relative);

// The project's source directory (EDGELLM_SOURCE_DIR), for committed fixtures such as tests/models/.
std::string source_path(const std::string& relative);

// Writes `bytes` to `path` (test-only convenience; aborts on failure).
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

}  // namespace edgellm::test
