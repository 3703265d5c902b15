import LoRABenchData
import LoRABenchResults

/// MRPC (Dolan and Brockett 2005): news sentence pairs, not paraphrases (0) or paraphrases (1).
/// GLUE scores it by F1 of the paraphrase class, with accuracy.
public enum MRPC: GLUETaskDefinition {
    public static let task = GLUETask(name: "mrpc", labelCount: 2)
    public static let prompt = ClassificationPrompt(
        template: "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nQuestion: Do both sentences mean the same thing? Yes or no?\nAnswer:",
        labelWords: [" no", " yes"])
    public static let metrics: [GLUEMetric] = [.f1, .accuracy]
}
