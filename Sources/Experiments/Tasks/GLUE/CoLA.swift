import LoRABenchData
import LoRABenchResults

/// CoLA (Warstadt et al. 2019): single sentences, linguistically unacceptable (0) or acceptable
/// (1). GLUE scores it by Matthews correlation, which a majority-class guess cannot inflate.
public enum CoLA: GLUETaskDefinition {
    public static let task = GLUETask(name: "cola", labelCount: 2)
    public static let prompt = ClassificationPrompt(template: "Sentence: {sentence}\nIs this sentence grammatically acceptable? Yes or no?\nAnswer:",
                                                    labelWords: [" no", " yes"])
    public static let metrics: [GLUEMetric] = [.mcc, .accuracy]
}
