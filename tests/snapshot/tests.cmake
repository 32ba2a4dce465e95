# snapshot/ area (snap engineer): automated backups, export, restore with
# encryption on the way, the isolation model and the PostgreSQL snapshot test.
# (snapshot_cli and cfs_snapshot_fault_tests are registered in
# tests/CMakeLists.txt.)
add_test(NAME snapshot_backup
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/backup_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(snapshot_backup PROPERTIES LABELS "cli;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME snapshot_encrypt_export
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/encrypt_export_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(snapshot_encrypt_export PROPERTIES LABELS "cli;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
cfs_test_add(cfs_snapshot_sweep_tests LABEL snapshot TIMEOUT 600
             SOURCES ${CMAKE_CURRENT_LIST_DIR}/snapshot_fault_sweep_test.cc
             DEPS cfs_test_support cfs_snapshot cfs_store cfs_crypto cfs_common)
add_test(NAME snapshot_pg COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/pg_snapshot_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(snapshot_pg PROPERTIES LABELS "db;fuse" TIMEOUT 900 SKIP_RETURN_CODE 77)
add_test(NAME snapshot_isolation_model
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/isolation_model_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(snapshot_isolation_model PROPERTIES LABELS "cli;fuse" TIMEOUT 600 SKIP_RETURN_CODE 77)
