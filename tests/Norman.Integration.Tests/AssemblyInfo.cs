// The integration tests mostly wait: on a daemon, on a test host's real tools (tshark, socat, nft), on timers. Test classes
// run three at a time, so one class's waiting overlaps another's work; each class builds its own namespaces, devices and
// daemon (unique names), so two never meet. Classes that count what this whole process holds run alone, at the end
// (the ProcessWideCounts collection).
[assembly: CollectionBehavior(CollectionBehavior.CollectionPerClass, MaxParallelThreads = 3)]
