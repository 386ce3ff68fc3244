// The tiny model pack on disk (models/tiny/): one safetensors file per model and manifest.json, which
// records for each model its architecture, vocabulary, noise schedule, training run (steps, seeds,
// time) and metrics. Loaders read only what the manifest names.
//
// manifest.json: {"format": "psd3d-pack/1", "name": "tiny", "models": {"<key>": {"weights":
// "<file>.safetensors", "architecture": {...}, "training": {...}, "metrics": {...}, ...}}}; keys:
// "prior", "reward", "reward_eval".
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/formats/json_lite.h"

namespace psd3d::tinyworld {

inline constexpr char kPackFormat[] = "psd3d-pack/1";

// The default pack shipped in the repository (models/tiny under the source tree), or $PSD3D_PACK_DIR.
std::string DefaultPackDir();

// The manifest; NOT_FOUND without one, INVALID_ARGUMENT if it is not a psd3d-pack/1 manifest.
absl::StatusOr<JsonValue> ReadManifest(const std::string& pack_dir);
// models[key] of the manifest; NOT_FOUND naming the key and the pack when absent.
absl::StatusOr<JsonValue> ReadModelEntry(const std::string& pack_dir, const std::string& key);
// Replaces (or adds) models[key] and rewrites the manifest atomically, creating it (and the folder) if
// needed. Other models' entries are kept as they are.
absl::Status WriteModelEntry(const std::string& pack_dir, const std::string& key, const JsonValue& entry);

// Small accessors for manifest objects: INVALID_ARGUMENT naming the key when missing or mistyped.
absl::StatusOr<int64_t> JsonInt(const JsonValue& object, const std::string& key);
absl::StatusOr<double> JsonDouble(const JsonValue& object, const std::string& key);
absl::StatusOr<std::string> JsonString(const JsonValue& object, const std::string& key);

}  // namespace psd3d::tinyworld
