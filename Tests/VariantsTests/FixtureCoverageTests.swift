import Foundation
import Testing
import LoRABenchTestSupport

/// Each parity suite reads the cases of the variants it implements; this checks that together they
/// read every case folder, so a new case of an unknown variant fails here instead of being skipped.
@Suite struct FixtureCoverageTests {
    static let handled: [String: Set<String>] = [
        "layer": LayerParityTests.variants.union(VeRAParityTests.variants).union(OLoRAParityTests.variants),
        "train": TrainingParityTests.variants.union(VeRAParityTests.variants).union(OLoRAParityTests.variants)
            .union(LoRAFAParityTests.variants),
    ]

    @Test func everyPeftCaseIsReadByAParitySuite() throws {
        let directory = Fixtures.directory(environment: "PEFT_FIXTURES_DIR", default: "peft")
        for folder in Fixtures.cases(in: directory) {
            let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
            let kind = settings["kind"] as? String ?? "?", variant = settings["variant"] as? String ?? "?"
            #expect(Self.handled[kind]?.contains(variant) == true,
                    "\(folder.lastPathComponent): no parity suite reads \(kind) cases of variant \(variant)")
        }
    }
}
