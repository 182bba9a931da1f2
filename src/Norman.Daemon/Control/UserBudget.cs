namespace Norman.Daemon.Control;

/// <summary>
/// A per-user bound on something the daemon spends for its callers (control connections, bytes of requests still
/// arriving, capture taps), counted by uid as the kernel's RLIMITs and memory cgroups count by user. Thread-safe;
/// cold path only.
/// </summary>
public sealed class UserBudget(long limitPerUid)
{
    private readonly Dictionary<int, long> _held = new();

    public long LimitPerUid => limitPerUid;

    /// <summary>What <paramref name="uid"/> holds now.</summary>
    public long Held(int uid)
    {
        lock (_held)
        {
            return _held.GetValueOrDefault(uid);
        }
    }

    /// <summary>Takes <paramref name="amount"/> for <paramref name="uid"/> if it stays within the limit; false (nothing taken) if not.</summary>
    public bool TryTake(int uid, long amount)
    {
        lock (_held)
        {
            long held = _held.GetValueOrDefault(uid);
            if (held + amount > limitPerUid)
            {
                return false;
            }
            _held[uid] = held + amount;
            return true;
        }
    }

    /// <summary>Gives back what <see cref="TryTake"/> took.</summary>
    public void Return(int uid, long amount)
    {
        lock (_held)
        {
            long held = _held.GetValueOrDefault(uid) - amount;
            if (held <= 0)
            {
                _held.Remove(uid);
            }
            else
            {
                _held[uid] = held;
            }
        }
    }
}
