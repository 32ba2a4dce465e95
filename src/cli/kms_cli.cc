#include "cli/kms_cli.h"

#include <memory>

#include "cli/cluster_key_state.h"
#include "cli/kms_commands.h"
#include "cli/kmsd_command.h"

namespace cfs::cli {
namespace {

struct Reg {
  CLI::App* kms;
  KmsCliHooks hooks;
  std::shared_ptr<KmsArgs> a;

  // A subcommand running `f` with the shared arguments.
  CLI::App* Sub(const std::string& name, const std::string& what, const std::string& examples,
                std::function<Status(Context&, const KmsArgs&)> f) {
    CLI::App* sub = kms->add_subcommand(name, what);
    sub->footer("Examples:\n" + examples);
    hooks.add_common(sub);
    sub->add_option("--query", a->query, "print only this field of the response (e.g. CiphertextBlob)");
    auto args = a;
    auto set = hooks.set_action;
    sub->callback([set, f, args] { set([f, args](Context& c) { return f(c, *args); }, true); });
    return sub;
  }
  void KeyId(CLI::App* sub, const std::string& forms) {
    sub->add_option("--key-id", a->key_id, forms)->required();
  }
  void Ctx(CLI::App* sub, std::optional<std::string>* target, const std::string& flag) {
    sub->add_option(flag, *target, "encryption context: JSON {\"k\":\"v\"} or k=v,k2=v2");
  }
};

constexpr char kAnyForm[] = "key id, key ARN, alias name or alias ARN";
constexpr char kKeyOnly[] = "key id or key ARN";

void AddKeyCommands(Reg& r) {
  auto a = r.a;
  CLI::App* s = r.Sub("create-key", "Create a customer managed key (prints KeyMetadata)",
                      "  cipherfs kms create-key --description 'orders cluster key'\n",
                      KmsCreateKey);
  s->add_option("--description", a->description, "free text, up to 8192 characters");
  s = r.Sub("describe-key", "Show a key's metadata (alias/aws/rds is created on first use)",
            "  cipherfs kms describe-key --key-id alias/aws/rds\n",
            KmsDescribeKey);
  r.KeyId(s, kAnyForm);
  r.Sub("list-keys", "List the keys of the region", "  cipherfs kms list-keys\n",
        KmsListKeys);
  s = r.Sub("enable-key", "Enable a key (Disabled -> Enabled)", "  cipherfs kms enable-key --key-id KEY-ID\n",
            [](Context& c, const KmsArgs& x) { return KmsEnableKey(c, x.key_id); });
  r.KeyId(s, kKeyOnly);
  s = r.Sub("disable-key", "Disable a key: its data keys can't be unwrapped until enabled; mounted clusters\n"
                           "using it become inaccessible-encryption-credentials-recoverable",
            "  cipherfs kms disable-key --key-id KEY-ID\n",
            [](Context& c, const KmsArgs& x) { return KmsDisableKey(c, x.key_id); });
  r.KeyId(s, kKeyOnly);
  s = r.Sub("schedule-key-deletion", "Schedule a key's deletion in 7-30 days (default 30); cancel before then",
            "  cipherfs kms schedule-key-deletion --key-id KEY-ID --pending-window-in-days 7\n",
            KmsScheduleKeyDeletion);
  r.KeyId(s, kKeyOnly);
  s->add_option("--pending-window-in-days", a->pending_window_in_days, "7 to 30 (default 30)");
  s = r.Sub("cancel-key-deletion", "Cancel a scheduled deletion: the key becomes Disabled (enable it after)",
            "  cipherfs kms cancel-key-deletion --key-id KEY-ID\n  cipherfs kms enable-key --key-id KEY-ID\n",
            KmsCancelKeyDeletion);
  r.KeyId(s, kKeyOnly);
  s = r.Sub("enable-key-rotation", "Rotate the key material automatically (every 365 days by default)",
            "  cipherfs kms enable-key-rotation --key-id KEY-ID --rotation-period-in-days 90\n",
            KmsEnableKeyRotation);
  r.KeyId(s, kKeyOnly);
  s->add_option("--rotation-period-in-days", a->rotation_period_in_days, "90 to 2560 (default 365)");
  s = r.Sub("disable-key-rotation", "Stop automatic rotation", "  cipherfs kms disable-key-rotation --key-id KEY-ID\n",
            KmsDisableKeyRotation);
  r.KeyId(s, kKeyOnly);
  s = r.Sub("rotate-key-on-demand", "Add a new key material version now (old versions keep decrypting; max 25)",
            "  cipherfs kms rotate-key-on-demand --key-id KEY-ID\n", KmsRotateKeyOnDemand);
  r.KeyId(s, kKeyOnly);
  s = r.Sub("get-key-rotation-status", "Is automatic rotation on, and when is the next one",
            "  cipherfs kms get-key-rotation-status --key-id KEY-ID\n", KmsGetKeyRotationStatus);
  r.KeyId(s, kKeyOnly);
}

void AddAliasCommands(Reg& r) {
  auto a = r.a;
  CLI::App* s = r.Sub("list-aliases", "List aliases (all, or of one key)",
                      "  cipherfs kms list-aliases\n  cipherfs kms list-aliases --key-id KEY-ID\n",
                      KmsListAliases);
  s->add_option("--key-id", a->opt_key_id, "only aliases of this key (key id or ARN)");
  s = r.Sub("create-alias", "Name a key: alias/ prefix required, alias/aws/ reserved",
            "  cipherfs kms create-alias --alias-name alias/orders --target-key-id KEY-ID\n",
            [](Context& c, const KmsArgs& x) { return KmsCreateAlias(c, x.alias_name, x.target_key_id); });
  s->add_option("--alias-name", a->alias_name, "alias/NAME")->required();
  s->add_option("--target-key-id", a->target_key_id, kKeyOnly)->required();
  s = r.Sub("update-alias", "Point an alias at another key",
            "  cipherfs kms update-alias --alias-name alias/orders --target-key-id KEY-ID\n", KmsUpdateAlias);
  s->add_option("--alias-name", a->alias_name, "alias/NAME")->required();
  s->add_option("--target-key-id", a->target_key_id, kKeyOnly)->required();
  s = r.Sub("delete-alias", "Delete an alias (the key stays)", "  cipherfs kms delete-alias --alias-name alias/orders\n",
            KmsDeleteAlias);
  s->add_option("--alias-name", a->alias_name, "alias/NAME")->required();
}

void AddCryptoCommands(Reg& r) {
  auto a = r.a;
  CLI::App* s = r.Sub("encrypt", "Encrypt up to 4096 bytes (CiphertextBlob is base64)",
                      "  cipherfs kms encrypt --key-id alias/orders --plaintext fileb://secret.txt \\\n"
                      "      --encryption-context purpose=test --query CiphertextBlob --output text | base64 -d > blob\n",
                      KmsEncrypt);
  r.KeyId(s, kAnyForm);
  s->add_option("--plaintext", a->plaintext, "fileb://PATH or base64")->required();
  r.Ctx(s, &a->encryption_context, "--encryption-context");
  s->add_option("--encryption-algorithm", a->encryption_algorithm, "SYMMETRIC_DEFAULT");
  s = r.Sub("decrypt", "Decrypt a ciphertext blob (Plaintext is base64)",
            "  cipherfs kms decrypt --ciphertext-blob fileb://blob --encryption-context purpose=test \\\n"
            "      --query Plaintext --output text | base64 -d\n",
            KmsDecrypt);
  s->add_option("--ciphertext-blob", a->ciphertext_blob, "fileb://PATH or base64")->required();
  s->add_option("--key-id", a->opt_key_id, std::string("optional: must be the blob's key; ") + kAnyForm);
  r.Ctx(s, &a->encryption_context, "--encryption-context");
  s->add_option("--encryption-algorithm", a->encryption_algorithm, "SYMMETRIC_DEFAULT");
  s = r.Sub("re-encrypt", "Decrypt and encrypt again inside the KMS (another key and/or context)",
            "  cipherfs kms re-encrypt --ciphertext-blob fileb://blob --destination-key-id alias/new\n",
            KmsReEncrypt);
  s->add_option("--ciphertext-blob", a->ciphertext_blob, "fileb://PATH or base64")->required();
  s->add_option("--destination-key-id", a->destination_key_id, kAnyForm)->required();
  s->add_option("--source-key-id", a->source_key_id, std::string("optional: must be the blob's key; ") + kAnyForm);
  r.Ctx(s, &a->source_encryption_context, "--source-encryption-context");
  r.Ctx(s, &a->destination_encryption_context, "--destination-encryption-context");
  for (bool with_plaintext : {true, false}) {
    s = r.Sub(with_plaintext ? "generate-data-key" : "generate-data-key-without-plaintext",
              with_plaintext ? "A fresh data key, in plaintext and wrapped"
                             : "A fresh data key, wrapped only (for a component that fills it later)",
              "  cipherfs kms generate-data-key --key-id alias/orders --key-spec AES_256\n",
              [with_plaintext](Context& c, const KmsArgs& x) { return KmsGenerateDataKey(c, x, with_plaintext); });
    r.KeyId(s, kAnyForm);
    s->add_option("--key-spec", a->key_spec, "AES_256 (default) or AES_128");
    s->add_option("--number-of-bytes", a->number_of_bytes, "1 to 1024 (instead of --key-spec)");
    r.Ctx(s, &a->encryption_context, "--encryption-context");
  }
}

void AddAccessCommands(Reg& r) {
  auto a = r.a;
  CLI::App* s = r.Sub("create-grant", "Let a local user call some operations on a key",
                      "  cipherfs kms create-grant --key-id KEY-ID --grantee-principal postgres \\\n"
                      "      --operations Decrypt GenerateDataKey DescribeKey\n",
                      KmsCreateGrant);
  r.KeyId(s, kKeyOnly);
  s->add_option("--grantee-principal", a->grantee_principal, "user name or arn:cipherfs:iam::ACCOUNT:user/NAME")
      ->required();
  s->add_option("--operations", a->operations, "Decrypt Encrypt GenerateDataKey ... (space or comma separated)")
      ->required();
  s->add_option("--retiring-principal", a->retiring_principal, "who may retire the grant");
  s->add_option("--constraints", a->constraints, "EncryptionContextSubset={k=v} or EncryptionContextEquals={..}");
  s->add_option("--name", a->name, "a name: retries with the same name and parameters give the same grant");
  s = r.Sub("list-grants", "List a key's grants", "  cipherfs kms list-grants --key-id KEY-ID\n", KmsListGrants);
  r.KeyId(s, kKeyOnly);
  s = r.Sub("revoke-grant", "Delete a grant (the key's administrators)",
            "  cipherfs kms revoke-grant --key-id KEY-ID --grant-id GRANT-ID\n", KmsRevokeGrant);
  r.KeyId(s, kKeyOnly);
  s->add_option("--grant-id", a->grant_id, "the grant's id")->required();
  s = r.Sub("retire-grant", "Delete a grant (its retiring principal or grantee)",
            "  cipherfs kms retire-grant --grant-token TOKEN\n"
            "  cipherfs kms retire-grant --key-id KEY-ID --grant-id GRANT-ID\n",
            KmsRetireGrant);
  s->add_option("--grant-token", a->grant_token, "the token CreateGrant returned");
  s->add_option("--key-id", a->opt_key_id, kKeyOnly);
  s->add_option("--grant-id", a->grant_id, "the grant's id");
  s = r.Sub("get-key-policy", "Print a key's policy", "  cipherfs kms get-key-policy --key-id KEY-ID\n",
            KmsGetKeyPolicy);
  r.KeyId(s, kKeyOnly);
  s->add_option("--policy-name", a->policy_name, "default");
  s = r.Sub("put-key-policy", "Replace a key's policy (it must still let you change it later)",
            "  cipherfs kms put-key-policy --key-id KEY-ID --policy file://policy.json\n", KmsPutKeyPolicy);
  r.KeyId(s, kKeyOnly);
  s->add_option("--policy", a->policy, "the policy JSON, or file://PATH")->required();
  s->add_option("--policy-name", a->policy_name, "default");
  s = r.Sub("audit", "List the audit log (filters combine), or --verify its hash chain and sealed head",
            "  cipherfs kms audit --operation Decrypt --outcome AccessDeniedException\n"
            "  cipherfs kms audit --verify\n",
            KmsAudit);
  s->add_option("--operation", a->operation, "only this operation (Decrypt, CreateKey, ...)");
  s->add_option("--key-id", a->opt_key_id, std::string("only calls on this key; ") + kAnyForm);
  s->add_option("--outcome", a->outcome, "Success or an error name");
  s->add_option("--user", a->user, "only this caller (user name or uid)");
  s->add_flag("--verify", a->verify, "check the chain and the sealed head; exit 7 if damaged");
}

}  // namespace

void RegisterKmsCommands(CLI::App& app, const KmsCliHooks& hooks) {
  CLI::App* kms = app.add_subcommand("kms", "The region's key manager (option names and JSON as the cloud KMS CLI)");
  kms->require_subcommand(1);
  kms->footer("Examples:\n  cipherfs kms create-key --description orders\n  cipherfs kms list-aliases\n"
              "Through a kmsd: CIPHERFS_KMS_SOCKET=/run/cipherfs/kms-local-1.sock cipherfs kms ...");
  Reg r{kms, hooks, std::make_shared<KmsArgs>()};
  AddKeyCommands(r);
  AddAliasCommands(r);
  AddCryptoCommands(r);
  AddAccessCommands(r);
  RegisterKmsdCommand(app, hooks);
  CLI::App* cluster = app.get_subcommand("cluster");
  auto id = std::make_shared<std::string>();
  CLI::App* start = cluster->add_subcommand(
      "start", "Bring a cluster in inaccessible-encryption-credentials-recoverable back once its KMS key is\n"
               "usable again (enabled, deletion cancelled, grant restored)");
  start->footer("Examples:\n  cipherfs kms enable-key --key-id KEY-ID\n  cipherfs cluster start --id orders\n");
  hooks.add_common(start);
  start->add_option("--id", *id, "cluster identifier")->required();
  start->callback([id, set = hooks.set_action] { set([id](Context& c) { return ClusterStart(c, *id); }, false); });
}

}  // namespace cfs::cli
