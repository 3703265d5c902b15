import Foundation
import Synchronization

/// Set by the SIGUSR1 handler; an atomic store is all a signal handler may safely do.
private let warningReceived = Atomic<Bool>(false)

/// Passes events to `inner` and, once the process has received SIGUSR1 (the warning Slurm sends
/// before a time limit, `--signal=B:USR1@…`), answers `.checkpointAndStop` at the next step:
/// the run saves its state and stops, and its requeued task continues from there.
///
/// A handler, not SIG_IGN: an ignored signal stays ignored in every program this process starts,
/// and a shell cannot trap a signal it was started ignoring.
public final class CheckpointOnSignal: ProgressSink {
    private let inner: ProgressSink

    public init(wrapping inner: ProgressSink) {
        self.inner = inner
        warningReceived.store(false, ordering: .sequentiallyConsistent)
        // BSD semantics on glibc and Darwin: the handler stays installed, interrupted calls restart.
        signal(SIGUSR1) { _ in warningReceived.store(true, ordering: .sequentiallyConsistent) }
    }

    public func handle(_ event: ProgressEvent) -> ProgressAnswer {
        let answer = inner.handle(event)
        guard answer == .more, warningReceived.load(ordering: .sequentiallyConsistent) else { return answer }
        return .checkpointAndStop
    }
}
