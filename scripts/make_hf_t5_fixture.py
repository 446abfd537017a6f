#!/usr/bin/env python3
"""T5 reference outputs from Hugging Face transformers: the independent reference for the T5 tests (encoder outputs,
teacher-forced decoder logits, greedy ids, and T5's relative-position bucket function).

Two tiny random T5ForConditionalGeneration models (2 encoder + 2 decoder layers, 32 relative-position buckets, max
distance 128) share one Unigram tokenizer (pieces listed here, not trained, so every run writes the same file):
  v1_0  T5 v1.0: ReLU feed-forward, lm_head = the shared embedding, the decoder output scaled by d_model^-0.5 before
        it, n_heads * d_kv == d_model
  v1_1  T5 v1.1 / Flan-T5's FFN: gated-GELU (gelu_new = tanh GELU), n_heads * d_kv != d_model. Its head: transformers 5
        always ties lm_head to `shared` (T5Config turns tie_word_embeddings=False into scale_decoder_outputs=False and
        writes tie_word_embeddings: true), so this model's head is `shared` WITHOUT the d_model^-0.5 scale; config.json
        says so by scale_decoder_outputs: false. An untied head (v4-era v1.1 checkpoints' lm_head.weight) is not covered.
Weights are drawn here (fixed seed) rather than left at HF's init: the relative-attention tables and the query
projections are made large enough that a wrong bucket, a missing bias or a stray 1/sqrt(d) scale moves the outputs
clearly (checked below). Expected values are computed in float64; the stored weights are float32.

Writes test/fixtures/hf-t5/:
  v1_0/, v1_1/     config.json, model.safetensors (float32), tokenizer.json, tokenizer_config.json   save_pretrained
  reference.json   versions; buckets: T5Attention._relative_position_bucket tables (relative position key - query
                   from -200 to 200, for several (bidirectional, num_buckets, max_distance)); per model: per input
                   text its input ids (with </s>), the encoder's last hidden state (T, C), the teacher-forced decoder
                   inputs ([decoder_start] + target ids) and logits (T_dec, V), the greedy ids (generate,
                   max_new_tokens = GREEDY_TOKENS, decoder_start first) and each greedy step's top-1 minus top-2 logit
                   margin (so a test can tell a close call from a bug) and its top-5 ids (f16 / bf16 divergence
                   checks); pid: Prompt-in-Decoder references — for the second input text, each of PID_PROMPTS as
                   the decoder's forced prefix ([decoder_start] + its ids without </s>) and HF's greedy continuation
                   (PID_TOKENS tokens)
Fails if the folder outgrows LIMIT_BYTES, or if dropping the position bias or adding a 1/sqrt(d_kv) scale would
change the encoder outputs by too little for a test to notice.
Usage: ../shared/tools/hf-venv.sh /tmp/hfvenv && /tmp/hfvenv/bin/python3 scripts/make_hf_t5_fixture.py
"""
import json
import math
import os
import sys

