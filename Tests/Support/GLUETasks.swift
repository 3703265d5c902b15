import LoRABenchData
import LoRABenchExperiments

/// The registered GLUE tasks by name, for tests that load one task's data in particular.
extension GLUETask {
    package static var sst2: GLUETask { SST2.task }
    package static var rte: GLUETask { RTE.task }
    package static var cola: GLUETask { CoLA.task }
}
