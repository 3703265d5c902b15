import LoRABenchTensorIO
import LoRABenchAdapters

/// A problem loading or running the Llama decoder, naming the file and the field, or the input.
public enum LlamaError: Error, Equatable, CustomStringConvertible {
    case invalidMetadata(path: String, key: String, reason: String)
    case weightShape(path: String, tensor: String, found: [Int], expected: [Int])
    case unsupported(path: String, what: String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .invalidMetadata(path, key, reason): return "\(path): metadata '\(key)': \(reason)"
        case let .weightShape(path, tensor, found, expected):
            return "\(path): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .unsupported(path, what): return "\(path): not supported by the Llama decoder: \(what)"
        case let .invalidInput(reason): return "invalid decoder input: \(reason)"
        }
    }
}

/// The architecture of a Llama decoder, read from a GGUF file's `llama.*` metadata
/// (decoder-spec.md, "Shapes"). Only what the decoder implements is accepted: RoPE over the whole
/// head, query heads grouped evenly over the key/value heads.
public struct LlamaConfig: Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    /// SwiGLU's inner width.
    public var intermediateSize: Int
    /// RoPE's base θ.
    public var ropeTheta: Float
    /// RMSNorm's ε, as the float32 the file stores (transformers adds it to float32 statistics).
    public var rmsNormEpsilon: Float
    /// The longest sequence the model was trained for.
    public var contextLength: Int

    public init(vocabSize: Int, hiddenSize: Int, layerCount: Int, headCount: Int, keyValueHeadCount: Int, intermediateSize: Int,
                ropeTheta: Float, rmsNormEpsilon: Float, contextLength: Int) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount
        self.intermediateSize = intermediateSize
        self.ropeTheta = ropeTheta
        self.rmsNormEpsilon = rmsNormEpsilon
        self.contextLength = contextLength
    }

    public var headSize: Int { hiddenSize / headCount }
    /// Width of the key and value projections: the key/value heads side by side.
    public var keyValueWidth: Int { keyValueHeadCount * headSize }

    /// Parameters of the tied embedding, every layer's two norms and seven Linears, and the final norm.
    public var parameterCount: Int {
        let (c, f, kv) = (hiddenSize, intermediateSize, keyValueWidth)
        let layer = 2 * c + 2 * c * c + 2 * kv * c + 3 * c * f
        return vocabSize * c + layerCount * layer + c
    }

    /// Reads the `llama.*` keys of `file` and checks that they describe a decoder this code runs.
    public init(gguf file: GGUFFile) throws {
        let architecture = try file.string("general.architecture")
        guard architecture == "llama" else {
            throw LlamaError.invalidMetadata(path: file.path, key: "general.architecture", reason: "is '\(architecture)', expected 'llama'")
        }
        func positive(_ key: String) throws -> Int {
            let value = try file.integer(key)
            guard value > 0 else { throw LlamaError.invalidMetadata(path: file.path, key: key, reason: "is \(value), expected a positive integer") }
            return value
        }
        func positiveFloat(_ key: String) throws -> Float {
            let value = Float(try file.float(key))
            guard value > 0, value.isFinite else {
                throw LlamaError.invalidMetadata(path: file.path, key: key, reason: "is \(value), expected a positive number")
            }
            return value
        }
        // Older converters omit llama.vocab_size; the token list is then the vocabulary.
        let vocabSize = file.metadata["llama.vocab_size"] != nil
            ? try positive("llama.vocab_size") : try file.strings("tokenizer.ggml.tokens").count
        self.init(vocabSize: vocabSize, hiddenSize: try positive("llama.embedding_length"), layerCount: try positive("llama.block_count"),
                  headCount: try positive("llama.attention.head_count"), keyValueHeadCount: try positive("llama.attention.head_count_kv"),
                  intermediateSize: try positive("llama.feed_forward_length"), ropeTheta: try positiveFloat("llama.rope.freq_base"),
                  rmsNormEpsilon: try positiveFloat("llama.attention.layer_norm_rms_epsilon"),
                  contextLength: try positive("llama.context_length"))
        guard hiddenSize.isMultiple(of: headCount), headSize.isMultiple(of: 2) else {
            throw LlamaError.invalidMetadata(path: file.path, key: "llama.attention.head_count",
                                             reason: "\(headCount) heads do not split the width \(hiddenSize) into heads of even size")
        }
        guard headCount.isMultiple(of: keyValueHeadCount) else {
            throw LlamaError.invalidMetadata(path: file.path, key: "llama.attention.head_count_kv",
                                             reason: "\(keyValueHeadCount) key/value heads do not group \(headCount) query heads evenly")
        }
        if file.metadata["llama.rope.dimension_count"] != nil {
            let rotated = try file.integer("llama.rope.dimension_count")
            guard rotated == headSize else {
                throw LlamaError.invalidMetadata(path: file.path, key: "llama.rope.dimension_count",
                                                 reason: "is \(rotated); only RoPE over the whole head (\(headSize)) is implemented")
            }
        }
    }

    /// peft's module names of the seven Linears of one layer, in model order.
    public static let linearNames = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

    /// The seven Linears of every layer under peft's names (`model.layers.N.self_attn.q_proj` …
    /// `model.layers.N.mlp.down_proj`), in model order. None has a bias.
    public var modules: [ModuleShape] {
        let width = hiddenSize, inner = intermediateSize
        let shapes = [(width, width), (width, keyValueWidth), (width, keyValueWidth), (width, width),
                      (width, inner), (width, inner), (inner, width)]
        return (0..<layerCount).flatMap { layer in
            zip(Self.linearNames, shapes).map { name, shape in
                ModuleShape(name: "model.layers.\(layer).\(name)", inFeatures: shape.0, outFeatures: shape.1)
            }
        }
    }
}
