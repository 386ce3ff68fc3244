// One function per subcommand. Each checks its positional arguments (ctx.args), reads its flags, makes
// its calls, prints the result and returns the process exit code (see errors.h).
#pragma once

#include "client/context.h"

namespace psd3d::cli {

int Submit(const Context& ctx);
int Get(const Context& ctx);
int List(const Context& ctx);
int Cancel(const Context& ctx);
int Watch(const Context& ctx);
int Download(const Context& ctx);

}  // namespace psd3d::cli
