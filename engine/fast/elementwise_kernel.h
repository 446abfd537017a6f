// Row-wise kernels over a vector type V (vec_*.h): LayerNorm / RMSNorm with the fused residual add (ops.h
// NormArgs) and the activations (ActArgs). Included by each isa_*.cpp inside its own namespace, after V and
// gemm_kernel.h (gemm_load / gemm_store). Math in fp32, each output rounded once to the dtype; h = x + residual
// is rounded to the dtype before the statistics, as the reference does, so residual_out and y agree.
#pragma once

inline typename V::F row_load(eet::DType t, const void* p, int64_t i) {
  switch (t) {
    case eet::DType::F16: return V::load_f16(static_cast<const uint16_t*>(p) + i);
    case eet::DType::BF16: return V::load_bf16(static_cast<const uint16_t*>(p) + i);
    default: return V::load(static_cast<const float*>(p) + i);
  }
}

inline void row_store(eet::DType t, void* p, int64_t i, typename V::F v) {
  if (t == eet::DType::F32) {
    V::store(static_cast<float*>(p) + i, v);
    return;
  }
  float tmp[V::W];
  V::store(tmp, v);
  for (int l = 0; l < V::W; ++l) gemm_store(t, p, i + l, tmp[l]);
}

inline void rows_to_f32(eet::DType t, const void* x, int64_t ldx, int64_t m, int64_t k, float* dst) {
  const size_t es = eet::dtype_size(t);
  for (int64_t r = 0; r < m; ++r) {
    const void* src = static_cast<const char*>(x) + r * ldx * int64_t(es);
    float* d = dst + r * k;
    int64_t c = 0;
    for (; c + V::W <= k; c += V::W) V::store(d + c, row_load(t, src, c));
    for (; c < k; ++c) d[c] = gemm_load(t, src, c);
  }
}

// A row's h in fp32, rounded as the dtype holds it.
inline float round_dtype(eet::DType t, float v) {
  switch (t) {
    case eet::DType::F16: return V::f16_to_f32(V::f32_to_f16(v));
    case eet::DType::BF16: return eet::bf16_to_f32(eet::f32_to_bf16(v));
    default: return v;
  }
}

inline void norm_rows(const eet::NormArgs& a, int64_t r0, int64_t r1) {
  using F = typename V::F;
  thread_local std::vector<float> hbuf;
  const int64_t n = a.cols;
  if (int64_t(hbuf.size()) < n) hbuf.resize(size_t(n));
  float* h = hbuf.data();
  const eet::DType t = a.dtype;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * n;
    int64_t c = 0;
    if (a.residual) {
      for (; c + V::W <= n; c += V::W) {
        V::store(h + c, V::add(row_load(t, a.x, base + c), row_load(t, a.residual, base + c)));
        if (t != eet::DType::F32)
          for (int l = 0; l < V::W; ++l) h[c + l] = round_dtype(t, h[c + l]);  // as the dtype stores it
      }
      for (; c < n; ++c) h[c] = round_dtype(t, gemm_load(t, a.x, base + c) + gemm_load(t, a.residual, base + c));
    } else {
      for (; c + V::W <= n; c += V::W) V::store(h + c, row_load(t, a.x, base + c));
      for (; c < n; ++c) h[c] = gemm_load(t, a.x, base + c);
    }
    if (a.residual_out) {
      for (c = 0; c + V::W <= n; c += V::W) row_store(t, a.residual_out, base + c, V::load(h + c));
      for (; c < n; ++c) gemm_store(t, a.residual_out, base + c, h[c]);
    }
    float mean = 0.0f;
    if (a.kind == eet::NormKind::Layer) {
      F s = V::zero();
      for (c = 0; c + V::W <= n; c += V::W) s = V::add(s, V::load(h + c));
      float tot = V::hsum(s);
      for (; c < n; ++c) tot += h[c];
      mean = tot / float(n);
    }
    const F mv = V::set1(mean);
    F sq = V::zero();
    for (c = 0; c + V::W <= n; c += V::W) {
      const F d = V::sub(V::load(h + c), mv);
      sq = V::fma(d, d, sq);
    }
    float ms = V::hsum(sq);
    for (; c < n; ++c) ms += (h[c] - mean) * (h[c] - mean);
    const float rstd = 1.0f / std::sqrt(ms / float(n) + a.eps);
    const F rv = V::set1(rstd);
    for (c = 0; c + V::W <= n; c += V::W) {
      F y = V::mul(V::mul(V::sub(V::load(h + c), mv), rv), row_load(t, a.weight, c));
      if (a.bias) y = V::add(y, row_load(t, a.bias, c));
      row_store(t, a.y, base + c, y);
    }
    for (; c < n; ++c) {
      float y = (h[c] - mean) * rstd * gemm_load(t, a.weight, c);
      if (a.bias) y += gemm_load(t, a.bias, c);
      gemm_store(t, a.y, base + c, y);
    }
  }
}

