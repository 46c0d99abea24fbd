# capsa_flatbuffers(<target> SCHEMAS a.fbs b.fbs ... [INCLUDE_DIRS dir ...])
#
# Compiles flatbuffers schemas at build time with the system flatc:
#   - <name>_generated.h       C++ accessors and builders (--gen-object-api off)
#   - <name>.bfbs              binary schema (with attributes), for reflection
#   - <name>_bfbs.cc           that binary schema embedded as a byte array, with
#                              `capsa::schemas::<name>_bfbs()` returning a span
# and adds them to <target>, an INTERFACE-free static library the caller
# links. Nothing is downloaded or vendored: flatc comes from Debian.
function(capsa_flatbuffers target)
  cmake_parse_arguments(ARG "" "" "SCHEMAS;INCLUDE_DIRS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/generated/${target})
  file(MAKE_DIRECTORY ${out_dir})
  set(include_flags)
  foreach(dir ${ARG_INCLUDE_DIRS})
    list(APPEND include_flags -I ${dir})
  endforeach()
  set(outputs)
  set(sources)
  foreach(schema ${ARG_SCHEMAS})
    get_filename_component(abs ${schema} ABSOLUTE)
    get_filename_component(name ${schema} NAME_WE)
    set(header ${out_dir}/${name}_generated.h)
    set(bfbs ${out_dir}/${name}.bfbs)
    set(embed ${out_dir}/${name}_bfbs.cc)
    add_custom_command(
      OUTPUT ${header} ${bfbs}
      COMMAND flatbuffers::flatc --cpp --scoped-enums --reflect-names
              ${include_flags} -o ${out_dir} ${abs}
      COMMAND flatbuffers::flatc --binary --schema --bfbs-builtins
              ${include_flags} -o ${out_dir} ${abs}
      DEPENDS ${abs} flatbuffers::flatc
      COMMENT "flatc ${name}.fbs"
      VERBATIM)
    add_custom_command(
      OUTPUT ${embed}
      COMMAND ${CMAKE_COMMAND} -DIN=${bfbs} -DOUT=${embed} -DNAME=${name}
              -P ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
      DEPENDS ${bfbs} ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
      COMMENT "embed ${name}.bfbs"
      VERBATIM)
    list(APPEND outputs ${header} ${bfbs})
    list(APPEND sources ${embed})
  endforeach()
  add_library(${target} STATIC ${sources} ${outputs})
  target_include_directories(${target} SYSTEM PUBLIC ${out_dir})
  target_link_libraries(${target} PUBLIC flatbuffers::flatbuffers_shared)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
