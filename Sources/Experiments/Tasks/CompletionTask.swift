import Foundation
import Yams
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// The completion task in the registry (`task: {name: completion, train: …, eval: …}`).
public enum CompletionTaskDefinition: TaskDefinition {
    public static let name = "completion"

    public static func settings(_ node: ManifestNode, model: String?) throws -> any TaskSettings {
        try CompletionTaskSettings(node, model: model)
    }
}

/// Supervised fine-tuning of a language model on completions (any `LanguageModelFamily`): JSONL
/// files of `{"prompt", "completion"}` or `{"messages": […]}` lines (`CompletionJSONL`), the
/// causal-LM loss on the completion's tokens only (the prompt's are labelled −100) averaged over
/// the batch's completion tokens as transformers' `ForCausalLMLoss` does, on right-padded
/// batches. Evaluation reports the loss per completion token over the split, its perplexity, and
/// the exact match of greedy generation against the reference; predictions.csv holds the
/// generated texts (`TextPredictionsCSV`).
public struct CompletionTaskSettings: TaskSettings {
    public static let keys = ["name", "train", "validation", "eval", "max_length", "overlong", "max_new_tokens", "chat",
                              "max_train_examples", "eval_examples"]

    /// What happens to an example longer than `max_length`.
    public enum Overlong: String, CaseIterable, Sendable {
        /// Cut to fit (`EncodedCompletion.truncated(to:)`: the prompt loses its first tokens) and counted.
        case truncate
        /// An error naming the file and line: nothing about the data changes unless the manifest says so.
        case refuse
    }

    /// Which lines are rendered with the model's chat template.
    public enum Chat: String, CaseIterable, Sendable {
        /// `messages` lines are; `prompt`/`completion` lines are plain text.
        case auto
        /// Every line is: a `prompt`/`completion` line becomes a user message and the assistant's answer.
        case always = "true"
        /// None is: a `messages` line is an error.
        case never = "false"
    }

    /// A JSONL file the manifest names, with the manifest entry that named it (for the error when
    /// the file is missing).
    public struct DataFile {
        public var path: String
        let entry: ManifestNode

        /// A missing file is an error at the manifest entry naming it, found before the model is loaded.
        func checkExists() throws {
            guard FileManager.default.fileExists(atPath: path) else {
                throw entry.error(allowed: CompletionTaskSettings.fileAllowed + " (\(FileManager.default.currentDirectoryPath))",
                                  found: "'\(path)', which does not exist")
            }
        }
    }

    private static let fileAllowed = "a JSONL file of {\"prompt\", \"completion\"} or {\"messages\"} lines, relative to the working directory"

    public let name = "completion"
    public var train: DataFile
    /// The `validation` split, a file of its own (nil: none).
    public var validation: DataFile?
    public var eval: DataFile
    /// Tokens per example, the prompt and the completion (its end token included) together.
    public var maxLength = 512
    public var overlong = Overlong.refuse
    /// Greedy generation's length limit when exact match is measured.
    public var maxNewTokens = 64
    public var chat = Chat.auto
    /// Train on the first this many examples of the train file (nil: all).
    public var maxTrainExamples: Int?
    /// Evaluate on the first this many examples of the eval file (nil: all).
    public var evalExamples: Int?
    /// Where the model is looked up; tests point it at another cache.
    public var store = ModelStore.default
    /// The model the task fine-tunes: the manifest's `model`, by default the registry's first language model.
    public var family: any LanguageModelFamily

    /// The registry's families that are language models, the models this task can train.
    package static var families: [any LanguageModelFamily] {
        ModelFamilyRegistry.families.compactMap { $0 as? any LanguageModelFamily }
    }

    public var models: [String] { Self.families.map(\.name) }
    public var modules: [ModuleShape] { family.modules }
    public let evalMetrics = [EvalMetric(name: "loss", higherIsBetter: false), EvalMetric(name: "perplexity", higherIsBetter: false),
                              EvalMetric(name: "exact_match", higherIsBetter: true)]
    /// The language model's head is its tied embedding, frozen: the adapters are all that trains.
    public let hasHead = false
    public let validationExamples: Int? = nil
    public var hasValidationSplit: Bool { validation != nil }

