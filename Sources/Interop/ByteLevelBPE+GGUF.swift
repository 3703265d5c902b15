import LoRABenchTensorIO
import LoRABenchData

/// Reading a decoder's tokenizer and chat template out of its GGUF file. This lives in Interop,
/// the lowest floor that imports both the GGUF reader (TensorIO) and the tokenizer (Data).
extension ByteLevelBPE {
    /// The byte-level BPE stored in `file`'s `tokenizer.ggml.*` metadata: the vocabulary
    /// (`tokens`), the merges (rank = position), the token types and the special-token ids.
    /// The tokenizer model must be `gpt2`, the GGUF name of byte-level BPE.
    public init(gguf file: GGUFFile) throws {
        let model = try file.string("tokenizer.ggml.model")
        guard model == "gpt2" else {
            throw ByteLevelBPEError.invalidVocabulary(
                source: file.path, problem: "tokenizer.ggml.model is '\(model)'; only 'gpt2' (byte-level BPE) is supported")
        }
        try self.init(tokens: file.strings("tokenizer.ggml.tokens"), merges: file.strings("tokenizer.ggml.merges"),
                      tokenTypes: file.integers("tokenizer.ggml.token_type"), specialTokens: SpecialTokens(gguf: file), source: file.path)
    }
}

extension ByteLevelBPE.SpecialTokens {
    /// The special-token ids `file` declares (`tokenizer.ggml.{bos,eos,unknown,padding}_token_id`),
    /// read without building the tokenizer (a merged model's config.json needs only these).
    public init(gguf file: GGUFFile) throws {
        func optionalID(_ key: String) throws -> Int? { file.metadata[key] == nil ? nil : try file.integer(key) }
        self.init(bos: try optionalID("tokenizer.ggml.bos_token_id"), eos: try optionalID("tokenizer.ggml.eos_token_id"),
                  unknown: try optionalID("tokenizer.ggml.unknown_token_id"), padding: try optionalID("tokenizer.ggml.padding_token_id"))
    }
}

extension ChatMLTemplate {
    /// The chat template in `file`'s `tokenizer.chat_template`.
    public init(gguf file: GGUFFile) throws {
        try self.init(template: file.string("tokenizer.chat_template"), source: file.path + ": tokenizer.chat_template")
    }
}
