// TLS for the gRPC listener: the certificate chain and key come from PEM files (in Kubernetes, a
// mounted kubernetes.io/tls Secret) and are re-read periodically, so a renewed certificate (cert-manager)
// is served without a restart.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace psd3d {

// Fails fast on what would otherwise only show as failing handshakes: a file that cannot be read, no
// PEM certificate or key in it, a key that does not belong to the certificate. Returns the certificate's
// expiry as a human-readable note in `summary` (for the startup log).
absl::Status CheckTlsFiles(const std::string& cert_path, const std::string& key_path, std::string* summary);

// The first DNS name of the PEM certificate in `cert_path` (subjectAltName, else the subject's CN), or
// "" when there is none or the file cannot be read.
std::string CertificateDnsName(const std::string& cert_path);

// Server credentials serving the files' certificate chain and key; gRPC re-reads them every
// `refresh_seconds` and keeps the previous pair if a new one is incomplete or mismatched.
std::shared_ptr<grpc::ServerCredentials> TlsServerCredentialsFromFiles(const std::string& cert_path,
                                                                       const std::string& key_path,
                                                                       int refresh_seconds = 60);

}  // namespace psd3d
