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

void Graph::rope(void* qkv) {
  RopeArgs r{};
  r.layout = cfg.rope_layout;
  r.dtype = dt;
  r.q = qkv;
  r.k = elems(qkv, q_width);
  r.pos = ints + ws.i_pos;
  r.inv_freq = static_cast<const float*>(w("rope.inv_freq"));
  r.n_tokens = T;
  r.ldq = qkv_width;
  r.ldk = qkv_width;
  r.n_heads = cfg.n_heads;
  r.n_kv_heads = cfg.n_kv_heads;
  r.head_dim = cfg.head_dim;
  r.rot_dim = cfg.head_dim;
  be.rope(r);
}

void Graph::attention(int32_t layer, const void* qkv, AttnMask mask, const AttnRelBias* rel, float scale) {
  void* qkv_mut = const_cast<void*>(qkv);
  KvAppendArgs app{};
  app.dtype = dt;
  app.k = elems(qkv_mut, q_width);
  app.v = elems(qkv_mut, q_width + kv_width);
  app.slots = ints + ws.i_kv_slot;
  app.k_cache = kv.k(layer);
  app.v_cache = kv.v(layer);
  app.layout = kv.layout();
  app.n_tokens = T;
  app.ldk = qkv_width;
  app.ldv = qkv_width;
  be.kv_append(app);

  // The softmax scale: the given one, or 1/sqrt(head_dim) (scale 0); one value for both paths below.
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(cfg.head_dim));
  // Shared groups exist in causal decode steps; shared_attention has no position bias, so biased layers stay here.
  if (mask == AttnMask::Causal && p.n_groups > 0 && rel == nullptr) {
    shared_attention(layer, qkv, sc);
    return;
  }
  AttentionArgs a{};
  a.dtype = dt;
  a.q = qkv;
  a.out = att;
  a.k_cache = kv.k(layer);
  a.v_cache = kv.v(layer);
  a.layout = kv.layout();
  a.block_table = ints + ws.i_block_table;
  a.q_start = ints + ws.i_q_start;
  a.ctx_len = ints + ws.i_ctx_len;
  a.n_tokens = T;
  a.ldq = qkv_width;
  a.ldo = q_width;
  a.batch = p.batch;
  a.n_heads = cfg.n_heads;
  a.max_blocks_per_seq = int32_t(ws.max_blocks_per_seq);
  a.max_q_len = p.max_q;
  a.max_ctx_len = p.max_ctx;
  a.scale = sc;
  a.mask = mask;
  if (rel) a.rel_bias = *rel;
  a.workspace = ws.attn_ws_bytes ? at(ws.attn_ws) : nullptr;
  a.workspace_bytes = ws.attn_ws_bytes;
  a.sm_count = ws.sm_count;
  be.attention(a);
}

void Graph::shared_attention(int32_t layer, const void* qkv, float scale) {
  SharedAttentionArgs a{};
  a.dtype = dt;
  a.q = qkv;
  a.out = att;
  a.k_cache = kv.k(layer);
  a.v_cache = kv.v(layer);
  a.layout = kv.layout();
  a.block_table = ints + ws.i_block_table;
  a.ctx_len = ints + ws.i_ctx_len;
  a.shared_len = ints + ws.i_shared_len;
  a.group_start = ints + ws.i_group_start;
  a.group_seqs = ints + ws.i_group_seqs;
  a.ldq = qkv_width;
  a.ldo = q_width;
  a.batch = p.batch;
  a.n_heads = cfg.n_heads;
  a.max_blocks_per_seq = int32_t(ws.max_blocks_per_seq);
  a.n_groups = p.n_groups;
  a.max_group_size = p.max_group_size;
  a.max_ctx_len = p.max_ctx;
  a.max_shared_len = p.max_shared;
  a.scale = scale;
  a.workspace = at(ws.attn_ws);
  a.workspace_bytes = ws.attn_ws_bytes;
  a.sm_count = ws.sm_count;
  be.shared_attention(a);
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
            int64_t k, void* y, int64_t ldy, const void* residual) {
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
  m.backend()->gemm(g);
}

void lm_head(const Model& m, const void* h_rows, int64_t rows, void* logits) {
  const ModelConfig& c = m.config();
  matmul(m, h_rows, c.dim, c.tied_embeddings ? "token_embd" : "output", false, rows, c.vocab_size, c.dim, logits,
         c.vocab_size, nullptr);
}

}  // namespace eet
