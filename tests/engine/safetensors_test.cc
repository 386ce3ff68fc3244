// safetensors: round trips of every dtype, the Python library's layout (ordering, padding), strict
// validation of hand-broken headers (each error names its tensor), a fuzz-ish loop over truncations and
// flipped bytes that must never crash, the file written by the Python package (when generated), and
// the strict JSON parser behind the header.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "worker/formats/json_lite.h"
#include "worker/formats/safetensors.h"

namespace psd3d {
namespace {

using ::absl::StatusCode;

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "psd3d_st_" + std::to_string(::getpid()) + "_" + name;
}

// A file from a raw header (padded as given) and data buffer.
std::string RawFile(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(&out[0], &n, 8);
  return out + header + data;
}

std::map<std::string, at::Tensor> AllDtypes() {
  at::Generator g = at::detail::createCPUGenerator(1234);
  std::map<std::string, at::Tensor> t;
  t["f64"] = at::randn({3, 2}, g, at::kDouble);
  t["f32"] = at::randn({5}, g);
  t["f16"] = at::randn({2, 3}, g).to(at::kHalf);
  t["bf16"] = at::randn({7}, g).to(at::kBFloat16);
  t["i64"] = at::randint(-1000000000000LL, 1000000000000LL, {4}, g, at::kLong);
  t["i32"] = at::randint(-100000, 100000, {2, 2}, g, at::kInt);
  t["i16"] = at::randint(-30000, 30000, {3}, g, at::kShort);
  t["i8"] = at::randint(-128, 128, {5}, g, at::kChar);
  t["u8"] = at::randint(0, 256, {1, 1, 3}, g, at::kByte);
  t["bool"] = at::randint(0, 2, {6}, g, at::kLong).to(at::kBool);
  t["scalar"] = at::scalar_tensor(4.5, at::kFloat);
  t["empty"] = at::zeros({0, 4});
  t["strided"] = at::arange(12, at::kFloat).reshape({3, 4}).t();  // non-contiguous view
  return t;
}

void ExpectSameTensors(const std::map<std::string, at::Tensor>& want, const std::map<std::string, at::Tensor>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << name;
    EXPECT_EQ(it->second.scalar_type(), w.scalar_type()) << name;
    EXPECT_EQ(it->second.sizes(), w.sizes()) << name;
    EXPECT_TRUE(it->second.is_contiguous()) << name;
    EXPECT_TRUE(at::equal(it->second, w)) << name;
  }
}

TEST(Safetensors, EveryDtypeRoundTripsInMemoryAndThroughAFile) {
  const auto tensors = AllDtypes();
  const std::map<std::string, std::string> meta = {{"step", "1200"}, {"note", "sch\u00f6n \"quoted\"\n"}};
  absl::StatusOr<std::string> bytes = SerializeSafetensors(tensors, meta);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<SafetensorsFile> parsed = ParseSafetensors(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameTensors(tensors, parsed->tensors);
  EXPECT_EQ(parsed->metadata, meta);

  const std::string path = TempPath("rt.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, meta).ok());
  absl::StatusOr<std::string> on_disk = ReadFileToString(path);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(*on_disk, *bytes);  // the streamed file equals the in-memory serialisation
  absl::StatusOr<SafetensorsFile> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectSameTensors(tensors, read->tensors);
  EXPECT_EQ(read->metadata, meta);
  std::remove(path.c_str());
}

TEST(Safetensors, LayoutFollowsThePythonLibrary) {
  std::map<std::string, at::Tensor> t;
  t["b"] = at::ones({2}, at::kByte);
  t["a"] = at::ones({1}, at::kDouble);
  t["c"] = at::ones({2}, at::kHalf);
  t["d"] = at::ones({1}, at::kLong);  // I64 comes before F64 in the Python library's order
  absl::StatusOr<std::string> bytes = SerializeSafetensors(t, {{"format", "pt"}});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"d":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},"c":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},)"
      R"("b":{"dtype":"U8","shape":[2],"data_offsets":[20,22]}})";
  EXPECT_EQ(bytes->substr(8, n), json + std::string(n - json.size(), ' '));
  EXPECT_EQ(bytes->size(), 8 + n + 22);
}

