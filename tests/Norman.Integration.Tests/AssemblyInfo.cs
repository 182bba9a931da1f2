// The integration tests mostly wait: on a daemon, on a test host's real tools (tshark, socat, nft), on timers. Test classes
// run three at a time, so one class's waiting overlaps another's work; each class builds its own namespaces, devices and
// daemon (unique names), so two never meet. Classes that count what this whole process holds, and the demo, run alone
// at the end (RunsAlone). The real-wire classes, which take minutes, start first (LongestFirst).
[assembly: CollectionBehavior(CollectionBehavior.CollectionPerClass, MaxParallelThreads = 3)]
[assembly: TestCollectionOrderer("Norman.Integration.Tests.LongestFirst", "Norman.Integration.Tests")]
