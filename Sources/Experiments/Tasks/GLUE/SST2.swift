import LoRABenchData

/// SST-2 (Socher et al. 2013): single movie-review sentences, negative (0) or positive (1).
public enum SST2: GLUETaskDefinition {
    public static let task = GLUETask(name: "sst2", labelCount: 2)
    public static let prompt = ClassificationPrompt(template: "Review: {sentence}\nSentiment:", labelWords: [" negative", " positive"])
}
