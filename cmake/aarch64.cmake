# Cross-compiling for 64-bit Arm Linux with Debian's g++-aarch64-linux-gnu; programs run under qemu-aarch64 (from
# qemu-user) with the cross sysroot as their library root. Used by tests/neon/run.sh:
#   cmake -S . -B build-neon -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake -DSTRATA_KERNELS_ONLY=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(STRATA_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "Target libraries (libc, libstdc++) for qemu-aarch64 -L")
set(CMAKE_FIND_ROOT_PATH ${STRATA_AARCH64_SYSROOT})
# Tools from the host; libraries, headers and packages only from the target root (never the host's x86 ones).
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${STRATA_AARCH64_SYSROOT})
