import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTensorIO

/// A trained adapter in peft's layout: the config and every tensor under peft's full key name,
/// what `PeftModel.from_pretrained` reads.
public struct PeftAdapter {
    public var config: PeftConfig
    public var tensors: [String: TensorToWrite]

    public init(config: PeftConfig, tensors: [String: TensorToWrite] = [:]) {
        self.config = config
        self.tensors = tensors
    }

    /// The prefix of a module's keys in a `PeftModel` wrapping a transformers model
    /// (PeftModel → tuner model → the base model's own names).
    public static let modulePrefix = "base_model.model."
    /// The prefix of tensors the tuner model holds once for all layers (VeRA's projections).
    public static let sharedPrefix = "base_model."

    /// Stores one module's tensor, `<prefix><module>.<suffix>`.
    public mutating func add(_ module: String, _ suffix: String, _ tensor: TensorToWrite) {
        tensors["\(Self.modulePrefix)\(module).\(suffix)"] = tensor
    }

    /// Stores the adapted layers' trained base biases as peft does, `<module>.base_layer.bias`, and
    /// names the bias mode in the config (`mode`: the method's own, `lora_only` or `vera_only`).
    public mutating func addTrainedBiases(of layers: [NamedAdapter], mode: String = BiasMode.loraOnly.rawValue) {
        for named in layers where named.adapter.base.biasIsTrainable {
            add(named.name, "base_layer.bias", TensorToWrite(named.adapter.base.bias.value, shape: [named.adapter.outFeatures]))
        }
        if layers.contains(where: { $0.adapter.base.biasIsTrainable }) { config["bias"] = .string(mode) }
    }
}

/// A peft checkpoint's tensors as a codec reads them: every read is checked against the shape
/// the base model needs, and recorded, so that a tensor no codec read is an error (strict load).
public final class PeftTensors {
    public let config: PeftConfig
    public let file: SafetensorsFile
    /// The weights file, for errors.
    public let path: String
    public private(set) var used = Set<String>()
    /// Tensors read with `storedTensor`, decoded once: shared tensors (VeRA's projections) are read for every module.
    private var decoded: [String: Matrix] = [:]
    /// Whether NaN or infinite values are accepted (forensics of a diverged run); refused otherwise.
    public let allowsNonFinite: Bool

    public init(config: PeftConfig, file: SafetensorsFile, path: String, allowsNonFinite: Bool = false) {
        self.config = config
        self.file = file
        self.path = path
        self.allowsNonFinite = allowsNonFinite
    }

    /// Records `name` as read and refuses non-finite values unless allowed.
    private func accept(_ matrix: Matrix, _ name: String) throws -> Matrix {
        guard allowsNonFinite || matrix.isFinite else { throw CheckpointError.nonFiniteTensor(path: path, name: name) }
        used.insert(name)
        return matrix
    }

    public func contains(_ name: String) -> Bool { file.tensors[name] != nil }

    /// The tensor `name` (full key) as a matrix of `shape` ([n] reads as [1, n]).
    public func tensor(_ name: String, shape: [Int]) throws -> Matrix {
        guard let info = file.tensors[name] else { throw CheckpointError.missingTensor(path: path, name: name) }
        let expected = shape.count == 1 ? [1, shape[0]] : shape
        let matrix = try file.matrix(name)
        guard matrix.shape == expected, info.shape.reduce(1, *) == shape.reduce(1, *) else {
            throw CheckpointError.wrongShape(path: path, name: name, found: info.shape, expected: shape, expectedModel: config.modelName)
        }
        return try accept(matrix, name)
    }

    /// The tensor `name` (full key) with the shape the file gives it; the caller checks it.
    public func storedTensor(_ name: String) throws -> Matrix {
        if let matrix = decoded[name] { return matrix }
        guard file.tensors[name] != nil else { throw CheckpointError.missingTensor(path: path, name: name) }
        let matrix = try accept(try file.matrix(name), name)
        decoded[name] = matrix
        return matrix
    }

    /// One module's tensor, `<prefix><module>.<suffix>`.
    public func tensor(_ module: String, _ suffix: String, shape: [Int]) throws -> Matrix {
        try tensor("\(PeftAdapter.modulePrefix)\(module).\(suffix)", shape: shape)
    }

    /// The rows of a tensor whose row count the file decides (a rank) but whose other dimension
    /// the base fixes: returns it after checking the fixed dimension.
    public func tensor(_ module: String, _ suffix: String, rowsFree cols: Int) throws -> Matrix {
        let name = "\(PeftAdapter.modulePrefix)\(module).\(suffix)"
        guard let info = file.tensors[name] else { throw CheckpointError.missingTensor(path: path, name: name) }
        return try tensor(name, shape: [info.shape.count == 2 ? info.shape[0] : 0, cols])
    }
}

/// How a variant's adapters are read back from peft's layout: which configs are its own, which
/// tensor names mark a module it adapted, and how one module's adapter is rebuilt. A variant
/// with a peft layout conforms (its writing side is `AdapterPlan.peftAdapter`).
public protocol PeftCodec {
    /// Whether checkpoints with this config are this variant's (peft_type and flags).
    static func decodes(_ config: PeftConfig) throws -> Bool
    /// Key fragments that mark a module's adapter tensors (`.lora_A`, `.vera_lambda_b`).
    static var moduleMarkers: [String] { get }
    /// The adapter of `module` on its frozen base, from the checkpoint's tensors.
    static func adapter(for module: String, base: FrozenLinear, from checkpoint: PeftTensors) throws -> any Adapter
}
