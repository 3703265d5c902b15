import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop
import LoRABenchExperiments
import LoRABenchPlotting
import LoRABenchReport
import LoRABenchAnalysis
import LoRABenchBench

/// A command that cannot do what it was asked with the files it was given (ArgumentParser's
/// `ValidationError` is for the arguments themselves and prints the usage after the message).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
