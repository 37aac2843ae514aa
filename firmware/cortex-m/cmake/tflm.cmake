# TensorFlow Lite Micro for this firmware: where its source comes from, and a static library of
# exactly what the model needs (TFLM's framework + the kernels model_ops.h registers, CMSIS-NN's
# optimised versions where TFLM has them), compiled with the flags TFLM's own Makefile uses for
# TARGET=cortex_m_generic OPTIMIZED_KERNEL_DIR=cmsis_nn. A normal CMake target, so CMake tracks
# every input (sources, headers, TFLM_DIR, CPU, build type, flags) and never reuses a stale object.
#
# Inputs: E2MICRO_CPU (cortex-m4+fp, ...; its compile flags already added), E2MICRO_MODEL_DIR (model_ops.h),
# E2MICRO_TFLM_KERNELS (cmsis_nn, the default, or reference: TFLM's portable kernels, to measure against).
# Outputs: TFLM_DIR, target e2micro_tflm (link it; it carries the include paths and defines).

# --- 1. Where TFLM comes from, in this order (the one place that decides) ------------------------
set(TFLM_DIR "" CACHE PATH "A tflite-micro tree with its downloads (empty: see firmware/README.md §4)")
set(TFLM_COMMIT 90b983c2b3f1480642e040bbd2ddb37b998f3424)  # firmware/fetch_tflm.sh clones this one
get_filename_component(_repo ${CMAKE_CURRENT_LIST_DIR}/../../.. ABSOLUTE)
set(_shared ${_repo}/../shared/third_party/tflite-micro)   # this workplace's read-only copy
set(_fetched ${_repo}/build/third_party/tflite-micro)      # where firmware/fetch_tflm.sh clones
if(TFLM_DIR)
  set(_how "TFLM_DIR")
elseif(EXISTS ${_shared}/tensorflow/lite/micro/micro_interpreter.h)
  get_filename_component(TFLM_DIR ${_shared} ABSOLUTE)
  set(_how "../shared/third_party/tflite-micro")
elseif(EXISTS ${_fetched}/tensorflow/lite/micro/micro_interpreter.h)
  set(TFLM_DIR ${_fetched})
  set(_how "firmware/fetch_tflm.sh")
else()
  message(FATAL_ERROR "TFLM source not found: pass -DTFLM_DIR=<tflite-micro tree>, or run firmware/fetch_tflm.sh "
                      "(network: clones tflite-micro ${TFLM_COMMIT} and its downloads into build/third_party)")
endif()
set(TFLM_DOWNLOADS ${TFLM_DIR}/tensorflow/lite/micro/tools/make/downloads)
foreach(_need tensorflow/lite/micro/micro_interpreter.h
              tensorflow/lite/micro/tools/make/downloads/flatbuffers/include/flatbuffers/flatbuffers.h
              tensorflow/lite/micro/tools/make/downloads/gemmlowp/fixedpoint/fixedpoint.h
              tensorflow/lite/micro/tools/make/downloads/cmsis/CMSIS/Core/Include/cmsis_compiler.h
              tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Include/arm_nnfunctions.h)
  if(NOT EXISTS ${TFLM_DIR}/${_need})
    message(FATAL_ERROR "TFLM_DIR=${TFLM_DIR} (from ${_how}) lacks ${_need}: not a tflite-micro tree with "
                        "its downloads (firmware/fetch_tflm.sh makes one)")
  endif()
endforeach()
message(STATUS "e2micro: TFLM from ${_how}: ${TFLM_DIR}")

# --- 2. The CPU (E2MICRO_CPU, flags set by CMakeLists.txt): CMSIS's device name ----------------
string(REGEX REPLACE "^cortex-(m[0-9]+).*" "\\1" _core "${E2MICRO_CPU}")
string(TOUPPER ${_core} _core)

# --- 3. The kernels model_ops.h registers ---------------------------------------------------------
# MicroMutableOpResolver method → TFLM kernel file (tensorflow/lite/micro/kernels/<name>.cc, or
# kernels/cmsis_nn/<name>.cc where TFLM has a CMSIS-NN one) and the CMSIS-NN source folders it calls.
set(_op_AddConv2D conv ConvolutionFunctions)
set(_op_AddDepthwiseConv2D depthwise_conv ConvolutionFunctions TransposeFunctions)  # MVE wrapper transposes
set(_op_AddFullyConnected fully_connected FullyConnectedFunctions)
set(_op_AddAdd add BasicMathFunctions)
set(_op_AddMul mul BasicMathFunctions)
set(_op_AddMean reduce)
set(_op_AddPad pad PadFunctions)
set(_op_AddAveragePool2D pooling PoolingFunctions)
set(_op_AddReshape reshape)
set(_op_AddSoftmax softmax SoftmaxFunctions)
set(_op_AddQuantize quantize)
set(_op_AddDequantize dequantize)

