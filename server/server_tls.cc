#include "server/server_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace psd3d {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::string NotAfter(const X509* cert) {
  std::unique_ptr<BIO, BioFree> out(BIO_new(BIO_s_mem()));
  if (!out || ASN1_TIME_print(out.get(), X509_get0_notAfter(cert)) != 1) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, n);
}

// The first certificate of a PEM file. NOT_FOUND "cannot read <path>" or INVALID_ARGUMENT "no PEM
// certificate in <path>".
absl::StatusOr<std::unique_ptr<X509, X509Free>> ReadCertificate(const std::string& path) {
  std::unique_ptr<BIO, BioFree> in(BIO_new_file(path.c_str(), "r"));
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError(absl::StrCat("no PEM certificate in ", path));
  return cert;
}

}  // namespace

std::string CertificateDnsName(const std::string& cert_path) {
  absl::StatusOr<std::unique_ptr<X509, X509Free>> cert = ReadCertificate(cert_path);
  if (!cert.ok()) return "";
  X509* const x509 = cert->get();
  std::string name;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names) && name.empty(); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)), ASN1_STRING_length(n->d.dNSName));
    }
  }
  GENERAL_NAMES_free(names);
  if (name.empty()) {
    char cn[256] = {0};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x509), NID_commonName, cn, sizeof(cn)) > 0) name = cn;
  }
  return name;
}

absl::Status CheckTlsFiles(const std::string& cert_path, const std::string& key_path, std::string* summary) {
  absl::StatusOr<std::unique_ptr<X509, X509Free>> read = ReadCertificate(cert_path);
  if (!read.ok()) return absl::Status(read.status().code(), absl::StrCat("--tls_cert: ", read.status().message()));
  const std::unique_ptr<X509, X509Free> cert = *std::move(read);
  std::unique_ptr<BIO, BioFree> key_in(BIO_new_file(key_path.c_str(), "r"));
  if (!key_in) return absl::NotFoundError(absl::StrCat("--tls_key: cannot read ", key_path));
  // The callback/password arguments stay null: an encrypted key is refused instead of prompting.
  std::unique_ptr<EVP_PKEY, KeyFree> key(PEM_read_bio_PrivateKey(key_in.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_key: no unencrypted PEM private key in ", key_path));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key ", key_path, " is not the key of --tls_cert ", cert_path));
  }
  if (summary) *summary = absl::StrCat("certificate valid until ", NotAfter(cert.get()));
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> TlsServerCredentialsFromFiles(const std::string& cert_path,
                                                                       const std::string& key_path,
                                                                       int refresh_seconds) {
  // gRPC's own file watcher (experimental in 1.51, stable since): SslServerCredentials would read the
  // PEM once, and a renewed certificate would need a rolling restart.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(key_path, cert_path,
                                                                                       refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace psd3d
