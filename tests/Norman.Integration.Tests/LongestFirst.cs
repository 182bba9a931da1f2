using Xunit.Abstractions;

namespace Norman.Integration.Tests;

/// <summary>Marks a test class that takes minutes (the real-wire classes): it starts first, beside the short ones.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public sealed class RunsLongAttribute : Attribute;

/// <summary>
/// Starts the classes marked <see cref="RunsLongAttribute"/> first. Classes run three at a time; a long class started
/// late leaves the run waiting on it alone at the end (the TAP and XDP wire classes ran their last 70 s by themselves).
/// </summary>
public sealed class LongestFirst : ITestCollectionOrderer
{
    private const string Prefix = "Test collection for ";

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections.OrderBy(collection => RunsLong(collection) ? 0 : 1);

    private static bool RunsLong(ITestCollection collection) =>
        collection.DisplayName.StartsWith(Prefix, StringComparison.Ordinal)
        && typeof(LongestFirst).Assembly.GetType(collection.DisplayName[Prefix.Length..].Split(' ')[0]) is { } type
        && type.IsDefined(typeof(RunsLongAttribute), inherit: true);
}
