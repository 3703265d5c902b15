@testable import LoRABenchKernels
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Central finite differences against the analytic backward of the BERT blocks, on small random
/// shapes. The kernels are Float32, so each check uses the scalar probe L = Σ W ⊙ y with random
/// W, summed in Double, and step h = 1e-2: the truncation error h²·f‴/6 is ~1e-5 and the Float
/// rounding of y contributes ~√n·6e-8/(2h) ~ 1e-5 for these sizes, so a wrong formula
/// (relative error ≥ 1e-1) is far above the 1e-3 tolerance and a right one far below it.
@Suite struct BertGradientCheckTests {
    static let tolerance = 1e-3
    static let step: Float = 1e-2

    /// Σ W ⊙ y in Double.
    static func probe(_ y: Matrix, _ weights: Matrix) -> Double {
        zip(y.storage, weights.storage).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// (f(x + h·e_i) − f(x − h·e_i)) / 2h for every entry i of x.
    static func numericalGradient(at x: Matrix, _ f: (Matrix) -> Double) -> Matrix {
        var gradient = Matrix(rows: x.rows, cols: x.cols)
        for i in 0..<x.count {
            var plus = x, minus = x
            plus.storage[i] += step
            minus.storage[i] -= step
            gradient.storage[i] = Float((f(plus) - f(minus)) / Double(2 * step))
        }
        return gradient
    }

    /// LN(x + residual): the gradient with respect to x (equal to that of the residual).
    @Test func layerNormBackward() {
        var rng = SplitMix64(seed: 1)
        let x = Matrix.gaussian(4, 11, std: 2, using: &rng), residual = Matrix.gaussian(4, 11, std: 1, using: &rng)
        let weights = Matrix.gaussian(4, 11, std: 1, using: &rng)
        var norm = LayerNorm(gamma: .gaussian(1, 11, std: 1, using: &rng), beta: .gaussian(1, 11, std: 1, using: &rng), epsilon: 1e-5)
        var y = Matrix.zeros(0, 0)
        norm.forward(x, adding: residual, into: &y)
        var analytic = weights
        norm.backward(&analytic)
        var probeNorm = norm
        let numeric = Self.numericalGradient(at: x) { point in
            var out = Matrix.zeros(0, 0)
            probeNorm.forward(point, adding: residual, into: &out)
            return Self.probe(out, weights)
        }
        let error = relativeError(analytic, numeric)
        #expect(error <= Self.tolerance, "LayerNorm ∂x differs from finite differences by \(error)")
    }

    @Test func geluBackward() {
        var rng = SplitMix64(seed: 2)
        // 37 entries over [−4, 4]: both tails, the curved middle, and a partial vector at the end.
        let x = Matrix.uniform(37, 1, bound: 4, using: &rng), weights = Matrix.gaussian(37, 1, std: 1, using: &rng)
        var y = Matrix.zeros(0, 0), derivative = Matrix.zeros(0, 0)
        GELU.forward(x, into: &y, derivative: &derivative)
        var analytic = weights
        GELU.backward(&analytic, derivative: derivative)
        let numeric = Self.numericalGradient(at: x) { point in
            var out = Matrix.zeros(0, 0), unused = Matrix.zeros(0, 0)
            GELU.forward(point, into: &out, derivative: &unused)
            return Self.probe(out, weights)
        }
        let error = relativeError(analytic, numeric)
        #expect(error <= Self.tolerance, "GELU ∂x differs from finite differences by \(error)")
    }

    @Test func geluMatchesTheErfForm() {
        var y = Matrix.zeros(0, 0), derivative = Matrix.zeros(0, 0)
        GELU.forward(Matrix([[-3, -1, 0, 0.5, 2]]), into: &y, derivative: &derivative)
        // x·Φ(x) from the standard normal CDF: Φ(−3) = 0.0013499, Φ(−1) = 0.158655, Φ(0.5) = 0.691462, Φ(2) = 0.977250.
        let want: [Float] = [-3 * 0.0013499, -0.158655, 0, 0.5 * 0.691462, 2 * 0.977250]
        #expect(relativeError(y.storage, want) <= 1e-5)
    }

    /// Two sequences of 5 tokens, 2 heads of width 3; the second sequence has 2 padded keys.
    @Test func attentionBackwardWithPaddingMask() {
        var rng = SplitMix64(seed: 3)
        let batch = 2, length = 5, width = 6
        let mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
        let q = Matrix.gaussian(batch * length, width, std: 1, using: &rng)
        let k = Matrix.gaussian(batch * length, width, std: 1, using: &rng)
        let v = Matrix.gaussian(batch * length, width, std: 1, using: &rng)
        let weights = Matrix.gaussian(batch * length, width, std: 1, using: &rng)
        var attention = MultiHeadAttention(headCount: 2)
        var context = Matrix.zeros(0, 0)
        attention.forward(query: q, key: k, value: v, attentionMask: mask, sequenceLength: length, into: &context)
        var gradQ = Matrix.zeros(0, 0), gradK = Matrix.zeros(0, 0), gradV = Matrix.zeros(0, 0)
        attention.backward(weights, query: q, key: k, value: v, gradQuery: &gradQ, gradKey: &gradK, gradValue: &gradV)

        func probe(_ q: Matrix, _ k: Matrix, _ v: Matrix) -> Double {
            var block = MultiHeadAttention(headCount: 2), out = Matrix.zeros(0, 0)
            block.forward(query: q, key: k, value: v, attentionMask: mask, sequenceLength: length, into: &out)
            return Self.probe(out, weights)
        }
        let checks = [("∂Q", gradQ, Self.numericalGradient(at: q) { probe($0, k, v) }),
                      ("∂K", gradK, Self.numericalGradient(at: k) { probe(q, $0, v) }),
                      ("∂V", gradV, Self.numericalGradient(at: v) { probe(q, k, $0) })]
        for (name, analytic, numeric) in checks {
            let error = relativeError(analytic, numeric)
            #expect(error <= Self.tolerance, "attention \(name) differs from finite differences by \(error)")
        }
        // A padded key gets exactly zero probability, so its K and V rows get exactly zero gradient.
        for row in [8, 9] {
            #expect((0..<width).allSatisfy { gradK[row, $0] == 0 && gradV[row, $0] == 0 }, "padded token \(row) has a gradient")
        }
    }

    /// With every key of a sequence padded, torch's finite mask gives a uniform softmax (each
    /// query row returns the mean of V) where an infinite mask would give NaN.
    @Test func fullyPaddedSequenceAttendsUniformly() {
        var rng = SplitMix64(seed: 4)
        let length = 4, width = 4
        let q = Matrix.gaussian(length, width, std: 3, using: &rng)
        let k = Matrix.gaussian(length, width, std: 3, using: &rng)
        let v = Matrix.gaussian(length, width, std: 1, using: &rng)
        var attention = MultiHeadAttention(headCount: 1)
        var context = Matrix.zeros(0, 0)
        attention.forward(query: q, key: k, value: v, attentionMask: [0, 0, 0, 0], sequenceLength: length, into: &context)
        let mean = (0..<width).map { c in (0..<length).reduce(Float(0)) { $0 + v[$1, c] } / Float(length) }
        for row in 0..<length {
            #expect(relativeError((0..<width).map { context[row, $0] }, mean) <= 1e-6, "row \(row)")
        }
    }

    @Test func meanPoolingBackward() {
        var rng = SplitMix64(seed: 5)
        let batch = 3, length = 4, width = 5
        let mask = [1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0]
        let hidden = Matrix.gaussian(batch * length, width, std: 1, using: &rng)
        let weights = Matrix.gaussian(batch, width, std: 1, using: &rng)
        var analytic = Matrix.zeros(0, 0)
        MeanPooling.backward(weights, attentionMask: mask, into: &analytic)
        let numeric = Self.numericalGradient(at: hidden) { point in
            var pooled = Matrix.zeros(0, 0)
            MeanPooling.forward(point, attentionMask: mask, batchSize: batch, into: &pooled)
            return Self.probe(pooled, weights)
        }
        let error = relativeError(analytic, numeric)
        #expect(error <= Self.tolerance, "mean pooling ∂hidden differs from finite differences by \(error)")
    }

    @Test func crossEntropyAndHeadBackward() {
        var rng = SplitMix64(seed: 6)
        let pooled = Matrix.gaussian(3, 4, std: 1, using: &rng), labels = [0, 2, 1]
        let head = ClassificationHead(inFeatures: 4, labelCount: 3, seed: 7)
        let (_, gradLogits) = crossEntropy(logits: head.forward(pooled), labels: labels)
        let analytic = head.backward(gradLogits)
        let numeric = Self.numericalGradient(at: pooled) { point in
            Double(crossEntropy(logits: head.forward(point), labels: labels).loss)
        }
        let error = relativeError(analytic, numeric)
        #expect(error <= Self.tolerance, "cross-entropy ∂pooled differs from finite differences by \(error)")
    }
}