TEST(Safetensors, WriterRejectsWhatTheFormatCannotHold) {
  auto code = [](std::map<std::string, at::Tensor> t, std::map<std::string, std::string> m = {}) {
    return SerializeSafetensors(t, m).status().code();
  };
  EXPECT_EQ(code({{"x", at::Tensor()}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"x", at::zeros({2}, at::kComplexFloat)}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"__metadata__", at::zeros({2})}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"", at::zeros({2})}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"x", at::zeros({2})}}, {{"k", "\xff"}}), StatusCode::kInvalidArgument);
  EXPECT_TRUE(SerializeSafetensors({}, {}).ok());  // an empty file is valid
  EXPECT_FALSE(WriteSafetensors("/nonexistent-dir/x.safetensors", {{"x", at::zeros({1})}}).ok());
}

TEST(Safetensors, AtomicWriteReplacesAndLeavesNoTemporary) {
  const std::string dir = TempPath("dir");
  ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  const std::string path = dir + "/w.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {{"x", at::zeros({3})}}).ok());
  ASSERT_TRUE(WriteSafetensors(path, {{"y", at::ones({2}, at::kLong)}}).ok());
  absl::StatusOr<SafetensorsFile> f = ReadSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->tensors.count("x"), 0u);
  EXPECT_TRUE(at::equal(f->tensors.at("y"), at::ones({2}, at::kLong)));
  FILE* ls = popen(("ls -A " + dir).c_str(), "r");
  char buf[256] = {0};
  std::string listing;
  while (fgets(buf, sizeof(buf), ls)) listing += buf;
  pclose(ls);
  EXPECT_EQ(listing, "w.safetensors\n");
  std::system(("rm -rf " + dir).c_str());
  EXPECT_EQ(ReadSafetensors(path).status().code(), StatusCode::kNotFound);
}

struct BadCase {
  const char* what;
  std::string file;
  StatusCode code;
  const char* message;  // a substring the error must contain
};

std::vector<BadCase> BadCases() {
  const std::string d8(8, '\0');
  auto one = [](const std::string& entry) { return std::string(R"({"t":)") + entry + "}"; };
  return {
      {"too short for the length", std::string(5, '\0'), StatusCode::kDataLoss, "8-byte header length"},
      {"header past the end", RawFile("{}", "").substr(0, 9), StatusCode::kDataLoss, "truncated"},
      {"absurd header length", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", StatusCode::kInvalidArgument,
       "too large"},
      {"not an object", RawFile("[]", ""), StatusCode::kInvalidArgument, "JSON object"},
      {"bad JSON", RawFile(R"({"t":{"dtype":"F32",})", ""), StatusCode::kInvalidArgument, "JSON at byte"},
      {"unknown dtype", RawFile(one(R"({"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]})"), "x"),
       StatusCode::kInvalidArgument, "tensor \"t\": unsupported dtype \"F8_E4M3\""},
      {"duplicate name",
       RawFile(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
               "ab"),
       StatusCode::kInvalidArgument, "duplicate key \"t\""},
      {"shape disagrees with span", RawFile(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})"), std::string(20, 'x')),
       StatusCode::kInvalidArgument, "tensor \"t\": shape [2,3] of F32 needs 24 bytes but data_offsets span 20"},
      {"end past the data", RawFile(one(R"({"dtype":"F64","shape":[2],"data_offsets":[0,16]})"), d8),
       StatusCode::kDataLoss, "tensor \"t\": data_offsets end 16 is past the end of the data (8 bytes)"},
      {"begin after end", RawFile(one(R"({"dtype":"U8","shape":[0],"data_offsets":[4,0]})"), ""),
       StatusCode::kInvalidArgument, "end before they begin"},
      {"overlap",
       RawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               std::string(12, 'x')),
       StatusCode::kInvalidArgument, "tensor \"b\": data starts at 4 but the previous data ends at 8 after tensor \"a\" (overlap)"},
      {"gap",
       RawFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
               std::string(12, 'x')),
       StatusCode::kInvalidArgument, "tensor \"b\": data starts at 8 but the previous data ends at 4 after tensor \"a\" (gap)"},
      {"data after the last tensor", RawFile(one(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})"), "xy"),
       StatusCode::kInvalidArgument, "1 bytes of data after the last tensor"},
      {"negative dim", RawFile(one(R"({"dtype":"U8","shape":[-1],"data_offsets":[0,1]})"), "x"), StatusCode::kInvalidArgument,
       "tensor \"t\": shape entries must be non-negative integers"},
      {"fractional dim", RawFile(one(R"({"dtype":"U8","shape":[1.0],"data_offsets":[0,1]})"), "x"),
       StatusCode::kInvalidArgument, "shape entries"},
      {"overflowing shape",
       RawFile(one(R"({"dtype":"F64","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]})"), d8),
       StatusCode::kInvalidArgument, "needs too many bytes"},
      {"offsets not a pair", RawFile(one(R"({"dtype":"U8","shape":[1],"data_offsets":[0]})"), "x"),
       StatusCode::kInvalidArgument, "data_offsets must be [begin, end]"},
      {"huge offset", RawFile(one(R"({"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]})"), "x"),
       StatusCode::kInvalidArgument, "non-negative integers"},
      {"missing field", RawFile(one(R"({"dtype":"U8","shape":[1]})"), "x"), StatusCode::kInvalidArgument,
       "needs dtype, shape and data_offsets"},
      {"unknown field", RawFile(one(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1})"), "x"),
       StatusCode::kInvalidArgument, "unknown field \"x\""},
      {"entry not an object", RawFile(one("3"), ""), StatusCode::kInvalidArgument, "entry must be an object"},
      {"metadata not strings", RawFile(R"({"__metadata__":{"k":1}})", ""), StatusCode::kInvalidArgument,
       "__metadata__ value of \"k\" must be a string"},
      {"metadata not an object", RawFile(R"({"__metadata__":[]})", ""), StatusCode::kInvalidArgument,
       "__metadata__ must be an object"},
      {"bool byte", RawFile(one(R"({"dtype":"BOOL","shape":[2],"data_offsets":[0,2]})"), std::string("\x01\x02", 2)),
       StatusCode::kInvalidArgument, "tensor \"t\": BOOL byte 1 is 2"},
      {"invalid UTF-8 name", RawFile("{\"\xc3\x28\":{}}", ""), StatusCode::kInvalidArgument, "UTF-8"},
  };
}