    /// `task: {name: completion, train: FILE, eval: FILE, …}`; `model` is the manifest's model
    /// (nil or unknown: the first language model, and the manifest's model check names the allowed ones).
    package init(_ node: ManifestNode, model: String?) throws {
        family = Self.families.first { $0.name == model } ?? Self.families[0]
        guard case .mapping = node.node else {
            throw node.error(allowed: "a mapping {name: completion, train: FILE, eval: FILE, …} with the keys " + Self.keys.joined(separator: ", "))
        }
        let block = try node.mapping(keys: Self.keys)
        func file(_ entry: ManifestNode) throws -> DataFile { DataFile(path: try entry.string(allowed: Self.fileAllowed), entry: entry) }
        train = try file(block.required("train", allowed: Self.fileAllowed))
        validation = try block.optional("validation").map(file)
        eval = try file(block.required("eval", allowed: Self.fileAllowed))
        let positions = family.maxSequenceLength
        if let value = block.optional("max_length") {
            maxLength = try value.int(allowed: "an integer from 2 to \(positions - 1) (tokens of prompt and completion; "
                                      + "\(family.name) reads \(positions), generation needs room for one more)", in: 2...(positions - 1))
        }
        if let value = block.optional("overlong") { overlong = Overlong(rawValue: try value.choice(Overlong.allCases.map(\.rawValue)))! }
        if let value = block.optional("max_new_tokens") {
            maxNewTokens = try value.int(allowed: "an integer from 1 to \(positions - maxLength) (max_length \(maxLength) + new tokens "
                                         + "≤ the \(positions) tokens \(family.name) reads)", in: 1...(positions - maxLength))
        } else {
            maxNewTokens = min(maxNewTokens, positions - maxLength)
        }
        if let value = block.optional("chat") { chat = Chat(rawValue: try value.choice(Chat.allCases.map(\.rawValue)))! }
        if let value = block.optional("max_train_examples") {
            maxTrainExamples = try value.int(allowed: "an integer ≥ 1 (the first examples of the train file)", in: 1...Int.max)
        }
        if let value = block.optional("eval_examples") {
            evalExamples = try value.int(allowed: "an integer ≥ 1 (the first examples of the eval file)", in: 1...Int.max)
        }
    }

    public var resolved: Node {
        Settings.map([
            ("name", Settings.text(name)),
            ("train", Settings.text(train.path)),
        ] + (validation.map { [("validation", Settings.text($0.path))] } ?? []) + [
            ("eval", Settings.text(eval.path)),
            ("max_length", Settings.int(maxLength)),
            ("overlong", Settings.text(overlong.rawValue)),
            ("max_new_tokens", Settings.int(maxNewTokens)),
            ("chat", Settings.text(chat.rawValue)),
            ("max_train_examples", maxTrainExamples.map(Settings.int) ?? Settings.text("all")),
            ("eval_examples", evalExamples.map(Settings.int) ?? Settings.text("all")),
        ])
    }

    /// Checks that every file exists, locates the model (failing with the command that fetches
    /// it), loads it once, and reads and encodes every file, for every run of the sweep.
    public func makeTask() throws -> any ExperimentTask {
        for file in [train, eval] + (validation.map { [$0] } ?? []) { try file.checkExists() }
        return try CompletionExperiment(settings: self, base: family.languageModelBase(files: store.locate(family)))
    }
}

public enum CompletionTaskError: Error, CustomStringConvertible {
    /// An example the model cannot read (`reason`), at its file and line.
    case unreadableExample(path: String, line: Int, reason: String)
    case overlong(path: String, line: Int, prompt: Int, completion: Int, maxLength: Int, overlongExamples: Int)
    case fewerExamplesThanBatch(path: String, examples: Int, batchSize: Int)

    public var description: String {
        switch self {
        case let .unreadableExample(path, line, reason): return "\(path):\(line): \(reason)"
        case let .overlong(path, line, prompt, completion, maxLength, count):
            return "\(path):\(line): the example is \(prompt + completion) tokens (prompt \(prompt), completion \(completion) with its end "
                + "token), more than task.max_length (\(maxLength)), and task.overlong is refuse; \(count) example(s) of the file are "
                + "longer: raise task.max_length, or set task.overlong: truncate to cut each prompt from the left (and count them)"
        case let .fewerExamplesThanBatch(path, examples, batchSize):
            return "\(path): \(examples) training example(s), fewer than training.batch_size (\(batchSize)), so every batch would be "
                + "smaller than settings.yaml says: lower training.batch_size to at most \(examples)"
        }
    }
}

