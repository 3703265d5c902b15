#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters

/// A stack of adapted linear layers with tanh between them: y = L_k(tanh(… tanh(L_1(x)))).
/// The fixtures' two-layer model and the synthetic teacher–student task both use it.
public final class AdaptedMLP {
    public let layers: [NamedAdapter]
    // Saved by forward: each hidden layer's tanh output [N, hidden].
    private var activations: [Matrix] = []

    public init(layers: [NamedAdapter]) {
        precondition(!layers.isEmpty, "an MLP needs at least one layer")
        self.layers = layers
    }

    public var parameters: [Parameter] { layers.flatMap { $0.adapter.parameters } }

    /// y [N, out] for x [N, in].
    public func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        activations.removeAll(keepingCapacity: true)
        var h = x
        for (index, layer) in layers.enumerated() {
            h = try layer.adapter.forward(h, training: training)
            if index < layers.count - 1 {
                h.storage.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = tanh(p[i]) } }
                activations.append(h)
            }
        }
        return h
    }

    /// Accumulates every parameter's gradient from ∂L/∂y [N, out].
    public func backward(_ gradOutput: Matrix) throws {
        var g = gradOutput
        for index in layers.indices.reversed() {
            g = try layers[index].adapter.backward(g)
            if index > 0 {
                // tanh′ = 1 − tanh².
                let t = activations[index - 1]
                g.storage.withUnsafeMutableBufferPointer { pg in
                    t.storage.withUnsafeBufferPointer { pt in for i in 0..<pg.count { pg[i] *= 1 - pt[i] * pt[i] } }
                }
            }
        }
    }
}

/// Mean squared error over all entries and its gradient 2(y − t)/count.
public func meanSquaredError(_ y: Matrix, _ target: Matrix) -> (loss: Float, gradient: Matrix) {
    precondition(y.shape == target.shape, "prediction \(y.shape) vs target \(target.shape)")
    var gradient = y
    axpy(-1, target, &gradient)
    let loss = dot(gradient, gradient) / Float(y.count)
    scale(&gradient, by: 2 / Float(y.count))
    return (loss, gradient)
}
