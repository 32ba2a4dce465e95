// NameCodec implementation; see names.h and docs/format/tree.md.
#include "store/names.h"

#include <cerrno>
#include <cstring>

#include "crypto/kdf.h"
#include "crypto/mac.h"
#include "crypto/random.h"
#include "crypto/siv.h"

namespace cfs::store {
namespace {

constexpr std::string_view kSymlinkAad = "cipherfs v1 symlink";
constexpr std::string_view kXattrAad = "cipherfs v1 xattr";
constexpr std::string_view kXattrKeyInfo = "cipherfs v1 xattrs";
constexpr size_t kSymlinkNonce = 16;
constexpr size_t kSivTag = 16;

Status BadName(int err, std::string msg) { return Status(Code::kInvalidArgument, std::move(msg), err); }

Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return BadName(EINVAL, "invalid entry name");
  }
  if (name.size() > kMaxName) return BadName(ENAMETOOLONG, "entry name too long");
  return Status::Ok();
}

std::string LongHash(std::string_view stored) {
  crypto::Digest d = crypto::Sha256(AsBytes(stored));
  return Base64UrlEncode(ByteView(d.data(), d.size()));
}

Bytes Concat(std::string_view a, ByteView b) {
  Bytes out(a.size() + b.size());
  if (!a.empty()) std::memcpy(out.data(), a.data(), a.size());
  if (!b.empty()) std::memcpy(out.data() + a.size(), b.data(), b.size());
  return out;
}

bool IsUserXattrName(std::string_view name) {
  return name.starts_with("user.") || name.starts_with("security.");
}

}  // namespace

std::string SidecarName(std::string_view long_host_name) {
  return std::string(kSidecarPrefix) + std::string(long_host_name.substr(kLongPrefix.size()));
}

bool IsLongHostName(std::string_view host_name) { return host_name.starts_with(kLongPrefix); }

Result<std::unique_ptr<NameCodec>> NameCodec::CreateEncrypted(const VolumeKeys* keys,
                                                              const SecretBytes& data_key) {
  CFS_ASSIGN_OR_RETURN(SecretBytes xkey, crypto::HkdfSha256(data_key, ByteView(), AsBytes(kXattrKeyInfo),
                                                           crypto::kKeySize));
  std::unique_ptr<NameCodec> codec(new NameCodec());
  codec->keys_ = keys;
  codec->xattr_key_ = std::make_shared<const crypto::GcmKey>(xkey);
  return codec;
}

std::unique_ptr<NameCodec> NameCodec::CreatePlain() { return std::unique_ptr<NameCodec>(new NameCodec()); }

NameCodec::~NameCodec() = default;

Result<StoredName> NameCodec::EncodeName(const DirId& dir, std::string_view name) const {
  CFS_RETURN_IF_ERROR(CheckName(name));
  if (!encrypted()) return StoredName{std::string(name), ""};
  CFS_ASSIGN_OR_RETURN(auto siv, keys_->NameKey());
  CFS_ASSIGN_OR_RETURN(Bytes ct, siv->Encrypt(ByteView(dir.data(), dir.size()), AsBytes(name)));
  std::string stored = Base64UrlEncode(ct);
  if (stored.size() <= kMaxHostName) return StoredName{std::move(stored), ""};
  return StoredName{std::string(kLongPrefix) + LongHash(stored), std::move(stored)};
}

Result<std::string> NameCodec::DecodeName(const DirId& dir, std::string_view stored) const {
  if (!encrypted()) return std::string(stored);
  std::optional<Bytes> ct = Base64UrlDecode(stored);
  if (!ct || ct->size() <= kSivTag) return DataLoss("stored name is not valid base64url SIV");
  CFS_ASSIGN_OR_RETURN(auto siv, keys_->NameKey());
  CFS_ASSIGN_OR_RETURN(Bytes plain, siv->Decrypt(ByteView(dir.data(), dir.size()), *ct));
  std::string name(plain.begin(), plain.end());
  if (!CheckName(name).ok()) return DataLoss("stored name decrypts to an invalid name");
  return name;
}

bool NameCodec::SidecarMatches(std::string_view long_host_name, std::string_view sidecar) {
  if (!IsLongHostName(long_host_name)) return false;
  std::string want = LongHash(sidecar);
  return crypto::ConstantTimeEqual(AsBytes(want), AsBytes(long_host_name.substr(kLongPrefix.size())));
}

