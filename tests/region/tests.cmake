# region/ area (region engineer): regions as folders, snapshot copy within
# and across regions, replicas (docs/regions.md).
add_test(NAME region_copy COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/copy_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(region_copy PROPERTIES LABELS "cli;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME region_replica COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/replica_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(region_replica PROPERTIES LABELS "cli;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME region_pg COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/pg_region_test.sh $<TARGET_FILE:cipherfs>)
set_tests_properties(region_pg PROPERTIES LABELS "db;fuse" TIMEOUT 900 SKIP_RETURN_CODE 77)
