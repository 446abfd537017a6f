// Graph: the ops of one forward pass with the model's conventions (graph.h).
#include "graph.h"

#include <cmath>

namespace eet {

Graph::Graph(const Model& model, const KvCache& cache, const Workspace& workspace, uint8_t* ws_base,
             const StepPlan& plan)
    : m(model), kv(cache), ws(workspace), base(ws_base), p(plan), cfg(model.config()), be(*model.backend()),
      dt(model.config().dtype), T(plan.n_tokens) {
  q_width = int64_t(cfg.n_heads) * cfg.head_dim;
  kv_width = int64_t(cfg.n_kv_heads) * cfg.head_dim;
  qkv_width = q_width + 2 * kv_width;
  x = at(ws.x);
  h = at(ws.h);
  buf1 = at(ws.buf1);
  att = at(ws.att);
  ints = static_cast<int32_t*>(at(ws.ints));
}

void* Graph::elems(void* ptr, int64_t n) const { return static_cast<uint8_t*>(ptr) + n * int64_t(dtype_size(dt)); }

void Graph::embedding(const std::string& table, int64_t rows, const int32_t* ids, const std::string* pos_table,
                      void* out) {
  EmbeddingArgs e{};
  e.dtype = dt;
  e.ids = ids;
  e.table = w(table);
  e.out = out;
  e.n = T;
  e.cols = cfg.dim;
  e.vocab = rows;
  if (pos_table) {
    e.pos = ints + ws.i_pos;
    e.pos_table = w(*pos_table);
    e.n_pos = cfg.max_seq_len;
  }
  be.embedding(e);
}

void Graph::norm(NormKind kind, const void* in, const void* residual, const std::string& weight, bool bias, void* y,
                 int64_t rows) {
  apply_norm(m, kind, in, residual, weight, bias, y, rows);
}

void Graph::gemm(const void* in, int64_t ldx, const std::string& weight, bool bias, int64_t n, int64_t k, void* y,
                 int64_t ldy, const void* residual) {
  matmul(m, in, ldx, weight, bias, T, n, k, y, ldy, residual);
}

void Graph::rms_norm_gemm(const void* in, const std::string& norm_weight, const std::string& weight, bool bias,
                          int64_t n, void* y, int64_t ldy, const void* residual) {
  const int64_t dim = cfg.dim;
  // The prologue asks for eps > 0 (the norm op allows 0: a model with normEps 0 keeps the unfused pair).
  if (!fused_prologue() || !(cfg.norm_eps > 0.0f)) {
    norm(NormKind::Rms, in, nullptr, norm_weight, false, h, T);
    gemm(h, dim, weight, bias, n, dim, y, ldy, residual);
    return;
  }
  GemmPrologue x{};
  x.kind = GemmXForm::RmsNorm;
  x.gain = w(norm_weight);
  x.eps = cfg.norm_eps;  // as apply_norm passes it to the norm op
  matmul(m, in, dim, weight, bias, T, n, dim, y, ldy, residual, x);
}

void Graph::swiglu_gemm(void* gate_up, int64_t hid, const std::string& weight, int64_t n, void* y, int64_t ldy,
                        const void* residual) {
  if (!fused_prologue()) {
    act_gated(ActKind::SwiGlu, gate_up, hid);
    gemm(gate_up, 2 * hid, weight, false, n, hid, y, ldy, residual);
    return;
  }
  GemmPrologue x{};
  x.kind = GemmXForm::SwiGlu;
  matmul(m, gate_up, 2 * hid, weight, false, T, n, hid, y, ldy, residual, x);
}

void Graph::act(ActKind kind, void* y, int64_t n, int64_t ld) {
  ActArgs a{};
  a.kind = kind;
  a.dtype = dt;
  a.x = y;
  a.y = y;
  a.m = T;
  a.n = n;
  a.ldx = ld;
  a.ldy = ld;
  be.act(a);
}

void Graph::act_gated(ActKind kind, void* gate_up, int64_t n) {
  ActArgs a{};
  a.kind = kind;
  a.dtype = dt;
  a.x = gate_up;
  a.up = elems(gate_up, n);
  a.y = gate_up;
  a.m = T;
  a.n = n;
  a.ldx = a.ldu = a.ldy = 2 * n;
  be.act(a);
}

void Graph::rope_kv_store(int32_t layer, void* qkv) {
  RopeKvAppendArgs r{};
  r.rope_layout = cfg.rope_layout;
  r.dtype = dt;
  r.q = qkv;
  r.k = elems(qkv, q_width);
  r.v = elems(qkv, q_width + kv_width);
  r.pos = ints + ws.i_pos;
  r.inv_freq = static_cast<const float*>(w("rope.inv_freq"));
  r.slots = ints + ws.i_kv_slot;
  r.k_cache = kv.k(layer);
  r.v_cache = kv.v(layer);
  r.layout = kv.layout();
  r.n_tokens = T;
  r.ldq = r.ldk = r.ldv = qkv_width;
  r.n_heads = cfg.n_heads;
  r.rot_dim = cfg.head_dim;
  be.rope_kv_append(r);
}

void Graph::kv_store(int32_t layer, const void* k, const void* v, int64_t ld) {
  KvAppendArgs app{};
  app.dtype = dt;
  app.k = k;
  app.v = v;
  app.slots = ints + ws.i_kv_slot;
  app.k_cache = kv.k(layer);
  app.v_cache = kv.v(layer);
  app.layout = kv.layout();
  app.n_tokens = T;
  app.ldk = ld;
  app.ldv = ld;
  be.kv_append(app);
}

namespace {

// The softmax scale: the given one, or 1/sqrt(head_dim) (scale 0); one value for every path of a layer.
float softmax_scale(float scale, int32_t head_dim) { return scale > 0.0f ? scale : 1.0f / std::sqrt(float(head_dim)); }

// Where a step's attention reads: which metadata arrays hold the block tables and key counts (the sequences' own,
// or their encoder memories'), and their bound.
struct KeySource {
  int64_t i_table, i_len;
  int32_t max_len;
};

AttentionArgs attention_args(const Graph& g, int32_t layer, const void* q, int64_t ldq, const KeySource& keys, float scale) {
  AttentionArgs a{};
  a.dtype = g.dt;
  a.q = q;
  a.out = g.att;
  a.k_cache = g.kv.k(layer);
  a.v_cache = g.kv.v(layer);
  a.layout = g.kv.layout();
  a.block_table = g.ints + keys.i_table;
  a.q_start = g.ints + g.ws.i_q_start;
  a.ctx_len = g.ints + keys.i_len;
  a.n_tokens = g.T;
  a.ldq = ldq;
  a.ldo = g.q_width;
  a.batch = g.p.batch;
  a.n_heads = g.cfg.n_heads;
  a.max_blocks_per_seq = int32_t(g.ws.max_blocks_per_seq);
  a.max_q_len = g.p.max_q;
  a.max_ctx_len = keys.max_len;
  a.scale = scale;
  a.workspace = g.ws.attn_ws_bytes ? g.at(g.ws.attn_ws) : nullptr;
  a.workspace_bytes = g.ws.attn_ws_bytes;
  a.sm_count = g.ws.sm_count;
  return a;
}

// The groups' index arrays (shared_len, group_start, group_seqs) and their counts.
struct Groups {
  int64_t i_shared, i_start, i_seqs;
  int32_t n, max_size, max_shared;
};

void run_shared_attention(const Graph& g, int32_t layer, const void* q, int64_t ldq, const KeySource& keys,
                          const Groups& groups, float scale) {
  SharedAttentionArgs a{};
  a.dtype = g.dt;
  a.q = q;
  a.out = g.att;
  a.k_cache = g.kv.k(layer);
  a.v_cache = g.kv.v(layer);
  a.layout = g.kv.layout();
  a.block_table = g.ints + keys.i_table;
  a.ctx_len = g.ints + keys.i_len;
  a.shared_len = g.ints + groups.i_shared;
  a.group_start = g.ints + groups.i_start;
  a.group_seqs = g.ints + groups.i_seqs;
  a.ldq = ldq;
  a.ldo = g.q_width;
  a.batch = g.p.batch;
  a.n_heads = g.cfg.n_heads;
  a.max_blocks_per_seq = int32_t(g.ws.max_blocks_per_seq);
  a.n_groups = groups.n;
  a.max_group_size = groups.max_size;
  a.max_ctx_len = keys.max_len;
  a.max_shared_len = groups.max_shared;
  a.scale = scale;
  a.workspace = g.at(g.ws.attn_ws);
  a.workspace_bytes = g.ws.attn_ws_bytes;
  a.sm_count = g.ws.sm_count;
  g.be.shared_attention(a);
}

}  // namespace

void Graph::attention(int32_t layer, const void* qkv, AttnMask mask, const AttnRelBias* rel, float scale) {
  kv_store(layer, elems(const_cast<void*>(qkv), q_width), elems(const_cast<void*>(qkv), q_width + kv_width), qkv_width);
  attend(layer, qkv, mask, rel, scale);
}

void Graph::attend(int32_t layer, const void* qkv, AttnMask mask, const AttnRelBias* rel, float scale) {
  const float sc = softmax_scale(scale, cfg.head_dim);
  // Shared groups exist in causal decode steps; shared_attention has no position bias, so biased layers stay here.
  if (mask == AttnMask::Causal && p.n_groups > 0 && rel == nullptr) {
    shared_attention(layer, qkv, sc);
    return;
  }
  AttentionArgs a = attention_args(*this, layer, qkv, qkv_width, {ws.i_block_table, ws.i_ctx_len, p.max_ctx}, sc);
  a.mask = mask;
  if (rel) a.rel_bias = *rel;
  be.attention(a);
}

void Graph::shared_attention(int32_t layer, const void* qkv, float scale) {
  run_shared_attention(*this, layer, qkv, qkv_width, {ws.i_block_table, ws.i_ctx_len, p.max_ctx},
                       {ws.i_shared_len, ws.i_group_start, ws.i_group_seqs, p.n_groups, p.max_group_size, p.max_shared}, scale);
}

void Graph::cross_attention(int32_t layer, const void* q, int64_t ldq, float scale) {
  const float sc = softmax_scale(scale, cfg.head_dim);
  const KeySource memory{ws.i_mem_table, ws.i_mem_len, p.max_mem};
  if (p.x_groups > 0) {
    // Decode, memories shared: a group's members are queries against one memory whose every key is shared.
    run_shared_attention(*this, layer, q, ldq, memory,
                         {ws.i_xshared_len, ws.i_xgroup_start, ws.i_xgroup_seqs, p.x_groups, p.x_max_group_size, p.max_mem}, sc);
    return;
  }
  AttentionArgs a = attention_args(*this, layer, q, ldq, memory, sc);
  a.mask = AttnMask::Cross;
  be.attention(a);
}

void apply_norm(const Model& m, NormKind kind, const void* in, const void* residual, const std::string& weight,
                bool bias, void* y, int64_t rows) {
  NormArgs a{};
  a.kind = kind;
  a.dtype = m.config().dtype;
  a.x = in;
  a.residual = residual;
  a.weight = m.w(weight);
  a.bias = bias ? m.w(weight + ".bias") : nullptr;
  a.y = y;
  a.rows = rows;
  a.cols = m.config().dim;
  a.eps = m.config().norm_eps;
  m.backend()->norm(a);
}

void matmul(const Model& m, const void* in, int64_t ldx, const std::string& weight, bool bias, int64_t rows, int64_t n,
            int64_t k, void* y, int64_t ldy, const void* residual, const GemmPrologue& xform) {
  const DType dt = m.config().dtype;
  const void* b = bias ? m.w(weight + ".bias") : nullptr;
  if (m.weights().is_q8(weight)) {
    GemmQ8Args q{};
    q.dtype = dt;
    q.x = in;
    q.wq = static_cast<const int8_t*>(m.w(weight));
    q.wscale = m.weights().scales(weight);
    q.bias = b;
    q.residual = residual;
    q.y = y;
    q.m = rows;
    q.n = n;
    q.k = k;
    q.ldx = ldx;
    q.ldy = ldy;
    q.xform = xform;
    m.backend()->gemm_q8(q);
    return;
  }
  GemmArgs g{};
  g.dtype = dt;
  g.x = in;
  g.w = m.w(weight);
  g.bias = b;
  g.residual = residual;
  g.y = y;
  g.m = rows;
  g.n = n;
  g.k = k;
  g.ldx = ldx;
  g.ldy = ldy;
  g.xform = xform;
  m.backend()->gemm(g);
}

void lm_head(const Model& m, const void* h_rows, int64_t rows, void* logits, const GemmPrologue& xform) {
  const ModelConfig& c = m.config();
  matmul(m, h_rows, c.dim, c.tied_embeddings ? "token_embd" : "output", false, rows, c.vocab_size, c.dim, logits,
         c.vocab_size, nullptr, xform);
}

void normed_lm_head(const Model& m, const void* x_rows, void* h_rows, int64_t rows, void* logits) {
  const Architecture& arch = m.arch();
  const ModelConfig& c = m.config();
  if (arch.output_norm_kind() == NormKind::Rms && !arch.output_norm_bias() && c.norm_eps > 0.0f &&
      rows <= gemm_decode_max_m(c.dtype)) {
    GemmPrologue x{};
    x.kind = GemmXForm::RmsNorm;
    x.gain = m.w(arch.output_norm_name());
    x.eps = c.norm_eps;  // as apply_norm passes it to the norm op
    lm_head(m, x_rows, rows, logits, x);
    return;
  }
  apply_norm(m, arch.output_norm_kind(), x_rows, nullptr, arch.output_norm_name(), arch.output_norm_bias(), h_rows, rows);
  lm_head(m, h_rows, rows, logits);
}

}  // namespace eet
