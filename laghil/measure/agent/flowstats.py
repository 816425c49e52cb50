"""The per-flow reduction of the probe agents (stdlib only): a flow's arrivals
(sequence number, time) reduced to counts, the largest gaps, loss bursts,
out-of-order and duplicate counts and receive-rate bins. Runs on the nodes
(imported by probe_agent.py and rdma_agent.py, uploaded beside them) and on
the controller (laghil.measure.analysis, for tests and offline analysis)."""

import heapq

TOP_GAPS = 16
TOP_BURSTS = 32


class FlowStats:
    """Reduces one flow's arrivals (seq, time, in arrival order) to compact figures.

    ``origin``/``bin_s``/``n_bins`` define the receive-count bins (shared by all
    flows of a receiver so that they align); ``seq_cap`` bounds the memory of
    the seen-sequence map (larger sequence numbers count as invalid).
    """

    def __init__(self, flow, dst_port, origin, bin_s, n_bins, top_gaps=TOP_GAPS,
                 seq_cap=1 << 26):
        self.flow, self.dst_port = flow, dst_port
        self.origin, self.bin_s = origin, bin_s
        self.bins = [0] * n_bins
        self.top_gaps, self.seq_cap = top_gaps, seq_cap
        self.seen = bytearray()
        self.heap = []             # (gap, t_before, t_after, seq_before, seq_after)
        self.floor = -1.0          # smallest gap worth pushing
        self.loss_heap = []        # (skipped, t_before, t_after, seq_before, seq_after): the
        self.loss_floor = 0        # arrivals across which the most sequence numbers were skipped
        self.first = self.last = None
        self.first_seq = self.last_seq = None
        self.max_seq = -1
        self.rx_packets = self.unique = self.dups = self.ooo = self.invalid = 0
        self.rate = 0
        self.tx_count = None       # from the END marker
        self.src = None

    def add(self, arrivals):
        """Feed (seq, t) pairs, in arrival order (the hot reduction loop)."""
        seen, heap, floor, ntop = self.seen, self.heap, self.floor, self.top_gaps
        lheap, lfloor = self.loss_heap, self.loss_floor
        last_t, last_seq, max_seq, cap = self.last, self.last_seq, self.max_seq, self.seq_cap
        bins, origin, inv, nb = self.bins, self.origin, 1.0 / self.bin_s, len(self.bins)
        n = unique = dups = ooo = invalid = 0
        for seq, t in arrivals:
            if seq >= cap:
                invalid += 1
                continue
            n += 1
            if seq >= len(seen):
                seen.extend(bytes(min(cap, max(seq + 1, 2 * len(seen), 4096)) - len(seen)))
            if seen[seq]:
                dups += 1
            else:
                seen[seq] = 1
                unique += 1
                if seq < max_seq:
                    ooo += 1
                else:
                    max_seq = seq
            if last_t is None:
                self.first, self.first_seq = t, seq
            else:
                g = t - last_t
                if g > floor:
                    item = (g, last_t, t, last_seq, seq)
                    if len(heap) < ntop:
                        heapq.heappush(heap, item)
                    else:
                        heapq.heappushpop(heap, item)
                    if len(heap) >= ntop:
                        floor = heap[0][0]
                skipped = seq - last_seq - 1
                if skipped > lfloor:          # packets missing across it (a loss burst)
                    item = (skipped, last_t, t, last_seq, seq)
                    if len(lheap) < ntop:
                        heapq.heappush(lheap, item)
                    else:
                        heapq.heappushpop(lheap, item)
                    if len(lheap) >= ntop:
                        lfloor = lheap[0][0]
            last_t, last_seq = t, seq
            b = int((t - origin) * inv)
            bins[b if 0 <= b < nb else (0 if b < 0 else nb - 1)] += 1
        self.floor, self.last, self.last_seq, self.max_seq = floor, last_t, last_seq, max_seq
        self.loss_floor = lfloor
        self.rx_packets += n
        self.unique += unique
        self.dups += dups
        self.ooo += ooo
        self.invalid += invalid

    def result(self, top_bursts=TOP_BURSTS):
        """The flow's JSON-ready summary (see the module docstring of analysis)."""
        if self.tx_count is not None:
            tx, tx_source = min(self.tx_count, self.seq_cap), "end"
        elif self.max_seq >= 0:
            tx, tx_source = self.max_seq + 1, "max_seq"
        else:
            tx, tx_source = 0, "none"
        seen = bytes(self.seen[:tx])
        seen += bytes(tx - len(seen))
        bursts, count, lost, pos = [], 0, 0, seen.find(0)
        while pos != -1:
            end = seen.find(1, pos)
            if end == -1:
                end = tx
            count += 1
            lost += end - pos
            item = (end - pos, -pos)
            if len(bursts) < top_bursts:
                heapq.heappush(bursts, item)
            else:
                heapq.heappushpop(bursts, item)
            pos = seen.find(0, end) if end < tx else -1
        nz = [i for i, c in enumerate(self.bins) if c]
        lo, hi = (nz[0], nz[-1] + 1) if nz else (0, 0)
        return {
            "flow": self.flow, "dst_port": self.dst_port, "src": self.src,  # from END
            "rate_pps": self.rate, "tx_count": tx, "tx_source": tx_source,
            "rx_count": tx - lost, "rx_packets": self.rx_packets, "lost": lost,
            "beyond_tx": self.unique - (tx - lost),
            "first": self.first, "last": self.last,
            "first_seq": self.first_seq, "last_seq": self.last_seq,
            "out_of_order": self.ooo, "duplicates": self.dups, "invalid": self.invalid,
            "gaps": _gaps(self.heap),
            "loss_gaps": [{"gap_s": b - a, "t_before": a, "t_after": b, "seq_before": sa,
                           "seq_after": sb, "missing": self.seen[sa + 1:sb].count(0)}
                          for _n, a, b, sa, sb in sorted(self.loss_heap, reverse=True)],
            "loss_bursts": sorted([-p, n] for n, p in bursts),
            "loss_burst_count": count,
            "bins": {"t0": self.origin + lo * self.bin_s, "bin_ms": self.bin_s * 1e3,
                     "counts": self.bins[lo:hi]},
        }


def _gaps(heap):
    return [{"gap_s": g, "t_before": a, "t_after": b, "seq_before": sa, "seq_after": sb}
            for g, a, b, sa, sb in sorted(heap, reverse=True)]


def reduce_packets(packets, rate_pps, tx_count=None, bin_ms=1.0, top_gaps=TOP_GAPS,
                   flow=0, dst_port=0, origin=None):
    """Summary of synthetic or recorded ``packets`` [(seq, t)] in arrival order,
    exactly as ``recv`` reports a flow (for tests and offline analysis)."""
    packets = list(packets)
    ts = [t for _, t in packets]
    if origin is None:
        origin = min(ts) if ts else 0.0
    span = (max(ts) - origin) if ts else 0.0
    bin_s = bin_ms / 1e3
    st = FlowStats(flow, dst_port, origin, bin_s, int(span / bin_s) + 2, top_gaps)
    st.rate, st.tx_count = rate_pps, tx_count
    st.add(packets)
    return st.result()
