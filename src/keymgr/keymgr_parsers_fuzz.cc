// libFuzzer target for the bytes keymgr reads from disk or callers: the key
// store JSON, the ciphertext blob and key identifiers. Any input must parse
// into something that round-trips, or give a clean error; never crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "keymgr/ciphertext_blob.h"
#include "keymgr/identifiers.h"
#include "keymgr/key_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cfs::keymgr;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto store = ParseKeyStore(text, "fuzz.json");
  if (store.ok()) {
    auto again = ParseKeyStore(SerializeKeyStore(*store), "fuzz2.json");
    if (!again.ok() || again->keys.size() != store->keys.size()) std::abort();
  }
  auto blob = ParseCiphertextBlob(cfs::ByteView(data, size));
  if (blob.ok() && SerializeCiphertextBlob(*blob) != cfs::Bytes(data, data + size)) std::abort();
  auto ref = ParseKeyIdentifier(text);
  if (ref.ok() && ref->key_id.empty() && ref->alias_name.empty()) std::abort();
  (void)ValidateAliasName(text, false);
  return 0;
}
