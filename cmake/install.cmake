# `cmake --install` (and the Debian package built from it by CPack, cmake/packaging.cmake):
#   bin/edgellm
#   lib/<multiarch>/libedgellm.so.0 (+ .so link), librkllmrt.so (the vendor's unversioned name, so RKLLM
#     applications link and load unchanged)
#   include/edgellm/edgellm.h, include/rkllm.h
#   lib/<multiarch>/pkgconfig/edgellm.pc, rkllmrt.pc
#   lib/<multiarch>/cmake/edgellm/: find_package(edgellm) -> edgellm::edgellm, edgellm::rkllmrt
#   share/man/man1/edgellm.1.gz, share/doc/edgellm/ (README, docs, the RKLLM example's source)
#   lib/systemd/system/edgellm.service
# The Debian package is built with CMAKE_INSTALL_PREFIX=/usr (scripts/package.sh); a source install can go
# anywhere (cmake --install build --prefix ~/.local).
# Included from the top-level CMakeLists.txt after the targets exist.
# GNUInstallDirs picks Debian's multiarch lib/<triplet> under /usr only for native builds; a cross build for
# arm64 (cmake/aarch64-linux-gnu.cmake) needs lib/aarch64-linux-gnu as much.
if(CMAKE_CROSSCOMPILING AND CMAKE_LIBRARY_ARCHITECTURE AND CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$"
   AND EXISTS /etc/debian_version AND NOT DEFINED CACHE{CMAKE_INSTALL_LIBDIR})
  set(CMAKE_INSTALL_LIBDIR lib/${CMAKE_LIBRARY_ARCHITECTURE} CACHE PATH "Object code libraries (lib)")
endif()
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(edgellm_shared PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  EXPORT_NAME edgellm)
set_target_properties(rkllmrt PROPERTIES EXPORT_NAME rkllmrt)

install(TARGETS edgellm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS edgellm_shared rkllmrt EXPORT edgellmTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/edgellm/edgellm.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/edgellm)
install(FILES ${PROJECT_SOURCE_DIR}/include/rkllm.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# pkg-config: `pkg-config --cflags --libs edgellm` / `rkllmrt`.
foreach(pc edgellm rkllmrt)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/package/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()

# find_package(edgellm CONFIG): imported targets edgellm::edgellm (libedgellm.so) and edgellm::rkllmrt.
set(EDGELLM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/edgellm)
install(EXPORT edgellmTargets NAMESPACE edgellm:: DESTINATION ${EDGELLM_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/package/edgellmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/edgellmConfig.cmake INSTALL_DESTINATION ${EDGELLM_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/edgellmConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/edgellmConfig.cmake ${PROJECT_BINARY_DIR}/edgellmConfigVersion.cmake
  DESTINATION ${EDGELLM_CMAKE_DIR})

# The manual page and the Debian changelog, compressed as Debian installs them (gzip -n: no timestamp, so
# the package is reproducible).
set(EDGELLM_COMPRESSED_DOCS "")
foreach(pair "docs/man/edgellm.1|edgellm.1.gz" "cmake/package/changelog.Debian|changelog.Debian.gz")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 src)
  list(GET pair 1 out)
  add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/${out}
    COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/${src} > ${PROJECT_BINARY_DIR}/${out}
    DEPENDS ${PROJECT_SOURCE_DIR}/${src} VERBATIM)
  list(APPEND EDGELLM_COMPRESSED_DOCS ${PROJECT_BINARY_DIR}/${out})
endforeach()
add_custom_target(edgellm_compressed_docs ALL DEPENDS ${EDGELLM_COMPRESSED_DOCS})
install(FILES ${PROJECT_BINARY_DIR}/edgellm.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_BINARY_DIR}/changelog.Debian.gz ${PROJECT_SOURCE_DIR}/cmake/package/copyright
  ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md"
  PATTERN man EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/examples/rkllm_chat/rkllm_chat.cpp DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/prometheus.yml ${PROJECT_SOURCE_DIR}/deploy/grafana-dashboard.json
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/deploy)

# `edgellm serve` as a service, installed disabled (it needs a model first; docs/serving.md). Its options are
# in the unit and may be replaced in /etc/default/edgellm or with `systemctl edit edgellm`.
configure_file(${PROJECT_SOURCE_DIR}/deploy/systemd/edgellm.service.in ${PROJECT_BINARY_DIR}/edgellm.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/edgellm.service DESTINATION lib/systemd/system)
