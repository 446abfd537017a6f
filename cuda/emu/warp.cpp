// Warp collectives for the SIMT emulator: __syncwarp, __shfl*_sync, votes, __match_any_sync and the generic
// warp_collective used by the twins of warp-wide inline PTX.
//
// Each collective is a rendezvous of the lanes named in its mask. A lane deposits a pointer to its Arrival (input,
// output, per-lane argument) and parks; the last lane to arrive computes every lane's result, writes it straight
// into the parked lanes' outputs (their stacks stay mapped while they are parked) and carries on without parking.
// Lanes meet when they call the same op with the same mask (like the hardware, call sites may differ). A
// rendezvous that can never complete (lanes exited, wait at __syncthreads or in a different collective) leaves no
// thread ready, and the scheduler reports it (describe_warps) instead of hanging.
#include <cstdio>

#include "internal.h"

namespace eet_emu {
namespace detail {

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::Sync: return "__syncwarp";
    case WarpOp::ShflIdx: return "__shfl_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::Ballot: return "__ballot_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::All: return "__all_sync";
    case WarpOp::MatchAny: return "__match_any_sync";
    case WarpOp::Generic: return "warp_collective";
  }
  return "?";
}

namespace {

std::string hex(unsigned m) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

// "0-15,20,22-23"
std::string lanes_str(unsigned m) {
  std::string s;
  for (int i = 0; i < 32;) {
    if (!(m >> i & 1u)) { ++i; continue; }
    int j = i;
    while (j + 1 < 32 && (m >> (j + 1) & 1u)) ++j;
    if (!s.empty()) s += ",";
    s += std::to_string(i) + (j > i ? "-" + std::to_string(j) : "");
    i = j + 1;
  }
  return s.empty() ? "none" : s;
}

bool is_shuffle(WarpOp op) {
  return op == WarpOp::ShflIdx || op == WarpOp::ShflUp || op == WarpOp::ShflDown || op == WarpOp::ShflXor;
}

// Source lane of `lane` for a shuffle, following PTX shfl.sync: the lane's segment is [first, last] of `width`
// lanes; only b[4:0] of the lane argument counts; a source outside the segment (up/down/xor) gives the lane its
// own value.
unsigned shuffle_source(WarpOp op, unsigned lane, int arg, int width) {
  const unsigned b = unsigned(arg) & 31u;
  const unsigned first = lane & ~unsigned(width - 1), last = first + unsigned(width) - 1;
  switch (op) {
    case WarpOp::ShflIdx: return first | (b & unsigned(width - 1));
    case WarpOp::ShflUp: return (lane >= b && lane - b >= first) ? lane - b : lane;
    case WarpOp::ShflDown: return lane + b <= last ? lane + b : lane;
    case WarpOp::ShflXor: return (lane ^ b) <= last ? lane ^ b : lane;
    default: return lane;
  }
}

// Runs a complete rendezvous: every lane of rv.mask has deposited its Arrival.
void complete(const Rendezvous& rv, Thread* warp_threads) {
  Arrival* a[32] = {};
  for (unsigned l = 0; l < 32; ++l)
    if (rv.mask >> l & 1u) a[l] = warp_threads[l].arrival;
  switch (rv.op) {
    case WarpOp::Sync: break;
    case WarpOp::ShflIdx: case WarpOp::ShflUp: case WarpOp::ShflDown: case WarpOp::ShflXor:
      for (unsigned l = 0; l < 32; ++l) {
        if (!a[l]) continue;
        const unsigned src = shuffle_source(rv.op, l, a[l]->arg, a[l]->width);
        // A source lane that did not take part (outside the mask, exited, absent) is undefined in CUDA.
        if (a[src]) std::memcpy(a[l]->out, a[src]->in, rv.in_bytes);
        else std::memset(a[l]->out, 0xff, rv.in_bytes);
      }
      break;
    case WarpOp::Ballot: case WarpOp::Any: case WarpOp::All: {
      unsigned bits = 0;
      for (unsigned l = 0; l < 32; ++l)
        if (a[l] && a[l]->arg) bits |= 1u << l;
      const unsigned r = rv.op == WarpOp::Ballot ? bits : rv.op == WarpOp::Any ? unsigned(bits != 0)
                                                                                : unsigned(bits == rv.mask);
      for (unsigned l = 0; l < 32; ++l)
        if (a[l]) std::memcpy(a[l]->out, &r, sizeof r);
      break;
    }
    case WarpOp::MatchAny:
      for (unsigned l = 0; l < 32; ++l) {
        if (!a[l]) continue;
        unsigned same = 0;
        for (unsigned k = 0; k < 32; ++k)
          if (a[k] && std::memcmp(a[k]->in, a[l]->in, rv.in_bytes) == 0) same |= 1u << k;
        std::memcpy(a[l]->out, &same, sizeof same);
      }
      break;
    case WarpOp::Generic: {
      const size_t in_total = size_t(32) * rv.in_bytes, out_total = size_t(32) * rv.out_bytes;
      g.scratch.assign(in_total + out_total, 0);
      unsigned char* all_in = g.scratch.data();
      unsigned char* all_out = all_in + in_total;
      void* ctx = nullptr;
      for (unsigned l = 0; l < 32; ++l) {
        if (!a[l]) continue;
        if (!ctx) ctx = a[l]->ctx;
        std::memcpy(all_in + l * rv.in_bytes, a[l]->in, rv.in_bytes);
      }
      rv.fn(all_in, all_out, ctx);
      for (unsigned l = 0; l < 32; ++l)
        if (a[l]) std::memcpy(a[l]->out, all_out + l * rv.out_bytes, rv.out_bytes);
      break;
    }
  }
}

std::string arrival_str(const Arrival& a) {
  return std::string(op_name(a.op)) + "(mask " + hex(a.mask) + ") at " + site(a.file, a.line);
}

}  // namespace

