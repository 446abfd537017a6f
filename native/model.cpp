// STUB: the model bindings (AddonModel) are added with the first model (issue 3).
#include "addon.h"

namespace eet_node {
void init_model(Napi::Env, Napi::Object) {}
}  // namespace eet_node
