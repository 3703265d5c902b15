import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels

/// A pretrained base model with a peft checkpoint attached: what `lorabench merge`, `infer` and
/// `analyze` open. The adapters are built onto the base's own frozen Linears (strictly: every
/// tensor must fit, and the base must be the one the adapter was trained on); a head saved as
/// peft's `modules_to_save` `classifier` becomes the encoder's classification head.
public final class AdaptedModel {
    public let checkpoint: PeftCheckpoint.Loaded
    public let config: BertConfig
    public let weights: BertWeights
    public let encoder: BertEncoder
    /// The attached adapters by peft module name, in model order.
    public var adapters: [NamedAdapter] { encoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) } }
    /// Whether the checkpoint carries a trained head (`classifier.weight` and `.bias`).
    public let hasHead: Bool
    /// How the base holds its weights here, and how it held them in training (the adapter's
    /// metadata; float32 for adapters that do not say).
    public let baseFormat: BaseWeightFormat
    public let trainedBaseFormat: BaseWeightFormat
    /// Whether NaN or infinite values were let in (`--allow-non-finite`); then merged weights may hold them too.
    public let allowsNonFinite: Bool

    package static let headPrefix = PeftCheckpoint.keyPrefix + "classifier."

    /// Attaches `checkpoint` to the base described by `config` and `weights`. `baseModelSHA256`
    /// is the sha256 of the base weights file, checked against the one the adapter recorded. NaN
    /// or infinite adapter or head values are an error naming the tensor unless `allowNonFinite`.
    /// The base holds its weights in `baseFormat`, by default the format the adapter was trained on.
    public init(checkpoint: PeftCheckpoint.Loaded, config: BertConfig, weights: BertWeights, baseModelSHA256: String?,
                allowNonFinite: Bool = false, baseFormat requested: BaseWeightFormat? = nil) throws {
        let trained = try checkpoint.trainedBaseFormat()
        let baseFormat = requested ?? trained
        let prefix = weights.shapes["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        let buffer = DequantizationBuffer()
        let attached = try checkpoint.attach(to: { module in
            // Only a Linear (a 2-D weight) can carry an adapter; a LayerNorm's weight is 1-D.
            guard weights.shapes[prefix + module + ".weight"]?.count == 2 else { return nil }
            return try? baseFormat.frozenLinear(weight: weights.matrix(prefix + module + ".weight"), bias: weights.matrix(prefix + module + ".bias"),
                                                buffer: buffer)
        }, baseModelSHA256: baseModelSHA256, allowNonFinite: allowNonFinite)
        let byName = Dictionary(uniqueKeysWithValues: attached.map { ($0.name, $0.adapter) })
        let file = checkpoint.file
        hasHead = file.tensors[Self.headPrefix + "weight"] != nil && file.tensors[Self.headPrefix + "bias"] != nil
        func head(_ name: String) throws -> Matrix {
            let value = try file.matrix(Self.headPrefix + name)
            guard allowNonFinite || value.isFinite else {
                throw CheckpointError.nonFiniteTensor(path: checkpoint.weightsPath, name: Self.headPrefix + name)
            }
            return value
        }
        let headWeight = hasHead ? try head("weight") : nil
        guard headWeight == nil || headWeight!.cols == config.hiddenSize else {
            throw CheckpointError.wrongShape(path: checkpoint.weightsPath, name: Self.headPrefix + "weight", found: headWeight!.shape,
                                             expected: [headWeight!.rows, config.hiddenSize], expectedModel: checkpoint.modelName)
        }
        let encoder = try BertEncoder(config: config, weights: weights, labelCount: headWeight?.rows ?? 2, seed: 0,
                                      baseFormat: baseFormat) { name, _, _ in byName[name] }
        if let headWeight {
            encoder.head.weight.value = headWeight
            encoder.head.bias.value = try head("bias").reshaped(1, headWeight.rows)
        }
        self.checkpoint = checkpoint
        self.baseFormat = baseFormat
        self.trainedBaseFormat = trained
        self.allowsNonFinite = allowNonFinite
        self.config = config
        self.weights = weights
        self.encoder = encoder
    }

    /// The checkpoint in `directory` on its base model: `model` when given, else the one its
    /// `base_model_name_or_path` names, which must be in the cache (the error names the fetch command).
    public static func open(_ directory: String, model: (any ModelFamily)? = nil, store: ModelStore = .default,
                            allowNonFinite: Bool = false, baseFormat: BaseWeightFormat? = nil) throws -> (adapted: AdaptedModel, base: ModelFiles) {
        let checkpoint = try PeftCheckpoint.load(directory)
        let named = checkpoint.config.baseModelNameOrPath
        // An encoder's folder; a decoder's opens with `AdaptedDecoder.open`.
        let loadable = ModelFamilyRegistry.families.filter { $0 is any BertFamily }
        guard let family = model ?? ModelFamilyRegistry.family(forBaseModel: named), family is any BertFamily else {
            throw CheckpointError.unknownBaseModel(path: "\(directory)/\(PeftCheckpoint.configFile)", name: named ?? model?.name ?? "nothing",
                                                   known: ModelFamilyRegistry.described(loadable))
        }
        let files = try store.locate(family)
        let adapted = try AdaptedModel(checkpoint: checkpoint, config: BertConfig(contentsOf: URL(fileURLWithPath: files.configPath)),
                                       weights: BertWeights(SafetensorsFile(path: files.weightsPath)), baseModelSHA256: files.weightsSHA256,
                                       allowNonFinite: allowNonFinite, baseFormat: baseFormat)
        return (adapted, files)
    }

    /// A warning for a base held otherwise than in training (its outputs then differ from the
    /// trained model's), or nil.
    public var baseFormatWarning: String? { Self.baseFormatWarning(trained: trainedBaseFormat, loaded: baseFormat) }

    /// The warning for an adapter trained on a `trained` base and loaded onto a `loaded` one, or
    /// nil when they are the same (an encoder's or a decoder's adapter).
    static func baseFormatWarning(trained: BaseWeightFormat, loaded: BaseWeightFormat) -> String? {
        guard loaded != trained else { return nil }
        return "warning: the adapter was trained on a \(trained) base and is loaded here onto a \(loaded) one; "
            + "its outputs differ from the trained model's (drop --base to use \(trained))"
    }

    /// ΔW = W_adapted − W0 of every adapter [out, in], by module name, in model order.
    public var deltaWeights: [(name: String, delta: Matrix)] { encoder.adapters.map { ($0.name, $0.adapter.deltaWeight()) } }

    /// Every tensor of the base weights file with the adapters folded into their Linears
    /// (`merge_and_unload`: W0 + ΔW, ΔW being what `merge()` adds): the base's own key names and
    /// dtypes, so that the base architecture loads it as a plain model. The model itself stays
    /// adapted and its W0 untouched. On an NF4 base every Linear is written in float32 as the
    /// model computed with it: dequantized W0, plus ΔW where adapted. A merged weight that is not
    /// finite (finite factors whose product overflows) is an error naming it, unless `allowsNonFinite`.
    public func mergedTensors(base file: SafetensorsFile) throws -> [String: TensorToWrite] {
        let prefix = file.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        var replaced: [String: TensorToWrite] = [:]
        for (name, base) in encoder.linears where base.isQuantized {
            replaced[prefix + name + ".weight"] = TensorToWrite(base.weight)
        }
        for (name, adapter) in encoder.adapters {
            var merged = adapter.base.weight
            axpy(1, adapter.deltaWeight(), &merged)
            guard allowsNonFinite || merged.isFinite else {
                throw CheckpointError.nonFiniteMerge(path: checkpoint.weightsPath, module: name, tensor: prefix + name + ".weight")
            }
            replaced[prefix + name + ".weight"] = TensorToWrite(merged)
            replaced[prefix + name + ".bias"] = TensorToWrite(adapter.base.bias.value, shape: [adapter.outFeatures])
        }
        var tensors: [String: TensorToWrite] = [:]
        for (name, info) in file.tensors {
            if let merged = replaced[name] {
                tensors[name] = merged
            } else if info.dtype == "I64" {
                tensors[name] = TensorToWrite(ints: try file.ints(name), shape: info.shape)
            } else {
                tensors[name] = TensorToWrite(floats: try file.floats(name), shape: info.shape)
            }
        }
        return tensors
    }

    /// The trained head as its own file (`weight` [labels, hidden], `bias` [labels]), or nil.
    public var headTensors: [String: TensorToWrite]? {
        guard hasHead else { return nil }
        let head = encoder.head
        return ["weight": TensorToWrite(head.weight.value), "bias": TensorToWrite(head.bias.value, shape: [head.labelCount])]
    }
}
