// glTF 2.0 enum values and the GLB container's magic numbers, shared by the GLB writer (glb.h) and
// reader (glb_reader.h). Internal to worker/formats.
#pragma once

#include <cstdint>

namespace psd3d::gltf {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GLB is little-endian; so must the host be");

inline constexpr uint32_t kGlbMagic = 0x46546C67;  // "glTF"
inline constexpr uint32_t kChunkJson = 0x4E4F534A;
inline constexpr uint32_t kChunkBin = 0x004E4942;
inline constexpr int kArrayBuffer = 34962;
inline constexpr int kElementArrayBuffer = 34963;
inline constexpr int kComponentU8 = 5121;
inline constexpr int kComponentU16 = 5123;
inline constexpr int kComponentU32 = 5125;
inline constexpr int kComponentF32 = 5126;
inline constexpr int kModeTriangles = 4;

}  // namespace psd3d::gltf
