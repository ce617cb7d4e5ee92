# CPack pre-build script of the Debian package (cmake/package.cmake): runs on
# the staged tree before it is packed.
set(stage ${CPACK_TEMPORARY_INSTALL_DIRECTORY})
if(NOT IS_DIRECTORY "${stage}/usr")
  message(FATAL_ERROR "deb-stage: no staged /usr under '${stage}'")
endif()
find_program(GZIP gzip REQUIRED)
file(GLOB_RECURSE pages "${stage}/usr/share/man/*.[0-9]")
set(doc "${stage}/usr/share/doc/pt")
file(MAKE_DIRECTORY "${doc}")
file(COPY_FILE "${CPACK_PT_COPYRIGHT}" "${doc}/copyright")
file(COPY_FILE "${CPACK_PT_DEB_DIR}/changelog" "${doc}/changelog")
foreach(f IN LISTS pages ITEMS "${doc}/changelog")
  # -n: no name or timestamp in the header, so the package is reproducible.
  execute_process(COMMAND ${GZIP} -9nf "${f}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "deb-stage: gzip ${f} failed")
  endif()
endforeach()
file(CHMOD_RECURSE "${doc}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
