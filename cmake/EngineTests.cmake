# psd3d_engine_tests(<library>): one gtest executable per *_test.cc of the calling folder, linked to
# <library>. Label "unit": CPU (CI). Files named *_gpu_test.cc get label "gpu": CUDA parity and GPU
# checks that skip themselves (GTEST_SKIP) without CUDA; the GPU machine runs them with `ctest -L gpu`.
function(psd3d_engine_tests library)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  foreach(path ${tests})
    get_filename_component(name ${path} NAME_WE)
    set(label unit)
    if(name MATCHES "_gpu_test$")
      set(label gpu)
    endif()
    add_executable(${name} ${path})
    target_link_libraries(${name} PRIVATE ${library} GTest::gtest_main)
    target_compile_definitions(${name} PRIVATE PSD3D_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data"
                                               PSD3D_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
    target_precompile_headers(${name} REUSE_FROM psd3d_engine_core)
    gtest_discover_tests(${name} PROPERTIES LABELS ${label} TIMEOUT 600 DISCOVERY_TIMEOUT 60)
  endforeach()
endfunction()
