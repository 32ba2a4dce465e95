// NameCodec: how plaintext names, symlink targets and extended attributes of
// a volume are stored on the host (docs/format/tree.md). Encrypted volumes
// use AES-256-SIV under the volume's name key (bound to the parent
// directory's id) and AES-256-GCM for xattr values; unencrypted volumes pass
// everything through.
// Thread safety: all methods may be called concurrently; Wipe() makes every
// later call on an encrypted codec fail with kFailedPrecondition.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"
#include "crypto/aead.h"
#include "store/volume_keys.h"

namespace cfs::store {

// A directory's random 128-bit id, kept in the host directory's
// `user.cfs.dirid` attribute, or in its `.cfsdir` file (tree/ itself, hosts
// without user xattrs, volumes made before the attribute).
using DirId = std::array<uint8_t, 16>;

inline constexpr std::string_view kDirIdFile = ".cfsdir";
inline constexpr std::string_view kDirIdXattr = "user.cfs.dirid";
inline constexpr std::string_view kLongPrefix = ".cfsL.";
inline constexpr std::string_view kSidecarPrefix = ".cfsN.";
inline constexpr std::string_view kTempPrefix = ".cfstmp.";
inline constexpr std::string_view kHostXattrPrefix = "user.cfs.x.";
// Longest host name (ext4, xfs, btrfs) and longest plaintext name.
inline constexpr size_t kMaxHostName = 255;
inline constexpr size_t kMaxName = 255;
inline constexpr size_t kMaxSymlinkTarget = 3000;

// The host form of one entry name.
struct StoredName {
  std::string host_name;  // what the host directory holds
  std::string long_name;  // non-empty for long names: the sidecar's contents
};

// Returns the sidecar name for a long host name (".cfsL.<h>" -> ".cfsN.<h>").
std::string SidecarName(std::string_view long_host_name);
bool IsLongHostName(std::string_view host_name);
// On encrypted volumes: true for every host name cipherfs keeps for itself.
inline bool IsReservedHostName(std::string_view host_name) { return !host_name.empty() && host_name[0] == '.'; }

class NameCodec {
 public:
  // Encrypted: `keys` must outlive the codec; the xattr key is derived from
  // `data_key` with HKDF. kFailedPrecondition if the keys are wiped.
  static Result<std::unique_ptr<NameCodec>> CreateEncrypted(const VolumeKeys* keys,
                                                            const SecretBytes& data_key);
  static std::unique_ptr<NameCodec> CreatePlain();
  ~NameCodec();

  bool encrypted() const { return keys_ != nullptr; }

  // Host form of `name` (1..255 bytes, no '/', not "." or "..") in directory
  // `dir`. kInvalidArgument (ENAMETOOLONG / EINVAL) for a bad name.
  Result<StoredName> EncodeName(const DirId& dir, std::string_view name) const;
  // Plaintext of a stored (non-long) encrypted name, or of a long name's
  // sidecar contents. kDataLoss when it does not decode or authenticate.
  Result<std::string> DecodeName(const DirId& dir, std::string_view stored) const;
  // True if `sidecar` (contents) belongs to `long_host_name` (hash matches).
  static bool SidecarMatches(std::string_view long_host_name, std::string_view sidecar);

  // Symlink targets (1..kMaxSymlinkTarget bytes).
  Result<std::string> EncodeSymlink(std::string_view target) const;
  Result<std::string> DecodeSymlink(std::string_view host_target) const;
  // st_size to show for a symlink whose host target has `host_len` bytes.
  uint64_t SymlinkSize(uint64_t host_len) const;

  // Extended attributes. Only user.* and security.* names are accepted
  // (kUnimplemented -> EOPNOTSUPP otherwise).
  Result<std::string> EncodeXattrName(std::string_view name) const;
  // kNotFound for host attributes that are not users' (never shown).
  Result<std::string> DecodeXattrName(std::string_view host_name) const;
  Result<Bytes> SealXattrValue(std::string_view host_name, ByteView value) const;
  // kDataLoss when the value does not authenticate.
  Result<Bytes> OpenXattrValue(std::string_view host_name, ByteView stored) const;

  // Forgets the xattr key (the name key is wiped with the VolumeKeys).
  void Wipe();

 private:
  NameCodec() = default;
  Result<std::shared_ptr<const crypto::GcmKey>> XattrKey() const;

  const VolumeKeys* keys_ = nullptr;  // null: unencrypted volume
  mutable std::mutex mu_;             // guards xattr_key_
  std::shared_ptr<const crypto::GcmKey> xattr_key_;
};

}  // namespace cfs::store