/// One file's examples as the model reads them, in file order.
package struct CompletionSplit {
    package let path: String
    package let examples: [EncodedCompletion]
    /// Each example's completion as written.
    package let references: [String]
    /// Whether each example was cut to `max_length`.
    package let truncated: [Bool]

    package var truncatedCount: Int { truncated.count { $0 } }

    /// Reads `file`, renders and encodes every example with `base` as `settings.chat` says, and
    /// fits it to `max_length` as `settings.overlong` says.
    init(_ file: CompletionTaskSettings.DataFile, maxExamples: Int?, settings: CompletionTaskSettings, base: any LanguageModelBase) throws {
        path = file.path
        let lines = try CompletionJSONL.load(file.path, maxExamples: maxExamples)
        var examples: [EncodedCompletion] = [], truncated: [Bool] = []
        var firstOverlong: (line: Int, example: EncodedCompletion)?, overlongCount = 0
        for var example in lines {
            switch (settings.chat, example.content) {
            case let (.always, .text(prompt, completion)):
                example.content = .conversation([ChatMessage(role: "user", content: prompt), ChatMessage(role: "assistant", content: completion)])
            case (.never, .conversation):
                throw CompletionTaskError.unreadableExample(path: path, line: example.line, reason: "the line holds messages, but task.chat is "
                                                            + "false: set task.chat to auto or true to render it with the model's chat template")
            default: break
            }
            var encoded: EncodedCompletion
            do {
                encoded = try base.encode(example)
            } catch {
                throw CompletionTaskError.unreadableExample(path: path, line: example.line, reason: "\(error)")
            }
            let isOverlong = encoded.count > settings.maxLength
            if isOverlong {
                overlongCount += 1
                if firstOverlong == nil { firstOverlong = (example.line, encoded) }
                encoded = encoded.truncated(to: settings.maxLength)
            }
            examples.append(encoded)
            truncated.append(isOverlong)
        }
        if settings.overlong == .refuse, let (line, example) = firstOverlong {
            throw CompletionTaskError.overlong(path: path, line: line, prompt: example.prompt.count, completion: example.completion.count,
                                               maxLength: settings.maxLength, overlongExamples: overlongCount)
        }
        self.examples = examples
        self.truncated = truncated
        references = lines.map(\.reference)
    }
}

/// The frozen language model and the encoded files, shared by every run of a sweep.
package final class CompletionExperiment: ExperimentTask {
    /// Examples per batch when evaluating: the loss's logits are formed at completion tokens
    /// only, and generation keeps a KV cache per example, so this bounds the memory either takes.
    package static let evalBatchSize = 16

    package let settings: CompletionTaskSettings
    package let base: any LanguageModelBase
    package let train: CompletionSplit
    /// The eval file and, when the manifest names one, the validation file.
    package let heldOut: [EvalSplit: CompletionSplit]
    /// The training examples' token ids, for the seeded shuffle each run re-cuts with its batch size.
    private let trainOrder: Batcher

    package init(settings: CompletionTaskSettings, base: any LanguageModelBase) throws {
        self.settings = settings
        self.base = base
        train = try CompletionSplit(settings.train, maxExamples: settings.maxTrainExamples, settings: settings, base: base)
        var heldOut = [EvalSplit.eval: try CompletionSplit(settings.eval, maxExamples: settings.evalExamples, settings: settings, base: base)]
        if let validation = settings.validation {
            heldOut[.validation] = try CompletionSplit(validation, maxExamples: nil, settings: settings, base: base)
        }
        self.heldOut = heldOut
        trainOrder = Batcher(encoded: train.examples.map { ($0.prompt + $0.completion, Array(repeating: 0, count: $0.count), 0) },
                             padId: base.padID, batchSize: 1, shuffle: true)
    }

    /// Each split's examples cut to `max_length`, at step 0 of every run (`truncated_examples`).
    package var dataMetrics: [MetricRow] {
        [MetricRow(step: 0, split: "train", metric: "truncated_examples", value: Double(train.truncatedCount))]
            + EvalSplit.allCases.compactMap { split in
                heldOut[split].map { MetricRow(step: 0, split: split.rawValue, metric: "truncated_examples", value: Double($0.truncatedCount)) }
            }
    }

    package func makeModel(seed: UInt64, batchSize: Int, base format: BaseWeightFormat, adapt: AdapterFactory) throws -> any TaskModel {
        guard train.examples.count >= batchSize else {
            throw CompletionTaskError.fewerExamplesThanBatch(path: train.path, examples: train.examples.count, batchSize: batchSize)
        }
        var batchSeed = SplitMix64(seed: seed).derived("batches")
        return CompletionModel(experiment: self, model: try base.makeLanguageModel(base: format, adapt: adapt),
                               order: trainOrder.with(batchSize: batchSize, seed: batchSeed.next()))
    }
}

