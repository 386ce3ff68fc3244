#include "worker/tinyworld/pack.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace psd3d::tinyworld {
namespace {

std::string ManifestPath(const std::string& dir) { return (std::filesystem::path(dir) / "manifest.json").string(); }

JsonValue EmptyManifest() {
  JsonValue m = JsonValue::Object();
  m.Set("format", JsonValue::String(kPackFormat));
  m.Set("name", JsonValue::String("tiny"));
  m.Set("models", JsonValue::Object());
  return m;
}

}  // namespace

std::string DefaultPackDir() {
  if (const char* env = std::getenv("PSD3D_PACK_DIR"); env != nullptr && *env != '\0') return env;
  return std::string(PSD3D_SOURCE_DIR) + "/models/tiny";
}

absl::StatusOr<JsonValue> ReadManifest(const std::string& pack_dir) {
  const std::string path = ManifestPath(pack_dir);
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<JsonValue> json = ParseJson(*text);
  if (!json.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", json.status().message()));
  const JsonValue* format = json->Find("format");
  if (format == nullptr || !format->is_string() || format->text() != kPackFormat)
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a ", kPackFormat, " manifest"));
  const JsonValue* models = json->Find("models");
  if (models == nullptr || !models->is_object())
    return absl::InvalidArgumentError(absl::StrCat(path, ": \"models\" must be an object"));
  return json;
}

absl::StatusOr<JsonValue> ReadModelEntry(const std::string& pack_dir, const std::string& key) {
  absl::StatusOr<JsonValue> m = ReadManifest(pack_dir);
  if (!m.ok()) return m.status();
  const JsonValue* entry = m->Find("models")->Find(key);
  if (entry == nullptr || !entry->is_object())
    return absl::NotFoundError(absl::StrCat("pack ", pack_dir, " has no model '", key, "'"));
  return *entry;
}

absl::Status WriteModelEntry(const std::string& pack_dir, const std::string& key, const JsonValue& entry) {
  std::error_code ec;
  std::filesystem::create_directories(pack_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", pack_dir, ": ", ec.message()));
  JsonValue old = EmptyManifest();
  if (std::filesystem::exists(ManifestPath(pack_dir))) {
    absl::StatusOr<JsonValue> m = ReadManifest(pack_dir);
    if (!m.ok()) return m.status();
    old = *std::move(m);
  }
  // Rebuild with the entry replaced: JsonValue objects append, they never overwrite.
  JsonValue out = JsonValue::Object();
  for (size_t i = 0; i < old.keys().size(); ++i) {
    if (old.keys()[i] != "models") {
      out.Set(old.keys()[i], old.items()[i]);
      continue;
    }
    JsonValue models = JsonValue::Object();
    const JsonValue& prev = old.items()[i];
    bool replaced = false;
    for (size_t j = 0; j < prev.keys().size(); ++j) {
      const bool match = prev.keys()[j] == key;
      models.Set(prev.keys()[j], match ? entry : prev.items()[j]);
      replaced |= match;
    }
    if (!replaced) models.Set(key, entry);
    out.Set("models", std::move(models));
  }
  return WriteFileAtomically(ManifestPath(pack_dir), out.DumpPretty() + "\n");
}

absl::StatusOr<int64_t> JsonInt(const JsonValue& object, const std::string& key) {
  const JsonValue* v = object.Find(key);
  std::optional<double> d = v != nullptr && v->is_number() ? v->AsDouble() : std::nullopt;
  if (!d.has_value() || *d != static_cast<double>(static_cast<int64_t>(*d)))
    return absl::InvalidArgumentError(absl::StrCat("manifest: '", key, "' must be an integer"));
  return static_cast<int64_t>(*d);
}

absl::StatusOr<double> JsonDouble(const JsonValue& object, const std::string& key) {
  const JsonValue* v = object.Find(key);
  std::optional<double> d = v != nullptr && v->is_number() ? v->AsDouble() : std::nullopt;
  if (!d.has_value()) return absl::InvalidArgumentError(absl::StrCat("manifest: '", key, "' must be a number"));
  return *d;
}

absl::StatusOr<std::string> JsonString(const JsonValue& object, const std::string& key) {
  const JsonValue* v = object.Find(key);
  if (v == nullptr || !v->is_string())
    return absl::InvalidArgumentError(absl::StrCat("manifest: '", key, "' must be a string"));
  return v->text();
}

}  // namespace psd3d::tinyworld
