import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters

/// A Llama decoder (transformers' `LlamaForCausalLM`, decoder-spec.md) with adapters on chosen
/// Linears: the forward pass to the final RMSNorm, the tied LM head only at the rows asked for,
/// the causal-LM loss and its backward into the adapters, and greedy generation with a KV cache.
/// The pretrained weights stay frozen.
///
/// Shapes: B sequences of T tokens, N = B·T token rows in row-major [B, T] order, C hidden width,
/// V vocabulary. Each layer keeps its input and the activations its backward will need; layer
/// outputs are fresh allocations each forward, because the next layer keeps them (and adapters
/// keep their inputs), while the buffers only a layer reads are reused while B and T repeat.
public final class LlamaDecoder {
    public let config: LlamaConfig
    /// Every adapted Linear with its peft module name (`model.layers.0.self_attn.q_proj`), in model order.
    public let adapters: [(name: String, adapter: any Adapter)]
    let embedding: Matrix  // E [V, C], also the LM head
    let layers: [LlamaLayer]
    let finalNorm: RMSNorm
    private let rotary: RotaryEmbedding

    // The last forward's state.
    private var finalInput = Matrix.zeros(0, 0)        // the residual stream after the last layer [N, C]
    private var normalized = Matrix.zeros(0, 0)        // the final RMSNorm's output [N, C]
    private var finalInverseRMS: [Float] = []          // [N]
    private var cos = Matrix.zeros(0, 0), sin = Matrix.zeros(0, 0)  // RoPE tables [N, D/2]

    // The last loss's state, and backward's buffers (sized on first use).
    /// The first layer holding an adapter: backward stops there; nil when nothing trains.
    private let lowestAdaptedLayer: Int?
    private var lossBatchSize = 0
    private var lossRows: [Int] = []                   // the token rows with a label to predict [R]
    private var gradLabelled: Matrix?                  // ∂L/∂(final norm output) at `lossRows` [R, C]
    private var gradNormalized = Matrix.zeros(0, 0)    // ∂L/∂(final RMSNorm output) [N, C]
    private var gradHidden = Matrix.zeros(0, 0)        // ∂L/∂(residual stream) [N, C]
    private var gradScratch = LlamaGradientScratch()   // shared by the layers, one backward at a time

    /// Builds the decoder from dequantized weights (which several decoders may share). Each of the
    /// seven Linears of every layer is offered to `adapt` with its peft module shape and its frozen
    /// base (float32, or NF4 in `baseFormat`); `adapt` returns the adapter that replaces it, or nil
    /// to keep the frozen Linear. A base in `prebuilt` (by module name, built on `buffer`) is used
    /// as it is: a loaded checkpoint's adapters already hold theirs.
    public init(weights: LlamaWeights, baseFormat: BaseWeightFormat = .float32, buffer: DequantizationBuffer = DequantizationBuffer(),
                prebuilt: [String: FrozenLinear] = [:],
                adapt: (_ module: ModuleShape, _ base: FrozenLinear) throws -> (any Adapter)? = { _, _ in nil }) throws {
        let config = weights.config
        let modules = config.modules
        var adapters: [(name: String, adapter: any Adapter)] = []
        func linear(_ module: ModuleShape, _ weight: FrozenWeight) throws -> AdaptableLinear {
            let base = try prebuilt[module.name] ?? baseFormat.frozenLinear(weight: weight, bias: nil, buffer: buffer)
            guard let adapter = try adapt(module, base) else { return .frozen(base) }
            guard adapter.inFeatures == module.inFeatures, adapter.outFeatures == module.outFeatures else {
                throw AdapterError.shapeMismatch(what: "adapter of \(module.name)", found: [adapter.outFeatures, adapter.inFeatures],
                                                 expected: [module.outFeatures, module.inFeatures])
            }
            adapters.append((module.name, adapter))
            return .adapted(adapter)
        }
        let perLayer = LlamaConfig.linearNames.count
        layers = try weights.layers.enumerated().map { index, layer in
            let linears = try zip(modules[index * perLayer..<(index + 1) * perLayer], layer.linears).map { try linear($0, $1) }
            return LlamaLayer(config: config, attentionNorm: layer.attentionNorm, feedForwardNorm: layer.feedForwardNorm, linears: linears)
        }
        self.config = config
        self.adapters = adapters
        embedding = weights.embedding
        finalNorm = RMSNorm(weight: weights.finalNorm, epsilon: config.rmsNormEpsilon)
        rotary = RotaryEmbedding(headSize: config.headSize, theta: config.ropeTheta)
        lowestAdaptedLayer = layers.firstIndex { $0.isAdapted }
    }

