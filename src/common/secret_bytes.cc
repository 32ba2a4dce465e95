#include "common/secret_bytes.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "common/secret_pool.h"

namespace cfs {

void SecureWipe(void* p, size_t n) {
  if (p != nullptr && n > 0) explicit_bzero(p, n);
}

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) return;
  if (size <= secret_pool::kMaxPooled) {
    data_ = secret_pool::Acquire(size);
    mapped_ = secret_pool::SlotSizeFor(size);
    return;
  }
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  mapped_ = (size + page - 1) / page * page;
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // mlock can fail under RLIMIT_MEMLOCK for unprivileged users; the memory
  // is still wiped and excluded from dumps, which is the part we rely on.
  (void)mlock(p, mapped_);
  (void)madvise(p, mapped_, MADV_DONTDUMP);
  data_ = static_cast<uint8_t*>(p);
}

SecretBytes::SecretBytes(const uint8_t* data, size_t size) : SecretBytes(size) {
  if (size > 0) std::memcpy(data_, data, size);
}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes::SecretBytes(SecretBytes&& o) noexcept
    : data_(o.data_), size_(o.size_), mapped_(o.mapped_) {
  o.data_ = nullptr;
  o.size_ = o.mapped_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    Wipe();
    data_ = o.data_;
    size_ = o.size_;
    mapped_ = o.mapped_;
    o.data_ = nullptr;
    o.size_ = o.mapped_ = 0;
  }
  return *this;
}

SecretBytes SecretBytes::Clone() const { return SecretBytes(data_, size_); }

void SecretBytes::Wipe() {
  if (data_ == nullptr) return;
  if (mapped_ <= secret_pool::kMaxPooled) {
    secret_pool::Release(data_, mapped_);  // wipes the whole slot
  } else {
    SecureWipe(data_, mapped_);
    munlock(data_, mapped_);
    munmap(data_, mapped_);
  }
  data_ = nullptr;
  size_ = mapped_ = 0;
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < size_; ++i) diff |= data_[i] ^ other.data_[i];
  return diff == 0;
}

bool DisableCoreDumps() {
  struct rlimit rl = {0, 0};
  bool ok = setrlimit(RLIMIT_CORE, &rl) == 0;
  ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && ok;
  return ok;
}

}  // namespace cfs
