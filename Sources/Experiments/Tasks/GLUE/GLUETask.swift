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

/// A GLUE classification task (`sst2`, `rte`, `cola`, …) on any model family that classifies text
/// (`TextClassifierFamily`: an encoder with mean pooling and a trained head, or a decoder scoring a
/// word per label after the task's prompt), trained with cross-entropy on dynamically padded
/// batches and evaluated on the dev set by the task's GLUE metrics (accuracy; CoLA's Matthews
/// correlation; MRPC's F1). The data are the copies under `data_dir`
/// (`Data/<task>/{train,dev}.tsv`).
public struct GLUETaskSettings: TaskSettings {
    public static let keys = ["name", "data_dir", "max_train_examples", "max_length", "length_bucketing", "eval_examples",
                              "validation_examples", "prompt", "label_words"]

    public let task: GLUETask
    /// The folder holding `<task>/train.tsv` and `<task>/dev.tsv`, relative to the working directory.
    public var dataDirectory = "Data"
    /// Train on the first this many training examples (nil: all).
    public var maxTrainExamples: Int?
    /// Tokens per example, special tokens included; longer examples are truncated.
    public var maxLength = 128
    /// Sort examples by length within chunks of batches before batching (less padding).
    public var lengthBucketing = false
    /// Evaluate on the first this many dev examples (nil: all).
    public var evalExamples: Int?
    /// Hold this many examples of train.tsv out as the `validation` split (nil: none): drawn
    /// from the whole file by a fixed shuffle, so they are the same for every run and manifest.
    public var validationExamples: Int?
    /// The prompt and label words a language model reads (the task's own unless the manifest
    /// overrides them); an encoder's head does not read them.
    public var prompt: ClassificationPrompt
    /// Where the model is looked up; tests point it at another cache.
    public var store = ModelStore.default
    /// The model the task fine-tunes: the manifest's `model`, by default the registry's first.
    public var family: any TextClassifierFamily

    /// The registry's families that classify text, the models a GLUE task can train.
    package static var families: [any TextClassifierFamily] {
        ModelFamilyRegistry.families.compactMap { $0 as? any TextClassifierFamily }
    }

    /// The families that can learn `task`'s target: any for a class label, those that predict a
    /// real number for a score (STS-B).
    package static func families(for task: GLUETask) -> [any TextClassifierFamily] {
        families.filter { !isRegression(task) || $0.classifierPredictsScores }
    }

    static func isRegression(_ task: GLUETask) -> Bool { if case .score = task.target { true } else { false } }

    public var name: String { task.name }
    public var models: [String] { Self.families(for: task).map(\.name) }
    /// A score target (STS-B): one output trained by squared error, evaluated by correlations.
    public var isRegression: Bool { Self.isRegression(task) }
    /// GLUE's metrics for the task, its official one first.
    public let metrics: [GLUEMetric]
    public var evalMetrics: [EvalMetric] { [EvalMetric(name: "loss", higherIsBetter: false)] + metrics.map(\.evalMetric) }
    public var hasHead: Bool { family.classifierHasHead }
    public var labelCount: Int? { isRegression ? nil : task.labelCount }

    /// The task on `model` (a registry name; nil or unknown: the first family, and the manifest's
    /// model check names the allowed ones).
    public init(task: GLUETask, prompt: ClassificationPrompt, metrics: [GLUEMetric] = [.accuracy], model: String? = nil) {
        self.task = task
        self.prompt = prompt
        self.metrics = metrics
        let families = Self.families(for: task)
        family = families.first { $0.name == model } ?? families[0]
    }

