#include "worker/formats/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "worker/formats/json_lite.h"

namespace psd3d {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; so must the host be");

struct Dtype {
  const char* name;
  at::ScalarType type;
  uint64_t size;
  int rank;  // position in the Python library's dtype enum; it lays tensors out by decreasing rank
};

constexpr Dtype kDtypes[] = {
    {"I64", at::kLong, 8, 9},  {"F64", at::kDouble, 8, 8},    {"F32", at::kFloat, 4, 7}, {"I32", at::kInt, 4, 6},
    {"BF16", at::kBFloat16, 2, 5}, {"F16", at::kHalf, 2, 4}, {"I16", at::kShort, 2, 3}, {"I8", at::kChar, 1, 2},
    {"U8", at::kByte, 1, 1},   {"BOOL", at::kBool, 1, 0},
};

const Dtype* DtypeByName(absl::string_view name) {
  for (const Dtype& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const Dtype* DtypeByType(at::ScalarType type) {
  for (const Dtype& d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

constexpr absl::string_view kMetadataKey = "__metadata__";
constexpr uint64_t kMaxHeaderBytes = 100000000;  // the Python library's limit

// One tensor's header entry, validated.
struct Entry {
  std::string name;
  const Dtype* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset
  std::map<std::string, std::string> metadata;
};

std::string Quoted(absl::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

absl::Status Invalid(absl::string_view tensor, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor ", Quoted(tensor), ": ", what));
}

absl::Status ParseMetadata(const JsonValue& value, std::map<std::string, std::string>* out) {
  if (!value.is_object()) return absl::InvalidArgumentError("safetensors: __metadata__ must be an object");
  for (size_t i = 0; i < value.keys().size(); ++i) {
    const JsonValue& v = value.items()[i];
    if (!v.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: __metadata__ value of ", Quoted(value.keys()[i]), " must be a string"));
    }
    (*out)[value.keys()[i]] = v.text();
  }
  return absl::OkStatus();
}

// Product of the dims times the element size, or nullopt on overflow.
std::optional<uint64_t> ByteSize(const std::vector<int64_t>& shape, uint64_t element_size) {
  uint64_t n = element_size;
  for (int64_t d : shape) {
    const uint64_t u = static_cast<uint64_t>(d);
    if (u != 0 && n > std::numeric_limits<uint64_t>::max() / u) return std::nullopt;
    n *= u;
  }
  return n;
}

absl::Status ParseEntry(const std::string& name, const JsonValue& value, uint64_t data_size, Entry* e) {
  e->name = name;
  if (name.empty()) return Invalid(name, "empty tensor name");
  if (!value.is_object()) return Invalid(name, "entry must be an object");
  for (const std::string& key : value.keys()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") return Invalid(name, absl::StrCat("unknown field ", Quoted(key)));
  }
  const JsonValue* dtype = value.Find("dtype");
  const JsonValue* shape = value.Find("shape");
  const JsonValue* offsets = value.Find("data_offsets");
  if (dtype == nullptr || shape == nullptr || offsets == nullptr) {
    return Invalid(name, "entry needs dtype, shape and data_offsets");
  }
  if (!dtype->is_string()) return Invalid(name, "dtype must be a string");
  e->dtype = DtypeByName(dtype->text());
  if (e->dtype == nullptr) return Invalid(name, absl::StrCat("unsupported dtype ", Quoted(dtype->text())));
  if (!shape->is_array()) return Invalid(name, "shape must be an array");
  for (const JsonValue& d : shape->items()) {
    std::optional<uint64_t> v = d.AsUint64();
    if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(name, "shape entries must be non-negative integers");
    }
    e->shape.push_back(static_cast<int64_t>(*v));
  }
  if (!offsets->is_array() || offsets->items().size() != 2) return Invalid(name, "data_offsets must be [begin, end]");
  std::optional<uint64_t> begin = offsets->items()[0].AsUint64(), end = offsets->items()[1].AsUint64();
  if (!begin || !end) return Invalid(name, "data_offsets must be non-negative integers");
  if (*begin > *end) return Invalid(name, absl::StrCat("data_offsets [", *begin, ", ", *end, "] end before they begin"));
  e->begin = *begin;
  e->end = *end;
  std::optional<uint64_t> bytes = ByteSize(e->shape, e->dtype->size);
  if (!bytes || *bytes != e->end - e->begin) {
    return Invalid(name, absl::StrCat("shape [", absl::StrJoin(e->shape, ","), "] of ", e->dtype->name, " needs ",
                                      bytes ? absl::StrCat(*bytes) : "too many", " bytes but data_offsets span ",
                                      e->end - e->begin));
  }
  if (e->end > data_size) {
    return absl::DataLossError(absl::StrCat("safetensors: tensor ", Quoted(name), ": data_offsets end ", e->end,
                                            " is past the end of the data (", data_size, " bytes); truncated file?"));
  }
  return absl::OkStatus();
}

// The entries must tile the data buffer exactly: no gaps, no overlaps, nothing after the last one.
absl::Status CheckLayout(std::vector<Entry>* entries, uint64_t data_size) {
  std::sort(entries->begin(), entries->end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const std::string* previous = nullptr;
  for (const Entry& e : *entries) {
    if (e.begin != expected) {
      const std::string after = previous ? absl::StrCat(" after tensor ", Quoted(*previous)) : "";
      return Invalid(e.name, absl::StrCat("data starts at ", e.begin, " but the previous data ends at ", expected, after,
                                          e.begin < expected ? " (overlap)" : " (gap)"));
    }
    expected = e.end;
    previous = &e.name;
  }
  if (expected != data_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors: ", data_size - expected, " bytes of data after the last tensor"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Header> ParseHeader(absl::string_view json, uint64_t data_size) {
  if (json.empty() || json[0] != '{') return absl::InvalidArgumentError("safetensors: header must be a JSON object");
  absl::StatusOr<JsonValue> root = ParseJson(json);
  if (!root.ok()) return absl::InvalidArgumentError(absl::StrCat("safetensors header: ", root.status().message()));
  Header header;
  for (size_t i = 0; i < root->keys().size(); ++i) {
    const std::string& key = root->keys()[i];
    if (key == kMetadataKey) {
      if (auto st = ParseMetadata(root->items()[i], &header.metadata); !st.ok()) return st;
      continue;
    }
    Entry entry;
    if (auto st = ParseEntry(key, root->items()[i], data_size, &entry); !st.ok()) return st;
    header.entries.push_back(std::move(entry));
  }
  if (auto st = CheckLayout(&header.entries, data_size); !st.ok()) return st;
  return header;
}

// Reads the 8-byte length prefix and checks it against the total size.
absl::StatusOr<uint64_t> HeaderLength(absl::string_view prefix, uint64_t total_size) {
  if (total_size < 8) {
    return absl::DataLossError(absl::StrCat("safetensors: file of ", total_size, " bytes has no 8-byte header length"));
  }
  uint64_t n = 0;
  std::memcpy(&n, prefix.data(), 8);
  if (n > kMaxHeaderBytes) return absl::InvalidArgumentError(absl::StrCat("safetensors: header length ", n, " is too large"));
  if (n > total_size - 8) {
    return absl::DataLossError(absl::StrCat("safetensors: header of ", n, " bytes but only ", total_size - 8,
                                            " bytes follow the length; truncated file?"));
  }
  return n;
}

// A bool tensor holding other bytes than 0/1 is undefined behaviour in ATen: reject it.
absl::Status CheckBoolBytes(const Entry& e, const void* data) {
  if (e.dtype->type != at::kBool) return absl::OkStatus();
  const auto* b = static_cast<const uint8_t*>(data);
  for (uint64_t i = 0; i < e.end - e.begin; ++i) {
    if (b[i] > 1) return Invalid(e.name, absl::StrCat("BOOL byte ", i, " is ", int{b[i]}, ", not 0 or 1"));
  }
  return absl::OkStatus();
}

at::Tensor EmptyFor(const Entry& e) { return at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type)); }

absl::Status WithPath(const std::string& path, const absl::Status& st) {
  return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
}

// A tensor ready to write: its bytes live in `data` (a contiguous CPU tensor kept alive by the plan).
struct Planned {
  std::string name;
  const Dtype* dtype;
  at::Tensor data;
  absl::string_view bytes() const {
    return absl::string_view(static_cast<const char*>(data.data_ptr()), data.numel() * dtype->size);
  }
};

struct Plan {
  std::string prefix;  // length + padded JSON header
  std::vector<Planned> tensors;
};

absl::StatusOr<Plan> MakePlan(const std::map<std::string, at::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  Plan plan;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) return absl::InvalidArgumentError("safetensors: empty tensor name");
    if (name == kMetadataKey) return absl::InvalidArgumentError("safetensors: \"__metadata__\" is reserved");
    if (!IsValidUtf8(name)) return absl::InvalidArgumentError("safetensors: tensor name is not valid UTF-8");
    if (!t.defined()) return Invalid(name, "undefined tensor");
    const Dtype* dtype = DtypeByType(t.scalar_type());
    if (dtype == nullptr) return Invalid(name, absl::StrCat("unsupported dtype ", t.scalar_type()));
    plan.tensors.push_back({name, dtype, t.detach().cpu().contiguous()});
  }
  for (const auto& [k, v] : metadata) {
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return absl::InvalidArgumentError("safetensors: metadata keys and values must be valid UTF-8");
    }
  }
  // The Python library's order: decreasing dtype rank, then name. Element sizes never grow along it, so
  // each tensor starts at a multiple of its element size. (Names are already sorted by the std::map.)
  std::stable_sort(plan.tensors.begin(), plan.tensors.end(),
                   [](const Planned& a, const Planned& b) { return a.dtype->rank > b.dtype->rank; });

  JsonValue header = JsonValue::Object();
  if (!metadata.empty()) {
    JsonValue& meta = header.Set(std::string(kMetadataKey), JsonValue::Object());
    for (const auto& [k, v] : metadata) meta.Set(k, JsonValue::String(v));
  }
  uint64_t offset = 0;
  for (const Planned& p : plan.tensors) {
    JsonValue entry = JsonValue::Object();
    entry.Set("dtype", JsonValue::String(p.dtype->name));
    JsonValue& shape = entry.Set("shape", JsonValue::Array());
    for (int64_t d : p.data.sizes()) shape.Push(JsonValue::Int(d));
    JsonValue& offsets = entry.Set("data_offsets", JsonValue::Array());
    offsets.Push(JsonValue::Uint(offset));
    offset += p.bytes().size();
    offsets.Push(JsonValue::Uint(offset));
    header.Set(p.name, std::move(entry));
  }
  std::string json = header.Dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  const uint64_t n = json.size();
  plan.prefix.resize(8);
  std::memcpy(&plan.prefix[0], &n, 8);
  plan.prefix += json;
  return plan;
}

}  // namespace

absl::StatusOr<std::string> SerializeSafetensors(const std::map<std::string, at::Tensor>& tensors,
                                                 const std::map<std::string, std::string>& metadata) {
  absl::StatusOr<Plan> plan = MakePlan(tensors, metadata);
  if (!plan.ok()) return plan.status();
  std::string out = std::move(plan->prefix);
  for (const Planned& p : plan->tensors) out.append(p.bytes().data(), p.bytes().size());
  return out;
}

absl::Status WriteSafetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  absl::StatusOr<Plan> plan = MakePlan(tensors, metadata);
  if (!plan.ok()) return WithPath(path, plan.status());
  std::vector<absl::string_view> pieces = {plan->prefix};
  for (const Planned& p : plan->tensors) pieces.push_back(p.bytes());
  return WriteFileAtomically(path, pieces);
}

absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes) {
  absl::StatusOr<uint64_t> n = HeaderLength(bytes, bytes.size());
  if (!n.ok()) return n.status();
  const uint64_t data_start = 8 + *n;
  absl::StatusOr<Header> header = ParseHeader(bytes.substr(8, *n), bytes.size() - data_start);
  if (!header.ok()) return header.status();
  SafetensorsFile file;
  file.metadata = std::move(header->metadata);
  for (const Entry& e : header->entries) {
    const char* src = bytes.data() + data_start + e.begin;
    if (auto s = CheckBoolBytes(e, src); !s.ok()) return s;
    at::Tensor t = EmptyFor(e);
    if (e.end > e.begin) std::memcpy(t.data_ptr(), src, e.end - e.begin);
    file.tensors.emplace(e.name, std::move(t));
  }
  return file;
}

namespace {

// Reads exactly `size` bytes at `offset`; DATA_LOSS if the file ends first.
absl::Status PreadAll(int fd, char* out, uint64_t size, uint64_t offset, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat(path, ": read: ", std::strerror(errno)));
    }
    if (n == 0) return absl::DataLossError(absl::StrCat(path, ": file ended early (changed while reading?)"));
    out += n;
    size -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string msg = absl::StrCat(path, ": open: ", std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  FdCloser closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat(path, ": fstat: ", std::strerror(errno)));
  const uint64_t total = static_cast<uint64_t>(st.st_size);

  char prefix[8] = {0};
  if (total >= 8) {
    if (auto s = PreadAll(fd, prefix, 8, 0, path); !s.ok()) return s;
  }
  absl::StatusOr<uint64_t> n = HeaderLength(absl::string_view(prefix, 8), total);
  if (!n.ok()) return WithPath(path, n.status());
  std::string json(*n, '\0');
  if (auto s = PreadAll(fd, json.data(), *n, 8, path); !s.ok()) return s;
  const uint64_t data_start = 8 + *n;
  absl::StatusOr<Header> header = ParseHeader(json, total - data_start);
  if (!header.ok()) return WithPath(path, header.status());

  SafetensorsFile file;
  file.metadata = std::move(header->metadata);
  for (const Entry& e : header->entries) {
    at::Tensor t = EmptyFor(e);
    const uint64_t size = e.end - e.begin;
    if (size > 0) {
      if (auto s = PreadAll(fd, static_cast<char*>(t.data_ptr()), size, data_start + e.begin, path); !s.ok()) return s;
    }
    if (auto s = CheckBoolBytes(e, t.data_ptr()); !s.ok()) return WithPath(path, s);
    file.tensors.emplace(e.name, std::move(t));
  }
  return file;
}

}  // namespace psd3d
