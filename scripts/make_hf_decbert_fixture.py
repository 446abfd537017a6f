#!/usr/bin/env python3
"""DecBERT ("Enhancing the Language Understanding of BERT with Causal Attention Masks") reference outputs from Hugging
Face transformers: the independent reference for test/models/hf-decbert.test.ts.

A tiny random BertModel (3 layers) and a WordPiece tokenizer are saved once (the same files on every run); then, for each case, the model runs in
float64 on two texts of different lengths padded into one batch, with every BertLayer's attention mask replaced (a
forward pre-hook) by an explicit 4-D additive mask (B, 1, T, T) built here from the case's per-layer modes:
  bidirectional  padding only (key j < len)
  causal         lower-triangular (j <= i) and padding
  anticausal     upper-triangular (j >= i) and padding
(pad query rows see themselves only, so no row is all -inf; their outputs are dropped). The case "plain" runs
BertModel with no hook and no attention_mask_modes at all: plain BERT, which "bidirectional" must equal.

Writes test/fixtures/hf-decbert/:
  model/  config.json (attention_mask_modes: the "mixed" case's list), model.safetensors (float32),
          tokenizer.json, tokenizer_config.json                              save_pretrained
  reference.json  versions, texts, their input ids, and per case: attention_mask_modes (as config.json holds it,
                  absent for "plain"), per text the mean and the first ([CLS]) row of its last hidden state (what
                  embed() pools; float64)
The other cases' folders are this one with config.json's attention_mask_modes replaced (the test writes them), so
the weights are stored once. Fails if causal and bidirectional outputs do not clearly differ, or if the folder
outgrows LIMIT_BYTES.
Usage: ../shared/tools/hf-venv.sh /tmp/hfvenv && /tmp/hfvenv/bin/python3 scripts/make_hf_decbert_fixture.py
"""
import json
import os
import sys

import torch
import transformers
from tokenizers import BertWordPieceTokenizer
from tokenizers.processors import TemplateProcessing
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "hf-decbert")
LIMIT_BYTES = 200 * 1024
LAYERS = 3
VOCAB = 128
CORPUS = [
    "the cat sat on the mat and looked at the dog.",
    "a small dog ran after the red ball in the garden.",
    "kernels read memory, multiply numbers and write the answers back.",
    "every layer may look back, look ahead, or look both ways.",
] * 4
TEXTS = ["the cat sat on the mat.", "a small dog ran after the red ball, then the cat looked back at the dog."]
# Case name -> attention_mask_modes as written to config.json (None: the field is absent). The single-string form
# and the list form both appear.
CASES = {
    "plain": None,
    "bidirectional": "bidirectional",
    "causal": "causal",
    "anticausal": ["anticausal"] * LAYERS,
    "mixed": ["anticausal", "bidirectional", "causal"],
}


def per_layer(modes):
    if modes is None:
        return None
    return [modes] * LAYERS if isinstance(modes, str) else list(modes)


def additive_mask(mode, lengths, T):
    """(B, 1, T, T) float64: 0 where query i may see key j, the dtype's minimum elsewhere (as HF builds masks)."""
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    rule = {"bidirectional": torch.ones(T, T, dtype=torch.bool), "causal": j <= i, "anticausal": j >= i}[mode]
    rows = []
    for n in lengths:
        allowed = rule & (j < n) & (i < n)
        allowed |= (i >= n) & (i == j)  # pad rows: themselves only (dropped later)
        rows.append(allowed)
    allowed = torch.stack(rows).unsqueeze(1)
    return torch.zeros(allowed.shape, dtype=torch.float64).masked_fill(~allowed, torch.finfo(torch.float64).min)


