import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters

/// A problem loading or running the BERT encoder, saying what was found and what is expected.
public enum BertError: Error, Equatable, CustomStringConvertible {
    case invalidConfig(path: String, reason: String)
    case missingWeight(path: String, name: String)
    case weightShape(name: String, found: [Int], expected: [Int])
    case invalidInput(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .invalidConfig(path, reason): return "\(path): not a usable BERT config.json: \(reason)"
        case let .missingWeight(path, name): return "\(path): no weight '\(name)' (is this a BertModel checkpoint?)"
        case let .weightShape(name, found, expected): return "weight '\(name)' has shape \(found), expected \(expected)"
        case let .invalidInput(reason): return "invalid encoder input: \(reason)"
        case let .unsupported(what): return "not supported by the BERT encoder: \(what)"
        }
    }
}

/// The architecture settings of a Hugging Face `BertModel` (its `config.json`).
///
/// Only what the encoder implements is accepted: absolute position embeddings and the exact
/// (erf) GELU; anything else is an error rather than a silently different model.
public struct BertConfig: Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var layerNormEpsilon: Float

    public init(vocabSize: Int, hiddenSize: Int, layerCount: Int, headCount: Int, intermediateSize: Int,
                maxPositions: Int, typeVocabSize: Int, layerNormEpsilon: Float) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEpsilon = layerNormEpsilon
    }

    /// Reads and validates `config.json`.
    public init(contentsOf url: URL) throws {
        let path = url.path
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw BertError.invalidConfig(path: path, reason: error.localizedDescription)
        }
        guard let json = object as? [String: Any] else { throw BertError.invalidConfig(path: path, reason: "not a JSON object") }
        func integer(_ key: String) throws -> Int {
            guard let value = json[key] as? Int, value > 0 else {
                throw BertError.invalidConfig(path: path, reason: "'\(key)' must be a positive integer")
            }
            return value
        }
        let activation = json["hidden_act"] as? String ?? "gelu"
        guard activation == "gelu" else {
            throw BertError.invalidConfig(path: path, reason: "hidden_act '\(activation)'; only 'gelu' (the erf form) is implemented")
        }
        let positions = json["position_embedding_type"] as? String ?? "absolute"
        guard positions == "absolute" else {
            throw BertError.invalidConfig(path: path, reason: "position_embedding_type '\(positions)'; only 'absolute' is implemented")
        }
        guard let epsilon = json["layer_norm_eps"] as? Double, epsilon > 0 else {
            throw BertError.invalidConfig(path: path, reason: "'layer_norm_eps' must be a positive number")
        }
        self.init(vocabSize: try integer("vocab_size"), hiddenSize: try integer("hidden_size"),
                  layerCount: try integer("num_hidden_layers"), headCount: try integer("num_attention_heads"),
                  intermediateSize: try integer("intermediate_size"), maxPositions: try integer("max_position_embeddings"),
                  typeVocabSize: try integer("type_vocab_size"), layerNormEpsilon: Float(epsilon))
        guard hiddenSize % headCount == 0 else {
            throw BertError.invalidConfig(path: path, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(headCount)")
        }
    }

    /// d_h = hidden / heads.
    public var headDimension: Int { hiddenSize / headCount }
}
