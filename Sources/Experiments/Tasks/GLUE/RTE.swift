import LoRABenchData

/// RTE (the Recognizing Textual Entailment challenges): sentence pairs, entailment (0) or not (1).
public enum RTE: GLUETaskDefinition {
    public static let task = GLUETask(name: "rte", labelCount: 2)
    public static let prompt = ClassificationPrompt(template: "{sentence1}\nQuestion: Does this imply that \"{sentence2}\"? Yes or no?\nAnswer:",
                                                    labelWords: [" yes", " no"])
}
