// Procedural meshes: shapes the tests, benchmarks and (later) the tiny world build from code.
#pragma once

#include "worker/mesh/mesh.h"

namespace psd3d {

// The unit latitude-longitude sphere: a vertex at each pole (+y first, −y last) and `rings` − 1 rings
// of `segments` vertices (azimuth 0 on +z, growing toward +x), shared between faces, so the mesh is
// closed; faces CCW seen from outside; 2·segments·(rings − 1) faces. rings ≥ 2, segments ≥ 3.
Mesh LatLongSphere(int64_t rings, int64_t segments);

}  // namespace psd3d
