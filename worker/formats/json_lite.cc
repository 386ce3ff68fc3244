#include "worker/formats/json_lite.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "c10/util/Exception.h"

namespace psd3d {

JsonValue JsonValue::Bool(bool b) {
  JsonValue v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}

JsonValue JsonValue::Int(int64_t i) {
  JsonValue v;
  v.type_ = Type::kNumber;
  v.text_ = std::to_string(i);
  return v;
}

JsonValue JsonValue::Uint(uint64_t u) {
  JsonValue v;
  v.type_ = Type::kNumber;
  v.text_ = std::to_string(u);
  return v;
}

JsonValue JsonValue::Double(double d) {
  TORCH_CHECK(std::isfinite(d), "JSON cannot represent ", d);
  JsonValue v;
  v.type_ = Type::kNumber;
  // The shortest %.Ng that reads back as the same double (at most 17 digits always does).
  char buf[40];
  for (int precision = 9; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, d);
    double back = 0;
    if (absl::SimpleAtod(buf, &back) && back == d) break;
  }
  v.text_ = buf;
  return v;
}

JsonValue JsonValue::String(std::string s) {
  JsonValue v;
  v.type_ = Type::kString;
  v.text_ = std::move(s);
  return v;
}

JsonValue JsonValue::Array() {
  JsonValue v;
  v.type_ = Type::kArray;
  return v;
}

JsonValue JsonValue::Object() {
  JsonValue v;
  v.type_ = Type::kObject;
  return v;
}

std::optional<uint64_t> JsonValue::AsUint64() const {
  if (type_ != Type::kNumber || text_.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text_) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<double> JsonValue::AsDouble() const {
  double d = 0;
  if (type_ != Type::kNumber || !absl::SimpleAtod(text_, &d)) return std::nullopt;
  return d;
}

JsonValue& JsonValue::Push(JsonValue v) {
  TORCH_CHECK(type_ == Type::kArray, "JsonValue::Push on a non-array");
  items_.push_back(std::move(v));
  return items_.back();
}

const JsonValue* JsonValue::Find(absl::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return &items_[i];
  }
  return nullptr;
}

JsonValue& JsonValue::Set(std::string key, JsonValue v) {
  TORCH_CHECK(type_ == Type::kObject, "JsonValue::Set on a non-object");
  keys_.push_back(std::move(key));
  items_.push_back(std::move(v));
  return items_.back();
}

std::string JsonValue::Dump() const {
  std::string out;
  DumpTo(&out);
  return out;
}

void JsonValue::DumpTo(std::string* out) const {
  switch (type_) {
    case Type::kNull: out->append("null"); return;
    case Type::kBool: out->append(bool_ ? "true" : "false"); return;
    case Type::kNumber: out->append(text_); return;
    case Type::kString: AppendJsonString(text_, out); return;
    case Type::kArray:
      out->push_back('[');
      for (size_t i = 0; i < items_.size(); ++i) {
        if (i > 0) out->push_back(',');
        items_[i].DumpTo(out);
      }
      out->push_back(']');
      return;
    case Type::kObject:
      out->push_back('{');
      for (size_t i = 0; i < items_.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonString(keys_[i], out);
        out->push_back(':');
        items_[i].DumpTo(out);
      }
      out->push_back('}');
      return;
  }
}

namespace {

void DumpPrettyTo(const JsonValue& v, int indent, int depth, std::string* out) {
  const bool flat = v.items().empty() ||
                    (v.is_array() && std::all_of(v.items().begin(), v.items().end(),
                                                 [](const JsonValue& i) { return !i.is_array() && !i.is_object(); }));
  if ((!v.is_array() && !v.is_object()) || flat) {
    v.DumpTo(out);
    return;
  }
  const std::string pad(static_cast<size_t>(indent) * (depth + 1), ' ');
  out->append(v.is_array() ? "[\n" : "{\n");
  for (size_t i = 0; i < v.items().size(); ++i) {
    out->append(pad);
    if (v.is_object()) {
      AppendJsonString(v.keys()[i], out);
      out->append(": ");
    }
    DumpPrettyTo(v.items()[i], indent, depth + 1, out);
    out->append(i + 1 < v.items().size() ? ",\n" : "\n");
  }
  out->append(static_cast<size_t>(indent) * depth, ' ');
  out->push_back(v.is_array() ? ']' : '}');
}

}  // namespace

std::string JsonValue::DumpPretty(int indent) const {
  std::string out;
  DumpPrettyTo(*this, indent, 0, &out);
  return out;
}

void AppendJsonString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead (C0/C1) or > F4
    }
    if (n - i < static_cast<size_t>(len)) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return false;  // overlong/range
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;                                                 // surrogates
    i += len;
  }
  return true;
}

// A recursive-descent parser over the whole text; a friend of JsonValue so numbers keep their text.
class JsonParser {
 public:
  JsonParser(absl::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

  absl::Status ParseDocument(JsonValue* out) {
    if (!IsValidUtf8(s_)) return absl::InvalidArgumentError("JSON: text is not valid UTF-8");
    SkipWhitespace();
    if (auto st = ParseValue(out, 0); !st.ok()) return st;
    SkipWhitespace();
    if (pos_ != s_.size()) return Error("unexpected text after the value");
    return absl::OkStatus();
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON at byte ", pos_, ": ", what));
  }

  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return s_[pos_]; }

