# region/ area (region engineer): regions as folders, snapshot copy within
# and across regions, replicas (docs/regions.md).
add_test(NAME region_copy COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/copy_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(region_copy PROPERTIES LABELS "cli;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME region_replica COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/replica_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(region_replica PROPERTIES LABELS "cli;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
# PostgreSQL across regions: short by default (~1 min), the long variant only with CIPHERFS_LONG=1.
add_test(NAME region_pg COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/pg_region_test.sh $<TARGET_FILE:cipherfs> short)
set_tests_properties(region_pg PROPERTIES LABELS "db;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME region_pg_long COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/pg_region_test.sh $<TARGET_FILE:cipherfs> long)
set_tests_properties(region_pg_long PROPERTIES LABELS "db;fuse" TIMEOUT 900 SKIP_RETURN_CODE 77)
# Shipping between hosts: `region serve` and --target tls://, both ends on loopback.
add_test(NAME region_remote COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/remote_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(region_remote PROPERTIES LABELS "cli;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
