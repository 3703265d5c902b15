import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters

/// A Hugging Face `BertModel` encoder (no pooler) with adapters on chosen Linears, sentence-
/// transformers' mean pooling and a trainable classification head: forward to the loss, and
/// backward from it to every adapter and the head. The pretrained weights stay frozen.
///
/// Shapes: B sequences of T tokens, N = B·T token rows, C = hidden size; token inputs are flat
/// [B·T] arrays in row-major [B, T] order. Buffers that only this model reads (normalized rows,
/// attention probabilities, GELU′, gradients) are reused while B and T repeat. Layer outputs are
/// fresh uninitialised allocations each forward, because adapters keep their inputs for
/// backward: writing the next batch into a kept buffer would copy it first.
public final class BertEncoder {
    /// peft `target_modules` entries that select all six Linears of every layer.
    public static let allLinearTargets = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]

    public let config: BertConfig
    public let head: ClassificationHead
    /// Every adapted Linear with its peft module name (e.g. `encoder.layer.0.attention.self.query`), in model order.
    public let adapters: [(name: String, adapter: any Adapter)]
    private var embeddings: BertEmbeddings
    private let layers: [BertLayer]
    /// The first layer holding an adapter: backward stops there; nil when only the head trains.
    private let lowestAdaptedLayer: Int?

    // The last forward's mask and buffers.
    private var attentionMask: [Int] = []
    private var embeddingSum = Matrix.zeros(0, 0)  // [N, C] scratch
    private var pooled = Matrix.zeros(0, 0)        // [B, C]
    private var gradLogits: Matrix?                // ∂L/∂logits [B, labels] of the last `loss`
    private var gradHidden = Matrix.zeros(0, 0)    // [N, C], carried down through the layers
    private var gradScratch = BertGradientScratch()  // shared by the layers, one backward at a time

    /// Builds the encoder from a `BertModel` checkpoint. `adapt` is asked once per Linear, with its
    /// peft module name and frozen weight [out, in] and bias [1, out], and returns the adapter
    /// that replaces it, or nil to keep the plain frozen Linear.
    public convenience init(config: BertConfig, weights: SafetensorsFile, labelCount: Int, seed: UInt64,
                            adapt: (_ moduleName: String, _ weight: Matrix, _ bias: Matrix) throws -> (any Adapter)?) throws {
        try self.init(config: config, weights: BertWeights(weights), labelCount: labelCount, seed: seed, adapt: adapt)
    }

    /// As above, from weights already decoded, which several encoders (the runs of a sweep) share.
    /// The Linears left frozen hold their weights in `baseFormat` (NF4 for QLoRA); `adapt` builds
    /// the bases of the ones it adapts.
    public init(config: BertConfig, weights: BertWeights, labelCount: Int, seed: UInt64, baseFormat: BaseWeightFormat = .float32,
                adapt: (_ moduleName: String, _ weight: Matrix, _ bias: Matrix) throws -> (any Adapter)?) throws {
        let prefix = weights.shapes["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func tensor(_ name: String, _ shape: [Int]) throws -> Matrix {
            guard let found = weights.shapes[prefix + name] else { throw BertError.missingWeight(path: weights.path, name: prefix + name) }
            guard found == shape else { throw BertError.weightShape(name: prefix + name, found: found, expected: shape) }
            return try weights.matrix(prefix + name)
        }
        func layerNorm(_ name: String) throws -> LayerNorm {
            LayerNorm(gamma: try tensor(name + ".weight", [config.hiddenSize]), beta: try tensor(name + ".bias", [config.hiddenSize]),
                      epsilon: config.layerNormEpsilon)
        }
        let width = config.hiddenSize
        var adapters: [(name: String, adapter: any Adapter)] = []
        let frozenBuffer = DequantizationBuffer()
        func linear(_ name: String, inFeatures: Int, outFeatures: Int) throws -> AdaptableLinear {
            let weight = try tensor(name + ".weight", [outFeatures, inFeatures]), bias = try tensor(name + ".bias", [outFeatures])
            guard let adapter = try adapt(name, weight, bias) else {
                return .frozen(try baseFormat.frozenLinear(weight: weight, bias: bias, buffer: frozenBuffer))
            }
            guard adapter.inFeatures == inFeatures, adapter.outFeatures == outFeatures else {
                throw BertError.weightShape(name: name + " adapter", found: [adapter.outFeatures, adapter.inFeatures], expected: [outFeatures, inFeatures])
            }
            adapters.append((name, adapter))
            return .adapted(adapter)
        }

        self.config = config
        self.embeddings = BertEmbeddings(words: try tensor("embeddings.word_embeddings.weight", [config.vocabSize, width]),
                                         positions: try tensor("embeddings.position_embeddings.weight", [config.maxPositions, width]),
                                         tokenTypes: try tensor("embeddings.token_type_embeddings.weight", [config.typeVocabSize, width]),
                                         norm: try layerNorm("embeddings.LayerNorm"))
        var layers: [BertLayer] = []
        for index in 0..<config.layerCount {
            let name = "encoder.layer.\(index)."
            layers.append(BertLayer(
                query: try linear(name + "attention.self.query", inFeatures: width, outFeatures: width),
                key: try linear(name + "attention.self.key", inFeatures: width, outFeatures: width),
                value: try linear(name + "attention.self.value", inFeatures: width, outFeatures: width),
                attentionOutput: try linear(name + "attention.output.dense", inFeatures: width, outFeatures: width),
                attentionNorm: try layerNorm(name + "attention.output.LayerNorm"),
                intermediate: try linear(name + "intermediate.dense", inFeatures: width, outFeatures: config.intermediateSize),
                output: try linear(name + "output.dense", inFeatures: config.intermediateSize, outFeatures: width),
                outputNorm: try layerNorm(name + "output.LayerNorm"),
                headCount: config.headCount))
        }
        self.layers = layers
        self.adapters = adapters
        self.lowestAdaptedLayer = layers.firstIndex { $0.hasAdapter }
        self.head = ClassificationHead(inFeatures: width, labelCount: labelCount, seed: BertEncoder.seed(seed, for: "classifier"))
    }

    /// Builds the encoder with `builder`'s adapters on every Linear that `targetModules` selects
    /// (peft's rule, `matches`), each with its own seed from `seed` and its module name.
    /// `bias`: `lora_only` trains the adapted Linears' biases; `all` is not supported.
    public convenience init(config: BertConfig, weights: SafetensorsFile, labelCount: Int, seed: UInt64,
                            adapters builder: (any LayerBuilder)?, bias: BiasMode = .none,
                            targetModules: [String] = BertEncoder.allLinearTargets, baseFormat: BaseWeightFormat = .float32) throws {
        guard bias != .all else {
            throw BertError.unsupported("bias = all (it trains every bias of the model, LayerNorm's included); use none or lora_only")
        }
        let shapes = Dictionary(uniqueKeysWithValues: BertEncoder.modules(of: config).map { ($0.name, $0) })
        let buffer = DequantizationBuffer()
        try self.init(config: config, weights: BertWeights(weights), labelCount: labelCount, seed: seed,
                      baseFormat: baseFormat) { name, weight, biasValue in
            guard let builder, let module = shapes[name], BertEncoder.matches(name, targetModules: targetModules) else { return nil }
            let base = try baseFormat.frozenLinear(weight: weight, bias: biasValue, trainBias: bias == .loraOnly, buffer: buffer)
            return try builder.adapter(for: module, base: base, seed: BertEncoder.seed(seed, for: name))
        }
    }

    /// The six Linears of every layer under their peft module names, in model order.
    public static func modules(of config: BertConfig) -> [ModuleShape] {
        let width = config.hiddenSize, inner = config.intermediateSize
        return (0..<config.layerCount).flatMap { index in
            let layer = "encoder.layer.\(index)."
            return [
                ModuleShape(name: layer + "attention.self.query", inFeatures: width, outFeatures: width),
                ModuleShape(name: layer + "attention.self.key", inFeatures: width, outFeatures: width),
                ModuleShape(name: layer + "attention.self.value", inFeatures: width, outFeatures: width),
                ModuleShape(name: layer + "attention.output.dense", inFeatures: width, outFeatures: width),
                ModuleShape(name: layer + "intermediate.dense", inFeatures: width, outFeatures: inner),
                ModuleShape(name: layer + "output.dense", inFeatures: inner, outFeatures: width),
            ]
        }
    }

    /// The modules `targetModules` selects, in model order.
    public static func targeted(_ targetModules: [String], of config: BertConfig) -> [ModuleShape] {
        modules(of: config).filter { matches($0.name, targetModules: targetModules) }
    }

    /// A sub-seed per module, so that adding a module never changes another one's draws.
    public static func seed(_ root: UInt64, for label: String) -> UInt64 {
        var generator = SplitMix64(seed: root).derived(label)
        return generator.next()
    }

    /// peft's `target_modules` rule for a list: a module is targeted when its name equals an
    /// entry or ends with "." + entry (so `output.dense` also selects `attention.output.dense`).
    public static func matches(_ moduleName: String, targetModules: [String]) -> Bool {
        targetModules.contains { moduleName == $0 || moduleName.hasSuffix("." + $0) }
    }

    /// Every Linear's frozen base under its peft module name, adapted or not, in model order.
    public var linears: [(name: String, base: FrozenLinear)] {
        let bases = layers.flatMap { [$0.query, $0.key, $0.value, $0.attentionOutput, $0.intermediate, $0.output] }.map(\.base)
        return zip(BertEncoder.modules(of: config).map(\.name), bases).map { ($0, $1) }
    }

    /// Bytes the frozen Linears' weights and biases occupy (float32, or NF4 with its scales):
    /// the resident size of the base a QLoRA run saves.
    public var frozenLinearBytes: Int { linears.reduce(0) { $0 + $1.base.residentBytes } }

    /// The adapters' parameters in model order, then the head's.
    public var trainableParameters: [Parameter] { adapters.flatMap { $0.adapter.parameters } + head.parameters }

    // MARK: Forward

    /// last_hidden_state [B·T, C] for ids, mask (1 token / 0 padding) and token types [B·T]
    /// (types default to 0). Keeps the activations that `backward` needs. `training` enables the
    /// adapters' dropout; the encoder itself applies no dropout.
    public func encode(inputIDs: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil, batchSize: Int,
                       training: Bool = false) throws -> Matrix {
        let types = tokenTypeIDs ?? [Int](repeating: 0, count: inputIDs.count)
        try validate(inputIDs: inputIDs, attentionMask: attentionMask, tokenTypeIDs: types, batchSize: batchSize)
        let length = inputIDs.count / batchSize
        self.attentionMask = attentionMask
        gradLogits = nil
        var hidden = Matrix.uninitializedActivation(inputIDs.count, config.hiddenSize)
        embeddings.forward(inputIDs: inputIDs, tokenTypeIDs: types, sequenceLength: length, sum: &embeddingSum, into: &hidden)
        for layer in layers {
            var next = Matrix.uninitializedActivation(inputIDs.count, config.hiddenSize)
            try layer.forward(hidden, attentionMask: attentionMask, sequenceLength: length, training: training, into: &next)
            hidden = next
        }
        return hidden
    }

    /// Mean over the non-padding tokens of the last hidden state [B, C]: the classifier's input.
    public func meanPooled(inputIDs: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil, batchSize: Int,
                           training: Bool = false) throws -> Matrix {
        let hidden = try encode(inputIDs: inputIDs, attentionMask: attentionMask, tokenTypeIDs: tokenTypeIDs,
                                batchSize: batchSize, training: training)
        MeanPooling.forward(hidden, attentionMask: attentionMask, batchSize: batchSize, into: &pooled)
        return pooled
    }

    /// sentence-transformers' `sentence_embedding` [B, C] for all-MiniLM-L6-v2: the mean-pooled
    /// rows scaled to unit L2 norm (the model's `Normalize` module, x / max(‖x‖, 1e-12)).
    public func sentenceEmbeddings(inputIDs: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil,
                                   batchSize: Int) throws -> Matrix {
        var embeddings = try meanPooled(inputIDs: inputIDs, attentionMask: attentionMask, tokenTypeIDs: tokenTypeIDs,
                                        batchSize: batchSize)
        scaleRows(&embeddings, by: rowNorms(embeddings).map { 1 / max($0, 1e-12) })
        return embeddings
    }

    /// Classification logits [B, labels]; the inference path (dropout off by default).
    public func logits(inputIDs: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil, batchSize: Int,
                       training: Bool = false) throws -> Matrix {
        head.forward(try meanPooled(inputIDs: inputIDs, attentionMask: attentionMask, tokenTypeIDs: tokenTypeIDs,
                                    batchSize: batchSize, training: training))
    }

    /// Logits [B, labels] and the batch-mean cross-entropy against `labels` [B]; `backward()`
    /// then propagates this loss.
    public func loss(inputIDs: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil, batchSize: Int, labels: [Int],
                     training: Bool = true) throws -> (logits: Matrix, loss: Float) {
        guard labels.count == batchSize, labels.allSatisfy({ (0..<head.labelCount).contains($0) }) else {
            throw BertError.invalidInput("\(labels.count) labels for a batch of \(batchSize), each must be in 0..<\(head.labelCount)")
        }
        let logits = try self.logits(inputIDs: inputIDs, attentionMask: attentionMask, tokenTypeIDs: tokenTypeIDs,
                                     batchSize: batchSize, training: training)
        let (loss, gradient) = crossEntropy(logits: logits, labels: labels)
        gradLogits = gradient
        return (logits, loss)
    }

    /// Predictions [B, 1] and their mean squared error against `targets` [B]: a head of one
    /// output trained as a regression (transformers' `BertForSequenceClassification` with
    /// `num_labels = 1` uses `MSELoss`); `backward()` then propagates this loss.
    public func regressionLoss(inputIDs: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil, batchSize: Int, targets: [Float],
                               training: Bool = true) throws -> (predictions: Matrix, loss: Float) {
        guard head.labelCount == 1, targets.count == batchSize, targets.allSatisfy(\.isFinite) else {
            throw BertError.invalidInput("\(targets.count) finite targets for a batch of \(batchSize) and a head of one output (it has \(head.labelCount))")
        }
        let predictions = try logits(inputIDs: inputIDs, attentionMask: attentionMask, tokenTypeIDs: tokenTypeIDs,
                                     batchSize: batchSize, training: training)
        let (loss, gradient) = meanSquaredError(predictions: predictions, targets: targets)
        gradLogits = gradient
        return (predictions, loss)
    }

    // MARK: Backward

    /// Accumulates the gradient of the last `loss` into the head and every adapter parameter.
    /// Layers below the lowest adapted one are not visited, and that layer's input gradient is not formed.
    public func backward() throws {
        guard let gradLogits else { throw BertError.invalidInput("backward() needs a preceding loss(...)") }
        let gradPooled = head.backward(gradLogits)
        self.gradLogits = nil
        guard let lowest = lowestAdaptedLayer else { return }
        MeanPooling.backward(gradPooled, attentionMask: attentionMask, into: &gradHidden)
        for index in (lowest..<layers.count).reversed() {
            try layers[index].backward(&gradHidden, needsInputGradient: index > lowest, scratch: &gradScratch)
        }
    }

    private func validate(inputIDs: [Int], attentionMask: [Int], tokenTypeIDs: [Int], batchSize: Int) throws {
        guard batchSize > 0, !inputIDs.isEmpty, inputIDs.count % batchSize == 0 else {
            throw BertError.invalidInput("\(inputIDs.count) ids do not split into \(batchSize) equal sequences")
        }
        guard attentionMask.count == inputIDs.count, tokenTypeIDs.count == inputIDs.count else {
            throw BertError.invalidInput("\(inputIDs.count) ids but \(attentionMask.count) mask entries and \(tokenTypeIDs.count) token types")
        }
        let length = inputIDs.count / batchSize
        guard length <= config.maxPositions else {
            throw BertError.invalidInput("sequence length \(length) exceeds the model's \(config.maxPositions) positions")
        }
        if let id = inputIDs.first(where: { !(0..<config.vocabSize).contains($0) }) {
            throw BertError.invalidInput("token id \(id) outside the vocabulary 0..<\(config.vocabSize)")
        }
        if let type = tokenTypeIDs.first(where: { !(0..<config.typeVocabSize).contains($0) }) {
            throw BertError.invalidInput("token type \(type) outside 0..<\(config.typeVocabSize)")
        }
        guard attentionMask.allSatisfy({ $0 == 0 || $0 == 1 }) else {
            throw BertError.invalidInput("attention mask entries must be 0 or 1")
        }
    }
}

