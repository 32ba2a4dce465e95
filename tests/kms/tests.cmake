# --- kms/: the key manager end to end (kms engineer).
# kms_cli: every `cipherfs kms` subcommand, states, refusals, audit tamper
# cases, two processes hammering the key store, passphrase root key.
add_test(NAME kms_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kms_cli_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(kms_cli PROPERTIES LABELS "cli;kms" TIMEOUT 600)
# kmsd: two local users through `cipherfs kmsd` (grants, policy, revoke), a
# non-root user's own mounted cluster going inaccessible while read, cluster
# start, terminal state. Needs root and FUSE (77 = skipped).
add_test(NAME kms_kmsd COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kmsd_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(kms_kmsd PROPERTIES LABELS "cli;fuse;kms" TIMEOUT 600 SKIP_RETURN_CODE 77)