import torch
import transformers
from tokenizers import Tokenizer
from tokenizers.models import Unigram
from tokenizers.pre_tokenizers import Metaspace
from tokenizers.decoders import Metaspace as MetaspaceDecoder
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5Attention

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "hf-t5")
LIMIT_BYTES = 450 * 1024
VOCAB = 80
GREEDY_TOKENS = 8
# Two inputs of different lengths; the second is longer than a 16-token KV block.
TEXTS = ["the cat sat on the mat.", "a small dog ran after the red ball in the garden, then the cat looked back."]
TARGET = "the dog sat on the red mat."
# Decoder prompts for PiD (forced decoder prefixes over one encoded input); their words are in the vocabulary.
PID_PROMPTS = ["the cat", "a small dog ran", "then"]
PID_TOKENS = 6
# Whole words of the corpus are pieces; "garden" and "looked" are left out so they split into single characters.
CORPUS = " ".join(TEXTS + [TARGET]).replace(".", " .").replace(",", " ,").replace("garden", "").replace("looked", "")
BUCKET_CASES = [(True, 32, 128), (False, 32, 128), (True, 8, 20), (False, 8, 20), (True, 6, 7)]
MODELS = {
    "v1_0": dict(d_model=32, d_kv=8, num_heads=4, d_ff=48, feed_forward_proj="relu", tie_word_embeddings=True),
    # tie_word_embeddings=False: scale_decoder_outputs=False under transformers 5 (see the docstring)
    "v1_1": dict(d_model=32, d_kv=16, num_heads=3, d_ff=24, feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}


def make_tokenizer():
    """T5's layout: <pad>=0 (also the decoder start), </s>=1, <unk>=2; Metaspace pieces; '$A </s>'."""
    words = sorted(set(CORPUS.split()))
    chars = sorted(set("".join(TEXTS + [TARGET]).replace(" ", "")))
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + w, -1.0 - 0.01 * i) for i, w in enumerate(words)]
    pieces += [(c, -5.0 - 0.01 * i) for i, c in enumerate(chars)]
    pieces += [("\u2581" + c, -6.0 - 0.01 * i) for i, c in enumerate(chars) if c.isalpha()]
    seen, vocab = set(), []
    for p, s in pieces:
        if p not in seen:
            seen.add(p)
            vocab.append((p, s))
    assert len(vocab) <= VOCAB, len(vocab)
    # Pad the vocabulary with unreachable pieces so the embedding has VOCAB rows (HF T5 vocabularies also hold
    # pieces the model never emits, e.g. the sentinels).
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(VOCAB - len(vocab))]
    raw = Tokenizer(Unigram(vocab, unk_id=2, byte_fallback=False))
    raw.pre_tokenizer = Metaspace(replacement="\u2581", prepend_scheme="always")
    raw.decoder = MetaspaceDecoder(replacement="\u2581", prepend_scheme="always")
    raw.post_processor = TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def make_model(name, spec, gen):
    cfg = T5Config(vocab_size=VOCAB, num_layers=2, num_decoder_layers=2, relative_attention_num_buckets=32,
                   relative_attention_max_distance=128, dropout_rate=0.0, layer_norm_epsilon=1e-6,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, attn_implementation="eager", **spec)
    model = T5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if "layer_norm" in pname:
                p.copy_(1.0 + 0.1 * noise)
            elif "relative_attention_bias" in pname:
                p.copy_(1.5 * noise)
            elif pname == "shared.weight" or pname == "lm_head.weight":
                # Rows of equal norm: the greedy token then depends on the hidden state's direction, not on which
                # row happens to be longest (random rows of unequal norm make every step pick the same token).
                p.copy_(noise / noise.norm(dim=1, keepdim=True) * math.sqrt(p.shape[1]))
            elif p.dim() == 2:
                scale = 1.0 / math.sqrt(p.shape[1])
                if pname.endswith(".q.weight"):
                    scale *= 2.0  # sharp attention: T5 does not scale scores by 1/sqrt(d_kv)
                if pname.endswith(".o.weight") or pname.endswith(".wo.weight"):
                    scale *= 3.0  # blocks that outweigh the residual: else greedy decoding repeats its input token
                p.copy_(scale * noise)
            else:
                raise AssertionError(f"unexpected parameter {pname}")
    return model


