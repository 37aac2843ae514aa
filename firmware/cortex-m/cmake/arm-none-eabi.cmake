# GNU Arm Embedded toolchain (Debian's gcc-arm-none-eabi, or Arm's own download: set
# ARM_TOOLCHAIN_DIR to its bin/ folder).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(ARM_TOOLCHAIN_DIR "" CACHE PATH "Folder holding arm-none-eabi-g++ (empty: search PATH)")
if(ARM_TOOLCHAIN_DIR)
  set(_prefix ${ARM_TOOLCHAIN_DIR}/arm-none-eabi-)
else()
  set(_prefix arm-none-eabi-)
endif()
set(CMAKE_C_COMPILER ${_prefix}gcc)
set(CMAKE_CXX_COMPILER ${_prefix}g++)
set(CMAKE_ASM_COMPILER ${_prefix}gcc)
set(CMAKE_OBJCOPY ${_prefix}objcopy CACHE FILEPATH "")
set(CMAKE_SIZE ${_prefix}size CACHE FILEPATH "")
# The compiler cannot link a test program without a board's linker script.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
