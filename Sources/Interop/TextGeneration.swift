import Foundation
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData

/// A model that cannot generate text as asked, naming what was given and what is allowed.
public enum TextGenerationError: Error, Equatable, CustomStringConvertible {
    /// Generation without an adapter was asked of a model that is not a decoder.
    case notADecoder(model: String, decoders: [String])
    /// `--chat` on a file whose vocabulary has no single control token closing a turn.
    case noEndOfTurnToken(path: String, token: String)

    public var description: String {
        switch self {
        case let .notADecoder(model, decoders):
            return "\(model) is not a decoder, so it cannot generate text; models that can: \(decoders.joined(separator: ", ")) "
                + "(an encoder runs with its adapter folder: infer ADAPTER --text …)"
        case let .noEndOfTurnToken(path, token):
            return "\(path): the vocabulary has no control token \(token), which ends a chat answer; generate without --chat"
        }
    }
}

/// One prompt's greedy continuation.
public struct Generation: Sendable, Equatable {
    /// The prompt's token count, after chat rendering.
    public var promptTokenCount: Int
    /// The generated ids, the end token included when one ended the continuation.
    public var tokenIDs: [Int]
    /// Whether an end token ended the continuation (else it ran to the token limit).
    public var endedWithEndToken: Bool
    /// The generated text, without the end token.
    public var text: String
}

/// What a generator has done so far: the numbers of the speed line `infer` prints.
public struct GenerationTally: Sendable, Equatable {
    public var prompts = 0
    public var promptTokens = 0
    public var generatedTokens = 0
    /// Wall-clock seconds inside `generate`: the prompts' forward passes and every new token's.
    public var seconds = 0.0

    public var tokensPerSecond: Double { seconds > 0 ? Double(generatedTokens) / seconds : 0 }

    /// "generated 7 tokens for 1 prompt (5 prompt tokens) in 0.31 s: 22.6 tokens/s".
    public var summary: String {
        "generated \(generatedTokens) tokens for \(prompts) prompt\(prompts == 1 ? "" : "s") (\(promptTokens) prompt tokens) in "
            + String(format: "%.2f s: %.1f tokens/s", seconds, tokensPerSecond)
    }
}

/// Greedy text generation on a Llama decoder, base or adapted, with the tokenizer, chat template
/// and end-of-sequence token of its GGUF file: what `lorabench infer` runs on a decoder.
public final class TextGenerator {
    public let decoder: LlamaDecoder
    public let tokenizer: ByteLevelBPE
    /// The template a prompt is rendered with as one user message, or nil to tokenize it as it is.
    public let chatTemplate: ChatMLTemplate?
    /// The tokens that end a continuation.
    public let endTokenIDs: Set<Int>
    public private(set) var tally = GenerationTally()

    public init(decoder: LlamaDecoder, tokenizer: ByteLevelBPE, chatTemplate: ChatMLTemplate?, endTokenIDs: Set<Int>) {
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.endTokenIDs = endTokenIDs
    }

    /// `decoder` with the tokenizer of `file` (the decoder's own GGUF file). A continuation ends at
    /// the end-of-sequence token the file declares; with `chat`, prompts are rendered with the
    /// file's chat template and a continuation also ends at the token closing a turn (`<|im_end|>`).
    public convenience init(decoder: LlamaDecoder, gguf file: GGUFFile, chat: Bool) throws {
        let tokenizer = try ByteLevelBPE(gguf: file)
        var endTokens = Set([tokenizer.specialTokens.eos].compactMap { $0 })
        var template: ChatMLTemplate?
        if chat {
            template = try ChatMLTemplate(gguf: file)
            let endOfTurn = tokenizer.encode(ChatMLTemplate.endOfTurn)
            guard endOfTurn.count == 1, tokenizer.controlTokenIDs.contains(endOfTurn[0]) else {
                throw TextGenerationError.noEndOfTurnToken(path: file.path, token: ChatMLTemplate.endOfTurn)
            }
            endTokens.insert(endOfTurn[0])
        }
        self.init(decoder: decoder, tokenizer: tokenizer, chatTemplate: template, endTokenIDs: endTokens)
    }

    /// The ids a prompt is continued from (`promptTokenIDs(_:tokenizer:chatTemplate:)`).
    public func promptTokenIDs(_ prompt: String) -> [Int] {
        Self.promptTokenIDs(prompt, tokenizer: tokenizer, chatTemplate: chatTemplate)
    }

