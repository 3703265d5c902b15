import LoRABenchData
import LoRABenchResults

/// STS-B (Cer et al. 2017): sentence pairs scored from 0 (unrelated) to 5 (equivalent) — a
/// regression: one output trained by squared error, scored by GLUE with Pearson and Spearman
/// correlation. A decoder that classifies by label words cannot learn it (`models` says so).
public enum STSB: GLUETaskDefinition {
    public static let task = GLUETask(name: "stsb", labelCount: 1, target: .score(0...5))
    /// Unused: no family that reads prompts predicts a score.
    public static let prompt = ClassificationPrompt(template: "{sentence1}\n{sentence2}", labelWords: [" score"])
    public static let metrics: [GLUEMetric] = [.pearson, .spearman]
}
