import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchData

/// A model family that can classify text (the GLUE tasks): an encoder with a trained head, or a
/// decoder reading a prompt and scoring one word per label. A task asks the family for a
/// `TextClassifierBase` and never learns which architecture it got.
public protocol TextClassifierFamily: ModelFamily {
    /// The longest input, in tokens, the model takes.
    var maxSequenceLength: Int { get }
    /// Whether the classifier has a head that trains (a `head_only` run needs one).
    var classifierHasHead: Bool { get }
    /// Whether it can predict a real number (STS-B's score) as well as a class.
    var classifierPredictsScores: Bool { get }
    /// Reads the model's files once (weights, tokenizer) and checks them against the family:
    /// what every run of a sweep shares.
    func classifierBase(files: ModelFiles, task: TextClassification) throws -> any TextClassifierBase
}

/// What a classification task asks of the model.
public struct TextClassification: Sendable {
    /// Classes 0..<labelCount; 1 for a regression (one output, trained on `TokenBatch.scores`).
    public var labelCount: Int
    public var isRegression: Bool
    /// Tokens per example at most, special tokens included.
    public var maxLength: Int
    /// Read by a language model; an encoder with a head ignores it.
    public var prompt: ClassificationPrompt

    public init(labelCount: Int, isRegression: Bool = false, maxLength: Int, prompt: ClassificationPrompt) {
        self.labelCount = labelCount
        self.isRegression = isRegression
        self.maxLength = maxLength
        self.prompt = prompt
    }
}

/// Replaces one frozen Linear (its peft module shape and its base) with an adapter, or returns nil to keep it frozen.
public typealias ModuleAdapterFactory = (_ module: ModuleShape, _ base: FrozenLinear) throws -> (any Adapter)?

/// A family's frozen model and tokenizer, loaded once and shared by every run of a sweep.
public protocol TextClassifierBase: AnyObject {
    var files: ModelFiles { get }
    /// The token that pads a batch (masked out, so any id in the vocabulary would do).
    var padId: Int { get }
    /// Parameters of the frozen model (its adapted Linears included, not counting an unused pooler).
    var frozenParameterCount: Int { get }
    /// The example as the model reads it, at most `TextClassification.maxLength` tokens.
    func encode(_ example: GLUEExample) -> EncodedExample
    /// A fresh model for one run: every Linear offered to `adapt`, its base in `base`'s format; a
    /// head, if the family has one, initialised from `seed`.
    func makeClassifier(seed: UInt64, base: BaseWeightFormat, adapt: ModuleAdapterFactory) throws -> any TextClassifier
}

/// One run's classifier: the frozen model with the run's adapters (and head).
public protocol TextClassifier: AnyObject {
    /// The adapted modules by peft name, in model order.
    var adapters: [NamedAdapter] { get }
    /// Adapter tensors and any head.
    var trainableParameters: [Parameter] { get }
    /// The head's parameters (0 without one).
    var headParameterCount: Int { get }
    /// The mean training loss over the batch (cross-entropy, or for a regression the squared
    /// error against `batch.scores`); keeps what `backward()` needs.
    func loss(_ batch: TokenBatch, training: Bool) throws -> Float
    /// Accumulates the last loss's gradient into `trainableParameters`.
    func backward() throws
    /// One score per label [B, labelCount] (the prediction is the highest; a regression's one
    /// column is its predicted value) and the mean loss as training measures it.
    func evaluate(_ batch: TokenBatch) throws -> (labelScores: Matrix, loss: Float)
    /// peft's `modules_to_save` (a head trained outright) and their tensors by peft name.
    var savedModules: (names: [String], tensors: [String: TensorToWrite]) { get }
    /// Fills the adapter config's model-specific fields (`base_model_name_or_path`, `task_type`,
    /// `modules_to_save`, …) so that `PeftModel.from_pretrained` rebuilds exactly this model.
    func describe(_ config: inout PeftConfig) throws
}
