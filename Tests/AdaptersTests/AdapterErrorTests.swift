@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// Mistakes are errors that say what was wrong and what is allowed, never crashes.
@Suite struct AdapterErrorTests {
    static func base() throws -> FrozenLinear { try FrozenLinear(weight: .zeros(16, 24)) }

    static func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch { return "\(error)" }
        return nil
    }

    @Test(arguments: [0, 17, -1])
    func rankOutsideOneToMinOfTheShapeIsRejected(_ rank: Int) throws {
        let config = AdapterConfig(rank: rank)
        let builders: [(String, () throws -> any Adapter)] = [
            ("lora", { try LoRA(base: Self.base(), config: config, seed: 0) }),
            ("dora", { try DoRA(base: Self.base(), config: config, seed: 0) }),
            ("adalora", { try AdaLoRALayer(base: Self.base(), config: config, seed: 0) }),
        ]
        for (name, build) in builders {
            #expect(Self.message { _ = try build() } == "rank \(rank) is not allowed for a 16x24 layer: r must be between 1 and min(in, out) = 16", "\(name)")
        }
    }

    @Test func inputWithTheWrongFeatureCountIsRejected() throws {
        let adapter = try LoRA(base: Self.base(), config: AdapterConfig(rank: 4), seed: 0)
        #expect(Self.message { _ = try adapter.forward(.zeros(3, 7), training: false) } == "layer input has shape [3, 7], expected [3, 24]")
        _ = try adapter.forward(.zeros(3, 24), training: false)
        #expect(Self.message { _ = try adapter.backward(.zeros(2, 16)) } == "output gradient has shape [2, 16], expected [3, 16]")
    }

    @Test func factorsThatDoNotFitTheBaseAreRejected() throws {
        let text = Self.message { _ = try LoRA(base: Self.base(), a: .zeros(4, 20), b: .zeros(16, 4), scaling: 1) }
        #expect(text == "lora_A / lora_B has shape [4, 20, 16, 4], expected [4, 24, 16, 4]")
        #expect(Self.message { _ = try FrozenLinear(weight: .zeros(16, 24), bias: .zeros(1, 15)) } == "base bias has shape [1, 15], expected [1, 16]")
        #expect(Self.message {
            _ = try DoRA(base: Self.base(), a: .zeros(4, 24), b: .zeros(16, 4), magnitude: .zeros(1, 3), scaling: 1)
        } == "lora_magnitude_vector has shape [1, 3], expected [1, 16]")
    }

    @Test func svdOfNaNIsAnError() throws {
        var m = Matrix.zeros(4, 3)
        m[1, 2] = .nan
        #expect(Self.message { _ = try svd(m) }
            == "sgesdd: the 4x3 input contains NaN or infinity; check for a diverged run before decomposing its weights")
        #expect(throws: LinalgError.nonFinite(routine: "sgeqrf", shape: [4, 3])) { _ = try qr(m) }
    }

    @Test func unknownInitNamesTheAllowedOnes() throws {
        #expect(Self.message { _ = try AdapterInit(named: "xavier") }
            == "unknown init 'xavier'; allowed: kaiming, gaussian, pissa, olora, zero_a, both_gaussian")
        #expect(try AdapterInit(named: "pissa") == .pissa)
    }

    @Test func dropoutOutsideZeroToOneIsRejected() throws {
        #expect(Self.message { _ = try LoRA(base: Self.base(), config: AdapterConfig(rank: 4, dropout: 1), seed: 0) }
            == "dropout = 1.0 is not allowed; it must be in [0, 1)")
    }

    @Test func adaloraScheduleIsValidated() throws {
        #expect(Self.message {
            _ = try AdaLoRASchedule(targetRank: 2, initialWarmup: 10, finalWarmup: 5, maskInterval: 1, totalSteps: 12)
        } == "adalora tinit = 10 is not allowed; tinit must be < total_step − tfinal = 7")
        #expect(Self.message {
            _ = try SVDPruneSettings(interval: 10, energy: 0.9, maxRank: 8, startStep: 5, stopStep: 100)
        } == "svd-prune start_step = 5 is not allowed; need interval (10) ≤ start_step ≤ stop_step (100)")
    }

    @Test func anNF4BaseRejectsABadBlockSizeAndAWrongReplacementWeight() throws {
        #expect(Self.message { _ = try FrozenLinear(quantizing: .zeros(16, 24), blockSize: 48) }
                == "NF4 block size 48 is not allowed: use a power of two from 32 to 4096 (32, 64, 128, 256, 512, 1024, 2048, 4096; "
                + "bitsandbytes' quantize_4bit), 64 by default")
        let base = try FrozenLinear(quantizing: .zeros(16, 24))
        #expect(Self.message { try base.replaceWeight(.zeros(24, 16)) } == "replacement base weight has shape [24, 16], expected [16, 24]")
        #expect(Self.message { try base.replaceWeight(Matrix(rows: 16, cols: 24, repeating: .nan)) }
                == "the 16x24 weight contains NaN or infinity, which has no NF4 block scale; check the checkpoint or the run that produced it before quantizing")
        #expect(base.isQuantized)
    }
}
