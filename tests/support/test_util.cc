// Test helpers: see test_util.h.
#include "support/test_util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace cfs::test {
namespace {

std::string BaseDir() {
  if (const char* d = getenv("CIPHERFS_TEST_TMPDIR"); d != nullptr && *d != '\0') return d;
  struct stat st {};
  if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) return "/dev/shm";
  if (const char* d = getenv("TMPDIR"); d != nullptr && *d != '\0') return d;
  return "/tmp";
}

}  // namespace

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = BaseDir() + "/" + prefix + "_XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed in " + BaseDir());
  path_ = tmpl;
  fd_ = open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("open of temp dir failed");
}

TempDir::~TempDir() {
  if (fd_ >= 0) close(fd_);
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Sub(const std::string& name) const {
  std::string p = path_ + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(p, ec);
  std::filesystem::create_directories(p);
  return p;
}

uint64_t TestSeed(const std::string& test_name, uint64_t fallback) {
  uint64_t seed = fallback;
  if (const char* s = getenv("CIPHERFS_SEED"); s != nullptr && *s != '\0') seed = strtoull(s, nullptr, 0);
  std::fprintf(stderr, "[seed] %s: CIPHERFS_SEED=%llu\n", test_name.c_str(), static_cast<unsigned long long>(seed));
  return seed;
}

bool LongTests() {
  const char* s = getenv("CIPHERFS_LONG");
  return s != nullptr && std::string(s) == "1";
}

std::vector<uint8_t> Pattern(size_t n, uint64_t tag) {
  std::vector<uint8_t> v(n);
  uint64_t x = tag * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
  for (size_t i = 0; i < n; ++i) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 29;
    v[i] = uint8_t(x) == 0 ? 1 : uint8_t(x);  // never zero: tells data from holes
    x += i + 1;
  }
  return v;
}

}  // namespace cfs::test
