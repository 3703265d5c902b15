import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Every LoRA-FA case (`variant: lorafa`): the two-layer MLP with plain LoRA layers trained by the
/// LoRA-FA policy (A frozen, B's gradient projected, Hugging Face Adam); losses, final A (unchanged)
/// and final B against peft's `create_lorafa_optimizer`.
@Suite struct LoRAFAParityTests {
    static let directory = Fixtures.directory(environment: "PEFT_FIXTURES_DIR", default: "peft")
    static let variants: Set<String> = ["lorafa"]
    static let trainCases = Fixtures.cases(in: directory, kind: "train", variants: variants)

    @Test func fixturesArePresent() {
        #expect(!Self.trainCases.isEmpty, "no LoRA-FA train cases under \(Self.directory.path)")
    }

    @Test(arguments: trainCases)
    func trajectoryMatchesPeft(_ folder: URL) throws {
        let label = folder.lastPathComponent
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let r = settings["r"] as! Int
        let alpha = Float(settings["lora_alpha"] as! Double)
        let scaling = settings["use_rslora"] as? Bool == true ? alpha / Float(r).squareRoot() : alpha / Float(r)
        var layers: [NamedAdapter] = []
        for name in ParityTraining.layerNames(tensors) {
            let layer = try LoRA(base: ParityTraining.base(tensors, name), a: tensors.matrix("init.\(name).lora_A.weight"),
                                 b: tensors.matrix("init.\(name).lora_B.weight"), scaling: scaling)
            layers.append(NamedAdapter(name: name, adapter: layer))
        }
        let model = AdaptedMLP(layers: layers)
        let optimizerSettings = settings["optimizer"] as! [String: Any]
        let betas = optimizerSettings["betas"] as! [Double]
        #expect(betas == [0.9, 0.999] && (optimizerSettings["eps"] as? Double).map(Float.init) == LoRAFA.epsilon, "\(label): peft's LoRA-FA defaults")
        try LoRAFA().prepare(layers)
        let optimizer = try LoRAFA().makeOptimizer(parameters: model.parameters, layers: layers,
                                                   learningRate: Float(optimizerSettings["lr"] as! Double),
                                                   weightDecay: Float(optimizerSettings["weight_decay"] as! Double))
        let losses = try ParityTraining.train(model, optimizer: optimizer, settings: settings, tensors: tensors)

        var compared = [(name: "losses", got: losses)]
        for layer in layers {
            let lora = layer.adapter as! LoRA
            #expect(lora.a.value == (try tensors.matrix("init.\(layer.name).lora_A.weight")), "\(label): \(layer.name) A moved")
            compared += [("final.\(layer.name).lora_A.weight", lora.a.value.storage), ("final.\(layer.name).lora_B.weight", lora.b.value.storage)]
        }
        try ParityTraining.compare(compared, with: tensors, rtol: settings["rtol"] as! Double, label: label)
    }
}
