import LoRABenchData

/// RTE (the Recognizing Textual Entailment challenges): sentence pairs, entailment (0) or not (1).
public enum RTE: GLUETaskDefinition {
    public static let task = GLUETask(name: "rte", labelCount: 2)
}
