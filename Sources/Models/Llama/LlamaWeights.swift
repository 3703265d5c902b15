import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTensorIO

/// A Llama GGUF file's tensors in transformers' layout: Linears as `nn.Linear` weights [out, in],
/// the query and key rows un-permuted into Hugging Face order (decoder-spec.md, "Q and K rows"),
/// norms as [1, width]; dequantized to float32 once, or the Linears kept in the file's blocks.
/// Matrices share their storage until written, so every decoder built from one `LlamaWeights`
/// (the runs of a sweep) reads one copy.
public struct LlamaWeights: Sendable {
    /// One decoder layer's tensors.
    public struct Layer: Sendable {
        public var attentionNorm: Matrix  // [1, C]
        public var feedForwardNorm: Matrix  // [1, C]
        /// The seven Linears' weights in the order of `LlamaConfig.linearNames`: q [C, C], k and
        /// v [KV, C], o [C, C], gate and up [F, C], down [C, F].
        public var linears: [FrozenWeight]

        public init(attentionNorm: Matrix, feedForwardNorm: Matrix, linears: [FrozenWeight]) {
            precondition(linears.count == LlamaConfig.linearNames.count, "\(linears.count) Linears for a Llama layer's \(LlamaConfig.linearNames.count)")
            self.attentionNorm = attentionNorm
            self.feedForwardNorm = feedForwardNorm
            self.linears = linears
        }

        /// A layer of float32 weights.
        public init(attentionNorm: Matrix, query: Matrix, key: Matrix, value: Matrix, attentionOutput: Matrix, feedForwardNorm: Matrix,
                    gate: Matrix, up: Matrix, down: Matrix) {
            self.init(attentionNorm: attentionNorm, feedForwardNorm: feedForwardNorm,
                      linears: [query, key, value, attentionOutput, gate, up, down].map { .float32($0) })
        }
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

    /// Every tensor the decoder reads, each checked against `config`'s shape: dequantized, or with
    /// `keepingBlocks` the seven Linears of every layer kept in the file's blocks (`FrozenWeight.packed`).
    public init(gguf file: GGUFFile, config: LlamaConfig, keepingBlocks: Bool = false) throws {
        let width = config.hiddenSize, inner = config.intermediateSize
        func checkShape(_ name: String, _ shape: [Int]) throws {
            let info = try file.tensor(name)
            let found = info.dimensions.count == 1 ? [1, info.columns] : info.shape
            guard found == shape else { throw LlamaError.weightShape(path: file.path, tensor: name, found: info.shape, expected: shape) }
        }
        func tensor(_ name: String, _ shape: [Int]) throws -> Matrix {
            try checkShape(name, shape)
            return try file.matrix(name)
        }
        func linear(_ name: String, _ shape: [Int], attentionHeadCount: Int? = nil) throws -> FrozenWeight {
            try checkShape(name, shape)
            if keepingBlocks { return .packed(try file.blockMatrix(name, attentionHeadCount: attentionHeadCount)) }
            guard let attentionHeadCount else { return .float32(try file.matrix(name)) }
            return .float32(Matrix(rows: shape[0], cols: width, storage: try file.huggingFaceAttentionRows(of: name, headCount: attentionHeadCount,
                                                                                                           0..<shape[0])))
        }
        guard !file.tensors.contains(where: { $0.name == "output.weight" }) else {
            throw LlamaError.unsupported(path: file.path, what: "tensor 'output.weight' (an LM head not tied to the embedding)")
        }
        path = file.path
        self.config = config
        embedding = try tensor("token_embd.weight", [config.vocabSize, width])
        let keyValue = config.keyValueWidth
        layers = try (0..<config.layerCount).map { index in
            let block = "blk.\(index)."
            let linears: [FrozenWeight] = [
                try linear(block + "attn_q.weight", [width, width], attentionHeadCount: config.headCount),
                try linear(block + "attn_k.weight", [keyValue, width], attentionHeadCount: config.keyValueHeadCount),
                try linear(block + "attn_v.weight", [keyValue, width]),
                try linear(block + "attn_output.weight", [width, width]),
                try linear(block + "ffn_gate.weight", [inner, width]),
                try linear(block + "ffn_up.weight", [inner, width]),
                try linear(block + "ffn_down.weight", [width, inner]),
            ]
            return Layer(attentionNorm: try tensor(block + "attn_norm.weight", [1, width]),
                         feedForwardNorm: try tensor(block + "ffn_norm.weight", [1, width]), linears: linears)
        }
        finalNorm = try tensor("output_norm.weight", [1, width])
    }
}
