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

/// A GLUE classification task (`sst2`, `rte`, `cola`) on a pretrained encoder (a `BertFamily` of
/// the registry): the frozen BERT encoder with the run's adapters, mean pooling and a trainable classification
/// head, trained with cross-entropy on dynamically padded batches and evaluated by dev-set
/// accuracy. The data are the copies under `data_dir` (`Data/<task>/{train,dev}.tsv`).
public struct GLUETaskSettings: TaskSettings {
    public static let keys = ["name", "data_dir", "max_train_examples", "max_length", "length_bucketing", "eval_examples",
                              "validation_examples"]

    public let task: GLUETask
    /// The folder holding `<task>/train.tsv` and `<task>/dev.tsv`, relative to the working directory.
    public var dataDirectory = "Data"
    /// Train on the first this many training examples (nil: all).
    public var maxTrainExamples: Int?
    /// Tokens per example, [CLS] and [SEP] included; longer examples are truncated.
    public var maxLength = 128
    /// Sort examples by length within chunks of batches before batching (less padding).
    public var lengthBucketing = false
    /// Evaluate on the first this many dev examples (nil: all).
    public var evalExamples: Int?
    /// Hold this many examples of train.tsv out as the `validation` split (nil: none): drawn
    /// from the whole file by a fixed shuffle, so they are the same for every run and manifest.
    public var validationExamples: Int?
    /// Where the model is looked up; tests point it at another cache.
    public var store = ModelStore.default
    /// The encoder the task fine-tunes: the registry's first BERT family.
    public var family: any BertFamily = Self.families[0]

    /// The registry's encoders, the models a GLUE task can train.
    package static var families: [any BertFamily] { ModelFamilyRegistry.families.compactMap { $0 as? any BertFamily } }

    public var name: String { task.name }
    public var models: [String] { Self.families.map(\.name) }
    public let evalMetrics = [EvalMetric(name: "loss", higherIsBetter: false), EvalMetric(name: "accuracy", higherIsBetter: true)]
    public let hasHead = true
    public var labelCount: Int? { task.labelCount }

    public init(task: GLUETask) { self.task = task }

    /// `task: sst2` (all defaults) or a mapping of the keys above.
    package init(_ node: ManifestNode, task: GLUETask) throws {
        self.init(task: task)
        guard case .mapping = node.node else { return }
        let block = try node.mapping(keys: Self.keys)
        if let value = block.optional("data_dir") {
            dataDirectory = try value.string(allowed: "a folder holding \(task.name)/train.tsv and \(task.name)/dev.tsv")
        }
        if let value = block.optional("max_train_examples") {
            maxTrainExamples = try value.int(allowed: "an integer ≥ 1 (the first examples of train.tsv)", in: 1...Int.max)
        }
        if let value = block.optional("max_length") {
            let positions = family.architecture.maxPositions
            maxLength = try value.int(allowed: "an integer from 3 to \(positions) (tokens, [CLS] and [SEP] included)", in: 3...positions)
        }
        if let value = block.optional("length_bucketing") { lengthBucketing = try value.bool() }
        if let value = block.optional("eval_examples") {
            evalExamples = try value.int(allowed: "an integer ≥ 1 (the first examples of dev.tsv)", in: 1...Int.max)
        }
        if let value = block.optional("validation_examples") {
            validationExamples = try value.int(allowed: "an integer ≥ 1 (examples of train.tsv held out, never trained on)", in: 1...Int.max)
        }
    }

    /// The six Linears of every layer under their peft module names, in model order.
    public var modules: [ModuleShape] { family.modules }

    public var resolved: Node {
        Settings.map([
            ("name", Settings.text(name)),
            ("data_dir", Settings.text(dataDirectory)),
            ("max_train_examples", maxTrainExamples.map(Settings.int) ?? Settings.text("all")),
            ("max_length", Settings.int(maxLength)),
            ("length_bucketing", Settings.bool(lengthBucketing)),
            ("eval_examples", evalExamples.map(Settings.int) ?? Settings.text("all")),
        ] + (validationExamples.map { [("validation_examples", Settings.int($0))] } ?? []))
    }

    /// Locates the model (failing with the command that fetches it), checks its architecture,
    /// decodes its weights and tokenizes both splits once for every run of the sweep.
    public func makeTask() throws -> any ExperimentTask {
        let files = try store.locate(family)
        let config = try BertConfig(contentsOf: URL(fileURLWithPath: files.configPath))
        let expected = family.architecture
        guard config.layerCount == expected.layerCount, config.hiddenSize == expected.hiddenSize,
              config.intermediateSize == expected.intermediateSize else {
            throw GLUETaskError.unexpectedArchitecture(
                path: files.configPath,
                found: "\(config.layerCount) layers of width \(config.hiddenSize) and intermediate size \(config.intermediateSize)",
                expected: "\(expected.layerCount) layers of width \(expected.hiddenSize) and intermediate size \(expected.intermediateSize)")
        }
        return try GLUEExperiment(settings: self, files: files, config: config)
    }
}

