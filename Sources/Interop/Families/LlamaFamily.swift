import LoRABenchModels

/// A Llama decoder in one GGUF file (tokenizer and chat template inside): the families whose
/// peft adapters `AdaptedDecoder` loads and saves. It classifies text as a language model and
/// learns completions.
public protocol LlamaFamily: TextClassifierFamily, LanguageModelFamily {
    /// The architecture its modules are resolved for; the file's own `llama.*` metadata must agree.
    var architecture: LlamaConfig { get }
}

extension LlamaFamily {
    /// A GGUF file's Linears are Q4_1, Q8_0, … blocks.
    public var storesQuantizedBlocks: Bool { true }
}