// sigmoid(z) * h, the form every activation here takes (silu: z = h; gelu_tanh: z = 2 sqrt(2/pi) (h + 0.044715 h^3)).
inline typename V::F sigmoid_times(typename V::F z, typename V::F h) {
  const typename V::F one = V::set1(1.0f);
  return V::div(h, V::add(one, V::exp(V::sub(V::zero(), z))));
}

inline void act_rows(const eet::ActArgs& a, int64_t r0, int64_t r1) {
  using F = typename V::F;
  const eet::DType t = a.dtype;
  const float k_gelu = 2.0f * 0.7978845608028654f;  // 2 sqrt(2/pi)
  for (int64_t r = r0; r < r1; ++r) {
    int64_t c = 0;
    if (a.kind != eet::ActKind::GeluErf) {
      for (; c + V::W <= a.n; c += V::W) {
        F h = row_load(t, a.x, r * a.ldx + c), y;
        switch (a.kind) {
          case eet::ActKind::SwiGlu: y = V::mul(sigmoid_times(h, h), row_load(t, a.up, r * a.ldu + c)); break;
          case eet::ActKind::GegluTanh: {
            const F inner = V::fma(V::mul(V::set1(0.044715f), h), V::mul(h, h), h);
            y = V::mul(sigmoid_times(V::mul(V::set1(k_gelu), inner), h), row_load(t, a.up, r * a.ldu + c));
            break;
          }
          case eet::ActKind::Silu:
            if (a.bias) h = V::add(h, row_load(t, a.bias, c));
            y = sigmoid_times(h, h);
            break;
          case eet::ActKind::Relu:
            if (a.bias) h = V::add(h, row_load(t, a.bias, c));
            y = V::max(h, V::zero());
            break;
          default: {  // GeluTanh
            if (a.bias) h = V::add(h, row_load(t, a.bias, c));
            const F inner = V::fma(V::mul(V::set1(0.044715f), h), V::mul(h, h), h);
            y = sigmoid_times(V::mul(V::set1(k_gelu), inner), h);
          }
        }
        row_store(t, a.y, r * a.ldy + c, y);
      }
    }
    for (; c < a.n; ++c) {
      float h = gemm_load(t, a.x, r * a.ldx + c), y;
      if (!eet::act_gated(a.kind) && a.bias) h += gemm_load(t, a.bias, c);
      switch (a.kind) {
        case eet::ActKind::SwiGlu: y = h / (1.0f + std::exp(-h)) * gemm_load(t, a.up, r * a.ldu + c); break;
        case eet::ActKind::GegluTanh:
          y = h / (1.0f + std::exp(-k_gelu * (h + 0.044715f * h * h * h))) * gemm_load(t, a.up, r * a.ldu + c);
          break;
        case eet::ActKind::Relu: y = h > 0.0f ? h : 0.0f; break;
        case eet::ActKind::Silu: y = h / (1.0f + std::exp(-h)); break;
        case eet::ActKind::GeluTanh: y = h / (1.0f + std::exp(-k_gelu * (h + 0.044715f * h * h * h))); break;
        default: y = 0.5f * h * std::erfc(-h * 0.7071067811865476f);
      }
      gemm_store(t, a.y, r * a.ldy + c, y);
    }
  }
}
