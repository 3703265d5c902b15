"""Checks that Hugging Face peft loads the adapters LoRABench saves, and computes what LoRABench computes.

LoRABench writes its trained adapters in peft's layout (adapter_model.safetensors + adapter_config.json)
so that `PeftModel.from_pretrained` can use them. This script verifies it end to end, for each adapter
folder:

  (a) `lorabench infer` runs a fixed batch of texts of different lengths (so padding matters) and saves
      input_ids, attention_mask, last_hidden_state and, when the adapter has a trained head, logits;
  (b) transformers' BertModel (the base loaded from LoRABench's model cache; there is no model hub here)
      + `PeftModel.from_pretrained(base, ADAPTER)` runs the same input_ids / attention_mask; its
      last_hidden_state is compared over the non-padding tokens, and its logits are the saved head
      (`base_model.model.classifier.*`, which BertModel has no module for) applied to the
      attention-mask mean of the hidden states;
  (c) every tensor of the file must be in the loaded model, equal, and the model must hold no adapter
      tensor the file lacks (peft's own `get_peft_model_state_dict` of the loaded model against the file);
      VeRA's projections, shared by all its modules, are one pair of keys (`base_model.vera_A`,
      `base_model.vera_B`) and must be in the file too (`save_projection: true`): else peft regenerates
      them from `projection_prng_key`;
  (d) `lorabench merge` writes a plain model folder, which `BertModel.from_pretrained` must load without
      missing or unexpected keys and which must compute what peft's `merge_and_unload()` and LoRABench
      compute (logits through the merged folder's classifier.safetensors).

A decoder's adapter (base_model_name_or_path SmolLM2-135M-Instruct, task_type CAUSAL_LM) is checked on the model
transformers loads from LoRABench's GGUF file (`from_pretrained(DIR, gguf_file=NAME)`, dequantized to float32;
this needs the `gguf` package):

  (a) `lorabench infer` continues a few prompts greedily (one left-padded batch, up to the file's
      end-of-sequence token); `PeftModel.from_pretrained(base, ADAPTER).generate` (greedy, each prompt alone)
      must give the same text;
  (b) peft's logits at each prompt's last token (one right-padded batch) are the reference;
  (c) as for an encoder;
  (d) `lorabench merge` writes transformers-named float32 weights and a config.json, which
      `LlamaForCausalLM.from_pretrained` must load without missing or unexpected keys (the head is tied) and
      whose logits must be peft's, before and after its `merge_and_unload()`.

An adapter passes when every relative Frobenius error ‖a − b‖/‖b‖ is below 1e-4 and (c) finds nothing (and, for a
decoder, every greedy continuation is equal).
The exit status is 1 when one fails. A folder without adapted modules (head_only) is skipped: peft
needs a target module. The r column is the adapter's r, not always the run's rank: an OLoRA or PiSSA
run is saved converted to a plain LoRA of rank 2r that loads onto the original base (what peft's
`save_pretrained(..., path_initial_model_for_weight_conversion=...)` writes).

Run from the project root, after `Interop/setup_env.sh`:

    .venv-reference/bin/python Interop/check_with_peft.py                 # the r8 run of every variant in results/sst2-ranks
    .venv-reference/bin/python Interop/check_with_peft.py DIR [DIR ...]   # these adapter folders as well (encoders' or decoders')

It is not part of the test suite: it needs PyTorch, transformers and peft.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import peft
import torch
import transformers
import yaml
from peft import PeftModel, PeftType, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, BertModel, LlamaForCausalLM

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4
HEAD_PREFIX = "base_model.model.classifier."
TEXTS = [
    "Great.",
    "A gorgeous, witty, seductive movie.",
    "The plot is thin and the jokes fall flat, but the cast seems to be having fun anyway.",
    "not bad",
    "It's a sad, sick sight, and the movie is a mess from beginning to end; even its two fine "
    "performances cannot rescue a script that seems to have been assembled from leftover parts.",
    "an utterly charming and hilarious film that reminded me of why i love going to the movies",
    "Why?",
    "Naïve, overlong — and yet strangely moving.",
]
# A decoder's adapters: its base (the model family's hub name, and the GGUF file LoRABench's cache holds) and the
# prompts it continues, of different lengths so that padding matters.
DECODER_HUB_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
DECODER_MODEL = ("smollm2", "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
DECODER_PROMPTS = [
    "The capital of France is",
    "Review: a gorgeous, witty, seductive movie. Sentiment:",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "Why?",
]
MAX_NEW_TOKENS = 16
# peft 0.21.2 warns of every AdaLoRA checkpoint, its own too, that the rank_pattern keys were ignored: BaseTuner's
# inject_adapter checks them as LoRA's module-name patterns, while AdaLoRA's name each module's lora_E
# (`<module>.lora_E`, as its save_pretrained writes them) and resize_modules_by_rank_pattern applies them afterwards.
ADALORA_RANK_PATTERN_WARNING = "The following rank_pattern keys did not match any targeted module and were ignored"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapters", nargs="*", type=Path, help="adapter folders to check besides the default ones")
    parser.add_argument("--results", type=Path, default=ROOT / "results/sst2-ranks",
                        help="results folder whose rank-8 run of every variant (and head_only run) is checked")
    parser.add_argument("--decoder-results", type=Path, default=ROOT / "results/smollm2-sst2",
                        help="results folder whose rank-8 run of every variant on the decoder is checked, when it exists")
    parser.add_argument("--no-default", action="store_true", help="check only the folders given")
    parser.add_argument("--lorabench", type=Path, default=ROOT / ".build/release/lorabench",
                        help="the lorabench binary (built with `swift build -c release` when it is the missing default)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecations, reached through peft
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    lorabench = ensure_lorabench(args.lorabench)
    folders = ([] if args.no_default else default_adapters(args.results) + default_adapters(args.decoder_results)) + args.adapters
    if not folders:
        parser.error("no adapter folders: give some, or a --results folder with runs/*/adapter")

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, folder in enumerate(folders):
            print(f"checking {folder}", file=sys.stderr)
            try:
                if is_decoder_adapter(folder):
                    rows.append(check_decoder(folder, lorabench, Path(scratch) / str(index)))
                else:
                    rows.append(check(folder, ensure_base_model(lorabench), lorabench, Path(scratch) / str(index)))
            except Exception as error:  # a folder that lorabench or peft cannot load is a FAIL row, not the end of the check
                variant, rank = describe_run(folder)
                rows.append({"variant": variant, "r": adapter_rank_text(folder, rank), "type": "?", "status": "FAIL",
                             "note": f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"})
    print_table(rows)
    return 1 if any(row["status"] == "FAIL" for row in rows) else 0


def ensure_lorabench(path: Path) -> Path:
    if not path.exists() and path == ROOT / ".build/release/lorabench":
        subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True)
    if not path.exists():
        sys.exit(f"{path}: no lorabench binary")
    return path


def ensure_base_model(lorabench: Path) -> Path:
    cache = Path(os.environ.get("LORABENCH_CACHE", Path.home() / ".cache/lorabench"))
    model_dir = cache / "models/all-MiniLM-L6-v2"
    if not (model_dir / "model.safetensors").exists():
        subprocess.run([lorabench, "fetch-model", "minilm"], check=True)
    return model_dir


def ensure_decoder_model(lorabench: Path) -> Path:
    """The decoder's GGUF file in LoRABench's cache, fetched there when missing."""
    name, directory, file_name = DECODER_MODEL
    cache = Path(os.environ.get("LORABENCH_CACHE", Path.home() / ".cache/lorabench"))
    path = cache / "models" / directory / file_name
    if not path.exists():
        subprocess.run([lorabench, "fetch-model", name], check=True)
    return path


def default_adapters(results: Path) -> list[Path]:
    """One adapter per variant label: its rank-8 run, else its first run (head_only has only one)."""
    chosen = {}
    for folder in sorted(results.glob("runs/*/adapter")):
        variant, rank = describe_run(folder)
        if variant not in chosen or rank == 8:
            chosen[variant] = folder
    return list(chosen.values())


def describe_run(folder: Path) -> tuple[str, int]:
    """The run's variant label (with the step for runs/<id>/checkpoints/step-<n>) and rank from its
    settings.yaml; else the folder's name and the config's r. The run's rank only picks the default adapters:
    the r column is the adapter's r (twice the run's rank for OLoRA and PiSSA)."""
    checkpoint = folder.parent.name == "checkpoints"
    settings = (folder.parent.parent if checkpoint else folder.parent) / "settings.yaml"
    if settings.exists():
        run = yaml.safe_load(settings.read_text())
        return run["variant"]["label"] + (f" @{folder.name}" if checkpoint else ""), int(run.get("rank", 0))
    return folder.name, json.loads((folder / "adapter_config.json").read_text())["r"]


def check(folder: Path, model_dir: Path, lorabench: Path, scratch: Path) -> dict:
    config = json.loads((folder / "adapter_config.json").read_text())
    row = {"variant": describe_run(folder)[0], "r": rank_text(config), "type": type_text(config)}
    if not config["target_modules"]:
        return row | {"status": "SKIP", "note": "no adapted modules: peft needs a target module"}
    scratch.mkdir(parents=True)

    # (a) LoRABench's outputs.
    ours_path = scratch / "lorabench.safetensors"
    run(lorabench, "infer", folder, *[arg for text in TEXTS for arg in ("--text", text)], "--out", ours_path)
    ours = load_file(ours_path)
    inputs = {"input_ids": ours["input_ids"], "attention_mask": ours["attention_mask"]}
    mask = ours["attention_mask"].bool()
    tensors = load_file(folder / "adapter_model.safetensors")
    head = (tensors[HEAD_PREFIX + "weight"], tensors[HEAD_PREFIX + "bias"]) if HEAD_PREFIX + "weight" in tensors else None

    # (b) peft's outputs; its warnings while loading are kept for the report.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = PeftModel.from_pretrained(BertModel.from_pretrained(model_dir), folder).eval()
    row["warnings"] = sorted({str(warning.message) for warning in caught})
    with torch.no_grad():
        theirs = peft_model(**inputs).last_hidden_state
    row["max_abs"] = (ours["last_hidden_state"][mask] - theirs[mask]).abs().max().item()
    row["rel_hidden"] = relative_error(ours["last_hidden_state"][mask], theirs[mask])
    row["rel_logits"] = relative_error(ours["logits"], logits(theirs, mask, head)) if head else None

    # (c) every tensor loaded, nothing left at its initialisation.
    row["problems"] = not_loaded(peft_model, tensors)

    # (d) lorabench merge → plain BertModel, against peft's merge_and_unload() and LoRABench.
    merged_dir = scratch / "merged"
    run(lorabench, "merge", folder, "--out", merged_dir)
    plain, info = BertModel.from_pretrained(merged_dir, output_loading_info=True)
    row["problems"] += [f"merged: {kind} {sorted(keys)}" for kind, keys in info.items() if keys]
    with torch.no_grad():
        merged = plain.eval()(**inputs).last_hidden_state
        peft_merged = peft_model.merge_and_unload()(**inputs).last_hidden_state
    merged_errors = [relative_error(merged[mask], peft_merged[mask]), relative_error(merged[mask], ours["last_hidden_state"][mask])]
    if head:
        merged_head = load_file(merged_dir / "classifier.safetensors")
        merged_errors.append(relative_error(logits(merged, mask, (merged_head["weight"], merged_head["bias"])), ours["logits"]))
    row["rel_merged"] = max(merged_errors)

    errors = [row["rel_hidden"], row["rel_merged"]] + ([row["rel_logits"]] if head else [])
    passed = all(error < TOLERANCE for error in errors) and not row["problems"]
    return row | {"status": "PASS" if passed else "FAIL", "note": "; ".join(row["problems"][:3])}


def is_decoder_adapter(folder: Path) -> bool:
    config = json.loads((folder / "adapter_config.json").read_text())
    return config.get("base_model_name_or_path") == DECODER_HUB_NAME or config.get("task_type") == "CAUSAL_LM"


def check_decoder(folder: Path, lorabench: Path, scratch: Path) -> dict:
    config = json.loads((folder / "adapter_config.json").read_text())
    row = {"variant": describe_run(folder)[0], "r": rank_text(config), "type": type_text(config)}
    try:
        import gguf  # noqa: F401  (transformers reads the GGUF file through it)
    except ImportError:
        return row | {"status": "FAIL", "note": "transformers needs the gguf package to load the decoder: pip install gguf"}
    scratch.mkdir(parents=True)
    model_file = ensure_decoder_model(lorabench)
    tokenizer = AutoTokenizer.from_pretrained(model_file.parent, gguf_file=model_file.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", FutureWarning)
        base = AutoModelForCausalLM.from_pretrained(model_file.parent, gguf_file=model_file.name, dtype=torch.float32)
        peft_model = PeftModel.from_pretrained(base, folder).eval()
    row["warnings"] = sorted({str(warning.message) for warning in caught})

    # (a) greedy continuations: LoRABench's batch against peft's, prompt by prompt (no padding on peft's side).
    prompts_file = scratch / "prompts.txt"
    prompts_file.write_text("\n".join(DECODER_PROMPTS) + "\n")
    result = subprocess.run([str(lorabench), "infer", str(folder), "--texts-file", str(prompts_file), "--max-new-tokens", str(MAX_NEW_TOKENS)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"lorabench infer failed: {result.stderr.strip()}")
    ours = [tsv_unescape(line.split("\t")[0]) for line in result.stdout.splitlines()]
    theirs = [greedy_text(peft_model, tokenizer, prompt) for prompt in DECODER_PROMPTS]
    differing = [index for index, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    row["problems"] = [f"greedy text of prompt {index + 1}: LoRABench {ours[index]!r}, peft {theirs[index]!r}" for index in differing]
    if len(ours) != len(theirs):
        row["problems"].append(f"lorabench infer printed {len(ours)} rows for {len(theirs)} prompts")

    # (b) peft's logits at each prompt's last token.
    batch = tokenizer(DECODER_PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    last = batch["attention_mask"].sum(1) - 1
    rows = torch.arange(len(DECODER_PROMPTS))

    def last_logits(model) -> torch.Tensor:
        with torch.no_grad():
            return model(**batch).logits[rows, last]

    theirs_logits = last_logits(peft_model)

    # (c) every tensor loaded, nothing left at its initialisation.
    row["problems"] += not_loaded(peft_model, load_file(folder / "adapter_model.safetensors"))

    # (d) lorabench merge → plain LlamaForCausalLM, against peft unmerged and merged.
    merged_dir = scratch / "merged"
    run(lorabench, "merge", folder, "--out", merged_dir)
    plain, info = LlamaForCausalLM.from_pretrained(merged_dir, output_loading_info=True, dtype=torch.float32)
    row["problems"] += [f"merged: {kind} {sorted(keys)}" for kind, keys in info.items() if keys]
    merged_logits = last_logits(plain.eval())
    peft_merged_logits = last_logits(peft_model.merge_and_unload())
    row["max_abs"] = (merged_logits - theirs_logits).abs().max().item()
    row["rel_hidden"] = None
    row["rel_logits"] = relative_error(merged_logits, theirs_logits)
    row["rel_merged"] = relative_error(merged_logits, peft_merged_logits)

    passed = row["rel_logits"] < TOLERANCE and row["rel_merged"] < TOLERANCE and not row["problems"]
    note = f"greedy {len(ours) - len(differing)}/{len(theirs)} equal; logits: merged folder vs peft"
    return row | {"status": "PASS" if passed else "FAIL", "note": "; ".join([note] + row["problems"][:3])}


def greedy_text(model, tokenizer, prompt: str) -> str:
    """peft's greedy continuation of `prompt`, as `lorabench infer` prints it: up to MAX_NEW_TOKENS tokens, ending
    at the file's end-of-sequence token, which is left out of the text."""
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    new = output[0, inputs["input_ids"].shape[1]:].tolist()
    if new and new[-1] == tokenizer.eos_token_id:
        new = new[:-1]
    return tokenizer.decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def tsv_unescape(field: str) -> str:
    """A field as `lorabench infer` escapes it (TSV.field): \\\\, \\t, \\n, \\r and \\u{HEX}."""
    out, index = [], 0
    while index < len(field):
        char = field[index]
        if char != "\\" or index + 1 == len(field):
            out.append(char)
            index += 1
            continue
        code = field[index + 1]
        if code == "u" and field.startswith("{", index + 2):
            end = field.index("}", index + 3)
            out.append(chr(int(field[index + 3:end], 16)))
            index = end + 1
        else:
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}.get(code, code))
            index += 2
    return "".join(out)


