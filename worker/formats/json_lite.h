// A small strict JSON (RFC 8259) value, parser and compact writer for the file formats' headers
// (safetensors, GLB). Self-written so the engine needs no JSON package on the GPU machine.
//
// Strict means: one value, optional surrounding whitespace, no comments or trailing commas, no NaN,
// strings must be valid UTF-8 without raw control characters, and duplicate object keys are an error
// (formats like safetensors give meaning to keys, so a duplicate is corrupt data, not "last wins").
// Numbers keep their source text, so integers up to 2^64-1 are read exactly (AsUint64).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psd3d {

class JsonParser;

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;  // null
  static JsonValue Bool(bool b);
  static JsonValue Int(int64_t v);
  static JsonValue Uint(uint64_t v);
  // Shortest text that reads back as exactly `v`; `v` must be finite (JSON has no NaN/Inf).
  static JsonValue Double(double v);
  static JsonValue String(std::string s);
  static JsonValue Array();
  static JsonValue Object();

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool bool_value() const { return bool_; }
  // The string's value for strings, the number's source text for numbers.
  const std::string& text() const { return text_; }
  // A number written as a plain non-negative integer (no sign, fraction or exponent) that fits.
  std::optional<uint64_t> AsUint64() const;
  std::optional<double> AsDouble() const;

  // Arrays.
  const std::vector<JsonValue>& items() const { return items_; }
  JsonValue& Push(JsonValue v);

  // Objects keep insertion order. keys()[i] belongs to items()[i].
  const std::vector<std::string>& keys() const { return keys_; }
  const JsonValue* Find(absl::string_view key) const;
  // Appends a member (the writer never merges keys; callers set each key once). The returned reference,
  // like Push's, is valid until the next Set/Push on this value.
  JsonValue& Set(std::string key, JsonValue v);

  // Compact serialisation (no whitespace), strings escaped as JSON requires.
  std::string Dump() const;
  void DumpTo(std::string* out) const;
  // Indented by `indent` spaces per level, one member or item per line (for files people read, such as
  // pack manifests); arrays of numbers stay on one line.
  std::string DumpPretty(int indent = 2) const;

 private:
  friend class JsonParser;

  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<std::string> keys_;
  std::vector<JsonValue> items_;
};

// Parses exactly one JSON value from `text`. Errors are INVALID_ARGUMENT naming the byte offset and the
// problem. Nesting deeper than `max_depth` is rejected so hostile input cannot exhaust the stack.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text, int max_depth = 64);

// `s` as a quoted JSON string literal appended to `out`.
void AppendJsonString(absl::string_view s, std::string* out);

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool IsValidUtf8(absl::string_view s);

}  // namespace psd3d