    /// The decoder of a Llama GGUF file with no adapter, its weights dequantized once.
    public convenience init(gguf file: GGUFFile) throws {
        try self.init(weights: LlamaWeights(gguf: file, config: LlamaConfig(gguf: file)))
    }

    // MARK: Forward

    /// The final RMSNorm's output [B·T, C] for ids and mask (1 token / 0 padding) [B·T]. Positions
    /// default to 0, 1, … in every row (right padding); a left-padded batch passes each token's
    /// position (transformers' `position_ids`). Keeps what `logits(at:)` and a backward need;
    /// `training` enables the adapters' dropout (the decoder itself has none).
    @discardableResult
    public func forward(inputIDs: [Int], attentionMask: [Int], positionIDs: [Int]? = nil, batchSize: Int,
                        training: Bool = false) throws -> Matrix {
        try validate(inputIDs: inputIDs, attentionMask: attentionMask, positionIDs: positionIDs, batchSize: batchSize)
        let length = inputIDs.count / batchSize
        let positions = positionIDs ?? (0..<inputIDs.count).map { $0 % length }
        return try run(inputIDs: inputIDs, attentionMask: attentionMask, positions: positions, batchSize: batchSize,
                       cache: nil, training: training)
    }

    /// The residual stream [B·T, C] after layer `index` in the last forward (layer 0's output is
    /// transformers' `hidden_states[1]`).
    public func hiddenStates(afterLayer index: Int) -> Matrix {
        precondition(layers.indices.contains(index), "layer \(index) of \(layers.count)")
        return index + 1 < layers.count ? layers[index + 1].input : finalInput
    }

    /// Logits [rows.count, V] of the last forward at token rows `rows` (indices into its B·T rows):
    /// the tied head E·h only where a loss or a prediction reads it.
    public func logits(at rows: [Int]) -> Matrix {
        precondition(rows.allSatisfy { (0..<normalized.rows).contains($0) }, "logit rows outside the last forward's \(normalized.rows) rows")
        var logits = Matrix.uninitializedActivation(rows.count, config.vocabSize)
        gemm(normalized.selectingRows(rows), .n, embedding, .t, into: &logits)
        return logits
    }

    /// The row of each sequence's last real token (mask = 1) in a right- or left-padded batch.
    public static func lastTokenRows(attentionMask: [Int], batchSize: Int) -> [Int] {
        let length = attentionMask.count / batchSize
        return (0..<batchSize).map { batch in
            let row = batch * length
            return (row..<row + length).last { attentionMask[$0] != 0 } ?? row + length - 1
        }
    }

    /// Embedding, the layers and the final norm over `positions`, attending through `cache` when
    /// given (its earlier tokens and these), else within the batch.
    private func run(inputIDs: [Int], attentionMask: [Int], positions: [Int], batchSize: Int, cache: LlamaKVCache?,
                     training: Bool) throws -> Matrix {
        gradLabelled = nil  // a loss's backward needs its own forward's state
        rotary.tables(positions: positions, cos: &cos, sin: &sin)
        var hidden = Matrix.uninitializedActivation(inputIDs.count, config.hiddenSize)
        LlamaEmbedding.forward(inputIDs: inputIDs, table: embedding, into: &hidden)
        cache?.append(attentionMask: attentionMask, batchSize: batchSize)
        for (index, layer) in layers.enumerated() {
            hidden = try layer.forward(hidden, attentionMask: attentionMask, batchSize: batchSize, rotary: rotary, cos: cos, sin: sin,
                                       cache: cache.map { ($0, index) }, training: training)
        }
        cache?.commit(queryLength: inputIDs.count / batchSize)
        finalInput = hidden
        finalNorm.forward(hidden, into: &normalized, inverseRMS: &finalInverseRMS)
        return normalized
    }

