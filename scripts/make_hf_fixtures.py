#!/usr/bin/env python3
"""Tiny random HF models with reference outputs, as test fixtures (needs torch + transformers + tokenizers; no
network: tokenizers are trained here on a few sentences, models built from configs).

NOTE: no test uses these yet. The HF-directory loader (safetensors + config.json + tokenizer.json) is a later
issue; its tests will load test/fixtures/<name>/ and compare with reference.safetensors / reference.json.

For each of gpt2-tiny, llama-tiny, bert-tiny it writes <out>/<name>/:
  config.json, model.safetensors      save_pretrained (float32)
  tokenizer.json, tokenizer_config.json, special_tokens_map.json
  reference.safetensors               per prompt i: input_ids.i (int64 [T]); causal LMs: logits.i (float32 [T, V],
                                      every position); BERT: last_hidden_state.i [T, D], pooler_output.i [D]
  reference.json                      prompts, input ids, greedy continuations (causal LMs: 12 new tokens, no
                                      early stop), versions
Every parameter is random (norm weights 1 + N(0, 0.1), everything else N(0, 0.1), biases included) so a
loader that drops a bias or swaps a matrix fails loudly. Each directory stays under 200 KB.
Usage: python3 scripts/make_hf_fixtures.py [--out test/fixtures]
"""
import argparse
import json
import os
import sys

CORPUS = [
    "Once upon a time there was a little robot who liked to count the stars.",
    "The quick brown fox jumps over the lazy dog, and the dog does not mind.",
    "Kernels read memory, multiply numbers and write the answers back.",
    "A small model can still say surprising things when its weights are random.",
    "Tokens go in, logits come out, and the largest one wins when decoding greedily.",
] * 4
PROMPTS = ["Once upon a time", "The robot counts numbers"]
NEW_TOKENS = 12
LIMIT_BYTES = 200 * 1024


def randomize(model, torch):
    """Every parameter random: norm/LayerNorm weights near 1, the rest (biases too) N(0, 0.1)."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.1
            is_norm = ("norm" in name.lower() or ".ln_" in name or name.startswith("ln_")) and name.endswith("weight")
            p.copy_(1.0 + noise if is_norm else noise)


def train_tokenizer(kind, vocab):
    from tokenizers import ByteLevelBPETokenizer, SentencePieceBPETokenizer, BertWordPieceTokenizer

    if kind == "gpt2":
        t = ByteLevelBPETokenizer()
        t.train_from_iterator(CORPUS, vocab_size=vocab, min_frequency=1, special_tokens=["<|endoftext|>"])
    elif kind == "llama":
        t = SentencePieceBPETokenizer(unk_token="<unk>")
        t.train_from_iterator(CORPUS, vocab_size=vocab, min_frequency=1, special_tokens=["<unk>", "<s>", "</s>"])
    else:
        t = BertWordPieceTokenizer(lowercase=True)
        t.train_from_iterator(CORPUS, vocab_size=vocab, min_frequency=1,
                              special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return t


def build(kind, torch, transformers):
    from transformers import PreTrainedTokenizerFast

    vocab = 300 if kind == "gpt2" else 256
    raw = train_tokenizer(kind, vocab)
    assert raw.get_vocab_size() <= vocab, (kind, raw.get_vocab_size())
    if kind == "gpt2":
        tok = PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
        cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4, n_inner=64,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        model = transformers.GPT2LMHeadModel(cfg)
    elif kind == "llama":
        tok = PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
        cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=None)
        model = transformers.LlamaForCausalLM(cfg)
    else:
        tok = PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                      cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        cfg = transformers.BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
        model = transformers.BertModel(cfg)
    randomize(model, torch)
    return tok, model.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
    a = ap.parse_args()
    import torch
    import transformers
    from safetensors.torch import save_file

    torch.manual_seed(0)
    failed = False
    for kind in ["gpt2", "llama", "bert"]:
        name = f"{kind}-tiny"
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        tok, model = build(kind, torch, transformers)
        model.save_pretrained(d, safe_serialization=True)
        tok.save_pretrained(d)
        tensors, ref = {}, {"model": name, "torch": torch.__version__, "transformers": transformers.__version__, "prompts": []}
        with torch.no_grad():
            for i, text in enumerate(PROMPTS):
                ids = tok(text, return_tensors="pt")["input_ids"]
                if kind == "llama":  # Llama prompts start with BOS
                    ids = torch.cat([torch.tensor([[tok.bos_token_id]]), ids], dim=1)
                entry = {"text": text, "inputIds": ids[0].tolist()}
                tensors[f"input_ids.{i}"] = ids[0].contiguous()
                if kind == "bert":
                    out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
                    tensors[f"last_hidden_state.{i}"] = out.last_hidden_state[0].float().contiguous()
                    tensors[f"pooler_output.{i}"] = out.pooler_output[0].float().contiguous()
                else:
                    tensors[f"logits.{i}"] = model(input_ids=ids).logits[0].float().contiguous()
                    gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                         min_new_tokens=NEW_TOKENS, do_sample=False,
                                         pad_token_id=tok.eos_token_id)
                    entry["greedyIds"] = gen[0, ids.shape[1]:].tolist()
                    entry["greedyText"] = tok.decode(entry["greedyIds"])
                ref["prompts"].append(entry)
        save_file(tensors, os.path.join(d, "reference.safetensors"))
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"{name}: {size / 1024:.0f} KB in {d}")
        if size > LIMIT_BYTES:
            print(f"make_hf_fixtures: {name} is {size} bytes, over the {LIMIT_BYTES}-byte limit", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
