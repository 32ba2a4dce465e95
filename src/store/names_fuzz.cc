// libFuzzer target for the names cipherfs reads back from the backing
// directory (store/names.h, docs/format/tree.md): stored entry names and
// long-name sidecars, symlink targets, xattr names and values, decoded by an
// encrypted and by a plain NameCodec. Every input is decoded as a stored
// form (clean error or a valid plaintext), and encoded as a plaintext whose
// stored form must decode back to it; never crash.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "common/secret_bytes.h"
#include "store/names.h"
#include "store/volume_keys.h"

namespace {

using namespace cfs::store;

struct Codecs {
  std::unique_ptr<VolumeKeys> keys;
  std::unique_ptr<NameCodec> encrypted;
  std::unique_ptr<NameCodec> plain;
};

const Codecs& TheCodecs() {
  static const Codecs* codecs = [] {
    uint8_t raw[32];
    for (int i = 0; i < 32; ++i) raw[i] = static_cast<uint8_t>(0xC0 ^ i);
    cfs::SecretBytes data_key(raw, sizeof raw);
    auto* c = new Codecs;
    auto keys = VolumeKeys::Derive(data_key);
    if (!keys.ok()) std::abort();
    c->keys = std::move(*keys);
    auto enc = NameCodec::CreateEncrypted(c->keys.get(), data_key);
    if (!enc.ok()) std::abort();
    c->encrypted = std::move(*enc);
    c->plain = NameCodec::CreatePlain();
    return c;
  }();
  return *codecs;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

bool ValidName(std::string_view n) {
  return !n.empty() && n.size() <= kMaxName && n != "." && n != ".." && n.find('/') == n.npos &&
         n.find('\0') == n.npos;
}

// `text` as something read from the host.
void DecodeStored(const NameCodec& codec, const DirId& dir, std::string_view text) {
  auto name = codec.DecodeName(dir, text);
  if (name.ok() && codec.encrypted()) Check(ValidName(*name));
  if (IsLongHostName(text)) {
    (void)SidecarName(text);
    (void)NameCodec::SidecarMatches(text, text.substr(kLongPrefix.size()));
  }
  (void)codec.DecodeSymlink(text);
  auto xname = codec.DecodeXattrName(text);
  if (xname.ok() && codec.encrypted()) Check(xname->starts_with("user.") || xname->starts_with("security."));
  (void)codec.OpenXattrValue("user.cfs.x.fuzz", cfs::AsBytes(text));
}

// `text` as a plaintext from a caller: its stored form must decode back.
void RoundTrip(const NameCodec& codec, const DirId& dir, std::string_view text) {
  auto stored = codec.EncodeName(dir, text);
  Check(stored.ok() == ValidName(text));
  if (stored.ok()) {
    const bool is_long = !stored->long_name.empty();
    // Plain volumes store every valid name as is, ".cfsL.x" included.
    if (codec.encrypted()) Check(is_long == IsLongHostName(stored->host_name));
    if (!codec.encrypted()) Check(!is_long && stored->host_name == text);
    Check(stored->host_name.size() <= kMaxHostName);
    if (is_long) Check(NameCodec::SidecarMatches(stored->host_name, stored->long_name));
    auto back = codec.DecodeName(dir, is_long ? stored->long_name : stored->host_name);
    Check(back.ok() && *back == text);
  }
  auto link = codec.EncodeSymlink(text);
  if (link.ok()) {
    auto back = codec.DecodeSymlink(*link);
    Check(back.ok() && *back == text);
    Check(codec.SymlinkSize(link->size()) == text.size());
  }
  auto xname = codec.EncodeXattrName(text);
  if (xname.ok()) {
    auto back = codec.DecodeXattrName(*xname);
    Check(back.ok() && *back == text);
    auto value = codec.SealXattrValue(*xname, cfs::AsBytes(text));
    Check(value.ok());
    auto opened = codec.OpenXattrValue(*xname, *value);
    Check(opened.ok() && std::string_view(reinterpret_cast<const char*>(opened->data()), opened->size()) == text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Codecs& c = TheCodecs();
  DirId dir{};
  if (size > 0) dir[0] = data[0];
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const NameCodec* codec : {c.encrypted.get(), c.plain.get()}) {
    DecodeStored(*codec, dir, text);
    RoundTrip(*codec, dir, text);
  }
  return 0;
}
