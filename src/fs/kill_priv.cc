// FUSE_HANDLE_KILLPRIV_V2 through libfuse's custom I/O; see kill_priv.h.
#include "fs/kill_priv.h"

#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace cfs::fs {
namespace {

// One mounted session per daemon process (ServeVolume): the hook state is
// process-wide. A second Install replaces the first.
struct HookState {
  std::atomic<KillPrivFn> kill{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<uint64_t> init_unique{0};  // unique of the INIT request (0: none seen)
  std::atomic<bool> offered{false};      // the kernel offered KILLPRIV_V2 in INIT
  // Installed from the Init op (INIT already read): the next reply written
  // is INIT's (nothing else is in flight before INIT is answered).
  std::atomic<bool> next_is_init{false};
  std::atomic<bool> negotiated{false};
};
HookState g_state;

template <typename T>
bool Arg(const uint8_t* buf, size_t len, T* out) {
  if (len < sizeof(fuse_in_header) + sizeof(T)) return false;
  std::memcpy(out, buf + sizeof(fuse_in_header), sizeof(T));
  return true;
}

// Whether request `buf` (one whole request) asks the file system to kill
// suid/sgid of its node.
bool WantsKill(const fuse_in_header& h, const uint8_t* buf, size_t len) {
  switch (h.opcode) {
    case FUSE_WRITE: {
      fuse_write_in in{};
      return Arg(buf, len, &in) && (in.write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
    }
    case FUSE_SETATTR: {
      fuse_setattr_in in{};
      return Arg(buf, len, &in) && (in.valid & FATTR_KILL_SUIDGID) != 0;
    }
    case FUSE_OPEN: {
      fuse_open_in in{};
      return Arg(buf, len, &in) && (in.open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
    }
    default:
      return false;
  }
}

ssize_t HookRead(int fd, void* buf, size_t buf_len, void*) {
  ssize_t n = ::read(fd, buf, buf_len);
  if (n < ssize_t(sizeof(fuse_in_header))) return n;
  const auto* bytes = static_cast<const uint8_t*>(buf);
  fuse_in_header h;
  std::memcpy(&h, bytes, sizeof h);
  if (h.opcode == FUSE_INIT) {
    fuse_init_in in{};
    if (Arg(bytes, size_t(n), &in)) g_state.offered.store((in.flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
    g_state.init_unique.store(h.unique);
  } else if (g_state.negotiated.load(std::memory_order_relaxed) && WantsKill(h, bytes, size_t(n))) {
    KillPrivFn kill = g_state.kill.load();
    if (kill != nullptr) kill(g_state.ctx.load(), h.nodeid);
  }
  return n;
}

ssize_t HookWritev(int fd, iovec* iov, int count, void*) {
  uint64_t init = g_state.init_unique.load();
  bool next_is_init = g_state.next_is_init.exchange(false);
  if ((init != 0 || next_is_init) && count >= 2 && iov[0].iov_len >= sizeof(fuse_out_header) &&
      iov[1].iov_len >= offsetof(fuse_init_out, flags) + sizeof(uint32_t)) {
    fuse_out_header out;
    std::memcpy(&out, iov[0].iov_base, sizeof out);
    bool is_init = next_is_init || out.unique == init;
    // A kernel that knows the flag offers it; one that does not ignores it.
    bool offered = next_is_init || g_state.offered.load();
    if (is_init && out.error == 0 && offered && g_state.kill.load() != nullptr) {
      auto* reply = static_cast<uint8_t*>(iov[1].iov_base);
      uint32_t flags;
      std::memcpy(&flags, reply + offsetof(fuse_init_out, flags), sizeof flags);
      flags |= FUSE_HANDLE_KILLPRIV_V2;
      std::memcpy(reply + offsetof(fuse_init_out, flags), &flags, sizeof flags);
      g_state.negotiated.store(true);
    }
    if (out.unique == init) g_state.init_unique.store(0);
  }
  return ::writev(fd, iov, count);
}

}  // namespace

bool InstallKillPrivV2(fuse_session* se, KillPrivFn kill, void* ctx, bool in_init) {
  g_state.kill.store(kill);
  g_state.ctx.store(ctx);
  fuse_custom_io io{};
  io.read = HookRead;
  io.writev = HookWritev;
  g_state.next_is_init.store(in_init);
  if (fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0) return true;
  g_state.next_is_init.store(false);
  return false;
}

bool KillPrivV2Negotiated() { return g_state.negotiated.load(); }

}  // namespace cfs::fs
