import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchVariants
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// What a sweep refuses to do to a user's files, and how it records runs that go wrong.
@Suite struct ResultsSafetyTests {
    @Test func runOutNeverWritesIntoAFolderOfOtherFiles() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(), file: "m.yaml")
        func sweep(into folder: String) throws {
            _ = try ExperimentRunner(manifest: manifest, outputDirectory: folder).run(options: SweepOptions(), progress: Silent())
        }

        let userFolder = "\(directory)/mine"
        try AtomicFile.write("a user's own table\n", to: "\(userFolder)/metrics.csv")
        #expect { try sweep(into: userFolder) } throws: { error in
            "\(error)" == "\(userFolder): the folder holds files (metrics.csv) but no manifest.yaml, so it is not a LoRABench results folder; "
                + "lorabench writes results only into a new or empty folder, or its own results of the same experiment: choose another --out"
        }
        #expect(try String(contentsOfFile: "\(userFolder)/metrics.csv", encoding: .utf8) == "a user's own table\n")
        #expect(!FileManager.default.fileExists(atPath: "\(userFolder)/\(FolderLock.fileName)"))

        let kubernetes = "\(directory)/deploy"
        try AtomicFile.write("apiVersion: v1\nkind: Pod\n", to: "\(kubernetes)/manifest.yaml")
        #expect { try sweep(into: kubernetes) } throws: {
            "\($0)".contains("its manifest.yaml is not a LoRABench manifest (it needs the keys task, training, sweep)")
        }
        #expect(try String(contentsOfFile: "\(kubernetes)/manifest.yaml", encoding: .utf8) == "apiVersion: v1\nkind: Pod\n")

        let other = "\(directory)/other"
        _ = try ExperimentRunner(manifest: try Manifest(yaml: ExperimentSupport.manifest(experiment: "other"), file: "m.yaml"),
                                 outputDirectory: other).run(options: SweepOptions(), progress: Silent())
        #expect { try sweep(into: other) } throws: { "\($0)".contains("it holds the results of experiment 'other', not 'test'") }

        let file = "\(directory)/a-file"
        try AtomicFile.write("notes", to: file)
        #expect { try sweep(into: file) } throws: { "\($0)".hasPrefix("\(file): a file, not a folder;") }

        let empty = "\(directory)/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try sweep(into: empty)
        #expect(try ExperimentRunner(manifest: manifest, outputDirectory: empty).run(options: SweepOptions(resume: true), progress: Silent())
            .map(\.status) == [.completed, .completed])
    }

    @Test func aSweepHoldsTheFolderLockAndASecondOneIsRefused() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(), file: "m.yaml")
        let results = "\(directory)/results"
        let holder = try FolderLock(folder: results, holder: "lorabench run other.yaml")
        defer { withExtendedLifetime(holder) {} }
        #expect { try ExperimentSupport.run(manifest, into: directory) } throws: { error in
            (error as? FolderLockError)?.holder == "pid \(getpid()): lorabench run other.yaml"
        }
        #expect(!FileManager.default.fileExists(atPath: "\(results)/runs"))
    }

    /// A lock this process released is taken again even while a child that another thread is
    /// starting still holds a copy of the released descriptor, between its fork and its exec: a
    /// second descriptor, unlocked 100 ms later, stands in for that copy.
    @Test func aLockThisProcessReleasedIsRetriedWhileACopyStillHoldsIt() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try FolderLock(folder: directory, holder: "lorabench run m.yaml")  // taken and released; the file names this process
        let copy = open("\(directory)/\(FolderLock.fileName)", O_RDWR | O_CLOEXEC)
        defer { close(copy) }
        #expect(flock(copy, LOCK_EX | LOCK_NB) == 0)
        // A thread of its own: the test's wait blocks one of the shared pool's few threads.
        Thread.detachNewThread {
            usleep(100_000)
            flock(copy, LOCK_UN)
        }
        let again = try FolderLock(folder: directory, holder: "lorabench run m.yaml")
        withExtendedLifetime(again) {}
    }

    /// At lr 1e30 the first AdamW step moves every trainable value by about 1e30; DoRA's loss stays
    /// finite (its direction is normalised) and its gradient norm reads 0, so only the parameters tell.
    /// (head_only trains only a classifier head, which the synthetic task has not.)
    static let trainableOnSyntheticTask = adapterVariantNames + VariantRegistry.optimizerPolicies.map { $0.name }

    @Test(arguments: trainableOnSyntheticTask)
    func anExplodingRunIsDivergedForEveryVariant(variant: String) throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(steps: 20, sweep: """
          variants: [{name: \(variant), learning_rate: 1e30}]
          ranks: [4]
        """), file: "m.yaml")
        let outcome = try #require(try ExperimentSupport.run(manifest, into: directory).first)
        #expect(outcome.status == .diverged, "\(variant): \(outcome.reason)")
        #expect(outcome.reason.hasSuffix("at step 1"), "\(variant): \(outcome.reason)")
    }

    @Test func aFailedRunIsRedoneByResumeAndAFinishedOneIsNot() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(), file: "m.yaml")
        let first = try ExperimentSupport.run(manifest, into: directory)
        let layout = ResultsLayout(root: "\(directory)/results")
        var failed = first[0]
        (failed.status, failed.reason) = (.failed, "No space left on device")
        try AtomicFile.write(try failed.encoded(), to: layout.outcomeFile(failed.runID))
        let finishedOutcome = try Data(contentsOf: URL(fileURLWithPath: layout.outcomeFile(first[1].runID)))

        let resumed = try ExperimentSupport.run(manifest, into: directory, resume: true)
        #expect(resumed.map(\.status) == [.completed, .completed])
        #expect(try Data(contentsOf: URL(fileURLWithPath: layout.outcomeFile(first[1].runID))) == finishedOutcome)
        #expect(try ExperimentSupport.summaryWithoutTiming(layout.summaryFile)[1][9] == "completed")
    }
}