def run(*command) -> None:
    result = subprocess.run([str(part) for part in command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"lorabench {command[1]} failed: {result.stderr.strip()}")


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def logits(hidden: torch.Tensor, mask: torch.Tensor, head: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The head on the attention-mask mean of the tokens' hidden states (sentence-transformers pooling)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.linear(pooled, *head)


def not_loaded(peft_model: PeftModel, tensors: dict[str, torch.Tensor]) -> list[str]:
    """File tensors the loaded model does not hold as saved, and adapter tensors of the model the file lacks.
    The head is left out: BertModel has no `classifier`, the script applies it itself."""
    with warnings.catch_warnings():  # peft warns that the zero-sized tensors of an AdaLoRA module pruned to rank 0 look unsharded
        warnings.simplefilter("ignore")
        loaded = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    if peft_model.active_peft_config.peft_type == PeftType.VERA:
        # VeRA's projections: one buffer pair on the tuner that every adapted module refers to, one key each in peft's
        # state dict. With save_projection false peft leaves them out and regenerates them from projection_prng_key;
        # they are expected in the file all the same.
        for name in ("vera_A", "vera_B"):
            loaded.setdefault(f"base_model.{name}", getattr(peft_model.base_model, name)[peft_model.active_adapter])
    problems = [f"not loaded: {key}" for key, value in tensors.items()
                if not key.startswith(HEAD_PREFIX)
                and (key not in loaded or loaded[key].shape != value.shape or not torch.equal(loaded[key], value))]
    return problems + [f"not in the file: {key}" for key in loaded if key not in tensors]


def adapter_rank_text(folder: Path, run_rank: int) -> str:
    """The r column of a folder that failed: its config's r when it can be read, else the run's rank."""
    try:
        return rank_text(json.loads((folder / "adapter_config.json").read_text()))
    except (OSError, ValueError, KeyError):
        return str(run_rank)


def rank_text(config: dict) -> str:
    """r, and the range of per-module ranks when a rank pattern sets them (AdaLoRA: kept triplets)."""
    ranks = [sum(value) if isinstance(value, list) else value for value in (config.get("rank_pattern") or {}).values()]
    return f"{config['r']} (k {min(ranks)}–{max(ranks)})" if ranks else str(config["r"])


def type_text(config: dict) -> str:
    flags = [name for name, on in [("dora", config.get("use_dora")), ("rslora", config.get("use_rslora")),
                                   ("alpha_pattern", config.get("alpha_pattern")),
                                   (f"bias={config.get('bias')}", config.get("bias", "none") != "none"),
                                   # not converted (OLoRA/PiSSA): peft reruns that initialisation on the base it is given
                                   (f"init={config.get('init_lora_weights')}", isinstance(config.get("init_lora_weights"), str))] if on]
    return " ".join([config["peft_type"]] + flags)


def print_table(rows: list[dict]) -> None:
    def number(value):
        return "n/a" if value is None else f"{value:.2e}"

    header = ["variant", "r", "peft type", "max|Δ| hidden", "rel err hidden", "rel err logits", "merged rel err", "result"]
    lines = [[row["variant"], row["r"], row["type"]]
             + ([number(row[key]) for key in ("max_abs", "rel_hidden", "rel_logits", "rel_merged")] if "max_abs" in row else ["n/a"] * 4)
             + [row["status"] + (f" ({row['note']})" if row.get("note") else "")] for row in rows]
    print(f"tolerance: relative error < {TOLERANCE:g}; torch {torch.__version__}, transformers {transformers.__version__}, "
          f"peft {peft.__version__}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in lines:
        print("| " + " | ".join(line) + " |")
    loading_warnings = {}
    for row in rows:
        for message in row.get("warnings", []):
            loading_warnings.setdefault(message, []).append(row["variant"])
    for message, variants in loading_warnings.items():
        short = message if len(message) < 200 else message[:200] + " …"
        if message.startswith(ADALORA_RANK_PATTERN_WARNING):
            short += (" [peft says this of its own AdaLoRA checkpoints too: it checks their `<module>.lora_E` keys as LoRA's"
                      " module patterns, then resizes each module by them; a PASS row's check (c) found every tensor at its"
                      " saved, resized shape]")
        print(f"peft warned while loading {', '.join(variants)}: {short}")


if __name__ == "__main__":
    sys.exit(main())
