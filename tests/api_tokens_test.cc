// The API tokens file format (server/api_tokens.h) and the open-method rule of server/auth.h.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/sha256.h"
#include "server/api_tokens.h"
#include "server/auth.h"
#include "tests/fixtures.h"

namespace psd3d {
namespace {

TEST(ApiTokens, ParsesNamesCommentsAndBlankLines) {
  auto entries = ApiTokens::Parse(
      "# CI and people\n"
      "\n"
      "  ci-2025.q1:0123456789abcdef0123  \n"
      "fedcba9876543210fedcba\r\n"
      "x:ab-0123456789abcdef\n");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].name, "ci-2025.q1");
  EXPECT_EQ((*entries)[0].sha256, Sha256Hex("0123456789abcdef0123"));
  EXPECT_EQ((*entries)[1].name, "sha256-" + Sha256Hex("fedcba9876543210fedcba").substr(0, 8));
  EXPECT_EQ((*entries)[2].name, "x");
  EXPECT_EQ((*entries)[2].sha256, Sha256Hex("ab-0123456789abcdef"));
}

// A ':' always separates NAME from TOKEN and tokens contain none, so no part of a token can be taken
// for a name (which logs and the /metrics label would then show).
TEST(ApiTokens, TokensNeverContainAColon) {
  for (const char* text : {
           "prefix:secret-0123456789:abcdef\n",  // NAME:TOKEN whose token has a ':'
           "x:a:b-0123456789abcdef\n",          // same, short name
           "ok:0123456789abcdef\nsecret-0123:4567:89abcdef\n",  // a bare token with two ':'
       }) {
    auto entries = ApiTokens::Parse(text);
    ASSERT_FALSE(entries.ok()) << text;
    EXPECT_TRUE(absl::StrContains(entries.status().message(), "a token must be")) << entries.status();
    EXPECT_TRUE(absl::StrContains(entries.status().message(), "without spaces or ':'")) << entries.status();
    EXPECT_FALSE(absl::StrContains(entries.status().message(), "secret")) << entries.status();
  }
  // A line with one ':' is NAME:TOKEN, never a bare token, even when both halves could be a token: the
  // name is everything before the ':'. A prefix that is not a valid name is an error, never a token.
  auto named = ApiTokens::Parse("team-a:0123456789abcdef0123\n0123456789abcdef:fedcba9876543210\n");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ((*named)[0].name, "team-a");
  EXPECT_EQ((*named)[0].sha256, Sha256Hex("0123456789abcdef0123"));
  EXPECT_EQ((*named)[1].name, "0123456789abcdef");
  EXPECT_EQ((*named)[1].sha256, Sha256Hex("fedcba9876543210"));
  auto bad_name = ApiTokens::Parse("secret part:0123456789abcdef0123\n");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_TRUE(absl::StrContains(bad_name.status().message(), "the name before ':'")) << bad_name.status();
  EXPECT_FALSE(absl::StrContains(bad_name.status().message(), "secret")) << bad_name.status();
}

TEST(ApiTokens, RejectsBadFilesNamingTheLineNeverTheToken) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"", "no token"},
      {"# only a comment\n\n", "no token"},
      {"ok:0123456789abcdef\nshort:tiny-secret\n", "line 2: a token must be at least 16"},
      {"spaced:0123456789 abcdef-secret\n", "line 1: a token must be"},
      {"bad name:0123456789abcdef\n", "line 1: the name before ':'"},
      {":0123456789abcdef\n", "line 1: the name before ':'"},
      {"a:0123456789abcdef\nb:0123456789abcdef\n", "line 2: the same token appears twice"},
      {"a:0123456789abcdef\na:fedcba9876543210\n", "line 2: the name a appears twice"},
  };
  for (const Case& c : cases) {
    auto entries = ApiTokens::Parse(c.text);
    ASSERT_FALSE(entries.ok()) << c.text;
    EXPECT_TRUE(absl::StrContains(entries.status().message(), c.error)) << c.text << ": " << entries.status();
    for (const char* secret : {"tiny-secret", "0123456789abcdef", "abcdef-secret"}) {
      EXPECT_FALSE(absl::StrContains(entries.status().message(), secret)) << entries.status();
    }
  }
}

TEST(ApiTokens, FindsExactTokensOnlyAndReloadsWhenTheFileChanges) {
  const std::string path = testing::MakeTempDir("tokens") + "/tokens";
  testing::WriteFileAtomically(path, "alice:alice-0123456789abcdef\nbob:bob-0123456789abcdef\n");
  auto tokens = ApiTokens::Load(path);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)->Find("alice-0123456789abcdef"), "alice");
  EXPECT_EQ((*tokens)->Find("bob-0123456789abcdef"), "bob");
  EXPECT_EQ((*tokens)->Find("alice-0123456789abcde"), std::nullopt);
  EXPECT_EQ((*tokens)->Find("alice-0123456789abcdefg"), std::nullopt);
  EXPECT_EQ((*tokens)->Find(""), std::nullopt);
  EXPECT_EQ(*(*tokens)->ReloadIfChanged(), false);

  testing::WriteFileAtomically(path, "carol:carol-0123456789abcdef\n");
  EXPECT_EQ(*(*tokens)->ReloadIfChanged(), true);
  EXPECT_EQ((*tokens)->Find("alice-0123456789abcdef"), std::nullopt);
  EXPECT_EQ((*tokens)->Find("carol-0123456789abcdef"), "carol");

  // A bad file is reported once and changes nothing.
  testing::WriteFileAtomically(path, "carol:short\n");
  EXPECT_FALSE((*tokens)->ReloadIfChanged().ok());
  EXPECT_EQ(*(*tokens)->ReloadIfChanged(), false);
  EXPECT_EQ((*tokens)->Find("carol-0123456789abcdef"), "carol");

  EXPECT_FALSE(ApiTokens::Load(path + ".missing").ok());
}

TEST(BearerTokenAuth, OnlyHealthAndReflectionAreOpen) {
  EXPECT_TRUE(BearerTokenAuth::IsOpenMethod("/grpc.health.v1.Health/Check"));
  EXPECT_TRUE(BearerTokenAuth::IsOpenMethod("/grpc.health.v1.Health/Watch"));
  EXPECT_TRUE(BearerTokenAuth::IsOpenMethod("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_TRUE(BearerTokenAuth::IsOpenMethod("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
  EXPECT_FALSE(BearerTokenAuth::IsOpenMethod("/psd3d.v1.GenerationService/SubmitJob"));
  EXPECT_FALSE(BearerTokenAuth::IsOpenMethod("/grpc.health.v1.HealthX/Check"));
  EXPECT_FALSE(BearerTokenAuth::IsOpenMethod("/grpc.health.v1.Health"));
  EXPECT_FALSE(BearerTokenAuth::IsOpenMethod(""));
}

}  // namespace
}  // namespace psd3d
