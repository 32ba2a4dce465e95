// faultmount: a test-only daemon that serves a volume like devmount, but
// through FaultBacking (tests/support), so that a database running on the
// mount can be hit by a simulated power cut. On SIGUSR1 it calls
// SimulatePowerCut(mode, seed): every backing change not yet fsynced is
// dropped (drop) or torn per 512-byte sector (tear); then it exits at once
// with _exit, without unmounting (the mount is left dead, as after a
// crash: detach it with fusermount3 -u -z). The volume is then mounted again
// with devmount or `cipherfs mount`; its first mount repairs torn blocks.
//
//   faultmount DIR MOUNTPOINT [--mode tear|drop|keep] [--seed N]
//              [--allow-other] [--threads N] [-o OPT]...
// The data key (hex) comes from CIPHERFS_DEVKEY (devmount create prints
// it); an unencrypted volume needs none. Runs in the foreground; prints
// "power cut: ..." with what the cut did before exiting with status 0.
//
// Thread safety: the power cut runs on a dedicated signal thread; SIGUSR1
// is blocked in every other thread (libfuse's workers inherit the mask).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "common/secret_bytes.h"
#include "fs/mount.h"
#include "store/backing.h"
#include "support/fault_backing.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: faultmount DIR MOUNTPOINT [--mode tear|drop|keep] [--seed N] [--allow-other] "
               "[--threads N] [-o OPT]...\n");
  return 2;
}

bool ParseMode(const std::string& s, cfs::test::PowerCutMode* mode) {
  if (s == "tear") *mode = cfs::test::PowerCutMode::kTear;
  else if (s == "drop") *mode = cfs::test::PowerCutMode::kDrop;
  else if (s == "keep") *mode = cfs::test::PowerCutMode::kKeep;
  else return false;
  return true;
}

// Waits for SIGUSR1, cuts the power, exits without unmounting.
void PowerCutThread(cfs::test::FaultBacking* fault, cfs::test::PowerCutMode mode, uint64_t seed) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  int sig = 0;
  while (sigwait(&set, &sig) != 0 || sig != SIGUSR1) {
  }
  cfs::test::PowerCutStats st = fault->SimulatePowerCut(mode, seed);
  std::fprintf(stderr,
               "power cut: mode %s seed %llu: %llu files, %llu unsynced writes, sectors kept %llu rolled back "
               "%llu, size changes kept %llu undone %llu\n",
               cfs::test::PowerCutModeName(mode), static_cast<unsigned long long>(seed),
               static_cast<unsigned long long>(st.files), static_cast<unsigned long long>(st.writes),
               static_cast<unsigned long long>(st.sectors_kept), static_cast<unsigned long long>(st.sectors_rolled_back),
               static_cast<unsigned long long>(st.size_changes_kept),
               static_cast<unsigned long long>(st.size_changes_undone));
  std::fflush(stderr);
  ::_exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  cfs::fs::MountOptions o;
  o.volume_dir = argv[1];
  o.mountpoint = argv[2];
  cfs::test::PowerCutMode mode = cfs::test::PowerCutMode::kTear;
  uint64_t seed = 1;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    bool has_next = i + 1 < argc;
    if (a == "--allow-other") o.allow_other = true;
    else if (a == "--mode" && has_next && ParseMode(argv[i + 1], &mode)) ++i;
    else if (a == "--seed" && has_next) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--threads" && has_next) o.max_threads = unsigned(std::strtoul(argv[++i], nullptr, 10));
    else if (a == "-o" && has_next) o.fuse_options.push_back(argv[++i]);
    else return Usage();
  }
  struct stat st;
  o.encrypted = ::stat((o.volume_dir + "/tree/.cfsdir").c_str(), &st) == 0;
  cfs::SecretBytes key;
  if (o.encrypted) {
    const char* hex = std::getenv("CIPHERFS_DEVKEY");
    auto bytes = cfs::HexDecode(hex ? hex : "");
    if (!bytes || bytes->size() != 32) {
      std::fprintf(stderr, "faultmount: an encrypted volume needs CIPHERFS_DEVKEY (64 hex digits)\n");
      return 2;
    }
    key = cfs::SecretBytes(bytes->data(), bytes->size());
    cfs::SecureWipe(bytes->data(), bytes->size());
  }
  // Block SIGUSR1 before any thread exists, so only the cut thread takes it.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  cfs::store::PosixBacking posix;
  cfs::test::FaultBacking fault(&posix);
  std::thread cutter(PowerCutThread, &fault, mode, seed);
  cutter.detach();
  std::fprintf(stderr, "faultmount: serving %s on %s (pid %d), SIGUSR1 = power cut (%s, seed %llu)\n",
               o.volume_dir.c_str(), o.mountpoint.c_str(), int(::getpid()), cfs::test::PowerCutModeName(mode),
               static_cast<unsigned long long>(seed));
  cfs::Status s = cfs::fs::ServeVolume(&fault, std::move(key), o);
  if (!s.ok()) {
    std::fprintf(stderr, "faultmount: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