/// A checkpoint's floating-point tensors decoded to Float once. Matrices share their storage
/// until written, so every encoder built from one `BertWeights` reads the same copy.
public struct BertWeights: Sendable {
    /// The checkpoint file, for errors.
    public let path: String
    /// Every floating-point tensor's shape, as stored.
    public let shapes: [String: [Int]]
    private let matrices: [String: Matrix]

    /// Decodes every floating-point tensor (integer ones, such as `position_ids`, are not weights).
    public init(_ file: SafetensorsFile) throws {
        let floating = file.tensors.filter { ["F32", "F64", "F16", "BF16"].contains($0.value.dtype) }
        path = file.path
        shapes = floating.mapValues(\.shape)
        matrices = try Dictionary(uniqueKeysWithValues: floating.keys.map { ($0, try file.matrix($0)) })
    }

    /// A tensor as `SafetensorsFile.matrix` gives it (1-D as [1, n]).
    public func matrix(_ name: String) throws -> Matrix {
        guard let matrix = matrices[name] else { throw SafetensorsError.missingTensor(path: path, name: name) }
        return matrix
    }
}

/// One post-LN transformer block of BERT with its activations:
/// h = LN₁(x + Attn(x)·W_o), out = LN₂(h + GELU(h·W_i)·W_f).
package final class BertLayer {
    package let query, key, value, attentionOutput, intermediate, output: AdaptableLinear
    package var attentionNorm, outputNorm: LayerNorm
    package var attention: MultiHeadAttention

    // Kept by forward for backward (N = B·T, C hidden, F intermediate). The other activations
    // are needed by no backward of this layer, only by the adapters, which keep their own inputs.
    private var q = Matrix.zeros(0, 0), k = Matrix.zeros(0, 0), v = Matrix.zeros(0, 0)  // [N, C]
    private var geluDerivative = Matrix.zeros(0, 0)  // GELU′(h·W_i) [N, F]

    package init(query: AdaptableLinear, key: AdaptableLinear, value: AdaptableLinear, attentionOutput: AdaptableLinear, attentionNorm: LayerNorm,
         intermediate: AdaptableLinear, output: AdaptableLinear, outputNorm: LayerNorm, headCount: Int) {
        self.query = query
        self.key = key
        self.value = value
        self.attentionOutput = attentionOutput
        self.attentionNorm = attentionNorm
        self.intermediate = intermediate
        self.output = output
        self.outputNorm = outputNorm
        self.attention = MultiHeadAttention(headCount: headCount)
    }

    package var hasAdapter: Bool { [query, key, value, attentionOutput, intermediate, output].contains { $0.isAdapted } }

    /// x [N, C] → out [N, C] (written in full).
    package func forward(_ x: Matrix, attentionMask: [Int], sequenceLength: Int, training: Bool, into out: inout Matrix) throws {
        q = try query.forward(x, training: training)
        k = try key.forward(x, training: training)
        v = try value.forward(x, training: training)
        var context = Matrix.uninitializedActivation(x.rows, x.cols)  // [N, C]
        attention.forward(query: q, key: k, value: v, attentionMask: attentionMask, sequenceLength: sequenceLength, into: &context)
        var projected = Matrix.zeros(0, 0)  // context·W_o [N, C]
        projected = try attentionOutput.forward(context, training: training)
        var normalized = Matrix.zeros(0, 0)  // h [N, C]
        attentionNorm.forward(projected, adding: x, into: &normalized)
        var preActivation = Matrix.zeros(0, 0)  // h·W_i [N, F]
        preActivation = try intermediate.forward(normalized, training: training)
        var activation = Matrix.uninitializedActivation(x.rows, preActivation.cols)  // GELU(h·W_i) [N, F]
        GELU.forward(preActivation, into: &activation, derivative: &geluDerivative)
        var feedForward = Matrix.zeros(0, 0)  // activation·W_f [N, C]
        feedForward = try output.forward(activation, training: training)
        outputNorm.forward(feedForward, adding: normalized, into: &out)
    }

    /// ∂L/∂out [N, C] → ∂L/∂x [N, C] in place (left unspecified when `needsInputGradient` is false);
    /// accumulates the adapters' parameter gradients.
    package func backward(_ grad: inout Matrix, needsInputGradient: Bool, scratch: inout BertGradientScratch) throws {
        outputNorm.backward(&grad)  // now ∂L/∂(feed-forward output), also the residual part of ∂L/∂h
        try output.backward(grad, into: &scratch.activation, accumulate: false)
        GELU.backward(&scratch.activation, derivative: geluDerivative)
        try intermediate.backward(scratch.activation, into: &grad, accumulate: true)  // ∂L/∂h
        attentionNorm.backward(&grad)  // ∂L/∂(projected context), also the residual part of ∂L/∂x
        try attentionOutput.backward(grad, into: &scratch.context, accumulate: false)
        attention.backward(scratch.context, query: q, key: k, value: v,
                           gradQuery: &scratch.query, gradKey: &scratch.key, gradValue: &scratch.value)
        if needsInputGradient {
            try query.backward(scratch.query, into: &grad, accumulate: true)
            try key.backward(scratch.key, into: &grad, accumulate: true)
            try value.backward(scratch.value, into: &grad, accumulate: true)
        } else {
            try query.backwardParameters(scratch.query)
            try key.backwardParameters(scratch.key)
            try value.backwardParameters(scratch.value)
        }
    }
}

/// A layer's intermediate gradients, needed only while that layer's backward runs, so one set
/// serves every layer (N = B·T, C hidden, F intermediate).
package struct BertGradientScratch {
    package var context = Matrix.zeros(0, 0)     // ∂L/∂context [N, C]
    package var activation = Matrix.zeros(0, 0)  // ∂L/∂GELU output, then ∂L/∂(h·W_i) [N, F]
    package var query = Matrix.zeros(0, 0), key = Matrix.zeros(0, 0), value = Matrix.zeros(0, 0)  // ∂L/∂Q, ∂K, ∂V [N, C]
}
