import LoRABenchKernels
import LoRABenchTensorIO
@testable import LoRABenchModels

/// A Llama decoder's weights read back from transformers' `LlamaForCausalLM` names (what `merge`
/// writes for a decoder): `tensor` gives each by name, norms as [1, C] or [C].
package func llamaWeights(huggingFace tensor: (String) throws -> Matrix, config: LlamaConfig, path: String) throws -> LlamaWeights {
    func norm(_ name: String) throws -> Matrix { try tensor(name).reshaped(1, config.hiddenSize) }
    let layers = try (0..<config.layerCount).map { index in
        let prefix = "model.layers.\(index)."
        return LlamaWeights.Layer(attentionNorm: try norm(prefix + "input_layernorm.weight"),
                                  query: try tensor(prefix + "self_attn.q_proj.weight"), key: try tensor(prefix + "self_attn.k_proj.weight"),
                                  value: try tensor(prefix + "self_attn.v_proj.weight"), attentionOutput: try tensor(prefix + "self_attn.o_proj.weight"),
                                  feedForwardNorm: try norm(prefix + "post_attention_layernorm.weight"),
                                  gate: try tensor(prefix + "mlp.gate_proj.weight"), up: try tensor(prefix + "mlp.up_proj.weight"),
                                  down: try tensor(prefix + "mlp.down_proj.weight"))
    }
    return LlamaWeights(config: config, embedding: try tensor("model.embed_tokens.weight"), layers: layers,
                        finalNorm: try norm("model.norm.weight"), path: path)
}

/// The same from a safetensors file.
package func llamaWeights(huggingFace file: SafetensorsFile, config: LlamaConfig) throws -> LlamaWeights {
    try llamaWeights(huggingFace: { try file.matrix($0) }, config: config, path: file.path)
}
