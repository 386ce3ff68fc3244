#include "server/health_probe.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/server_tls.h"

namespace psd3d {

std::string LoopbackTarget(const std::string& listen, int port) {
  absl::string_view host = listen;
  if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) host = host.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
  return absl::StrCat(host, ":", port);
}

std::shared_ptr<grpc::Channel> LoopbackChannel(const std::string& target, const std::string& tls_cert) {
  if (tls_cert.empty()) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_verify_server_certs(false);
  // Without a verifier gRPC would default to checking the certificate's names against the target.
  options.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  options.set_check_call_host(false);
  grpc::ChannelArguments args;
  if (const std::string name = CertificateDnsName(tls_cert); !name.empty()) args.SetSslTargetNameOverride(name);
  return grpc::CreateCustomChannel(target, grpc::experimental::TlsCredentials(options), args);
}

int ProbeHealth(const std::string& target, const std::string& service, absl::Duration timeout,
                const std::string& tls_cert) {
  const bool tls = !tls_cert.empty();
  auto stub = grpc::health::v1::Health::NewStub(LoopbackChannel(target, tls_cert));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) {
    std::cout << "psd3d-server health " << target << (tls ? " (TLS)" : " (plaintext)") << ": " << s.error_message()
              << " (code " << s.error_code() << ")\n";
    return 1;
  }
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::cout << "psd3d-server health " << target << ": "
            << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()) << "\n";
  return serving ? 0 : 1;
}

}  // namespace psd3d
