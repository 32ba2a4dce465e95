#include "keymgr/key_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"

namespace cfs::keymgr {
namespace {

using nlohmann::json;

json VersionToJson(const MaterialVersion& v) {
  return json{{"version", v.version}, {"material_id", v.material_id}, {"wrapped", Base64Encode(v.wrapped)},
              {"created", v.created}};
}

json GrantToJson(const GrantRecord& g) {
  json j{{"grant_id", g.grant_id}, {"grant_token", g.grant_token}, {"name", g.name},
         {"grantee_principal", g.grantee_principal}, {"retiring_principal", g.retiring_principal},
         {"issuing_account", g.issuing_account}, {"operations", g.operations},
         {"creation_date", g.creation_date}};
  if (g.ec_equals) j["encryption_context_equals"] = *g.ec_equals;
  if (g.ec_subset) j["encryption_context_subset"] = *g.ec_subset;
  return j;
}

GrantRecord GrantFromJson(const json& j) {
  GrantRecord g;
  g.grant_id = j.at("grant_id").get<std::string>();
  g.grant_token = j.at("grant_token").get<std::string>();
  g.name = j.at("name").get<std::string>();
  g.grantee_principal = j.at("grantee_principal").get<std::string>();
  g.retiring_principal = j.at("retiring_principal").get<std::string>();
  g.issuing_account = j.at("issuing_account").get<std::string>();
  g.operations = j.at("operations").get<std::vector<std::string>>();
  g.creation_date = j.at("creation_date").get<int64_t>();
  if (j.contains("encryption_context_equals")) g.ec_equals = j.at("encryption_context_equals").get<EncryptionContext>();
  if (j.contains("encryption_context_subset")) g.ec_subset = j.at("encryption_context_subset").get<EncryptionContext>();
  return g;
}

json KeyToJson(const KeyRecord& k) {
  json versions = json::array();
  for (const auto& v : k.versions) versions.push_back(VersionToJson(v));
  json grants = json::array();
  for (const auto& g : k.grants) grants.push_back(GrantToJson(g));
  json j{{"key_id", k.key_id}, {"arn", k.arn}, {"description", k.description},
         {"creation_date", k.creation_date}, {"state", KeyStateName(k.state)},
         {"manager", KeyManagerName(k.manager)}, {"current_version", k.current_version},
         {"versions", versions}, {"rotation_enabled", k.rotation_enabled},
         {"rotation_period_days", k.rotation_period_days}, {"on_demand_rotations", k.on_demand_rotations},
         {"policy", k.policy}, {"grants", grants}};
  if (k.deletion_date) j["deletion_date"] = *k.deletion_date;
  if (k.next_rotation_date) j["next_rotation_date"] = *k.next_rotation_date;
  return j;
}

// Throws json exceptions on a wrong type; the caller turns them into DataLoss.
MaterialVersion VersionFromJson(const json& j) {
  MaterialVersion v;
  v.version = j.at("version").get<uint32_t>();
  v.material_id = j.at("material_id").get<std::string>();
  auto wrapped = Base64Decode(j.at("wrapped").get<std::string>());
  if (!wrapped || wrapped->size() != 12 + 32 + 16) throw std::invalid_argument("wrapped material: bad size");
  v.wrapped = std::move(*wrapped);
  v.created = j.at("created").get<int64_t>();
  return v;
}

KeyRecord KeyFromJson(const json& j) {
  KeyRecord k;
  k.key_id = j.at("key_id").get<std::string>();
  k.arn = j.at("arn").get<std::string>();
  k.description = j.at("description").get<std::string>();
  k.creation_date = j.at("creation_date").get<int64_t>();
  std::string state = j.at("state").get<std::string>();
  if (state == "Enabled") k.state = KeyState::kEnabled;
  else if (state == "Disabled") k.state = KeyState::kDisabled;
  else if (state == "PendingDeletion") k.state = KeyState::kPendingDeletion;
  else throw std::invalid_argument("unknown key state " + state);
  std::string manager = j.at("manager").get<std::string>();
  if (manager == "CUSTOMER") k.manager = KeyManagerType::kCustomer;
  else if (manager == "AWS") k.manager = KeyManagerType::kAws;
  else throw std::invalid_argument("unknown key manager " + manager);
  if (j.contains("deletion_date")) k.deletion_date = j.at("deletion_date").get<int64_t>();
  k.current_version = j.at("current_version").get<uint32_t>();
  for (const auto& v : j.at("versions")) k.versions.push_back(VersionFromJson(v));
  if (k.FindVersion(k.current_version) == nullptr) throw std::invalid_argument("current version missing");
  // Format 2 fields; a format 1 record has none (defaults).
  k.rotation_enabled = j.value("rotation_enabled", false);
  k.rotation_period_days = j.value("rotation_period_days", 365u);
  if (j.contains("next_rotation_date")) k.next_rotation_date = j.at("next_rotation_date").get<int64_t>();
  k.on_demand_rotations = j.value("on_demand_rotations", 0u);
  k.policy = j.value("policy", std::string());
  if (j.contains("grants")) {
    for (const auto& g : j.at("grants")) k.grants.push_back(GrantFromJson(g));
  }
  return k;
}

}  // namespace

std::string_view KeyStateName(KeyState s) {
  switch (s) {
    case KeyState::kEnabled: return "Enabled";
    case KeyState::kDisabled: return "Disabled";
    case KeyState::kPendingDeletion: return "PendingDeletion";
  }
  return "Unknown";
}

std::string_view KeyManagerName(KeyManagerType m) { return m == KeyManagerType::kAws ? "AWS" : "CUSTOMER"; }

const MaterialVersion* KeyRecord::FindVersion(uint32_t v) const {
  for (const auto& mv : versions) {
    if (mv.version == v) return &mv;
  }
  return nullptr;
}

KeyRecord* KeyStoreData::FindKey(const std::string& key_id) {
  for (auto& k : keys) {
    if (k.key_id == key_id) return &k;
  }
  return nullptr;
}

const KeyRecord* KeyStoreData::FindKey(const std::string& key_id) const {
  return const_cast<KeyStoreData*>(this)->FindKey(key_id);
}

const AliasRecord* KeyStoreData::FindAlias(const std::string& name) const {
  for (const auto& a : aliases) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string SerializeKeyStore(const KeyStoreData& data) {
  json keys = json::array();
  for (const auto& k : data.keys) keys.push_back(KeyToJson(k));
  json aliases = json::array();
  for (const auto& a : data.aliases) {
    aliases.push_back(json{{"name", a.name}, {"target_key_id", a.target_key_id},
                           {"creation_date", a.creation_date}, {"last_updated", a.last_updated}});
  }
  json root{{"format", kKeyStoreFormat}, {"region", data.region}, {"account", data.account},
            {"keys", keys}, {"aliases", aliases}};
  return root.dump(1) + "\n";
}

Result<KeyStoreData> ParseKeyStore(std::string_view text, const std::string& file_name) {
  KeyStoreData data;
  try {
    json root = json::parse(text);
    int format = root.at("format").get<int>();
    if (format > kKeyStoreFormat) {
      return Unimplemented(fmt::format("{}: key store format {} is newer than this cipherfs supports ({})",
                                       file_name, format, kKeyStoreFormat));
    }
    if (format < 1) throw std::invalid_argument("bad format");
    data.region = root.at("region").get<std::string>();
    data.account = root.at("account").get<std::string>();
    for (const auto& k : root.at("keys")) data.keys.push_back(KeyFromJson(k));
    for (const auto& a : root.at("aliases")) {
      AliasRecord r;
      r.name = a.at("name").get<std::string>();
      r.target_key_id = a.at("target_key_id").get<std::string>();
      r.creation_date = a.at("creation_date").get<int64_t>();
      r.last_updated = a.at("last_updated").get<int64_t>();
      data.aliases.push_back(std::move(r));
    }
  } catch (const std::exception& e) {
    return DataLoss(fmt::format("key store {} is corrupt ({}); restore it from a backup", file_name, e.what()));
  }
  return data;
}

KeyStore::KeyStore(std::string kms_dir) : dir_(std::move(kms_dir)) {}

Result<KeyStoreData> KeyStore::ReadUnlocked() const {
  Result<std::string> text = ReadSmallFile(path(), kMaxKeyStoreSize);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return KeyStoreData{};
    if (text.status().code() == Code::kInvalidArgument) return DataLoss(text.status().message());
    return text.status();
  }
  return ParseKeyStore(*text, path());
}

Result<KeyStoreData> KeyStore::Read() const {
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dir_ + "/keys.lock", FileLock::Mode::kShared));
  return ReadUnlocked();
}

