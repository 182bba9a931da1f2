namespace Norman.Integration.Tests;

/// <summary>A fact that needs root (to start processes as another user); skipped, saying so, elsewhere.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (Environment.UserName != "root")
        {
            Skip = "needs root: the test starts the client as nobody with setpriv";
        }
    }
}
