#!/usr/bin/env python3
"""HF transformers baseline for `eet bench` (run by scripts/gpu-suite.sh on the GPU machine; no network needed).

Builds each shape as a LlamaForCausalLM with random weights (torch.manual_seed; HF's init, std 0.02) in the
bench dtype, and times `generate` (greedy, exactly --new tokens, random prompt ids) in two variants:
  eager     PyTorch eager, HF's dynamic KV cache
  compiled  static KV cache + torch.compile(model.forward, fullgraph=True), mode "reduce-overhead" (CUDA graphs) on
            the GPU, "default" on the CPU (no graphs there): the gpt-fast recipe as HF documents it, prefill and decode
            both compiled. The first run of each cell compiles and is not timed. HF's own compile in generate() is
            switched off (disable_compile) so the forward is compiled once, here.
            CUDA graphs replay into the same output buffers: each forward starts a new graph step
            (torch.compiler.cudagraph_mark_step_begin) and hands out copies of its tensors, so nothing generate() keeps
            from one step is overwritten by the next ("accessing tensor output of CUDAGraphs that has been
            overwritten by a subsequent run", the first hardware run's failure).
A streamer records when each token arrives (after a device synchronize): time to first token = prefill + first
sample; decode ms/step = (last token - first token) / (new - 1). The same definitions as `eet bench`.

Shapes come from `eet bench --list-shapes --json` (so both sides build the same models):
  python3 scripts/hf_bench.py --shapes shapes.json --models llama-7b --batch 1,16 --prompt 128 --new 64
`--check` exits 0 when torch and transformers import, 3 otherwise (the suite then reports the step skipped).
Prints one JSON document on stdout (also written to --out); progress goes to stderr.
"""
import argparse
import json
import sys
import time


def parse_list(text):
    return [int(x) for x in text.split(",") if x.strip()]


