#include "client/connection.h"

#include <cstdlib>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"

ABSL_FLAG(bool, tls, false,
          "Connect with TLS, verifying the server's certificate against the system's CA certificates");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM file of the CA certificate(s) that signed the server's certificate, instead of the system's; "
          "implies --tls");
ABSL_FLAG(std::string, tls_server_name, "",
          "With TLS: the name the server's certificate must carry, when it differs from --server's host "
          "(e.g. psd3d-server.psd3d.svc through kubectl port-forward)");

namespace psd3d::cli {
namespace {

absl::StatusOr<std::string> ReadCaFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--tls_ca: cannot read it (", text.status().message(), ")"));
  if (!absl::StrContains(*text, "-----BEGIN CERTIFICATE-----")) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_ca: no PEM certificate in ", path));
  }
  return text;
}

// The token, trimmed (a trailing newline from `$(cat file)` or a Secret is common); empty when unset.
absl::StatusOr<std::string> TokenFromEnv() {
  const char* env = std::getenv(kApiTokenEnv);
  const std::string token(absl::StripAsciiWhitespace(env == nullptr ? "" : env));
  for (char c : token) {
    if (c <= 0x20 || c >= 0x7f) {
      // Never print the value: it is a credential.
      return absl::InvalidArgumentError(
          absl::StrCat("$", kApiTokenEnv, " holds spaces or non-printable characters; it must be the token alone"));
    }
  }
  return token;
}

}  // namespace

absl::StatusOr<Connection> Connect(const std::string& server) {
  Connection c;
  const std::string ca_path = absl::GetFlag(FLAGS_tls_ca);
  const std::string server_name = absl::GetFlag(FLAGS_tls_server_name);
  c.tls = absl::GetFlag(FLAGS_tls) || !ca_path.empty();
  auto token = TokenFromEnv();
  if (!token.ok()) return token.status();

  if (!c.tls) {
    if (!server_name.empty()) return absl::InvalidArgumentError("--tls_server_name needs --tls or --tls_ca");
    if (!token->empty()) {
      std::cerr << "psd3d: warning: $" << kApiTokenEnv << " is set but not sent over a plaintext connection; "
                << "add --tls or --tls_ca=FILE\n";
    }
    c.channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
    return c;
  }

  grpc::SslCredentialsOptions ssl;
  if (!ca_path.empty()) {
    auto pem = ReadCaFile(ca_path);
    if (!pem.ok()) return pem.status();
    ssl.pem_root_certs = *std::move(pem);
  }
  // Empty pem_root_certs: gRPC uses the system's CA bundle (ca-certificates), else its own roots.pem.
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!token->empty()) {
    credentials = grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(*token));
    c.token = true;
  }
  grpc::ChannelArguments args;
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  c.channel = grpc::CreateCustomChannel(server, credentials, args);
  return c;
}

}  // namespace psd3d::cli
