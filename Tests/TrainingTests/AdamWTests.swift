import Foundation
import Testing
@testable import LoRABenchAdapters
@testable import LoRABenchKernels
@testable import LoRABenchTraining

/// AdamW's two semantics against the update written out by hand (Double), and the gradient
/// transform hook that LoRA-FA uses.
@Suite struct AdamWTests {
    /// p after `steps` updates with constant gradient g, as torch (`rawRoot` false) or Hugging Face computes it.
    static func reference(p0: Double, g: Double, lr: Double, wd: Double, eps: Double, steps: Int, huggingFace: Bool) -> Double {
        var (p, m, v) = (p0, 0.0, 0.0)
        for t in 1...steps {
            if !huggingFace { p *= 1 - lr * wd }
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            let c1 = 1 - pow(0.9, Double(t)), c2 = 1 - pow(0.999, Double(t))
            p -= huggingFace ? lr * c2.squareRoot() / c1 * m / (v.squareRoot() + eps) : lr / c1 * m / (v.squareRoot() / c2.squareRoot() + eps)
            if huggingFace { p *= 1 - lr * wd }
        }
        return p
    }

    @Test(arguments: [false, true])
    func updatesMatchTheHandWrittenRule(huggingFace: Bool) {
        let parameter = Parameter("w", role: .weight, value: Matrix(rows: 1, cols: 2, storage: [0.5, -1]))
        let eps: Float = huggingFace ? 1e-6 : 1e-8
        let optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: [parameter], learningRate: 0.01, weightDecay: 0.1)],
                              epsilon: eps, options: huggingFace ? .huggingFace : .torch)
        for _ in 0..<3 {
            parameter.grad = Matrix(rows: 1, cols: 2, storage: [0.2, 1e-4])
            optimizer.step()
        }
        for (index, (p0, g)) in [(0.5, 0.2), (-1.0, 1e-4)].enumerated() {
            let want = Self.reference(p0: p0, g: g, lr: 0.01, wd: 0.1, eps: Double(eps), steps: 3, huggingFace: huggingFace)
            #expect(abs(Double(parameter.value.storage[index]) - want) < 1e-6, "entry \(index): \(parameter.value.storage[index]) vs \(want)")
        }
    }

    final class Doubling: GradientTransform {
        func transformedGradient(of parameter: Parameter) -> Matrix {
            var g = parameter.grad
            scale(&g, by: 2)
            return g
        }
    }

    @Test func aGroupsGradientTransformReplacesTheGradientItSteps() {
        let transformed = Parameter("a", role: .weight, value: .zeros(1, 1)), plain = Parameter("b", role: .weight, value: .zeros(1, 1))
        let optimizer = AdamW(groups: [ParameterGroup(name: "t", parameters: [transformed], learningRate: 0.1, gradientTransform: Doubling()),
                                       ParameterGroup(name: "p", parameters: [plain], learningRate: 0.1)])
        transformed.grad = Matrix(rows: 1, cols: 1, storage: [1])
        plain.grad = Matrix(rows: 1, cols: 1, storage: [2])
        optimizer.step()
        // Adam's first step moves by lr·sign(g) whatever g's size, so both move alike; the moments show the transform.
        #expect(optimizer.state(of: transformed)?.m.storage == optimizer.state(of: plain)?.m.storage)
        #expect(transformed.grad.storage == [1], "the accumulated gradient itself is left alone")
    }
}