def rounded(x):
    """Floats to 9 significant digits (float32 round-trips; 1e-9 relative is far below every test's tolerance)."""
    if isinstance(x, float):
        return float(f"{x:.9g}")
    if isinstance(x, list):
        return [rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    return x


def encode(model, ids):
    with torch.no_grad():
        return model.encoder(input_ids=ids).last_hidden_state[0]


def main():
    gen = torch.Generator().manual_seed(20261204)
    tok = make_tokenizer()
    ref = {"transformers": transformers.__version__, "torch": torch.__version__, "texts": TEXTS, "target": TARGET,
           "buckets": [], "models": {}}
    rel = torch.arange(-200, 201)
    for bidirectional, nb, md in BUCKET_CASES:
        b = T5Attention._relative_position_bucket(rel, bidirectional=bidirectional, num_buckets=nb, max_distance=md)
        ref["buckets"].append({"bidirectional": bidirectional, "num_buckets": nb, "max_distance": md,
                               "relative_position_from": -200, "bucket": b.tolist()})

    target_ids = tok(TARGET)["input_ids"]
    for name, spec in MODELS.items():
        model = make_model(name, spec, gen)
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        model.save_pretrained(folder, safe_serialization=True)
        tok.save_pretrained(folder)
        for extra in ["special_tokens_map.json", "generation_config.json"]:
            if os.path.exists(os.path.join(folder, extra)):
                os.remove(os.path.join(folder, extra))

        m64 = model.double()
        inputs = []
        for text in TEXTS:
            in_ids = tok(text)["input_ids"]
            assert in_ids[-1] == 1 and 2 not in in_ids, (text, in_ids)
            ids = torch.tensor([in_ids])
            enc = encode(m64, ids)
            dec_in = [0] + target_ids[:-1]
            with torch.no_grad():
                logits = m64(input_ids=ids, decoder_input_ids=torch.tensor([dec_in])).logits[0]
                out = m64.generate(input_ids=ids, max_new_tokens=GREEDY_TOKENS, do_sample=False, num_beams=1,
                                   min_new_tokens=GREEDY_TOKENS, output_scores=True, return_dict_in_generate=True)
            greedy = out.sequences[0].tolist()
            margins, top5 = [], []
            for s in out.scores:
                top = torch.topk(s[0], 5)
                margins.append(float(top.values[0] - top.values[1]))
                top5.append(top.indices.tolist())
            inputs.append({"inputIds": in_ids, "encoderOutput": enc.tolist(), "decoderInputIds": dec_in,
                           "logits": logits.tolist(), "greedyIds": greedy, "greedyMargins": margins,
                           "greedyTop5": top5})

        pid = []
        ids = torch.tensor([inputs[1]["inputIds"]])
        for prompt in PID_PROMPTS:
            p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            assert 2 not in p_ids, (prompt, p_ids)
            dec_prefix = [0] + p_ids
            with torch.no_grad():
                out = m64.generate(input_ids=ids, decoder_input_ids=torch.tensor([dec_prefix]), max_new_tokens=PID_TOKENS,
                                   min_new_tokens=PID_TOKENS, do_sample=False, num_beams=1, output_scores=True,
                                   return_dict_in_generate=True)
            seq = out.sequences[0].tolist()
            assert seq[:len(dec_prefix)] == dec_prefix, (seq, dec_prefix)
            margins = [float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in out.scores]
            pid.append({"prompt": prompt, "promptIds": p_ids, "greedyIds": seq[len(dec_prefix):], "greedyMargins": margins})

        # The fixture must be able to catch the T5-specific parts: the bias and the absent 1/sqrt(d) scale.
        ids = torch.tensor([inputs[1]["inputIds"]])
        base = encode(m64, ids)
        with torch.no_grad():
            table = m64.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
            saved = table.clone()
            table.zero_()
            no_bias = encode(m64, ids)
            table.copy_(saved)
            qs = [blk.layer[0].SelfAttention.q.weight for blk in m64.encoder.block]
            saved = [q.clone() for q in qs]
            for q in qs:
                q.mul_(1.0 / math.sqrt(spec["d_kv"]))
            scaled = encode(m64, ids)
            for q, s in zip(qs, saved):
                q.copy_(s)
        for what, other in [("no position bias", no_bias), ("1/sqrt(d_kv) scaling", scaled)]:
            gap = float((other - base).abs().max() / base.abs().max())
            assert gap > 0.05, f"{name}: {what} changes the encoder output by only {gap}"
        assert float((encode(m64, ids) - base).abs().max()) == 0.0

        ref["models"][name] = {"config": spec, "inputs": inputs, "pid": pid}

    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(rounded(ref), f, separators=(",", ":"))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    lens = [len(x["inputIds"]) for x in ref["models"]["v1_0"]["inputs"]]
    print(f"hf-t5: {size / 1024:.0f} KB in {OUT}; input token counts {lens}; target {len(target_ids)} tokens")
    for name, m in ref["models"].items():
        for x in m["inputs"]:
            print(f"  {name}: greedy {x['greedyIds']} min margin {min(x['greedyMargins']):.3g}")
    if size > LIMIT_BYTES:
        print(f"make_hf_t5_fixture: {size} bytes, over the {LIMIT_BYTES}-byte limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