Status KeyStore::Update(const std::function<Status(KeyStoreData*)>& change) {
  CFS_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dir_ + "/keys.lock", FileLock::Mode::kExclusive));
  CFS_ASSIGN_OR_RETURN(KeyStoreData data, ReadUnlocked());
  CFS_RETURN_IF_ERROR(change(&data));
  return WriteDurably(SerializeKeyStore(data));
}

// Temp file, fsync, rename, directory fsync (as WriteFileAtomically), with
// the crash points of SetCrashPointForTest. Temp files a crash left behind
// are removed first (we hold the exclusive lock: no writer is running).
Status KeyStore::WriteDurably(const std::string& text) {
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("keys.json.tmp.", 0) == 0) ::unlinkat(::dirfd(d), name.c_str(), 0);
    }
    ::closedir(d);
  }
  std::string tmp = fmt::format("{}.tmp.{}", path(), ::getpid());
  auto crash = [this](int step) { return crash_at_ == step; };
  auto died = [](int step) { return Internal(fmt::format("simulated crash at key store write step {}", step)); };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  if (crash(0)) return ::close(fd), died(0);
  size_t half = text.size() / 2;
  Status s;
  for (size_t done = 0; s.ok() && done < text.size();) {
    size_t want = done < half ? half - done : text.size() - done;
    ssize_t n = ::write(fd, text.data() + done, want);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) s = Status::FromErrno(n < 0 ? errno : EIO, "write " + tmp);
    else done += static_cast<size_t>(n);
    if (s.ok() && done == half && crash(1)) return ::close(fd), died(1);
  }
  if (s.ok() && crash(2)) return ::close(fd), died(2);
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "fsync " + tmp);
  ::close(fd);
  if (s.ok() && crash(3)) return died(3);
  if (s.ok() && ::rename(tmp.c_str(), path().c_str()) != 0) s = Status::FromErrno(errno, "rename " + tmp);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (crash(4)) return died(4);
  return FsyncDir(dir_);
}

}  // namespace cfs::keymgr
