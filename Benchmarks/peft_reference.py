"""The reference for `lorabench bench model`: one training step of all-MiniLM-L6-v2 with peft
adapters, in PyTorch, at the same setting as LoRABench's bench (batch x sequence tokens, rank-r
adapters on all six BERT module types, mean pooling + linear head, cross-entropy, AdamW).

Run by the Swift bench when `.venv-reference` exists (Benchmarks/setup_reference_env.sh makes it);
one variant per process, so that the peak resident memory printed is that variant's own.
Attention is what a user gets by default (transformers picks SDPA); `--attention eager` is the
extra, labelled comparison. Prints one JSON object on stdout.
"""
import argparse

import torch
from peft import AdaLoraConfig, LoraConfig, get_peft_model
from transformers import BertModel

from reference_common import print_step_report, timed

TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


class Classifier(torch.nn.Module):
    """BertModel, mean pooling over non-padding tokens, a linear head: LoRABench's model."""

    def __init__(self, encoder, labels):
        super().__init__()
        self.encoder = encoder
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, labels)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.classifier(pooled)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True, help="folder with config.json and model.safetensors")
    parser.add_argument("--variant", choices=["lora", "dora", "adalora"], required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sequence", type=int, default=64)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--attention", choices=["default", "eager", "sdpa"], default="default",
                        help="default: transformers' own choice (SDPA), as a user gets it")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    options = {} if args.attention == "default" else {"attn_implementation": args.attention}
    encoder = BertModel.from_pretrained(args.model_dir, add_pooling_layer=False, **options)
    model = Classifier(encoder, labels=2)
    steps = args.warmup + args.repeats
    if args.variant == "adalora":
        config = AdaLoraConfig(init_r=args.rank, target_r=args.rank // 2, lora_alpha=2 * args.rank, target_modules=TARGETS,
                               tinit=0, tfinal=0, deltaT=1, total_step=steps + 1, modules_to_save=["classifier"])
    else:
        config = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=TARGETS,
                            use_dora=args.variant == "dora", modules_to_save=["classifier"])
    model = get_peft_model(model, config)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, 30000, (args.batch, args.sequence), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(0, 2, (args.batch,), generator=generator)

    def step(t):
        logits = model(input_ids=input_ids, attention_mask=attention_mask)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        if args.variant == "adalora":
            loss = loss + config.orth_reg_weight * orthogonal_regulariser(model)
        loss.backward()
        optimizer.step()
        if args.variant == "adalora":
            model.base_model.update_and_allocate(t)
        optimizer.zero_grad()

    seconds, _ = timed(step, args.warmup, args.repeats)
    print_step_report(args.variant, encoder.config._attn_implementation, seconds, model)


def orthogonal_regulariser(model):
    """AdaLoraModel.forward adds this only when the wrapped model returns a loss; ours returns
    logits, so the step adds it as peft would (mean of unsquared Frobenius norms)."""
    total, count = 0.0, 0
    for name, p in model.named_parameters():
        if ("lora_A" in name or "lora_B" in name) and p.requires_grad:
            gram = p @ p.T if "lora_A" in name else p.T @ p
            total = total + torch.norm(gram - torch.eye(gram.shape[0]), p="fro")
            count += 1
    return total / count


if __name__ == "__main__":
    main()
