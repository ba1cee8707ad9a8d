# cmake --install: CLI, libraries, public headers, a CMake package (find_package(attnviz)) and a pkg-config file.
include(CMakePackageConfigHelpers)

install(TARGETS attnviz_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS attnviz attnviz_static EXPORT attnvizTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
file(GLOB AV_PUBLIC_HEADERS ${CMAKE_SOURCE_DIR}/include/*.h)
install(FILES ${AV_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(AV_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/attnviz)
install(EXPORT attnvizTargets NAMESPACE attnviz:: DESTINATION ${AV_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/attnvizConfig.cmake.in
  ${CMAKE_BINARY_DIR}/attnvizConfig.cmake INSTALL_DESTINATION ${AV_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/attnvizConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/attnvizConfig.cmake ${CMAKE_BINARY_DIR}/attnvizConfigVersion.cmake
  DESTINATION ${AV_CMAKE_DIR})

if(AV_CUDA)
  set(AV_PC_CUDA_LIBS "-L${CUDAToolkit_LIBRARY_DIR} -lcudart")
  set(AV_PC_CUDA_PRIVATE "-lstdc++ -ldl")
  set(AV_PC_CUDA_CFLAGS "-I${CUDAToolkit_INCLUDE_DIRS}")
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/attnviz.pc.in ${CMAKE_BINARY_DIR}/attnviz.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/attnviz.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
