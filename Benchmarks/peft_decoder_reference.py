"""The reference for `lorabench bench model --model smollm2`: one causal-LM training step of a
Llama decoder with peft adapters, in PyTorch, at the same setting as LoRABench's bench (batch x
sequence random tokens, rank-r adapters with alpha = 2r on the target modules of every layer, the
loss over every next token or the last one, AdamW).

The model is the same GGUF file LoRABench reads, loaded by transformers
(`from_pretrained(dir, gguf_file=...)`, dequantized to float32), as a user of transformers gets it:
its default attention (SDPA) unless `--attention eager`, its own loss (labels passed to the model,
logits at every position). Run by the Swift bench when `.venv-reference` exists
(Benchmarks/setup_reference_env.sh makes it); one variant per process, so that the peak resident
memory printed is that variant's own. Prints one JSON object on stdout.
"""
import argparse

import torch
from peft import AdaLoraConfig, LoraConfig, get_peft_model

from reference_common import DECODER_TARGETS, add_decoder_arguments, load_decoder, print_step_report, timed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_decoder_arguments(parser)
    parser.add_argument("--variant", choices=["lora", "dora", "adalora"], required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sequence", type=int, default=128)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--target-modules", default=DECODER_TARGETS, help="peft target_modules, comma-separated")
    parser.add_argument("--loss-positions", choices=["all", "last"], default="all",
                        help="all: every next token; last: each sequence's last token only")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = load_decoder(args)
    targets = args.target_modules.split(",")
    steps = args.warmup + args.repeats
    if args.variant == "adalora":
        config = AdaLoraConfig(init_r=args.rank, target_r=args.rank // 2, lora_alpha=2 * args.rank, target_modules=targets,
                               tinit=0, tfinal=0, deltaT=1, total_step=steps + 1, task_type="CAUSAL_LM")
    else:
        config = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=targets,
                            use_dora=args.variant == "dora", task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, 30000, (args.batch, args.sequence), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    labels = input_ids.clone()
    if args.loss_positions == "last":
        labels[:, :-1] = -100

    def step(t):
        # The model shifts the labels and, for AdaLoRA, adds the orthogonal regulariser itself.
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        if args.variant == "adalora":
            model.base_model.update_and_allocate(t)
        optimizer.zero_grad()

    seconds, _ = timed(step, args.warmup, args.repeats)
    print_step_report(args.variant, model.config._attn_implementation, seconds, model)


if __name__ == "__main__":
    main()
