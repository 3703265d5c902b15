import Foundation
import LoRABenchKernels

/// Trainable versus total parameters, reported the way peft's `print_trainable_parameters` does
/// (its percentage divides by all parameters, adapter included) and against full fine-tuning.
public struct ParameterReport: Equatable, Sendable {
    public var trainable: Int
    /// Every parameter of the adapted model: frozen base + adapter.
    public var total: Int
    /// The base model's own parameters (what full fine-tuning would train).
    public var base: Int

    /// For adapted layers; `otherFrozen` counts base parameters outside them (embeddings, …)
    /// and `otherTrainable` parameters trained outright (a classification head).
    public init(layers: [any Adapter], otherFrozen: Int = 0, otherTrainable: Int = 0) {
        let baseCount = layers.reduce(0) { $0 + $1.base.outFeatures * $1.base.inFeatures + $1.base.bias.count } + otherFrozen + otherTrainable
        let adapterOnly = layers.reduce(0) { total, layer in
            total + layer.parameters.filter { $0 !== layer.base.bias }.reduce(0) { $0 + $1.count }
        }
        self.trainable = layers.reduce(0) { $0 + $1.trainableParameterCount } + otherTrainable
        self.base = baseCount
        self.total = baseCount + adapterOnly
    }

    /// trainable / total, as peft prints it.
    public var trainableShare: Double { Double(trainable) / Double(total) }
    /// trainable / base: the share of full fine-tuning.
    public var shareOfFullFineTuning: Double { Double(trainable) / Double(base) }

    /// "trainable params: 8,192 || all params: 1,057,792 || trainable%: 0.7745"
    public var description: String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.locale = Locale(identifier: "en_US")
        func grouped(_ n: Int) -> String { formatter.string(from: NSNumber(value: n)) ?? "\(n)" }
        return "trainable params: \(grouped(trainable)) || all params: \(grouped(total)) || trainable%: "
            + String(format: "%.4f", 100 * trainableShare)
    }
}
