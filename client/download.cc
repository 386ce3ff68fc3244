#include "client/download.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/output.h"
#include "common/sha256.h"

namespace psd3d::cli {

int DownloadArtifact(const Context& ctx, const std::string& job_id, const std::string& name, const std::string& path,
                     v1::Artifact* downloaded) {
  const std::string what = absl::StrCat("download ", name, " of job ", job_id);
  const std::string part = path + ".part";
  // The hash covers the whole artifact, so a resumed download first hashes what it already has.
  Sha256 sha;
  int64_t offset = 0;
  if (std::ifstream in(part, std::ios::binary); in) {
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      sha.Update(absl::string_view(buf, static_cast<size_t>(in.gcount())));
      offset += in.gcount();
    }
  }
  grpc::ClientContext rpc;
  v1::DownloadArtifactRequest request;
  request.set_job_id(job_id);
  request.set_name(name);
  request.set_offset(offset);
  auto reader = ctx.stub->DownloadArtifact(&rpc, request);
  std::ofstream out;  // opened on the first chunk, so that a failed request leaves no empty .part behind
  v1::ArtifactChunk chunk;
  int64_t total = -1;
  std::string expected_sha;
  std::string local_error;
  while (reader->Read(&chunk)) {
    if (!out.is_open()) {
      // -o out/dir/mesh.glb: make the folder, as users expect (previews_dir is made the same way).
      const std::filesystem::path parent = std::filesystem::path(part).parent_path();
      std::error_code mkdir_error;
      if (!parent.empty()) std::filesystem::create_directories(parent, mkdir_error);
      out.open(part, std::ios::binary | std::ios::app);
    }
    if (chunk.offset() != offset) {
      local_error = absl::StrCat("the server sent offset ", chunk.offset(), ", expected ", offset);
    }
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    if (!out) local_error = absl::StrCat("cannot write ", part, ": ", std::strerror(errno));
    if (!local_error.empty()) {
      rpc.TryCancel();
      break;
    }
    sha.Update(chunk.data());
    offset += static_cast<int64_t>(chunk.data().size());
    total = chunk.total_size();
    expected_sha = chunk.sha256();
  }
  const grpc::Status status = reader->Finish();
  out.close();
  if (!local_error.empty()) return Fail(kExitOther, absl::StrCat(what, ": ", local_error));
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE && offset > 0) {
    // The .part is longer than the artifact, so it belongs to something else: start over.
    std::error_code ignored;
    std::filesystem::remove(part, ignored);
    return DownloadArtifact(ctx, job_id, name, path, downloaded);
  }
  if (!status.ok()) {
    const int code = ReportRpcError(ctx, what, status);
    if (offset > 0) Fail(code, absl::StrCat("the partial download is kept in ", part, "; run again to resume it"));
    return code;
  }
  const std::string actual_sha = sha.HexDigest();
  std::error_code ec;
  if (offset != total || actual_sha != expected_sha) {
    std::filesystem::remove(part, ec);
    return Fail(kExitOther, absl::StrCat(what, ": verification failed: got ", offset, " bytes with sha256 ", actual_sha,
                                         ", expected ", total, " bytes with sha256 ", expected_sha, "; deleted ", part,
                                         ", run again to download from scratch"));
  }
  std::filesystem::rename(part, path, ec);
  if (ec) return Fail(kExitOther, absl::StrCat(what, ": cannot rename ", part, " to ", path, ": ", ec.message()));
  downloaded->set_name(name);
  downloaded->set_size_bytes(total);
  downloaded->set_sha256(actual_sha);
  return kExitOk;
}

}  // namespace psd3d::cli
