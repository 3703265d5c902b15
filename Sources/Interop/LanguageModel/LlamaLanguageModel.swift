import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData

/// A Llama decoder is a language model: it learns completions with the causal-LM loss on their
/// tokens and generates greedily with a KV cache, its tokenizer, chat template and end tokens
/// read from its GGUF file.
extension LlamaFamily {
    /// Opens the GGUF file (its `llama.*` metadata must be the family's architecture), its weights
    /// dequantized once per process (shared with the classifier's), its tokenizer and chat template.
    public func languageModelBase(files: ModelFiles) throws -> any LanguageModelBase {
        let file = try GGUFFile(path: files.weightsPath)
        let config = try LlamaConfig(gguf: file)
        guard config == architecture else {
            throw ModelFilesError.unexpectedArchitecture(path: files.weightsPath, found: "\(config)", expected: "\(architecture)")
        }
        return try LlamaLanguageModelBase(files: files, file: file, config: config)
    }
}

/// A decoder's weights, tokenizer, chat template and end tokens, shared by every run.
public final class LlamaLanguageModelBase: LanguageModelBase {
    public let files: ModelFiles
    public let file: GGUFFile
    public let config: LlamaConfig
    public let tokenizer: ByteLevelBPE
    /// The file's chat template, or why it cannot be rendered: an error only for a task that
    /// has conversations to render.
    private let chatTemplate: Result<ChatMLTemplate, any Error>
    /// The end-of-sequence token the file names (`tokenizer.ggml.eos_token_id`): it ends a text completion.
    public let endOfSequenceID: Int?
    /// The control token closing a chat turn (`<|im_end|>`): it ends a conversation's completion.
    public let endOfTurnID: Int?

    init(files: ModelFiles, file: GGUFFile, config: LlamaConfig) throws {
        self.files = files
        self.file = file
        self.config = config
        tokenizer = try LlamaClassifierBase.sharedTokenizer(file)
        chatTemplate = Result { try ChatMLTemplate(gguf: file) }
        endOfSequenceID = tokenizer.specialTokens.eos
        let endOfTurn = tokenizer.encode(ChatMLTemplate.endOfTurn)
        endOfTurnID = endOfTurn.count == 1 && tokenizer.controlTokenIDs.contains(endOfTurn[0]) ? endOfTurn[0] : nil
    }

    /// The weights dequantized to float32 (decoded on first use, once per process, shared with the classifier's).
    public var weights: LlamaWeights {
        get throws { try LlamaClassifierBase.sharedWeights(file, config: config) }
    }

    /// The padding token the file names, else end-of-sequence: padded positions are masked out.
    public var padID: Int { tokenizer.specialTokens.padding ?? endOfSequenceID ?? 0 }

    /// The tied embedding, every layer's norms and Linears, and the final norm.
    public var frozenParameterCount: Int { config.parameterCount }

    /// The prompt and the completion are tokenized apart, so generation continues from exactly
    /// the prompt tokens training saw (a word split between them stays split); no token is added
    /// at the start (the file says `add_bos_token = false`; a chat template opens every turn itself).
    public func encode(_ example: CompletionExample) throws -> EncodedCompletion {
        let prompt: String, completion: String, end: Int
        switch example.content {
        case let .text(text, answer):
            guard let endOfSequenceID else { throw LanguageModelError.noEndToken(path: files.weightsPath, needed: "end-of-sequence token") }
            (prompt, completion, end) = (text, answer, endOfSequenceID)
        case let .conversation(messages):
            let template = try chatTemplate.get()
            guard let endOfTurnID else {
                throw LanguageModelError.noEndToken(path: files.weightsPath, needed: "control token \(ChatMLTemplate.endOfTurn) closing a chat turn")
            }
            (prompt, completion, end) = (template.render(Array(messages.dropLast()), addGenerationPrompt: true), example.reference, endOfTurnID)
        }
        let promptIDs = tokenizer.encode(prompt)
        guard !promptIDs.isEmpty else { throw LanguageModelError.emptyPrompt }
        return EncodedCompletion(prompt: promptIDs, completion: tokenizer.encode(completion) + [end])
    }

    public func decode(_ ids: [Int]) throws -> String { try tokenizer.decode(ids) }

    public func makeLanguageModel(base: BaseWeightFormat, adapt: ModuleAdapterFactory) throws -> any LanguageModel {
        let decoder = try LlamaDecoder(weights: LlamaClassifierBase.sharedWeights(file, config: config, for: base), baseFormat: base, adapt: adapt)
        return LlamaLanguageModel(decoder: decoder, endTokenIDs: Set([endOfSequenceID, endOfTurnID].compactMap { $0 }), family: files.family)
    }
}

/// The decoder with its adapters, trained on completions and generating greedily.
public final class LlamaLanguageModel: LanguageModel {
    public let decoder: LlamaDecoder
    public let adapters: [NamedAdapter]
    /// The tokens that end a generated answer.
    public let endTokenIDs: Set<Int>
    private let family: any ModelFamily

    public init(decoder: LlamaDecoder, endTokenIDs: Set<Int>, family: any ModelFamily) {
        self.decoder = decoder
        self.endTokenIDs = endTokenIDs
        self.family = family
        adapters = decoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) }
    }

    public var trainableParameters: [Parameter] { adapters.flatMap(\.adapter.parameters) }

    public func loss(_ batch: CompletionBatch, training: Bool) throws -> Float {
        try decoder.loss(inputIDs: batch.inputIDs, attentionMask: batch.attentionMask, labels: batch.labels, batchSize: batch.batchSize,
                         training: training)
    }

    public func backward() throws { try decoder.backward() }

    /// Each continuation stops at its first end token (the batch when all have), which is not returned.
    public func generate(prompts: [[Int]], maxNewTokens: Int) throws -> [[Int]] {
        try decoder.generateGreedy(prompts: prompts, maxNewTokens: maxNewTokens, stopTokens: endTokenIDs).map { ids in
            Array(ids.prefix { !endTokenIDs.contains($0) })
        }
    }

    public func describe(_ config: inout PeftConfig) throws {
        try AdaptedDecoder.describe(&config, adapters: adapters.map(\.name), of: decoder.config, family: family,
                                    weightsPath: PeftCheckpoint.weightsFile)
    }
}
