import LoRABenchKernels
import LoRABenchTensorIO

/// A Llama GGUF file's tensors dequantized to float32 once, in transformers' layout: Linears as
/// `nn.Linear` weights [out, in], the query and key rows un-permuted into Hugging Face order
/// (decoder-spec.md, "Q and K rows"), norms as [1, width]. Matrices share their storage until
/// written, so every decoder built from one `LlamaWeights` (the runs of a sweep) reads one copy.
public struct LlamaWeights: Sendable {
    /// One decoder layer's tensors.
    public struct Layer: Sendable {
        public var attentionNorm: Matrix  // [1, C]
        public var query, key, value, attentionOutput: Matrix  // [C, C], [KV, C], [KV, C], [C, C]
        public var feedForwardNorm: Matrix  // [1, C]
        public var gate, up, down: Matrix  // [F, C], [F, C], [C, F]

        /// The seven Linears' weights in the order of `LlamaConfig.linearNames`.
        public var linears: [Matrix] { [query, key, value, attentionOutput, gate, up, down] }
    }

    /// The file the weights came from, for errors.
    public let path: String
    public let config: LlamaConfig
    /// The token embedding [vocab, C], also the output projection (tied: the file has no `output.weight`).
    public let embedding: Matrix
    public let layers: [Layer]
    public let finalNorm: Matrix  // [1, C]

    /// Weights given in memory (a test's random model); `path` names them in errors.
    package init(config: LlamaConfig, embedding: Matrix, layers: [Layer], finalNorm: Matrix, path: String) {
        self.path = path
        self.config = config
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
    }

    /// Dequantizes every tensor the decoder reads, each checked against `config`'s shape.
    public init(gguf file: GGUFFile, config: LlamaConfig) throws {
        let width = config.hiddenSize, inner = config.intermediateSize
        func tensor(_ name: String, _ shape: [Int]) throws -> Matrix {
            let info = try file.tensor(name)
            let found = info.dimensions.count == 1 ? [1, info.columns] : info.shape
            guard found == shape else { throw LlamaError.weightShape(path: file.path, tensor: name, found: info.shape, expected: shape) }
            return try file.matrix(name)
        }
        func attentionRows(_ name: String, headCount: Int, rows: Int) throws -> Matrix {
            let info = try file.tensor(name)
            guard info.shape == [rows, width] else {
                throw LlamaError.weightShape(path: file.path, tensor: name, found: info.shape, expected: [rows, width])
            }
            return Matrix(rows: rows, cols: width, storage: try file.huggingFaceAttentionRows(of: name, headCount: headCount, 0..<rows))
        }
        guard !file.tensors.contains(where: { $0.name == "output.weight" }) else {
            throw LlamaError.unsupported(path: file.path, what: "tensor 'output.weight' (an LM head not tied to the embedding)")
        }
        path = file.path
        self.config = config
        embedding = try tensor("token_embd.weight", [config.vocabSize, width])
        layers = try (0..<config.layerCount).map { index in
            let block = "blk.\(index)."
            return Layer(attentionNorm: try tensor(block + "attn_norm.weight", [1, width]),
                         query: try attentionRows(block + "attn_q.weight", headCount: config.headCount, rows: width),
                         key: try attentionRows(block + "attn_k.weight", headCount: config.keyValueHeadCount, rows: config.keyValueWidth),
                         value: try tensor(block + "attn_v.weight", [config.keyValueWidth, width]),
                         attentionOutput: try tensor(block + "attn_output.weight", [width, width]),
                         feedForwardNorm: try tensor(block + "ffn_norm.weight", [1, width]),
                         gate: try tensor(block + "ffn_gate.weight", [inner, width]),
                         up: try tensor(block + "ffn_up.weight", [inner, width]),
                         down: try tensor(block + "ffn_down.weight", [width, inner]))
        }
        finalNorm = try tensor("output_norm.weight", [1, width])
    }
}
