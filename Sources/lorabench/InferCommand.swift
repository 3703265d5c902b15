import ArgumentParser
import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop
import LoRABenchExperiments
import LoRABenchPlotting
import LoRABenchReport
import LoRABenchAnalysis
import LoRABenchBench

/// `lorabench infer ADAPTER --text …`: the adapted encoder's outputs for a few texts, as a
/// safetensors file (what `Interop/check_with_peft.py` compares with peft's).
struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Run a peft-layout adapter on its base model for some texts; print predictions, optionally save the tensors.",
        discussion: """
            The texts are tokenized with the base model's vocabulary ([CLS] … [SEP], padded to the \
            longest). --out writes input_ids, attention_mask (int64), last_hidden_state [B, T, C] and, \
            when the adapter carries a trained head, logits [B, labels].
            """
    )

    @Argument(help: "The adapter folder (adapter_model.safetensors + adapter_config.json).")
    var adapter: String

    @Option(name: .customLong("text"), help: "A text to run (repeat for a batch).")
    var texts: [String] = []

    @Option(help: "A file with one text per line, run after the --text ones.")
    var textsFile: String?

    @Option(help: "Truncate each text to this many tokens ([CLS] and [SEP] included).")
    var maxLength = 128

    @Option(help: "Write the tensors to this safetensors file (never over the adapter or the texts file).")
    var out: String?

    @Flag(help: "Overwrite --out when it exists.")
    var force = false

    @Option(help: "The base model, when the adapter's base_model_name_or_path is not one LoRABench knows.")
    var model: PretrainedModel?

    @Flag(help: "Load an adapter holding NaN or infinite values (a diverged run's), for inspection; refused otherwise.")
    var allowNonFinite = false

    @Option(help: "Hold the base's weights as fp32 or nf4 (QLoRA) instead of as in training (the adapter's metadata says which).")
    var base: BaseWeightFormat?

    func run() throws {
        var batch = texts
        if let textsFile {
            let contents = try String(contentsOfFile: textsFile, encoding: .utf8)
            batch += contents.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        }
        guard !batch.isEmpty else { throw ValidationError("give at least one --text or a --texts-file") }
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2 ([CLS] and [SEP])") }
        if let out { try OutputFile.check(out, inputs: [adapter] + (textsFile.map { [$0] } ?? []), overwrite: force) }
        let (adapted, files) = try AdaptedModel.open(adapter, model: model, allowNonFinite: allowNonFinite, baseFormat: base)
        if let warning = adapted.baseFormatWarning { standardError(warning + "\n") }
        let inference = try adapted.infer(batch, tokenizer: WordPieceTokenizer(vocabularyPath: files.vocabularyPath), maxLength: maxLength)
        if let logits = inference.logits {
            for (row, (text, label)) in zip(batch, inference.predictions).enumerated() {
                let scores = (0..<logits.cols).map { String(format: "%.4f", logits[row, $0]) }
                print("\(label.map(String.init) ?? "none")\t" + scores.joined(separator: " ") + "\t\(text)")
            }
        } else {
            print("\(batch.count) texts × \(inference.batch.seqLen) tokens through \(adapted.adapters.count) adapted modules (no trained head in the adapter)")
        }
        if let out {
            try Safetensors.write(inference.tensors, to: out)
            print("→ \(out)")
        }
    }
}
