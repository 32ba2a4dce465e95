// libFuzzer target for the dirty-chunk log file as DirtyLog::Open reads it
// after a crash (store/dirty_log.h, docs/format/chunks.md section 4): the
// header, then 64-byte records from offset 4096 up to the first all-zero
// record. The input is written as `dirty.log` into a private directory and
// opened read-only. The first input byte chooses whether the header checksum
// and the record MACs are made valid, so the fuzzer reaches the field checks
// behind them. Every record taken must be one the decoder accepts; never
// crash.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/secret_bytes.h"
#include "crypto/mac.h"
#include "store/backing.h"
#include "store/dirty_log.h"

namespace {

using namespace cfs::store;
using cfs::ByteView;

struct Env {
  std::string dir;
  int dirfd = -1;
  std::unique_ptr<format::MetaAuth> auth;
  PosixBacking backing;
};

Env& TheEnv() {
  static Env* env = [] {
    auto* e = new Env;
    char tmpl[] = "/tmp/cfs_dirty_log_fuzz.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    e->dir = tmpl;
    e->dirfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e->dirfd < 0) std::abort();
    std::atexit([] {  // libFuzzer ends with exit(): leave no directory behind
      unlinkat(TheEnv().dirfd, "dirty.log", 0);
      rmdir(TheEnv().dir.c_str());
    });
    uint8_t raw[32];
    for (int i = 0; i < 32; ++i) raw[i] = static_cast<uint8_t>(0x3D + i);
    cfs::SecretBytes key(raw, sizeof raw);
    e->auth = std::make_unique<format::MetaAuth>(std::make_shared<const cfs::crypto::MacKey>(key));
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd >= 0) cfs::log::SetFd(null_fd);  // "record does not verify" per input is noise
    return e;
  }();
  return *env;
}

// The log file image: header from the input's first 64 bytes (after the
// flag byte), records from the rest, placed at kLogRecordsOffset.
std::vector<uint8_t> Image(const format::MetaAuth& auth, const uint8_t* data, size_t size) {
  const uint8_t flags = size > 0 ? data[0] : 0;
  if (size > 0) ++data, --size;
  const size_t head = size < format::kLogHeaderSize ? size : format::kLogHeaderSize;
  const size_t recs = size - head;
  // Flag 4: a truncated file (header only, no record area).
  std::vector<uint8_t> file((flags & 4) ? head : format::kLogRecordsOffset + recs, 0);
  std::memcpy(file.data(), data, head);
  if ((flags & 4) == 0) std::memcpy(file.data() + format::kLogRecordsOffset, data + head, recs);
  if ((flags & 1) && file.size() >= format::kLogHeaderSize) {
    format::MetaAuth checksum(nullptr);
    cfs::crypto::Mac sum = checksum.Compute("dirtylog", ByteView(file.data(), 32));
    std::memcpy(file.data() + 32, sum.data(), sum.size());
  }
  if ((flags & 2) && (flags & 4) == 0) {
    for (size_t off = format::kLogRecordsOffset; off + format::kLogRecordSize <= file.size();
         off += format::kLogRecordSize) {
      cfs::crypto::Mac mac = auth.Compute("dirtylog", ByteView(file.data() + off, 32));
      std::memcpy(file.data() + off + 32, mac.data(), mac.size());
    }
  }
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Env& env = TheEnv();
  std::vector<uint8_t> file = Image(*env.auth, data, size);
  int fd = openat(env.dirfd, "dirty.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  if (!file.empty() && write(fd, file.data(), file.size()) != static_cast<ssize_t>(file.size())) std::abort();
  close(fd);
  auto dlog = DirtyLog::Open(&env.backing, env.dirfd, env.auth.get(), /*read_only=*/true, 4096, nullptr);
  if (!dlog.ok()) return 0;
  const size_t max_records =
      file.size() > format::kLogRecordsOffset ? (file.size() - format::kLogRecordsOffset) / format::kLogRecordSize : 0;
  auto records = (*dlog)->PreviousRecords();
  if (records.size() > max_records) std::abort();
  if (!(*dlog)->unclean() && !records.empty()) std::abort();
  for (const format::LogRecord& r : records) {
    if (r.count == 0 || r.count > 65536) std::abort();
  }
  return 0;
}