  void SkipWhitespace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) ++pos_;
  }

  absl::Status ParseValue(JsonValue* out, int depth) {
    if (AtEnd()) return Error("unexpected end of text");
    switch (Peek()) {
      case '{': return ParseObject(out, depth + 1);
      case '[': return ParseArray(out, depth + 1);
      case '"': {
        std::string s;
        if (auto st = ParseString(&s); !st.ok()) return st;
        *out = JsonValue::String(std::move(s));
        return absl::OkStatus();
      }
      case 't': return ParseLiteral("true", JsonValue::Bool(true), out);
      case 'f': return ParseLiteral("false", JsonValue::Bool(false), out);
      case 'n': return ParseLiteral("null", JsonValue(), out);
      default: return ParseNumber(out);
    }
  }

  absl::Status ParseLiteral(absl::string_view word, JsonValue value, JsonValue* out) {
    if (s_.substr(pos_, word.size()) != word) return Error("invalid literal");
    pos_ += word.size();
    *out = std::move(value);
    return absl::OkStatus();
  }

  bool ConsumeDigits() {
    const size_t start = pos_;
    while (!AtEnd() && Peek() >= '0' && Peek() <= '9') ++pos_;
    return pos_ > start;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::Status ParseNumber(JsonValue* out) {
    const size_t start = pos_;
    if (!AtEnd() && Peek() == '-') ++pos_;
    if (AtEnd() || Peek() < '0' || Peek() > '9') return Error("expected a value");
    if (Peek() == '0') {
      ++pos_;
      if (!AtEnd() && Peek() >= '0' && Peek() <= '9') return Error("numbers must not have leading zeros");
    } else {
      ConsumeDigits();
    }
    if (!AtEnd() && Peek() == '.') {
      ++pos_;
      if (!ConsumeDigits()) return Error("expected digits after the decimal point");
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (!ConsumeDigits()) return Error("expected digits in the exponent");
    }
    *out = JsonValue();
    out->type_ = JsonValue::Type::kNumber;
    out->text_ = std::string(s_.substr(start, pos_ - start));
    return absl::OkStatus();
  }

  absl::Status ParseHex4(uint32_t* cp) {
    if (s_.size() - pos_ < 4) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return Error("invalid \\u escape");
      }
    }
    *cp = v;
    return absl::OkStatus();
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  absl::Status ParseEscape(std::string* out) {
    if (AtEnd()) return Error("unterminated string");
    const char c = s_[pos_++];
    switch (c) {
      case '"': out->push_back('"'); return absl::OkStatus();
      case '\\': out->push_back('\\'); return absl::OkStatus();
      case '/': out->push_back('/'); return absl::OkStatus();
      case 'b': out->push_back('\b'); return absl::OkStatus();
      case 'f': out->push_back('\f'); return absl::OkStatus();
      case 'n': out->push_back('\n'); return absl::OkStatus();
      case 'r': out->push_back('\r'); return absl::OkStatus();
      case 't': out->push_back('\t'); return absl::OkStatus();
      case 'u': break;
      default: return Error("invalid escape");
    }
    uint32_t cp;
    if (auto st = ParseHex4(&cp); !st.ok()) return st;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (s_.substr(pos_, 2) != "\\u") return Error("high surrogate without its low half");
      pos_ += 2;
      uint32_t low;
      if (auto st = ParseHex4(&low); !st.ok()) return st;
      if (low < 0xDC00 || low > 0xDFFF) return Error("high surrogate without its low half");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(cp, out);
    return absl::OkStatus();
  }

  absl::Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (AtEnd()) return Error("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) return Error("raw control character in string");
      ++pos_;
      if (c == '\\') {
        if (auto st = ParseEscape(out); !st.ok()) return st;
      } else {
        out->push_back(static_cast<char>(c));  // UTF-8 was validated for the whole text
      }
    }
  }

  absl::Status ParseArray(JsonValue* out, int depth) {
    if (depth > max_depth_) return Error("nesting too deep");
    ++pos_;
    *out = JsonValue::Array();
    SkipWhitespace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      JsonValue item;
      if (auto st = ParseValue(&item, depth); !st.ok()) return st;
      out->Push(std::move(item));
      SkipWhitespace();
      if (AtEnd()) return Error("unterminated array");
      const char c = s_[pos_++];
      if (c == ']') return absl::OkStatus();
      if (c != ',') return Error("expected ',' or ']' in array");
    }
  }

  absl::Status ParseObject(JsonValue* out, int depth) {
    if (depth > max_depth_) return Error("nesting too deep");
    ++pos_;
    *out = JsonValue::Object();
    SkipWhitespace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      return absl::OkStatus();
    }
    std::unordered_set<std::string> seen;
    while (true) {
      SkipWhitespace();
      if (AtEnd() || Peek() != '"') return Error("expected a string key in object");
      const size_t key_pos = pos_;
      std::string key;
      if (auto st = ParseString(&key); !st.ok()) return st;
      if (!seen.insert(key).second) {
        return absl::InvalidArgumentError(absl::StrCat("JSON at byte ", key_pos, ": duplicate key \"", key, "\""));
      }
      SkipWhitespace();
      if (AtEnd() || Peek() != ':') return Error("expected ':' after object key");
      ++pos_;
      SkipWhitespace();
      JsonValue value;
      if (auto st = ParseValue(&value, depth); !st.ok()) return st;
      out->Set(std::move(key), std::move(value));
      SkipWhitespace();
      if (AtEnd()) return Error("unterminated object");
      const char c = s_[pos_++];
      if (c == '}') return absl::OkStatus();
      if (c != ',') return Error("expected ',' or '}' in object");
    }
  }

  absl::string_view s_;
  size_t pos_ = 0;
  int max_depth_;
};

absl::StatusOr<JsonValue> ParseJson(absl::string_view text, int max_depth) {
  JsonParser parser(text, max_depth);
  JsonValue value;
  if (auto st = parser.ParseDocument(&value); !st.ok()) return st;
  return value;
}

}  // namespace psd3d
