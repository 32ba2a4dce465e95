// devmount: a developer tool that creates a volume and serves it, for the
// fs tests before the real CLI exists. Keys are given on the command line
// or in CIPHERFS_DEVKEY (hex): a test tool, never a way to run production.
//
//   devmount create DIR [--unencrypted] [--key HEX]    prints the key (hex)
//   devmount serve DIR MOUNTPOINT [-f] [--key HEX] [--ro] [--threads N]
//                  [--allow-other] [--debug] [--pidfile PATH] [-o OPT]...
//                  [--key-check-file PATH [--key-check-ms N]]
// --key-check-file: the key counts as usable while PATH exists (tests of
// the key liveness check).
// Without -f, `serve` returns once the mount is live (the daemon stays).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/log.h"
#include "common/secret_bytes.h"
#include "crypto/random.h"
#include "fs/mount.h"
#include "store/backing.h"
#include "store/volume.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: devmount create DIR [--unencrypted] [--key HEX]\n"
               "       devmount serve DIR MOUNTPOINT [-f] [--key HEX] [--ro] [--threads N] "
               "[--allow-other] [--debug] [--pidfile PATH] [-o OPT]...\n"
               "             [--key-check-file PATH [--key-check-ms N]]\n");
  return 2;
}

bool KeyFromHex(const std::string& hex, cfs::SecretBytes* key) {
  auto bytes = cfs::HexDecode(hex);
  if (!bytes || bytes->size() != 32) return false;
  *key = cfs::SecretBytes(bytes->data(), bytes->size());
  cfs::SecureWipe(bytes->data(), bytes->size());
  return true;
}

int Create(const std::vector<std::string>& args) {
  if (args.empty()) return Usage();
  std::string dir = args[0];
  bool encrypted = true;
  std::string key_hex;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--unencrypted") encrypted = false;
    else if (args[i] == "--key" && i + 1 < args.size()) key_hex = args[++i];
    else return Usage();
  }
  ::mkdir(dir.c_str(), 0700);
  cfs::SecretBytes key;
  if (encrypted) {
    if (key_hex.empty()) {
      key = cfs::crypto::RandomSecret(32);
    } else if (!KeyFromHex(key_hex, &key)) {
      std::fprintf(stderr, "devmount: --key must be 64 hex digits\n");
      return 2;
    }
  }
  cfs::store::PosixBacking backing;
  cfs::Status s = cfs::store::CreateVolumeLayout(&backing, dir, encrypted ? &key : nullptr, {});
  if (!s.ok()) {
    std::fprintf(stderr, "devmount: %s\n", s.ToString().c_str());
    return 1;
  }
  if (encrypted) std::printf("%s\n", cfs::HexEncode(key.UnsafeSpan()).c_str());
  return 0;
}

int Serve(const std::vector<std::string>& args) {
  if (args.size() < 2) return Usage();
  cfs::fs::MountOptions o;
  o.volume_dir = args[0];
  o.mountpoint = args[1];
  bool foreground = false;
  std::string pidfile, check_file;
  const char* env_key = std::getenv("CIPHERFS_DEVKEY");
  std::string key_hex = env_key ? env_key : "";
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_next = i + 1 < args.size();
    if (a == "-f") foreground = true;
    else if (a == "--ro") o.read_only = true;
    else if (a == "--allow-other") o.allow_other = true;
    else if (a == "--debug") o.debug = true;
    else if (a == "--key" && has_next) key_hex = args[++i];
    else if (a == "--pidfile" && has_next) pidfile = args[++i];
    else if (a == "--key-check-file" && has_next) check_file = args[++i];
    else if (a == "--key-check-ms" && has_next) o.key_check_interval = std::chrono::milliseconds(std::stol(args[++i]));
    else if (a == "--threads" && has_next) o.max_threads = unsigned(std::stoul(args[++i]));
    else if (a == "-o" && has_next) o.fuse_options.push_back(args[++i]);
    else return Usage();
  }
  if (!check_file.empty()) {
    o.key_check = [check_file] { return ::access(check_file.c_str(), F_OK) == 0; };
  }
  struct stat st;
  o.encrypted = ::stat((o.volume_dir + "/tree/.cfsdir").c_str(), &st) == 0;
  cfs::SecretBytes key;
  if (o.encrypted && !KeyFromHex(key_hex, &key)) {
    std::fprintf(stderr, "devmount: an encrypted volume needs --key HEX or CIPHERFS_DEVKEY\n");
    return 2;
  }
  int ready[2] = {-1, -1};
  if (!foreground) {
    if (::pipe(ready) != 0) return 1;
    pid_t pid = ::fork();
    if (pid < 0) return 1;
    if (pid > 0) {  // parent: wait until the child says the mount is live
      ::close(ready[1]);
      char c;
      bool ok = ::read(ready[0], &c, 1) == 1;
      return ok ? 0 : 1;
    }
    ::close(ready[0]);
    ::setsid();
    o.on_mounted = [fd = ready[1]] {
      char c = 1;
      if (::write(fd, &c, 1) != 1) std::fprintf(stderr, "devmount: could not signal the parent\n");
      ::close(fd);
    };
  }
  if (!pidfile.empty()) {
    FILE* f = std::fopen(pidfile.c_str(), "w");
    if (f == nullptr) return 1;
    std::fprintf(f, "%d\n", int(::getpid()));
    std::fclose(f);
  }
  cfs::store::PosixBacking backing;
  cfs::Status s = cfs::fs::ServeVolume(&backing, std::move(key), o);
  if (!s.ok()) {
    std::fprintf(stderr, "devmount: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::vector<std::string> args(argv + 2, argv + argc);
  std::string cmd = argv[1];
  if (cmd == "create") return Create(args);
  if (cmd == "serve") return Serve(args);
  return Usage();
}