set(E2MICRO_TFLM_KERNELS cmsis_nn CACHE STRING "cmsis_nn (TFLM's CMSIS-NN kernels) or reference (its portable ones)")
set_property(CACHE E2MICRO_TFLM_KERNELS PROPERTY STRINGS cmsis_nn reference)
if(NOT E2MICRO_TFLM_KERNELS MATCHES "^(cmsis_nn|reference)$")
  message(FATAL_ERROR "E2MICRO_TFLM_KERNELS=${E2MICRO_TFLM_KERNELS}: use cmsis_nn or reference")
endif()
set(_micro ${TFLM_DIR}/tensorflow/lite/micro)
set(_nn ${TFLM_DOWNLOADS}/cmsis_nn)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${E2MICRO_MODEL_DIR}/model_ops.h)
file(STRINGS ${E2MICRO_MODEL_DIR}/model_ops.h _calls REGEX "resolver\\.Add[A-Za-z0-9]+\\(")
set(_kernel_srcs ${_micro}/kernels/kernel_util.cc)
set(_nn_dirs NNSupportFunctions)
set(E2MICRO_TFLM_OPS "")
foreach(_line ${_calls})
  string(REGEX MATCH "Add[A-Za-z0-9]+" _call "${_line}")
  if(NOT DEFINED _op_${_call})
    message(FATAL_ERROR "model_ops.h registers ${_call}(), which firmware/cortex-m/cmake/tflm.cmake does not "
                        "know: add its TFLM kernel to the table there")
  endif()
  list(GET _op_${_call} 0 _k)
  if(E2MICRO_TFLM_KERNELS STREQUAL cmsis_nn AND EXISTS ${_micro}/kernels/cmsis_nn/${_k}.cc)
    list(APPEND _kernel_srcs ${_micro}/kernels/cmsis_nn/${_k}.cc)
    list(SUBLIST _op_${_call} 1 -1 _dirs)
    list(APPEND _nn_dirs ${_dirs})
  else()
    list(APPEND _kernel_srcs ${_micro}/kernels/${_k}.cc)
  endif()
  if(EXISTS ${_micro}/kernels/${_k}_common.cc)
    list(APPEND _kernel_srcs ${_micro}/kernels/${_k}_common.cc)
  endif()
  list(APPEND E2MICRO_TFLM_OPS ${_k})
endforeach()
list(REMOVE_DUPLICATES _kernel_srcs)
list(REMOVE_DUPLICATES _nn_dirs)

