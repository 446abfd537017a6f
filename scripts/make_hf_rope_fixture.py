#!/usr/bin/env python3
"""Tiny random Qwen2 and Llama models saved by Hugging Face transformers 5 — whose config.json puts rope_theta and
the rope scaling inside one `rope_parameters` object (transformers 4 wrote them at the top level) — with the
logits transformers computes for a fixed token sequence: the independent reference for test/models/hf-rope.test.ts
(a loader that misses rope_parameters runs with theta 10000 and fails it).
Usage: ../shared/tools/hf-venv.sh /tmp/hfvenv && /tmp/hfvenv/bin/python3 scripts/make_hf_rope_fixture.py
Writes test/fixtures/hf-rope/<case>/{config.json, model.safetensors} and test/fixtures/hf-rope/logits.json.
"""
import json
import os

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "hf-rope")
SIZES = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=64, max_position_embeddings=256)
TOKENS = [1, 5, 9, 33, 2, 60, 17, 41, 8, 8, 23, 50, 3, 12, 44, 19, 27, 30, 6, 58]
CASES = [
    # theta 1e6 (Qwen2's): far from the 10000 a loader falls back to.
    ("qwen2-theta", lambda: Qwen2ForCausalLM(Qwen2Config(**SIZES, rope_theta=1_000_000.0, tie_word_embeddings=True))),
    # linear scaling inside rope_parameters, with theta 5e5.
    ("llama-linear", lambda: LlamaForCausalLM(LlamaConfig(**SIZES, rope_theta=500_000.0,
                                                           rope_scaling={"rope_type": "linear", "factor": 4.0}))),
]


def main():
    torch.manual_seed(0)
    logits = {"transformers": transformers.__version__, "tokens": TOKENS, "cases": {}}
    for name, make in CASES:
        model = make().float().eval()
        with torch.no_grad():
            for p in model.parameters():  # larger weights: positions matter more, so RoPE errors show
                p.mul_(4.0)
        folder = os.path.join(OUT, name)
        model.save_pretrained(folder, safe_serialization=True)
        cfg = json.load(open(os.path.join(folder, "config.json")))
        assert "rope_parameters" in cfg and "rope_theta" not in cfg, "transformers no longer writes rope_parameters"
        with torch.no_grad():
            out = model(torch.tensor([TOKENS])).logits[0]
        logits["cases"][name] = out.tolist()
        gen = os.path.join(folder, "generation_config.json")
        if os.path.exists(gen):
            os.remove(gen)
    with open(os.path.join(OUT, "logits.json"), "w") as f:
        json.dump(logits, f)


if __name__ == "__main__":
    main()
