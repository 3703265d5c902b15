"""What the PyTorch reference scripts of `lorabench bench` share: loading the decoder as transformers
loads LoRABench's GGUF file, the timing loop, the peak memory they report and a training step's report."""
import json
import resource
import statistics
import time

import torch
from transformers import AutoModelForCausalLM

DECODER_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def add_decoder_arguments(parser):
    """The model, threads and attention options of the decoder scripts."""
    parser.add_argument("--model-dir", required=True, help="folder holding the GGUF file")
    parser.add_argument("--gguf-file", required=True, help="the GGUF file's name in --model-dir")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attention", choices=["default", "eager", "sdpa"], default="default",
                        help="default: transformers' own choice (SDPA), as a user gets it")


def load_decoder(args):
    """The GGUF file as transformers loads it (`from_pretrained(dir, gguf_file=...)`, dequantized to
    float32), on `args.threads` torch threads, with `args.attention`."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    options = {} if args.attention == "default" else {"attn_implementation": args.attention}
    return AutoModelForCausalLM.from_pretrained(args.model_dir, gguf_file=args.gguf_file, dtype=torch.float32, **options)


def timed(work, warmup, repeats):
    """Calls `work(t)` for t = 0, 1, … warmup + repeats − 1 and returns the wall-clock seconds of
    the last `repeats` calls, and the last call's result."""
    seconds, result = [], None
    for t in range(warmup + repeats):
        start = time.perf_counter()
        result = work(t)
        if t >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds, result


def peak_rss_mib():
    """This process's peak resident set size so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_step_report(variant, attention, seconds, model):
    """One JSON line of a timed training step, in the fields `lorabench bench model` reads."""
    print(json.dumps({
        "implementation": f"PyTorch {torch.__version__} + peft",
        "attention": attention,
        "variant": variant,
        "median_seconds": statistics.median(seconds),
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "threads": torch.get_num_threads(),
    }))