# --- 4. The framework: TFLM's MICROLITE_CC_BASE_SRCS and TFL_CC_SRCS, cortex_m_generic versions ----
file(GLOB _framework ${_micro}/*.cc ${_micro}/arena_allocator/*.cc ${_micro}/memory_planner/*.cc
     ${_micro}/tflite_bridge/*.cc)
# Not needed to run a model: tests and their fakes, the recording allocators, profiler, hexdump.
list(FILTER _framework EXCLUDE REGEX "(_test|test_helpers|test_helper_custom_ops|fake_micro_context|mock_micro_graph|recording_[a-z_]+|micro_profiler|hexdump)\\.cc$")
foreach(_f debug_log.cc micro_time.cc system_setup.cc)
  if(EXISTS ${_micro}/cortex_m_generic/${_f})
    list(REMOVE_ITEM _framework ${_micro}/${_f})
    list(APPEND _framework ${_micro}/cortex_m_generic/${_f})
  endif()
endforeach()
set(_tfl ${TFLM_DIR}/tensorflow)
list(APPEND _framework ${_tfl}/lite/kernels/kernel_util.cc ${_tfl}/lite/kernels/internal/runtime_shape.cc
     ${_tfl}/lite/kernels/internal/portable_tensor_utils.cc ${_tfl}/lite/kernels/internal/tensor_ctypes.cc
     ${_tfl}/lite/kernels/internal/reference/portable_tensor_utils.cc ${_tfl}/lite/kernels/internal/common.cc
     ${_tfl}/lite/kernels/internal/quantization_util.cc ${_tfl}/lite/kernels/internal/tensor_utils.cc
     ${_tfl}/lite/core/api/flatbuffer_conversions.cc ${_tfl}/lite/core/api/tensor_utils.cc
     ${_tfl}/lite/core/c/common.cc ${_tfl}/compiler/mlir/lite/schema/schema_utils.cc
     ${_tfl}/compiler/mlir/lite/core/api/error_reporter.cc)

set(_nn_srcs "")
set(_nn_defs CMSIS_NN ARM_NN_ENABLE_F16=0 ARM_NN_ENABLE_F32=0)
if(E2MICRO_TFLM_KERNELS STREQUAL reference)
  set(_nn_dirs "")  # TFLM's portable kernels call no CMSIS-NN function
  set(_nn_defs "")
endif()
foreach(_d ${_nn_dirs})
  file(GLOB _s ${_nn}/Source/${_d}/*.c)
  list(APPEND _nn_srcs ${_s})
endforeach()
list(FILTER _nn_srcs EXCLUDE REGEX "(_f16|_f32|arm_nntables_flt)\\.c$")  # ARM_NN_ENABLE_F16/F32=0

# --- 5. The library, with TFLM's flags ------------------------------------------------------------
set(TFLM_BUILD_TYPE release_with_logs CACHE STRING "TFLM's BUILD_TYPE: default, release_with_logs or release")
set_property(CACHE TFLM_BUILD_TYPE PROPERTY STRINGS default release_with_logs release)
add_library(e2micro_tflm STATIC ${_framework} ${_kernel_srcs} ${_nn_srcs})
target_include_directories(e2micro_tflm SYSTEM PUBLIC ${TFLM_DIR} ${TFLM_DOWNLOADS}/flatbuffers/include
  ${TFLM_DOWNLOADS}/gemmlowp ${TFLM_DOWNLOADS}/ruy ${TFLM_DOWNLOADS}/cmsis ${TFLM_DOWNLOADS}/cmsis/CMSIS/Core/Include
  ${TFLM_DOWNLOADS}/cmsis/Cortex_DFP/Device/ARMC${_core}/Include ${_nn} ${_nn}/Include)
target_compile_definitions(e2micro_tflm PUBLIC TF_LITE_STATIC_MEMORY TF_LITE_DISABLE_X86_NEON TF_LITE_MCU_DEBUG_LOG
  KERNELS_OPTIMIZED_FOR_SPEED CPU_${_core}=1 ARMC${_core} CMSIS_DEVICE_ARM_CORTEX_M_XX_HEADER_FILE="ARMC${_core}.h"
  CORTEX_M_GENERIC ${_nn_defs}
  $<$<STREQUAL:${_core},M55>:ARM_MODEL_USE_PMU_COUNTERS>
  $<$<NOT:$<STREQUAL:${TFLM_BUILD_TYPE},default>>:NDEBUG>
  $<$<STREQUAL:${TFLM_BUILD_TYPE},release>:TF_LITE_STRIP_ERROR_STRINGS>)
# TFLM's CORE_OPTIMIZATION_LEVEL -Os for the framework, KERNEL_OPTIMIZATION_LEVEL -O2 for kernels.
target_compile_options(e2micro_tflm PRIVATE -fno-unwind-tables -fno-asynchronous-unwind-tables -fmessage-length=0
  -fomit-frame-pointer -w)
set_source_files_properties(${_framework} PROPERTIES COMPILE_OPTIONS -Os)
set_source_files_properties(${_kernel_srcs} ${_nn_srcs} PROPERTIES COMPILE_OPTIONS -O2)
list(LENGTH _framework _nf)
list(LENGTH _kernel_srcs _nk)
list(LENGTH _nn_srcs _nc)
if(E2MICRO_TFLM_KERNELS STREQUAL reference)
  set(_kdesc "reference kernels")
else()
  set(_kdesc CMSIS-NN)
endif()
message(STATUS "e2micro: TFLM library for ${E2MICRO_CPU} (${TFLM_BUILD_TYPE}, ${_kdesc}; kernels "
               "${E2MICRO_TFLM_OPS}): ${_nf} framework + ${_nk} kernel + ${_nc} CMSIS-NN sources")
