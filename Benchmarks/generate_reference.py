"""The reference for `lorabench bench generate`: greedy generation with transformers' `generate` on the
same GGUF file LoRABench reads (dequantized to float32), continuing the same prompt ids (batch 1,
KV cache) by exactly --max-new-tokens tokens, optionally with peft's LoRA on every Linear (rank r,
alpha 2r, as initialised: B = 0, unmerged).

No end token: the model's generation config loses its `eos_token_id`, so nothing stops the
continuation early and every token is the plain argmax, as on LoRABench's side. `min_new_tokens`
would instead mask the end token's logit until then, changing the token wherever it would have won.

Run by the Swift bench when `.venv-reference` exists (Benchmarks/setup_reference_env.sh makes it).
Prints one JSON object on stdout: the new token ids of the last timed call and each call's seconds.
"""
import argparse
import json

import torch
import transformers
from peft import LoraConfig, get_peft_model

from reference_common import DECODER_TARGETS, add_decoder_arguments, load_decoder, peak_rss_mib, timed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_decoder_arguments(parser)
    parser.add_argument("--prompt-ids", required=True, help="the prompt's token ids, comma-separated")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--lora-rank", type=int, help="peft LoRA of this rank on every Linear")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = load_decoder(args)
    model.generation_config.eos_token_id = None
    attention = model.config._attn_implementation
    if args.lora_rank:
        config = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, target_modules=DECODER_TARGETS.split(","),
                            task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    model.eval()
    input_ids = torch.tensor([[int(token) for token in args.prompt_ids.split(",")]])
    attention_mask = torch.ones_like(input_ids)

    def generate(_):
        with torch.inference_mode():
            return model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                  max_new_tokens=args.max_new_tokens)

    seconds, output = timed(generate, args.warmup, args.repeats)
    new_tokens = output[0, input_ids.shape[1]:].tolist()
    if len(new_tokens) != args.max_new_tokens:
        raise SystemExit(f"generate stopped after {len(new_tokens)} of {args.max_new_tokens} new tokens")
    print(json.dumps({
        "implementation": f"PyTorch {torch.__version__}, transformers {transformers.__version__}"
                          + (" + peft" if args.lora_rank else ""),
        "attention": attention,
        "prompt_tokens": input_ids.shape[1],
        "token_ids": new_tokens,
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
