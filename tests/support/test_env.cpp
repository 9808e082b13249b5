#include "support/test_env.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace edgellm::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/edgellm-test-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + templ);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string shared_data_path(const std::string& relative) {
  const char* env = std::getenv("EDGELLM_SHARED");
  const std::string root = env && *env ? env : EDGELLM_TEST_DEFAULT_SHARED;
  const std::string p = root + "/" + relative;
  std::error_code ec;
  return fs::exists(p, ec) ? p : std::string();
}

std::string source_path(const std::string& relative) {
  const char* env = std::getenv("EDGELLM_SOURCE_DIR");
  const std::string root = env && *env ? env : EDGELLM_TEST_DEFAULT_SOURCE;
  return root + "/" + relative;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace edgellm::test