Result<std::string> NameCodec::EncodeSymlink(std::string_view target) const {
  if (target.empty()) return BadName(ENOENT, "empty symlink target");
  if (target.size() > kMaxSymlinkTarget) return BadName(ENAMETOOLONG, "symlink target too long");
  if (!encrypted()) return std::string(target);
  std::array<uint8_t, kSymlinkNonce> n = crypto::RandomArray<kSymlinkNonce>();
  CFS_ASSIGN_OR_RETURN(auto siv, keys_->NameKey());
  Bytes aad = Concat(kSymlinkAad, n);
  CFS_ASSIGN_OR_RETURN(Bytes ct, siv->Encrypt(aad, AsBytes(target)));
  Bytes out(n.begin(), n.end());
  out.insert(out.end(), ct.begin(), ct.end());
  return Base64UrlEncode(out);
}

Result<std::string> NameCodec::DecodeSymlink(std::string_view host_target) const {
  if (!encrypted()) return std::string(host_target);
  std::optional<Bytes> raw = Base64UrlDecode(host_target);
  if (!raw || raw->size() <= kSymlinkNonce + kSivTag) return DataLoss("stored symlink target is malformed");
  ByteView all(*raw);
  Bytes aad = Concat(kSymlinkAad, all.first(kSymlinkNonce));
  CFS_ASSIGN_OR_RETURN(auto siv, keys_->NameKey());
  CFS_ASSIGN_OR_RETURN(Bytes plain, siv->Decrypt(aad, all.subspan(kSymlinkNonce)));
  return std::string(plain.begin(), plain.end());
}

uint64_t NameCodec::SymlinkSize(uint64_t host_len) const {
  if (!encrypted()) return host_len;
  uint64_t raw = host_len * 3 / 4;
  return raw > kSymlinkNonce + kSivTag ? raw - kSymlinkNonce - kSivTag : 0;
}

Result<std::string> NameCodec::EncodeXattrName(std::string_view name) const {
  if (!IsUserXattrName(name)) return Status(Code::kUnimplemented, "xattr namespace not supported", EOPNOTSUPP);
  if (name.size() > 255) return Status(Code::kInvalidArgument, "xattr name too long", ERANGE);
  if (!encrypted()) return std::string(kHostXattrPrefix) + std::string(name);
  CFS_ASSIGN_OR_RETURN(auto siv, keys_->NameKey());
  CFS_ASSIGN_OR_RETURN(Bytes ct, siv->Encrypt(AsBytes(kXattrAad), AsBytes(name)));
  return std::string(kHostXattrPrefix) + Base64UrlEncode(ct);
}

Result<std::string> NameCodec::DecodeXattrName(std::string_view host_name) const {
  if (!host_name.starts_with(kHostXattrPrefix)) return NotFound("not a user attribute");
  std::string_view stored = host_name.substr(kHostXattrPrefix.size());
  if (!encrypted()) return std::string(stored);
  std::optional<Bytes> ct = Base64UrlDecode(stored);
  if (!ct || ct->size() <= kSivTag) return DataLoss("stored xattr name is malformed");
  CFS_ASSIGN_OR_RETURN(auto siv, keys_->NameKey());
  CFS_ASSIGN_OR_RETURN(Bytes plain, siv->Decrypt(AsBytes(kXattrAad), *ct));
  std::string name(plain.begin(), plain.end());
  if (!IsUserXattrName(name)) return DataLoss("stored xattr name decrypts to a foreign namespace");
  return name;
}

Result<std::shared_ptr<const crypto::GcmKey>> NameCodec::XattrKey() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (xattr_key_ == nullptr) return FailedPrecondition("volume keys wiped");
  return xattr_key_;
}

Result<Bytes> NameCodec::SealXattrValue(std::string_view host_name, ByteView value) const {
  if (!encrypted()) return Bytes(value.begin(), value.end());
  CFS_ASSIGN_OR_RETURN(auto key, XattrKey());
  return key->SealBlob(AsBytes(host_name), value);
}

Result<Bytes> NameCodec::OpenXattrValue(std::string_view host_name, ByteView stored) const {
  if (!encrypted()) return Bytes(stored.begin(), stored.end());
  CFS_ASSIGN_OR_RETURN(auto key, XattrKey());
  CFS_ASSIGN_OR_RETURN(SecretBytes plain, key->OpenBlob(AsBytes(host_name), stored));
  ByteView v = plain.UnsafeSpan();
  return Bytes(v.begin(), v.end());
}

void NameCodec::Wipe() {
  std::lock_guard<std::mutex> lock(mu_);
  xattr_key_.reset();
}

}  // namespace cfs::store
