import LoRABenchData

/// CoLA (Warstadt et al. 2019): single sentences, linguistically unacceptable (0) or acceptable (1).
public enum CoLA: GLUETaskDefinition {
    public static let task = GLUETask(name: "cola", labelCount: 2)
    public static let prompt = ClassificationPrompt(template: "Sentence: {sentence}\nIs this sentence grammatically acceptable? Yes or no?\nAnswer:",
                                                    labelWords: [" no", " yes"])
}
