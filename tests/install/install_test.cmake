# install_package: installs the build tree into a scratch prefix, then builds and runs
# consumer/main.c against the installed copy twice — through find_package(myriad) and through
# pkg-config — the way a downstream project would.
#
#   cmake -DBUILD_DIR=... -DPREFIX=... -DWORK_DIR=... -DCONSUMER_DIR=... -DLIBDIR=lib
#         -DINCLUDEDIR=include -DC_COMPILER=cc -DGENERATOR=Ninja [-DMAKE_PROGRAM=...]
#         -DPKG_CONFIG=pkg-config [-DSANITIZE=address] -P install_test.cmake
foreach(var BUILD_DIR PREFIX WORK_DIR CONSUMER_DIR LIBDIR INCLUDEDIR C_COMPILER GENERATOR PKG_CONFIG)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run what)
  cmake_parse_arguments(PARSE_ARGV 1 R "" "OUTPUT" "COMMAND")
  execute_process(COMMAND ${R_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    list(JOIN R_COMMAND " " cmd)
    message(FATAL_ERROR "${what} failed (${rc}):\n  ${cmd}\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  if(R_OUTPUT)
    set(${R_OUTPUT} "${out}" PARENT_SCOPE)
  endif()
endfunction()

# A sanitized libmyriad needs a sanitized executable (the sanitizer runtime must come first).
set(san_flags "")
if(SANITIZE)
  set(san_flags "-fsanitize=${SANITIZE}")
endif()

# ---- 1. install ---------------------------------------------------------------------------
file(REMOVE_RECURSE "${PREFIX}" "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
run("cmake --install" COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}")

set(libdir "${PREFIX}/${LIBDIR}")
foreach(f "${PREFIX}/${INCLUDEDIR}/myriad.h" "${libdir}/libmyriad.so"
    "${libdir}/cmake/myriad/myriadConfig.cmake" "${libdir}/cmake/myriad/myriadConfigVersion.cmake"
    "${libdir}/cmake/myriad/myriadTargets.cmake" "${libdir}/pkgconfig/myriad.pc")
  if(NOT EXISTS "${f}")
    file(GLOB_RECURSE installed RELATIVE "${PREFIX}" "${PREFIX}/*")
    list(JOIN installed "\n  " installed)
    message(FATAL_ERROR "not installed: ${f}\ninstalled files:\n  ${installed}")
  endif()
endforeach()
# Only the C ABI is installed: no C++ core headers, no static core library.
file(GLOB_RECURSE stray "${PREFIX}/*.hpp" "${PREFIX}/*.a")
if(stray)
  message(FATAL_ERROR "internal files installed: ${stray}")
endif()
message(STATUS "installed into ${PREFIX} (libdir ${LIBDIR})")

set(ENV{LD_LIBRARY_PATH} "${libdir}")

function(check_consumer label exe)
  run("running the ${label} consumer" COMMAND "${exe}" OUTPUT out)
  if(NOT out MATCHES "^OK myriad [0-9]+\\.[0-9]+\\.[0-9]+ value=42")
    message(FATAL_ERROR "${label} consumer printed unexpected output:\n${out}")
  endif()
  # It must have loaded the installed copy, not the build tree's.
  run("ldd on the ${label} consumer" COMMAND ldd "${exe}" OUTPUT deps)
  string(REGEX MATCH "libmyriad\\.so[^\n]*=> *([^ \n]+)" _ "${deps}")
  set(loaded "${CMAKE_MATCH_1}")
  get_filename_component(loaded_dir "${loaded}" DIRECTORY)
  get_filename_component(loaded_dir "${loaded_dir}" REALPATH)
  get_filename_component(want_dir "${libdir}" REALPATH)
  if(NOT loaded_dir STREQUAL want_dir)
    message(FATAL_ERROR "${label} consumer loads libmyriad from '${loaded}', not from ${libdir}:\n${deps}")
  endif()
  message(STATUS "${label} consumer: ${out}")
endfunction()

# ---- 2. find_package(myriad) ------------------------------------------------------------------
set(gen_args -G "${GENERATOR}")
if(MAKE_PROGRAM)
  list(APPEND gen_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
run("configuring the find_package consumer" COMMAND "${CMAKE_COMMAND}"
  -S "${CONSUMER_DIR}" -B "${WORK_DIR}/cmake-consumer" ${gen_args}
  "-DCMAKE_C_COMPILER=${C_COMPILER}"
  "-DCMAKE_PREFIX_PATH=${PREFIX}"
  "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"
  "-DCMAKE_C_FLAGS=${san_flags}"
  "-DCMAKE_EXE_LINKER_FLAGS=${san_flags}")
run("building the find_package consumer" COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}/cmake-consumer")
file(STRINGS "${WORK_DIR}/cmake-consumer/CMakeCache.txt" found REGEX "^myriad_DIR:")
string(REGEX REPLACE "^myriad_DIR:[A-Z]*=" "" found "${found}")
get_filename_component(found "${found}" REALPATH)
get_filename_component(want "${libdir}/cmake/myriad" REALPATH)
if(NOT found STREQUAL want)
  message(FATAL_ERROR "find_package(myriad) used ${found}, not the installed ${want}")
endif()
check_consumer("find_package" "${WORK_DIR}/cmake-consumer/consumer")

# ---- 3. pkg-config ----------------------------------------------------------------------------
set(ENV{PKG_CONFIG_PATH} "${libdir}/pkgconfig")
run("pkg-config --modversion myriad" COMMAND "${PKG_CONFIG}" --modversion myriad OUTPUT version)
run("pkg-config --cflags --libs myriad" COMMAND "${PKG_CONFIG}" --cflags --libs myriad OUTPUT flags)
string(STRIP "${flags}" flags)
string(STRIP "${version}" version)
message(STATUS "pkg-config: myriad ${version}: ${flags}")
# The flags must point into the prefix the package was installed to (not, say, the prefix the
# build tree was configured with).
# The .pc file is relocatable (its prefix is relative to the .pc file's own folder), so compare
# the directories the flags name after resolving them.
separate_arguments(pc_flag_list UNIX_COMMAND "${flags}")
set(lib_ok FALSE)
set(inc_ok FALSE)
get_filename_component(want_lib "${libdir}" REALPATH)
get_filename_component(want_inc "${PREFIX}/${INCLUDEDIR}" REALPATH)
foreach(f IN LISTS pc_flag_list)
  if(f MATCHES "^-L(.*)$")
    get_filename_component(d "${CMAKE_MATCH_1}" REALPATH)
    if(d STREQUAL want_lib)
      set(lib_ok TRUE)
    endif()
  elseif(f MATCHES "^-I(.*)$")
    get_filename_component(d "${CMAKE_MATCH_1}" REALPATH)
    if(d STREQUAL want_inc)
      set(inc_ok TRUE)
    endif()
  endif()
endforeach()
if(NOT lib_ok)
  message(SEND_ERROR "pkg-config --libs does not point at the installed libdir ${libdir}: ${flags}")
endif()
if(NOT inc_ok)
  message(SEND_ERROR "pkg-config --cflags does not point at ${PREFIX}/${INCLUDEDIR}: ${flags}")
endif()
separate_arguments(flag_list UNIX_COMMAND "${flags}")
separate_arguments(san_list UNIX_COMMAND "${san_flags}")
run("compiling the pkg-config consumer" COMMAND "${C_COMPILER}" -std=c11 -Wall -Wextra -pedantic
  ${san_list} "${CONSUMER_DIR}/main.c" -o "${WORK_DIR}/pkgconfig-consumer" ${flag_list})
check_consumer("pkg-config" "${WORK_DIR}/pkgconfig-consumer")

message(STATUS "install_package: OK")
