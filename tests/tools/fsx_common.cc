// Helpers shared by the fsx modes: random fill, full-length I/O, errno names.
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "fsx_common.h"

namespace fsx {

uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

void Rng::Fill(uint8_t* buf, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = Next();
    std::memcpy(buf + i, &v, 8);
  }
  if (i < len) {
    uint64_t v = Next();
    std::memcpy(buf + i, &v, len - i);
  }
}

int PWriteFull(int fd, const uint8_t* buf, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // a write that makes no progress
    done += static_cast<size_t>(n);
  }
  return 0;
}

int PReadFull(int fd, uint8_t* buf, size_t len, uint64_t off, size_t* got) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      *got = done;
      return errno;
    }
    if (n == 0) break;  // end of file
    done += static_cast<size_t>(n);
  }
  *got = done;
  return 0;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name ? name : "E?") + " (" + strerror(err) + ")";
}

}  // namespace fsx
