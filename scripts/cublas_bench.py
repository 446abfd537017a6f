#!/usr/bin/env python3
"""cuBLAS beside eet's GEMMs (run by scripts/gpu-suite.sh on the GPU machine after its gemm-bench step).

Times torch.matmul(x, w.t()) - y (M, N) = x (M, K) · Wᵀ with W stored (N, K), the nn.Linear layout eet uses, which
PyTorch hands to cuBLAS / cuBLASLt - at exactly the GEMM shapes of op-bench reports (scripts/op-bench.js --ops gemm
--json: every case whose op is "gemm", and its square GEMMs), in each dtype asked, the way op-bench times eet:
CUDA events around each launch, the L2 scrubbed (a buffer twice its size zeroed) before each, warm-up launches
first, the median of the timed launches. Inputs are uniform random values of std 0.02, as op-bench's.
  python3 scripts/cublas_bench.py --from gemm-f16.json --dtypes float16,bfloat16 --out cublas.json
`--check` exits 0 when torch imports, 3 otherwise (the suite then reports the step skipped). On a machine without
CUDA (--device cpu: the suite's dry run) the same loop runs with the host clock: a check of the script, no cuBLAS.
Prints one JSON document on stdout (also written to --out); progress goes to stderr.
"""
import argparse
import json
import re
import statistics
import sys
import time

ABOUT = re.compile(r"^M=(\d+) N=(\d+) K=(\d+)$")


def log(msg):
    print(f"cublas_bench: {msg}", file=sys.stderr, flush=True)


def gemm_shapes(paths):
    """The distinct (m, n, k) of the gemm cases in op-bench reports, in the order they appear."""
    seen = []
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        cases = [op for m in report.get("models", []) for s in m["settings"] for op in s["ops"]]
        cases += report.get("square", [])
        for op in cases:
            match = ABOUT.match(op.get("about", "")) if op.get("op") == "gemm" else None
            if match:
                shape = tuple(int(g) for g in match.groups())
                if shape not in seen:
                    seen.append(shape)
    return seen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only check that torch imports")
    ap.add_argument("--from", dest="reports", action="append", default=[], help="an op-bench JSON report (repeatable)")
    ap.add_argument("--dtypes", default="float16,bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--budget", type=float, default=50.0, help="seconds; shapes past it are reported skipped")
    ap.add_argument("--out")
    a = ap.parse_args()

    try:
        import torch
    except ImportError as e:
        if a.check:
            print(f"cublas_bench: {e}", file=sys.stderr)
            return 3
        raise
    if a.check:
        print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}")
        return 0
    if not a.reports:
        ap.error("--from is required (an op-bench report: scripts/op-bench.js --ops gemm --json)")
    shapes = gemm_shapes(a.reports)
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    device = torch.device(a.device)
    gpu = device.type == "cuda"
    start = time.perf_counter()

    scrub = None
    if gpu:
        props = torch.cuda.get_device_properties(device)
        l2 = getattr(props, "L2_cache_size", 0) or (64 << 20)
        scrub = torch.empty(2 * l2, dtype=torch.uint8, device=device)
    blas = None
    try:
        blas = str(torch.backends.cuda.preferred_blas_library())
    except Exception:  # older torch: no such query
        pass

    def time_gemm(m, n, k, dtype):
        g = torch.Generator(device=device).manual_seed(m * 31 + n * 7 + k)
        x = ((torch.rand(m, k, generator=g, device=device) - 0.5) * 0.0692).to(dtype)
        w = ((torch.rand(n, k, generator=g, device=device) - 0.5) * 0.0692).to(dtype)
        y = torch.empty(m, n, dtype=dtype, device=device)
        wt = w.t()
        for _ in range(a.warmup):
            torch.matmul(x, wt, out=y)
        ms = []
        if gpu:
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(a.reps)]
            for begin, end in events:
                scrub.zero_()
                begin.record()
                torch.matmul(x, wt, out=y)
                end.record()
            torch.cuda.synchronize()
            ms = [b.elapsed_time(e) for b, e in events]
        else:
            for _ in range(a.reps):
                t0 = time.perf_counter()
                torch.matmul(x, wt, out=y)
                ms.append((time.perf_counter() - t0) * 1000)
        if not bool(torch.isfinite(y).all()):
            raise RuntimeError("non-finite output")
        med = statistics.median(ms)
        return {"medianMs": med, "minMs": min(ms), "maxMs": max(ms), "tflops": 2.0 * m * n * k / (med / 1000) / 1e12}

    results = []
    for m, n, k in shapes:
        for dtype in dtypes:
            cell = {"m": m, "n": n, "k": k, "dtype": dtype}
            if time.perf_counter() - start > a.budget:
                results.append({**cell, "status": "skipped", "error": f"past the {a.budget:.0f} s budget"})
                continue
            try:
                cell.update(status="ok", **time_gemm(m, n, k, getattr(torch, dtype)))
                log(f"M={m} N={n} K={k} {dtype}: {cell['medianMs'] * 1000:.1f} us, {cell['tflops']:.1f} TFLOP/s")
            except Exception as e:  # one shape failing (out of memory) must not lose the others
                cell.update(status="error", error=f"{type(e).__name__}: {str(e)[:300]}")
                log(f"M={m} N={n} K={k} {dtype}: {cell['error']}")
                if gpu:
                    torch.cuda.empty_cache()
            results.append(cell)

    doc = {
        "tool": "cublas_bench",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if gpu else "cpu (dry run: not cuBLAS)",
        "blasLibrary": blas,
        "timing": {
            "gpu": gpu, "warmup": a.warmup, "reps": a.reps,
            "note": "CUDA events around each torch.matmul, the L2 scrubbed before each; median" if gpu
            else "host clock on the cpu: a dry run of the script; these times say nothing about cuBLAS",
        },
        "reports": a.reports,
        "results": results,
    }
    text = json.dumps(doc, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0 if all(r["status"] != "error" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
