# cmake -DIN=file -DOUT=file.cc -DNAME=ident -P EmbedFile.cmake
# Writes a C++ source that defines capsa::schemas::<NAME>_bfbs(), the bytes of
# IN as a span. Used to embed binary schemas so that the validator needs no
# file at run time (a sandboxed worker cannot open one anyway).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT}.tmp
"// Generated from ${NAME}.bfbs by cmake/EmbedFile.cmake. Do not edit.
#include <cstddef>
#include <cstdint>
#include <span>
namespace capsa::schemas {
alignas(8) static const std::uint8_t k${NAME}[${size}] = {
${bytes}
};
std::span<const std::uint8_t> ${NAME}_bfbs() { return {k${NAME}, ${size}}; }
}  // namespace capsa::schemas
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
