// Internal to crypto/: helpers to build OSSL_PARAM arrays from our types.
// Thread safety: pure functions.
#pragma once

#include <openssl/core_names.h>
#include <openssl/params.h>

#include <cstdint>

#include "common/encoding.h"

namespace cfs::crypto::internal {

// An octet-string parameter over `data`. An empty view still gets a valid
// non-null pointer: some providers read a null pointer as "absent".
inline OSSL_PARAM OctetParam(const char* key, ByteView data) {
  static const uint8_t kEmpty[1] = {0};
  const uint8_t* p = data.empty() ? kEmpty : data.data();
  return OSSL_PARAM_construct_octet_string(key, const_cast<uint8_t*>(p), data.size());
}

inline OSSL_PARAM Utf8Param(const char* key, const char* value) {
  return OSSL_PARAM_construct_utf8_string(key, const_cast<char*>(value), 0);
}

}  // namespace cfs::crypto::internal
