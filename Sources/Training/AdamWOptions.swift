extension AdamW {
    /// The two places where Adam implementations differ. The defaults are torch.optim.AdamW's
    /// (`.torch`); `.huggingFace` is transformers' legacy AdamW, which peft's LoRA-FA optimizer copies.
    public struct Options: Equatable, Sendable {
        /// Where ε enters the denominator.
        public enum Epsilon: Equatable, Sendable {
            /// torch: step lr/(1 − β1ᵗ), denominator √v/√(1 − β2ᵗ) + ε.
            case correctedRoot
            /// Hugging Face: step lr·√(1 − β2ᵗ)/(1 − β1ᵗ), denominator √v + ε (ε before the bias correction).
            case rawRoot
        }

        /// When the decoupled weight decay p ← p − lr·wd·p is applied.
        public enum WeightDecay: Equatable, Sendable {
            /// torch: before the Adam update, on the old value.
            case beforeStep
            /// Hugging Face: after the Adam update, on the new value.
            case afterStep
        }

        public var epsilon: Epsilon
        public var weightDecay: WeightDecay

        public init(epsilon: Epsilon = .correctedRoot, weightDecay: WeightDecay = .beforeStep) {
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }

        public static let torch = Options()
        public static let huggingFace = Options(epsilon: .rawRoot, weightDecay: .afterStep)
    }
}
