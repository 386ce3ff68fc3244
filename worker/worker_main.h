// The worker process's main(), shared by psd3d-worker and by test workers that inject their own engine.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/engine.h"

namespace psd3d {

// Builds the engine named by --engine; an error explains what is available.
using EngineFactory = std::function<absl::StatusOr<std::unique_ptr<Engine>>(const std::string& name)>;

int RunWorkerMain(int argc, char** argv, const char* usage, const std::string& default_engine,
                  const EngineFactory& factory);

}  // namespace psd3d
