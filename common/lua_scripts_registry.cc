#include "common/lua_scripts.h"

namespace psd3d::lua {

const Scripts& All() {
  static const Scripts* scripts = new Scripts();
  return *scripts;
}

}  // namespace psd3d::lua