TEST(Safetensors, HandBrokenHeadersAreClearErrors) {
  for (const BadCase& c : BadCases()) {
    absl::StatusOr<SafetensorsFile> r = ParseSafetensors(c.file);
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << c.what << ": " << r.status();
    // The file reader gives the same answer, prefixed with the path.
    const std::string path = TempPath("bad.safetensors");
    ASSERT_TRUE(WriteFileAtomically(path, c.file).ok());
    absl::StatusOr<SafetensorsFile> f = ReadSafetensors(path);
    EXPECT_EQ(f.status().code(), c.code) << c.what << ": " << f.status();
    EXPECT_NE(f.status().message().find(c.message), std::string::npos) << c.what << ": " << f.status();
    EXPECT_EQ(f.status().message().rfind(path, 0), 0u) << f.status();
    std::remove(path.c_str());
  }
}

TEST(Safetensors, ZeroSizedTensorsMayShareAnOffset) {
  const std::string header =
      R"({"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},"x":{"dtype":"I16","shape":[1],"data_offsets":[0,2]}})";
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(RawFile(header, std::string("\x07\x00", 2)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tensors.at("e").sizes(), (at::IntArrayRef{0, 5}));
  EXPECT_EQ(r->tensors.at("x").item<int16_t>(), 7);
}

