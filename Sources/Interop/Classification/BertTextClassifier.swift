import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData

/// A BERT encoder classifies through mean pooling and a trained linear head; the prompt is not read.
extension BertFamily {
    public var maxSequenceLength: Int { architecture.maxPositions }
    public var classifierHasHead: Bool { true }
    public var classifierPredictsScores: Bool { true }

    /// Reads config.json (its shape must be the one the family's modules were resolved for), the
    /// weights (decoded once per process) and the WordPiece vocabulary.
    public func classifierBase(files: ModelFiles, task: TextClassification) throws -> any TextClassifierBase {
        let config = try BertConfig(contentsOf: URL(fileURLWithPath: files.configPath))
        let expected = architecture
        guard config.layerCount == expected.layerCount, config.hiddenSize == expected.hiddenSize,
              config.intermediateSize == expected.intermediateSize else {
            throw ModelFilesError.unexpectedArchitecture(
                path: files.configPath,
                found: "\(config.layerCount) layers of width \(config.hiddenSize) and intermediate size \(config.intermediateSize)",
                expected: "\(expected.layerCount) layers of width \(expected.hiddenSize) and intermediate size \(expected.intermediateSize)")
        }
        return try BertClassifierBase(files: files, config: config, task: task)
    }
}

/// The model's files do not describe the architecture its family declares.
public enum ModelFilesError: Error, CustomStringConvertible {
    case unexpectedArchitecture(path: String, found: String, expected: String)

    public var description: String {
        switch self {
        case let .unexpectedArchitecture(path, found, expected):
            return "\(path): the model has \(found); the task's modules were resolved for \(expected)"
        }
    }
}

/// A BERT encoder's weights and tokenizer, shared by every run.
public final class BertClassifierBase: TextClassifierBase {
    public let files: ModelFiles
    public let config: BertConfig
    /// Decoded once; every run's encoder shares them.
    public let weights: BertWeights
    public let task: TextClassification
    private let tokenizer: WordPieceTokenizer

    init(files: ModelFiles, config: BertConfig, task: TextClassification) throws {
        self.files = files
        self.config = config
        self.task = task
        weights = try Self.sharedWeights(files.weightsPath)
        tokenizer = try WordPieceTokenizer(vocabularyPath: files.vocabularyPath)
    }

    public var padId: Int { tokenizer.padId }

    /// Embeddings and layers, not the unused pooler.
    public var frozenParameterCount: Int {
        let (c, f) = (config.hiddenSize, config.intermediateSize)
        let embeddings = (config.vocabSize + config.maxPositions + config.typeVocabSize) * c + 2 * c
        let layer = 4 * (c * c + c) + (c * f + f) + (f * c + c) + 2 * 2 * c
        return embeddings + config.layerCount * layer
    }

    public func encode(_ example: GLUEExample) -> EncodedExample { tokenizer.encode(example, maxLength: task.maxLength) }

    public func makeClassifier(seed: UInt64, base: BaseWeightFormat, adapt: ModuleAdapterFactory) throws -> any TextClassifier {
        let buffer = DequantizationBuffer()
        let encoder = try BertEncoder(config: config, weights: weights, labelCount: task.labelCount, seed: seed,
                                      baseFormat: base) { name, weight, bias in
            try adapt(ModuleShape(name: name, inFeatures: weight.cols, outFeatures: weight.rows),
                      try base.frozenLinear(weight: weight, bias: bias, buffer: buffer))
        }
        return BertTextClassifier(encoder: encoder, family: files.family, isRegression: task.isRegression)
    }

    /// The weights decoded once per process and file (90 MB of safetensors).
    static func sharedWeights(_ path: String) throws -> BertWeights {
        try decoded.weights(path) { try BertWeights(SafetensorsFile(path: path)) }
    }

    private static let decoded = SharedWeights<BertWeights>()
}

/// The encoder with its adapters and head.
public final class BertTextClassifier: TextClassifier {
    public let encoder: BertEncoder
    public let adapters: [NamedAdapter]
    private let family: any ModelFamily
    /// A head of one output trained on the batches' scores by squared error.
    private let isRegression: Bool

    public init(encoder: BertEncoder, family: any ModelFamily, isRegression: Bool = false) {
        self.encoder = encoder
        self.family = family
        self.isRegression = isRegression
        adapters = encoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) }
    }

    public var trainableParameters: [Parameter] { encoder.trainableParameters }
    public var headParameterCount: Int { encoder.head.parameters.reduce(0) { $0 + $1.count } }

    public func loss(_ batch: TokenBatch, training: Bool) throws -> Float {
        if isRegression {
            return try encoder.regressionLoss(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, tokenTypeIDs: batch.tokenTypeIds,
                                              batchSize: batch.batchSize, targets: batch.scores, training: training).loss
        }
        return try encoder.loss(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, tokenTypeIDs: batch.tokenTypeIds,
                         batchSize: batch.batchSize, labels: batch.labels, training: training).loss
    }

    public func backward() throws { try encoder.backward() }

    public func evaluate(_ batch: TokenBatch) throws -> (labelScores: Matrix, loss: Float) {
        let logits = try encoder.logits(inputIDs: batch.inputIds, attentionMask: batch.attentionMask,
                                        tokenTypeIDs: batch.tokenTypeIds, batchSize: batch.batchSize)
        if isRegression { return (logits, meanSquaredError(predictions: logits, targets: batch.scores).loss) }
        return (logits, crossEntropy(logits: logits, labels: batch.labels).loss)
    }

    public var savedModules: (names: [String], tensors: [String: TensorToWrite]) {
        let head = encoder.head
        return (["classifier"], ["classifier.weight": TensorToWrite(head.weight.value),
                                 "classifier.bias": TensorToWrite(head.bias.value, shape: [head.labelCount])])
    }

    /// LoRABench's encoder adapters are saved with `task_type: null` and the head in
    /// `modules_to_save`; `layers_to_transform` when the adapters are in some layers only.
    public func describe(_ config: inout PeftConfig) throws {
        config.modulesToSave = savedModules.names
        config.baseModelNameOrPath = family.hubName
        PeftSelection.recordLayers(&config, adapters: adapters.map(\.name), layerCount: encoder.config.layerCount)
    }
}
