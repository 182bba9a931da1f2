using Norman.Core.Packets;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress (after demultiplexing, so a packet's owner is known) and egress (after validation): runs the chain of
/// the current <see cref="PolicySnapshot"/> over every IP packet. Drop and reject are counted drops against the
/// owning socket; reject on ingress also answers, as nft's reject does: ICMP port unreachable (or the code the rule
/// names), or a TCP reset for 'reject with tcp reset' — through <see cref="HostReplies"/>, under its rate limits.
/// A chain with no rules and an accepting policy costs one test per batch. When a rule matches on ct state,
/// every packet's connection state is looked up first and every accepted packet tracked.
/// </summary>
public sealed class FilterStage(Chain chain, DataplaneCounters counters, SocketSet sockets, HostReplies replies, Conntrack conntrack)
{
    private readonly bool _outbound = chain == Chain.Egress;

    public VerdictCache Cache { get; } = new();
    private FilterAction Traced(TraceTap trace, PolicySnapshot policy, ReadOnlySpan<byte> frame, in ParsedPacket packet, PipeSocket? socket,
        ConnectionState state, out long decidedBy)
    {
        ref var record = ref trace.Begin(out bool ok);
        if (!ok)
        {
            var decision = default(DecisionRecorder);
            var unrecorded = policy.Evaluate(chain, frame, packet, socket, state, ref decision);
            decidedBy = decision.DecidedBy;
            return unrecorded;
        }
        var recorder = new TraceRecorder(ref record);
        var verdict = policy.Evaluate(chain, frame, packet, socket, state, ref recorder);
        record.Packet.Fill(chain, packet, socket);
        record.Verdict = verdict;
        decidedBy = record.DecidedBy;
        trace.Commit();
        return verdict;
    }

    private readonly DropReason _reason = chain == Chain.Ingress ? DropReason.FilteredIngress : DropReason.FilteredEgress;

    public void Run(PacketBatch batch, int first, PolicySnapshot policy, long now, TraceTap? trace = null)
    {
        if (policy.IsOpen(chain) && !policy.UsesConntrack && trace is null)
        {
            return;
        }
        bool track = policy.UsesConntrack;
        bool cacheable = policy.IsCacheable(chain);
        var rules = policy.Rules(chain);
        Span<int> matched = stackalloc int[VerdictCache.MaxMatchedRules];
        // One key and one hash per UDP/TCP packet, for conntrack and the verdict cache both.
        Span<FlowKey> keys = stackalloc FlowKey[PacketBatch.Capacity];
        Span<ulong> hashes = stackalloc ulong[PacketBatch.Capacity];
        for (int i = first; i < batch.Count && (track || cacheable); i++)
        {
            ref var packet = ref batch.Parsed(i);
            if (!batch.IsDone(i) && packet.Kind is PacketKind.Udp or PacketKind.Tcp)
            {
                keys[i] = Conntrack.KeyOf(packet, _outbound);
                hashes[i] = keys[i].Hash();
                if (track)
                {
                    // Memory first: with many flows each lookup would wait for its slot; asked for all at once, they overlap.
                    conntrack.Prefetch(hashes[i]);
                }
            }
        }
        for (int i = first; i < batch.Count; i++)
        {
            ref var packet = ref batch.Parsed(i);
            if (batch.IsDone(i) || packet.IpVersion == 0)
            {
                continue;
            }
            int slot = batch.SocketSlot(i);
            var socket = slot >= 0 ? sockets[slot] : null;
            var frame = batch.Frame(i);
            FilterAction verdict;
            long decidedBy = 0;
            long socketId = socket?.Id ?? 0;
            // The flow's state, asked once (the packet's flow entry kept for Track below): traced, cached or not.
            int flow = -1;
            var state = track ? conntrack.StateOf(frame, packet, _outbound, now, keys[i], hashes[i], out flow) : ConnectionState.None;
            if (trace is not null && trace.Wants(frame))
            {
                verdict = Traced(trace, policy, frame, packet, socket, state, out decidedBy);
            }
            else if (cacheable && packet.Kind is PacketKind.Udp or PacketKind.Tcp)
            {
                // The flow's state is part of the key: one conntrack lookup instead of the whole chain.
                if (!Cache.TryGet(keys[i], hashes[i], socketId, state, policy, rules, frame.Length, out verdict, out decidedBy))
                {
                    var recorder = new MatchRecorder(matched);
                    verdict = policy.Evaluate(chain, frame, packet, socket, state, ref recorder);
                    decidedBy = recorder.DecidedBy;
                    if (recorder.Count <= matched.Length)
                    {
                        Cache.Store(keys[i], hashes[i], socketId, state, policy, verdict, decidedBy, recorder.Indexes);
                    }
                }
            }
            else
            {
                var decision = default(DecisionRecorder);
                verdict = policy.Evaluate(chain, frame, packet, socket, state, ref decision);
                decidedBy = decision.DecidedBy;
            }
            if (verdict == FilterAction.Accept)
            {
                if (track)
                {
                    conntrack.Track(frame, packet, _outbound, now, flow);
                }
                continue;
            }
            counters.Drop(_reason);
            socket?.Counters.Drop(_reason);
            // Done, but remembered: a capture placed before the filter still records it, with what decided.
            batch.MarkFiltered(i, verdict == FilterAction.Reject ? (byte)2 : (byte)1, decidedBy, _reason);
            if (verdict == FilterAction.Reject && chain == Chain.Ingress)
            {
                Reject(frame, packet, policy.Find(decidedBy)?.RejectWith ?? RejectWith.PortUnreachable, now);
            }
        }
    }

    private void Reject(ReadOnlySpan<byte> frame, in ParsedPacket packet, RejectWith with, long now)
    {
        if (with == RejectWith.TcpReset && packet.Kind == PacketKind.Tcp)
        {
            replies.SendTcpReset(frame, packet, now);
            return;
        }
        byte code = with switch
        {
            RejectWith.NetUnreachable => 0,
            RejectWith.HostUnreachable => 1,
            RejectWith.ProtocolUnreachable => 2,
            RejectWith.AdminProhibited => 13,
            _ => IcmpHeader.PortUnreachableCode,
        };
        replies.SendUnreachable(frame, packet, code, now);
    }
}