    /// The ids a prompt is continued from: with a chat template, the prompt as one user message
    /// followed by the assistant's generation prompt; without, the text alone. No token is added
    /// (a ChatML file's `add_bos_token` is false; the template opens every turn itself). Static,
    /// so that the generation bench encodes its prompt as `infer` does without loading a decoder.
    public static func promptTokenIDs(_ prompt: String, tokenizer: ByteLevelBPE, chatTemplate: ChatMLTemplate?) -> [Int] {
        guard let chatTemplate else { return tokenizer.encode(prompt) }
        return tokenizer.encode(chatTemplate.render([ChatMessage(role: "user", content: prompt)], addGenerationPrompt: true))
    }

    /// Greedy continuations of `prompts`, one batch through the decoder's KV cache, each at most
    /// `maxNewTokens` long and ended by the first end token it produces. A prompt with no token
    /// (an empty text) is an error naming it.
    public func generate(_ prompts: [String], maxNewTokens: Int) throws -> [Generation] {
        let start = ContinuousClock.now
        let promptIDs = prompts.map(promptTokenIDs)
        if let empty = promptIDs.firstIndex(where: \.isEmpty) {
            throw LlamaError.invalidInput("prompt \(empty + 1) of the batch is empty: there is no token to continue")
        }
        let continuations = try decoder.generateGreedy(prompts: promptIDs, maxNewTokens: maxNewTokens, stopTokens: endTokenIDs)
        let generations = try zip(promptIDs, continuations).map { prompt, ids in
            let ended = ids.last.map(endTokenIDs.contains) ?? false
            return Generation(promptTokenCount: prompt.count, tokenIDs: ids, endedWithEndToken: ended,
                              text: try tokenizer.decode(ended ? Array(ids.dropLast()) : ids))
        }
        let elapsed = (ContinuousClock.now - start).components
        tally.prompts += prompts.count
        tally.promptTokens += promptIDs.reduce(0) { $0 + $1.count }
        tally.generatedTokens += continuations.reduce(0) { $0 + $1.count }
        tally.seconds += Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        return generations
    }
}

extension TextGenerator {
    /// What `lorabench infer` generates with: the adapter folder `adapter` on its decoder (`model`
    /// when given, else the one its config names), merged into the base first when `merged`; or,
    /// without an adapter, the base decoder `model`, held in `baseFormat` (default float32). The
    /// model comes from `store`'s cache (the error names the fetch command). The warning, when
    /// not nil, says the base is held otherwise than in training.
    public static func open(adapter: String?, model: (any ModelFamily)?, store: ModelStore = .default, baseFormat: BaseWeightFormat? = nil,
                            allowNonFinite: Bool = false, merged: Bool = false, chat: Bool = false) throws -> (generator: TextGenerator, warning: String?) {
        if let adapter {
            let (adapted, files) = try AdaptedDecoder.open(adapter, model: model, store: store, allowNonFinite: allowNonFinite, baseFormat: baseFormat)
            if merged { adapted.merge() }
            let generator = try TextGenerator(decoder: adapted.decoder, gguf: GGUFFile(path: files.weightsPath), chat: chat)
            return (generator, adapted.baseFormatWarning)
        }
        guard let family = model as? any LlamaFamily else {
            throw TextGenerationError.notADecoder(model: model?.name ?? "no model",
                                                  decoders: ModelFamilyRegistry.described(ModelFamilyRegistry.families.filter { $0 is any LlamaFamily }))
        }
        let file = try GGUFFile(path: store.locate(family).weightsPath)
        let decoder = try LlamaDecoder(weights: LlamaWeights(gguf: file, config: LlamaConfig(gguf: file), keepingBlocks: baseFormat == .stored),
                                       baseFormat: baseFormat ?? .float32)
        return (try TextGenerator(decoder: decoder, gguf: file, chat: chat), nil)
    }
}

extension ModelFamilyRegistry {
    /// The family whose base an adapter folder was trained on: `model` when given, else the one its
    /// adapter_config.json's `base_model_name_or_path` names; an unknown name is an error listing
    /// the known models. `infer` and `merge` choose between an encoder's and a decoder's path by it.
    public static func family(ofAdapter directory: String, model: (any ModelFamily)?) throws -> any ModelFamily {
        if let model { return model }
        let path = "\(directory)/\(PeftCheckpoint.configFile)"
        let named = try PeftConfig(contentsOf: path).baseModelNameOrPath
        guard let family = family(forBaseModel: named) else {
            throw CheckpointError.unknownBaseModel(path: path, name: named ?? "nothing", known: described())
        }
        return family
    }
}
