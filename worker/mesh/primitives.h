// Procedural meshes: shapes the tests, benchmarks and the tiny world (worker/tinyworld) build from code.
#pragma once

#include "worker/mesh/mesh.h"

namespace psd3d {

// The unit latitude-longitude sphere: a vertex at each pole (+y first, −y last) and `rings` − 1 rings
// of `segments` vertices (azimuth 0 on +z, growing toward +x), shared between faces, so the mesh is
// closed; faces CCW seen from outside; 2·segments·(rings − 1) faces. rings ≥ 2, segments ≥ 3.
Mesh LatLongSphere(int64_t rings, int64_t segments);

// The tiny world's six primitives (docs/tiny-world.md): centred near the origin, axis along +y, inside
// the unit sphere (bounding radius 0.9–0.99, sized so that they look about equally large). They are
// render meshes: vertices are duplicated along creases (cube and pyramid edges, cylinder and cone rims,
// the cone's apex), so area-weighted vertex normals (mesh_ops VertexNormals) are flat on flat faces and
// smooth on curved ones. Faces are CCW seen from outside. `segments` is the tessellation around the
// axis (≥ 8).
Mesh CubeMesh();                               // half side 0.56
Mesh SphereMesh(int64_t segments = 48);        // radius 0.9
Mesh CylinderMesh(int64_t segments = 48);      // radius 0.62, y ∈ [−0.72, 0.72]
Mesh ConeMesh(int64_t segments = 48);          // base radius 0.72 at y = −0.62, apex at y = 0.85
Mesh TorusMesh(int64_t segments = 48);         // lying flat: ring radius 0.66, tube radius 0.28
Mesh PyramidMesh();                            // square base half side 0.6 at y = −0.5, apex y = 0.85

}  // namespace psd3d
