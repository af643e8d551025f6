# The kernel tests alone (STRATA_KERNELS_ONLY=ON): test_kernels_simd.cpp and test_kernels_quant.cpp against
# strata_kernels, nothing else. GoogleTest comes from its package where one fits the target, else it is built
# here from the sources Debian's googletest package installs (the cross build: no arm64 libgtest).
find_package(GTest QUIET)
if(NOT GTest_FOUND)
  set(STRATA_GTEST_SOURCE /usr/src/googletest CACHE PATH "GoogleTest sources, built when no GTest package fits")
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  add_subdirectory(${STRATA_GTEST_SOURCE} ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
  if(NOT TARGET GTest::gtest)  # older googletest sources do not define the namespaced aliases
    add_library(GTest::gtest ALIAS gtest)
    add_library(GTest::gtest_main ALIAS gtest_main)
  endif()
endif()

add_executable(strata_kernel_tests test_kernels_simd.cpp test_kernels_quant.cpp)
target_link_libraries(strata_kernel_tests PRIVATE strata_kernels GTest::gtest GTest::gtest_main)
target_compile_definitions(strata_kernel_tests PRIVATE STRATA_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}")

if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64" AND CMAKE_CROSSCOMPILING_EMULATOR)
  # Under qemu-aarch64, on two CPUs: `max` has dotprod (the sdot matmuls), the Cortex-A53 is Armv8.0 without it
  # (the vmull/vpadal ones); STRATA_EXPECT_ISA makes the run fail if HWCAP dispatch picked another table. Then
  # STRATA_NEON_DOTPROD=0 on `max`: the override picks the plain table.
  set(_cases "neon_dotprod|max|neon+dotprod|" "neon_armv8_0|cortex-a53|neon|" "neon_dotprod_off|max|neon|0")
  foreach(_case IN LISTS _cases)
    string(REPLACE "|" ";" _f "${_case}")
    list(GET _f 0 _name)
    list(GET _f 1 _cpu)
    list(GET _f 2 _isa)
    list(GET _f 3 _off)
    set(_args)
    set(_env "STRATA_EXPECT_ISA=${_isa}")
    if(_off STREQUAL "0")
      set(_args --gtest_filter=KernelsSimd.TablesAvailable:KernelsSimd.MatmulIsBatchInvariant)
      list(APPEND _env "STRATA_NEON_DOTPROD=0")
    endif()
    add_test(NAME kernels_${_name} COMMAND ${CMAKE_CROSSCOMPILING_EMULATOR} -cpu ${_cpu}
             $<TARGET_FILE:strata_kernel_tests> --gtest_brief=1 ${_args})
    set_tests_properties(kernels_${_name} PROPERTIES ENVIRONMENT "${_env}" TIMEOUT 900)
  endforeach()
else()
  add_test(NAME kernels COMMAND strata_kernel_tests --gtest_brief=1)
  set_tests_properties(kernels PROPERTIES TIMEOUT 900)
endif()
