namespace Norman.Integration.Tests;

/// <summary>
/// Test classes that count what this process holds (memfds, mappings, eventfds, descriptors in /proc/self) to prove
/// nothing leaked: another class's daemon in the same process would change those counts, so these run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideCounts
{
    public const string Name = "Counts of what this whole process holds";
}