TEST(Safetensors, TruncationsAndFlippedBytesNeverCrash) {
  std::map<std::string, at::Tensor> t;
  t["w"] = at::arange(6, at::kFloat).reshape({2, 3});
  t["mask"] = at::tensor({1, 0, 1}, at::kLong).to(at::kBool);
  t["ids"] = at::tensor({3, -4}, at::kShort);
  const std::string file = *SerializeSafetensors(t, {{"k", "v"}});
  for (size_t n = 0; n < file.size(); ++n) {
    absl::StatusOr<SafetensorsFile> r = ParseSafetensors(absl::string_view(file).substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_TRUE(r.status().code() == StatusCode::kDataLoss || r.status().code() == StatusCode::kInvalidArgument)
        << r.status();
  }
  int accepted = 0;
  for (size_t i = 0; i < file.size(); ++i) {
    for (unsigned char x : {0x01, 0x20, 0x80, 0xff}) {
      std::string bad = file;
      bad[i] = static_cast<char>(bad[i] ^ x);
      absl::StatusOr<SafetensorsFile> r = ParseSafetensors(bad);
      if (r.ok()) {
        ++accepted;  // e.g. a flipped data byte or a changed name: still a well-formed file
        for (const auto& [name, tensor] : r->tensors) EXPECT_TRUE(tensor.defined()) << name;
      }
    }
  }
  EXPECT_GT(accepted, 0);
  // Random garbage after a plausible length prefix.
  std::mt19937 rng(7);
  for (int k = 0; k < 300; ++k) {
    std::string junk(8 + rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    const uint64_t n = rng() % 64;
    std::memcpy(&junk[0], &n, 8);
    EXPECT_FALSE(ParseSafetensors(junk).ok());
  }
}

// Written by scripts/make-safetensors-fixture.py with the Python safetensors package; the values here
// must match that script's fixture_tensors().
TEST(Safetensors, ReadsTheFileWrittenByThePythonLibrary) {
  const std::string path = std::string(PSD3D_TEST_DATA_DIR) + "/python_fixture.safetensors";
  if (!std::ifstream(path).good()) {
    GTEST_SKIP() << path << " is absent: generate it with `python3 scripts/make-safetensors-fixture.py` "
                 << "(needs torch + safetensors, e.g. on the GPU machine) and commit it";
  }
  absl::StatusOr<SafetensorsFile> f = ReadSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"producer", "make-safetensors-fixture.py"}, {"note", "\u00fcn\u00efcode \u2713"}};
  EXPECT_EQ(f->metadata, meta);
  auto from_doubles = [](std::vector<double> v, at::ScalarType t) { return at::tensor(v, at::kDouble).to(t); };
  std::map<std::string, at::Tensor> want;
  want["f32"] = from_doubles({0.0, -1.5, 2.25, 1e-3, 3.4028234663852886e38, -0.0}, at::kFloat).reshape({2, 3});
  want["f16"] = from_doubles({1.0, -2.5, 65504.0, std::ldexp(1.0, -14), std::ldexp(1.0, -24)}, at::kHalf);
  want["bf16"] = from_doubles({1.0, -0.15625, 256.0, std::ldexp(1.0, -20), 3.0e38}, at::kBFloat16);
  want["f64"] = from_doubles({3.141592653589793, -1e300, 5e-324}, at::kDouble);
  want["i64"] = at::tensor(std::vector<int64_t>{INT64_MIN, -1, INT64_MAX}, at::kLong);
  want["i32"] = at::tensor({INT32_MIN, 0, INT32_MAX}, at::kInt);
  want["i16"] = at::tensor({-32768, 12345, 32767}, at::kInt).to(at::kShort);
  want["i8"] = at::tensor({-128, 0, 127}, at::kInt).to(at::kChar);
  want["u8"] = at::tensor({0, 1, 128, 255}, at::kInt).to(at::kByte).reshape({2, 2});
  want["bool"] = at::tensor({1, 0, 1, 1}, at::kInt).to(at::kBool);
  want["scalar"] = at::scalar_tensor(2.5, at::kFloat);
  want["empty"] = at::zeros({0, 3});
  want["matrix"] = at::arange(12, at::kLong).reshape({3, 4});
  ExpectSameTensors(want, f->tensors);
  EXPECT_TRUE(std::signbit(f->tensors.at("f32")[1][2].item<float>()));  // -0.0 kept
  // Re-serialising lays the tensors out exactly as the Python library did: the same offsets for every
  // tensor and the same data bytes (only the metadata's key order may differ).
  absl::StatusOr<std::string> again = SerializeSafetensors(f->tensors, f->metadata);
  ASSERT_TRUE(again.ok());
  absl::StatusOr<std::string> original = ReadFileToString(path);
  ASSERT_TRUE(original.ok());
  ASSERT_EQ(again->size(), original->size());
  uint64_t n = 0;
  std::memcpy(&n, original->data(), 8);
  EXPECT_EQ(again->substr(8 + n), original->substr(8 + n));
  absl::StatusOr<JsonValue> ours = ParseJson(again->substr(8, n)), theirs = ParseJson(original->substr(8, n));
  ASSERT_TRUE(ours.ok() && theirs.ok());
  for (const auto& [name, t] : want) {
    EXPECT_EQ(ours->Find(name)->Dump(), theirs->Find(name)->Dump()) << name;
  }
}

