// `cipherfs kms ...`: the region's key manager with the cloud CLI's option
// names and JSON output shapes (KeyMetadata, Keys, Aliases). Output is JSON
// unless --output text.
// Thread safety: one command per process.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/context.h"

namespace cfs::cli {

Status KmsCreateKey(Context& ctx, const std::string& description);
Status KmsDescribeKey(Context& ctx, const std::string& key_id);
Status KmsListKeys(Context& ctx);
Status KmsListAliases(Context& ctx, const std::optional<std::string>& key_id);
Status KmsCreateAlias(Context& ctx, const std::string& alias_name, const std::string& target_key_id);
Status KmsEnableKey(Context& ctx, const std::string& key_id);
Status KmsDisableKey(Context& ctx, const std::string& key_id);

nlohmann::json KeyMetadataJson(const keymgr::KeyMetadata& m);

}  // namespace cfs::cli
