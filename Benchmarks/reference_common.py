"""What the PyTorch reference scripts of `lorabench bench` share: loading the decoder as transformers
loads LoRABench's GGUF file, the timing loop, and the peak memory they report."""
import resource
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