    // MARK: Loss and backward

    /// The label that no position predicts (torch's `ignore_index`).
    public static let ignoredLabel = -100

    /// The causal-LM loss as transformers' `ForCausalLMLoss` computes it: the labels [B·T] shifted
    /// left by one within each sequence (the logits at position t predict the label at t + 1), and
    /// the mean cross-entropy over the positions whose shifted label is not −100
    /// (decoder-spec.md, "One forward pass"). Logits are formed only at those rows. The batch is
    /// right-padded (positions 0, 1, … in every row). With `training` (the adapters' dropout on),
    /// keeps what `backward()` needs.
    public func loss(inputIDs: [Int], attentionMask: [Int], labels: [Int], batchSize: Int, training: Bool = true) throws -> Float {
        guard labels.count == inputIDs.count else {
            throw LlamaError.invalidInput("\(labels.count) labels for \(inputIDs.count) token ids")
        }
        if let label = labels.first(where: { $0 != Self.ignoredLabel && !(0..<config.vocabSize).contains($0) }) {
            throw LlamaError.invalidInput("label \(label) is neither \(Self.ignoredLabel) nor in the vocabulary 0..<\(config.vocabSize)")
        }
        try validate(inputIDs: inputIDs, attentionMask: attentionMask, positionIDs: nil, batchSize: batchSize)
        let length = inputIDs.count / batchSize
        let rows = (0..<inputIDs.count).filter { ($0 + 1) % length != 0 && labels[$0 + 1] != Self.ignoredLabel }
        guard !rows.isEmpty else {
            throw LlamaError.invalidInput("no position has a label to predict (every label after a sequence's first token is \(Self.ignoredLabel))")
        }
        return try loss(inputIDs: inputIDs, attentionMask: attentionMask, batchSize: batchSize, predicting: rows.map { labels[$0 + 1] },
                        atRows: rows, training: training)
    }

    /// The mean cross-entropy of the next token `targets[i]` at token row `rows[i]`, over the whole
    /// vocabulary: the causal-LM loss at chosen positions (a classifier's answer position, the
    /// completion's tokens). The batch is right-padded. Keeps what `backward()` needs.
    public func loss(inputIDs: [Int], attentionMask: [Int], batchSize: Int, predicting targets: [Int], atRows rows: [Int],
                     training: Bool = true) throws -> Float {
        guard !rows.isEmpty, rows.count == targets.count, rows.allSatisfy({ (0..<inputIDs.count).contains($0) }) else {
            throw LlamaError.invalidInput("\(targets.count) targets at \(rows.count) rows of \(inputIDs.count) tokens")
        }
        if let target = targets.first(where: { !(0..<config.vocabSize).contains($0) }) {
            throw LlamaError.invalidInput("target \(target) is not in the vocabulary 0..<\(config.vocabSize)")
        }
        try forward(inputIDs: inputIDs, attentionMask: attentionMask, batchSize: batchSize, training: training)
        let (loss, gradient) = LanguageModelLoss.tiedHead(normalized.selectingRows(rows), embedding: embedding, targets: targets,
                                                          formingGradient: training)
        (lossBatchSize, lossRows, gradLabelled) = (batchSize, rows, gradient)
        return loss
    }