public enum GLUETaskError: Error, CustomStringConvertible {
    case unexpectedArchitecture(path: String, found: String, expected: String)
    case noExamples(path: String)
    case validationTooLarge(path: String, examples: Int, validation: Int)
    case fewerExamplesThanBatch(path: String, examples: Int, batchSize: Int, limitedBy: [String])

    public var description: String {
        switch self {
        case let .unexpectedArchitecture(path, found, expected):
            return "\(path): the model has \(found); the task's modules were resolved for \(expected)"
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

    init(_ examples: [GLUEExample], tokenizer: WordPieceTokenizer, maxLength: Int, batchSize: Int) {
        let batcher = Batcher(examples: examples, tokenizer: tokenizer, batchSize: batchSize, maxLength: maxLength, shuffle: false,
                              bucketByLength: true, bucketBatches: (examples.count + batchSize - 1) / batchSize)
        members = batcher.batchMembers()
        batches = batcher.batches()
        count = examples.count
    }
}

/// The frozen model files and the tokenized data, shared by every run of a sweep.
package final class GLUEExperiment: ExperimentTask {
    package static let evalBatchSize = 64

    package let settings: GLUETaskSettings
    package let files: ModelFiles
    package let config: BertConfig
    /// Decoded once; every run's encoder shares them.
    package let weights: BertWeights
    /// The training examples, tokenized once; each run re-cuts them with its batch size and seed.
    package let trainBatcher: Batcher
    /// The dev set (`eval`) and, with `validation_examples`, the held-out training examples.
    package let heldOut: [EvalSplit: HeldOutSet]
    package var evalBatches: [TokenBatch] { heldOut[.eval]!.batches }
    package var evalCount: Int { heldOut[.eval]!.count }
    /// Parameters of the encoder itself (embeddings and layers, not the unused pooler).
    package let encoderParameterCount: Int

    package init(settings: GLUETaskSettings, files: ModelFiles, config: BertConfig) throws {
        self.settings = settings
        self.files = files
        self.config = config
        weights = try Self.sharedWeights(files.weightsPath)
        let tokenizer = try WordPieceTokenizer(vocabularyPath: files.vocabularyPath)
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
        trainBatcher = Batcher(examples: train, tokenizer: tokenizer, batchSize: 1, maxLength: settings.maxLength,
                               shuffle: true, bucketByLength: settings.lengthBucketing)
        var heldOut = [EvalSplit.eval: HeldOutSet(dev, tokenizer: tokenizer, maxLength: settings.maxLength, batchSize: Self.evalBatchSize)]
        if let validation {
            heldOut[.validation] = HeldOutSet(validation, tokenizer: tokenizer, maxLength: settings.maxLength, batchSize: Self.evalBatchSize)
        }
        self.heldOut = heldOut
        let (c, f) = (config.hiddenSize, config.intermediateSize)
        let embeddings = (config.vocabSize + config.maxPositions + config.typeVocabSize) * c + 2 * c
        let layer = 4 * (c * c + c) + (c * f + f) + (f * c + c) + 2 * 2 * c
        encoderParameterCount = embeddings + config.layerCount * layer
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

    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var decodedWeights: [String: BertWeights] = [:]

    /// The weights decoded once per process and file: every task built from one model (another
    /// sweep in the same process, the tests) shares them instead of decoding 90 MB again.
    package static func sharedWeights(_ path: String) throws -> BertWeights {
        try cacheLock.withLock {
            if let cached = decodedWeights[path] { return cached }
            let weights = try BertWeights(SafetensorsFile(path: path))
            decodedWeights[path] = weights
            return weights
        }
    }

    package func makeModel(seed: UInt64, batchSize: Int, base: BaseWeightFormat, adapt: AdapterFactory) throws -> any TaskModel {
        try Self.checkBatchFits(trainingExamples: trainBatcher.exampleCount, batchSize: batchSize, settings: settings)
        let buffer = DequantizationBuffer()
        let encoder = try BertEncoder(config: config, weights: weights, labelCount: settings.task.labelCount, seed: seed,
                                      baseFormat: base) { name, weight, bias in
            try adapt(ModuleShape(name: name, inFeatures: weight.cols, outFeatures: weight.rows),
                      try base.frozenLinear(weight: weight, bias: bias, buffer: buffer))
        }
        var batchSeed = SplitMix64(seed: seed).derived("batches")
        return GLUEClassifier(experiment: self, encoder: encoder, batcher: trainBatcher.with(batchSize: batchSize, seed: batchSeed.next()))
    }
}

/// One run's model: the encoder with its adapters and head, fed epochs of the run's batches.
package final class GLUEClassifier: PeftExportable {
    package let experiment: GLUEExperiment
    package let encoder: BertEncoder
    package let adapters: [NamedAdapter]
    private let batcher: Batcher
    private var epoch = 0
    private var batches: [TokenBatch] = []
    private var cursor = 0

    package init(experiment: GLUEExperiment, encoder: BertEncoder, batcher: Batcher) {
        self.experiment = experiment
        self.encoder = encoder
        self.adapters = encoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) }
        self.batcher = batcher
    }

    package var trainableParameters: [Parameter] { encoder.trainableParameters }

    package var parameterReport: ParameterReport {
        let adapted = adapters.reduce(0) { $0 + $1.adapter.base.weight.count + $1.adapter.base.bias.count }
        return ParameterReport(layers: adapters.map(\.adapter), otherFrozen: experiment.encoderParameterCount - adapted,
                               otherTrainable: encoder.head.parameters.reduce(0) { $0 + $1.count })
    }

    /// The next batch of the current epoch (a new shuffle each epoch); a smaller last batch of
    /// an epoch is kept, since the loss is a mean over the batch.
    package func trainOnNextBatch() throws -> Float {
        if cursor == batches.count {
            batches = batcher.batches(epoch: epoch)
            epoch += 1
            cursor = 0
        }
        let batch = batches[cursor]
        cursor += 1
        let (_, loss) = try encoder.loss(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, tokenTypeIDs: batch.tokenTypeIds,
                                         batchSize: batch.batchSize, labels: batch.labels, training: true)
        try encoder.backward()
        return loss
    }

    /// [epochs started, batches taken from the current one]; the epoch's batches are recomputed
    /// from the run's seed.
    package var dataPosition: [UInt64] { [UInt64(epoch), UInt64(cursor)] }

    package func restore(dataPosition position: [UInt64]) throws {
        let expected = "[epoch, cursor] with cursor within the epoch's batches"
        guard position.count == 2 else { throw DataPositionError(found: position, expected: expected) }
        let (epoch, cursor) = (Int(position[0]), Int(position[1]))
        let batches = epoch > 0 ? batcher.batches(epoch: epoch - 1) : []
        guard cursor <= batches.count else { throw DataPositionError(found: position, expected: expected) }
        (self.epoch, self.batches, self.cursor) = (epoch, batches, cursor)
    }

    /// Mean cross-entropy and accuracy (argmax, ties to the lower label) over a held-out
    /// split, summed in Double, with every example's prediction and its softmax probability.
    package func evaluate(_ split: EvalSplit) throws -> Evaluation {
        guard let set = experiment.heldOut[split] else { throw HeldOutSplitError(split: split) }
        var lossSum = 0.0, correct = 0
        var predictions: [Prediction] = []
        predictions.reserveCapacity(set.count)
        for (batch, members) in zip(set.batches, set.members) {
            let logits = try encoder.logits(inputIDs: batch.inputIds, attentionMask: batch.attentionMask,
                                            tokenTypeIDs: batch.tokenTypeIds, batchSize: batch.batchSize)
            lossSum += Double(crossEntropy(logits: logits, labels: batch.labels).loss) * Double(batch.batchSize)
            for (row, label) in batch.labels.enumerated() {
                var best = 0
                for c in 1..<logits.cols where logits[row, c] > logits[row, best] { best = c }
                if best == label { correct += 1 }
                // softmax(best) = 1 / Σ_c exp(l_c − l_best), in Double.
                var partition = 0.0
                for c in 0..<logits.cols { partition += exp(Double(logits[row, c]) - Double(logits[row, best])) }
                predictions.append(Prediction(index: members[row], label: label, predicted: best, probability: 1 / partition))
            }
        }
        predictions.sort { $0.index < $1.index }
        let count = Double(set.count)
        return Evaluation(metrics: ["loss": lossSum / count, "accuracy": Double(correct) / count], predictions: predictions)
    }

    package var baseModelName: String { experiment.files.family.hubName }
    package var baseModelSHA256: String? { experiment.files.weightsSHA256 }

    package var savedModules: (names: [String], tensors: [String: TensorToWrite]) {
        let head = encoder.head
        return (["classifier"], ["classifier.weight": TensorToWrite(head.weight.value),
                                 "classifier.bias": TensorToWrite(head.bias.value, shape: [head.labelCount])])
    }
}
