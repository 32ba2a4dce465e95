#include "keymgr/root_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "crypto/kdf.h"
#include "crypto/mac.h"
#include "crypto/random.h"

namespace cfs::keymgr {
namespace {

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Writes a fresh key to a private temp file and links it into place; EEXIST
// means another process won the race, which is fine.
Status CreateRootKey(const std::string& path) {
  std::string tmp = fmt::format("{}.new.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create root key " + tmp);
  SecretBytes key = crypto::RandomSecret(kRootKeySize);
  Status s;
  if (::fchmod(fd, 0600) != 0) s = Status::FromErrno(errno, "chmod " + tmp);
  if (s.ok() && ::write(fd, key.UnsafeData(), key.size()) != static_cast<ssize_t>(key.size())) {
    s = Status::FromErrno(errno ? errno : EIO, "write root key " + tmp);
  }
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "fsync " + tmp);
  ::close(fd);
  if (s.ok() && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    s = Status::FromErrno(errno, "install root key " + path);
  }
  ::unlink(tmp.c_str());
  if (!s.ok()) return s;
  return FsyncDir(DirOf(path));
}

Status CheckOwnerOnly(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(kRootKeySize)) {
    return DataLoss(fmt::format("root key {} is not a regular file of {} bytes; restore it from your backup",
                                path, kRootKeySize));
  }
  if (st.st_uid != ::geteuid()) {
    return PermissionDenied(fmt::format("root key {} is owned by uid {}, not by uid {} running cipherfs; "
                                        "run cipherfs as its owner",
                                        path, st.st_uid, ::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied(fmt::format("root key {} has mode {:04o}, it must be readable by its owner only; "
                                        "run: chmod 600 {}",
                                        path, st.st_mode & 07777, path));
  }
  return Status::Ok();
}

}  // namespace

Result<SecretBytes> LoadOrCreateRootKey(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT && create) {
    CFS_RETURN_IF_ERROR(CreateRootKey(path));
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) {
    if (errno == ELOOP) return PermissionDenied(fmt::format("root key {} is a symlink; refusing it", path));
    return Status::FromErrno(errno, "open root key " + path);
  }
  struct stat st;
  Status s = ::fstat(fd, &st) == 0 ? CheckOwnerOnly(path, st) : Status::FromErrno(errno, "stat " + path);
  SecretBytes key(kRootKeySize);
  if (s.ok() && ::pread(fd, key.UnsafeData(), kRootKeySize, 0) != static_cast<ssize_t>(kRootKeySize)) {
    s = DataLoss(fmt::format("root key {}: short read", path));
  }
  ::close(fd);
  if (!s.ok()) return s;
  return key;
}

}  // namespace cfs::keymgr

namespace cfs::keymgr {
namespace {

constexpr char kScryptMagic[] = "cipherfs-root-scrypt v1";
constexpr char kCheckLabel[] = "cipherfs-root-key-check";

std::string CheckValue(const SecretBytes& key) {
  crypto::MacKey mac(key);
  return HexEncode(mac.Compute(AsBytes(std::string_view(kCheckLabel))));
}

struct ScryptFile {
  Bytes salt;
  crypto::ScryptParams params;
  std::string check;
};

Result<ScryptFile> ParseScryptFile(const std::string& path, const std::string& text) {
  ScryptFile f;
  auto bad = [&] { return DataLoss(fmt::format("{} is malformed; restore it from your backup", path)); };
  std::istringstream in(text);
  std::string magic, salt, n, r, p;
  if (!std::getline(in, magic) || magic != kScryptMagic) return bad();
  if (!(in >> salt >> n >> r >> p >> f.check)) return bad();
  auto decoded = HexDecode(salt);
  if (!decoded || decoded->size() != 16 || f.check.size() != 64) return bad();
  f.salt = std::move(*decoded);
  try {
    f.params.n = std::stoull(n);
    f.params.r = static_cast<uint32_t>(std::stoul(r));
    f.params.p = static_cast<uint32_t>(std::stoul(p));
  } catch (const std::exception&) {
    return bad();
  }
  // Bounds: a hostile file must not make us allocate gigabytes or spin.
  bool pow2 = f.params.n >= 1024 && f.params.n <= (1u << 20) && (f.params.n & (f.params.n - 1)) == 0;
  if (!pow2 || f.params.r < 1 || f.params.r > 16 || f.params.p < 1 || f.params.p > 4) return bad();
  return f;
}

}  // namespace

Result<SecretBytes> LoadOrCreatePassphraseRootKey(const std::string& params_path, std::string_view passphrase,
                                                  bool create, const crypto::ScryptParams& new_params) {
  if (passphrase.size() < 8) return InvalidArgument("the KMS passphrase must be at least 8 bytes");
  int fd = ::open(params_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    if (!create) return NotFound(fmt::format("{} does not exist", params_path));
    ScryptFile f;
    f.params = new_params;
    f.salt.resize(16);
    crypto::RandomBytes(f.salt.data(), f.salt.size());
    CFS_ASSIGN_OR_RETURN(SecretBytes key, crypto::Scrypt(passphrase, f.salt, f.params, kRootKeySize));
    std::string text = fmt::format("{}\n{} {} {} {} {}\n", kScryptMagic, HexEncode(f.salt), f.params.n, f.params.r,
                                   f.params.p, CheckValue(key));
    CFS_RETURN_IF_ERROR(WriteFileAtomically(params_path, text, 0600));
    return key;
  }
  if (fd < 0) return Status::FromErrno(errno, "open " + params_path);
  struct stat st;
  Status s = ::fstat(fd, &st) == 0 ? Status::Ok() : Status::FromErrno(errno, "stat " + params_path);
  if (s.ok() && st.st_uid != ::geteuid()) s = PermissionDenied(fmt::format("{} is owned by uid {}", params_path, st.st_uid));
  if (s.ok() && (st.st_mode & 077) != 0) {
    s = PermissionDenied(fmt::format("{} has mode {:04o}; run: chmod 600 {}", params_path, st.st_mode & 07777,
                                     params_path));
  }
  ::close(fd);
  CFS_RETURN_IF_ERROR(s);
  CFS_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(params_path, 4096));
  CFS_ASSIGN_OR_RETURN(ScryptFile f, ParseScryptFile(params_path, text));
  CFS_ASSIGN_OR_RETURN(SecretBytes key, crypto::Scrypt(passphrase, f.salt, f.params, kRootKeySize));
  Bytes want = HexDecode(f.check).value_or(Bytes());
  crypto::MacKey mac(key);
  if (!mac.Verify(AsBytes(std::string_view(kCheckLabel)), want)) {
    return PermissionDenied(fmt::format("wrong KMS passphrase for {}", params_path));
  }
  return key;
}

}  // namespace cfs::keymgr