    /// Accumulates the gradient of the last `loss` into every adapter parameter. The embedding
    /// (and with it the tied head) is frozen, so layers below the lowest adapted one are not
    /// visited and that layer's input gradient is not formed.
    public func backward() throws {
        guard let gradLabelled else { throw LlamaError.invalidInput("backward() needs a preceding loss(..., training: true)") }
        self.gradLabelled = nil
        guard let lowest = lowestAdaptedLayer else { return }
        // The tied head's ∂normalized (formed with the loss) at the rows with a label, zero at the others.
        gradNormalized.ensureShape(normalized.rows, normalized.cols)
        gradNormalized.fill(0)
        let width = config.hiddenSize
        for (index, row) in lossRows.enumerated() {
            gradNormalized.storage.replaceSubrange(row * width..<(row + 1) * width, with: gradLabelled.storage[index * width..<(index + 1) * width])
        }
        finalNorm.backward(gradNormalized, input: finalInput, inverseRMS: finalInverseRMS, into: &gradHidden, accumulate: false)
        for index in (lowest..<layers.count).reversed() {
            try layers[index].backward(&gradHidden, needsInputGradient: index > lowest, batchSize: lossBatchSize, rotary: rotary,
                                       cos: cos, sin: sin, scratch: &gradScratch)
        }
    }

    // MARK: Generation

    /// Greedy continuation of each prompt by up to `maxNewTokens` tokens (argmax, first index on
    /// ties, as torch's argmax), the prompts left-padded into one batch with a KV cache as
    /// transformers' `generate` does: positions count real tokens only. A continuation ends with
    /// the first token of `stopTokens` it produces (kept as its last token); the batch stops when
    /// every continuation has ended.
    public func generateGreedy(prompts: [[Int]], maxNewTokens: Int, stopTokens: Set<Int> = []) throws -> [[Int]] {
        guard !prompts.isEmpty, prompts.allSatisfy({ !$0.isEmpty }), maxNewTokens >= 0 else {
            throw LlamaError.invalidInput("greedy generation needs non-empty prompts and maxNewTokens ≥ 0")
        }
        let batchSize = prompts.count, promptLength = prompts.map(\.count).max()!
        guard promptLength + maxNewTokens <= config.contextLength else {
            throw LlamaError.invalidInput("\(promptLength) prompt tokens + \(maxNewTokens) new exceed the context of \(config.contextLength)")
        }
        var inputIDs: [Int] = [], mask: [Int] = [], positions: [Int] = []
        for prompt in prompts {
            let padding = promptLength - prompt.count
            // Masked out, a padding token's id and position are never read: any valid ones serve
            // (transformers' generate uses the pad id and position 1).
            inputIDs += [Int](repeating: prompt[0], count: padding) + prompt
            mask += [Int](repeating: 0, count: padding) + [Int](repeating: 1, count: prompt.count)
            positions += [Int](repeating: 1, count: padding) + Array(0..<prompt.count)
        }
        try validate(inputIDs: inputIDs, attentionMask: mask, positionIDs: positions, batchSize: batchSize)
        let cache = LlamaKVCache(config: config, batchSize: batchSize, capacity: promptLength + maxNewTokens)
        var generated = [[Int]](repeating: [], count: batchSize)
        var ended = [Bool](repeating: false, count: batchSize)
        var nextPositions = prompts.map(\.count)
        var lastRows = (0..<batchSize).map { $0 * promptLength + promptLength - 1 }
        for step in 0..<maxNewTokens {
            if step > 0 {
                inputIDs = generated.map { $0.last! }
                mask = [Int](repeating: 1, count: batchSize)
                positions = nextPositions
                nextPositions = nextPositions.map { $0 + 1 }
                lastRows = Array(0..<batchSize)
            }
            _ = try run(inputIDs: inputIDs, attentionMask: mask, positions: positions, batchSize: batchSize, cache: cache, training: false)
            let logits = logits(at: lastRows)
            // An ended sequence goes on being fed its stop token, whose continuation is dropped:
            // it keeps the batch's shape, and attention never mixes sequences.
            for batch in 0..<batchSize where !ended[batch] {
                let token = Self.argmax(logits, row: batch)
                generated[batch].append(token)
                ended[batch] = stopTokens.contains(token)
            }
            if !ended.contains(false) { break }
        }
        return generated
    }

