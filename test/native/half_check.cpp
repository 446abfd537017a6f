// Checks engine/half.h (used by the cpu backend, the emu's __half and the N-API glue) against the compiler's own
// IEEE binary16 conversions (_Float16, GCC >= 12 on x86-64: libgcc's __truncsfhf2 / __extendhfsf2), an
// implementation nobody here wrote. f16 -> f32 for all 65536 patterns; f32 -> f16 for every 97th float bit
// pattern (44 million values covering all exponents, subnormals, ties, overflow) plus every f16 midpoint.
// bfloat16 has no compiler reference here; its rounding is checked against the double-precision definition.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "../../engine/half.h"

static int failures = 0;
static void fail(const char* what, unsigned in, unsigned got, unsigned want) {
  if (++failures <= 10) std::printf("FAIL %s: input 0x%08x got 0x%04x want 0x%04x\n", what, in, got, want);
}

static unsigned f16_bits(_Float16 h) { unsigned short u; std::memcpy(&u, &h, 2); return u; }

int main() {
  for (unsigned h = 0; h < 65536; ++h) {
    _Float16 x; unsigned short u = (unsigned short)h; std::memcpy(&x, &u, 2);
    float want = (float)x, got = eet::f16_to_f32(u);
    if (std::isnan(want) ? !std::isnan(got) : eet::bits_from_f32(want) != eet::bits_from_f32(got)) fail("f16_to_f32", h, eet::bits_from_f32(got), eet::bits_from_f32(want));
    if (h < 0x7c00 || (h >= 0x8000 && h < 0xfc00)) {  // midpoints between neighbours: round-half-even
      float mid = (eet::f16_to_f32(u) + eet::f16_to_f32((unsigned short)(u + 1))) * 0.5f;
      if (eet::f32_to_f16(mid) != f16_bits((_Float16)mid)) fail("f32_to_f16(mid)", eet::bits_from_f32(mid), eet::f32_to_f16(mid), f16_bits((_Float16)mid));
    }
  }
  for (unsigned long long b = 0; b <= 0xffffffffull; b += 97) {
    float f = eet::f32_from_bits((unsigned)b);
    unsigned want = f16_bits((_Float16)f), got = eet::f32_to_f16(f);
    if (std::isnan(f)) { if ((got & 0x7c00) != 0x7c00 || !(got & 0x3ff)) fail("f32_to_f16(nan)", (unsigned)b, got, want); continue; }
    if (got != want) fail("f32_to_f16", (unsigned)b, got, want);
  }
  for (unsigned long long b = 0; b <= 0xffffffffull; b += 101) {
    float f = eet::f32_from_bits((unsigned)b);
    if (std::isnan(f)) continue;
    unsigned got = eet::f32_to_bf16(f);
    // reference: the nearest bf16 by exact double arithmetic, ties to even
    unsigned lo = (unsigned)(b >> 16), hi = lo + 1;
    double dl = eet::bf16_to_f32((unsigned short)lo), dh = eet::bf16_to_f32((unsigned short)hi), d = f;
    if ((hi & 0x7fff) == 0x7f80) dh = std::copysign(std::ldexp(1.0, 128), d);  // IEEE: round as if the exponent were unbounded
    double el = std::fabs(d - dl), eh = std::fabs(dh - d);
    unsigned want = el < eh ? lo : eh < el ? hi : ((lo & 1) ? hi : lo);
    if ((lo & 0x7f80) == 0x7f80) want = lo;  // already inf: stays
    if ((want & 0xffff) != got) fail("f32_to_bf16", (unsigned)b, got, want & 0xffff);
  }
  std::printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
