namespace Norman.Integration.Tests;

/// <summary>
/// Test classes that run alone, after the others: those that count what this process holds (memfds, mappings,
/// eventfds, descriptors in /proc/self) to prove nothing leaked, which another class's daemon in the same process would
/// change, and the demo, whose story (a database answering every request until Bob's bulk traffic, then again under a
/// QoS class) needs the machine's two cores to itself.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAlone
{
    public const string Name = "Runs alone";
}
