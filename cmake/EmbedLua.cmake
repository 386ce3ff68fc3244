# psd3d_embed_lua(<out.cc> <prelude.lua> <scripts...>): each script becomes a constant string holding the
# prelude followed by the script, so Redis runs one self-contained chunk per EVALSHA.
function(psd3d_embed_lua out prelude)
  set(deps ${prelude} ${ARGN} ${CMAKE_SOURCE_DIR}/cmake/embed_lua.cmake)
  string(REPLACE ";" "|" scripts "${ARGN}")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DPRELUDE=${prelude} -DSCRIPTS=${scripts}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_lua.cmake
    DEPENDS ${deps}
    COMMENT "Embedding Lua scripts"
    VERBATIM)
endfunction()