    /// `task: sst2` (all defaults) or a mapping of the keys above.
    package init(_ node: ManifestNode, task: GLUETask, prompt: ClassificationPrompt, metrics: [GLUEMetric], model: String?) throws {
        self.init(task: task, prompt: prompt, metrics: metrics, model: model)
        guard case .mapping = node.node else { return }
        let block = try node.mapping(keys: Self.keys)
        if let value = block.optional("data_dir") {
            dataDirectory = try value.string(allowed: "a folder holding \(task.name)/train.tsv and \(task.name)/dev.tsv")
        }
        if let value = block.optional("max_train_examples") {
            maxTrainExamples = try value.int(allowed: "an integer ≥ 1 (the first examples of train.tsv)", in: 1...Int.max)
        }
        if let value = block.optional("max_length") {
            let positions = family.maxSequenceLength
            maxLength = try value.int(allowed: "an integer from 3 to \(positions) (tokens, special tokens included)", in: 3...positions)
        }
        if let value = block.optional("length_bucketing") { lengthBucketing = try value.bool() }
        if let value = block.optional("eval_examples") {
            evalExamples = try value.int(allowed: "an integer ≥ 1 (the first examples of dev.tsv)", in: 1...Int.max)
        }
        if let value = block.optional("validation_examples") {
            validationExamples = try value.int(allowed: "an integer ≥ 1 (examples of train.tsv held out, never trained on)", in: 1...Int.max)
        }
        let pairs = prompt.template.contains("{sentence1}")
        if let value = block.optional("prompt") {
            let placeholders = ClassificationPrompt.placeholders(pairs: pairs).joined(separator: " and ")
            self.prompt.template = try value.string(allowed: "a template holding \(placeholders)")
            if let problem = self.prompt.problem(labelCount: task.labelCount, pairs: pairs) {
                throw value.error(allowed: "a template holding \(placeholders)", found: problem)
            }
        }
        if let value = block.optional("label_words") {
            let allowed = "a list of \(task.labelCount) distinct words, one per label in label order"
            self.prompt.labelWords = try value.list(allowed: allowed).map { try $0.string(allowed: allowed) }
            if let problem = self.prompt.problem(labelCount: task.labelCount, pairs: pairs) { throw value.error(allowed: allowed, found: problem) }
        }
    }

    /// Every adaptable Linear of the model under its peft module name, in model order.
    public var modules: [ModuleShape] { family.modules }

    public var resolved: Node {
        Settings.map([
            ("name", Settings.text(name)),
            ("data_dir", Settings.text(dataDirectory)),
            ("max_train_examples", maxTrainExamples.map(Settings.int) ?? Settings.text("all")),
            ("max_length", Settings.int(maxLength)),
            ("length_bucketing", Settings.bool(lengthBucketing)),
            ("eval_examples", evalExamples.map(Settings.int) ?? Settings.text("all")),
        ] + (validationExamples.map { [("validation_examples", Settings.int($0))] } ?? [])
          // A head does not read the prompt: encoder runs keep the ids they had before prompts existed.
          + (family.classifierHasHead ? [] : [("prompt", Settings.text(prompt.template)),
                                              ("label_words", Settings.list(prompt.labelWords))]))
    }

    /// Locates the model (failing with the command that fetches it), checks its architecture,
    /// loads its weights and tokenizes both splits once for every run of the sweep.
    public func makeTask() throws -> any ExperimentTask {
        let files = try store.locate(family)
        let base = try family.classifierBase(files: files, task: TextClassification(labelCount: task.labelCount, isRegression: isRegression,
                                                                                     maxLength: maxLength, prompt: prompt))
        return try GLUEExperiment(settings: self, base: base)
    }
}

public enum GLUETaskError: Error, CustomStringConvertible {
    case noExamples(path: String)
    case validationTooLarge(path: String, examples: Int, validation: Int)
    case fewerExamplesThanBatch(path: String, examples: Int, batchSize: Int, limitedBy: [String])

    public var description: String {
        switch self {
        case let .noExamples(path): return "\(path): no examples"
        case let .validationTooLarge(path, examples, validation):
            return "\(path) has \(examples) examples: task.validation_examples (\(validation)) must leave some to train on"
        case let .fewerExamplesThanBatch(path, examples, batchSize, limitedBy):
            let keys = limitedBy.isEmpty ? "" : " after \(limitedBy.joined(separator: " and "))"
            return "\(path): \(examples) training example(s) are left\(keys), fewer than training.batch_size (\(batchSize)), "
                + "so every batch would be smaller than settings.yaml says: lower training.batch_size to at most \(examples)"
                + (limitedBy.isEmpty ? "" : ", or change \(limitedBy.joined(separator: " or "))")
        }
    }
}

/// A held-out split, tokenized once and cut into batches sorted by length (no shuffling is
/// needed to evaluate, and sorted batches carry almost no padding).
package struct HeldOutSet {
    package let batches: [TokenBatch]
    /// Each batch's examples by their index in the split.
    package let members: [[Int]]
    package let count: Int

    init(_ examples: [GLUEExample], base: any TextClassifierBase, batchSize: Int) {
        let batcher = Batcher(encoded: examples.map(base.encode), scores: GLUEExperiment.scores(of: examples), padId: base.padId,
                              batchSize: batchSize, shuffle: false, bucketByLength: true,
                              bucketBatches: (examples.count + batchSize - 1) / batchSize)
        members = batcher.batchMembers()
        batches = batcher.batches()
        count = examples.count
    }
}

