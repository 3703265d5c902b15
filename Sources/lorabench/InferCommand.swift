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

/// `lorabench infer ADAPTER --text …`: an encoder's adapter predicts labels for some texts (and
/// writes its outputs as a safetensors file, what `Interop/check_with_peft.py` compares with
/// peft's); a decoder, base or adapted, generates a continuation of each prompt.
struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Run a model on some texts: an encoder's adapter predicts labels, a decoder (with or without an adapter) generates text.",
        discussion: """
            An encoder's adapter: the texts are tokenized with the base model's vocabulary \
            ([CLS] … [SEP]) and run --batch-size at a time, each batch padded to its longest text, so memory \
            does not grow with the number of texts; a row is printed per text as its batch finishes: the \
            predicted label, the logits and the text, tab-separated, control characters in the text escaped \
            (\\t, \\n, \\u{1B}, \\\\). --out writes input_ids, attention_mask (int64), last_hidden_state \
            [B, T, C] (every text padded to the longest) and, when the adapter carries a trained head, \
            logits [B, labels].

            A decoder, given as --model without an adapter or as an adapter trained on it: \
            each prompt is continued greedily, --batch-size prompts at a time through the model's KV cache, \
            until --max-new-tokens or the end-of-sequence token of the model file (with --chat also the \
            token closing a turn, <|im_end|>). For a single --text the generated text is printed as it is; \
            otherwise a row per prompt: the generated text and the prompt, tab-separated and escaped as \
            above. Standard error gets the tokens generated, the seconds and the tokens per second.
            """
    )

    @Argument(help: "The adapter folder (adapter_model.safetensors + adapter_config.json); a decoder runs without one when --model names it.")
    var adapter: String?

    @Option(name: [.customLong("text"), .customLong("prompt")], help: "A text to run, or a prompt to continue (repeat for several).")
    var texts: [String] = []

    @Option(help: "A file with one text per line (empty lines are skipped), run after the --text ones; - reads standard input.")
    var textsFile: String?

    @Option(help: "Texts per forward pass (default \(Self.encoderBatchSize)); prompts generated together (default \(Self.decoderBatchSize)).")
    var batchSize: Int?

    @Option(help: "The base model, when the adapter's base_model_name_or_path is not one LoRABench knows, or the decoder to run without an adapter.")
    var model: ModelChoice?

    @Flag(help: "Load an adapter holding NaN or infinite values (a diverged run's), and print NaN or infinite outputs, for inspection; refused otherwise.")
    var allowNonFinite = false

    @Option(help: "Hold the base's weights as fp32, nf4 (QLoRA) or gguf (a GGUF model's Linears in the file's blocks) instead of as in training (the adapter's metadata says which; without an adapter, fp32).")
    var base: BaseWeightFormat?

    @OptionGroup(title: "Encoder outputs")
    var encoder: EncoderOptions

    @OptionGroup(title: "Generation (decoders)")
    var generation: GenerationOptions

    static let encoderBatchSize = 32, decoderBatchSize = 8

    func validate() throws {
        guard !texts.isEmpty || textsFile != nil else { throw ValidationError("give at least one --text or a --texts-file") }
        guard adapter != nil || model != nil else {
            throw ValidationError("give an adapter folder, or --model naming a decoder to run without one (\(Self.decoderNames))")
        }
        guard batchSize.map({ $0 >= 1 }) ?? true else { throw ValidationError("--batch-size must be at least 1") }
        guard generation.maxNewTokens.map({ $0 >= 1 }) ?? true else { throw ValidationError("--max-new-tokens must be at least 1") }
        guard adapter != nil || !generation.merged else { throw ValidationError("--merged folds an adapter into the base: give the adapter folder") }
        if let index = texts.firstIndex(of: "") { throw ValidationError("--text \(index + 1) is empty; give a text to run") }
    }

    func run() throws {
        // A texts file that cannot be read fails before the model loads; standard input is read once, as it comes.
        if let textsFile, textsFile != "-" { _ = try LineReader(path: textsFile, purpose: "the texts file").next() }
        guard let adapter else { return try generate() }
        if try ModelFamilyRegistry.family(ofAdapter: adapter, model: model?.family) is any LlamaFamily {
            try generate()
        } else {
            try predict(adapter: adapter)
        }
    }

    /// The decoder's continuations of the prompts, batch by batch.
    private func generate() throws {
        let given = [encoder.maxLength.map { _ in "--max-length" }, encoder.out.map { _ in "--out" }, encoder.force ? "--force" : nil].compactMap { $0 }
        guard given.isEmpty else {
            throw CommandError("\(given.joined(separator: ", ")): for an encoder's outputs; a decoder's generations are printed (--chat, --max-new-tokens and --merged set them)")
        }
        let (generator, warning) = try TextGenerator.open(adapter: adapter, model: model?.family, baseFormat: base, allowNonFinite: allowNonFinite,
                                                          merged: generation.merged, chat: generation.chat)
        if let warning { standardError(warning + "\n") }
        let maxNewTokens = generation.maxNewTokens ?? GenerationOptions.defaultMaxNewTokens
        let asRows = texts.count > 1 || textsFile != nil
        var batch: [String] = []
        func runBatch() throws {
            let generations = try generator.generate(batch, maxNewTokens: maxNewTokens)
            print(zip(generations, batch).map { asRows ? TSV.line([$0.text, $1]) : $0.text }.joined(separator: "\n"))
            fflush(nil)  // every output stream: a reader of a pipe sees each batch as it ends
            batch.removeAll(keepingCapacity: true)
        }
        let batchSize = self.batchSize ?? Self.decoderBatchSize
        try forEachText { text in
            batch.append(text)
            if batch.count == batchSize { try runBatch() }
        }
        if !batch.isEmpty { try runBatch() }
        guard generator.tally.prompts > 0 else { throw noTexts }
        standardError(generator.tally.summary + "\n")
    }

    /// The encoder adapter's predictions (and, with --out, its outputs) for the texts.
    private func predict(adapter: String) throws {
        let given = [generation.chat ? "--chat" : nil, generation.maxNewTokens.map { _ in "--max-new-tokens" }, generation.merged ? "--merged" : nil]
        if let option = given.compactMap({ $0 }).first {
            throw CommandError("\(option): for a decoder's generation; \(adapter) is an encoder's adapter, which predicts labels")
        }
        let maxLength = encoder.maxLength ?? EncoderOptions.defaultMaxLength
        let batchSize = self.batchSize ?? Self.encoderBatchSize
        if let out = encoder.out {
            if textsFile == "-" {
                throw CommandError("--out pads every text to the longest, which reads the texts twice; standard input (--texts-file -) can be read once: give a file")
            }
            try OutputFile.check(out, inputs: [adapter] + (textsFile.map { [$0] } ?? []), overwrite: encoder.force)
        }
        let (adapted, files) = try AdaptedModel.open(adapter, model: model?.family, allowNonFinite: allowNonFinite, baseFormat: base)
        if let warning = adapted.baseFormatWarning { standardError(warning + "\n") }
        let tokenizer = try WordPieceTokenizer(vocabularyPath: files.vocabularyPath)

        // One file pads every text to the longest, which a first pass over the texts finds.
        var writer: SafetensorsWriter?
        var paddedLength = 0
        if let out = encoder.out {
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
        if let out = encoder.out, let writer {
            try writer.finish()
            print("→ \(out)")
        }
    }

    private var noTexts: CommandError {
        CommandError("\(textsPath ?? "the texts file"): no text to run; the file has no line with text, and no --text was given")
    }

    /// The texts file's path, standard input's for `-`.
    private var textsPath: String? { textsFile == "-" ? "/dev/stdin" : textsFile }

    /// The --text values, then the texts file's non-empty lines, one at a time.
    private func forEachText(_ body: (String) throws -> Void) throws {
        for text in texts { try body(text) }
        guard let textsPath else { return }
        let lines = try LineReader(path: textsPath, purpose: "the texts file")
        while let line = try lines.next() {
            if !line.isEmpty { try body(line) }
        }
    }

    private static var decoderNames: String {
        ModelFamilyRegistry.families.filter { $0 is any LlamaFamily }.map(\.name).joined(separator: ", ")
    }
}

/// `infer`'s options for an encoder's outputs.
struct EncoderOptions: ParsableArguments {
    @Option(help: "Truncate each text to this many tokens ([CLS] and [SEP] included; default \(Self.defaultMaxLength)).")
    var maxLength: Int?

    @Option(help: "Write the tensors to this safetensors file (never over the adapter or the texts file).")
    var out: String?

    @Flag(help: "Overwrite --out when it exists.")
    var force = false

    static let defaultMaxLength = 128

    func validate() throws {
        guard maxLength.map({ $0 >= 2 }) ?? true else { throw ValidationError("--max-length must be at least 2 ([CLS] and [SEP])") }
    }
}

/// `infer`'s options for a decoder's generation.
struct GenerationOptions: ParsableArguments {
    @Flag(help: "Render each prompt as one user message with the model's chat template, followed by the assistant's turn; the answer ends at <|im_end|>.")
    var chat = false

    @Option(help: "Generate at most this many tokens per prompt (default \(Self.defaultMaxNewTokens)); fewer when the end-of-sequence token comes first.")
    var maxNewTokens: Int?

    @Flag(help: "Fold the adapter into the base weights before generating (plain products; the same tokens as unmerged).")
    var merged = false

    static let defaultMaxNewTokens = 64
}
