import Foundation
import LoRABenchTensorIO
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData

/// A decoder with its adapters merged, written as a Hugging Face model folder that
/// `LlamaForCausalLM.from_pretrained(DIR)` loads (`lorabench merge` on a decoder's adapter).
extension AdaptedDecoder {
    /// The folder's files: the weights and the architecture.
    public static let mergedWeightsFile = "model.safetensors"
    public static let mergedConfigFile = "config.json"

    /// Writes `mergedWeightsFile`, the decoder's float32 weights under transformers' names with
    /// every adapter folded in (`LlamaDecoder.huggingFaceTensors`: peft's `merge_and_unload`, Q and
    /// K rows in Hugging Face order, no `lm_head.weight` as the head is tied), and
    /// `mergedConfigFile` into `directory`, each atomically (a temporary file renamed into place).
    /// `specialTokens` are the ids the GGUF file declares. One merged weight is held at a time. A
    /// merged weight that is not finite (finite factors whose product overflows) is an error naming
    /// it, unless `allowsNonFinite`. Returns the number of tensors written.
    @discardableResult
    public func writeMergedModel(to directory: String, specialTokens: ByteLevelBPE.SpecialTokens) throws -> Int {
        let tensors = decoder.huggingFaceTensors
        let writer = try SafetensorsWriter(path: "\(directory)/\(Self.mergedWeightsFile)",
                                           tensors: tensors.map { SafetensorsWriter.Tensor(name: $0.name, dtype: .f32, shape: $0.shape) })
        for tensor in tensors {
            let values = tensor.values()
            if let module = tensor.adaptedModule, !allowsNonFinite, !values.isFinite {
                throw CheckpointError.nonFiniteMerge(path: checkpoint.weightsPath, module: module, tensor: tensor.name)
            }
            try writer.write(tensor.name, floats: values.storage, at: 0)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let config = try encoder.encode(Self.huggingFaceConfig(decoder.config, specialTokens: specialTokens))
        // The weights go first: a folder with a config.json is then a complete one.
        try writer.finish()
        try AtomicFile.write(config, to: "\(directory)/\(Self.mergedConfigFile)")
        return tensors.count
    }

    /// transformers' config.json of a `LlamaForCausalLM` with `config`'s architecture: the tied
    /// head (`tie_word_embeddings`), float32 weights, and the GGUF file's special-token ids (null
    /// where the file declares none). RoPE's θ and the dtype are written under the names of both
    /// transformers 4 (`rope_theta`, `torch_dtype`) and 5 (`rope_parameters`, `dtype`), so that either
    /// loads the folder as it loads the model's own.
    public static func huggingFaceConfig(_ config: LlamaConfig, specialTokens: ByteLevelBPE.SpecialTokens) -> JSONValue {
        func id(_ value: Int?) -> JSONValue { value.map(JSONValue.int) ?? .null }
        let theta = JSONValue.number(Double(config.ropeTheta))
        return .object([
            "architectures": .strings(["LlamaForCausalLM"]),
            "model_type": .string("llama"),
            "hidden_size": .int(config.hiddenSize),
            "intermediate_size": .int(config.intermediateSize),
            "num_attention_heads": .int(config.headCount),
            "num_key_value_heads": .int(config.keyValueHeadCount),
            "head_dim": .int(config.headSize),
            "num_hidden_layers": .int(config.layerCount),
            "hidden_act": .string("silu"),
            "attention_bias": .bool(false),
            "mlp_bias": .bool(false),
            // The float32 the GGUF file stores, which is the ε the decoder adds.
            "rms_norm_eps": .number(Double(config.rmsNormEpsilon)),
            "rope_theta": theta,
            "rope_parameters": .object(["rope_type": .string("default"), "rope_theta": theta]),
            "vocab_size": .int(config.vocabSize),
            "max_position_embeddings": .int(config.contextLength),
            "tie_word_embeddings": .bool(true),
            "torch_dtype": .string("float32"),
            "dtype": .string("float32"),
            "bos_token_id": id(specialTokens.bos),
            "eos_token_id": id(specialTokens.eos),
            "pad_token_id": id(specialTokens.padding),
        ])
    }
}
