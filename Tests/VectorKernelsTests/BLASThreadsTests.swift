import Foundation
@testable import LoRABenchKernels
import Synchronization
import Testing

/// The BLAS thread count is process-wide, and the test runner runs suites in parallel: a body run
/// under `BLASThreads.with` must see its own count from start to end, whatever another thread sets
/// (the race that made `theNarrowProductsGiveOpenBLASsNumbers` fail under load: a suite beside it
/// reset the count to 1 between its two products).
@Suite struct BLASThreadsTests {
    @Test func aBodyKeepsItsCountWhileAnotherThreadChangesIt() async {
        let checking = Atomic<Bool>(true)
        let changes = Atomic<Int>(0)
        let changer = Thread {
            var index = 0
            while checking.load(ordering: .relaxed) {
                BLASThreads.with(index.isMultiple(of: 2) ? 1 : 3) { _ = BLASThreads.current }
                index += 1
                changes.store(index, ordering: .relaxed)
            }
        }
        changer.start()
        // Wait for the changer to run, so that the bodies below overlap it.
        while changes.load(ordering: .relaxed) == 0 { try? await Task.sleep(for: .milliseconds(1)) }
        var changedUnderneath = 0
        for _ in 0..<20 {
            BLASThreads.with(2) {
                for _ in 0..<2_000 where BLASThreads.current != 2 { changedUnderneath += 1 }
            }
        }
        checking.store(false, ordering: .relaxed)
        while !changer.isFinished { try? await Task.sleep(for: .milliseconds(1)) }
        #expect(changedUnderneath == 0)
    }

    @Test func theCountComesBackAndNests() {
        BLASThreads.with(1) {
            BLASThreads.with(3) {
                #expect(BLASThreads.current == 3)
                BLASThreads.with(2) { #expect(BLASThreads.current == 2) }
                #expect(BLASThreads.current == 3)
            }
            #expect(BLASThreads.current == 1)
        }
    }
}