// Lanes a rendezvous still waits for. As in CUDA, only the non-exited lanes named in the mask take part: lanes
// that returned, or that do not exist in a partial last warp, count as arrived (a value shuffled from them is
// undefined on hardware, so the emu hands out 0xFF bytes — NaN for floats — to make such reads fail tests).
static unsigned missing(const Rendezvous& rv, const Warp& warp) { return rv.mask & warp.lanes & ~warp.done & ~rv.arrived; }

// Completes rendezvous i of warp w (every participating lane has arrived) and readies the parked lanes except
// `self` (the arriving lane, which carries on without parking).
static void finish(unsigned w, size_t i, unsigned self_bit) {
  Warp& warp = g.warps[w];
  Thread* warp_threads = &g.threads[w * 32];
  complete(warp.open[i], warp_threads);
  const unsigned others = warp.open[i].arrived & ~self_bit;
  warp.open[i] = warp.open.back();  // swap-remove
  warp.open.pop_back();
  for (unsigned l = 0; l < 32; ++l) {
    if (!(others >> l & 1u)) continue;
    warp_threads[l].state = State::Ready;
    g.n_ready++;
  }
}

void warp_lane_exited(unsigned w) {
  Warp& warp = g.warps[w];
  for (size_t i = 0; i < warp.open.size();) {
    if (missing(warp.open[i], warp) == 0) finish(w, i, 0);  // swapped another entry into i: look at i again
    else ++i;
  }
}

void warp_arrive(Arrival& a) {
  Thread* t = g.current;
  if (!t) eet::throw_error(eet::ErrorCode::Kernel, "emu: warp collective called outside a kernel");
  const unsigned lane = t->linear % 32, w = t->linear / 32, bit = 1u << lane;
  Warp& warp = g.warps[w];
  auto where = [&] { return " (warp " + std::to_string(w) + " lane " + std::to_string(lane) + ")"; };  // errors only
  if (!(a.mask & bit)) fail_in_fiber(arrival_str(a) + ": the calling lane is not in the mask" + where());
  if (is_shuffle(a.op) && (a.width < 1 || a.width > 32 || (a.width & (a.width - 1)) != 0))
    fail_in_fiber(arrival_str(a) + ": width " + std::to_string(a.width) + " is not a power of two in [1, 32]" + where());

  size_t i = 0;
  while (i < warp.open.size()) {
    const Rendezvous& r = warp.open[i];
    if (r.op == a.op && r.mask == a.mask && r.in_bytes == a.in_bytes && r.out_bytes == a.out_bytes && r.fn == a.fn) break;
    ++i;
  }
  if (i == warp.open.size()) warp.open.push_back(Rendezvous{a.op, a.mask, 0, a.in_bytes, a.out_bytes, a.fn});
  warp.open[i].arrived |= bit;
  t->arrival = &a;
  if (missing(warp.open[i], warp) != 0) {
    park(State::Warp);  // the last lane (or the exit of the last missing one) completes it and writes our result
  } else {
    finish(w, i, bit);
  }
  t->arrival = nullptr;
}

std::string describe_warps() {
  std::string m;
  for (unsigned w = 0; w < (g.nthreads + 31) / 32; ++w) {
    for (const Rendezvous& rv : g.warps[w].open) {
      const Thread* th = &g.threads[w * 32];
      unsigned first = 0;
      while (!(rv.arrived >> first & 1u)) ++first;
      const Arrival& a = *th[first].arrival;
      m += " warp " + std::to_string(w) + ": lanes " + lanes_str(rv.arrived) + " wait in " + arrival_str(a) +
           " for lanes " + lanes_str(rv.mask & ~rv.arrived);
      unsigned exited = 0, at_barrier = 0, elsewhere = 0;
      for (unsigned l = 0; l < 32; ++l) {
        if (!((rv.mask & ~rv.arrived) >> l & 1u)) continue;
        const State s = th[l].state;
        (s == State::Done ? exited : s == State::Barrier ? at_barrier : elsewhere) |= 1u << l;
      }
      if (exited) m += "; lanes " + lanes_str(exited) + " have exited";
      if (at_barrier) m += "; lanes " + lanes_str(at_barrier) + " wait at __syncthreads";
      for (unsigned l = 0; l < 32; ++l)
        if ((elsewhere >> l & 1u) && th[l].arrival) {
          m += "; lane " + std::to_string(l) + " waits in " + arrival_str(*th[l].arrival) + " (mismatched mask or op?)";
          break;
        }
      m += ";";
    }
  }
  return m;
}

}  // namespace detail

void warp_collective(unsigned mask, const void* in, size_t in_bytes, void* out, size_t out_bytes, CollectiveFn fn,
                     void* ctx, const char* site) {
  if (!detail::g.current) eet::throw_error(eet::ErrorCode::Kernel, "emu: warp_collective called outside a kernel");
  if (in_bytes > (1u << 16) || out_bytes > (1u << 16) || !fn)
    detail::fail_in_fiber(std::string("warp_collective at ") + (site ? site : "?") +
                          ": needs a function and at most 64 KiB per lane");
  detail::Arrival a{detail::WarpOp::Generic, mask, in, out, unsigned(in_bytes), unsigned(out_bytes), 0, 32, fn, ctx,
                    site ? site : "warp_collective", 0};
  detail::warp_arrive(a);
}

}  // namespace eet_emu