def log(msg):
    print(f"hf_bench: {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only check that torch and transformers import")
    ap.add_argument("--shapes", help="JSON list of shapes (eet bench --list-shapes --json)")
    ap.add_argument("--models", default="tinyllama-1.1b,llama-7b")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--prompt", default="128")
    ap.add_argument("--new", default="64")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--variants", default="eager,compiled")
    ap.add_argument("--compiled-cells", type=int, default=1 << 30, help="compile-and-time only the first N cells")
    ap.add_argument("--compile-mode", default="auto",
                    help='torch.compile mode of the compiled variant; auto: "reduce-overhead" on cuda, "default" elsewhere')
    ap.add_argument("--budget", type=float, default=240.0, help="seconds; cells past it are reported skipped")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()

    try:
        import torch
        import transformers
    except ImportError as e:
        if a.check:
            print(f"hf_bench: {e}", file=sys.stderr)
            return 3
        raise
    if a.check:
        print(f"torch {torch.__version__}, transformers {transformers.__version__}, cuda {torch.cuda.is_available()}")
        return 0
    if not a.shapes:
        ap.error("--shapes is required (eet bench --list-shapes --json > shapes.json)")
    with open(a.shapes) as f:
        shapes = {s["name"]: s for s in json.load(f)}

    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.generation.streamers import BaseStreamer

    device = torch.device(a.device)
    dtype = getattr(torch, a.dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    compile_mode = a.compile_mode if a.compile_mode != "auto" else ("reduce-overhead" if device.type == "cuda" else "default")
    start = time.perf_counter()
    grid = [(b, p, n) for b in parse_list(a.batch) for p in parse_list(a.prompt) for n in parse_list(a.new)]
    max_ctx = max(p + n for _, p, n in grid)
    report = {
        "tool": "hf_bench",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": a.dtype,
        "compileMode": compile_mode,
        "models": [],
    }

    class Timer(BaseStreamer):
        """put() is called with the prompt, then with each new token: record when each token is ready."""

        def __init__(self):
            self.times = []

        def put(self, value):
            sync()
            self.times.append(time.perf_counter())

        def end(self):
            pass

    # generate() compiles the forward itself when the cache is static (transformers >= 4.5x): not on top of ours.
    hf_compiles = hasattr(GenerationConfig(), "disable_compile")

    def compile_forward(forward):
        compiled = torch.compile(forward, mode=compile_mode, fullgraph=True)
        graphs = compile_mode == "reduce-overhead" and device.type == "cuda"

        def step(*args, **kwargs):
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()  # a new step: the previous replay's outputs are done with
            out = compiled(*args, **kwargs)
            if graphs:  # the next replay writes into the same buffers: keep copies (logits are (B, 1, V) or so)
                for k, v in list(out.items()):
                    if torch.is_tensor(v):
                        out[k] = v.clone()
            return out

        return step

    def run_generate(model, ids, new, variant, streamer=None):
        kwargs = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
        if streamer is not None:
            kwargs["streamer"] = streamer
        if variant == "compiled":
            kwargs["cache_implementation"] = "static"
            if hf_compiles:
                kwargs["disable_compile"] = True
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        sync()
        return t0, time.perf_counter()

    def timed_generate(model, ids, new, variant):
        """(time to first token ms, decode ms per step)."""
        timer = Timer()
        try:
            t0, _ = run_generate(model, ids, new, variant, timer)
            t = timer.times  # [prompt, token 1, ..., token new]
            return (t[1] - t0) * 1e3, (t[-1] - t[1]) * 1e3 / max(1, len(t) - 2)
        except ValueError as e:  # a transformers version that refuses streamers here: two calls instead
            if "stream" not in str(e).lower():
                raise
            t0, t1 = run_generate(model, ids, 1, variant)
            u0, u1 = run_generate(model, ids, new, variant)
            ttft = (t1 - t0) * 1e3
            return ttft, ((u1 - u0) * 1e3 - ttft) / max(1, new - 1)

    for name in a.models.split(","):
        entry = {"model": name, "status": "ok", "results": []}
        report["models"].append(entry)
        s = shapes.get(name)
        if s is None or s.get("arch") != "llama":
            entry["status"] = "unsupported"
            entry["error"] = f"{name}: not a LLaMA shape in {a.shapes}"
            continue
        try:
            cfg = LlamaConfig(
                vocab_size=s["vocabSize"], hidden_size=s["dim"], intermediate_size=s["hiddenDim"],
                num_hidden_layers=s["nLayers"], num_attention_heads=s["nHeads"], num_key_value_heads=s["nKvHeads"],
                head_dim=s["headDim"], max_position_embeddings=max(s["maxSeqLen"], max_ctx), rms_norm_eps=s["normEps"],
                tie_word_embeddings=s["tiedEmbeddings"], initializer_range=0.02,
                bos_token_id=1, eos_token_id=2, pad_token_id=0,
            )
            if s["ropeTheta"] != 10000:  # transformers 5 moved rope_theta into rope_parameters; every shape uses the default
                raise ValueError(f"rope theta {s['ropeTheta']} is not the transformers default 10000")
            torch.manual_seed(a.seed)
            log(f"building {name} on {device} ({a.dtype})")
            t = time.perf_counter()
            prev = torch.get_default_dtype()
            try:
                torch.set_default_dtype(dtype)  # build in the bench dtype directly (a 7B in float32 is 27 GB)
                with device:
                    model = LlamaForCausalLM(cfg)
            except TypeError:  # a torch that only takes float32/float64 here
                torch.set_default_dtype(prev)
                with device:
                    model = LlamaForCausalLM(cfg).to(dtype)
            finally:
                torch.set_default_dtype(prev)
            model.eval()
            entry["buildMs"] = (time.perf_counter() - t) * 1e3
            entry["params"] = sum(p.numel() for p in model.parameters())
            eager_forward = model.forward
            compiled_forward = None
            for ci, (b, p, n) in enumerate(grid):
                for variant in a.variants.split(","):
                    cell = {"variant": variant, "batch": b, "prompt": p, "newTokens": n}
                    entry["results"].append(cell)
                    if time.perf_counter() - start > a.budget:
                        cell.update(status="skipped", error=f"time budget of {a.budget:.0f} s spent")
                        continue
                    if variant == "compiled" and ci >= a.compiled_cells:
                        cell.update(status="skipped", error=f"--compiled-cells {a.compiled_cells}")
                        continue
                    if variant == "compiled" and compiled_forward is None:
                        compiled_forward = compile_forward(eager_forward)
                    model.forward = compiled_forward if variant == "compiled" else eager_forward
                    try:
                        g = torch.Generator(device="cpu").manual_seed(a.seed + b * 1000 + p)
                        ids = torch.randint(3, s["vocabSize"], (b, p), generator=g).to(device)
                        timed_generate(model, ids, n, variant)  # warm-up (compiles the compiled variant)
                        ttft, step = timed_generate(model, ids, n, variant)
                        cell.update(status="ok", ttftMs=ttft, prefillTokPerSec=b * p / (ttft / 1e3),
                                    decodeMsPerStep=step, decodeTokPerSec=b / (step / 1e3))
                        log(f"{name} {variant} b{b} p{p} n{n}: ttft {ttft:.1f} ms, {b / (step / 1e3):.1f} tok/s")
                    except Exception as e:  # noqa: BLE001 — a failing cell is reported, the rest still run
                        cell.update(status="error", error=f"{type(e).__name__}: {str(e)[:300]}")
                        log(f"{name} {variant} b{b} p{p} n{n}: {cell['error']}")
            model.forward = eager_forward
            del model
        except Exception as e:  # noqa: BLE001
            entry["status"] = "error"
            entry["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            log(f"{name}: {entry['error']}")
        if device.type == "cuda":
            torch.cuda.empty_cache()

    text = json.dumps(report, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
