// fsx: cipherfs's own file-system model checker. Random operations on files
// in a target directory (a cipherfs mount, or a plain directory to prove the
// checker right) are mirrored on an in-memory model; every read is compared
// with the model. Each thread owns its files (no locks on the model); a
// shared file gives each thread a disjoint, deliberately unaligned region,
// so sub-block writes of neighbours meet in one 4 KiB block.
//
//   fsx --dir D [--ops N] [--threads N] [--seed S] [--max-size B] ...
//   fsx --dir D --ack-log F ...   kill-test writer (write + fdatasync, logged)
//   fsx --verify-ack F --dir D    kill-test verifier
//
// Exit: 0 all operations agree with the model; 1 a mismatch or an operation
// failed (the op log tail and the first differing offset are printed);
// 2 bad usage or setup; 3 (ack writer) the target went away mid-run.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fsx_common.h"
#include "fsx_worker.h"

namespace fsx {
namespace {

[[noreturn]] void Usage(const char* msg) {
  if (msg) fprintf(stderr, "fsx: %s\n", msg);
  fprintf(stderr,
          "usage: fsx --dir DIR [--ops N] [--threads N] [--seed S] [--max-size BYTES]\n"
          "           [--files N] [--no-shared] [--no-mmap] [--no-fallocate] [--no-zero-range]\n"
          "           [--no-punch] [--no-direct] [--no-link] [--no-rename] [--strict] [--keep]\n"
          "       fsx --dir DIR --ack-log FILE [--ops N] [--threads N] [--seed S]\n"
          "       fsx --dir DIR --verify-ack FILE\n"
          "Seed: --seed, else $CIPHERFS_SEED, else random (always printed).\n");
  exit(2);
}

uint64_t ParseU64(const char* flag, const char* s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s) Usage((std::string("bad number for ") + flag).c_str());
  uint64_t mult = 1;
  if (*end == 'k' || *end == 'K') mult = 1024, ++end;
  else if (*end == 'm' || *end == 'M') mult = 1024 * 1024, ++end;
  if (*end != '\0') Usage((std::string("bad number for ") + flag).c_str());
  return static_cast<uint64_t>(v) * mult;
}

Options ParseArgs(int argc, char** argv) {
  Options opt;
  bool seed_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--dir") opt.dir = value();
    else if (a == "--ops") opt.ops = ParseU64("--ops", value());
    else if (a == "--threads") opt.threads = static_cast<unsigned>(ParseU64("--threads", value()));
    else if (a == "--seed") opt.seed = ParseU64("--seed", value()), seed_set = true;
    else if (a == "--max-size") opt.max_size = ParseU64("--max-size", value());
    else if (a == "--files") opt.files_per_thread = static_cast<unsigned>(ParseU64("--files", value()));
    else if (a == "--no-shared") opt.shared = false;
    else if (a == "--no-mmap") opt.mmap = false;
    else if (a == "--no-fallocate") opt.fallocate = false;
    else if (a == "--no-zero-range") opt.zero_range = false;
    else if (a == "--no-punch") opt.punch = false;
    else if (a == "--no-direct") opt.direct = false;
    else if (a == "--no-link") opt.link = false;
    else if (a == "--no-rename") opt.rename = false;
    else if (a == "--strict") opt.strict = true;
    else if (a == "--keep") opt.keep = true;
    else if (a == "--ack-log") opt.ack_log = value();
    else if (a == "--verify-ack") opt.verify_ack = value();
    else if (a == "-h" || a == "--help") Usage(nullptr);
    else Usage(("unknown option " + a).c_str());
  }
  if (opt.dir.empty()) Usage("--dir is required");
  if (opt.threads == 0 || opt.threads > 64) Usage("--threads must be 1..64");
  if (opt.files_per_thread == 0) Usage("--files must be at least 1");
  if (opt.max_size < 8192) Usage("--max-size must be at least 8192");
  if (!seed_set) {
    const char* env = getenv("CIPHERFS_SEED");
    if (env && *env) {
      opt.seed = ParseU64("CIPHERFS_SEED", env);
    } else {
      std::random_device rd;
      opt.seed = (static_cast<uint64_t>(rd()) << 32 | rd()) % 1000000000000ull;
    }
  }
  return opt;
}

