import LoRABenchKernels
@testable import LoRABenchModels

/// A tiny random Llama (2 layers, width 16, 4 query heads over 2 key/value heads of 4, SwiGLU 24,
/// vocabulary 32): gradient checks and adapter round trips need its shapes, not a file.
package enum TinyLlama {
    package static let config = LlamaConfig(vocabSize: 32, hiddenSize: 16, layerCount: 2, headCount: 4, keyValueHeadCount: 2,
                                            intermediateSize: 24, ropeTheta: 10_000, rmsNormEpsilon: 1e-5, contextLength: 64)

    package static func randomWeights(seed: UInt64) -> LlamaWeights {
        var rng = SplitMix64(seed: seed)
        let (width, inner, keyValueWidth) = (config.hiddenSize, config.intermediateSize, config.keyValueWidth)
        func linear(_ out: Int, _ inFeatures: Int) -> Matrix { .gaussian(out, inFeatures, std: 1 / Float(inFeatures).squareRoot(), using: &rng) }
        func norm() -> Matrix { Matrix(rows: 1, cols: width, storage: (0..<width).map { _ in 1 + 0.2 * Float.random(in: -1...1, using: &rng) }) }
        let layers = (0..<config.layerCount).map { _ in
            LlamaWeights.Layer(attentionNorm: norm(), query: linear(width, width), key: linear(keyValueWidth, width),
                               value: linear(keyValueWidth, width), attentionOutput: linear(width, width), feedForwardNorm: norm(),
                               gate: linear(inner, width), up: linear(inner, width), down: linear(width, inner))
        }
        return LlamaWeights(config: config, embedding: .gaussian(config.vocabSize, width, std: 1, using: &rng), layers: layers,
                            finalNorm: norm(), path: "random tiny Llama")
    }
}
