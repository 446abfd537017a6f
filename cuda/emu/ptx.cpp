// What the emulated twins of inline PTX need from the emulator (declared in emu.h): the size of the running
// block's dynamic shared memory, and a way to fail the launch from a kernel thread. The twins themselves live next
// to their asm() versions (cuda/async_copy.cuh, cuda/ldmatrix.cuh, cuda/mma.cuh) so both builds share the callers.
#include <string>

#include "internal.h"

namespace eet_emu {

size_t dynamic_smem_bytes() { return detail::g.current ? detail::g.smem : 0; }

void fault(const char* what) {
  if (!detail::g.current) eet::throw_error(eet::ErrorCode::Kernel, std::string("emu: ") + what + " (outside a kernel)");
  detail::fail_in_fiber(what);
}

}  // namespace eet_emu
