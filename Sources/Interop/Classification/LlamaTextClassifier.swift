import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData

/// A decoder classifies as a language model: it reads the task's prompt, and the logit of each
/// label's word at the prompt's last token scores that label. Training is the causal-LM loss on
/// that one answer token (the full vocabulary's cross-entropy, as fine-tuning the model to write
/// the word would be); there is no head, and the tied LM head stays frozen.
extension LlamaFamily {
    public var maxSequenceLength: Int { architecture.contextLength }
    public var classifierHasHead: Bool { false }
    /// It scores label words; a real-valued target would need a head it does not have.
    public var classifierPredictsScores: Bool { false }

    /// Opens the GGUF file (its `llama.*` metadata must be the family's architecture), its weights
    /// dequantized once per process, and its tokenizer; each label word must be one token.
    public func classifierBase(files: ModelFiles, task: TextClassification) throws -> any TextClassifierBase {
        let file = try GGUFFile(path: files.weightsPath)
        let config = try LlamaConfig(gguf: file)
        guard config == architecture else {
            throw ModelFilesError.unexpectedArchitecture(path: files.weightsPath, found: "\(config)", expected: "\(architecture)")
        }
        return try LlamaClassifierBase(files: files, file: file, config: config, task: task)
    }
}

/// A label word the tokenizer splits into several tokens (or none): its logit is not one number.
public struct LabelWordError: Error, CustomStringConvertible {
    public var word: String
    public var tokens: [String]
    public var model: String

    public var description: String {
        "label word '\(word)' is \(tokens.count) tokens for \(model) (\(tokens.map { "'\($0)'" }.joined(separator: ", "))); "
            + "choose words the tokenizer keeps whole, usually with a leading space such as ' yes'"
    }
}

/// A decoder's weights, tokenizer and label-word ids, shared by every run.
public final class LlamaClassifierBase: TextClassifierBase {
    public let files: ModelFiles
    public let file: GGUFFile
    public let config: LlamaConfig
    public let task: TextClassification
    public let tokenizer: ByteLevelBPE
    /// The token of each label's word, in label order.
    public let labelTokenIDs: [Int]

    init(files: ModelFiles, file: GGUFFile, config: LlamaConfig, task: TextClassification) throws {
        self.files = files
        self.file = file
        self.config = config
        self.task = task
        tokenizer = try Self.sharedTokenizer(file)
        labelTokenIDs = try task.prompt.labelWords.map { [tokenizer] word in
            let ids = tokenizer.encode(word)
            guard ids.count == 1 else {
                throw LabelWordError(word: word, tokens: ids.map { tokenizer.tokens[$0] }, model: files.family.name)
            }
            return ids[0]
        }
    }

    /// The weights dequantized to float32 (decoded on first use, once per process).
    public var weights: LlamaWeights {
        get throws { try Self.sharedWeights(file, config: config) }
    }

    /// The padding token the file names, else end-of-text: padded positions are masked out.
    public var padId: Int { tokenizer.specialTokens.padding ?? tokenizer.specialTokens.eos ?? 0 }

    /// The tied embedding, every layer's norms and Linears, and the final norm.
    public var frozenParameterCount: Int { config.parameterCount }

    /// The rendered prompt's tokens; a longer one keeps its last `maxLength` tokens, so the
    /// question and the answer position the label words are read at survive.
    public func encode(_ example: GLUEExample) -> EncodedExample {
        let ids = tokenizer.encode(task.prompt.render(example)).suffix(task.maxLength)
        return (Array(ids), Array(repeating: 0, count: ids.count), example.label)
    }

    public func makeClassifier(seed: UInt64, base: BaseWeightFormat, adapt: ModuleAdapterFactory) throws -> any TextClassifier {
        let decoder = try LlamaDecoder(weights: Self.sharedWeights(file, config: config, for: base), baseFormat: base, adapt: adapt)
        return LlamaTextClassifier(decoder: decoder, labelTokenIDs: labelTokenIDs, family: files.family)
    }

    /// The weights decoded once per process and file, shared by every run and task: the Linears
    /// kept in the file's blocks for a `gguf` base (`.stored`), else dequantized to float32. Each
    /// form is decoded only when a run asks for it, so a sweep on the blocks never holds float32
    /// Linears.
    package static func sharedWeights(_ file: GGUFFile, config: LlamaConfig, for base: BaseWeightFormat = .float32) throws -> LlamaWeights {
        guard base == .stored else { return try dequantized.weights(file.path) { try LlamaWeights(gguf: file, config: config) } }
        return try blocks.weights(file.path) { try LlamaWeights(gguf: file, config: config, keepingBlocks: true) }
    }

    /// The file's tokenizer, built once per process and file as the weights are.
    static func sharedTokenizer(_ file: GGUFFile) throws -> ByteLevelBPE {
        try tokenizers.weights(file.path) { try ByteLevelBPE(gguf: file) }
    }

    private static let dequantized = SharedWeights<LlamaWeights>()
    private static let blocks = SharedWeights<LlamaWeights>()
    private static let tokenizers = SharedWeights<ByteLevelBPE>()
}

/// The decoder with its adapters, scoring labels by their words' logits.
public final class LlamaTextClassifier: TextClassifier {
    public let decoder: LlamaDecoder
    public let adapters: [NamedAdapter]
    private let labelTokenIDs: [Int]
    private let family: any ModelFamily

    public init(decoder: LlamaDecoder, labelTokenIDs: [Int], family: any ModelFamily) {
        self.decoder = decoder
        self.labelTokenIDs = labelTokenIDs
        self.family = family
        adapters = decoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) }
    }

    public var trainableParameters: [Parameter] { adapters.flatMap(\.adapter.parameters) }
    public let headParameterCount = 0

    public func loss(_ batch: TokenBatch, training: Bool) throws -> Float {
        try decoder.loss(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, batchSize: batch.batchSize,
                         predicting: batch.labels.map { labelTokenIDs[$0] },
                         atRows: LlamaDecoder.lastTokenRows(attentionMask: batch.attentionMask, batchSize: batch.batchSize),
                         training: training)
    }

    public func backward() throws { try decoder.backward() }

    /// The label words' logits at each prompt's last token, and the loss over the whole vocabulary.
    public func evaluate(_ batch: TokenBatch) throws -> (labelScores: Matrix, loss: Float) {
        let loss = try loss(batch, training: false)
        let logits = decoder.logits(at: LlamaDecoder.lastTokenRows(attentionMask: batch.attentionMask, batchSize: batch.batchSize))
        var scores = Matrix.zeros(batch.batchSize, labelTokenIDs.count)
        for row in 0..<batch.batchSize {
            for (label, token) in labelTokenIDs.enumerated() { scores[row, label] = logits[row, token] }
        }
        return (scores, loss)
    }

    public let savedModules: (names: [String], tensors: [String: TensorToWrite]) = ([], [:])

    public func describe(_ config: inout PeftConfig) throws {
        try AdaptedDecoder.describe(&config, adapters: adapters.map(\.name), of: decoder.config, family: family,
                                    weightsPath: PeftCheckpoint.weightsFile)
    }
}