// Probes what the target supports; without --strict an unsupported optional
// operation is disabled (and said so), with --strict it is a failure.
bool Probe(Options* opt) {
  std::string path = opt->dir + "/fsx.probe";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "fsx: cannot create %s: %s\n", path.c_str(), ErrnoName(errno).c_str());
    return false;
  }
  bool ok = true;
  auto check = [&](bool* flag, const char* what, int mode) {
    if (!*flag) return;
    if (fallocate(fd, mode, 0, 8192) == 0) return;
    int err = errno;
    fprintf(stderr, "fsx: %s not supported here: %s%s\n", what, ErrnoName(err).c_str(),
            opt->strict ? "" : " (disabled)");
    if (opt->strict) ok = false;
    *flag = false;
  };
  check(&opt->fallocate, "fallocate", 0);
  check(&opt->punch, "fallocate(PUNCH_HOLE)", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  check(&opt->zero_range, "fallocate(ZERO_RANGE)", FALLOC_FL_ZERO_RANGE);
  close(fd);
  if (opt->direct) {
    int dfd = open(path.c_str(), O_RDWR | O_DIRECT);
    if (dfd < 0) {
      fprintf(stderr, "fsx: O_DIRECT not supported here: %s%s\n", ErrnoName(errno).c_str(),
              opt->strict ? "" : " (disabled)");
      if (opt->strict) ok = false;
      opt->direct = false;
    } else {
      close(dfd);
    }
  }
  unlink(path.c_str());
  return ok;
}

int CreateSharedFile(const Options& opt) {
  std::string path = opt.dir + "/fsx.shared";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(opt.shared_region * opt.threads)) != 0) {
    fprintf(stderr, "fsx: cannot create %s: %s\n", path.c_str(), ErrnoName(errno).c_str());
    return 2;
  }
  close(fd);
  return 0;
}

int RunModelCheck(Options opt) {
  if (!Probe(&opt)) return 1;
  if (opt.shared && CreateSharedFile(opt) != 0) return 2;
  printf("fsx: seed %llu (replay with --seed %llu), %llu ops, %u threads, dir %s\n",
         static_cast<unsigned long long>(opt.seed), static_cast<unsigned long long>(opt.seed),
         static_cast<unsigned long long>(opt.ops), opt.threads, opt.dir.c_str());
  fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  OpCounts counts;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < opt.threads; ++t) {
    uint64_t ops = opt.ops / opt.threads + (t < opt.ops % opt.threads ? 1 : 0);
    threads.emplace_back([&opt, &counts, t, ops] {
      Worker w(opt, t, &counts);
      w.Run(ops);
    });
  }
  for (auto& th : threads) th.join();
  if (opt.shared && !opt.keep) unlink((opt.dir + "/fsx.shared").c_str());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf("fsx: %s\n", counts.Summary().c_str());
  printf("fsx: all %llu operations agree with the model (seed %llu, %.1f s)\n",
         static_cast<unsigned long long>(opt.ops), static_cast<unsigned long long>(opt.seed), secs);
  return 0;
}

}  // namespace
}  // namespace fsx

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  fsx::Options opt = fsx::ParseArgs(argc, argv);
  struct stat st;
  if (stat(opt.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "fsx: --dir %s is not a directory\n", opt.dir.c_str());
    return 2;
  }
  if (!opt.verify_ack.empty()) return fsx::RunAckVerify(opt);
  if (!opt.ack_log.empty()) return fsx::RunAckWriter(opt);
  return fsx::RunModelCheck(opt);
}