def run(model, ids, lengths, modes):
    """Last hidden states (B, T, C) with each layer's mask replaced by the mode's, or plain BERT when modes is None."""
    hooks = []
    if modes is not None:
        T = ids.shape[1]
        for layer, mode in zip(model.encoder.layer, modes):
            mask = additive_mask(mode, lengths, T)

            def hook(module, args, kwargs, mask=mask):
                # BertEncoder passes (hidden_states, attention_mask, ...) positionally.
                return (args[0], mask, *args[2:]), kwargs

            hooks.append(layer.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        attention_mask = (torch.arange(ids.shape[1]).view(1, -1) < torch.tensor(lengths).view(-1, 1)).long()
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=attention_mask).last_hidden_state
    finally:
        for h in hooks:
            h.remove()


def main():
    torch.manual_seed(0)
    # A WordPiece vocabulary listed here (not trained: the trainer breaks ties differently run to run): the specials,
    # the corpus's characters alone and as ##suffixes, then its whole words; other words split into pieces.
    text = " ".join(CORPUS)
    chars = sorted(set(text.replace(" ", "")))
    words = sorted({w.strip(".,") for w in text.split()} - {""})
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars if c.isalpha()]
    pieces += [w for w in words if w not in pieces][: VOCAB - len(pieces)]
    raw = BertWordPieceTokenizer({p: i for i, p in enumerate(pieces)}, lowercase=True)
    # [CLS] text [SEP], as BERT tokenizers do.
    raw.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                            special_tokens=[("[CLS]", raw.token_to_id("[CLS]")),
                                                            ("[SEP]", raw.token_to_id("[SEP]"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=40, type_vocab_size=2,
                     attn_implementation="eager")
    model = BertModel(cfg, add_pooling_layer=False).eval()
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif "attention.self" in name and name.endswith("weight"):
                p.copy_(0.5 * noise)  # sharp attention, so which keys a query sees shows in the outputs
            else:
                p.copy_(0.1 * noise)

    folder = os.path.join(OUT, "model")
    os.makedirs(folder, exist_ok=True)
    model.config.attention_mask_modes = CASES["mixed"]
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    for extra in ["special_tokens_map.json", "generation_config.json"]:
        if os.path.exists(os.path.join(folder, extra)):
            os.remove(os.path.join(folder, extra))

    enc = [tok(t)["input_ids"] for t in TEXTS]
    assert all(e[0] == tok.cls_token_id and e[-1] == tok.sep_token_id for e in enc), enc
    lengths = [len(e) for e in enc]
    T = max(lengths)
    ids = torch.tensor([e + [tok.pad_token_id] * (T - len(e)) for e in enc])
    model64 = model.double()
    ref = {"transformers": transformers.__version__, "torch": torch.__version__, "texts": TEXTS, "inputIds": enc,
           "cases": {}}
    for name, modes in CASES.items():
        hidden = run(model64, ids, lengths, per_layer(modes))
        texts = []
        for b, n in enumerate(lengths):
            h = hidden[b, :n]
            texts.append({"mean": h.mean(0).tolist(), "cls": h[0].tolist()})
        entry = {"texts": texts}
        if modes is not None:
            entry["attention_mask_modes"] = modes
        ref["cases"][name] = entry

    def gap(a, b):
        x = torch.tensor(ref["cases"][a]["texts"][1]["mean"] + ref["cases"][a]["texts"][1]["cls"])
        y = torch.tensor(ref["cases"][b]["texts"][1]["mean"] + ref["cases"][b]["texts"][1]["cls"])
        return float((x - y).abs().max() / y.abs().max())

    assert gap("bidirectional", "plain") < 1e-12, "explicit padding-only masks must reproduce plain BERT"
    for a, b in [("causal", "bidirectional"), ("anticausal", "bidirectional"), ("anticausal", "causal"),
                 ("mixed", "causal"), ("mixed", "anticausal"), ("mixed", "bidirectional")]:
        assert gap(a, b) > 0.05, f"{a} and {b} outputs barely differ ({gap(a, b)}): the fixture could not catch a mask bug"
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f)

    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"hf-decbert: {size / 1024:.0f} KB in {OUT}; token counts {lengths}")
    if size > LIMIT_BYTES:
        print(f"make_hf_decbert_fixture: {size} bytes, over the {LIMIT_BYTES}-byte limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
