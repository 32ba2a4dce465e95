#include "common/secret_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace cfs::secret_pool {
namespace {

// Bytes mapped per refill of a class: amortizes mmap+mlock (tens of µs on a
// VM) over 64..512 slots.
constexpr size_t kRefillBytes = 16 * 1024;

struct SizeClass {
  size_t slot_size = 0;
  // Leaf lock: nothing else is locked while holding it. The refill syscalls
  // run outside it.
  std::mutex mu;
  std::vector<uint8_t*> free;  // guarded by mu; capacity >= total (never reallocates on Release)
  size_t total = 0;            // guarded by mu
  std::vector<std::pair<uint8_t*, size_t>> regions;  // guarded by mu: (base, bytes)
};

struct Pool {
  std::array<SizeClass, kClassSizes.size()> classes;
  Pool() {
    for (size_t i = 0; i < kClassSizes.size(); ++i) classes[i].slot_size = kClassSizes[i];
  }
};

// Never destroyed: SecretBytes with static storage may be released after
// every other static destructor has run.
Pool& ThePool() {
  static Pool* pool = new Pool();
  return *pool;
}

size_t ClassIndex(size_t size) {
  for (size_t i = 0; i < kClassSizes.size(); ++i) {
    if (size <= kClassSizes[i]) return i;
  }
  std::abort();  // callers only pool sizes <= kMaxPooled
}

// Maps, locks and excludes from dumps one refill region; throws on failure.
uint8_t* MapRegion(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // As for unpooled secrets: mlock may fail under RLIMIT_MEMLOCK; wiping and
  // MADV_DONTDUMP are what we rely on.
  (void)mlock(p, bytes);
  (void)madvise(p, bytes, MADV_DONTDUMP);
  return static_cast<uint8_t*>(p);
}

void Refill(SizeClass& c) {
  uint8_t* base = MapRegion(kRefillBytes);  // outside the lock
  const size_t n = kRefillBytes / c.slot_size;
  std::lock_guard<std::mutex> l(c.mu);
  try {
    c.free.reserve(c.total + n);
    c.regions.reserve(c.regions.size() + 1);
  } catch (...) {
    munlock(base, kRefillBytes);
    munmap(base, kRefillBytes);
    throw;
  }
  c.regions.emplace_back(base, kRefillBytes);
  c.total += n;
  // Pushed in reverse so slots are handed out in address order.
  for (size_t i = n; i-- > 0;) c.free.push_back(base + i * c.slot_size);
}

}  // namespace

size_t SlotSizeFor(size_t size) { return kClassSizes[ClassIndex(size)]; }

uint8_t* Acquire(size_t size) {
  SizeClass& c = ThePool().classes[ClassIndex(size)];
  for (;;) {
    {
      std::lock_guard<std::mutex> l(c.mu);
      if (!c.free.empty()) {
        uint8_t* slot = c.free.back();
        c.free.pop_back();
        return slot;  // zero: fresh from mmap or wiped by Release
      }
    }
    Refill(c);  // a racing thread may take these slots; then loop again
  }
}

void Release(uint8_t* slot, size_t slot_size) noexcept {
  explicit_bzero(slot, slot_size);
  SizeClass& c = ThePool().classes[ClassIndex(slot_size)];
  std::lock_guard<std::mutex> l(c.mu);
  c.free.push_back(slot);  // capacity reserved at refill: no allocation
}

Stats StatsForTest() {
  Stats s;
  for (size_t i = 0; i < kClassSizes.size(); ++i) {
    SizeClass& c = ThePool().classes[i];
    std::lock_guard<std::mutex> l(c.mu);
    s.total_slots[i] = c.total;
    s.free_slots[i] = c.free.size();
  }
  return s;
}

bool CopySlotForTest(const uint8_t* slot, size_t n, uint8_t* out) {
  const auto addr = reinterpret_cast<uintptr_t>(slot);
  for (SizeClass& c : ThePool().classes) {
    std::lock_guard<std::mutex> l(c.mu);
    for (const auto& [base, bytes] : c.regions) {
      const auto lo = reinterpret_cast<uintptr_t>(base);
      if (addr < lo || addr >= lo + bytes) continue;
      const size_t in_slot = (addr - lo) % c.slot_size;
      if (in_slot + n > c.slot_size) return false;
      std::memcpy(out, slot, n);
      return true;
    }
  }
  return false;
}

}  // namespace cfs::secret_pool