// ---- the JSON parser behind the header -----------------------------------------------------------

TEST(JsonLite, ParsesValuesAndKeepsNumbersExact) {
  absl::StatusOr<JsonValue> v = ParseJson(R"( {"a":[1,-2.5e3,true,false,null],"b":{"c":"x\u00e9\ud83d\ude00\n"},
                                               "big":18446744073709551615} )");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->is_object());
  const JsonValue* a = v->Find("a");
  ASSERT_TRUE(a && a->is_array() && a->items().size() == 5);
  EXPECT_EQ(a->items()[0].AsUint64(), 1u);
  EXPECT_EQ(a->items()[1].AsDouble(), -2500.0);
  EXPECT_FALSE(a->items()[1].AsUint64().has_value());
  EXPECT_TRUE(a->items()[2].bool_value());
  EXPECT_TRUE(a->items()[4].is_null());
  EXPECT_EQ(v->Find("b")->Find("c")->text(), "x\u00e9\U0001F600\n");
  EXPECT_EQ(v->Find("big")->AsUint64(), UINT64_MAX);
  EXPECT_EQ(v->Find("missing"), nullptr);
}

TEST(JsonLite, RejectsWhatRfc8259Rejects) {
  for (const char* bad : {"", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity",
                          "'a'", "\"\\x\"", "\"a", "\"\t\"", "\"\\ud800\"", "\"\\udc00\"", "tru", "nul", "[1 2]",
                          "{\"a\" 1}", "{1:2}", "1 2", "{\"a\":1,\"a\":2}", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
                          "// c\n1"}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << "accepted: " << bad;
  }
  EXPECT_FALSE(ParseJson(std::string(100, '[') + std::string(100, ']')).ok());  // too deep
  EXPECT_TRUE(ParseJson(std::string(60, '[') + std::string(60, ']')).ok());
}

TEST(JsonLite, DumpEscapesAndRoundTrips) {
  JsonValue o = JsonValue::Object();
  o.Set("s", JsonValue::String(std::string("q\"b\\n\n\x01\x1f", 8)));
  JsonValue& arr = o.Set("n", JsonValue::Array());
  arr.Push(JsonValue::Int(-7));
  arr.Push(JsonValue::Uint(UINT64_MAX));
  arr.Push(JsonValue::Double(0.1f));
  arr.Push(JsonValue::Double(1e300));
  arr.Push(JsonValue::Double(0.5));
  const std::string text = o.Dump();
  EXPECT_EQ(text, "{\"s\":\"q\\\"b\\\\n\\n\\u0001\\u001f\",\"n\":[-7,18446744073709551615,0.10000000149011612,1e+300,0.5]}");
  absl::StatusOr<JsonValue> back = ParseJson(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Dump(), text);
  EXPECT_EQ(static_cast<float>(*back->Find("n")->items()[2].AsDouble()), 0.1f);  // float values survive exactly
  EXPECT_TRUE(IsValidUtf8("\u00e9\U0001F600"));
  EXPECT_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
}

TEST(JsonLite, PrettyDumpIndentsAndParsesBack) {
  JsonValue o = JsonValue::Object();
  o.Set("a", JsonValue::Int(1));
  JsonValue& inner = o.Set("b", JsonValue::Object());
  JsonValue& arr = inner.Set("xs", JsonValue::Array());
  arr.Push(JsonValue::Int(1));
  arr.Push(JsonValue::Int(2));
  inner.Set("empty", JsonValue::Object());
  const std::string text = o.DumpPretty();
  EXPECT_EQ(text, "{\n  \"a\": 1,\n  \"b\": {\n    \"xs\": [1,2],\n    \"empty\": {}\n  }\n}");
  absl::StatusOr<JsonValue> back = ParseJson(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Dump(), o.Dump());
}

}  // namespace
}  // namespace psd3d