    private static func argmax(_ logits: Matrix, row: Int) -> Int {
        let values = logits.storage[row * logits.cols..<(row + 1) * logits.cols]
        var best = values.startIndex
        for index in values.indices where values[index] > values[best] { best = index }
        return best - values.startIndex
    }

    private func validate(inputIDs: [Int], attentionMask: [Int], positionIDs: [Int]?, batchSize: Int) throws {
        guard batchSize > 0, !inputIDs.isEmpty, inputIDs.count % batchSize == 0 else {
            throw LlamaError.invalidInput("\(inputIDs.count) ids do not split into \(batchSize) equal sequences")
        }
        guard attentionMask.count == inputIDs.count, (positionIDs?.count ?? inputIDs.count) == inputIDs.count else {
            throw LlamaError.invalidInput("\(inputIDs.count) ids but \(attentionMask.count) mask entries and \(positionIDs?.count ?? 0) positions")
        }
        if let id = inputIDs.first(where: { !(0..<config.vocabSize).contains($0) }) {
            throw LlamaError.invalidInput("token id \(id) outside the vocabulary 0..<\(config.vocabSize)")
        }
        guard attentionMask.allSatisfy({ $0 == 0 || $0 == 1 }) else { throw LlamaError.invalidInput("attention mask entries must be 0 or 1") }
        if let position = positionIDs?.first(where: { !(0..<config.contextLength).contains($0) }) {
            throw LlamaError.invalidInput("position \(position) outside the model's context 0..<\(config.contextLength)")
        }
    }
}