/// The frozen model and the tokenized data, shared by every run of a sweep.
package final class GLUEExperiment: ExperimentTask {
    package static let evalBatchSize = 64

    package let settings: GLUETaskSettings
    /// The family's frozen model and tokenizer; every run's classifier shares its weights.
    package let base: any TextClassifierBase
    /// The training examples, tokenized once; each run re-cuts them with its batch size and seed.
    package let trainBatcher: Batcher
    /// The dev set (`eval`) and, with `validation_examples`, the held-out training examples.
    package let heldOut: [EvalSplit: HeldOutSet]
    package var evalBatches: [TokenBatch] { heldOut[.eval]!.batches }
    package var evalCount: Int { heldOut[.eval]!.count }

    package init(settings: GLUETaskSettings, base: any TextClassifierBase) throws {
        self.settings = settings
        self.base = base
        let directory = settings.dataDirectory
        let trainPath = GLUE.path(settings.task, split: .train, in: directory)
        var train: [GLUEExample]
        var validation: [GLUEExample]?
        if let held = settings.validationExamples {
            let all = try GLUE.load(settings.task, split: .train, from: directory)
            guard held < all.count else { throw GLUETaskError.validationTooLarge(path: trainPath, examples: all.count, validation: held) }
            let heldIndices = Self.validationIndices(count: held, of: all.count)
            validation = heldIndices.map { all[$0] }
            let heldSet = Set(heldIndices)
            train = all.indices.filter { !heldSet.contains($0) }.map { all[$0] }
            if let limit = settings.maxTrainExamples { train = Array(train.prefix(limit)) }
        } else {
            train = try GLUE.load(settings.task, split: .train, from: directory, maxExamples: settings.maxTrainExamples)
        }
        let dev = try GLUE.load(settings.task, split: .dev, from: directory, maxExamples: settings.evalExamples)
        for (examples, split) in [(train, GLUESplit.train), (dev, .dev)] where examples.isEmpty {
            throw GLUETaskError.noExamples(path: GLUE.path(settings.task, split: split, in: directory))
        }
        trainBatcher = Batcher(encoded: train.map(base.encode), scores: Self.scores(of: train), padId: base.padId, batchSize: 1,
                               shuffle: true, bucketByLength: settings.lengthBucketing)
        var heldOut = [EvalSplit.eval: HeldOutSet(dev, base: base, batchSize: Self.evalBatchSize)]
        if let validation {
            heldOut[.validation] = HeldOutSet(validation, base: base, batchSize: Self.evalBatchSize)
        }
        self.heldOut = heldOut
    }

    /// The gold scores of a regression task's examples (the loader gives each one), else nil.
    static func scores(of examples: [GLUEExample]) -> [Float]? {
        guard examples.allSatisfy({ $0.score != nil }), !examples.isEmpty else { return nil }
        return examples.map { Float($0.score!) }
    }

    /// `count` distinct positions of a training file of `total` examples, ascending: the first
    /// `count` of a Fisher–Yates shuffle from a fixed seed, so the split depends on the file
    /// alone (not on the run, the manifest or `max_train_examples`), and a random sample rather
    /// than a block of the file (CoLA's train.tsv, for one, is grouped by source).
    package static func validationIndices(count: Int, of total: Int) -> [Int] {
        var rng = SplitMix64(seed: 0).derived("validation examples")
        var order = Array(0..<total)
        for i in 0..<count {
            order.swapAt(i, i + Int(rng.next() % UInt64(total - i)))
        }
        return order.prefix(count).sorted()
    }

    /// A batch larger than the training set would silently shrink to the whole set: an error
    /// naming the keys that left so few examples.
    package static func checkBatchFits(trainingExamples: Int, batchSize: Int, settings: GLUETaskSettings) throws {
        guard trainingExamples < batchSize else { return }
        let limitedBy = [settings.validationExamples.map { "task.validation_examples (\($0))" },
                         settings.maxTrainExamples.map { "task.max_train_examples (\($0))" }].compactMap { $0 }
        throw GLUETaskError.fewerExamplesThanBatch(path: GLUE.path(settings.task, split: .train, in: settings.dataDirectory),
                                                   examples: trainingExamples, batchSize: batchSize, limitedBy: limitedBy)
    }

    package func makeModel(seed: UInt64, batchSize: Int, base format: BaseWeightFormat, adapt: AdapterFactory) throws -> any TaskModel {
        try Self.checkBatchFits(trainingExamples: trainBatcher.exampleCount, batchSize: batchSize, settings: settings)
        let classifier = try base.makeClassifier(seed: seed, base: format, adapt: adapt)
        var batchSeed = SplitMix64(seed: seed).derived("batches")
        return GLUEClassifier(experiment: self, classifier: classifier,
                              batcher: trainBatcher.with(batchSize: batchSize, seed: batchSeed.next()))
    }
}
