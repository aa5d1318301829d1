import ServiceLifecycle

/// What a component's `Service.run()` does once the component has started, so that `run()`
/// lives exactly as long as the component: wait for whichever comes first, a graceful shutdown
/// of the group or the component ending on its own; stop it (awaited and bounded by `stop`); and
/// throw `ComponentFailure` when it had ended on its own.
///
/// `ended` resumes with the reason when the component ended on its own, and with nil when its
/// task is cancelled (which is what the graceful shutdown does to it) or the component was
/// stopped as asked.
func superviseComponent(_ name: String, ended: @escaping @Sendable () async -> String?,
                        stop: () async -> Void) async throws {
    let reason = await cancelWhenGracefulShutdown { await ended() }
    await stop()
    if let reason { throw ComponentFailure(component: name, reason: reason) }
}