/// One decoder layer (`LlamaDecoderLayer`, pre-norm):
/// a = RMSNorm(h)·w_in; h' = h + O(Attention(RoPE(Q a), RoPE(K a), V a)); b = RMSNorm(h')·w_post;
/// out = h' + Down(SiLU(Gate b) ⊙ Up b).
package final class LlamaLayer {
    package let query, key, value, attentionOutput, gate, up, down: AdaptableLinear
    package let attentionNorm, feedForwardNorm: RMSNorm
    private var attention: GroupedQueryAttention

    // Kept by forward for backward (N rows, C hidden, KV key/value width, F SwiGLU width).
    package private(set) var input = Matrix.zeros(0, 0)  // h [N, C]
    private var attentionInverseRMS: [Float] = []        // [N]
    private var q = Matrix.zeros(0, 0)                   // RoPE(Q a) [N, C]
    private var k = Matrix.zeros(0, 0), v = Matrix.zeros(0, 0)  // RoPE(K a), V a [N, KV]
    private var afterAttention = Matrix.zeros(0, 0)      // h' [N, C]
    private var feedForwardInverseRMS: [Float] = []      // [N]
    private var gateOutput = Matrix.zeros(0, 0), upOutput = Matrix.zeros(0, 0)  // Gate b, Up b [N, F]

    package init(config: LlamaConfig, attentionNorm: Matrix, feedForwardNorm: Matrix, linears: [AdaptableLinear]) {
        precondition(linears.count == LlamaConfig.linearNames.count, "\(linears.count) Linears for a Llama layer")
        (query, key, value, attentionOutput, gate, up, down) = (linears[0], linears[1], linears[2], linears[3], linears[4], linears[5], linears[6])
        self.attentionNorm = RMSNorm(weight: attentionNorm, epsilon: config.rmsNormEpsilon)
        self.feedForwardNorm = RMSNorm(weight: feedForwardNorm, epsilon: config.rmsNormEpsilon)
        attention = GroupedQueryAttention(headCount: config.headCount, keyValueHeadCount: config.keyValueHeadCount, headSize: config.headSize)
    }

    /// h [N, C] → out [N, C], a new matrix. With a cache (and this layer's index in it), this
    /// batch's keys and values are stored after the earlier tokens' and attention reads them all.
    package func forward(_ h: Matrix, attentionMask: [Int], batchSize: Int, rotary: RotaryEmbedding, cos: Matrix, sin: Matrix,
                         cache: (LlamaKVCache, layer: Int)?, training: Bool) throws -> Matrix {
        input = h
        var normalized = Matrix.uninitializedActivation(h.rows, h.cols)  // a [N, C], kept by the Q, K and V adapters
        attentionNorm.forward(h, into: &normalized, inverseRMS: &attentionInverseRMS)
        q = try query.forward(normalized, training: training)
        k = try key.forward(normalized, training: training)
        v = try value.forward(normalized, training: training)
        rotary.apply(to: &q, cos: cos, sin: sin)
        rotary.apply(to: &k, cos: cos, sin: sin)
        let length = h.rows / batchSize
        let keys: AttentionKeys
        if let (cache, index) = cache {
            keys = cache.store(layer: index, keys: k, values: v)
        } else {
            keys = AttentionKeys(keys: k, values: v, mask: attentionMask, rowsPerSequence: length, length: length)
        }
        var context = Matrix.uninitializedActivation(h.rows, h.cols)  // [N, C], kept by the o_proj adapter
        attention.forward(query: q, keys: keys, batchSize: batchSize, into: &context)
        afterAttention = try attentionOutput.forward(context, training: training)
        axpy(1, h, &afterAttention)
        var normalizedPost = Matrix.uninitializedActivation(h.rows, h.cols)  // b [N, C], kept by the gate and up adapters
        feedForwardNorm.forward(afterAttention, into: &normalizedPost, inverseRMS: &feedForwardInverseRMS)
        gateOutput = try gate.forward(normalizedPost, training: training)
        upOutput = try up.forward(normalizedPost, training: training)
        var activation = Matrix.uninitializedActivation(h.rows, gateOutput.cols)  // [N, F], kept by the down adapter
        SwiGLU.forward(gate: gateOutput, up: upOutput, into: &activation)
        var out = try down.forward(activation, training: training)
        axpy(1, afterAttention, &out)
        return out
    }

    /// Whether any of the seven Linears holds an adapter.
    package var isAdapted: Bool { [query, key, value, attentionOutput, gate, up, down].contains { $0.isAdapted } }

    /// ∂L/∂out [N, C] → ∂L/∂h in place for the last forward (without a cache), accumulating the
    /// adapters' parameter gradients; without `needsInputGradient` (the lowest adapted layer)
    /// ∂L/∂h is not formed and `grad` is left as ∂L/∂h'. Each residual passes its gradient
    /// through unchanged, so each branch's input gradient is added into `grad`.
    package func backward(_ grad: inout Matrix, needsInputGradient: Bool, batchSize: Int, rotary: RotaryEmbedding, cos: Matrix, sin: Matrix,
                          scratch: inout LlamaGradientScratch) throws {
        try down.backward(grad, into: &scratch.activation, accumulate: false)
        SwiGLU.backward(scratch.activation, gate: gateOutput, up: upOutput, gradGate: &scratch.gate, gradUp: &scratch.up)
        try gate.backward(scratch.gate, into: &scratch.normalized, accumulate: false)
        try up.backward(scratch.up, into: &scratch.normalized, accumulate: true)
        feedForwardNorm.backward(scratch.normalized, input: afterAttention, inverseRMS: feedForwardInverseRMS, into: &grad, accumulate: true)  // ∂L/∂h'
        try attentionOutput.backward(grad, into: &scratch.context, accumulate: false)
        attention.backward(scratch.context, query: q, keys: k, values: v, batchSize: batchSize,
                           gradQuery: &scratch.query, gradKeys: &scratch.key, gradValues: &scratch.value, gradScores: &scratch.scores)
        rotary.applyInverse(to: &scratch.query, cos: cos, sin: sin)
        rotary.applyInverse(to: &scratch.key, cos: cos, sin: sin)
        if needsInputGradient {
            try query.backward(scratch.query, into: &scratch.normalized, accumulate: false)
            try key.backward(scratch.key, into: &scratch.normalized, accumulate: true)
            try value.backward(scratch.value, into: &scratch.normalized, accumulate: true)
            attentionNorm.backward(scratch.normalized, input: input, inverseRMS: attentionInverseRMS, into: &grad, accumulate: true)  // ∂L/∂h
        } else {
            try query.backwardParameters(scratch.query)
            try key.backwardParameters(scratch.key)
            try value.backwardParameters(scratch.value)
        }
    }
}

