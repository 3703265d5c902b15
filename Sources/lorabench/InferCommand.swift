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
            The texts are tokenized with the base model's vocabulary ([CLS] … [SEP]) and run --batch-size \
            at a time, each batch padded to its longest text, so memory does not grow with the number of \
            texts; a row is printed per text as its batch finishes: the predicted label, the logits and \
            the text, tab-separated, control characters in the text escaped (\\t, \\n, \\u{1B}, \\\\). \
            --out writes input_ids, attention_mask (int64), last_hidden_state [B, T, C] (every text \
            padded to the longest) and, when the adapter carries a trained head, logits [B, labels].
            """
    )

    @Argument(help: "The adapter folder (adapter_model.safetensors + adapter_config.json).")
    var adapter: String

    @Option(name: .customLong("text"), help: "A text to run (repeat for several).")
    var texts: [String] = []

    @Option(help: "A file with one text per line (empty lines are skipped), run after the --text ones.")
    var textsFile: String?

    @Option(help: "Truncate each text to this many tokens ([CLS] and [SEP] included).")
    var maxLength = 128

    @Option(help: "Texts per forward pass.")
    var batchSize = 32

    @Option(help: "Write the tensors to this safetensors file (never over the adapter or the texts file).")
    var out: String?

    @Flag(help: "Overwrite --out when it exists.")
    var force = false

    @Option(help: "The base model, when the adapter's base_model_name_or_path is not one LoRABench knows.")
    var model: ModelChoice?

    @Flag(help: "Load an adapter holding NaN or infinite values (a diverged run's), and print NaN or infinite outputs, for inspection; refused otherwise.")
    var allowNonFinite = false

    @Option(help: "Hold the base's weights as fp32 or nf4 (QLoRA) instead of as in training (the adapter's metadata says which).")
    var base: BaseWeightFormat?

    func validate() throws {
        guard !texts.isEmpty || textsFile != nil else { throw ValidationError("give at least one --text or a --texts-file") }
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2 ([CLS] and [SEP])") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        if let out { try OutputFile.check(out, inputs: [adapter] + (textsFile.map { [$0] } ?? []), overwrite: force) }
        // A texts file that cannot be read fails before the model loads.
        if let textsFile { _ = try LineReader(path: textsFile, purpose: "the texts file").next() }
        let (adapted, files) = try AdaptedModel.open(adapter, model: model?.family, allowNonFinite: allowNonFinite, baseFormat: base)
        if let warning = adapted.baseFormatWarning { standardError(warning + "\n") }
        let tokenizer = try WordPieceTokenizer(vocabularyPath: files.vocabularyPath)

        // One file pads every text to the longest, which a first pass over the texts finds.
        var writer: SafetensorsWriter?
        var paddedLength = 0
        if let out {
            var count = 0
            try forEachText { text in
                count += 1
                paddedLength = max(paddedLength, tokenizer.encode(text, maxLength: maxLength).count)
            }
            guard count > 0 else { throw noTexts }
            writer = try SafetensorsWriter(path: out, tensors: Inference.layout(
                count: count, sequenceLength: paddedLength, hiddenSize: adapted.config.hiddenSize,
                labels: adapted.hasHead ? adapted.encoder.head.labelCount : nil))
        }

        var done = 0
        var batch: [String] = []
        func runBatch() throws {
            let inference = try adapted.infer(batch, tokenizer: tokenizer, maxLength: maxLength, paddedLength: paddedLength)
            guard allowNonFinite || (inference.hiddenStates.isFinite && inference.logits?.isFinite ?? true) else {
                throw CommandError("texts \(done + 1)–\(done + batch.count): the adapted model's outputs hold NaN or infinite values (a diverged adapter?); pass --allow-non-finite to print them anyway")
            }
            if let logits = inference.logits {
                var rows = ""
                for (row, (text, label)) in zip(batch, inference.predictions).enumerated() {
                    let scores = (0..<logits.cols).map { String(format: "%.4f", logits[row, $0]) }
                    rows += TSV.line([label.map(String.init) ?? "none", scores.joined(separator: " "), text]) + "\n"
                }
                print(rows, terminator: "")
                fflush(nil)  // every output stream: a reader of a pipe sees each batch as it ends
            }
            if let writer { try inference.write(to: writer, firstRow: done) }
            done += batch.count
            batch.removeAll(keepingCapacity: true)
        }
        try forEachText { text in
            batch.append(text)
            if batch.count == batchSize { try runBatch() }
        }
        if !batch.isEmpty { try runBatch() }
        guard done > 0 else { throw noTexts }
        if !adapted.hasHead {
            print("\(done) texts through \(adapted.adapters.count) adapted modules (no trained head in the adapter)")
        }
        if let out, let writer {
            try writer.finish()
            print("→ \(out)")
        }
    }

    private var noTexts: CommandError {
        CommandError("\(textsFile ?? "the texts file"): no text to run; the file has no line with text, and no --text was given")
    }

    /// The --text values, then the texts file's non-empty lines, one at a time.
    private func forEachText(_ body: (String) throws -> Void) throws {
        for text in texts { try body(text) }
        guard let textsFile else { return }
        let lines = try LineReader(path: textsFile, purpose: "the texts file")
        while let line = try lines.next() {
            if !line.isEmpty { try body(line) }
        }
    }
}
