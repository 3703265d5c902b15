/// A checkpoint that cannot be read or does not fit the model it is loaded onto.
public enum CheckpointError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalidConfig(path: String, key: String, reason: String)
    case unknownPeftType(path: String, found: String, known: [String])
    case missingTensor(path: String, name: String)
    case nonFiniteTensor(path: String, name: String)
    /// Finite adapter tensors whose merged weight W0 + ΔW is not (the update overflows Float).
    case nonFiniteMerge(path: String, module: String, tensor: String)
    case unexpectedTensors(path: String, names: [String])
    case noSuchModule(path: String, module: String, expectedModel: String)
    case wrongShape(path: String, name: String, found: [Int], expected: [Int], expectedModel: String)
    case wrongBaseModel(path: String, expectedSHA256: String, foundSHA256: String, expectedModel: String)
    case unknownBaseModel(path: String, name: String, known: [String])

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read adapter checkpoint: \(reason)"
        case let .invalidConfig(path, key, reason): return "\(path): invalid adapter_config.json key '\(key)': \(reason)"
        case let .unknownPeftType(path, found, known):
            return "\(path): \(found) is not an adapter type LoRABench can load; known: \(known.joined(separator: ", "))"
        case let .missingTensor(path, name): return "\(path): the checkpoint has no tensor '\(name)' (peft would silently keep its init; LoRABench refuses)"
        case let .nonFiniteTensor(path, name):
            return "\(path): tensor '\(name)' holds NaN or infinite values (a diverged run's adapter?); pass --allow-non-finite to load it anyway for inspection"
        case let .nonFiniteMerge(path, module, tensor):
            return "\(path): merging the adapter of \(module) gives NaN or infinite values in \(tensor) (its update overflows float32: check lora_alpha and the tensors); pass --allow-non-finite to write it anyway for inspection"
        case let .unexpectedTensors(path, names):
            return "\(path): tensors that match no adapted module: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? ", …" : "")"
        case let .noSuchModule(path, module, expected):
            return "\(path): module '\(module)' does not exist in this base model; the adapter was trained on \(expected)"
        case let .wrongShape(path, name, found, expected, model):
            return "\(path): tensor '\(name)' has shape \(found) but this base model needs \(expected); the adapter was trained on \(model)"
        case let .wrongBaseModel(path, expected, found, model):
            return "\(path): the adapter was trained on \(model) with weights sha256 \(expected), but the base model given has sha256 \(found); load it onto the model it was trained on"
        case let .unknownBaseModel(path, name, known):
            return "\(path): base_model_name_or_path is \(name), which LoRABench cannot load; known models: \(known.joined(separator: ", ")) (pass --model when the adapter was trained on one of them)"
        }
    }
}
