import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Every VeRA case (`variant: vera`): one layer (output, ∂x, ∂λ_d, ∂λ_b, merged weight and output)
/// and the two-layer MLP trained with AdamW over λ_d and λ_b, with the shared projections of the case.
@Suite struct VeRAParityTests {
    static let directory = Fixtures.directory(environment: "PEFT_FIXTURES_DIR", default: "peft")
    static let variants: Set<String> = ["vera"]
    static let layerCases = Fixtures.cases(in: directory, kind: "layer", variants: variants)
    static let trainCases = Fixtures.cases(in: directory, kind: "train", variants: variants)

    @Test func fixturesArePresent() {
        #expect(!Self.layerCases.isEmpty, "no VeRA layer cases under \(Self.directory.path)")
        #expect(!Self.trainCases.isEmpty, "no VeRA train cases under \(Self.directory.path)")
    }

    @Test(arguments: layerCases)
    func layerMatchesPeft(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let base = try FrozenLinear(weight: tensors.matrix("base.weight"), bias: tensors.matrix("base.bias"))
        let projections = try VeRAProjections(a: tensors.matrix("vera_A"), b: tensors.matrix("vera_B"))
        #expect(projections.rank == settings["r"] as? Int)
        let layer = try VeRALayer(base: base, projections: projections, lambdaD: tensors.matrix("vera_lambda_d"),
                                  lambdaB: tensors.matrix("vera_lambda_b"))

        let x = try tensors.matrix("x")
        var results = [(name: "out", got: try layer.forward(x, training: true).storage),
                       (name: "grad_x", got: try layer.backward(tensors.matrix("grad_out")).storage)]
        for parameter in layer.parameters { results.append(("grad_" + parameter.name, parameter.grad.storage)) }
        layer.merge()
        results.append(("merged_weight", layer.base.weight.storage))
        results.append(("merged_out", try layer.forward(x, training: false).storage))
        try ParityTraining.compare(results, with: tensors, rtol: settings["rtol"] as! Double, label: folder.lastPathComponent)
    }

    @Test(arguments: trainCases)
    func trajectoryMatchesPeft(_ folder: URL) throws {
        let label = folder.lastPathComponent
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let r = settings["r"] as! Int
        let dInitial = Float(settings["d_initial"] as? Double ?? 0.1)
        let projections = try VeRAProjections(a: tensors.matrix("init.vera_A"), b: tensors.matrix("init.vera_B"))
        var layers: [NamedAdapter] = []
        for name in ParityTraining.layerNames(tensors) {
            let base = try ParityTraining.base(tensors, name)
            // peft's init (λ_d = d_initial, λ_b = 0) is what the case starts from.
            let fresh = try VeRALayer(base: base, projections: projections, rank: r, dInitial: dInitial)
            #expect(fresh.lambdaD.value.storage == (try tensors.floats("init.\(name).vera_lambda_d")), "\(label): \(name) λ_d init")
            #expect(fresh.lambdaB.value.storage == (try tensors.floats("init.\(name).vera_lambda_b")), "\(label): \(name) λ_b init")
            let layer = try VeRALayer(base: base, projections: projections, lambdaD: tensors.matrix("init.\(name).vera_lambda_d"),
                                      lambdaB: tensors.matrix("init.\(name).vera_lambda_b"))
            layers.append(NamedAdapter(name: name, adapter: layer))
        }
        let model = AdaptedMLP(layers: layers)
        let losses = try ParityTraining.train(model, optimizer: ParityTraining.adamW(settings, parameters: model.parameters),
                                              settings: settings, tensors: tensors)

        var compared = [(name: "losses", got: losses)]
        for layer in layers {
            for parameter in layer.adapter.parameters { compared.append(("final.\(layer.name).\(parameter.name)", parameter.value.storage)) }
        }
        // The shared projections are frozen: peft's final copies equal the initial ones.
        compared.append(("final.vera_A", projections.a.storage))
        compared.append(("final.vera_B", projections.b.storage))
        try ParityTraining.compare(compared, with: tensors, rtol: settings["rtol"] as! Double, label: label)
    }
}
