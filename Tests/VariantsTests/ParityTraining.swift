import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// What the `train` parity suites share: the fixtures' loop and the tensor-by-tensor comparison.
enum ParityTraining {
    /// The adapted layers of a train case: every `base.<name>.weight`, in name order (fc1, fc2).
    static func layerNames(_ tensors: SafetensorsFile) -> [String] {
        tensors.names.filter { $0.hasPrefix("base.") && $0.hasSuffix(".weight") }
            .map { String($0.dropFirst("base.".count).dropLast(".weight".count)) }.sorted()
    }

    static func base(_ tensors: SafetensorsFile, _ name: String) throws -> FrozenLinear {
        try FrozenLinear(weight: tensors.matrix("base.\(name).weight"), bias: tensors.matrix("base.\(name).bias"))
    }

    /// AdamW with the case's `optimizer` block (betas, eps, lr, weight_decay) over one group.
    static func adamW(_ settings: [String: Any], parameters: [Parameter]) -> AdamW {
        let optimizer = settings["optimizer"] as! [String: Any]
        let betas = optimizer["betas"] as! [Double]
        return AdamW(groups: [ParameterGroup(name: "all", parameters: parameters, learningRate: Float(optimizer["lr"] as! Double),
                                             weightDecay: Float(optimizer["weight_decay"] as! Double))],
                     beta1: Float(betas[0]), beta2: Float(betas[1]), epsilon: Float(optimizer["eps"] as! Double))
    }

    /// `steps` steps of y = fc2(tanh(fc1(x))) on batch `step % batches`, loss mean((y − Y)²); the
    /// loss of each step before its update.
    static func train(_ model: AdaptedMLP, optimizer: AdamW, settings: [String: Any], tensors: SafetensorsFile) throws -> [Float] {
        let method = FixedRankMethod(layers: model.layers)
        let steps = settings["steps"] as! Int, batches = settings["batches"] as! Int, batchSize = settings["batch_size"] as! Int
        let inputs = try tensors.matrix("X"), targets = try tensors.matrix("Y")
        var losses: [Float] = []
        for step in 0..<steps {
            let rows = (step % batches * batchSize)..<((step % batches + 1) * batchSize)
            let report = try trainingStep(step, optimizer: optimizer, method: method) {
                let (loss, gradient) = meanSquaredError(try model.forward(inputs.rowSlice(rows), training: true), targets.rowSlice(rows))
                try model.backward(gradient)
                return loss
            }
            losses.append(report.loss)
        }
        return losses
    }

    /// Expects every result within `rtol` of the fixture tensor of the same name (relative Frobenius
    /// error) and prints the worst, as the other parity suites do.
    static func compare(_ results: [(name: String, got: [Float])], with tensors: SafetensorsFile, rtol: Double, label: String) throws {
        var worst = (name: "", error: 0.0)
        for (name, got) in results {
            let error = relativeError(got, try tensors.floats(name))
            #expect(error <= rtol, "\(label): \(name) differs from peft by \(error) (rtol \(rtol))")
            if error >= worst.error { worst = (name, error) }
        }
        print("peft parity \(label): worst relative error \(worst.error) in \(worst.name) (rtol \(rtol))")
    }
}
