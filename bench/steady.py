"""bench/steady.py: when a catch-up's steady part begins.

A catch-up is timed from the moment every partition of the input is running on
some instance and every stream thread has some (the group has settled) to the moment every record is committed,
and only the records processed after that moment are counted. Timing from the
first processed record instead counts a rebalance that happens after it: on
the embedded broker a second member's SyncGroup sometimes loses a race with the
leader's (librdkafka 2.0.2's mock answers it INVALID_REQUEST), and the group then
stalls for session.timeout.ms - 1 s while one thread has processed a little.
That stall is the broker's, not eddy's throughput; it is reported separately
(stall_s: first processed record to settled).
"""


class Steady:
    def __init__(self, events):
        self.events = events
        self.first = None      # first processed record on any instance
        self.start = None      # every partition running
        self.base = 0          # records processed (as published at commits) by then

    def sample(self, now, healths):
        """healths: one /api/health answer (or None) per instance."""
        ok = [h for h in healths if h]
        if not ok:
            return
        processed = sum(h["totals"]["processed"] for h in ok)
        if self.first is None and processed > 0:
            self.first = now
        if self.start is None and len(ok) == len(healths):
            running = sum(1 for h in ok for p in h["partitions"] if p["state"] == "running")
            # and every stream thread of every instance has work: one that has
            # none yet is about to join, and the group to rebalance
            busy = all(t["running"] > 0 for h in ok for t in h["stream_threads"])
            if running >= ok[0]["source_partitions"] and busy:
                self.start = now
                self.base = processed

    def result(self, end):
        """(seconds, records, stall_s) of the steady part."""
        # settled, but not before the first record (the topic may be slow to arrive)
        start = max(self.start, self.first) if self.start is not None else self.first
        records = self.events - self.base
        if end - start < 0.05 or records < self.events // 2:
            # (almost) all done before the group settled: the whole run
            start, records = self.first, self.events
        return end - start, records, (self.start or self.first) - self.first