/// A layer's intermediate gradients, needed only while that layer's backward runs, so one set
/// serves every layer (N = B·T, C hidden, KV key/value width, F SwiGLU width, T sequence length).
package struct LlamaGradientScratch {
    package var activation = Matrix.zeros(0, 0)                        // ∂L/∂(SwiGLU output) [N, F]
    package var gate = Matrix.zeros(0, 0), up = Matrix.zeros(0, 0)     // ∂L/∂(Gate b), ∂L/∂(Up b) [N, F]
    package var normalized = Matrix.zeros(0, 0)                        // ∂L/∂b, then ∂L/∂a [N, C]
    package var context = Matrix.zeros(0, 0)                           // ∂L/∂(attention output) [N, C]
    package var query = Matrix.zeros(0, 0)                             // ∂L/∂(Q a) [N, C]
    package var key = Matrix.zeros(0, 0), value = Matrix.zeros(0, 0)   // ∂L/∂(K a), ∂L/∂(V a) [N, KV]
    package var scores: [Float] = []                                   // attention backward's per-worker scratch (P and ∂S of a head)
}

/// The keys and values of earlier tokens, per layer, for generation: B sequences of up to
/// `capacity` rows each, and which rows are real tokens.
package final class LlamaKVCache {
    private var keys: [Matrix], values: [Matrix]  // per layer [B·capacity, KV]
    private var mask: [Int]                       // [B·capacity]
    private let batchSize: Int, capacity: Int
    /// Rows per sequence stored by every layer.
    package private(set) var length = 0

    package init(config: LlamaConfig, batchSize: Int, capacity: Int) {
        self.batchSize = batchSize
        self.capacity = capacity
        mask = [Int](repeating: 0, count: batchSize * capacity)
        keys = [Matrix](repeating: .zeros(batchSize * capacity, config.keyValueWidth), count: config.layerCount)
        values = keys
    }

    /// Records the mask of the next tokens [B·Tq], before the layers store and read them.
    func append(attentionMask: [Int], batchSize: Int) {
        precondition(batchSize == self.batchSize, "a KV cache for \(self.batchSize) sequences given \(batchSize)")
        let count = attentionMask.count / batchSize
        precondition(length + count <= capacity, "KV cache of \(capacity) rows overflows")
        for batch in 0..<batchSize {
            for offset in 0..<count { mask[batch * capacity + length + offset] = attentionMask[batch * count + offset] }
        }
    }

    /// Stores layer `layer`'s k and v [B·Tq, KV] after the `length` rows of each sequence, and
    /// returns all of them for attention.
    func store(layer: Int, keys newKeys: Matrix, values newValues: Matrix) -> AttentionKeys {
        let count = newKeys.rows / batchSize, width = newKeys.cols
        for batch in 0..<batchSize {
            let source = batch * count * width, target = (batch * capacity + length) * width
            keys[layer].storage.replaceSubrange(target..<target + count * width, with: newKeys.storage[source..<source + count * width])
            values[layer].storage.replaceSubrange(target..<target + count * width, with: newValues.storage[source..<source + count * width])
        }
        return AttentionKeys(keys: keys[layer], values: values[layer], mask: mask, rowsPerSequence: capacity, length: length + count)
    }

    /// Advances past the tokens every layer has stored.
    func commit(queryLength: Int) { length += queryLength }
}
