import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchData

/// A model family that is a language model: it continues a text, so it can learn completions
/// (the `completion` task) and generate them. A task asks the family for a `LanguageModelBase`
/// and never learns which architecture it got.
public protocol LanguageModelFamily: ModelFamily {
    /// The longest sequence, in tokens, the model takes: a prompt and its continuation together.
    var maxSequenceLength: Int { get }
    /// Reads the model's files once (weights, tokenizer, chat template, end tokens) and checks
    /// them against the family: what every run of a sweep shares.
    func languageModelBase(files: ModelFiles) throws -> any LanguageModelBase
}

/// A family's frozen language model, its tokenizer and chat template, loaded once and shared by
/// every run of a sweep.
public protocol LanguageModelBase: AnyObject {
    var files: ModelFiles { get }
    /// The token that pads a batch (masked out and labelled −100, so any id would do).
    var padID: Int { get }
    /// Parameters of the frozen model, its adapted Linears included.
    var frozenParameterCount: Int { get }
    /// The example as the model reads it: a text example's prompt and completion tokenized apart
    /// and the completion ended by the end-of-sequence token; a conversation rendered with the
    /// model's chat template (the prompt with the generation prompt, the completion ended by the
    /// token closing a turn). Throws when the prompt has no token or the model cannot render or
    /// end the example.
    func encode(_ example: CompletionExample) throws -> EncodedCompletion
    /// The text of generated ids.
    func decode(_ ids: [Int]) throws -> String
    /// A fresh model for one run: every Linear offered to `adapt`, its base in `base`'s format.
    func makeLanguageModel(base: BaseWeightFormat, adapt: ModuleAdapterFactory) throws -> any LanguageModel
}

/// One run's language model: the frozen model with the run's adapters.
public protocol LanguageModel: AnyObject {
    /// The adapted modules by peft name, in model order.
    var adapters: [NamedAdapter] { get }
    /// The adapter tensors (a language model has no head of its own to train).
    var trainableParameters: [Parameter] { get }
    /// The causal-LM loss of the batch's labelled tokens, their mean over the batch as
    /// transformers' `ForCausalLMLoss` takes it; keeps what `backward()` needs.
    func loss(_ batch: CompletionBatch, training: Bool) throws -> Float
    /// Accumulates the last loss's gradient into `trainableParameters`.
    func backward() throws
    /// Greedy continuations of `prompts`, each at most `maxNewTokens` tokens and ended before the
    /// first end token it produces (which is not returned).
    func generate(prompts: [[Int]], maxNewTokens: Int) throws -> [[Int]]
    /// Fills the adapter config's model fields (`base_model_name_or_path`, `task_type: CAUSAL_LM`,
    /// `layers_to_transform`) so that `PeftModel.from_pretrained` rebuilds exactly this model.
    func describe(_ config: inout PeftConfig) throws
}

/// An example the model cannot read as a completion.
public enum LanguageModelError: Error, Equatable, CustomStringConvertible {
    /// A text example whose prompt has no token: nothing for the completion to follow.
    case emptyPrompt
    /// The model's file names no token that can end this kind of example.
    case noEndToken(path: String, needed: String)

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty: a completion needs at least one prompt token to follow"
        case let .noEndToken(path, needed): return "\(path): the model has no \(needed), so a completion cannot be ended"
        }
    }
}