/// One run's model: the family's language model with its adapters, fed epochs of the run's batches.
package final class CompletionModel: PeftExportable {
    package let experiment: CompletionExperiment
    package let model: any LanguageModel
    package var adapters: [NamedAdapter] { model.adapters }
    /// Which training examples make up each batch, epoch by epoch.
    private var data: EpochCursor<[Int]>

    package init(experiment: CompletionExperiment, model: any LanguageModel, order: Batcher) {
        self.experiment = experiment
        self.model = model
        data = EpochCursor { order.batchMembers(epoch: $0) }
    }

    package var trainableParameters: [Parameter] { model.trainableParameters }

    package var parameterReport: ParameterReport {
        let adapted = adapters.reduce(0) { $0 + $1.adapter.base.outFeatures * $1.adapter.base.inFeatures + $1.adapter.base.bias.count }
        return ParameterReport(layers: adapters.map(\.adapter), otherFrozen: experiment.base.frozenParameterCount - adapted)
    }

    /// The next batch of the current epoch (a new shuffle each epoch); a smaller last batch of an
    /// epoch is kept, since the loss is a mean over its completion tokens.
    package func trainOnNextBatch() throws -> Float {
        let members = data.next()
        let batch = CompletionBatch(padding: members.map { experiment.train.examples[$0] }, padID: experiment.base.padID)
        let loss = try model.loss(batch, training: true)
        try model.backward()
        lastBatchTokenCount = batch.attentionMask.reduce(0, +)
        return loss
    }

    package private(set) var lastBatchTokenCount = 0

    package var dataPosition: [UInt64] { data.position }

    package func restore(dataPosition position: [UInt64]) throws { try data.restore(position) }

    /// `loss`: the mean cross-entropy per completion token over the whole split (each batch's
    /// mean weighted by its completion tokens, summed in Double); `perplexity`: exp(loss);
    /// `exact_match`: the share of examples whose greedy continuation, at most `max_new_tokens`
    /// and ended at the model's end token, equals the reference once surrounding whitespace is
    /// stripped. Batches are of examples of similar length, so they carry little padding.
    package func evaluate(_ split: EvalSplit) throws -> Evaluation {
        guard let set = experiment.heldOut[split] else { throw HeldOutSplitError(split: split) }
        let byLength = set.examples.indices.sorted { (set.examples[$0].count, $0) < (set.examples[$1].count, $1) }
        var lossSum = 0.0, tokens = 0
        var predictions: [TextPrediction] = []
        for start in stride(from: 0, to: byLength.count, by: CompletionExperiment.evalBatchSize) {
            let members = Array(byLength[start..<min(start + CompletionExperiment.evalBatchSize, byLength.count)])
            let batch = CompletionBatch(padding: members.map { set.examples[$0] }, padID: experiment.base.padID)
            lossSum += Double(try model.loss(batch, training: false)) * Double(batch.completionTokenCount)
            tokens += batch.completionTokenCount
            let generated = try model.generate(prompts: members.map { set.examples[$0].prompt }, maxNewTokens: experiment.settings.maxNewTokens)
            for (index, ids) in zip(members, generated) {
                predictions.append(TextPrediction(index: index, truncated: set.truncated[index], reference: set.references[index],
                                                  generated: try experiment.base.decode(ids)))
            }
        }
        predictions.sort { $0.index < $1.index }
        let loss = lossSum / Double(tokens)
        let matches = predictions.count { $0.isExactMatch }
        return Evaluation(metrics: ["loss": loss, "perplexity": exp(loss), "exact_match": Double(matches) / Double(predictions.count)],
                          textPredictions: predictions)
    }

    package var baseModelSHA256: String? { experiment.base.files.weightsSHA256 }
    package var savedModules: (names: [String], tensors: [String: TensorToWrite]) { ([], [:]) }
    package func describe(_ config: inout PeftConfig) throws { try model.describe(&config) }
}
